"""The training methods, by id. Each module defines one :class:`~sdk.training.loop.Method` subclass."""
from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.errors import ConfigError

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..loop import Method

_MODULES = {
    "gan-inpaint": "gan_inpaint",
    "deocclusion": "deocclusion",
    "privileged": "privileged",
    "cbam": "cbam",
    "lower-half": "lower_half",
    "baseline": "baseline",
}


def list_methods() -> list[str]:
    """Method ids ``ofer train`` accepts."""
    return list(_MODULES)


def get_method_class(name: str) -> type["Method"]:
    """The method class of an id; ``ConfigError`` naming the known ids otherwise."""
    import importlib

    if name not in _MODULES:
        raise ConfigError(f"unknown training method {name!r}; choose one of: {', '.join(_MODULES)}")
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return module.METHOD


def build_method(cfg: "TrainConfig") -> "Method":
    """Instantiate the method a config names (validates its options)."""
    return get_method_class(cfg.method)(cfg)


def open_data(spec: str, split: str) -> object:
    """Open a dataset spec, turning any failure into a one-line ``DatasetError``."""
    from runtime.errors import DatasetError, OferError

    from ..data.spec import open_dataset

    try:
        return open_dataset(spec, split=split)
    except OferError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes a dataset error
        raise DatasetError(f"cannot read dataset {spec!r} (split {split}): {type(exc).__name__}: {exc}; "
                           f"check the path and the spec format") from None


def open_eval_data(spec: str) -> object:
    """The evaluation split of a spec: ``test``, else ``val``; ``ConfigError`` when it has neither."""
    from runtime.errors import ConfigError, DatasetError

    errors = []
    for split in ("test", "val"):
        try:
            return open_data(spec, split)
        except (ConfigError, DatasetError) as exc:
            errors.append(f"{split}: {exc}")
    raise ConfigError(f"dataset {spec!r} has no test or val split to evaluate on ({'; '.join(errors)}); "
                      f"pass --eval-data SPEC")


def train(cfg: "TrainConfig", out_dir: str | None, *, eval_data: str | None = None, resume: str | None = None,
          progress: bool = True, time_budget_s: float | None = None, stage_budget_s: float | None = None,
          eval_limit: int | None = None, print_table: bool = True) -> dict:
    """Train a method, evaluate it on every protocol, print the table and store metrics in the checkpoint.

    Returns ``{"fit": ..., "report": EvalReport | None, "trainer": Trainer}`` (``report`` is None on ranks > 0).
    """
    from pathlib import Path

    from ..checkpoint import update_metrics
    from ..distributed import shutdown
    from ..evaluation import evaluate, torch_predictor, write_report
    from ..loop import Trainer

    method = build_method(cfg)
    dataset = open_data(cfg.data, "train")
    from ..data.faces import UnlabelledFaces

    if isinstance(dataset, UnlabelledFaces):
        raise ConfigError(f"{cfg.data!r} holds unlabelled faces; the training methods need labels: use "
                          f"`ofer distill --data {cfg.data}` (a teacher labels them) instead")
    test = open_eval_data(eval_data or cfg.data)  # before training: a bad spec fails now, not hours later
    trainer = Trainer(method, dataset, out_dir=out_dir, progress=progress)
    fit = trainer.fit(resume_from=resume, time_budget_s=time_budget_s, stage_budget_s=stage_budget_s)
    report = None
    if trainer.dist.is_main:
        predict = torch_predictor(trainer.models, method.export_plan().to_dict(), cfg.input, str(trainer.device))
        report = evaluate(predict, test, cfg.eval_protocols, cfg.input, labels=trainer.labels, seed=cfg.seed,
                          limit=eval_limit)
        if out_dir is not None:
            write_report(report, Path(out_dir) / "eval", title=f"{cfg.method} ({cfg.data})")
            if (Path(out_dir) / "checkpoint").exists():
                update_metrics(Path(out_dir) / "checkpoint", report.summary())
        if print_table:
            print(f"\n{cfg.method} — evaluation\n{report.markdown()}")
    shutdown(trainer.dist)
    return {"fit": fit, "report": report, "trainer": trainer}


def export_modules(models: dict, plan: dict) -> dict:
    """The modules to export for deployment, by engine role (``classifier`` and, for ``inpaint``, ``inpainter``).

    ``plan`` is a checkpoint's ``config["export"]``; a classifier that returns a tuple (the GAN discriminator)
    is wrapped so that it returns only the expression logits.
    """
    from torch import nn

    class SelectOutput(nn.Module):
        """Returns element ``index`` of the wrapped module's tuple output."""

        def __init__(self, module: nn.Module, index: int) -> None:
            super().__init__()
            self.module, self.index = module, index

        def forward(self, x):  # noqa: ANN001, ANN201 - traced by the ONNX exporter
            return self.module(x)[self.index]

    clf = models[plan["classifier"]].eval()
    if plan.get("classifier_output") is not None:
        clf = SelectOutput(clf, int(plan["classifier_output"])).eval()
    out = {"classifier": clf}
    if plan.get("pipeline") == "inpaint":
        out["inpainter"] = models[plan["inpainter"]].eval()
    return out
