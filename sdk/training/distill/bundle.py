"""Put a headset student (``ofer distill --protocols headset``) into a bundle beside its general classifier."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError


def measured(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The engine field ``measured`` (:mod:`runtime.routing`) from a distill checkpoint's ``metrics``: its kept
    epoch's held-out agreement per occluder beside the direct classifier's on the same views (None if not known)."""
    from runtime.routing import measured_record

    best, direct = metrics.get("best") or {}, metrics.get("direct") or {}
    per = {
        p: {"agreement": float(best[p]), "direct": float(direct[p])}
        for p in best
        if p in direct and p not in ("epoch", "clean", "occluded_mean") and not p.endswith("_kappa")
    }
    if not per:
        return None
    people = (metrics.get("held_out") or {}).get("people")
    return measured_record(
        per,
        f"held-out people ({people}): agreement with the teacher's clean answer, occluders' "
        f"true masks; kept epoch {best.get('epoch')}",
        people=people if isinstance(people, int) else None,
    )


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
        raise ConfigError(
            f"headset student {checkpoint} takes input {mine}; the bundle's classifier {theirs}: "
            "distill the student from this bundle (ofer distill --teacher BUNDLE)"
        )
    fp32 = EXPORT_FORMATS["fp32"]
    with tempfile.TemporaryDirectory(prefix="ofer-headset-") as work:
        onnx_path = Path(work) / fp32.file_name(HEADSET_ROLE)
        export_onnx(export_modules(ck)["classifier"], sample_batch(b.input), onnx_path, output_names=("logits",))
        add_engines(b.path, [fp32.entry(HEADSET_ROLE, onnx_path)], force=force)
    return record_measured(b.path, HEADSET_ROLE, ck.config.get("metrics") or {})
