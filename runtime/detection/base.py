"""The detector interface, the result type, frame validation, and the two trivial detectors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Sequence

import cv2
import numpy as np

from ..errors import ConfigError, InputError


@dataclass(frozen=True)
class Detection:
    """One face found in a frame.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in frame pixels (float, clipped to the frame).
        score: Detector confidence in [0, 1].
        keypoints: ``(K, 2)`` float array of ``(x, y)`` frame pixels, or ``None`` if the detector has none.
            BlazeFace gives K=6: right eye, left eye, nose tip, mouth centre, right ear, left ear
            (right/left of the person).
        roll: In-plane rotation of the face in radians (the angle of the line from the right to the left eye,
            positive clockwise in image coordinates); 0 for upright faces or detectors without keypoints.
        verifier_score: Probability in [0, 1] that the crop is a face, from the second stage of
            :class:`~runtime.detection.two_stage.TwoStageDetector`; ``None`` for single-stage detectors.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = field(default=None, compare=False)
    roll: float = 0.0
    verifier_score: float | None = field(default=None, compare=False)

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]


def shifted(det: Detection, dx: float, dy: float) -> Detection:
    """The detection moved by ``(dx, dy)`` pixels (from a region of a frame to the frame), all else kept."""
    x1, y1, x2, y2 = det.box
    kp = None if det.keypoints is None else det.keypoints + np.float32((dx, dy))
    return replace(det, box=(x1 + dx, y1 + dy, x2 + dx, y2 + dy), keypoints=kp)


def as_bgr(frame: object) -> np.ndarray:
    """Check a frame and return it as an ``HxWx3`` BGR uint8 array (gray ``HxW`` or ``HxWx1`` is converted).

    Raises:
        InputError: The frame is ``None``, not a numpy array, not uint8, of the wrong shape, or empty.
    """
    if frame is None:
        raise InputError(
            "frame is None: the image failed to load or the video ended; check the path or "
            "the return value of cv2.imread / VideoCapture.read before calling detect()"
        )
    if not isinstance(frame, np.ndarray):
        raise InputError(
            f"frame must be a numpy array (BGR uint8 HxWx3), got {type(frame).__name__}; "
            "load images with cv2.imread or convert with np.asarray"
        )
    if frame.dtype != np.uint8:
        raise InputError(
            f"frame must be uint8, got {frame.dtype}; for floats in [0, 1] pass "
            "(frame * 255).clip(0, 255).astype(np.uint8)"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 4:
        raise InputError("frame has 4 channels (BGRA); drop alpha first with cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise InputError(
            f"frame must be HxWx3 BGR or HxW gray, got shape {frame.shape}; for a batch, call detect() once per frame"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"frame is empty (shape {frame.shape}); check the crop or the video source")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame


class FaceDetector(ABC):
    """Finds faces in a BGR frame. Subclasses implement :meth:`_detect` on a validated frame."""

    name: str = "base"

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in ``frame`` (BGR uint8 ``HxWx3``, or gray ``HxW``), highest score first."""
        return self._detect(as_bgr(frame))

    @abstractmethod
    def _detect(self, frame: np.ndarray) -> list[Detection]:
        """Detect on a frame already checked by :func:`as_bgr`."""

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        return self.detect(frame)

    def close(self) -> None:
        """Release the detector's engines and those of the detectors it wraps (idempotent)."""
        for part in getattr(self, "detectors", ()):
            part.close()
        engine = getattr(self, "engine", None)
        if engine is not None and hasattr(engine, "close"):
            engine.close()


class NoDetector(FaceDetector):
    """The frame *is* the face (already cropped): one detection covering the whole frame, score 1."""

    name = "none"

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        return [Detection((0.0, 0.0, float(w), float(h)), 1.0)]


class RoiDetector(FaceDetector):
    """A fixed face box (e.g. a headset camera that always sees the face in the same place).

    Args:
        box: ``(x1, y1, x2, y2)`` in frame pixels. It is clipped to each frame; a box that does not overlap
            the frame raises :class:`InputError` at :meth:`detect`.
    """

    name = "roi"

    def __init__(self, box: Sequence[float]) -> None:
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ConfigError(f"roi box must be four numbers (x1, y1, x2, y2), got {box!r}") from None
        if not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
            raise ConfigError(f"roi box {box!r} must have finite x1 < x2 and y1 < y2 (pixels, (x1, y1, x2, y2))")
        self.box = (x1, y1, x2, y2)

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = self.box
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
        if cx2 <= cx1 or cy2 <= cy1:
            raise InputError(
                f"roi box {self.box} lies outside the {w}x{h} frame; give a box inside the frame "
                "(x1, y1, x2, y2 in pixels) or use detector 'auto'"
            )
        return [Detection((cx1, cy1, cx2, cy2), 1.0)]
