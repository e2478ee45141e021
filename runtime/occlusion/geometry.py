"""Assumed geometry of an aligned face crop (fractions of the crop's width and height).

Every occlusion protocol and the procedural face renderer share these numbers, so that ``eyes``
covers the eyes, ``mouth`` the mouth and ``upper_half`` what a VR headset hides. They match
FER2013 / RAF-DB style aligned crops: the face fills the square crop, the forehead is partly cut,
the chin sits near the bottom edge::

    y = 0.04  top of the face region (hairline/forehead)
    y = 0.29  eyebrows (rest)
    y = 0.38  eye line; eye centres at x = 0.31 and x = 0.69
    y = 0.58  nose tip
    y = 0.75  mouth centre; corners near x = 0.34 and x = 0.66
    y = 0.97  chin

All boxes are ``(x0, y0, x1, y1)`` fractions, x0/y0 inclusive, x1/y1 exclusive.
"""

from __future__ import annotations

from typing import Final

Box = tuple[float, float, float, float]

EYE_Y: Final = 0.38
EYE_LEFT_X: Final = 0.31
EYE_RIGHT_X: Final = 0.69
BROW_Y: Final = 0.29
NOSE_TIP_Y: Final = 0.58
MOUTH_Y: Final = 0.75
MOUTH_HALF_WIDTH: Final = 0.16
CHIN_Y: Final = 0.97

#: The face region inside the crop; ``random_box:f`` covers ``f`` of this area, ``r8``/``r16``/``r24`` and the
#: random shapes and textured occluders are placed inside it.
FACE_BOX: Final[Box] = (0.08, 0.04, 0.92, 1.0)
#: Eyes and lids (sunglasses-like band); the brows at rest stay mostly visible.
EYES_BAND: Final[Box] = (0.08, 0.30, 0.92, 0.48)
#: Lips, corners and the opened jaw.
MOUTH_BAND: Final[Box] = (0.18, 0.63, 0.82, 0.90)
#: VR headset: everything above the middle of the crop (brows, eyes, upper nose).
UPPER_HALF: Final[Box] = (0.0, 0.0, 1.0, 0.5)
#: Medical mask: lower nose, mouth and chin.
LOWER_HALF: Final[Box] = (0.0, 0.5, 1.0, 1.0)


def box_to_pixels(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """Converts a fractional box to integer pixel bounds ``(x0, y0, x1, y1)`` for an ``height x width`` crop."""
    x0, y0, x1, y1 = box
    return (int(round(x0 * width)), int(round(y0 * height)), int(round(x1 * width)), int(round(y1 * height)))
