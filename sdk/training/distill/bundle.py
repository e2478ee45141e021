"""Put a headset student (``ofer distill --protocols headset``) into a bundle beside its general classifier."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError


def add_headset_student(bundle_dir: str | Path, checkpoint: str | Path, *, force: bool = False) -> Any:
    """Export a distilled checkpoint's student to ONNX and add it to ``bundle_dir`` as engine ``classifier_headset``.

    The ``auto`` pipeline then sends faces whose upper face is covered to it (``runtime.pipelines``).

    Raises:
        ConfigError: labels or input size differ from the bundle's.
        BundleError: the bundle already has a headset engine (unless ``force``).
    """
    from export.onnx import export_onnx
    from runtime.bundle import add_engines, load_bundle
    from runtime.pipelines import HEADSET_ROLE
    from runtime.preprocess import to_tensor

    from ..checkpoint import load_checkpoint

    b = load_bundle(bundle_dir)
    ck = load_checkpoint(checkpoint)
    if tuple(ck.labels) != tuple(b.labels):
        raise ConfigError(f"headset student {checkpoint} has labels {ck.labels}, the bundle {b.labels}")
    tensor = ("size", "channels", "color", "scale", "mean", "std", "layout")  # what makes the tensor; not crop geometry
    mine, theirs = ({k: s.to_json()[k] for k in tensor} for s in (ck.input, b.input))
    if mine != theirs:
        raise ConfigError(f"headset student {checkpoint} takes input {mine}; the bundle's classifier {theirs}: "
                          "distill the student from this bundle (ofer distill --teacher BUNDLE)")
    plan = ck.config.get("export") or {}
    model = ck.models[plan.get("classifier", "student")].eval()
    h, w = b.input.size
    shape = (4, h, w) if b.input.channels == 1 else (4, h, w, 3)
    sample = to_tensor(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), b.input)
    with tempfile.TemporaryDirectory(prefix="ofer-headset-") as work:
        onnx_path = Path(work) / "classifier_headset.onnx"
        export_onnx(model, sample, onnx_path, output_names=("logits",))
        return add_engines(b.path, [{"name": HEADSET_ROLE, "path": onnx_path, "file": "classifier_headset.onnx",
                                     "format": "onnx", "precision": "fp32", "role": HEADSET_ROLE,
                                     "output": "logits"}], force=force)
