"""Run several detectors on the same frame and merge their boxes (e.g. near- and far-range BlazeFace)."""
from __future__ import annotations

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
    """

    def __init__(self, detectors: Sequence[FaceDetector], *, nms_iou: float = 0.3, name: str = "merged") -> None:
        self.detectors = list(detectors)
        self.nms_iou = nms_iou
        self.name = name

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        dets = [d for det in self.detectors for d in det._detect(frame)]
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
