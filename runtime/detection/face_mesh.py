"""MediaPipe Face Mesh topology: which of the 468 landmarks belong to which facial region.

Index sets are the vertices of the contours in MediaPipe's ``face_mesh_connections.py`` (``mediapipe==0.10.21``,
Apache-2.0): ``FACEMESH_LIPS``, ``FACEMESH_{LEFT,RIGHT}_EYE``, ``FACEMESH_{LEFT,RIGHT}_EYEBROW``, ``FACEMESH_NOSE``
and ``FACEMESH_FACE_OVAL``. Left/right are the person's: the right eye appears on the image's left in an upright,
camera-facing face. :data:`JAW` is the part of the face oval below the cheeks' widest points (234 and 454),
chin (152) in the middle.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 468

LIPS = (
    0,
    13,
    14,
    17,
    37,
    39,
    40,
    61,
    78,
    80,
    81,
    82,
    84,
    87,
    88,
    91,
    95,
    146,
    178,
    181,
    185,
    191,
    267,
    269,
    270,
    291,
    308,
    310,
    311,
    312,
    314,
    317,
    318,
    321,
    324,
    375,
    402,
    405,
    409,
    415,
)
MOUTH = LIPS
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
# The face oval in contour order, starting at the top of the forehead (10) and going over the person's left side.
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
JAW = FACE_OVAL[FACE_OVAL.index(323) : FACE_OVAL.index(93) + 1]  # 19 points, left cheek -> chin -> right cheek

EYES = tuple(sorted(RIGHT_EYE + LEFT_EYE))
BROWS = tuple(sorted(RIGHT_EYEBROW + LEFT_EYEBROW))
UPPER_FACE = tuple(sorted(EYES + BROWS))  # what a VR visor covers
LOWER_FACE = tuple(sorted(set(MOUTH) | set(JAW)))  # what stays visible under a visor

REGIONS: dict[str, tuple[int, ...]] = {
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "eyes": EYES,
    "right_eyebrow": RIGHT_EYEBROW,
    "left_eyebrow": LEFT_EYEBROW,
    "brows": BROWS,
    "nose": NOSE,
    "mouth": MOUTH,
    "jaw": JAW,
    "face_oval": FACE_OVAL,
    "upper_face": UPPER_FACE,
    "lower_face": LOWER_FACE,
}

# Single landmarks MediaPipe's graphs use.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the rotation vector of FaceLandmarkLandmarksToRoi
NOSE_TIP = 1
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
RIGHT_CHEEK_SIDE, LEFT_CHEEK_SIDE = 234, 454  # the oval's widest points, next to the ear tragions


def keypoints6(points: np.ndarray) -> np.ndarray:
    """BlazeFace-style keypoints from 468 landmarks, so one geometry serves both.

    Args:
        points: ``(468, 2+)`` landmarks (x, y first), any units.

    Returns:
        ``(6, 2)`` float32: right eye (centre of its contour), left eye, nose tip (1), mouth centre (mean of 13
        and 14), right ear (234), left ear (454); the order of :class:`runtime.detection.Detection` keypoints.
    """
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return np.stack(
        [
            p[list(RIGHT_EYE)].mean(0),
            p[list(LEFT_EYE)].mean(0),
            p[NOSE_TIP],
            (p[UPPER_LIP_INNER] + p[LOWER_LIP_INNER]) / 2,
            p[RIGHT_CHEEK_SIDE],
            p[LEFT_CHEEK_SIDE],
        ]
    ).astype(np.float32)
