"""``Recognizer.profile()``: the recognizer's engines and stages measured with :mod:`runtime.profiling`."""
from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from runtime.errors import ConfigError, OferError
from runtime.frames import as_bgr_frame
from runtime.preprocess import to_tensor
from runtime.processor import Face
from runtime.profiling import EngineProfile, ProfileReport, profile_engine, profile_stages

if TYPE_CHECKING:
    from .recognizer import Recognizer


def _first_frame(frames: Any) -> tuple[np.ndarray, str]:
    if frames is None:
        # No frame given: a smooth synthetic 640x360 frame (the detector usually finds no face in it).
        y, x = np.mgrid[0:360, 0:640]
        img = ((x + y) % 256).astype(np.uint8)
        return np.dstack([img, img, img]), "synthetic 640x360 (no frame given)"
    if isinstance(frames, (np.ndarray, str, os.PathLike)) and not (isinstance(frames, np.ndarray)
                                                                      and frames.ndim == 4):
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


def _detector_engines(detector: Any) -> list[tuple[str, Any]]:
    """The engines inside a detector (a merged detector has one per part; ``none``/``roi`` have none)."""
    parts = getattr(detector, "detectors", None)
    if parts is not None:
        return [e for part in parts for e in _detector_engines(part)]
    engine = getattr(detector, "engine", None)
    return [(str(getattr(detector, "name", "detector")), engine)] if engine is not None else []


def profile_recognizer(rec: "Recognizer", frames: Any = None, *, iters: int = 100,
                       batch_sizes: Sequence[int] = (1, 8), warmup: int = 10, engines: str = "all") -> ProfileReport:
    """See :meth:`sdk.Recognizer.profile`."""
    if engines not in ("all", "loaded"):
        raise ConfigError(f"engines must be 'all' or 'loaded', got {engines!r}")
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {batch_sizes!r}")
    frame, frame_name = _first_frame(frames)
    spec = rec.bundle.input
    proc = rec.processor
    dets, _ = proc.find_faces(frame)
    h, w = frame.shape[:2]
    faces = dets or [Face((w / 2 - h / 4, h / 4, w / 2 + h / 4, 3 * h / 4), 0.0)]  # centre box if no face
    crops = proc.crop(frame, faces)
    tensor = to_tensor(crops, spec)
    inp = rec.classifier.input_names[0]
    stages = {
        "detect": lambda: proc.find_faces(frame),
        "crop": lambda: proc.crop(frame, faces),
        "normalize": lambda: to_tensor(crops, spec),
        "classify": lambda: rec.classifier.run({inp: tensor}),
        "total (predict)": lambda: rec.predict(frame),
    }
    stage_profiles = profile_stages(stages, iters=iters, warmup=warmup, faces=len(faces))

    def real_batch(b: int) -> dict[str, np.ndarray]:
        return {inp: to_tensor([crops[i % len(crops)] for i in range(b)], spec)}

    loaded_spec = next((s for s in rec.bundle.find_engines("classifier")
                        if rec.bundle.engine_path(s.name) == getattr(rec.classifier, "path", None)), None)
    engine_profiles: list[EngineProfile] = []
    candidates: list[tuple[Any, Any]] = [(loaded_spec, rec.classifier)]
    if engines == "all":
        candidates += list(_other_engines(rec))
    for espec, engine in candidates:
        label = f"{espec.name} {espec.format}/{espec.precision}" if espec is not None else "classifier"
        if isinstance(engine, str):
            engine_profiles += [EngineProfile(label, b, None, error=engine) for b in batch_sizes]
            continue
        info = {**engine.describe(), **({"precision": espec.precision, "format": espec.format} if espec else {})}
        engine_profiles += profile_engine(label, engine, batch_sizes=batch_sizes, iters=iters, warmup=warmup,
                                          inputs=real_batch, info=info)
    for name, det_engine in _detector_engines(rec.detector):  # one letterboxed frame at a time
        engine_profiles += profile_engine(f"detector {name}", det_engine, batch_sizes=(1,), iters=iters,
                                          warmup=warmup)
    meta = {"title": f"ofer profile: {rec.bundle.name}, detector {rec.detector_name}, "
                     f"{rec.classifier.describe().get('device')}",
            "bundle": str(rec.bundle.path), "frame": frame_name, "frame_shape": list(frame.shape),
            "faces_detected": len(dets), "iters": iters, "warmup": warmup, "batch_sizes": list(batch_sizes),
            "classifier": rec.classifier.describe(), "detector": rec.detector_name,
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count()}}
    if not dets:
        meta["note"] = "no face detected in the frame: crop/normalize/classify ran on a centre box"
    return ProfileReport(engine_profiles, stage_profiles, meta)
