"""SSD anchor generation, box/keypoint decoding and weighted NMS (numpy), as MediaPipe does for BlazeFace."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ssd_anchors(input_size: int, strides: Sequence[int], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres ``(N, 2)`` in [0, 1] for fixed-size anchors (MediaPipe ``SsdAnchorsCalculator``).

    Consecutive layers with the same stride are merged into one feature map with more anchors per cell,
    in MediaPipe's order: stride group, then row, then column, then anchor.

    Args:
        input_size: Square model input side in pixels.
        strides: Stride of each SSD layer.
        anchors_per_layer: Anchors each layer adds per cell.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = anchors_per_layer * (j - i)
        fm = int(np.ceil(input_size / strides[i]))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's raw SSD outputs into boxes above ``threshold``.

    Args:
        raw_boxes: ``(N, 4 + 2K)``: centre offset, size, then K keypoint offsets, in input pixels.
        raw_scores: ``(N,)`` or ``(N, 1)`` logits.
        anchors: ``(N, 2)`` anchor centres in [0, 1].
        input_size: Model input side in pixels (the regressors' scale).
        threshold: Minimum sigmoid score.

    Returns:
        ``boxes (M, 4)`` as ``x1, y1, x2, y2``, ``scores (M,)`` and ``keypoints (M, K, 2)``, all normalised to
        the model input ([0, 1]).
    """
    raw = raw_scores.reshape(-1)
    # The sigmoid is monotonic: select on the logits (a margin below the threshold's logit), then apply the exact
    # score test to the few anchors left, instead of a sigmoid over every anchor.
    t = min(max(float(threshold), 1e-12), 1.0 - 1e-12)
    near = np.flatnonzero(raw >= np.log(t / (1.0 - t)) - 1e-3)
    logits = np.clip(raw[near].astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    ok = scores >= threshold
    keep, scores = near[ok], scores[ok]
    reg = raw_boxes[keep] / float(input_size)
    anc = anchors[keep]
    centre = reg[:, :2] + anc
    half = reg[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = reg[:, 4:].reshape(len(keep), (raw_boxes.shape[1] - 4) // 2, 2) + anc[:, None, :]
    return boxes, scores, kps


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` given as ``x1, y1, x2, y2``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray,
    iou_threshold: float,
    max_detections: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes that overlap it.

    The kept score is the highest score of its cluster. Returns arrays sorted by score, highest first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    overlaps = iou_matrix(boxes, boxes) > iou_threshold  # once for all pairs: a handful of boxes in practice
    alive = np.ones(len(scores), bool)
    out_b, out_s, out_k = [], [], []
    while alive.any() and (max_detections is None or len(out_s) < max_detections):
        first = int(np.argmax(alive))  # the best-scored box not yet in a cluster
        member = alive & overlaps[first]
        member[first] = True  # a degenerate (zero-area) box has IoU 0 even with itself
        cluster = np.flatnonzero(member)
        w = scores[cluster][:, None]
        out_b.append((boxes[cluster] * w).sum(0) / w.sum())
        out_k.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[first])
        alive &= ~member
    n_kp = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, n_kp, 2), np.float32)
    return np.stack(out_b), np.asarray(out_s), np.stack(out_k)
