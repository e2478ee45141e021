"""``Recognizer.stream()``: the recognizer's work split into stream stages (detect + crop | classify, track, smooth)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.frames import as_bgr_frame
from runtime.smoothing import Smoother, parse_smoothing
from runtime.streaming import Packet, Stream
from runtime.tracking import Tracker


if TYPE_CHECKING:
    from .recognizer import Recognizer


class RecognizerStages:
    """The two stream stages of a recognizer, plus the per-stream tracker and smoother they update.

    Args:
        recognizer: A built :class:`~sdk.Recognizer` (its engines are shared, not copied).
        smooth: ``None``, ``"ema:ALPHA"``, ``"window:N"`` or a :class:`~runtime.smoothing.Smoother`.
        max_missed: Frames a face may go undetected and keep its track id.
    """

    def __init__(self, recognizer: "Recognizer", *, smooth: str | Smoother | None = None,
                 max_missed: int = 15) -> None:
        self.rec = recognizer
        self.tracker = Tracker(max_missed=max_missed)
        self.smoother = parse_smoothing(smooth)

    def detect_crop(self, packet: Packet) -> None:
        """Stage 1: validate the frame, detect faces (largest first, ``max_faces``), crop them."""
        frame = as_bgr_frame(packet.frame.image, name=f"frame {packet.frame.index}")
        dets, crops, timings = self.rec.detect_and_crop(frame)
        packet.data = (dets, crops)
        packet.timings_ms.update(timings)

    def classify_track(self, packet: Packet) -> None:
        """Stage 2: classify the crops, give each face its track id, smooth its probabilities per track."""
        rec = self.rec
        dets, crops = packet.data
        result = rec.run_crops(crops)
        probs = result.probabilities
        t0 = time.perf_counter()
        ids = self.tracker.update([d.box for d in dets])
        if self.smoother is not None:
            self.smoother.drop(self.tracker.removed)
            probs = np.array([self.smoother.update(tid, p) for tid, p in zip(ids, probs)]).reshape(probs.shape)
        packet.timings_ms.update(result.timings_ms, track=(time.perf_counter() - t0) * 1e3)
        packet.predictions = rec.make_predictions(dets, result, timings_ms=dict(packet.timings_ms),
                                                  probabilities=probs, track_ids=ids)
        packet.data = None  # crops are not needed any more: free them early


def stream_recognizer(recognizer: "Recognizer", source: Any, *, mode: str = "auto",
                      smooth: str | Smoother | None = None, queue_size: int = 4, max_missed: int = 15,
                      pace_fps: float | None = None) -> Stream:
    """Open ``source`` and return a running :class:`~runtime.streaming.Stream` of the recognizer's results.

    The stream's ``tracker`` and ``smoother`` attributes hold the per-stream state.
    """
    stages = RecognizerStages(recognizer, smooth=smooth, max_missed=max_missed)
    stream = Stream(source, [stages.detect_crop, stages.classify_track], mode=mode, queue_size=queue_size,
                    pace_fps=pace_fps)
    stream.tracker = stages.tracker  # type: ignore[attr-defined]
    stream.smoother = stages.smoother  # type: ignore[attr-defined]
    return stream
