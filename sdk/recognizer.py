"""``sdk.Recognizer``: frames in, one :class:`Prediction` per face out."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from runtime.bundle import Bundle, load_bundle
from runtime.errors import ConfigError, InputError
from runtime.frames import as_bgr_frame
from runtime.preprocess import crop_face

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default_bundle"


@dataclass(frozen=True)
class Prediction:
    """The result for one face in one frame.

    Attributes:
        box: Face box ``(x1, y1, x2, y2)`` in frame pixels.
        label: The most probable expression.
        confidence: Its probability.
        scores: Probability of every label, in the bundle's label order.
        pipeline: Which pipeline produced it (``direct`` or ``inpaint``).
        timings_ms: Milliseconds per stage (``decode``, ``detect``, ``crop``, ``normalize``, ``classify``,
            ``total``); stages shared by several faces of a frame are reported for the whole frame.
        detection_score: The detector's confidence for the box.
        occlusion: Estimated covered fraction of the face, when known.
        track_id: Stable id of the face across frames when tracking is on.
    """

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    scores: dict[str, float]
    pipeline: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    detection_score: float = 1.0
    occlusion: float | None = None
    track_id: int | None = None

    @classmethod
    def from_probabilities(cls, labels: Sequence[str], box: Sequence[float], probs: np.ndarray, *, pipeline: str,
                           timings_ms: dict[str, float], detection_score: float = 1.0,
                           track_id: int | None = None) -> "Prediction":
        """The prediction for one face from its box and probability vector (label order = ``labels``)."""
        top = int(np.argmax(probs))
        return cls(box=tuple(float(v) for v in box), label=labels[top], confidence=float(probs[top]),
                   scores={n: float(s) for n, s in zip(labels, probs)}, pipeline=pipeline, timings_ms=timings_ms,
                   detection_score=float(detection_score), track_id=track_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"box": [round(float(v), 2) for v in self.box], "label": self.label,
                "confidence": round(self.confidence, 6), "scores": {k: round(v, 6) for k, v in self.scores.items()},
                "pipeline": self.pipeline, "detection_score": round(self.detection_score, 4),
                "occlusion": self.occlusion, "track_id": self.track_id,
                "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()}}


def _parse_roi(roi: Any) -> tuple[float, float, float, float] | None:
    if roi is None:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in roi)
    except (TypeError, ValueError):
        raise ConfigError(f"roi must be (x1, y1, x2, y2) in pixels, got {roi!r}") from None
    if not (x2 > x1 and y2 > y1):
        raise ConfigError(f"roi {roi!r} is empty: need x2 > x1 and y2 > y1")
    return x1, y1, x2, y2


class Recognizer:
    """Facial expression recognition on (occluded) faces.

    Args:
        bundle: A bundle folder (``manifest.json`` + engines), a loaded :class:`~runtime.bundle.Bundle`, or
            ``None`` for the default bundle shipped with ofer.
        backend: ``auto`` (the fastest backend that actually loads here), ``onnxruntime``, ``onnxruntime-cpu``,
            ``onnxruntime-cuda`` or ``onnxruntime-tensorrt``.
        detector: ``auto`` (the default neural face detector, which survives headsets), ``none`` (every frame is
            already a face crop) or ``roi`` (the face is at a fixed place: pass ``roi``).
        pipeline: ``auto``, ``direct`` or ``inpaint``.
        roi: ``(x1, y1, x2, y2)`` of the face for ``detector="roi"``.
        precision: Engine precision to load (``fp32``, ``fp16``, ``int8``); default: the most accurate available.
        threads: CPU threads for each engine (``None``: the backend's default).
        max_faces: Keep at most this many faces per frame (largest first); ``None`` keeps all.
        min_detection_score: Detections below this confidence are ignored.

    Example:
        >>> import cv2, sdk
        >>> rec = sdk.Recognizer()
        >>> for p in rec.predict(cv2.imread("face.jpg")):
        ...     print(p.label, p.confidence, p.box)
    """

    def __init__(self, bundle: str | os.PathLike[str] | Bundle | None = None, *, backend: str = "auto",
                 detector: str = "auto", pipeline: str = "auto", roi: Sequence[float] | None = None,
                 precision: str | None = None, threads: int | None = None, max_faces: int | None = None,
                 min_detection_score: float | None = None) -> None:
        from runtime.backends import open_engine, select_engine
        from runtime.pipelines import DirectPipeline, resolve_pipeline

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(DEFAULT_BUNDLE if bundle is None else bundle)
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise ConfigError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.max_faces = max_faces
        self.roi = _parse_roi(roi)
        self.detector_name = detector
        self.detector = self._make_detector(detector, threads, min_detection_score)
        self.pipeline_name = resolve_pipeline(self.bundle, pipeline)
        if self.pipeline_name != "direct":
            raise ConfigError(f"pipeline {self.pipeline_name!r} is not available in this version of ofer; "
                              "use pipeline='direct'")
        spec = select_engine(self.bundle, "classifier", backend=backend, precision=precision)
        self.classifier = open_engine(self.bundle, spec, backend=backend, threads=threads)
        self.pipeline = DirectPipeline(self.bundle, self.classifier, output_kind=spec.output)
        self.labels = self.bundle.labels

    def _make_detector(self, name: str, threads: int | None, min_score: float | None) -> Any:
        from runtime.detection import create_detector

        if name == "roi" and self.roi is None:
            raise ConfigError("detector='roi' needs roi=(x1, y1, x2, y2): the fixed face box in frame pixels")
        if name != "roi" and self.roi is not None:
            raise ConfigError(f"roi=... is only used with detector='roi' (got detector={name!r})")
        kwargs: dict[str, Any] = {}
        if name == "roi":
            kwargs["box"] = self.roi
        elif name not in ("none",):
            kwargs["threads"] = threads
            if min_score is not None:
                kwargs["score_threshold"] = min_score
        return create_detector(name, **kwargs)

    # ------------------------------------------------------------------------------------------------ inference
    def detect_and_crop(self, frame: np.ndarray) -> tuple[list[Any], list[np.ndarray], dict[str, float]]:
        """Detect faces in a validated BGR frame (largest first, at most ``max_faces``) and crop each one.

        Returns the detections, their crops (the bundle's input size and colour) and ``detect``/``crop`` ms.
        """
        t0 = time.perf_counter()
        dets = sorted(self.detector.detect(frame), key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        if self.max_faces is not None:
            dets = dets[: self.max_faces]
        t1 = time.perf_counter()
        crops = [crop_face(frame, d.box, self.bundle.input) for d in dets]
        return dets, crops, {"detect": (t1 - t0) * 1e3, "crop": (time.perf_counter() - t1) * 1e3}

    def classify_crops(self, crops: list[np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
        """Probabilities ``(len(crops), n_labels)`` for crops from :meth:`detect_and_crop`, and stage ms."""
        if not crops:
            return np.zeros((0, len(self.labels)), np.float32), {"normalize": 0.0, "classify": 0.0}
        out = self.pipeline.run(crops)
        return out.probabilities, out.timings_ms

    def predict(self, frame: np.ndarray | str | os.PathLike[str]) -> list[Prediction]:
        """Recognise the expression of every face in one frame.

        Args:
            frame: BGR uint8 image (``H x W x 3``) or grayscale (``H x W``), or the path of an image file.

        Returns:
            One :class:`Prediction` per face, largest face first (empty when no face is found).
        """
        return self.predict_batch([frame])[0]

    def predict_batch(self, frames: Iterable[np.ndarray | str | os.PathLike[str]]) -> list[list[Prediction]]:
        """Like :meth:`predict` for many frames; the faces of all frames go through the classifier together."""
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4:
                raise InputError(f"predict_batch takes a list of frames or an N x H x W x 3 array, got shape "
                                 f"{frames.shape}; for one frame use predict()")
            frames = list(frames)
        if frames is None or isinstance(frames, (str, os.PathLike)):
            raise InputError("predict_batch takes a list of frames; for one frame use predict()")
        t_start = time.perf_counter()
        per_frame: list[tuple[list[Any], dict[str, float]]] = []
        crops: list[np.ndarray] = []
        for i, raw in enumerate(frames):
            t0 = time.perf_counter()
            frame = as_bgr_frame(raw, name=f"frame {i}" if i else "frame")
            decode_ms = (time.perf_counter() - t0) * 1e3 if isinstance(raw, (str, os.PathLike)) else 0.0
            dets, face_crops, timing = self.detect_and_crop(frame)
            timing["decode"] = decode_ms
            crops.extend(face_crops)
            per_frame.append((dets, timing))
        if not per_frame:
            return []
        results: list[list[Prediction]] = []
        probs, stage_ms = self.classify_crops(crops)
        total = (time.perf_counter() - t_start) * 1e3
        k = 0
        for dets, timing in per_frame:
            timings = {**timing, **stage_ms, "total": total}
            preds = [Prediction.from_probabilities(self.labels, d.box, probs[k + j], pipeline=self.pipeline.name,
                                                   timings_ms=dict(timings), detection_score=d.score)
                     for j, d in enumerate(dets)]
            k += len(dets)
            results.append(preds)
        return results

    # ------------------------------------------------------------------------------------- streaming, profiling
    def stream(self, source: Any, *, mode: str = "auto", smooth: str | None = None, queue_size: int = 4,
               max_missed: int = 15, pace_fps: float | None = None) -> Any:
        """Recognise a stream of frames with tracking and smoothing; capture, detection and inference overlap.

        Args:
            source: Camera index, video file, folder of images, image file or any iterable of BGR frames.
            mode: ``offline`` (every frame, in order), ``realtime`` (drop stale frames, never lag behind) or
                ``auto`` (realtime for cameras, offline otherwise).
            smooth: ``None``, ``"ema:ALPHA"`` (e.g. ``"ema:0.5"``) or ``"window:N"`` (e.g. ``"window:5"``).
            queue_size: Frames each queue holds in offline mode.
            max_missed: Frames a face may go undetected and keep its track id.
            pace_fps: Read a file or iterator no faster than this (to emulate a live camera).

        Returns:
            A :class:`runtime.streaming.Stream`: iterate it for one :class:`~runtime.streaming.StreamResult`
            per processed frame; use it as a context manager or call ``close()`` to stop early.

        Example:
            >>> with rec.stream(0, smooth="ema:0.5") as results:
            ...     for r in results:
            ...         print(r.frame_index, [(p.track_id, p.label) for p in r.predictions], r.latency_ms)
        """
        from .streaming import stream_recognizer

        return stream_recognizer(self, source, mode=mode, smooth=smooth, queue_size=queue_size,
                                 max_missed=max_missed, pace_fps=pace_fps)

    def profile(self, frames: Any = None, *, iters: int = 100, batch_sizes: Sequence[int] = (1, 8),
                warmup: int = 10, engines: str = "all") -> Any:
        """Measure every engine on its own and every stage (detect, crop, normalize, classify) on a real frame.

        Args:
            frames: A frame, an image path or frames (the first is used); ``None`` uses a synthetic frame.
            iters: Timed calls per measurement (after ``warmup`` untimed ones).
            batch_sizes: Batch sizes for the classifier engines (real crops from the frame, repeated).
            engines: ``all`` (every classifier engine of the bundle that loads with this backend, and the
                detector's) or ``loaded`` (the engines this recognizer uses).

        Returns:
            A :class:`runtime.profiling.ProfileReport` (``.table()``, ``.to_dict()``, ``.save_json()``,
            ``.save_png()``) with mean/p50/p90/p95/p99 ms and items/s.
        """
        from .profiling import profile_recognizer

        return profile_recognizer(self, frames, iters=iters, batch_sizes=batch_sizes, warmup=warmup,
                                  engines=engines)

    def describe(self) -> dict[str, Any]:
        """What is loaded: bundle, labels, detector, pipeline and the engine as it actually loaded."""
        return {"bundle": str(self.bundle.path), "name": self.bundle.name, "labels": list(self.labels),
                "detector": self.detector_name, "pipeline": self.pipeline_name,
                "classifier": self.classifier.describe()}

    def __repr__(self) -> str:
        d = self.classifier.describe()
        return (f"Recognizer(bundle={self.bundle.name!r}, detector={self.detector_name!r}, "
                f"pipeline={self.pipeline_name!r}, backend={d.get('backend')!r}, device={d.get('device')!r})")
