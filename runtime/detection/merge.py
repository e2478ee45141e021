"""Run several detectors on the same frame and merge their boxes (e.g. near- and far-range BlazeFace)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .base import Detection, FaceDetector
from .ssd import iou_matrix


class MergedDetector(FaceDetector):
    """Union of several detectors; boxes of the same face (IoU > ``nms_iou``) collapse to the best-scored one.

    Args:
        detectors: Detectors to run, in order of preference when scores tie.
        nms_iou: IoU above which two boxes are taken to be the same face.
        name: Name reported by ``.name``.
        parallel: Run the detectors at the same time, one thread each (ONNX Runtime releases the GIL), so the
            frame costs the slowest detector rather than the sum.
    """

    def __init__(self, detectors: Sequence[FaceDetector], *, nms_iou: float = 0.3, name: str = "merged",
                 parallel: bool = False) -> None:
        self.detectors = list(detectors)
        self.nms_iou = nms_iou
        self.name = name
        self.parallel = parallel and len(self.detectors) > 1
        self._pool: ThreadPoolExecutor | None = None

    def _run_all(self, frame: np.ndarray) -> list[Detection]:
        if not self.parallel:
            return [d for det in self.detectors for d in det._detect(frame)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self.detectors), thread_name_prefix="ofer-detect")
        futures = [self._pool.submit(det._detect, frame) for det in self.detectors]
        return [d for f in futures for d in f.result()]

    def close(self) -> None:
        """Stop the worker threads of a parallel detector."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        dets = self._run_all(frame)
        if len(dets) < 2:
            return dets
        order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
        boxes = np.array([dets[i].box for i in order], dtype=np.float64)
        ious = iou_matrix(boxes, boxes)
        keep: list[int] = []
        for i in range(len(order)):
            if all(ious[i, j] <= self.nms_iou for j in keep):
                keep.append(i)
        return [dets[order[i]] for i in keep]
