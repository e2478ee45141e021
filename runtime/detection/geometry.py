"""Face geometry from BlazeFace's six keypoints, measured in the frame of the eye line (so it holds for rolled
faces), and the roll-aligned crop the verifier sees.

Keypoint order (BlazeFace): right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
(right/left of the person, so on an upright face the right eye is on the image's left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceGeometry:
    """Keypoint layout of one candidate, in the frame of its eye line.

    Attributes:
        roll: Angle of the line from the right to the left eye, radians, positive clockwise on screen
            (image y points down); 0 on an upright face.
        ear_span: Distance between the ears along the eye line, as a fraction of the box side.
        mouth_drop: How far the mouth lies below the eye midpoint, perpendicular to the eye line, as a fraction of
            the box side (negative: the mouth is above the eyes).
        eye_span: Distance between the eyes as a fraction of the box side (how well the eye line, hence the roll,
            is resolved).
    """

    roll: float
    ear_span: float
    mouth_drop: float
    eye_span: float


def eye_roll(keypoints: np.ndarray | None) -> float:
    """Roll in radians from the two eye keypoints (``keypoints[0]`` right eye, ``keypoints[1]`` left eye).

    0 for an upright face; positive when the eye line turns clockwise on screen (image y points down). ``None``,
    fewer than two keypoints, non-finite or coincident eyes give 0.
    """
    if keypoints is None or len(keypoints) < 2:
        return 0.0
    k = np.asarray(keypoints, dtype=np.float64)[:2, :2]
    dx, dy = k[1] - k[0]
    if not np.isfinite([dx, dy]).all() or (dx == 0 and dy == 0):
        return 0.0
    return float(np.arctan2(dy, dx))


def face_geometry(box: Sequence[float], keypoints: np.ndarray) -> FaceGeometry:
    """Ear span and mouth drop of ``(6, 2)`` keypoints measured along / across the eye line.

    The box side is the mean of its width and height (BlazeFace's boxes are square), so the measures do not
    change when the face rolls inside an axis-aligned box.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max((x2 - x1 + y2 - y1) / 2.0, 1e-9)
    k = np.asarray(keypoints, dtype=np.float64)
    roll = eye_roll(k)
    c, s = np.cos(roll), np.sin(roll)
    axis_x, axis_y = np.array([c, s]), np.array([-s, c])  # along the eye line, and "down" the face
    mid = (k[0] + k[1]) / 2.0
    ear_span = abs(float((k[5] - k[4]) @ axis_x)) / side
    mouth_drop = float((k[3] - mid) @ axis_y) / side
    return FaceGeometry(roll, ear_span, mouth_drop, float(np.hypot(*(k[1] - k[0]))) / side)


def crop_matrix(box: Sequence[float], roll: float, size: int, expand: float) -> np.ndarray:
    """The ``(2, 3)`` affine map from frame pixels to a ``size x size`` crop of the box, rotated upright.

    The crop is centred on the box, its side is ``expand`` times the box's longer side, and it is rotated by
    ``-roll`` so that the eye line is horizontal.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * expand
    m = cv2.getRotationMatrix2D((cx, cy), float(np.degrees(roll)), size / side)
    m[:, 2] += (size / 2.0 - cx, size / 2.0 - cy)
    return m


def aligned_crops(
    frame: np.ndarray, boxes: Sequence[Sequence[float]], rolls: Sequence[float], size: int, expand: float
) -> np.ndarray:
    """Roll-aligned square crops ``(N, size, size, 3)`` uint8 of ``frame`` (BGR), one per box.

    Large faces are cut from a level of the frame's image pyramid at most 2x the crop size, so that the bilinear
    warp does not alias; outside the frame is black (as BlazeFace's letterbox padding).
    """
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    fh, fw = frame.shape[:2]
    for i, (box, roll) in enumerate(zip(boxes, rolls)):
        side = max(box[2] - box[0], box[3] - box[1], 1.0) * expand
        level = int(np.clip(np.floor(np.log2(side / (2.0 * size))) + 1, 0, 6)) if side > 2 * size else 0
        # Only the region the rotated crop can reach is reduced (not the whole frame): a level-aligned window
        # around the box, so its pyramid equals the whole frame's pyramid there.
        half = 0.75 * side + 2 ** (level + 2)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        step = 2**level
        x0, y0 = max(0, int(cx - half) // step * step), max(0, int(cy - half) // step * step)
        x1, y1 = min(fw, int(np.ceil(cx + half))), min(fh, int(np.ceil(cy + half)))
        if x1 <= x0 or y1 <= y0:
            continue  # the box lies outside the frame: a black crop
        region = frame[y0:y1, x0:x1]
        for _ in range(level):
            region = cv2.pyrDown(region)
        scale = 0.5**level
        shifted = [box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0]
        m = crop_matrix([v * scale for v in shifted], roll, size, expand)
        out[i] = cv2.warpAffine(
            region, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
        )
    return out
