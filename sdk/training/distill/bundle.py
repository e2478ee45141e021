"""Put a headset student (``ofer distill --protocols headset``) into a bundle beside its general classifier."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError


def add_headset_student(bundle_dir: str | Path, checkpoint: str | Path, *, force: bool = False) -> Any:
    """Export a distilled checkpoint's student to ONNX and add it to ``bundle_dir`` as engine ``classifier_headset``.

    The ``auto`` pipeline then sends faces whose upper face is covered to it (``runtime.pipelines``).

    Raises:
        ConfigError: labels or input size differ from the bundle's.
        BundleError: the bundle already has a headset engine (unless ``force``).
    """
    from export.formats import EXPORT_FORMATS
    from export.modules import export_modules, sample_batch
    from export.onnx import export_onnx
    from runtime.bundle import add_engines, load_bundle
    from runtime.pipelines import HEADSET_ROLE

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
    fp32 = EXPORT_FORMATS["fp32"]
    with tempfile.TemporaryDirectory(prefix="ofer-headset-") as work:
        onnx_path = Path(work) / fp32.file_name(HEADSET_ROLE)
        export_onnx(export_modules(ck)["classifier"], sample_batch(b.input), onnx_path, output_names=("logits",))
        return add_engines(b.path, [fp32.entry(HEADSET_ROLE, onnx_path)], force=force)
