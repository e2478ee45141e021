"""Annotated video files: ``.mp4`` in H.264 (``avc1``, which browsers play) when OpenCV or PyAV can write it, else
MPEG-4 Part 2 (``mp4v``); ``.avi`` in MJPG. :attr:`VideoWriter.codec` says which codec was used.

PyAV (``av``) is optional and imported only when OpenCV's FFmpeg build has no H.264 encoder (opencv-python wheels
usually have none: they ship without libx264 for licence reasons).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import InputError

#: Suffix -> codecs tried in order (``avc1``: H.264 through PyAV, else OpenCV; then the fallback).
CODECS = {".avi": ("MJPG",), ".mp4": ("avc1", "mp4v"), ".m4v": ("avc1", "mp4v"), ".mov": ("avc1", "mp4v")}


def _quiet_opencv() -> Any:
    """Silence OpenCV's FFmpeg errors while probing encoders (a missing H.264 encoder is expected)."""
    import cv2

    try:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        return previous
    except AttributeError:  # very old OpenCV
        return None


class VideoWriter:
    """Writes BGR frames to ``path``; the codec is chosen on the first frame (its size fixes the video's).

    Args:
        path: ``.mp4``/``.m4v``/``.mov`` (H.264 when possible, else mp4v) or ``.avi`` (MJPG).
        fps: Frames per second (``None`` or <= 0: 25).
        prefer: Codecs to try first, e.g. ``("mp4v",)`` to skip H.264.

    Raises:
        InputError: unsupported suffix, or no encoder could open the file.
    """

    def __init__(
        self, path: str | os.PathLike[str], fps: float | None = None, prefer: tuple[str, ...] | None = None
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise InputError(f"{self.path}: use one of {', '.join(CODECS)} for an annotated video")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.codecs = tuple(prefer or ()) + CODECS[suffix]
        self.codec: str | None = None
        self.frames = 0
        self._cv: Any = None
        self._av: Any = None

    def _open(self, width: int, height: int) -> None:
        import cv2

        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = _quiet_opencv()
        try:
            for codec in self.codecs:
                if codec == "avc1" and self._open_av(width, height):  # PyAV first: OpenCV's probe prints errors
                    return
                writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, (width, height))
                if writer.isOpened():
                    self._cv, self.codec = writer, codec
                    return
                writer.release()
        finally:
            if previous is not None:
                cv2.utils.logging.setLogLevel(previous)
        raise InputError(
            f"no video encoder could write {self.path} (tried {', '.join(self.codecs)}); write .avi "
            "(MJPG) instead, or install an OpenCV/PyAV build with FFmpeg encoders"
        )

    def _open_av(self, width: int, height: int) -> bool:
        """H.264 through PyAV (yuv420p needs even sizes: odd frames are padded by one pixel)."""
        try:
            import av
        except ImportError:
            return False
        if "libx264" not in av.codecs_available and "h264" not in av.codecs_available:
            return False
        try:
            from fractions import Fraction

            container = av.open(str(self.path), mode="w")
            stream = container.add_stream(
                "libx264" if "libx264" in av.codecs_available else "h264",
                rate=Fraction(self.fps).limit_denominator(1000),
            )
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "20", "preset": "veryfast", "movflags": "+faststart"}
        except Exception:  # PyAV raises its own error types for a missing/broken encoder
            return False
        self._av, self.codec = (container, stream), "avc1"
        return True

    def write(self, image: np.ndarray) -> None:
        """Append one BGR ``H x W x 3`` uint8 frame (every frame the size of the first)."""
        h, w = image.shape[:2]
        if self._cv is None and self._av is None:
            self._open(w, h)
        if self._av is not None:
            import av

            container, stream = self._av
            if (h, w) != (stream.height, stream.width):
                image = np.pad(image, ((0, stream.height - h), (0, stream.width - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")):
                container.mux(packet)
        else:
            self._cv.write(image)
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file (safe to call twice)."""
        if self._av is not None:
            container, stream = self._av
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            self._av = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None
