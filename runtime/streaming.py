"""Streaming: capture, finding faces and inference overlap in threads joined by bounded queues.

::

    capture thread ─► [queue] ─► stage thread 1 (detect + track) ─► [queue] ─► stage thread 2 (crop, classify,
    smooth) ─► [queue] ─► consumer (``for result in stream``)

A :class:`ParallelStage` is one stage run by several threads on successive packets (each its own callable, e.g.
its own detector); its packets leave in the order they came. ``Recognizer.stream`` uses one for full-frame
detection, then tracks, crops and classifies in the next stage (``runtime.processor.StreamStages``).

``offline`` mode processes every frame in order; a full queue makes the stage before it wait. ``realtime`` mode
never builds a backlog: every queue holds only the newest item, so when a later stage (or the consumer) is slower
than capture, stale frames are dropped and counted (``StreamResult.dropped_so_far``).

A :class:`Stream` stops all its threads and releases the source on :meth:`Stream.close`, on leaving a ``with``
block, when it is garbage collected (e.g. after ``break`` out of ``for r in rec.stream(...)``), on
``KeyboardInterrupt`` in the consumer, and when any stage raises (the exception is re-raised in the consumer).

Bad items do not end a stream: an unreadable image of a folder arrives as a result with ``error`` set (no
predictions, ``image=None``) and is listed in :attr:`Stream.skipped`; a source that fails (a camera that stopped
delivering frames) ends the stream with one last result that has ``source_failed=True`` (also
:attr:`Stream.source_error`). Check ``result.error`` before using ``result.image``.
The stages are plain callables, so this module knows nothing about models (see ``runtime.processor``).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConfigError
from .sources import Frame, FrameSource, open_source

MODES = ("auto", "offline", "realtime")
_END = object()
_SOURCE_FAILED = object()
_JOIN_TIMEOUT_S = 5.0


class _Cancelled(Exception):
    """Raised inside workers when the stream is being shut down."""


@dataclass
class Packet:
    """A frame travelling through the stages: each stage reads ``data``/adds to it and adds its timings."""

    frame: Frame
    captured: float  # time.perf_counter() when the frame left the source
    timings_ms: dict[str, float] = field(default_factory=dict)
    data: Any = None
    predictions: list[Any] = field(default_factory=list)


@dataclass
class StreamResult:
    """The result of one processed frame.

    Attributes:
        frame_index: Index of the frame in the source (gaps in realtime mode are dropped frames).
        time: The frame's time in seconds (video position, or seconds since the camera opened).
        name: The frame's name (file name for folders of images).
        predictions: One prediction per face, with ``track_id`` and (if smoothing is on) smoothed scores.
        dropped_so_far: Frames dropped so far by realtime mode (always 0 offline).
        latency_ms: Milliseconds from the frame leaving the source to this result reaching the consumer.
        timings_ms: Milliseconds per stage for this frame (``capture``, ``detect``, ``crop``, ``normalize``,
            ``classify``, ``track``, ...).
        image: The frame's pixels (BGR), e.g. for drawing; ``None`` when ``error`` is set.
        error: ``None`` for a processed frame. Otherwise why there is no result: an item of the source that could
            not be read (e.g. a truncated image in a folder: it is skipped, the stream goes on), or, with
            ``source_failed``, why the source failed (the last result of the stream).
        source_failed: The source failed (a camera stopped delivering frames); nothing follows this result.
    """

    frame_index: int
    time: float
    name: str
    predictions: list[Any]
    dropped_so_far: int
    latency_ms: float
    timings_ms: dict[str, float]
    image: np.ndarray | None
    error: str | None = None
    source_failed: bool = False


class _Control:
    """State shared by all threads of a stream: the channels, the first error, and counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.dropped = 0
        self.produced = 0
        self.channels: list[_Channel] = []

    def cancel(self, upto: int | None = None) -> None:
        """Cancel the channels up to index ``upto`` (all by default): their producers and consumers stop."""
        with self.lock:
            for ch in self.channels[: None if upto is None else upto + 1]:
                ch.cancelled = True
                ch.cond.notify_all()

    def fail(self, error: BaseException, channel: int) -> None:
        """A thread reading ``channel`` failed: stop everything upstream; downstream drains, then re-raises."""
        with self.lock:
            if self.error is None:
                self.error = error
        self.cancel(channel)
        if channel + 1 < len(self.channels):
            self.channels[channel + 1].close()


class _Channel:
    """A bounded queue between two threads; with ``drop_oldest`` a full queue discards its oldest item."""

    def __init__(self, ctl: _Control, capacity: int, drop_oldest: bool) -> None:
        self.ctl, self.capacity, self.drop_oldest = ctl, capacity, drop_oldest
        self.cond = threading.Condition(ctl.lock)
        self.items: deque[Any] = deque()
        self.closed = False
        self.cancelled = False
        self.taken = 0
        ctl.channels.append(self)

    def put(self, item: Any) -> None:
        with self.cond:
            while True:
                if self.cancelled:
                    raise _Cancelled
                if len(self.items) < self.capacity:
                    break
                if self.drop_oldest:
                    self.items.popleft()
                    self.ctl.dropped += 1
                    break
                self.cond.wait(0.2)
            self.items.append(item)
            self.cond.notify_all()

    def get(self) -> Any:
        with self.cond:
            return self._get_locked()

    def _get_locked(self) -> Any:
        while True:
            if self.cancelled:
                raise _Cancelled
            if self.items:
                item = self.items.popleft()
                self.cond.notify_all()
                return item
            if self.closed:
                return _END
            self.cond.wait(0.2)

    def get_numbered(self) -> tuple[int, Any]:
        """:meth:`get`, with the item's position among the items taken from this channel (0, 1, 2, ...)."""
        with self.cond:
            item = self._get_locked()
            if item is _END:
                return -1, item
            self.taken += 1
            return self.taken - 1, item

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def __len__(self) -> int:
        return len(self.items)


def _capture(ctl: _Control, source: FrameSource, out: _Channel, pace_fps: float | None) -> None:
    try:
        frames = iter(source)
        t0 = time.perf_counter()
        i = 0
        while not out.cancelled:
            if pace_fps:
                wait = t0 + i / pace_fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            t_read = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                if source.error is not None:  # the source failed: one last result says so
                    out.put(
                        Packet(
                            Frame(i, 0.0, "", None, error=source.error), time.perf_counter(), {}, data=_SOURCE_FAILED
                        )
                    )
                break
            now = time.perf_counter()
            packet = Packet(frame, now, {"capture": (now - t_read) * 1e3})
            with ctl.lock:
                ctl.produced += 1
            out.put(packet)
            i += 1
        out.close()
    except _Cancelled:
        pass
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the consumer
        ctl.fail(exc, -1)
    finally:
        source.close()


@dataclass(frozen=True)
class ParallelStage:
    """A stage run by several threads at once, one callable each (e.g. each with its own detector), on different
    packets; its packets leave in the order they arrived. For work on one frame that does not depend on the frames
    before it (full-frame face detection), so that a stage slower than the others no longer sets the pace.

    Attributes:
        workers: One callable per thread (at least one; :class:`Stream` refuses an empty tuple); each reads and
            extends a :class:`Packet` like a plain stage. They run concurrently, so they must not share state
            that is not thread-safe (give each its own detector).
    """

    workers: tuple[Callable[[Packet], None], ...]


class _InOrder:
    """Puts numbered packets on a channel in their order, whichever worker finishes first."""

    def __init__(self, out: _Channel, workers: int) -> None:
        self.out, self.left = out, workers
        self.lock = threading.Lock()
        self.pending: dict[int, Packet] = {}
        self.next = 0

    def put(self, seq: int, packet: Packet) -> None:
        with self.lock:
            self.pending[seq] = packet
            while self.next in self.pending:
                self.out.put(self.pending.pop(self.next))
                self.next += 1

    def worker_done(self) -> None:
        """A worker saw the end of its input; the last one closes the output (every packet was put by then)."""
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.out.close()


def _stage_worker(ctl: _Control, k: int, fn: Callable[[Packet], None], order: _InOrder) -> None:
    """One thread of stage ``k`` (a plain stage is a parallel stage with one worker)."""
    inp = ctl.channels[k]
    try:
        while True:
            seq, packet = inp.get_numbered()
            if packet is _END:
                break
            if packet.frame.error is None:  # skipped items and source failures pass through untouched
                fn(packet)
            order.put(seq, packet)
        order.worker_done()
    except _Cancelled:
        pass
    except BaseException as exc:  # noqa: BLE001
        ctl.fail(exc, k)


def resolve_mode(mode: str, source_kind: str) -> str:
    """``auto`` is ``realtime`` for cameras and ``offline`` for everything else."""
    if mode not in MODES:
        raise ConfigError(
            f"unknown stream mode {mode!r}; use 'offline' (every frame, in order), 'realtime' "
            "(drop stale frames, never lag) or 'auto' (realtime for cameras)"
        )
    if mode == "auto":
        return "realtime" if source_kind == "camera" else "offline"
    return mode


class Stream:
    """An iterator of :class:`StreamResult` over a frame source, with the stages running in threads.

    Args:
        source: Anything :func:`runtime.sources.open_source` takes, or an open :class:`FrameSource`.
        stages: Callables, each run in its own thread in order, that read/extend a :class:`Packet`; a
            :class:`ParallelStage` runs its callables in one thread each on successive packets, in order out.
        mode: ``offline``, ``realtime`` or ``auto`` (see the module docstring).
        queue_size: Capacity of each queue in offline mode (realtime keeps only the newest item).
        pace_fps: Read the source no faster than this rate (emulates a live camera with a file or iterator).
        on_close: Called once after all threads stopped (e.g. to report or free per-stream state).
    """

    def __init__(
        self,
        source: Any,
        stages: Sequence[Callable[[Packet], None]],
        *,
        mode: str = "auto",
        queue_size: int = 4,
        pace_fps: float | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        if pace_fps is not None and not pace_fps > 0:
            raise ConfigError(f"pace_fps must be > 0 frames per second, got {pace_fps!r}")
        if not stages:
            raise ConfigError("a stream needs at least one stage")
        if any(isinstance(st, ParallelStage) and not st.workers for st in stages):
            raise ConfigError("a parallel stage needs at least one worker")
        self._threads: list[threading.Thread] = []
        self._done = True  # until the threads exist, close() has nothing to do
        self.source = source if isinstance(source, FrameSource) else open_source(source)
        try:
            self.mode = resolve_mode(mode, self.source.kind)
        except ConfigError:
            self.source.close()
            raise
        realtime = self.mode == "realtime"
        capacity = 1 if realtime else queue_size
        self._ctl = ctl = _Control()
        chans = [_Channel(ctl, capacity, realtime) for _ in range(len(stages) + 1)]
        self._out = chans[-1]
        self._on_close = on_close
        self._threads.append(
            threading.Thread(
                target=_capture, args=(ctl, self.source, chans[0], pace_fps), name="ofer-capture", daemon=True
            )
        )
        for k, fn in enumerate(stages):
            workers = fn.workers if isinstance(fn, ParallelStage) else (fn,)
            order = _InOrder(chans[k + 1], len(workers))
            self._threads += [
                threading.Thread(
                    target=_stage_worker,
                    args=(ctl, k, w, order),
                    name=f"ofer-stage{k + 1}" + (f".{j}" if len(workers) > 1 else ""),
                    daemon=True,
                )
                for j, w in enumerate(workers)
            ]
        self.processed = 0
        self._done = False
        for t in self._threads:
            t.start()

    @property
    def dropped(self) -> int:
        """Frames dropped so far (realtime mode)."""
        return self._ctl.dropped

    @property
    def produced(self) -> int:
        """Frames read from the source so far."""
        return self._ctl.produced

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(name, reason)`` of every source item skipped so far (unreadable images of a folder)."""
        return self.source.skipped

    @property
    def source_error(self) -> str | None:
        """Why the source failed (a camera stopped delivering frames), else ``None``."""
        return self.source.error

    def backlog(self) -> int:
        """Frames waiting in the queues right now."""
        return sum(len(c) for c in self._ctl.channels)

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> StreamResult:
        if self._done:
            raise StopIteration
        try:
            packet = self._out.get()
        except _Cancelled:  # close() was called
            self.close()
            raise StopIteration from None
        except BaseException:  # KeyboardInterrupt while waiting: stop the threads, then let it propagate
            self.close()
            raise
        if packet is _END:  # the source ended, or a stage failed after the results before it were delivered
            error = self._ctl.error
            self.close()
            if error is not None:
                raise error
            raise StopIteration
        self.processed += 1
        latency = (time.perf_counter() - packet.captured) * 1e3
        f = packet.frame
        return StreamResult(
            f.index,
            f.time,
            f.name,
            packet.predictions,
            self._ctl.dropped,
            latency,
            packet.timings_ms,
            f.image,
            error=f.error,
            source_failed=packet.data is _SOURCE_FAILED,
        )

    def close(self) -> None:
        """Stop every thread and release the source (idempotent)."""
        if self._done:
            return
        self._done = True
        self._ctl.cancel()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(_JOIN_TIMEOUT_S)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            warnings.warn(
                f"stream threads {alive} did not stop within {_JOIN_TIMEOUT_S} s (a frame source is "
                "blocked?); they are daemon threads and end with the program",
                RuntimeWarning,
                stacklevel=2,
            )
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
