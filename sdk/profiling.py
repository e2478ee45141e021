"""``Recognizer.profile()``: the recognizer's engines and stages measured with :mod:`runtime.profiling`.

Engines: every engine the recognizer runs (classifier, and the bundle's other classifier precisions with
``engines="all"``; inpainter; occlusion estimator; each engine inside the detector), on real crops of the frame.
Stages: detect, crop, then the pipeline's own stages as it times them (occlusion, normalize, inpaint, classify),
the frame check and building the predictions, and the total ``predict()``: the stages add up to the total.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from runtime.errors import ConfigError, OferError
from runtime.frames import as_bgr_frame
from runtime.preprocess import to_tensor
from runtime.processor import Face
from runtime.profiling import EngineProfile, ProfileReport, interleaved_stages, profile_engine

if TYPE_CHECKING:
    from .recognizer import Recognizer


def _first_frame(frames: Any) -> tuple[np.ndarray, str]:
    if frames is None:
        # No frame given: a smooth synthetic 640x360 frame (the detector usually finds no face in it).
        y, x = np.mgrid[0:360, 0:640]
        img = ((x + y) % 256).astype(np.uint8)
        return np.dstack([img, img, img]), "synthetic 640x360 (no frame given)"
    if isinstance(frames, (np.ndarray, str, os.PathLike)) and not (isinstance(frames, np.ndarray) and frames.ndim == 4):
        first = frames
    else:
        first = next(iter(frames), None)
    name = str(first) if isinstance(first, (str, os.PathLike)) else "frame"
    return as_bgr_frame(first), name


def _other_engines(rec: "Recognizer") -> Iterable[tuple[Any, Any]]:
    """The bundle's other classifier engines that open with the recognizer's backend (errors as strings)."""
    from runtime.backends import BACKEND_NAMES, open_engine

    backend = getattr(rec.classifier, "backend", "auto")
    backend = backend if backend in BACKEND_NAMES else "auto"
    loaded = getattr(rec.classifier, "path", None)
    for spec in rec.bundle.find_engines("classifier"):
        if loaded is not None and rec.bundle.engine_path(spec.name) == loaded:
            continue
        try:
            yield spec, open_engine(rec.bundle, spec, backend=backend, threads=getattr(rec.classifier, "threads", None))
        except OferError as exc:
            yield spec, str(exc)


def _is_engine(obj: Any) -> bool:
    return (
        callable(getattr(obj, "run", None)) and hasattr(obj, "input_names") and callable(getattr(obj, "describe", None))
    )


def _detector_engines(detector: Any, label: str | None = None, depth: int = 0) -> list[tuple[str, Any]]:
    """Every engine inside a detector: its own, each part's of a merged detector, and those of the models it
    holds (landmarks, a verifier...), labelled ``detector NAME [ATTRIBUTE]``; ``none``/``roi`` have none."""
    label = label or f"detector {getattr(detector, 'name', 'detector')}"
    if depth > 2 or detector is None:
        return []
    out: list[tuple[str, Any]] = []
    for key, value in vars(detector).items() if hasattr(detector, "__dict__") else ():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if _is_engine(item):
                out.append((label if key == "engine" else f"{label} {key}", item))
            elif (
                hasattr(item, "__dict__")
                and not isinstance(item, (np.ndarray, type))
                and (hasattr(item, "detect") or any(_is_engine(v) for v in vars(item).values()))
            ):
                name = getattr(item, "name", None)
                out += _detector_engines(
                    item, f"detector {name}" if key == "detectors" and name else f"{label} {key}", depth + 1
                )
    return out


def _pipeline_inputs(rec: "Recognizer", crops: list[np.ndarray]) -> dict[str, Any]:
    """``role -> batch -> feed`` with real crops (repeated to the batch) for the pipeline's engines."""
    from runtime.pipelines import InpaintPipeline

    spec = rec.bundle.input

    def tensor(b: int) -> np.ndarray:
        return to_tensor([crops[i % len(crops)] for i in range(b)], spec)

    feeds: dict[str, Any] = {"classifier": lambda b: {rec.classifier.input_names[0]: tensor(b)}}
    pipe = rec.pipeline
    inpaint = pipe if isinstance(pipe, InpaintPipeline) else getattr(pipe, "inpaint", None)
    if inpaint is not None:
        masks = inpaint.estimator.estimate(crops).masks

        def inpainter_feed(b: int) -> dict[str, np.ndarray]:
            feed = {inpaint._image_input: tensor(b)}
            if inpaint._mask_input is not None:
                feed[inpaint._mask_input] = inpaint.mask_tensor(np.stack([masks[i % len(masks)] for i in range(b)]))
            return feed

        feeds["inpainter"] = inpainter_feed
    if "occlusion_estimator" in rec.engines:
        est = rec.engines["occlusion_estimator"]
        feeds["occlusion_estimator"] = lambda b: {est.input_names[0]: tensor(b)}
    return feeds


def _spec_of(rec: "Recognizer", role: str, engine: Any) -> Any:
    path = getattr(engine, "path", None)
    return next((s for s in rec.bundle.find_engines(role) if rec.bundle.engine_path(s.name) == path), None)


def profile_recognizer(
    rec: "Recognizer",
    frames: Any = None,
    *,
    iters: int = 100,
    batch_sizes: Sequence[int] = (1, 8),
    warmup: int = 10,
    engines: str = "all",
) -> ProfileReport:
    """See :meth:`sdk.Recognizer.profile`."""
    if engines not in ("all", "loaded"):
        raise ConfigError(f"engines must be 'all' or 'loaded', got {engines!r}")
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {batch_sizes!r}")
    frame, frame_name = _first_frame(frames)
    proc = rec.processor
    dets, _ = proc.find_faces(frame)
    h, w = frame.shape[:2]
    faces = dets or [Face((w / 2 - h / 4, h / 4, w / 2 + h / 4, 3 * h / 4), 0.0)]  # centre box if no face
    crops = proc.crop(frame, faces)
    result = proc.classify(crops)

    def frame_check_and_predictions() -> None:
        as_bgr_frame(frame)
        proc.predictions(faces, result, timings_ms=dict(result.timings_ms))

    # detect and crop timed as callables; the pipeline's stages (occlusion, normalize, inpaint, classify) as the
    # pipeline itself times them while it runs, so they are exactly what predict() runs and add up to it; all of
    # them round-robin with the total, so a busy machine slows them alike
    stage_profiles = interleaved_stages(
        [
            ("detect", lambda: proc.find_faces(frame)),
            ("crop", lambda: proc.crop(frame, faces)),
            (None, lambda: proc.classify(crops).timings_ms),
            ("frame check + predictions", frame_check_and_predictions),
            ("total (predict)", lambda: rec.predict(frame)),
        ],
        iters=iters,
        warmup=warmup,
        faces=len(faces),
    )

    feeds = _pipeline_inputs(rec, crops)
    engine_profiles: list[EngineProfile] = []
    candidates: list[tuple[str, Any, Any]] = [
        ("classifier", _spec_of(rec, "classifier", rec.classifier), rec.classifier)
    ]
    if engines == "all":
        candidates += [("classifier", spec, eng) for spec, eng in _other_engines(rec)]
    candidates += [
        (role, _spec_of(rec, role, rec.engines[role]), rec.engines[role])
        for role in ("occlusion_estimator", "inpainter")
        if role in rec.engines
    ]
    for role, espec, engine in candidates:
        label = f"{role} {espec.name} {espec.format}/{espec.precision}" if espec is not None else role
        if isinstance(engine, str):
            engine_profiles += [EngineProfile(label, b, None, error=engine) for b in batch_sizes]
            continue
        info = {**engine.describe(), **({"precision": espec.precision, "format": espec.format} if espec else {})}
        engine_profiles += profile_engine(
            label, engine, batch_sizes=batch_sizes, iters=iters, warmup=warmup, inputs=feeds[role], info=info
        )
    for name, det_engine in _detector_engines(rec.detector):  # one letterboxed frame (or face) at a time
        engine_profiles += profile_engine(name, det_engine, batch_sizes=(1,), iters=iters, warmup=warmup)
    meta = {
        "title": f"ofer profile: {rec.bundle.name}, pipeline {rec.pipeline_name}, detector {rec.detector_name}, "
        f"{rec.classifier.describe().get('device')}",
        "bundle": str(rec.bundle.path),
        "frame": frame_name,
        "frame_shape": list(frame.shape),
        "faces_detected": len(dets),
        "iters": iters,
        "warmup": warmup,
        "batch_sizes": list(batch_sizes),
        "pipeline": rec.pipeline_name,
        "routes": list(result.per_face),
        "classifier": rec.classifier.describe(),
        "detector": rec.detector_name,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    if not dets:
        meta["note"] = (
            "no face detected in the frame: the pipeline stages ran on a centre box, so they do not add up to the total"
        )
    return ProfileReport(engine_profiles, stage_profiles, meta)
