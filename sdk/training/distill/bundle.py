"""Put a headset student (``ofer distill --protocols headset``) into a bundle beside its general classifier."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError


def measured(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The engine field ``measured`` (:mod:`runtime.routing`) from a distill checkpoint's ``metrics``: its kept
    epoch's held-out agreement per occluder beside the direct classifier's on the same views (None if not known)."""
    from runtime.routing import measured_record

    best, direct = metrics.get("best") or {}, metrics.get("direct") or {}
    per = {p: {"agreement": float(best[p]), "direct": float(direct[p])} for p in best
           if p in direct and p not in ("epoch", "clean", "occluded_mean") and not p.endswith("_kappa")}
    if not per:
        return None
    people = (metrics.get("held_out") or {}).get("people")
    return measured_record(per, f"held-out people ({people}): agreement with the teacher's clean answer, occluders' "
                                f"true masks; kept epoch {best.get('epoch')}")


def record_measured(bundle_dir: str | Path, engine: str, metrics: dict[str, Any]) -> Any:
    """Record :func:`measured` on ``engine`` so that ``auto`` routes each occlusion kind to the best route; returns
    the bundle (unchanged when the metrics do not say)."""
    from runtime.bundle import annotate_engine, load_bundle

    rec = measured(metrics)
    return load_bundle(bundle_dir) if rec is None else annotate_engine(bundle_dir, engine, {"measured": rec})


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
    size = int(ck.config["input"]["size"])
    if tuple(b.input.size) != (size, size) or int(ck.config["input"]["channels"]) != b.input.channels:
        raise ConfigError(f"headset student {checkpoint} takes {size}x{size} inputs with "
                          f"{ck.config['input']['channels']} channel(s); the bundle {b.input.size}, {b.input.channels}")
    plan = ck.config.get("export") or {}
    model = ck.models[plan.get("classifier", "student")].eval()
    h, w = b.input.size
    shape = (4, h, w) if b.input.channels == 1 else (4, h, w, 3)
    sample = to_tensor(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), b.input)
    with tempfile.TemporaryDirectory(prefix="ofer-headset-") as work:
        onnx_path = Path(work) / "classifier_headset.onnx"
        export_onnx(model, sample, onnx_path, output_names=("logits",))
        add_engines(b.path, [{"name": HEADSET_ROLE, "path": onnx_path, "file": "classifier_headset.onnx",
                                     "format": "onnx", "precision": "fp32", "role": HEADSET_ROLE,
                                     "output": "logits"}], force=force)
    return record_measured(b.path, HEADSET_ROLE, ck.config.get("metrics") or {})
