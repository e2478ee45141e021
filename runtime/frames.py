"""Checking and reading frames: every frame that enters ofer passes through :func:`as_bgr_frame`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a BGR uint8 frame, with a clear error for a missing or unreadable file."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"image not found: {p}; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not an image; pass one image file (the CLI `ofer run` takes folders)")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"could not decode {p} as an image (is it a supported format: "
                         f"{', '.join(IMAGE_SUFFIXES)}?)")
    return img


def as_bgr_frame(frame: Any, *, name: str = "frame") -> np.ndarray:
    """Validate a frame and return it as a contiguous BGR uint8 ``H x W x 3`` array.

    Accepts ``H x W x 3`` BGR uint8, ``H x W`` or ``H x W x 1`` grayscale uint8 (converted), or a path to an image
    file. Anything else raises :class:`InputError` saying what was wrong and how to fix it.
    """
    import cv2

    if frame is None:
        raise InputError(f"{name} is None; pass a BGR uint8 image (H x W x 3), e.g. from cv2.imread or "
                         "cv2.VideoCapture.read() — a failed read returns None")
    if isinstance(frame, (str, os.PathLike)):
        return read_image(frame)
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{name} must be a numpy array (BGR uint8, H x W x 3), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        hint = (" — scale floats in [0, 1] with (frame * 255).clip(0, 255).astype(np.uint8)"
                if np.issubdtype(frame.dtype, np.floating) else " — convert it with frame.astype(np.uint8)")
        raise InputError(f"{name} has dtype {frame.dtype}, expected uint8{hint}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3):
        raise InputError(f"{name} has shape {frame.shape}; expected H x W x 3 (BGR) or H x W (grayscale)"
                         + ("; for a batch use predict_batch()" if frame.ndim == 4 else ""))
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {frame.shape}); the capture probably failed")
    if frame.ndim == 3 and frame.shape[2] != 3:
        fix = " — drop the alpha channel with cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)" if frame.shape[2] == 4 else ""
        raise InputError(f"{name} has {frame.shape[2]} channels; expected 3 (BGR) or 1 (grayscale){fix}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(frame)
