"""Two-stage face detection: BlazeFace proposes candidates at a low threshold, a verifier CNN that learned
occlusion decides which are faces.

``candidates -> roll-aligned crops -> verifier (one batch) -> combined score -> threshold -> NMS``. The combined
score is a logistic model of the verifier logit and the detector logit (and, where it was measured to help, the
keypoint geometry), fitted on the tuning split by ``scripts/train_verifier.py`` and stored in the verifier config.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import ConfigError
from .base import Detection, FaceDetector
from .blazeface import BlazeFaceDetector
from .geometry import eye_roll, face_geometry
from .merge import MergedDetector
from .ssd import iou_matrix
from .verifier import FaceVerifier

FEATURES = ("verifier", "detector", "ear_span", "mouth_drop", "eye_span")
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, -90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def unrotate_points(pts: np.ndarray, angle: int, width: int, height: int) -> np.ndarray:
    """Map ``(..., 2)`` points found on the frame rotated by ``angle`` degrees clockwise (``cv2.rotate``) back to
    the original ``width x height`` frame."""
    u, v = pts[..., 0], pts[..., 1]
    if angle == 90:
        x, y = v, height - u
    elif angle == -90:
        x, y = width - v, u
    elif angle == 180:
        x, y = width - u, height - v
    else:
        raise ConfigError(f"candidate rotations must be 90, -90 or 180 degrees, got {angle!r}")
    return np.stack([x, y], axis=-1)


def unrotate(det: Detection, angle: int, width: int, height: int) -> Detection:
    """A detection found on the rotated frame, with its box and keypoints mapped back to the original frame."""
    corners = unrotate_points(np.array(det.box, np.float64).reshape(2, 2), angle, width, height)
    box = (*corners.min(0), *corners.max(0))
    kp = det.keypoints
    if kp is not None:
        kp = unrotate_points(kp.astype(np.float64), angle, width, height).astype(np.float32)
    return replace(det, box=tuple(float(v) for v in box), keypoints=kp,
                   roll=eye_roll(kp) if kp is not None else det.roll)


class CandidateDetector(FaceDetector):
    """BlazeFace short- and full-range at a low score threshold, without the keypoint geometry check, merged;
    optionally also run on the frame rotated by 90 degrees either way (faces rolled beyond ~45 degrees).

    Args:
        score_threshold: Minimum BlazeFace score of a candidate.
        variants: BlazeFace variants to run (see :data:`~runtime.detection.blazeface.SPECS`).
        rotations: Extra passes on the frame rotated by these angles (degrees clockwise: 90, -90, 180).
        nms_iou: IoU above which two candidates are the same face.
        threads: ONNX Runtime intra-op threads per model.
    """

    name = "blazeface-candidates"

    def __init__(self, *, score_threshold: float = 0.2, variants: Sequence[str] = ("blazeface-short", "blazeface-full"),
                 rotations: Sequence[int] = (), nms_iou: float = 0.3, threads: int | None = None,
                 providers: str | Sequence[str] = "cpu") -> None:
        for a in rotations:
            if a not in _ROTATE:
                raise ConfigError(f"candidate rotations must be 90, -90 or 180 degrees, got {a!r}")
        self.rotations = tuple(int(a) for a in rotations)
        self.detectors = [BlazeFaceDetector(v, score_threshold=score_threshold, check_geometry=False,
                                            threads=threads, providers=providers) for v in variants]
        self._merge = MergedDetector(self.detectors, nms_iou=nms_iou)

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        dets = [d for det in self.detectors for d in det._detect(frame)]
        for angle in self.rotations:
            rotated = cv2.rotate(frame, _ROTATE[angle])
            dets += [unrotate(d, angle, w, h) for det in self.detectors for d in det._detect(rotated)]
        return self._merge.merge(dets)


def candidate_features(dets: Sequence[Detection], verifier_logits: np.ndarray) -> dict[str, np.ndarray]:
    """The per-candidate features the combined score may use: ``(N,)`` arrays named as in :data:`FEATURES`."""
    geo = [face_geometry(d.box, d.keypoints) if d.keypoints is not None else None for d in dets]
    return {
        "verifier": np.asarray(verifier_logits, np.float64),
        "detector": _logit(np.array([d.score for d in dets], np.float64)),
        "ear_span": np.array([g.ear_span if g else 0.0 for g in geo], np.float64),
        "mouth_drop": np.array([g.mouth_drop if g else 0.0 for g in geo], np.float64),
        "eye_span": np.array([g.eye_span if g else 0.0 for g in geo], np.float64),
    }


def combined_score(features: dict[str, np.ndarray], combination: dict[str, Any]) -> np.ndarray:
    """``sigmoid(bias + sum_k weight_k * feature_k)`` for the weights in ``combination``."""
    weights = combination["weights"]
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise ConfigError(f"verifier config combines unknown features {sorted(unknown)}; known: {FEATURES}")
    z = np.full(len(features["verifier"]), float(combination["bias"]))
    for k, wk in weights.items():
        z += float(wk) * features[k]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy NMS, highest score first."""
    order = np.argsort(-scores, kind="stable")
    ious = iou_matrix(boxes[order], boxes[order])
    keep: list[int] = []
    for i in range(len(order)):
        if all(ious[i, j] <= iou for j in keep):
            keep.append(i)
    return [int(order[i]) for i in keep]


class TwoStageDetector(FaceDetector):
    """Candidates from :class:`CandidateDetector`, confirmed by :class:`FaceVerifier`.

    Each returned :class:`Detection` has ``score`` = the combined probability, ``verifier_score`` = the verifier's
    own probability, ``roll`` from the eye keypoints, and the candidate's box and keypoints.

    Args:
        verifier: The verifier (default: the shipped one, with ``threads``).
        candidates: The candidate stage (default: from the verifier config's ``candidates`` section).
        threshold: Minimum combined score (default: the config's, chosen on the tuning split).
        nms_iou: IoU above which two accepted faces are the same face.
        max_faces: Keep at most this many faces (``None``: all).
        rotations: Override the config's extra candidate passes on the rotated frame (e.g. ``(90, -90)``).
        threads: ONNX Runtime intra-op threads per model.

    ``last_timings`` holds the milliseconds of the last call's stages (``candidates``, ``verifier``).
    """

    name = "blazeface-verified"

    def __init__(self, *, verifier: FaceVerifier | None = None, candidates: FaceDetector | None = None,
                 threshold: float | None = None, nms_iou: float = 0.3, max_faces: int | None = None,
                 rotations: Sequence[int] | None = None, threads: int | None = None,
                 providers: str | Sequence[str] = "cpu") -> None:
        self.verifier = verifier or FaceVerifier(threads=threads, providers=providers)
        cfg = self.verifier.config
        cand = cfg["candidates"]
        self.candidates = candidates or CandidateDetector(
            score_threshold=float(cand["score_threshold"]), variants=tuple(cand["variants"]),
            rotations=tuple(cand.get("rotations", ())) if rotations is None else tuple(rotations),
            threads=threads, providers=providers)
        self.combination = cfg["combination"]
        self.threshold = float(cfg["threshold"] if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}")
        if max_faces is not None and max_faces < 1:
            raise ConfigError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.nms_iou, self.max_faces = nms_iou, max_faces
        self.last_timings: dict[str, float] = {}

    def score_candidates(self, frame: np.ndarray, dets: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray]:
        """``(combined probability, verifier logit)`` ``(N,)`` each, for candidates on a BGR frame."""
        logits = self.verifier.logits(frame, dets)
        return combined_score(candidate_features(dets, logits), self.combination), logits

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        t0 = time.perf_counter()
        cands = self.candidates._detect(frame)
        t1 = time.perf_counter()
        scores, logits = self.score_candidates(frame, cands)
        self.last_timings = {"candidates": (t1 - t0) * 1e3, "verifier": (time.perf_counter() - t1) * 1e3}
        idx = np.flatnonzero(scores >= self.threshold)
        if not len(idx):
            return []
        boxes = np.array([cands[i].box for i in idx], np.float64)
        keep = [int(idx[k]) for k in nms(boxes, scores[idx], self.nms_iou)][:self.max_faces]
        vprob = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        return [replace(cands[i], score=float(scores[i]), verifier_score=float(vprob[i])) for i in keep]
