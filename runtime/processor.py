"""The frame processor: one path from a frame to its predictions, shared by ``predict``, ``stream`` and ``profile``.

::

    frame ─► find faces (detector; in streams a FaceTracker: acquire + follow predicted regions)
          ─► align + crop (roll from the eye keypoints, the bundle's input spec)
          ─► pipeline (occlusion estimate ─► direct | inpaint | auto)
          ─► predictions (largest face first)

``sdk.Recognizer`` builds one :class:`FrameProcessor` from a bundle and owns nothing else of this path; streams
split the same methods into two threads (:meth:`FrameProcessor.stream_stages`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .bundle import Bundle
from .detection.base import Detection, FaceDetector
from .errors import ConfigError
from .face_tracking import FaceTracker
from .frames import as_bgr_frame
from .pipelines import PipelineResult
from .prediction import Prediction
from .preprocess import crop_face
from .smoothing import Smoother, parse_smoothing

if TYPE_CHECKING:
    from .streaming import Packet


@dataclass(frozen=True)
class Face:
    """A face found in a frame: box and score from the detector, roll (radians) and track id when tracked."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = None
    roll: float = 0.0
    track_id: int | None = None

    @classmethod
    def from_detection(cls, det: Detection, *, track_id: int | None = None, align: bool = True) -> "Face":
        """The face of a detection (roll from its eye keypoints when ``align``)."""
        return cls(det.box, det.score, det.keypoints, det.roll if align else 0.0, track_id)


ALIGN_MIN_ROLL_DEG = 10.0  # faces tilted less than this are cropped axis-aligned, as the classifiers were trained


def largest_first(dets: Sequence[Detection], max_faces: int | None = None) -> list[Detection]:
    """Detections sorted by box area, largest first, at most ``max_faces``."""
    out = sorted(dets, key=lambda d: -d.width * d.height)
    return out if max_faces is None else out[:max_faces]


class FrameProcessor:
    """Runs one bundle's pipeline on the faces of frames.

    Args:
        bundle: The loaded bundle (labels, input spec).
        detector: The face detector (``none``/``roi``/neural).
        pipeline: The built pipeline (:func:`runtime.pipelines.build_pipeline`).
        max_faces: Keep at most this many faces per frame (largest first).
        engines: The pipeline's engines, released by :meth:`close`.
        detector_factory: Makes another detector like ``detector`` (its own engines), for streams that detect
            faces in several threads at once (:meth:`stream_stages` ``detect_workers``); ``None``: one detector.
        align: Rotate each crop so the face is upright (roll from the detector's eye keypoints) when the face is
            tilted by at least ``ALIGN_MIN_ROLL_DEG``; nearer upright faces are cropped axis-aligned, like the
            crops the classifiers were trained and checked on.
    """

    def __init__(
        self,
        bundle: Bundle,
        detector: FaceDetector,
        pipeline: Any,
        *,
        max_faces: int | None = None,
        align: bool = True,
        engines: Sequence[Any] = (),
        detector_factory: Callable[[], FaceDetector] | None = None,
    ) -> None:
        self.bundle, self.detector, self.pipeline = bundle, detector, pipeline
        self.detector_factory = detector_factory
        self.engines = list(engines)
        self.max_faces = max_faces
        self.align = align
        self.labels = list(bundle.labels)

    # ------------------------------------------------------------------------------------------------ stages
    def find_faces(
        self, frame: np.ndarray, tracker: FaceTracker | None = None, detections: Sequence[Detection] | None = None
    ) -> tuple[list[Face], dict[str, float]]:
        """Faces of a validated BGR frame, largest first; with a ``tracker`` they carry track ids (``detections``:
        the full-frame detector's result on this frame when it already ran, see :meth:`FaceTracker.step`).

        Returns the faces and ``detect`` (and with a tracker ``track``) milliseconds.
        """
        if tracker is not None:
            tracked = tracker.step(frame, detections)
            faces = [Face.from_detection(f.detection, track_id=f.track_id, align=self.align) for f in tracked]
            return faces, dict(tracker.timings_ms)
        t0 = time.perf_counter()
        dets = largest_first(self.detector.detect(frame), self.max_faces)
        return [Face.from_detection(d, align=self.align) for d in dets], {"detect": (time.perf_counter() - t0) * 1e3}

    def crop(self, frame: np.ndarray, faces: Sequence[Face]) -> list[np.ndarray]:
        """Each face cropped (upright when aligned) to the bundle's input size and colour."""
        min_roll = np.radians(ALIGN_MIN_ROLL_DEG)
        return [
            crop_face(frame, f.box, self.bundle.input, roll=f.roll if abs(f.roll) >= min_roll else 0.0) for f in faces
        ]

    def classify(self, crops: list[np.ndarray]) -> PipelineResult:
        """The pipeline's result for crops (an empty result for no crops)."""
        if not crops:
            return PipelineResult(
                np.zeros((0, len(self.labels)), np.float32), self.pipeline.name, {"normalize": 0.0, "classify": 0.0}
            )
        return self.pipeline.run(crops)

    def predictions(
        self,
        faces: Sequence[Face],
        result: PipelineResult,
        *,
        timings_ms: dict[str, float],
        start: int = 0,
        probabilities: np.ndarray | None = None,
    ) -> list[Prediction]:
        """Predictions for ``faces`` from rows ``start:`` of ``result`` (``probabilities`` replaces the result's,
        e.g. after smoothing; its rows then start at 0)."""
        probs = result.probabilities[start:] if probabilities is None else probabilities
        occ = result.occlusion
        return [
            Prediction.from_probabilities(
                self.labels,
                f.box,
                probs[j],
                pipeline=result.per_face[start + j] if result.per_face else self.pipeline.name,
                timings_ms=dict(timings_ms),
                detection_score=f.score,
                track_id=f.track_id,
                occlusion=None if occ is None else float(occ[start + j]),
                roll=float(np.degrees(f.roll)),
                engine=result.engines[start + j] if result.engines else None,
            )
            for j, f in enumerate(faces)
        ]

    def close(self) -> None:
        """Release the detector's and the pipeline's engines (idempotent)."""
        self.detector.close()
        for engine in self.engines:
            close = getattr(engine, "close", None)
            if close is not None:
                close()

    # ------------------------------------------------------------------------------------------------ frames
    def process_batch(self, frames: Sequence[Any]) -> list[list[Prediction]]:
        """Predictions for each frame (arrays or image paths); all faces go through the pipeline together."""
        import os

        t_start = time.perf_counter()
        per_frame: list[tuple[list[Face], dict[str, float]]] = []
        crops: list[np.ndarray] = []
        for i, raw in enumerate(frames):
            t0 = time.perf_counter()
            frame = as_bgr_frame(raw, name=f"frame {i}" if i else "frame")
            decode_ms = (time.perf_counter() - t0) * 1e3 if isinstance(raw, (str, os.PathLike)) else 0.0
            faces, timing = self.find_faces(frame)
            t1 = time.perf_counter()
            crops.extend(self.crop(frame, faces))
            timing.update(decode=decode_ms, crop=(time.perf_counter() - t1) * 1e3)
            per_frame.append((faces, timing))
        if not per_frame:
            return []
        result = self.classify(crops)
        total = (time.perf_counter() - t_start) * 1e3
        out, k = [], 0
        for faces, timing in per_frame:
            out.append(
                self.predictions(faces, result, timings_ms={**timing, **result.timings_ms, "total": total}, start=k)
            )
            k += len(faces)
        return out

    def stream_stages(
        self,
        *,
        smooth: str | Smoother | None = None,
        max_missed: int = 15,
        detect_every: int = 1,
        follow: bool = True,
        detect_workers: int = 1,
    ) -> "StreamStages":
        """The stream stages over this processor, with fresh per-stream tracking and smoothing state."""
        return StreamStages(
            self,
            smooth=smooth,
            max_missed=max_missed,
            detect_every=detect_every,
            follow=follow,
            detect_workers=detect_workers,
        )


class StreamStages:
    """Stage 1 (find and follow faces) and stage 2 (crop, pipeline, smoothing) of a stream.

    Tracking runs in stage 1 because the regions to search in a frame come from the faces of the frame before.
    Finding faces is the slower stage, so cropping runs in stage 2, on the other core.

    With ``detect_workers`` > 1 and a full-frame pass on every frame (``detect_every=1``, a neural detector and a
    ``detector_factory``), stage 1 is only the full-frame detection, which needs nothing from the frames before: it
    runs in that many threads at once, each with its own detector, on successive frames
    (:class:`~runtime.streaming.ParallelStage`); association, the region search for tracked faces the pass missed,
    cropping and the pipeline run in stage 2, in frame order. See :attr:`stages`.

    Args:
        processor: The frame processor (its engines are shared, not copied).
        smooth: ``None``, ``"ema:ALPHA"``, ``"window:N"`` or a :class:`~runtime.smoothing.Smoother`.
        max_missed: Frames a face may go unfound and keep its track id.
        detect_every: Run the full-frame detector every this many frames; tracked faces it does not find are
            searched for in their predicted region.
        follow: Search for tracked faces in their predicted regions; ``False`` (unrelated photos) only runs the
            full-frame detector and gives ids by association.
        detect_workers: Threads that run the full-frame detector at once (see above); 1: one stage-1 thread.

    Raises:
        ConfigError: ``detect_workers`` is not a positive integer, or more than the machine's CPU cores.
    """

    def __init__(
        self,
        processor: FrameProcessor,
        *,
        smooth: str | Smoother | None = None,
        max_missed: int = 15,
        detect_every: int = 1,
        follow: bool = True,
        detect_workers: int = 1,
    ) -> None:
        if not isinstance(detect_workers, int) or isinstance(detect_workers, bool) or detect_workers < 1:
            raise ConfigError(f"detect_workers must be a positive integer, got {detect_workers!r}")
        cores = os.cpu_count() or 1
        if detect_workers > cores:
            raise ConfigError(
                f"detect_workers={detect_workers} is more than this machine's {cores} CPU cores; each worker runs its "
                f"own detector, so use at most {cores} (1 on a machine as small as 2 cores)"
            )
        self.processor = processor
        trivial = processor.detector.name in ("none", "roi")
        if trivial:
            detect_every = 1  # nothing to acquire: the face is the frame or a fixed box
        self.face_tracker = FaceTracker(
            processor.detector,
            detect_every=detect_every,
            max_missed=max_missed,
            max_faces=processor.max_faces,
            follow=follow,
        )
        self.tracker = self.face_tracker.tracker
        self.smoother = parse_smoothing(smooth)
        parallel = detect_workers > 1 and detect_every == 1 and not trivial and processor.detector_factory
        self.detectors: list[FaceDetector] = [processor.detector]
        if parallel:
            self.detectors += [processor.detector_factory() for _ in range(detect_workers - 1)]  # type: ignore[misc]

    @property
    def stages(self) -> list[Any]:
        """The callables for :class:`~runtime.streaming.Stream`: ``[find, crop_classify]``, or with parallel
        detection ``[ParallelStage(detect per detector), track_classify]``."""
        from .streaming import ParallelStage

        if len(self.detectors) == 1:
            return [self.find, self.crop_classify]
        return [ParallelStage(tuple(self._detect_with(d) for d in self.detectors)), self.track_classify]

    def close(self) -> None:
        """Release the extra detectors of parallel detection (the processor's own stays open)."""
        for det in self.detectors[1:]:
            det.close()
        del self.detectors[1:]

    def _detect_with(self, detector: FaceDetector) -> Callable[["Packet"], None]:
        def detect(packet: "Packet") -> None:
            """Stage 1 of parallel detection: validate the frame, run the full-frame detector on it."""
            frame = as_bgr_frame(packet.frame.image, name=f"frame {packet.frame.index}")
            t0 = time.perf_counter()
            dets = detector.detect(frame)
            packet.timings_ms["detect"] = (time.perf_counter() - t0) * 1e3
            packet.data = (frame, dets)

        return detect

    def track_classify(self, packet: "Packet") -> None:
        """Stage 2 of parallel detection: associate (and search for missed tracked faces), then
        :meth:`crop_classify`."""
        self._track(packet, *packet.data)
        self.crop_classify(packet)

    def find(self, packet: "Packet") -> None:
        """Stage 1: validate the frame, find and follow its faces."""
        self._track(packet, as_bgr_frame(packet.frame.image, name=f"frame {packet.frame.index}"))

    def _track(self, packet: "Packet", frame: np.ndarray, detections: Sequence[Detection] | None = None) -> None:
        """Find and follow the faces of ``frame`` (``detections``: its full-frame pass, when it already ran; its
        ``detect`` ms, already in the packet, are added to the tracker's)."""
        faces, timings = self.processor.find_faces(frame, self.face_tracker, detections)
        timings["detect"] = timings.get("detect", 0.0) + packet.timings_ms.get("detect", 0.0)
        packet.data = (faces, frame, list(self.face_tracker.removed))
        packet.timings_ms.update(timings)

    def crop_classify(self, packet: "Packet") -> None:
        """Stage 2: crop the faces, run the pipeline on the crops, smooth each face's probabilities over its track."""
        faces, frame, removed = packet.data
        t0 = time.perf_counter()
        crops = self.processor.crop(frame, faces)
        packet.timings_ms["crop"] = (time.perf_counter() - t0) * 1e3
        result = self.processor.classify(crops)
        probs = result.probabilities
        if self.smoother is not None:
            self.smoother.drop(removed)
            probs = np.array([self.smoother.update(f.track_id, p) for f, p in zip(faces, probs)]).reshape(probs.shape)
        packet.timings_ms.update(result.timings_ms)
        packet.predictions = self.processor.predictions(
            faces, result, timings_ms=dict(packet.timings_ms), probabilities=probs
        )
        packet.data = None  # the frame and crops are not needed any more: free them early
