"""Face detection: ``create_detector(name)`` returns a :class:`FaceDetector` whose ``detect(frame)`` gives
:class:`Detection` objects (box in frame pixels, score, keypoints). :class:`FaceLandmarker` gives MediaPipe's 468
face landmarks and a face-presence score on a rotated face region (:class:`FaceRoi`)."""

from __future__ import annotations

from .base import Detection, FaceDetector, NoDetector, RoiDetector, as_bgr
from .blazeface import BlazeFaceDetector
from .factory import DEFAULT_NEURAL, DETECTOR_NAMES, create_detector
from .landmarks import FaceLandmarker, FaceRoi, LandmarkResult, roi_from_detection, roi_from_landmarks
from .merge import MergedDetector

__all__ = [
    "Detection",
    "FaceDetector",
    "NoDetector",
    "RoiDetector",
    "BlazeFaceDetector",
    "create_detector",
    "DETECTOR_NAMES",
    "DEFAULT_NEURAL",
    "MergedDetector",
    "as_bgr",
    "FaceLandmarker",
    "FaceRoi",
    "LandmarkResult",
    "roi_from_detection",
    "roi_from_landmarks",
]
