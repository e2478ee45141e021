"""Frame sources: an image, a folder of images, a video file, a camera index or any iterator of frames."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import InputError
from .frames import IMAGE_SUFFIXES, read_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(frozen=True)
class Frame:
    """One frame of a source: its index, its time in seconds, a name (file name for image folders) and pixels."""

    index: int
    time: float
    name: str
    image: np.ndarray


class FrameSource:
    """Iterates :class:`Frame` objects; ``kind`` is ``image``, ``folder``, ``video``, ``camera`` or ``iterator``.

    ``length`` is the number of frames when known (``None`` for cameras and iterators); ``fps`` the nominal rate.
    """

    def __init__(self, kind: str, frames: Iterator[Frame], *, length: int | None, fps: float | None,
                 description: str, release: Any = None) -> None:
        self.kind, self.length, self.fps, self.description = kind, length, fps, description
        self._frames, self._release = frames, release

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        """Release the capture device or file."""
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _video_frames(cap: Any, fps: float | None, live: bool) -> Iterator[Frame]:
    i = 0
    t0 = time.perf_counter()
    while True:
        ok, img = cap.read()
        if not ok or img is None:
            return
        t = time.perf_counter() - t0 if live or not fps else i / fps
        yield Frame(i, t, str(i), img)
        i += 1


def _open_capture(target: Any, what: str) -> Any:
    import cv2
    from cv2.utils import logging as cv_log

    level = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_SILENT)  # a failed open is reported below, in one clear line
    try:
        cap = cv2.VideoCapture(target)
    finally:
        cv_log.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise InputError(f"could not open {what}; check that it exists and is a video OpenCV can decode "
                         f"({', '.join(VIDEO_SUFFIXES)})" if not isinstance(target, int) else
                         f"could not open camera {target}; check that it is connected and not used by another "
                         "program (list cameras with `ls /dev/video*` on Linux)")
    return cap


def open_source(source: str | int | os.PathLike[str] | Iterable[np.ndarray]) -> FrameSource:
    """Open a frame source.

    Args:
        source: An image file, a folder of images (sorted by name), a video file, a camera index (``int`` or a
            string of digits) or an iterable of BGR frames.
    """
    import cv2

    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        index = int(source)
        cap = _open_capture(index, f"camera {index}")
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        return FrameSource("camera", _video_frames(cap, fps, live=True), length=None, fps=fps,
                           description=f"camera {index}", release=cap.release)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"source not found: {path}; pass an image, a folder of images, a video file or a "
                             "camera index")
        if path.is_dir():
            files = _list_images(path)
            if not files:
                raise InputError(f"folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
            frames = (Frame(i, float(i), f.name, read_image(f)) for i, f in enumerate(files))
            return FrameSource("folder", frames, length=len(files), fps=None, description=str(path))
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return FrameSource("image", iter([Frame(0, 0.0, path.name, read_image(path))]), length=1, fps=None,
                               description=str(path))
        cap = _open_capture(str(path), f"video {path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return FrameSource("video", _video_frames(cap, fps, live=False), length=n, fps=fps, description=str(path),
                           release=cap.release)
    if isinstance(source, np.ndarray):
        raise InputError("a single frame is not a source; call predict(frame), or pass a list of frames")
    try:
        it = iter(source)
    except TypeError:
        raise InputError(f"cannot read frames from {type(source).__name__}; pass a path, a camera index or an "
                         "iterable of BGR frames") from None
    frames = (Frame(i, float(i), str(i), img) for i, img in enumerate(it))
    return FrameSource("iterator", frames, length=None, fps=None, description="frames")
