"""``distill``: a real teacher sees the clean face, the student the same face occluded (privileged information).

Loss per batch (each term switchable by its weight; T = temperature):

* ``soft``: T²·KL(q ‖ softmax(student(occluded)/T)), q = softmax(teacher(clean)/T), mixed with the one-hot label
  (``label_mix``) where the data have labels;
* ``clean``: T²·KL(softmax(teacher(clean)/T) ‖ softmax(student(clean)/T)) on a share (``clean_share``) of each
  batch's clean faces: the student keeps the teacher's clean answers;
* ``lir``: [CE(teacher(clean), ŷ) − CE(student(occluded), ŷ)]₊ with ŷ the target's top class (seed 002's LIR);
* ``adv``: a feature discriminator tells the student's mid-level features of occluded faces from the teacher's
  of clean faces (seed 002), the student learns to fool it;
* ``rec``: a 3-deconv decoder rebuilds the clean face from the student's occluded-face features (seed 002).

Held-out people (the ``val`` split) are evaluated before training and after every epoch: agreement with the
teacher's clean answer on clean faces and under each ``val_protocols`` occluder, every person weighted equally
(so one long video does not decide). **Selection rule:** the saved
checkpoint is the epoch with the best mean occluded agreement among epochs whose clean agreement is at least
``clean_floor`` (0.97) — the teacher agrees with itself on clean faces, so 97 % of the teacher's. Epoch 0 (the student
as initialised: a copy of the teacher) always qualifies, so the result is never worse than the start by this rule.
Training stops early after ``patience`` epochs without a better qualifying epoch (never before ``min_epochs``).
"""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from runtime.errors import ConfigError
from runtime.preprocess import fit_face, to_tensor

from .. import checkpoint as ckpt
from ..distributed import resolve_device
from ..losses import adversarial_d, adversarial_g, features_and_logits, features_of, kl_soft, reconstruction_l2
from .config import GENERAL_PROTOCOLS, HEADSET_PROTOCOLS, PRESETS, TERMS, VAL_PROTOCOLS, DistillConfig
from .data import Augment, PairedFaces
from .heldout import HeldOut, predict_probs
from .teacher import Teacher, load_teacher

__all__ = [
    "GENERAL_PROTOCOLS",
    "HEADSET_PROTOCOLS",
    "PRESETS",
    "TERMS",
    "VAL_PROTOCOLS",
    "DistillConfig",
    "Distiller",
    "HeldOut",
    "kl_soft",
    "predict_probs",
]


def _device(name: str) -> torch.device:
    """``auto``/``cpu``/``cuda[:i]`` -> a device, with one clear error when CUDA is asked for but absent."""
    try:
        dev = resolve_device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name!r} is not a torch device ({exc}); use auto, cpu or cuda[:i]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name} asks for CUDA, but this torch ({torch.__version__}) sees no GPU; "
            f"use --device cpu (or auto)"
        )
    return dev


class Distiller:
    """Runs one distillation (see the module docstring); ``fit()`` trains, ``out/checkpoint`` is the chosen epoch."""

    def __init__(
        self,
        cfg: DistillConfig,
        train: Any,
        val: Any,
        out_dir: str | Path | None,
        log: Callable[[str], None] = print,
        teacher: Teacher | None = None,
    ) -> None:
        self.cfg, self.train_data, self.val_data = cfg, train, val
        self.out = Path(out_dir) if out_dir is not None else None
        self.log = log
        self.device = _device(cfg.device)
        torch.manual_seed(cfg.seed)
        if teacher is None:
            calib = self._calibration(train, cfg.teacher)
            teacher = load_teacher(cfg.teacher, cfg.teacher_model, calibration=calib)
        teacher.model.to(self.device)
        self.teacher = teacher
        self.labels = teacher.labels
        label_map = self._label_map(train)
        self.label_map = None if label_map is None else torch.from_numpy(label_map).to(self.device)
        self.models: dict[str, nn.Module] = {}
        self.specs: dict[str, dict[str, Any]] = {}
        self._build_models()
        d = self.disc_name
        self.opt = torch.optim.Adam(
            [p for n, m in self.models.items() if n != d for p in m.parameters()], lr=cfg.lr, betas=(0.9, 0.999)
        )
        self.opt_d = (
            torch.optim.Adam(self.models[d].parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if d in self.models else None
        )
        self.held_out = self._held_out(val)
        self.sample_weights = self._sample_weights(train)
        self.teacher_logits = (
            self._teacher_cache(train)
            if cfg.route == "student" and cfg.cache_teacher and not cfg.weights["adv"]
            else None
        )
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.epoch = 0

    #: The module trained by the discriminator's own optimiser (not the main one).
    disc_name = "feature_disc"
    #: The module the held-out people evaluate (and ``checkpoint/`` exports).
    main_name = "student"

    # ------------------------------------------------------------------ setup
    def _build_models(self) -> None:
        """The trainable modules (``self.models``, on ``self.device``) and their registry specs (``self.specs``)."""
        self.models["student"] = self._student()
        self.specs["student"] = {
            "registry": self.cfg.student_model or self.teacher.registry,
            "kwargs": self._student_kwargs(),
        }
        self._aux_modules()

    def _held_out(self, val: Any) -> HeldOut:
        return HeldOut(val, self.teacher, self.cfg.held_out_protocols, self.cfg.seed)

    @staticmethod
    def _calibration(train: Any, teacher_path: str, n: int = 256) -> np.ndarray | None:
        """Normalised clean faces for the imported BatchNorm statistics (bundle teachers only)."""
        if not (Path(teacher_path) / "manifest.json").is_file():
            return None
        from runtime.bundle import load_bundle

        from .teacher import _train_input

        spec = _train_input(load_bundle(teacher_path).input, teacher_path)
        idx = np.linspace(0, len(train) - 1, min(n, len(train))).astype(int)
        return to_tensor(np.stack([fit_face(train[int(i)][0], spec) for i in idx]), spec)

    def _teacher_cache(self, train: Any, batch: int = 256) -> torch.Tensor:
        """``(N, 2, K)`` teacher logits on every training crop as is (0) and flipped (1)."""
        spec = self.teacher.input
        out = []
        with torch.no_grad():
            for s in range(0, len(train), batch):
                crops = np.stack([fit_face(train[i][0], spec) for i in range(s, min(len(train), s + batch))])
                x = torch.from_numpy(to_tensor(crops, spec)).to(self.device)
                out.append(torch.stack([self.teacher.model(x), self.teacher.model(x.flip(-1))], 1))
        return torch.cat(out)

    def _label_map(self, data: Any) -> np.ndarray | None:
        names = tuple(getattr(data, "labels", ()) or ())
        if not names or names == self.labels:
            return None
        if set(names) != set(self.labels):
            raise ConfigError(
                f"the data's labels {names} differ from the teacher's {self.labels}; pass "
                f"labels={','.join(self.labels)} in the data spec or unlabelled faces:"
            )
        return np.asarray([self.labels.index(n) for n in names], np.int64)

    def _student_kwargs(self) -> dict[str, Any]:
        if self.cfg.student_model is None:
            return dict(self.teacher.kwargs)
        return {"num_classes": len(self.labels), "in_channels": self.teacher.input.channels}

    def _student(self) -> nn.Module:
        if self.cfg.student_model is None:
            m = copy.deepcopy(self.teacher.model)
            m.requires_grad_(True)
            return m
        from ..models import create_model

        try:
            return create_model(self.cfg.student_model, **self._student_kwargs()).to(self.device)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None

    def _aux_modules(self) -> None:
        from ..models import create_model

        w = self.cfg.weights
        if not (w["adv"] or w["rec"]):
            return
        s, c = self.teacher.input.size[0], self.teacher.input.channels  # square (teacher._train_input)
        with torch.no_grad():
            f = features_of(self.models["student"].eval(), torch.zeros(2, c, s, s, device=self.device))
        fc, stride = int(f.shape[1]), max(1, s // int(f.shape[-1]))
        if w["adv"]:
            kw = {"in_channels": fc}
            self.models["feature_disc"] = create_model("feature_discriminator", **kw).to(self.device)
            self.specs["feature_disc"] = {"registry": "feature_discriminator", "kwargs": kw}
        if w["rec"]:
            kw = {
                "in_channels": fc,
                "out_channels": c,
                "upsample": min(8, 1 << (stride.bit_length() - 1)),
                "out_size": [s, s],
            }
            self.models["decoder"] = create_model("reconstruction_decoder", **kw).to(self.device)
            self.specs["decoder"] = {"registry": "reconstruction_decoder", "kwargs": kw}

    # ------------------------------------------------------------------ training
    def _train_mode(self) -> None:
        for m in self.models.values():
            m.train()
        if self.cfg.freeze_bn and "student" in self.models:
            for mod in self.models["student"].modules():
                if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                    mod.eval()

    def _protocols(self) -> tuple[str, ...]:
        """The occluders the training pairs draw from."""
        return self.cfg.train_protocols

    def _loader(self, epoch: int) -> DataLoader:
        ds = PairedFaces(
            self.train_data, self.teacher.input, self._protocols(), Augment(**self.cfg.augment), seed=self.cfg.seed
        )
        ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        # every random choice of a sample comes from (seed, epoch, index): workers change nothing but the speed
        kw = dict(
            batch_size=self.cfg.batch_size,
            drop_last=len(ds) > self.cfg.batch_size,
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
        )
        if self.sample_weights is None:
            return DataLoader(ds, shuffle=True, generator=gen, **kw)
        sampler = WeightedRandomSampler(self.sample_weights, len(ds), replacement=True, generator=gen)
        return DataLoader(ds, sampler=sampler, **kw)

    def _sample_weights(self, data: Any) -> torch.Tensor | None:
        """Per-face sampling weights that keep one long video from dominating (None: uniform)."""
        if not self.cfg.balance or not hasattr(data, "subject"):
            return None
        people = np.asarray([data.subject(i) or f"#{i}" for i in range(len(data))], dtype=str)
        _, inverse, counts = np.unique(people, return_inverse=True, return_counts=True)
        if counts.max() == 1:
            return None
        return torch.from_numpy(counts[inverse].astype(np.float64) ** -float(self.cfg.balance))

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step (and one discriminator step when ``adv`` is on); returns the loss terms."""
        cfg, w, t = self.cfg, self.cfg.weights, self.cfg.temperature
        dev = self.device
        x_o, x_c, y = (batch[k].to(dev, non_blocking=True) for k in ("occluded", "clean", "label"))
        if self.label_map is not None:
            y = torch.where(y >= 0, self.label_map[y.clamp_min(0)], y)
        with torch.no_grad():
            if self.teacher_logits is not None:
                f_t, l_t = None, self.teacher_logits[batch["index"].to(dev), batch["flip"].long().to(dev)]
            else:
                f_t, l_t = features_and_logits(self.teacher.model, x_c)
            p_t = F.softmax(l_t / t, dim=1)
        target = p_t
        has = y >= 0
        if has.any() and cfg.label_mix > 0:
            onehot = F.one_hot(y.clamp_min(0), p_t.shape[1]).float()
            target = torch.where(has[:, None], (1 - cfg.label_mix) * p_t + cfg.label_mix * onehot, p_t)
        self._train_mode()
        student = self.models["student"]
        n = len(x_o)
        n_clean = max(1, int(round(cfg.clean_share * n))) if w["clean"] else 0
        both = torch.cat([x_o, x_c[:n_clean]]) if n_clean else x_o
        feats, logits = features_and_logits(student, both)
        f_o, l_o = feats[:n], logits[:n]
        terms: dict[str, torch.Tensor] = {}
        if w["soft"]:
            terms["soft"] = kl_soft(l_o, target, t)
        if w["clean"]:
            terms["clean"] = kl_soft(logits[n:], p_t[:n_clean], t)
        if w["label"] and has.any():
            terms["label"] = F.cross_entropy(l_o[has], y[has])
        if w["lir"]:
            yh = target.argmax(1)
            terms["lir"] = F.relu(
                F.cross_entropy(l_t, yh, reduction="none") - F.cross_entropy(l_o, yh, reduction="none")
            ).mean()
        if w["adv"]:
            self.models["feature_disc"].requires_grad_(False)
            terms["adv"] = adversarial_g(self.models["feature_disc"](f_o))
            self.models["feature_disc"].requires_grad_(True)
        if w["rec"]:
            terms["rec"] = reconstruction_l2(self.models["decoder"](f_o), x_c)
        total = sum(w[k] * v for k, v in terms.items())
        if not torch.isfinite(total):
            raise ConfigError(
                f"distill: the loss became non-finite ({ {k: float(v) for k, v in terms.items()} }); lower --lr"
            )
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["total"] = float(total.detach())
        if self.opt_d is not None:
            d = self.models["feature_disc"]
            loss_d = adversarial_d(d(f_t), d(f_o.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["d_adv"] = float(loss_d.detach())
        return logs

    # ------------------------------------------------------------------ selection, checkpoints
    def qualifies(self, row: dict[str, Any]) -> bool:
        """The selection rule's condition: clean agreement >= clean_floor x the teacher's (1.0)."""
        return row["clean"] >= self.cfg.clean_floor

    def _record(self, epoch: int, val: dict[str, float], losses: dict[str, float], seconds: float) -> bool:
        row = {
            "epoch": epoch,
            **{f"val_{k}": v for k, v in val.items()},
            **{f"loss_{k}": v for k, v in losses.items()},
            "seconds": round(seconds, 2),
        }
        self.history.append(row)
        better = self.qualifies(val) and (self.best is None or val["occluded_mean"] > self.best["occluded_mean"])
        if better:
            self.best = {"epoch": epoch, **val}
            self._save_best()
        occ = "  ".join(f"{p} {100 * val[p]:.1f}%" for p in self.cfg.held_out_protocols)
        loss = f"loss {losses['total']:.3f}  " if losses else ""
        self.log(
            f"epoch {epoch}/{self.cfg.epochs}  {loss}held-out ({len(set(self.held_out.people.tolist()))} people, "
            f"{len(self.held_out.people)} faces): clean {100 * val['clean']:.1f}%  {occ}  "
            f"mean {100 * val['occluded_mean']:.1f}%{'  [best]' if better else ''}  {seconds:.0f}s"
        )
        return better

    def config_dict(self, models: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": "distill",
            "models": models,
            "labels": list(self.labels),
            "input": self.teacher.input.to_json(),
            "data": self.cfg.data,
            "seed": self.cfg.seed,
            "position": {"stage": 0, "epoch": self.epoch, "step": 0},
            "export": {"pipeline": "direct", "classifier": "student", "inpainter": None, "classifier_output": None},
            "distill_config": self.cfg.to_dict(),
            "metrics": {
                "selection": "best mean held-out occluded agreement with the teacher's clean answer among "
                f"epochs with clean agreement >= {self.cfg.clean_floor}",
                "best": self.best,
                "teacher": self.teacher.source,
                # epoch 0 = the student as initialised; a copy of the teacher = the direct route
                "direct": (
                    None
                    if self.cfg.student_model is not None or not self.history
                    else {k[4:]: v for k, v in self.history[0].items() if k.startswith("val_")}
                ),
                "teacher_parity": self.teacher.parity,
                "held_out": {
                    "people": int(len(set(self.held_out.people.tolist()))),
                    "faces": int(len(self.held_out.people)),
                    "protocols": list(self.cfg.held_out_protocols),
                },
            },
        }

    def _save_best(self) -> None:
        if self.out is None:
            return
        ckpt.save_checkpoint(
            self.out / "checkpoint",
            config=self.config_dict({"student": self.specs["student"]}),
            models={"student": self.models["student"]},
        )

    def _save_state(self) -> None:
        if self.out is None:
            return
        state = {
            "opt": self.opt.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d else {},
            "history": json.dumps(self.history),
            "best": json.dumps(self.best),
            "rng": ckpt.capture_rng(),
        }
        ckpt.save_checkpoint(
            self.out / "state", config=self.config_dict(self.specs), models=self.models, training_state=state
        )
        with (self.out / "distill_log.csv").open("w", newline="") as f:
            fields: list[str] = []
            for r in self.history:
                fields.extend(k for k in r if k not in fields)
            wr = csv.DictWriter(f, fieldnames=fields)
            wr.writeheader()
            wr.writerows(self.history)

    def resume(self, path: str | Path) -> None:
        """Continue from ``OUT/state`` of an interrupted run of the same config."""
        loaded = ckpt.load_checkpoint(
            Path(path) / "state" if (Path(path) / "state").is_dir() else path, with_training_state=True
        )
        if set(loaded.models) != set(self.models):
            raise ConfigError(
                f"{path} holds modules {sorted(loaded.models)}, this run needs {sorted(self.models)}; "
                f"resume with the same loss terms"
            )
        for n, m in self.models.items():
            m.load_state_dict(loaded.models[n].state_dict())
        st = loaded.state
        self.opt.load_state_dict(st["opt"])
        if self.opt_d is not None and st.get("opt_d"):
            self.opt_d.load_state_dict(st["opt_d"])
        self.history = json.loads(st["history"])
        self.best = json.loads(st["best"])
        self.epoch = int(loaded.config["position"]["epoch"])
        ckpt.restore_rng(st["rng"])

    def fit(self, time_budget_s: float | None = None, stop_after_epochs: int | None = None) -> dict[str, Any]:
        """Train until ``epochs``, early stopping or the time budget; returns the best epoch's numbers."""
        t0 = time.monotonic()
        if self.epoch == 0 and not self.history:
            self._record(0, self.held_out.evaluate(self.models[self.main_name]), {}, 0.0)
            self._save_state()
        ran = 0
        while self.epoch < self.cfg.epochs:
            te = time.monotonic()
            sums: dict[str, float] = {}
            steps = 0
            for batch in self._loader(self.epoch):
                for k, v in self.step(batch).items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
                if self.cfg.max_steps is not None and steps >= self.cfg.max_steps:
                    break
            self.epoch += 1
            ran += 1
            self._record(
                self.epoch,
                self.held_out.evaluate(self.models[self.main_name]),
                {k: v / max(1, steps) for k, v in sums.items()},
                time.monotonic() - te,
            )
            self._save_state()
            since = self.epoch - (self.best["epoch"] if self.best else 0)
            if since >= self.cfg.patience and self.epoch >= self.cfg.min_epochs:
                self.log(
                    f"early stop: no better qualifying epoch for {since} epochs (best: epoch {self.best['epoch']})"
                )
                break
            if time_budget_s is not None and time.monotonic() - t0 > time_budget_s:
                self.log(f"time budget of {time_budget_s:.0f} s reached after epoch {self.epoch}")
                break
            if stop_after_epochs is not None and ran >= stop_after_epochs:
                break
        return {"best": self.best, "epochs": self.epoch, "seconds": time.monotonic() - t0}
