"""``sdk.Recognizer``: frames in, one :class:`Prediction` per face out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from runtime.bundle import Bundle, load_bundle
from runtime.errors import ConfigError, InputError
from runtime.prediction import Prediction

__all__ = ["Recognizer", "Prediction", "DEFAULT_BUNDLE"]

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default_bundle"


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
        backend: ``auto`` (the fastest backend that actually loads here: a TensorRT engine of the bundle, else
            ONNX Runtime with TensorRT/CUDA/CPU), ``tensorrt``, ``onnxruntime``, ``onnxruntime-cpu``,
            ``onnxruntime-cuda`` or ``onnxruntime-tensorrt``; ``describe()`` says what loaded and what was skipped.
            The face detector runs on LiteRT when ``ai-edge-litert`` is installed (``pip install 'ofer[litert]'``),
            else on ONNX Runtime; with an ``onnxruntime*`` backend it runs on ONNX Runtime too.
        detector: ``auto`` (the default neural face detector, which survives headsets), ``none`` (every frame is
            already a face crop) or ``roi`` (the face is at a fixed place: pass ``roi``).
        pipeline: ``auto`` (per face: ``inpaint`` when the occlusion estimate reaches ``occlusion_threshold`` and
            the bundle has an inpainter, else ``direct``), ``direct`` or ``inpaint``.
        roi: ``(x1, y1, x2, y2)`` of the face for ``detector="roi"``.
        precision: Engine precision to load (``fp32``, ``fp16``, ``int8``); default: the most accurate available.
        threads: CPU threads for each engine. ``None``: 1, chosen by measurement: these models are small, and on a
            2-core CPU ``predict()`` took p50 4.7 ms with 1 thread per engine against 6.5 ms with 2
            (``benchmarks/runtime_latency.py``); streams run their stages in parallel threads instead.
        max_faces: Keep at most this many faces per frame (largest first); ``None`` keeps all.
        min_detection_score: Detections below this confidence are ignored.
        occlusion: What is covered: ``None`` (estimate it: the bundle's ``occlusion_estimator`` engine, else the
            built-in estimator), ``"image-stats"`` (always the built-in estimator), a known region
            (``"upper_half"`` for a VR headset, ``"lower_half"``, ``"eyes"``, ``"mouth"``) or a 2-D mask of the
            face crop (1 = covered), e.g. for ``detector="roi"`` headset companions; ``"off"``: no estimate
            (``Prediction.occlusion`` is ``None``; saves ~0.4 ms per face where nothing routes by it, i.e. a bundle
            without an inpainter or headset student, or ``pipeline="direct"``).
        occlusion_threshold: Covered fraction of the face from which ``auto`` inpaints a face.
        align: Rotate each face crop upright before classifying it (roll from the detector's eye keypoints), so
            tilted faces are classified like upright ones; ``False`` crops axis-aligned boxes.
        min_face: Smallest face width to find, in frame pixels. The detector alone finds faces down to about 4 % of
            the frame's longer side (about 80 px in a 1920x1080 frame); with ``min_face`` it also searches
            overlapping tiles of large frames (:class:`runtime.detection.tiling.TiledDetector`), at the cost of one
            detector pass per tile. ``None``: no tiling (fast).

    Example:
        >>> import cv2, sdk
        >>> rec = sdk.Recognizer()
        >>> for p in rec.predict(cv2.imread("face.jpg")):
        ...     print(p.label, p.confidence, p.box)
    """

    def __init__(
        self,
        bundle: str | os.PathLike[str] | Bundle | None = None,
        *,
        backend: str = "auto",
        detector: str = "auto",
        pipeline: str = "auto",
        roi: Sequence[float] | None = None,
        precision: str | None = None,
        threads: int | None = None,
        max_faces: int | None = None,
        min_detection_score: float | None = None,
        occlusion: Any = None,
        occlusion_threshold: float = 0.25,
        align: bool = True,
        min_face: float | None = None,
    ) -> None:
        from runtime.backends import open_for_role
        from runtime.pipelines import build_pipeline
        from runtime.processor import FrameProcessor

        if not isinstance(bundle, Bundle):
            bundle = load_bundle(DEFAULT_BUNDLE if bundle is None else bundle)
        self.bundle = bundle
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise ConfigError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.max_faces = max_faces
        self.roi = _parse_roi(roi)
        self.detector_name = detector
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        threads = 1 if threads is None else threads
        if min_face is not None and detector in ("none", "roi"):
            raise ConfigError(f"min_face tiles the frame for a face detector; detector={detector!r} has none")

        def make_detector() -> Any:  # also builds the extra detectors of parallel stream workers
            det = self._make_detector(detector, threads, min_detection_score, backend)
            if min_face is not None:
                from runtime.detection.tiling import TiledDetector

                det = TiledDetector(det, min_face)
            return det

        self.detector = make_detector()
        self.engines: dict[str, Any] = {}
        self.backend_log: list[dict[str, Any]] = []

        def open_role(role: str) -> Any:
            engine, spec = open_for_role(
                self.bundle, role, backend=backend, precision=precision, threads=threads, log=self.backend_log
            )
            self.engines[role] = engine
            return engine, spec

        self.pipeline = build_pipeline(
            self.bundle, pipeline, open_role, occlusion=occlusion, threshold=occlusion_threshold
        )
        self.pipeline_name = self.pipeline.name
        self.classifier = self.engines["classifier"]
        self.labels = self.bundle.labels
        self.processor = FrameProcessor(
            self.bundle,
            self.detector,
            self.pipeline,
            max_faces=max_faces,
            align=align,
            engines=list(self.engines.values()),
            detector_factory=make_detector,
        )

    def _make_detector(self, name: str, threads: int | None, min_score: float | None, backend: str = "auto") -> Any:
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
            # BlazeFace runs on LiteRT when it is installed; an onnxruntime backend runs every model on ONNX Runtime.
            kwargs["engine"] = "onnxruntime" if backend.startswith("onnxruntime") else "auto"
            if min_score is not None:
                kwargs["score_threshold"] = min_score
        return create_detector(name, **kwargs)

    # ------------------------------------------------------------------------------------------------ inference
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
                raise InputError(
                    f"predict_batch takes a list of frames or an N x H x W x 3 array, got shape "
                    f"{frames.shape}; for one frame use predict()"
                )
            frames = list(frames)
        if frames is None or isinstance(frames, (str, os.PathLike)):
            raise InputError("predict_batch takes a list of frames; for one frame use predict()")
        return self.processor.process_batch(list(frames))

    # ------------------------------------------------------------------------------------- streaming, profiling
    def stream(
        self,
        source: Any,
        *,
        mode: str = "auto",
        smooth: str | None = None,
        queue_size: int = 4,
        max_missed: int = 15,
        pace_fps: float | None = None,
        detect_every: int = 1,
        detect_workers: int = 1,
    ) -> Any:
        """Recognise a stream of frames with tracking and smoothing; capture, detection and inference overlap.

        Args:
            source: Camera index, video file, folder of images, image file or any iterable of BGR frames.
            mode: ``offline`` (every frame, in order), ``realtime`` (drop stale frames, never lag behind) or
                ``auto`` (realtime for cameras, offline otherwise).
            smooth: ``None``, ``"ema:ALPHA"`` (e.g. ``"ema:0.5"``) or ``"window:N"`` (e.g. ``"window:5"``).
            queue_size: Frames each queue holds in offline mode.
            max_missed: Frames a face may go unfound and keep its track id.
            pace_fps: Read a file or iterator no faster than this (to emulate a live camera).
            detect_every: Run the full-frame detector every this many frames (and on every frame while no face is
                tracked); a tracked face it does not find is searched for in the region its motion model predicts,
                which keeps a face whose upper half a headset covers. Larger values skip full-frame passes on the
                other frames: a tracked face is then followed in its region by the near-range model alone when its
                candidate is confident (no verifier): ``detect_every=10`` used 16-20 % less CPU per frame on
                real one-face 640x360 videos (``benchmarks/detect_every.py``), but new faces are found only every
                ``detect_every`` frames. Folders of images are photos, not video: there every image is searched
                whole.
            detect_workers: Threads that run the full-frame detector at once on successive frames, each with its
                own detector (results stay in frame order; tracking, cropping and classification follow in one
                thread). Used with ``detect_every=1``, where every frame gets a full-frame pass; with a larger
                ``detect_every`` the detector runs in one thread. More than 1 pays only where cores are free: on a
                2-core machine two workers were slower (188 vs 228 frames/s offline, ``benchmarks/streaming.py``).

        Returns:
            A :class:`runtime.streaming.Stream`: iterate it for one :class:`~runtime.streaming.StreamResult`
            per processed frame; use it as a context manager or call ``close()`` to stop early.

        Example:
            >>> with rec.stream(0, smooth="ema:0.5") as results:
            ...     for r in results:
            ...         print(r.frame_index, [(p.track_id, p.label) for p in r.predictions], r.latency_ms)
        """
        from runtime.sources import FrameSource, open_source
        from runtime.streaming import Stream

        source = source if isinstance(source, FrameSource) else open_source(source)
        # A folder of photos is not a video: every image is searched whole and no face is followed between them.
        stills = source.kind in ("folder", "image")
        try:
            stages = self.processor.stream_stages(
                smooth=smooth,
                max_missed=max_missed,
                detect_every=1 if stills else detect_every,
                follow=not stills,
                detect_workers=detect_workers,
            )
        except BaseException:
            source.close()
            raise
        try:
            stream = Stream(
                source, stages.stages, mode=mode, queue_size=queue_size, pace_fps=pace_fps, on_close=stages.close
            )
        except BaseException:
            stages.close()
            raise
        stream.tracker = stages.tracker  # type: ignore[attr-defined]
        stream.smoother = stages.smoother  # type: ignore[attr-defined]
        return stream

    def profile(
        self,
        frames: Any = None,
        *,
        iters: int = 100,
        batch_sizes: Sequence[int] = (1, 8),
        warmup: int = 10,
        engines: str = "all",
    ) -> Any:
        """Measure every engine the pipeline runs on its own, and every stage on a real frame.

        Engines: the classifier, the inpainter and the occlusion estimator when the pipeline has them, and every
        engine inside the detector. Stages: ``detect``, ``crop``, the pipeline's ``occlusion``, ``normalize``,
        ``inpaint`` and ``classify`` (as the pipeline times them while it runs), ``frame check + predictions`` and
        ``total (predict)``; on a frame with a face the stages add up to the total.

        Args:
            frames: A frame, an image path or frames (the first is used); ``None`` uses a synthetic frame.
            iters: Timed calls per measurement (after ``warmup`` untimed ones).
            batch_sizes: Batch sizes for the pipeline's engines (real crops from the frame, repeated).
            engines: ``all`` (also the bundle's other classifier engines that load with this backend) or
                ``loaded`` (the engines this recognizer uses).

        Returns:
            A :class:`runtime.profiling.ProfileReport`: ``print(report)`` prints the table; ``.to_dict()``,
            ``.save_json()``, ``.save_png()``; mean/p50/p90/p95/p99 ms and items/s.
        """
        from .profiling import profile_recognizer

        return profile_recognizer(self, frames, iters=iters, batch_sizes=batch_sizes, warmup=warmup, engines=engines)

    def close(self) -> None:
        """Release every engine (detector, classifier, inpainter, estimator); the recognizer cannot run after it.

        ``with sdk.Recognizer() as rec: ...`` closes it at the end of the block.
        """
        self.processor.close()

    def __enter__(self) -> "Recognizer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """What is loaded: bundle, labels, detector (and every engine inside it, ``detector_engines``), pipeline,
        each engine as it actually loaded, the occlusion estimator, and the backend attempts (``backend_attempts``:
        what ``auto`` tried and why it skipped it)."""
        from .profiling import _detector_engines

        est = getattr(self.pipeline, "estimator", None)
        return {
            "bundle": str(self.bundle.path),
            "name": self.bundle.name,
            "labels": list(self.labels),
            "detector": self.detector_name,
            "detector_engines": {label: e.describe() for label, e in _detector_engines(self.detector)},
            "pipeline": self.pipeline_name,
            "classifier": self.classifier.describe(),
            "engines": {role: e.describe() for role, e in self.engines.items()},
            "occlusion_estimator": None if est is None else type(est).__name__,
            "backend_attempts": list(self.backend_log),
        }

    def __repr__(self) -> str:
        d = self.classifier.describe()
        return (
            f"Recognizer(bundle={self.bundle.name!r}, detector={self.detector_name!r}, "
            f"pipeline={self.pipeline_name!r}, backend={d.get('backend')!r}, device={d.get('device')!r})"
        )
