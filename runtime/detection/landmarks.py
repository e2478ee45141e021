"""MediaPipe's face landmark model (Face Mesh: 468 3-D landmarks + face presence) run with ONNX Runtime.

``runtime/assets/face_landmark.onnx`` was converted once from ``face_landmark.tflite`` in the ``mediapipe==0.10.21``
wheel by ``scripts/convert_face_landmark.py`` (see ``runtime/assets/README.md``). Pre- and post-processing follow
MediaPipe's graphs, whose option values were read from the wheel:

- ``FaceDetectionFrontDetectionToRoi``: the ROI of a detection is its box centre, rotated by the angle of the
  right-eye -> left-eye keypoint vector (keypoints 0 -> 1, target angle 0), made square on the long side and scaled
  by 1.5.
- ``FaceLandmarkLandmarksToRoi``: the ROI for the next frame is the landmarks' bounding box centre, rotated by the
  angle of landmark 33 -> 263 (outer eye corners), square on the long side, scaled by 1.5.
- ``FaceLandmarkCpu``: the rotated ROI is warped to 192x192 RGB in [0, 1] (bilinear, border replicated); landmarks
  are in input pixels (z divided by the input width like x), the presence flag is a logit (sigmoid, threshold 0.5).

Angles are radians in frame pixel coordinates (y down): 0 is an upright face, positive when the person's left eye
(image right) is lower than the right eye, i.e. the face is turned clockwise on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..engines.onnxruntime_engine import OnnxRuntimeEngine
from ..errors import InputError
from . import face_mesh
from .base import as_bgr

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MODEL_FILE = "face_landmark.onnx"
INPUT_SIZE = 192
ROI_SCALE = 1.5  # RectTransformationCalculator scale_x = scale_y = 1.5, square_long: true (both graphs)
PRESENCE_THRESHOLD = 0.5  # FaceLandmarkCpu's ThresholdingCalculator


@dataclass(frozen=True)
class FaceRoi:
    """A rotated square region of the frame the landmark model looks at.

    Attributes:
        cx, cy: Centre in frame pixels.
        size: Side length in frame pixels.
        angle: Rotation in radians (see the module docstring for the sign).
    """

    cx: float
    cy: float
    size: float
    angle: float

    def __post_init__(self) -> None:
        vals = (self.cx, self.cy, self.size, self.angle)
        if not all(isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) for v in vals):
            raise InputError(f"FaceRoi needs finite numbers (cx, cy, size, angle), got {vals}")
        if self.size <= 1.0:
            raise InputError(
                f"FaceRoi size must be > 1 pixel, got {self.size}; build it with roi_from_detection "
                "or roi_from_landmarks"
            )

    def affine(self, out_size: int = INPUT_SIZE) -> np.ndarray:
        """``(2, 3)`` matrix mapping frame pixels to ``out_size`` crop pixels (ROI corners -> crop edges)."""
        s = out_size / self.size
        c, n = math.cos(self.angle), math.sin(self.angle)
        half = out_size / 2
        return np.array(
            [
                [s * c, s * n, half - s * (c * self.cx + n * self.cy)],
                [-s * n, s * c, half - s * (-n * self.cx + c * self.cy)],
            ],
            dtype=np.float64,
        )

    def to_frame(self, pts: np.ndarray) -> np.ndarray:
        """Map ``(N, 2+)`` points normalised to the ROI ([0, 1] across it) to frame pixels; z (if any) is scaled
        by the ROI size like x."""
        p = np.asarray(pts, dtype=np.float64)
        c, n = math.cos(self.angle), math.sin(self.angle)
        u, v = (p[:, 0] - 0.5) * self.size, (p[:, 1] - 0.5) * self.size
        out = p * self.size
        out[:, 0] = self.cx + c * u - n * v
        out[:, 1] = self.cy + n * u + c * v
        return out


def _angle(start: np.ndarray, end: np.ndarray) -> float:
    """MediaPipe's ``DetectionsToRectsCalculator::ComputeRotation`` with target angle 0, in frame pixels."""
    a = math.atan2(float(end[1] - start[1]), float(end[0] - start[0]))
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))  # NormalizeRadians: [-pi, pi)


def _square_roi(x1: float, y1: float, x2: float, y2: float, angle: float) -> FaceRoi:
    size = ROI_SCALE * max(x2 - x1, y2 - y1)
    if not size > 1.0:
        raise InputError(f"face box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) is too small for a landmark ROI")
    return FaceRoi((x1 + x2) / 2, (y1 + y2) / 2, size, angle)


def _points(arr: object, n: int, what: str) -> np.ndarray:
    p = np.asarray(arr, dtype=np.float64) if arr is not None else np.empty(0)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2 or not np.isfinite(p[:, :2]).all():
        raise InputError(f"{what} must be a finite ({n}, 2) array of frame pixels, got shape {p.shape}")
    return p


def roi_from_detection(box: Sequence[float], keypoints: np.ndarray) -> FaceRoi:
    """The landmark ROI of a BlazeFace detection (``FaceDetectionFrontDetectionToRoi``).

    Args:
        box: ``(x1, y1, x2, y2)`` frame pixels. :class:`BlazeFaceDetector` clips boxes to the frame (MediaPipe does
            not), so for a face cut by the frame edge the ROI is smaller and shifted inwards.
        keypoints: ``(6, 2)`` BlazeFace keypoints in frame pixels (right eye, left eye, nose, mouth, ears).

    Raises:
        InputError: Box or keypoints malformed, or the box is empty.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box must be four numbers (x1, y1, x2, y2), got {box!r}") from None
    k = _points(keypoints, 6, "BlazeFace keypoints")
    return _square_roi(x1, y1, x2, y2, _angle(k[0], k[1]))


def roi_from_landmarks(points: np.ndarray) -> FaceRoi:
    """The ROI for the next frame from this frame's 468 landmarks (``FaceLandmarkLandmarksToRoi``).

    Args:
        points: ``(468, 2+)`` landmarks in frame pixels.
    """
    p = _points(points, face_mesh.NUM_LANDMARKS, "landmarks")
    (x1, y1), (x2, y2) = p[:, :2].min(0), p[:, :2].max(0)
    return _square_roi(x1, y1, x2, y2, _angle(p[face_mesh.RIGHT_EYE_OUTER], p[face_mesh.LEFT_EYE_OUTER]))


@dataclass(frozen=True)
class LandmarkResult:
    """Landmarks of one face.

    Attributes:
        points: ``(468, 3)`` float32 frame pixels; z (depth, smaller = nearer the camera) in the same scale as x.
        presence: Face-presence probability in [0, 1] (MediaPipe keeps landmarks when it is >= 0.5).
        roi: The region the model looked at.
    """

    points: np.ndarray
    presence: float
    roi: FaceRoi

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Tight ``(x1, y1, x2, y2)`` around the 468 landmarks, frame pixels (not clipped)."""
        (x1, y1), (x2, y2) = self.points[:, :2].min(0), self.points[:, :2].max(0)
        return float(x1), float(y1), float(x2), float(y2)

    @property
    def roll(self) -> float:
        """In-plane rotation in radians from the outer eye corners (33 -> 263); 0 for an upright face."""
        return _angle(self.points[face_mesh.RIGHT_EYE_OUTER], self.points[face_mesh.LEFT_EYE_OUTER])

    def keypoints6(self) -> np.ndarray:
        """``(6, 2)`` BlazeFace-order keypoints derived from the landmarks (:func:`face_mesh.keypoints6`)."""
        return face_mesh.keypoints6(self.points)

    def region(self, name: str) -> np.ndarray:
        """``(K, 3)`` landmarks of a region of :data:`face_mesh.REGIONS` (e.g. ``"mouth"``, ``"jaw"``)."""
        if name not in face_mesh.REGIONS:
            raise InputError(f"unknown face region {name!r}; use one of {sorted(face_mesh.REGIONS)}")
        return self.points[list(face_mesh.REGIONS[name])]

    def next_roi(self) -> FaceRoi:
        """The region to look at in the next frame (:func:`roi_from_landmarks`)."""
        return roi_from_landmarks(self.points)


class FaceLandmarker:
    """MediaPipe's face landmark model on rotated face ROIs.

    Args:
        threads: ONNX Runtime intra-op threads (``None``: its default).
        model_path: Another ONNX file with the same input/outputs (default: the shipped conversion).
        providers: ONNX Runtime providers (see :class:`OnnxRuntimeEngine`); the model is small, so CPU.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        model_path: str | Path | None = None,
        providers: str | Sequence[str] = "cpu",
    ) -> None:
        self.engine = OnnxRuntimeEngine(model_path or ASSETS / MODEL_FILE, threads=threads, providers=providers)
        self._input = self.engine.input_names[0]

    @staticmethod
    def crop(frame: np.ndarray, roi: FaceRoi) -> np.ndarray:
        """The model's view of ``roi``: ``(192, 192, 3)`` RGB uint8 (one ``cv2.warpAffine``, border replicated).

        Raises:
            InputError: Bad frame (see :func:`as_bgr`) or ``roi`` not a :class:`FaceRoi`.
        """
        frame = as_bgr(frame)
        if not isinstance(roi, FaceRoi):
            raise InputError(
                f"roi must be a FaceRoi (use roi_from_detection / roi_from_landmarks), got {type(roi).__name__}"
            )
        bgr = cv2.warpAffine(
            frame, roi.affine(), (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on ``(N, 192, 192, 3)`` RGB uint8 crops.

        Returns:
            ``(N, 468, 3)`` landmarks normalised to the crop (x, y in [0, 1] across it; z / 192 like x) and
            ``(N,)`` presence probabilities.
        """
        x = np.asarray(crops, dtype=np.float32) * np.float32(1.0 / 255.0)
        out = self.engine.run({self._input: x})
        pts = out["landmarks"].reshape(len(x), face_mesh.NUM_LANDMARKS, 3) / INPUT_SIZE
        logit = out["face_flag"].reshape(len(x)).astype(np.float64)
        return pts, 1.0 / (1.0 + np.exp(-logit))

    def run(self, frame: np.ndarray, roi: FaceRoi) -> LandmarkResult:
        """Landmarks of the face in ``roi`` of a BGR uint8 frame."""
        return self.run_batch(frame, [roi])[0]

    def run_batch(self, frame: np.ndarray, rois: Sequence[FaceRoi]) -> list[LandmarkResult]:
        """Landmarks for several ROIs of one frame, in one model call."""
        frame = as_bgr(frame)
        rois = list(rois)
        if not rois:
            return []
        pts, presence = self.infer(np.stack([self.crop(frame, r) for r in rois]))
        return [LandmarkResult(r.to_frame(p).astype(np.float32), float(s), r) for r, p, s in zip(rois, pts, presence)]
