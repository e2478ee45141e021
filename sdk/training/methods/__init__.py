"""The training methods, by id. Each module defines one :class:`~sdk.training.loop.Method` subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.errors import ConfigError

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..loop import Method, Validate

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

    from runtime.datasets.spec import open_dataset

    try:
        return open_dataset(spec, split=split)
    except OferError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes a dataset error
        raise DatasetError(
            f"cannot read dataset {spec!r} (split {split}): {type(exc).__name__}: {exc}; "
            f"check the path and the spec format"
        ) from None


def open_eval_data(spec: str) -> object:
    """The evaluation split of a spec: ``test``, else ``val``; ``ConfigError`` when it has neither."""
    from runtime.errors import ConfigError, DatasetError

    errors = []
    for split in ("test", "val"):
        try:
            return open_data(spec, split)
        except (ConfigError, DatasetError) as exc:
            errors.append(f"{split}: {exc}")
    raise ConfigError(
        f"dataset {spec!r} has no test or val split to evaluate on ({'; '.join(errors)}); pass --eval-data SPEC"
    )


def open_val_data(spec: str) -> object | None:
    """The ``val`` split of a spec for the per-epoch held-out check, or ``None`` when it has none (the test
    split is never used to pick a checkpoint)."""
    from runtime.errors import ConfigError, DatasetError

    try:
        return open_data(spec, "val")
    except (ConfigError, DatasetError):
        return None


def held_out_check(cfg: "TrainConfig", val: object, labels: tuple[str, ...], plan: dict, device: str) -> "Validate":
    """``models -> {"val_occluded": .., "val_clean": ..}``: accuracy on the first ``cfg.val_limit`` faces of
    ``val`` under ``cfg.eval_protocols`` (occluded mean first: ``best`` is chosen by it), as deployed (``plan``)."""
    from ..evaluation import evaluate, torch_predictor

    def check(models: dict) -> dict[str, float]:
        predict = torch_predictor(models, plan, cfg.input, device)
        rep = evaluate(predict, val, cfg.eval_protocols, cfg.input, labels=labels, seed=cfg.seed, limit=cfg.val_limit)
        occ = rep.occluded_mean()
        out = {"val_occluded": round(occ["accuracy"], 5)} if occ else {}
        if "clean" in rep.results:
            out["val_clean"] = round(rep.results["clean"].accuracy, 5)
        return out

    return check


def chance_warning(report: object, n_classes: int, steps: int) -> str | None:
    """A warning when the final accuracy (clean, else the mean) is at most 1.5x chance, else ``None``."""
    res = report.results  # type: ignore[attr-defined]
    acc = res["clean"].accuracy if "clean" in res else sum(r.accuracy for r in res.values()) / len(res)
    if acc > 1.5 / n_classes:
        return None
    which = "clean" if "clean" in res else "mean"
    return (
        f"warning: {which} accuracy {acc:.3f} is near chance (1/{n_classes} = {1 / n_classes:.3f}): the model "
        f"did not learn. Check that the labels match the images, train longer (this run took {steps} steps: "
        "--epochs/--steps), try another --lr, and that --size/--channels suit the data; for privileged and "
        "deocclusion also check the teacher/pretrained classifier (its stage's loss in results.csv)"
    )


def train(
    cfg: "TrainConfig",
    out_dir: str | None,
    *,
    eval_data: str | None = None,
    resume: str | None = None,
    progress: bool = True,
    time_budget_s: float | None = None,
    stage_budget_s: float | None = None,
    eval_limit: int | None = None,
    print_table: bool = True,
    verbose: bool = True,
) -> dict:
    """Train a method (one line per epoch, held-out check on the ``val`` split), evaluate it on every protocol,
    print the summary and the table, store metrics in the checkpoint, draw ``curves.png``.

    Returns ``{"fit": ..., "report": EvalReport | None, "trainer": Trainer, "warning": str | None}`` (``report`` is
    None on ranks > 0).
    """
    from pathlib import Path

    from ..checkpoint import update_metrics
    from ..distributed import shutdown
    from ..evaluation import evaluate, print_progress, torch_predictor, write_report
    from ..loop import Trainer
    from ..reporting import draw_curves

    method = build_method(cfg)
    dataset = open_data(cfg.data, "train")
    from runtime.datasets.faces import UnlabelledFaces

    if isinstance(dataset, UnlabelledFaces):
        raise ConfigError(
            f"{cfg.data!r} holds unlabelled faces; the training methods need labels: use "
            f"`ofer distill --data {cfg.data}` (a teacher labels them) instead"
        )
    test = open_eval_data(eval_data or cfg.data)  # before training: a bad spec fails now, not hours later
    val = open_val_data(cfg.data) if cfg.val_limit else None
    trainer = Trainer(method, dataset, out_dir=out_dir, progress=progress, verbose=verbose)
    plan = method.export_plan().to_dict()
    check = held_out_check(cfg, val, trainer.labels, plan, str(trainer.device)) if val is not None else None
    if check is None and verbose and trainer.dist.is_main:
        print(
            f"{cfg.method}: no val split in {cfg.data!r} (or val_limit 0): epochs are reported without a "
            "held-out check and best/ is not written",
            flush=True,
        )
    fit = trainer.fit(resume_from=resume, time_budget_s=time_budget_s, stage_budget_s=stage_budget_s, validate=check)
    report, warning = None, None
    if trainer.dist.is_main:
        predict = torch_predictor(trainer.models, plan, cfg.input, str(trainer.device))
        report = evaluate(
            predict,
            test,
            cfg.eval_protocols,
            cfg.input,
            labels=trainer.labels,
            seed=cfg.seed,
            limit=eval_limit,
            progress=print_progress(f"{cfg.method}: evaluating") if verbose else None,
        )
        if out_dir is not None:
            write_report(
                report,
                Path(out_dir) / "eval",
                title=f"{cfg.method} ({cfg.data})",
                meta={"checkpoint": "last (checkpoint/)"},
            )
            if (Path(out_dir) / "checkpoint").exists():
                update_metrics(Path(out_dir) / "checkpoint", report.summary())
        warning = chance_warning(report, len(trainer.labels), int(fit["position"]["step"]))
        if verbose:
            print(f"\n{cfg.method} — training summary\n{trainer.report.summary()}", flush=True)
            if trainer.best:
                b = trainer.best
                print(
                    f"best held-out {b['metric']} {b['value']:.4f} at {b['stage']} epoch {b['epoch']} (step "
                    f"{b['step']})" + (f": {Path(out_dir) / 'best'}" if out_dir is not None else ""),
                    flush=True,
                )
            if out_dir is not None:
                drawn = draw_curves(
                    trainer.report.rows, Path(out_dir) / "curves.png", title=f"{cfg.method} ({cfg.data})"
                )
                if not isinstance(drawn, Path):
                    print(f"{cfg.method}: {drawn}", flush=True)
        if print_table:
            print(
                f"\n{cfg.method} — evaluation of the last checkpoint on {eval_data or cfg.data} (test split)\n"
                f"{report.markdown()}",
                flush=True,
            )
        if warning is not None:
            import sys

            print(f"{cfg.method}: {warning}", file=sys.stderr, flush=True)
        if verbose and out_dir is not None:
            print(f"results saved to {out_dir}", flush=True)
    shutdown(trainer.dist)
    return {"fit": fit, "report": report, "trainer": trainer, "warning": warning}
