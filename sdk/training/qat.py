"""Quantisation-aware fine-tuning (QAT) of a checkpoint's classifier, in the INT8 scheme ``ofer export`` writes.

For a model whose INT8 export still needs many nodes kept in float (or fails the agreement gate), :func:`qat_finetune`
fine-tunes the deployed classifier for a few hundred steps with *fake quantisation* inserted as ONNX Runtime's
static Q/DQ quantisation will later compute it (:class:`export.formats.Int8Scheme`): the input of every
Conv/ConvTranspose/Linear is quantised per tensor (symmetric signed 8-bit for ``int8-trt``; asymmetric unsigned
8-bit over a range that includes 0 for ``int8-cpu``), with its range tracked as an exponential moving average of
the batch min/max; weights are quantised per output channel, symmetric (7-bit where the flavour uses
``reduce_range``). Gradients pass straight through (``torch.fake_quantize_per_*_affine``). The loss is
distillation (KL) from the frozen FP32 classifier (optionally plus cross-entropy on the labels), so the function
stays put while the weights move to values that survive rounding. The fake quantisation is then removed: the
result is an ordinary float checkpoint (same modules, safetensors), exported and calibrated as usual.

Training faces: occluded faces of the checkpoint's own training data under the calibration mix
(:func:`calibration.sets.build_calibration_set`); an inpaint checkpoint's classifier sees the frozen inpainter's
output, as it runs deployed.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import ConfigError

#: Modules whose input and weights are fake-quantised (the ops every INT8 flavour quantises).
QUANTISED_MODULES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class ActivationFakeQuant(nn.Module):
    """Per-tensor fake quantisation of an activation with an EMA min/max range (8-bit).

    Args:
        symmetric: Signed, zero point 0, scale ``max|x| / 127`` (TensorRT); else unsigned over ``[min(lo, 0),
            max(hi, 0)]`` with a zero point (ONNX Runtime CPU's QUInt8).
        momentum: EMA weight of each new batch's min/max; ``None``: the min/max of every batch seen (minmax
            calibration).
    """

    def __init__(self, symmetric: bool, momentum: float | None = 0.05) -> None:
        super().__init__()
        self.symmetric, self.momentum = symmetric, momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def observe(self, x: torch.Tensor) -> None:
        """Update the range with a batch."""
        lo, hi = x.detach().min(), x.detach().max()
        if not bool(self.seen):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.seen.fill_(True)
        elif self.momentum is None:
            self.lo.copy_(torch.minimum(self.lo, lo))
            self.hi.copy_(torch.maximum(self.hi, hi))
        else:
            self.lo.lerp_(lo, self.momentum)
            self.hi.lerp_(hi, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.observe(x)
        if not bool(self.seen):
            return x
        if self.symmetric:
            amax = torch.maximum(self.lo.abs(), self.hi.abs()).clamp_min(1e-8)
            return torch.fake_quantize_per_tensor_affine(x, amax / 127.0, torch.zeros((), dtype=torch.int32), -128, 127)
        lo, hi = self.lo.clamp_max(0.0), self.hi.clamp_min(0.0)
        scale = ((hi - lo) / 255.0).clamp_min(1e-8)
        zero = torch.round(-lo / scale).clamp(0, 255).to(torch.int32)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def fake_quant_weight(weight: torch.Tensor, qmax: int, axis: int) -> torch.Tensor:
    """Per-channel symmetric fake quantisation of ``weight`` along ``axis`` to ``[-qmax, qmax]``."""
    dims = [d for d in range(weight.dim()) if d != axis]
    scale = (weight.detach().abs().amax(dim=dims) / qmax).clamp_min(1e-8).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, axis, -qmax, qmax)


class QuantisedWeight(nn.Module):
    """A parametrisation (``torch.nn.utils.parametrize``) that fake-quantises a weight per output channel."""

    def __init__(self, qmax: int, axis: int) -> None:
        super().__init__()
        self.qmax, self.axis = qmax, axis

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(weight, self.qmax, self.axis)


class FakeQuantised:
    """Fake quantisation inserted into a module (see the module docstring); :meth:`remove` takes it out again,
    leaving the trained float weights under their original names.

    Args:
        model: The classifier (changed in place).
        flavour: ``int8-cpu`` or ``int8-trt`` (its :class:`export.formats.Int8Scheme`).
    """

    def __init__(self, model: nn.Module, flavour: str = "int8-trt") -> None:
        from torch.nn.utils import parametrize

        from export.formats import EXPORT_FORMATS

        fmt = EXPORT_FORMATS.get(flavour)
        if fmt is None or fmt.int8 is None:
            raise ConfigError(f"QAT flavour must be int8-cpu or int8-trt, got {flavour!r}")
        self.model, self.flavour = model, flavour
        qmax = 63 if fmt.int8.reduce_range else 127
        self.observers: list[ActivationFakeQuant] = []
        self._hooks = []
        self._parametrized: list[nn.Module] = []
        for module in model.modules():
            if not isinstance(module, QUANTISED_MODULES):
                continue
            observer = ActivationFakeQuant(fmt.int8.symmetric)
            self.observers.append(observer)
            self._hooks.append(module.register_forward_pre_hook(lambda m, args, q=observer: (q(args[0]), *args[1:])))
            axis = 1 if isinstance(module, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(module, "weight", QuantisedWeight(qmax, axis))
            self._parametrized.append(module)

    def train(self, mode: bool = True) -> None:
        """Observers follow the model's mode (ranges update in training)."""
        for q in self.observers:
            q.train(mode)

    def remove(self) -> nn.Module:
        """Take the fake quantisation out; returns the model with its float weights."""
        from torch.nn.utils import parametrize

        for h in self._hooks:
            h.remove()
        for module in self._parametrized:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self._hooks, self._parametrized = [], []
        return self.model


def fake_quant_outputs(
    model: nn.Module, inputs: torch.Tensor, flavour: str = "int8-trt", batch: int = 256
) -> torch.Tensor:
    """Outputs of a fake-quantised copy of ``model`` on ``inputs`` ``(N, C, H, W)`` with minmax activation ranges
    over ``inputs`` (as ``ofer export``'s default calibration): INT8 simulated in torch; ``model`` is untouched."""
    clone = copy.deepcopy(model).eval()
    fq = FakeQuantised(clone, flavour)
    with torch.no_grad():
        fq.train(True)
        for q in fq.observers:
            q.momentum = None  # accumulate min/max
        for i in range(0, len(inputs), batch):
            clone(inputs[i : i + batch])
        fq.train(False)
        return torch.cat([clone(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])


def training_faces(checkpoint: Any, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs NCHW float32, labels in the model's order or -1, masks NHW)``: occluded faces of the checkpoint's
    training data under the calibration mix."""
    from calibration.sets import build_calibration_set

    data = checkpoint.config.get("data")
    if not data:
        raise ConfigError(f"checkpoint {checkpoint.path} records no training data; QAT needs faces of its domain")
    faces = build_calibration_set(str(data), checkpoint.input, count=count, seed=seed, cache_dir=None)
    index = {n: i for i, n in enumerate(checkpoint.labels)}
    labels = np.array([index.get(faces.label_names[k], -1) if k >= 0 else -1 for k in faces.labels], np.int64)
    return faces.inputs.astype(np.float32), labels, faces.masks.astype(np.float32)


def qat_finetune(
    checkpoint_path: str | Path,
    out: str | Path,
    *,
    flavour: str = "int8-trt",
    steps: int = 300,
    count: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-4,
    distill: float = 1.0,
    labels: float = 0.0,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Fine-tune a checkpoint's deployed classifier with fake quantisation and save the result as a checkpoint.

    Args:
        checkpoint_path: Trained checkpoint (``ofer train``'s ``OUT/checkpoint``).
        out: Checkpoint folder to write (same modules; the classifier fine-tuned; ``config["qat"]`` records how).
        flavour: The INT8 scheme simulated (``int8-trt`` or ``int8-cpu``).
        steps: Optimiser steps.
        count: Occluded training faces drawn from the checkpoint's data.
        batch_size, lr: Adam batch size and learning rate.
        distill: Weight of the KL term to the frozen FP32 classifier.
        labels: Weight of the cross-entropy on the labels (0: distillation only, the FP32 function is kept).
        seed: Seeds face choice, occlusion and batch order.
        log: Receives a few progress lines (``None``: silent).

    Returns:
        The QAT record (also in the checkpoint's config): flavour, steps, losses, seconds.

    Raises:
        ConfigError: bad flavour or settings; InputError: the checkpoint does not load.
    """
    from export.formats import EXPORT_FORMATS
    from export.modules import export_plan, select_modules

    from .checkpoint import load_checkpoint, save_checkpoint

    if steps < 1 or batch_size < 1 or count < batch_size:
        raise ConfigError(f"QAT needs steps >= 1 and count >= batch size >= 1 (got {steps}, {count}, {batch_size})")
    if getattr(EXPORT_FORMATS.get(flavour), "int8", None) is None:
        raise ConfigError(f"QAT flavour must be int8-cpu or int8-trt, got {flavour!r}")
    torch.manual_seed(seed)
    ck = load_checkpoint(checkpoint_path)
    plan = export_plan(ck)
    modules = select_modules(ck.models, plan)
    classifier, inpainter = modules["classifier"], modules.get("inpainter")
    teacher = copy.deepcopy(classifier).eval()
    x, y, m = training_faces(ck, count, seed)
    if inpainter is not None:  # the classifier sees what the inpainter makes of the occluded face, as deployed
        with torch.no_grad():
            x = np.concatenate(
                [
                    inpainter(torch.from_numpy(x[i : i + 256]), torch.from_numpy(m[i : i + 256, None])).numpy()
                    for i in range(0, len(x), 256)
                ]
            )
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        soft = torch.cat([teacher(xt[i : i + 256]) for i in range(0, len(xt), 256)]).softmax(1)
    fq = FakeQuantised(classifier, flavour)
    params = [p for p in classifier.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    t0, losses = time.perf_counter(), []
    classifier.train()
    for module in classifier.modules():  # keep BatchNorm statistics and dropout as trained: fine-tune the weights
        if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout)):
            module.eval()
    for step in range(steps):
        idx = torch.from_numpy(rng.choice(len(xt), batch_size, replace=False))
        logits = classifier(xt[idx])
        known = yt[idx] >= 0
        ce = F.cross_entropy(logits[known], yt[idx][known]) if bool(known.any()) else logits.sum() * 0
        kl = F.kl_div(logits.log_softmax(1), soft[idx], reduction="batchmean")
        loss = labels * ce + distill * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % max(steps // 4, 1) == 0:
            log(
                f"qat {flavour}: step {step + 1}/{steps}  loss {np.mean(losses[-50:]):.4f}  "
                f"ce {float(ce.detach()):.4f}  kl {float(kl.detach()):.4f}  {time.perf_counter() - t0:.0f} s"
            )
    fq.remove()
    classifier.eval()
    record = {
        "flavour": flavour,
        "steps": steps,
        "faces": int(len(xt)),
        "batch_size": batch_size,
        "lr": lr,
        "distill": distill,
        "labels": labels,
        "loss_first": round(float(np.mean(losses[:20])), 5),
        "loss_last": round(float(np.mean(losses[-20:])), 5),
        "seconds": round(time.perf_counter() - t0, 1),
        "source": str(ck.path),
    }
    config = {k: v for k, v in ck.config.items() if k not in ("format", "version")}
    config["qat"] = record
    save_checkpoint(out, config=config, models=ck.models)
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m sdk.training.qat CHECKPOINT --out DIR [--flavour int8-trt] [--steps 300] ...``; then
    ``ofer export DIR --precision int8`` as usual."""
    import argparse
    import sys

    from runtime.errors import OferError

    ap = argparse.ArgumentParser(prog="python -m sdk.training.qat", description=main.__doc__)
    ap.add_argument("checkpoint", help="trained checkpoint (ofer train's OUT/checkpoint)")
    ap.add_argument("--out", required=True, help="checkpoint folder to write (refused if it exists, unless --force)")
    ap.add_argument(
        "--flavour",
        default="int8-trt",
        choices=("int8-trt", "int8-cpu"),
        help="INT8 scheme simulated (default: %(default)s)",
    )
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps (default: %(default)s)")
    ap.add_argument("--count", type=int, default=2000, help="occluded training faces (default: %(default)s)")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: %(default)s)")
    ap.add_argument(
        "--labels",
        type=float,
        default=0.0,
        help="weight of the label cross-entropy (default %(default)s: distillation only, the FP32 function is kept)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--force", action="store_true", help="replace --out")
    args = ap.parse_args(argv)
    try:
        if Path(args.out).exists() and not args.force:
            raise ConfigError(f"{args.out} exists; choose another --out or pass --force to replace it")
        if args.threads:
            torch.set_num_threads(args.threads)
        record = qat_finetune(
            args.checkpoint,
            args.out,
            flavour=args.flavour,
            steps=args.steps,
            count=args.count,
            lr=args.lr,
            labels=args.labels,
        )
    except OferError as exc:
        print(f"qat: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out} ({record['steps']} steps, loss {record['loss_first']} -> {record['loss_last']}); export "
        f"it with: ofer export {args.out} --precision int8 --out BUNDLE"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
