"""The teacher of ``ofer distill``: a bundle's FP32 ONNX classifier imported into a registry model, or a checkpoint.

Both become a frozen torch module (so the student can start as an exact copy and the feature terms can read the
teacher's mid-level features) plus its labels and input spec (:class:`runtime.input_spec.InputSpec`: the tensor and
the crops, as the bundle serves them).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.errors import ConfigError, InputError
from runtime.input_spec import InputSpec

from ..onnx_import import PARITY_TOL, import_onnx_weights, parity


@dataclass
class Teacher:
    """A loaded teacher.

    Attributes:
        model: The frozen module (eval mode, no gradients), returning logits.
        registry: Its registry name and kwargs (a student of the same architecture is created from them).
        labels: Label names in output order.
        input: Its input spec (size, colour, normalisation, crop margin and offset).
        source: What it was loaded from (for provenance).
        parity: Largest logit difference to ONNX Runtime (bundles), else None.
    """

    model: nn.Module
    registry: str
    kwargs: dict[str, Any]
    labels: tuple[str, ...]
    input: InputSpec
    source: str
    parity: float | None = None
    bundle_path: Path | None = None


def _train_input(spec: InputSpec, where: str) -> InputSpec:
    """``spec`` once checked to be one the torch models train on (square, NCHW)."""
    h, w = spec.size
    if h != w:
        raise ConfigError(f"{where}: distillation needs a square input, the bundle has {h}x{w}")
    if spec.layout != "NCHW":
        raise ConfigError(f"{where}: distillation trains NCHW models, the bundle's input is {spec.layout}")
    return spec


def load_teacher(path: str | Path, model: str = "mini_xception", calibration: np.ndarray | None = None) -> Teacher:
    """Load a teacher from a bundle folder (``manifest.json``) or a training checkpoint.

    Args:
        path: Bundle or checkpoint folder.
        model: Registry name of the bundle classifier's architecture (ignored for checkpoints).
        calibration: Optional normalised ``(N, C, H, W)`` faces that set the imported BatchNorm statistics.

    Raises:
        InputError: the path is neither a bundle nor a checkpoint.
        ConfigError: the ONNX graph does not fit ``model`` or the import fails the parity check.
    """
    p = Path(path)
    if (p / "manifest.json").is_file():
        return _from_bundle(p, model, calibration)
    if p.is_dir():
        return _from_checkpoint(p)
    raise InputError(f"teacher {path} is neither a bundle folder (manifest.json) nor a checkpoint folder")


def _from_bundle(p: Path, model: str, calibration: np.ndarray | None) -> Teacher:
    from runtime.bundle import load_bundle

    from ..models import create_model
    from ..models.registry import get_entry

    b = load_bundle(p)
    engines = b.find_engines("classifier", format="onnx", precision="fp32")
    if not engines:
        raise ConfigError(f"teacher bundle {p} has no FP32 ONNX classifier to import")
    spec = _train_input(b.input, f"teacher bundle {p}")
    try:
        get_entry(model)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    kwargs = {"num_classes": len(b.labels), "in_channels": spec.channels}
    module = create_model(model, **kwargs)
    s = spec.size[0]
    with tempfile.TemporaryDirectory(prefix="ofer-teacher-") as work:
        onnx_file = Path(work) / "classifier.onnx"
        onnx_file.write_bytes(b.read_engine(engines[0].name))  # the sha256-checked bytes
        calib = None if calibration is None else torch.from_numpy(np.asarray(calibration, np.float32))
        import_onnx_weights(module, onnx_file, torch.zeros(2, spec.channels, s, s), calibration=calib)
        x = np.random.default_rng(0).uniform(-1, 1, (4, spec.channels, s, s)).astype(np.float32)
        if calibration is not None:
            x = np.concatenate([x, np.asarray(calibration[:12], np.float32)])
        diff = parity(module, onnx_file, x)
    if not diff <= PARITY_TOL:
        raise ConfigError(
            f"teacher {p}: the imported {model} differs from the ONNX classifier by {diff:.3g} "
            f"(tolerance {PARITY_TOL}); pass the right --teacher-model"
        )
    module.requires_grad_(False)
    return Teacher(
        module.eval(),
        model,
        kwargs,
        tuple(b.labels),
        spec,
        f"bundle {b.name} ({engines[0].file} sha256 {engines[0].sha256[:12]})",
        diff,
        p,
    )


def _from_checkpoint(p: Path) -> Teacher:
    from ..checkpoint import load_checkpoint

    ck = load_checkpoint(p)
    plan = ck.config.get("export") or {}
    if plan.get("pipeline", "direct") != "direct" or plan.get("classifier_output") is not None:
        raise ConfigError(
            f"teacher checkpoint {p} deploys the {plan.get('pipeline')} pipeline; distill from a "
            f"direct classifier (or export it and pass the bundle)"
        )
    name = plan.get("classifier") or next(iter(ck.models))
    spec = ck.config["models"][name]
    module = ck.models[name].eval()
    module.requires_grad_(False)
    return Teacher(
        module,
        spec["registry"],
        dict(spec.get("kwargs", {})),
        ck.labels,
        _train_input(ck.input, f"teacher checkpoint {p}"),
        f"checkpoint {ck.path}",
    )
