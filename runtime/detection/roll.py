"""Roll refinement: BlazeFace's keypoints on a face rolled far from upright are loose (on faces rolled 90 degrees
the eye line came out 35-40 degrees short), so a rolled face is looked at again, turned upright by its first roll
estimate; the keypoints found there, mapped back, give the roll and the crop alignment."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .base import Detection, FaceDetector
from .geometry import crop_matrix, eye_roll

REFINE_ABOVE_DEG = 30.0  # faces rolled less than this keep the detector's own keypoints
REGION_SCALE = 2.0  # side of the re-examined region, in face sizes
MAX_REGION_PX = 256


def upright_region(frame: np.ndarray, det: Detection, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """The square region around ``det`` turned by ``-roll`` (so the face is upright), and the ``2 x 3`` affine map
    from region pixels to frame pixels."""
    x1, y1, x2, y2 = det.box
    size = int(max(16, min(MAX_REGION_PX, round(REGION_SCALE * max(x2 - x1, y2 - y1)))))
    to_region = crop_matrix(det.box, roll, size, REGION_SCALE)
    region = cv2.warpAffine(frame, to_region, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return region, cv2.invertAffineTransform(to_region)


def refine_roll(detector: FaceDetector, frame: np.ndarray, det: Detection, rounds: int = 2) -> Detection:
    """``det`` with keypoints and roll re-measured on its region turned upright (when it is rolled by more than
    ``REFINE_ABOVE_DEG``); the box and scores are kept. ``detector`` should find upright faces without its own
    geometry check (e.g. the short-range candidate model)."""
    if det.keypoints is None or abs(np.degrees(det.roll)) <= REFINE_ABOVE_DEG:
        return det
    roll, kps = det.roll, det.keypoints
    for _ in range(rounds):
        region, m = upright_region(frame, det, roll)
        found = detector._detect(region)
        if not found:
            break
        c = region.shape[0] / 2
        best = min(found, key=lambda d: np.hypot((d.box[0] + d.box[2]) / 2 - c, (d.box[1] + d.box[3]) / 2 - c))
        if best.keypoints is None:
            break
        kps = (np.c_[best.keypoints, np.ones(len(best.keypoints))] @ m.T).astype(np.float32)
        new = eye_roll(kps)
        done = abs(np.degrees(np.angle(np.exp(1j * (new - roll))))) < 5
        roll = new
        if done:
            break
    return replace(det, keypoints=kps, roll=float(roll))
