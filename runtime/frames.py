"""Checking and reading frames: every frame that enters ofer passes through :func:`as_bgr_frame`.

What is accepted (anything else is one :class:`InputError` that says how to fix it):

* ``H x W x 3`` BGR and ``H x W`` / ``H x W x 1`` grayscale arrays;
* ``H x W x 4`` BGRA and ``H x W x 2`` gray + alpha: composited onto :data:`ALPHA_BACKGROUND` (fully transparent
  pixels become background, so an invisible face is never found);
* dtypes: ``uint8``; ``uint16`` (its top 8 bits); other integers whose values lie in [0, 255]; floats whose range
  is [0, 1] (scaled by 255) or [0, 255] (a float frame whose maximum is <= 1 is read as [0, 1]);
* at most `pixel_limit()` pixels (``OFER_MAX_PIXELS``, default 200 million), checked from the file header
  before an image is decoded, so a decompression bomb is refused before it allocates anything;
* image files that are regular files (a FIFO or device named ``.jpg`` is refused instead of blocking).
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
ALPHA_BACKGROUND = (255, 255, 255)  # BGR under transparent pixels: white, as image viewers show them
DEFAULT_MAX_PIXELS = 200_000_000
_FLOAT_HINT = (
    "convert it to uint8 first, e.g. frame = cv2.normalize(frame, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)"
)


def pixel_limit() -> int:
    """The largest frame (width x height) ofer accepts: ``OFER_MAX_PIXELS`` or 200 million."""
    raw = os.environ.get("OFER_MAX_PIXELS")
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"OFER_MAX_PIXELS must be a positive integer (pixels per frame), got {raw!r}")
    return value


def _check_pixels(width: int, height: int, what: str, limit: int | None) -> None:
    limit = pixel_limit() if limit is None else limit
    if width * height > limit:
        raise InputError(
            f"{what} is {width} x {height} = {width * height:,} pixels, over the limit of {limit:,}; "
            "shrink it first, or raise the limit with OFER_MAX_PIXELS=N if it is genuine"
        )


def image_header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG, JPEG, BMP or WebP header without decoding; ``None`` if not found."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        return None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + seg_len
    return None


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a BGR uint8 frame (alpha composited, 16-bit reduced to 8), with one clear error for a
    missing, non-regular, oversized or undecodable file.

    Args:
        path: The image file.
        max_pixels: Refuse images with more pixels than this (default: :func:`pixel_limit`).
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"image not found: {p}; check the path") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise InputError(f"cannot read {p!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p} is a folder, not an image; pass one image file (the CLI `ofer run` takes folders)")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p} is not a regular file (a FIFO, socket or device?); save the image to a file first")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{p} is empty (0 bytes); the file was not written completely")
    size = image_header_size(data)
    limit = pixel_limit() if max_pixels is None else max_pixels
    if size is not None:
        _check_pixels(size[0], size[1], f"image {p}", limit)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(limit))  # OpenCV's own cap, for other formats
    import cv2

    # JPEG has no alpha: decode it in colour (this applies its EXIF orientation); other formats keep their alpha
    # and bit depth, which as_bgr_frame converts.
    flags = cv2.IMREAD_COLOR if data[:2] == b"\xff\xd8" else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        img = None
    if img is None:
        raise InputError(f"could not decode {p} as an image (truncated, or not one of {', '.join(IMAGE_SUFFIXES)}?)")
    return as_bgr_frame(img, name=f"image {p}", max_pixels=limit)


def _to_uint8(frame: np.ndarray, name: str) -> np.ndarray:
    """The frame's values as uint8 (see the module docstring for the rules)."""
    dt = frame.dtype
    if dt == np.uint8:
        return frame
    if dt == np.uint16:
        return (frame >> 8).astype(np.uint8)
    if dt == np.bool_ or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise InputError(
            f"{name} has dtype {dt}; pass a BGR image as uint8 (or uint16, or float in [0, 1] or [0, 255])"
        )
    if np.issubdtype(dt, np.floating):
        if not np.isfinite(frame).all():
            raise InputError(f"{name} has NaN or infinite values; fix the computation that produced it")
        lo, hi = float(frame.min()), float(frame.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(frame.astype(np.float32) * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.rint(frame).astype(np.uint8)
        raise InputError(
            f"{name} is {dt} with values in [{lo:.4g}, {hi:.4g}], neither [0, 1] nor [0, 255]; " + _FLOAT_HINT
        )
    lo, hi = int(frame.min()), int(frame.max())
    if lo >= 0 and hi <= 255:
        return frame.astype(np.uint8)
    raise InputError(f"{name} is {dt} with values in [{lo}, {hi}], not [0, 255]; " + _FLOAT_HINT)


def _composite(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``color`` (H x W x 3 or H x W, uint8) over :data:`ALPHA_BACKGROUND` with ``alpha`` (H x W, uint8)."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    if color.ndim == 2:
        color = np.repeat(color[..., None], 3, axis=2)
    bg = np.asarray(ALPHA_BACKGROUND, np.float32)
    return np.rint(color.astype(np.float32) * a + bg * (1.0 - a)).astype(np.uint8)


def as_bgr_frame(frame: Any, *, name: str = "frame", max_pixels: int | None = None) -> np.ndarray:
    """Validate a frame and return it as a contiguous BGR uint8 ``H x W x 3`` array.

    Args:
        frame: An array (see the module docstring for the shapes and dtypes accepted) or the path of an image.
        name: How error messages call the frame.
        max_pixels: Refuse frames with more pixels than this (default: :func:`pixel_limit`).

    Raises:
        InputError: what was wrong and how to fix it.
    """
    import cv2

    if frame is None:
        raise InputError(
            f"{name} is None; pass a BGR uint8 image (H x W x 3), e.g. from cv2.imread or "
            "cv2.VideoCapture.read() — a failed read returns None"
        )
    if isinstance(frame, (str, os.PathLike)):
        return read_image(frame, max_pixels=max_pixels)
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{name} must be a numpy array (BGR uint8, H x W x 3), got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3):
        raise InputError(
            f"{name} has shape {frame.shape}; expected H x W x 3 (BGR) or H x W (grayscale)"
            + ("; for a batch use predict_batch()" if frame.ndim == 4 else "")
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {frame.shape}); the capture probably failed")
    if frame.ndim == 3 and frame.shape[2] not in (2, 3, 4):
        raise InputError(f"{name} has {frame.shape[2]} channels; expected 3 (BGR), 4 (BGRA) or 1 (grayscale)")
    _check_pixels(frame.shape[1], frame.shape[0], f"{name}", max_pixels)
    frame = _to_uint8(frame, name)
    if frame.ndim == 3 and frame.shape[2] in (2, 4):
        return _composite(frame[..., :-1] if frame.shape[2] == 4 else frame[..., 0], frame[..., -1])
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(frame)
