"""``create_detector``: a face detector by name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import FaceDetector, NoDetector, RoiDetector
from .blazeface import SPECS, BlazeFaceDetector
from .merge import CascadeDetector, MergedDetector

DUAL = "blazeface-dual"  # short-range (close, occluded faces) + full-range (small, far faces), merged
CASCADE = "blazeface-cascade"  # short-range on every frame, full-range only when no close-up face was found
VERIFIED = "blazeface-verified"  # two-stage: low-threshold BlazeFace candidates confirmed by ofer's verifier CNN
# The default (benchmarks/detector_occlusion.py, report split: 59 faces of 21 people never used for tuning, every
# realistic occluder): the two-stage detector finds 86-100 % of faces under each occluder kind with 1 false face per
# kind (the cascade: 85-98 % with 2-3), and 89-92 % of faces rolled 45-90 degrees (the cascade 6-32 %). It costs about
# 2 ms more per full-frame pass than the cascade; in streams the full-frame pass runs only to acquire faces.
DEFAULT_NEURAL = VERIFIED
DETECTOR_NAMES = ("auto", "none", "roi", *SPECS, DUAL, CASCADE, VERIFIED)


def create_detector(
    name: str = "auto", *, threads: int | None = None, score_threshold: float | None = None, **kw: Any
) -> FaceDetector:
    """Make a face detector.

    Args:
        name: ``"auto"`` (the default neural detector, ``DEFAULT_NEURAL``), ``"none"`` (the frame is the face),
            ``"roi"`` (a fixed box: pass ``box=(x1, y1, x2, y2)``), or a neural model name
            (``"blazeface-short"``, ``"blazeface-full"``, ``"blazeface-dual"``: both, merged, or
            ``"blazeface-cascade"``: full-range only when short-range finds no close-up face, or
            ``"blazeface-verified"``: two-stage, candidates confirmed by a verifier that learned occlusion;
            ``score_threshold`` is then the minimum combined score, default chosen on the tuning split).
        threads: ONNX Runtime intra-op threads for neural detectors (``None``: its default).
        score_threshold: Minimum score for neural detectors (``None``: the model's default).
        **kw: Passed to the detector (``box`` for roi; ``nms_iou``, ``max_faces``, ``providers``, ``engine``
            (``auto``: LiteRT when ``ai-edge-litert`` is installed, else ONNX Runtime; ``litert``; ``onnxruntime``)
            for neural ones,
            ``check_geometry`` for single BlazeFace models, ``rotations``, ``cascade``, ``close_up``, ``fast_accept``
            for blazeface-verified).

    Raises:
        ConfigError: Unknown name or options that the detector does not take.
    """
    if not isinstance(name, str) or name.lower() not in DETECTOR_NAMES:
        raise ConfigError(f"unknown detector {name!r}; valid names: {', '.join(DETECTOR_NAMES)}")
    name = name.lower()
    if name == "none":
        _no_extra(name, kw)
        return NoDetector()
    if name == "roi":
        if "box" not in kw:
            raise ConfigError("detector 'roi' needs box=(x1, y1, x2, y2) in frame pixels")
        box = kw.pop("box")
        _no_extra(name, kw)
        return RoiDetector(box)
    variant = DEFAULT_NEURAL if name == "auto" else name
    if variant == VERIFIED:
        from .two_stage import TwoStageDetector

        known = {"nms_iou", "max_faces", "providers", "rotations", "cascade", "close_up", "fast_accept", "engine"}
        _no_extra(name, {k: v for k, v in kw.items() if k not in known})
        return TwoStageDetector(threads=threads, threshold=score_threshold, **kw)
    allowed = {"nms_iou", "max_faces", "providers", "model_path", "engine"} | (
        {"check_geometry"} if variant in SPECS else set()
    )
    _no_extra(name, {k: v for k, v in kw.items() if k not in allowed})
    if variant == CASCADE:
        near, far = (BlazeFaceDetector(v, threads=threads, score_threshold=score_threshold, **kw) for v in SPECS)
        return CascadeDetector(near, far, name=CASCADE)
    if variant == DUAL:
        # The two models run side by side, each on its share of the threads: a frame costs the slower model,
        # not both (with threads=1 they run one after the other).
        per_model = max(1, (threads or 2) // len(SPECS))
        parts = [BlazeFaceDetector(v, threads=per_model, score_threshold=score_threshold, **kw) for v in SPECS]
        return MergedDetector(parts, name=DUAL, parallel=threads is None or threads >= len(SPECS))
    return BlazeFaceDetector(variant, threads=threads, score_threshold=score_threshold, **kw)


def _no_extra(name: str, kw: dict[str, Any]) -> None:
    if kw:
        raise ConfigError(f"detector {name!r} does not take option(s) {sorted(kw)}; remove them")
