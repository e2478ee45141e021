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
from .blazeface import BlazeFaceDetector, plausible_face
from .geometry import eye_roll, face_geometry
from .merge import MergedDetector
from .roll import refine_roll
from .ssd import iou_matrix
from .verifier import FaceVerifier

FEATURES = ("verifier", "detector", "ear_span", "mouth_drop", "eye_span")
# A tracked face's candidate is taken without the verifier from this BlazeFace score and overlap with the predicted
# box (see TwoStageDetector.follow): the single-stage short-range threshold (0.45) and a clear overlap.
FOLLOW_MIN_SCORE = 0.5
FOLLOW_MIN_IOU = 0.5
MAX_PAD_GROWTH = 4 / 3  # integer_scale_padded pads a search region by at most a third of its longer side
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
    return replace(
        det, box=tuple(float(v) for v in box), keypoints=kp, roll=eye_roll(kp) if kp is not None else det.roll
    )


class CandidateDetector(FaceDetector):
    """BlazeFace short- and full-range at a low score threshold, without the keypoint geometry check, merged;
    optionally also run on the frame rotated by 90 degrees either way (faces rolled beyond ~45 degrees).

    Args:
        score_threshold: Minimum BlazeFace score of a candidate.
        variants: BlazeFace variants to run (see :data:`~runtime.detection.blazeface.SPECS`).
        rotations: Extra passes on the frame rotated by these angles (degrees clockwise: 90, -90, 180).
        nms_iou: IoU above which two candidates are the same face.
        threads: Intra-op threads per model.
        engine: What runs BlazeFace (see :func:`~runtime.detection.blazeface.detector_engine`).
    """

    name = "blazeface-candidates"

    def __init__(
        self,
        *,
        score_threshold: float = 0.2,
        variants: Sequence[str] = ("blazeface-short", "blazeface-full"),
        rotations: Sequence[int] = (),
        nms_iou: float = 0.3,
        threads: int | None = None,
        providers: str | Sequence[str] = "cpu",
        engine: str = "auto",
    ) -> None:
        for a in rotations:
            if a not in _ROTATE:
                raise ConfigError(f"candidate rotations must be 90, -90 or 180 degrees, got {a!r}")
        self.rotations = tuple(int(a) for a in rotations)
        self.detectors = [
            BlazeFaceDetector(
                v,
                score_threshold=score_threshold,
                check_geometry=False,
                threads=threads,
                providers=providers,
                engine=engine,
            )
            for v in variants
        ]
        self._merge = MergedDetector(self.detectors, nms_iou=nms_iou)

    def propose(self, frame: np.ndarray, detectors: Sequence[FaceDetector] | None = None) -> list[Detection]:
        """Candidates of ``detectors`` (default: all variants) on the frame and its rotations, merged."""
        h, w = frame.shape[:2]
        detectors = self.detectors if detectors is None else detectors
        dets = [d for det in detectors for d in det._detect(frame)]
        for angle in self.rotations:
            rotated = cv2.rotate(frame, _ROTATE[angle])
            dets += [unrotate(d, angle, w, h) for det in detectors for d in det._detect(rotated)]
        return self._merge.merge(dets)

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        return self.propose(frame)


def integer_scale_padded(region: np.ndarray, size: int) -> np.ndarray:
    """``region`` padded with black on the right and bottom so that its longer side is ``k * size`` and its shorter
    side a multiple of ``k`` (``k`` the smallest such integer): BlazeFace's letterbox then shrinks it by exactly ``k``,
    which OpenCV's area resize does about 2x faster than a fractional factor. Pixel coordinates are unchanged. A
    region that would grow by more than ``MAX_PAD_GROWTH`` (its face shrinking as much in the model's input) is
    returned as it is."""
    h, w = region.shape[:2]
    k = -(-max(h, w) // size)
    if k <= 1 or k * size > MAX_PAD_GROWTH * max(h, w):  # small regions: the face would shrink too much
        return region
    if w >= h:
        pad_w, pad_h = k * size - w, -h % k
    else:
        pad_w, pad_h = -w % k, k * size - h
    if not pad_w and not pad_h:
        return region
    return cv2.copyMakeBorder(region, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))


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


def check_combination(combination: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` when the combination weighs a feature that is not in :data:`FEATURES`."""
    unknown = set(combination["weights"]) - set(FEATURES)
    if unknown:
        raise ConfigError(f"verifier config combines unknown features {sorted(unknown)}; known: {FEATURES}")


def combined_score(features: dict[str, np.ndarray], combination: dict[str, Any]) -> np.ndarray:
    """``sigmoid(bias + sum_k weight_k * feature_k)`` for the weights in ``combination``."""
    check_combination(combination)
    weights = combination["weights"]
    z = np.full(len(features["verifier"]), float(combination["bias"]))
    for k, wk in weights.items():
        z += float(wk) * features[k]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy NMS, highest score first.

    A box is dropped when it overlaps a kept one by more than ``iou``, or when it is smaller than a kept one and
    its centre lies inside it (a box on part of an already found face, e.g. the visible chin under a visor).
    """
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    ious = iou_matrix(b, b)
    centres = (b[:, :2] + b[:, 2:]) / 2
    areas = np.prod(b[:, 2:] - b[:, :2], axis=1)
    keep: list[int] = []
    for i in range(len(order)):
        if all(
            ious[i, j] <= iou
            and not (
                areas[i] < areas[j] and b[j, 0] <= centres[i, 0] <= b[j, 2] and b[j, 1] <= centres[i, 1] <= b[j, 3]
            )
            for j in keep
        ):
            keep.append(i)
    return [int(order[i]) for i in keep]


def drop_spanning(boxes: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the boxes to keep: a box that holds the centres of two or more other boxes spans several faces
    (a candidate between two people), and no face contains two others, so it is dropped."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) < 3:
        return list(range(len(b)))
    c = (b[:, :2] + b[:, 2:]) / 2
    inside = (
        (b[:, None, 0] <= c[None, :, 0])
        & (c[None, :, 0] <= b[:, None, 2])
        & (b[:, None, 1] <= c[None, :, 1])
        & (c[None, :, 1] <= b[:, None, 3])
    )
    np.fill_diagonal(inside, False)
    return [i for i in range(len(b)) if inside[i].sum() < 2]


def fast_accepted(dets: Sequence[Detection], min_score: float | None) -> np.ndarray | None:
    """Boolean ``(N,)``: the candidates taken without the verifier, or ``None`` when none can be.

    A short-range BlazeFace candidate scoring ``>= min_score`` whose six keypoints form a face
    (:func:`~runtime.detection.blazeface.plausible_face`: rolled by at most 40 degrees) is a face: on the tuning
    split (every occluder kind, rolled faces, face-free frames and occluders drawn alone on them) no such candidate
    at that score was anything else. Most clean frontal faces score above it, so a clean still needs no verifier run.
    """
    if min_score is None or not dets:
        return None
    return np.array(
        [
            d.score >= min_score and d.keypoints is not None and plausible_face(np.asarray(d.box), d.keypoints)
            for d in dets
        ],
        bool,
    )


class TwoStageDetector(FaceDetector):
    """Candidates from :class:`CandidateDetector`, confirmed by :class:`FaceVerifier`.

    Each returned :class:`Detection` has ``score`` = the combined probability, ``verifier_score`` = the verifier's
    own probability, ``roll`` from the eye keypoints, and the candidate's box and keypoints; a fast-accepted
    candidate (see ``fast_accept``) or one :meth:`follow` takes without the verifier has ``score`` = its BlazeFace
    score and ``verifier_score`` = ``None`` (so a clean fast-accepted face may score lower than a verified one).

    Args:
        verifier: The verifier (default: the shipped one, with ``threads``).
        candidates: The candidate stage (default: from the verifier config's ``candidates`` section).
        threshold: Minimum combined score (default: the config's, chosen on the tuning split).
        nms_iou: IoU above which two accepted faces are the same face.
        max_faces: Keep at most this many faces (``None``: all).
        rotations: Override the config's extra candidate passes on the rotated frame (e.g. ``(90, -90)``).
        cascade: Run the full-range model only when the short-range one finds no close-up face (default: the
            config's ``candidates.cascade``, else True); see :meth:`scored_candidates`.
        close_up: Face width, as a fraction of the frame's longer side, that makes a frame a close-up.
        fast_accept: Short-range BlazeFace score from which a candidate with a face's keypoint layout is taken
            without the verifier (:func:`fast_accepted`; ``"config"``: the verifier config's
            ``candidates.fast_accept``, chosen on the tuning split by ``scripts/tune_fast_accept.py``; ``None``:
            every candidate is verified). A value below ``threshold`` acts as ``threshold``, so a fast-accepted face
            always clears it.
        threads: Intra-op threads per model.
        engine: What runs BlazeFace (see :func:`~runtime.detection.blazeface.detector_engine`); the verifier runs
            with ONNX Runtime.

    ``last_timings`` holds the milliseconds of the last call's stages (``candidates``, ``verifier``).
    """

    name = "blazeface-verified"

    def __init__(
        self,
        *,
        verifier: FaceVerifier | None = None,
        candidates: CandidateDetector | None = None,
        threshold: float | None = None,
        nms_iou: float = 0.3,
        max_faces: int | None = None,
        rotations: Sequence[int] | None = None,
        cascade: bool | None = None,
        close_up: float = 0.2,
        fast_accept: float | str | None = "config",
        threads: int | None = None,
        providers: str | Sequence[str] = "cpu",
        engine: str = "auto",
    ) -> None:
        self.verifier = verifier or FaceVerifier(threads=threads, providers=providers)
        cfg = self.verifier.config
        cand = cfg["candidates"]
        self.candidates = candidates or CandidateDetector(
            score_threshold=float(cand["score_threshold"]),
            variants=tuple(cand["variants"]),
            rotations=tuple(cand.get("rotations", ())) if rotations is None else tuple(rotations),
            threads=threads,
            providers=providers,
            engine=engine,
        )
        self.combination = cfg["combination"]
        check_combination(self.combination)
        self.threshold = float(cfg["threshold"] if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}")
        if max_faces is not None and max_faces < 1:
            raise ConfigError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        if not 0.0 < close_up <= 1.0:
            raise ConfigError(f"close_up must be in (0, 1], got {close_up!r}")
        self.nms_iou, self.max_faces = nms_iou, max_faces
        self.cascade = bool(cand.get("cascade", True) if cascade is None else cascade)
        fast = cand.get("fast_accept") if isinstance(fast_accept, str) and fast_accept == "config" else fast_accept
        if fast is not None and (isinstance(fast, (str, bool)) or not 0.0 < float(fast) < 1.0):
            raise ConfigError(f"fast_accept must be in (0, 1) or None, got {fast!r}")
        self.fast_accept = None if fast is None else float(fast)
        self.close_up = close_up
        self.last_timings: dict[str, float] = {}

    def score_candidates(
        self, frame: np.ndarray, dets: Sequence[Detection], *, confident: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(combined probability, verifier logit)`` ``(N,)`` each, for candidates on a BGR frame.

        Candidates flagged in the boolean ``confident`` ``(N,)`` skip the verifier: their score is their BlazeFace
        score and their logit NaN (see :func:`fast_accepted`).
        """
        if confident is None or not confident.any():
            logits = self.verifier.logits(frame, dets)
            return combined_score(candidate_features(dets, logits), self.combination), logits
        scores = np.array([d.score for d in dets], np.float64)
        logits = np.full(len(dets), np.nan, np.float32)
        rest = np.flatnonzero(~confident)
        if len(rest):
            sub = [dets[i] for i in rest]
            logits[rest] = self.verifier.logits(frame, sub)
            scores[rest] = combined_score(candidate_features(sub, logits[rest]), self.combination)
        return scores, logits

    def scored_candidates(
        self, frame: np.ndarray, *, cascade: bool | None = None, first: list[Detection] | None = None
    ) -> tuple[list[Detection], np.ndarray, np.ndarray]:
        """Every candidate with its combined score and verifier logit, before the threshold and NMS.

        Short-range candidates that :func:`fast_accepted` takes skip the verifier (score: their BlazeFace score,
        logit NaN); a detector made with ``fast_accept=None`` verifies them all.

        With ``cascade`` (default: the detector's setting), the first BlazeFace variant (short range) runs first,
        and the others only when none of its accepted faces is a close-up (width >= ``close_up`` of the frame's
        longer side), as :class:`~runtime.detection.merge.CascadeDetector` does. ``first``: the first group's
        candidates when they were already proposed on this frame (with cascade only).
        """
        cascade = self.cascade if cascade is None else cascade
        parts = self.candidates.detectors
        groups = [parts[:1], parts[1:]] if cascade and len(parts) > 1 else [parts]
        cands: list[Detection] = []
        scores, logits = [np.zeros(0)], [np.zeros(0, np.float32)]
        t_cand = t_ver = 0.0
        longer = max(frame.shape[:2])
        for g, group in enumerate(groups):
            t0 = time.perf_counter()
            found = first if g == 0 and first is not None and len(groups) > 1 else self.candidates.propose(frame, group)
            t1 = time.perf_counter()
            fast = None if self.fast_accept is None else max(self.fast_accept, self.threshold)
            sure = fast_accepted(found, fast) if group[0] is parts[0] else None
            s, lg = self.score_candidates(frame, found, confident=sure)
            t_ver += time.perf_counter() - t1
            t_cand += t1 - t0
            cands += found
            scores.append(s)
            logits.append(lg)
            if any(sc >= self.threshold and d.width >= self.close_up * longer for d, sc in zip(found, s)):
                break
        self.last_timings = {"candidates": t_cand * 1e3, "verifier": t_ver * 1e3}
        return cands, np.concatenate(scores), np.concatenate(logits)

    def follow(self, region: np.ndarray, predicted: Sequence[float]) -> list[Detection]:
        """Faces in the search region of a tracked face whose motion model predicts the box ``predicted``
        (``x1, y1, x2, y2`` in region pixels); used by :class:`~runtime.face_tracking.FaceTracker`.

        The near-range model runs on the region, padded with black on the right and bottom so that it scales to the
        model's input by an integer factor (:func:`integer_scale_padded`). Its candidate that overlaps the
        prediction best is taken without the verifier when it overlaps well (IoU >= ``FOLLOW_MIN_IOU``), scores
        >= ``FOLLOW_MIN_SCORE`` and its keypoints form a face (:func:`~runtime.detection.blazeface.plausible_face`):
        it continues a face that was verified when its track began. Such a detection carries the BlazeFace score as
        ``score`` and ``verifier_score`` None. Any other region (a weak or displaced candidate) goes through the
        full two-stage detection, reusing the candidates already found.
        """
        near = self.candidates.detectors[0]
        t0 = time.perf_counter()
        region = integer_scale_padded(region, near.spec.input_size)
        found = self.candidates.propose(region, [near])
        if found:
            iou = iou_matrix(np.array([predicted], np.float64), np.array([d.box for d in found], np.float64))[0]
            best = int(np.argmax(iou))
            d = found[best]
            if (
                iou[best] >= FOLLOW_MIN_IOU
                and d.score >= FOLLOW_MIN_SCORE
                and d.keypoints is not None
                and plausible_face(np.asarray(d.box), d.keypoints)
            ):
                self.last_timings = {"candidates": (time.perf_counter() - t0) * 1e3, "verifier": 0.0}
                return [refine_roll(near, region, d)]
        return self._accept(region, *self.scored_candidates(region, first=found))

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        return self._accept(frame, *self.scored_candidates(frame))

    def close(self) -> None:
        """Release the candidate models' and the verifier's engines (idempotent)."""
        self.candidates.close()
        self.verifier.engine.close()

    def _accept(
        self, frame: np.ndarray, cands: list[Detection], scores: np.ndarray, logits: np.ndarray
    ) -> list[Detection]:
        """The candidates above the threshold after NMS, with combined and verifier scores and refined roll."""
        idx = np.flatnonzero(scores >= self.threshold)
        if not len(idx):
            return []
        boxes = np.array([cands[i].box for i in idx], np.float64)
        keep = [int(idx[k]) for k in nms(boxes, scores[idx], self.nms_iou)]
        keep = [keep[k] for k in drop_spanning([cands[i].box for i in keep])][: self.max_faces]
        vprob = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        near = self.candidates.detectors[0]
        return [
            refine_roll(
                near,
                frame,
                replace(
                    cands[i],
                    score=float(scores[i]),
                    verifier_score=None if np.isnan(vprob[i]) else float(vprob[i]),
                ),
            )
            for i in keep
        ]
