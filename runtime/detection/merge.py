"""Run several detectors on the same frame and merge their boxes (e.g. near- and far-range BlazeFace)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .base import Detection, FaceDetector
from .ssd import iou_matrix


def suppress_overlaps(dets: Sequence[Detection], iou: float) -> list[Detection]:
    """Greedy NMS: keep detections best score first, dropping any whose IoU with a kept one exceeds ``iou``."""
    if len(dets) < 2:
        return list(dets)
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
    boxes = np.array([dets[i].box for i in order], dtype=np.float64)
    ious = iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in range(len(order)):
        if all(ious[i, j] <= iou for j in keep):
            keep.append(i)
    return [dets[order[i]] for i in keep]


class MergedDetector(FaceDetector):
    """Union of several detectors; boxes of the same face (IoU > ``nms_iou``) collapse to the best-scored one.

    Args:
        detectors: Detectors to run, in order of preference when scores tie.
        nms_iou: IoU above which two boxes are taken to be the same face.
        name: Name reported by ``.name``.
        parallel: Run the detectors at the same time, one thread each (ONNX Runtime releases the GIL), so the
            frame costs the slowest detector rather than the sum.
    """

    def __init__(
        self, detectors: Sequence[FaceDetector], *, nms_iou: float = 0.3, name: str = "merged", parallel: bool = False
    ) -> None:
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
        """Stop the worker threads of a parallel detector and release the detectors' engines."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        super().close()

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        return self.merge(self._run_all(frame))

    def merge(self, dets: list[Detection]) -> list[Detection]:
        """Collapse boxes of the same face (IoU > ``nms_iou``) to the best-scored one."""
        return suppress_overlaps(dets, self.nms_iou)


class CascadeDetector(FaceDetector):
    """Run a fast near-range detector first; run the far-range one only when no close-up face was found.

    The far-range model exists for small, distant faces. When the near-range model already sees a face whose width
    is at least ``close_up`` of the frame's longer side (a selfie, a headset companion camera), the frame is a
    close-up and the far-range pass is skipped; otherwise both run (in parallel when ``parallel``) and their boxes
    are merged as in :class:`MergedDetector`.

    Args:
        near: The fast detector run on every frame.
        far: The detector run only when ``near`` finds no close-up face.
        close_up: Face width, as a fraction of the frame's longer side, that makes a frame a close-up.
        nms_iou: IoU above which two boxes are the same face.
        name: Name reported by ``.name``.
    """

    def __init__(
        self,
        near: FaceDetector,
        far: FaceDetector,
        *,
        close_up: float = 0.2,
        nms_iou: float = 0.3,
        name: str = "cascade",
    ) -> None:
        if not 0.0 < close_up <= 1.0:
            raise ConfigError(f"close_up must be in (0, 1], got {close_up!r}")
        self.near, self.far = near, far
        self.close_up = close_up
        self.name = name
        self._merge = MergedDetector([near, far], nms_iou=nms_iou)

    @property
    def detectors(self) -> list[FaceDetector]:
        """The two detectors, near first (as :class:`MergedDetector` lists its parts)."""
        return [self.near, self.far]

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        near = self.near._detect(frame)
        longer = max(frame.shape[:2])
        if any(d.box[2] - d.box[0] >= self.close_up * longer for d in near):
            return near
        return self._merge.merge(near + self.far._detect(frame))
