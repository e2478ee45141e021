"""Frame sources: an image, a folder of images, a video file, a camera or any iterator of frames.

What a source does when the input misbehaves (never silently):

* a folder image that cannot be read (truncated, empty, not an image) becomes a :class:`Frame` with ``error`` set
  and ``image=None``; the source goes on and lists it in ``skipped``;
* a video's frame times come from the container's timestamps (variable frame rate clips keep their real times);
  a video that ends before the frames its header announced adds a line to ``warnings``;
* a camera that stops delivering frames is reopened up to ``camera_retries`` times, then the source *fails*:
  ``error`` says why (a finished file is not a failure);
* a path that exists wins over a camera index (``./2024`` or a file named ``0``); FFmpeg's own messages are kept
  off stderr while a video or camera is opened.
"""

from __future__ import annotations

import os
import stat
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .errors import InputError
from .frames import IMAGE_SUFFIXES, read_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
CAMERA_RETRY_DELAY_S = 0.5


class SourceWarning(UserWarning):
    """Something about a source the user should know (e.g. a truncated video); the run goes on."""


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        index: Position in the source (for folders: position in the sorted file list, skipped files included).
        time: Seconds: the container's timestamp (video), seconds since opening (camera), the index otherwise.
        name: File name (folders, images) or the index as text.
        image: BGR pixels, or ``None`` when ``error`` is set.
        error: Why this item could not be read (it is skipped), else ``None``.
    """

    index: int
    time: float
    name: str
    image: np.ndarray | None
    error: str | None = None


class FrameSource:
    """Iterates :class:`Frame` objects; ``kind`` is ``image``, ``folder``, ``video``, ``camera`` or ``iterator``.

    Attributes:
        length: Number of frames when known (``None`` for cameras and iterators); ``fps`` the nominal rate.
        skipped: ``(name, reason)`` of every item skipped so far.
        warnings: Messages about the source (e.g. truncated video), also issued as :class:`SourceWarning`.
        error: Set when the source failed (a camera stopped delivering frames), else ``None``.
        names: The file names of a folder source, in order (empty for other kinds).
    """

    def __init__(
        self,
        kind: str,
        frames: Iterator[Frame] | Callable[["FrameSource"], Iterator[Frame]],
        *,
        length: int | None,
        fps: float | None,
        description: str,
        release: Any = None,
    ) -> None:
        self.kind, self.length, self.fps, self.description = kind, length, fps, description
        self.skipped: list[tuple[str, str]] = []
        self.warnings: list[str] = []
        self.error: str | None = None
        self.names: list[str] = []
        self._frames = frames(self) if callable(frames) else frames
        self._release = release

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def warn(self, message: str) -> None:
        """Record a warning about the source and issue it as a :class:`SourceWarning`."""
        self.warnings.append(message)
        warnings.warn(message, SourceWarning, stacklevel=2)

    def close(self) -> None:
        """Release the capture device or file."""
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (FFmpeg writes there directly, around OpenCV's logging)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _list_images(folder: Path) -> list[Path]:
    """Every entry with an image suffix that is not a folder (unreadable ones are skipped when read)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def _folder_frames(files: list[Path]) -> Callable[[FrameSource], Iterator[Frame]]:
    def frames(src: FrameSource) -> Iterator[Frame]:
        for i, f in enumerate(files):
            try:
                yield Frame(i, float(i), f.name, read_image(f))
            except InputError as exc:
                src.skipped.append((f.name, str(exc)))
                yield Frame(i, float(i), f.name, None, error=str(exc))

    return frames


def _open_capture(target: Any, what: str) -> Any:
    import cv2
    from cv2.utils import logging as cv_log

    # FFmpeg's own messages (e.g. "moov atom not found", "overread 8") are not ofer's: OpenCV reads this variable
    # when its FFmpeg backend starts (the user's own setting wins); the fd redirect covers opening in any case.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    level = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_SILENT)  # a failed open is reported below, in one clear line
    try:
        with quiet_stderr():
            cap = cv2.VideoCapture(target)
            opened = cap.isOpened()
    finally:
        cv_log.setLogLevel(level)
    if not opened:
        cap.release()
        if isinstance(target, int):
            raise InputError(
                f"could not open camera {target}; check that it is connected and not used by another "
                f"program (list cameras with `ls /dev/video*` on Linux); to read a file or folder "
                f"named {target}, write its path as ./{target}"
            )
        raise InputError(
            f"could not open {what}; check that it is a complete video OpenCV can decode ({', '.join(VIDEO_SUFFIXES)})"
        )
    return cap


def _video_frames(cap: Any, fps: float | None, announced: int | None, path: str) -> Callable[..., Iterator[Frame]]:
    """Frames of a video file, timed by the container's timestamps (``CAP_PROP_POS_MSEC``)."""
    import cv2

    def frames(src: FrameSource) -> Iterator[Frame]:
        i = 0
        last = -1.0
        while True:
            ok, img = cap.read()
            if not ok or img is None:
                break
            pos = cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            # A backend without timestamps reports 0 (or goes backwards): fall back to the nominal rate.
            t = pos if pos > last or (i == 0 and pos >= 0) else (i / fps if fps else float(i))
            last = t
            yield Frame(i, t, str(i), img)
            i += 1
        # Headers count packets, and a few may not decode (edit lists, B-frame leftovers): allow 5 % (>= 3 frames).
        if announced and announced - i > max(3, announced // 20):
            src.warn(
                f"video {path}: decoded {i} of the {announced} frames its header announces (the file is "
                "truncated or damaged); results cover only those frames"
            )

    return frames


def _camera_frames(index: int, cap: Any, retries: int) -> Callable[[FrameSource], Iterator[Frame]]:
    """Frames of a live camera, timed since opening; a camera that stops is reopened ``retries`` times."""

    def frames(src: FrameSource) -> Iterator[Frame]:
        nonlocal cap
        i, attempts = 0, 0
        t0 = time.perf_counter()
        while True:
            ok, img = cap.read() if cap is not None else (False, None)
            if ok and img is not None:
                attempts = 0
                yield Frame(i, time.perf_counter() - t0, str(i), img)
                i += 1
                continue
            if attempts >= retries:
                src.error = (
                    f"camera {index} stopped delivering frames after {i} frames"
                    + (f" (reopened {retries} times)" if retries else "")
                    + "; check the cable/driver, or pass --camera-retries N to retry longer"
                )
                return
            attempts += 1
            if cap is not None:
                cap.release()
            time.sleep(CAMERA_RETRY_DELAY_S)
            try:
                cap = _open_capture(index, f"camera {index}")
            except InputError:
                cap = None
            src._release = cap.release if cap is not None else None

    return frames


def _is_camera_index(source: Any) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and source.isdigit() and not Path(source).exists())


def open_source(
    source: str | int | os.PathLike[str] | Iterable[np.ndarray], *, camera_retries: int = 0, live_capture: Any = None
) -> FrameSource:
    """Open a frame source.

    Args:
        source: An image file, a folder of images (sorted by name), a video file, a camera index (``int``, or a
            string of digits that is not an existing path) or an iterable of BGR frames.
        camera_retries: How many times a camera that stops delivering frames is reopened before the source fails.
        live_capture: Internal: an open ``cv2.VideoCapture`` to read as the camera ``source`` (tests play a file
            as a camera that stops).

    Raises:
        InputError: the source does not exist, cannot be opened, or is not a regular file/folder/camera.
    """
    import cv2

    if not isinstance(camera_retries, int) or camera_retries < 0:
        raise InputError(f"camera_retries must be an integer >= 0, got {camera_retries!r}")
    if _is_camera_index(source):
        index = int(source)  # type: ignore[arg-type]
        cap = live_capture if live_capture is not None else _open_capture(index, f"camera {index}")
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        return FrameSource(
            "camera",
            _camera_frames(index, cap, camera_retries),
            length=None,
            fps=fps,
            description=f"camera {index}",
            release=cap.release,
        )
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            mode = path.stat().st_mode
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            raise InputError(
                f"source not found: {path}; pass an image, a folder of images, a video file or a camera index"
            ) from None
        if stat.S_ISDIR(mode):
            files = _list_images(path)
            if not files:
                raise InputError(f"folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
            src = FrameSource("folder", _folder_frames(files), length=len(files), fps=None, description=str(path))
            src.names = [f.name for f in files]
            return src
        if not stat.S_ISREG(mode):
            raise InputError(
                f"{path} is not a regular file (a FIFO, socket or device?); save it to a file first, "
                "or pass a camera by its index"
            )
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return FrameSource(
                "image", iter([Frame(0, 0.0, path.name, read_image(path))]), length=1, fps=None, description=str(path)
            )
        cap = _open_capture(str(path), f"video {path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return FrameSource(
            "video",
            _video_frames(cap, fps, n, str(path)),
            length=n,
            fps=fps,
            description=str(path),
            release=cap.release,
        )
    if isinstance(source, np.ndarray):
        raise InputError("a single frame is not a source; call predict(frame), or pass a list of frames")
    try:
        it = iter(source)
    except TypeError:
        raise InputError(
            f"cannot read frames from {type(source).__name__}; pass a path, a camera index or an iterable of BGR frames"
        ) from None
    frames = (Frame(i, float(i), str(i), img) for i, img in enumerate(it))
    return FrameSource("iterator", frames, length=None, fps=None, description="frames")
