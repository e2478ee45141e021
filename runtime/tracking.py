"""Face tracking across frames: stable track ids from IoU + centre-distance association (Hungarian matching)
against boxes predicted by a constant-velocity Kalman filter per track (SORT's motion model).

A face that the detector loses for a few frames (a headset going on, a hand passing) keeps its track for up to
``max_missed`` frames; a face that appears gets a new id; ids are never reused. Pure numpy, no scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ConfigError

Box = tuple[float, float, float, float]
_BLOCKED = 1e6  # cost of a pair the gate forbids (finite, so the assignment stays well defined)


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of rows to columns (Hungarian / Kuhn-Munkres, shortest augmenting paths).

    Args:
        cost: ``R x C`` finite costs. Rectangular matrices are fine: ``min(R, C)`` pairs are returned.

    Returns:
        ``(row, col)`` pairs sorted by row.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ConfigError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if c.size == 0:
        return []
    if not np.all(np.isfinite(c)):
        raise ConfigError("cost matrix has inf/nan entries; use a large finite cost for forbidden pairs")
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row (1-based) assigned to column j; column 0 is virtual
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = c[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            cols = np.nonzero(used)[0]
            u[p[cols]] += delta
            v[cols] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j] != 0]
    if transposed:
        pairs = [(col, row) for row, col in pairs]
    return sorted(pairs)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of boxes ``a`` (N x 4) and ``b`` (M x 4), ``(x1, y1, x2, y2)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between box centres divided by the mean side of the pair (0: same centre, 1: one face apart)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ca = (a[:, :2] + a[:, 2:]) / 2
    cb = (b[:, :2] + b[:, 2:]) / 2
    size_a = np.sqrt(np.clip((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9, None))
    size_b = np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9, None))
    d = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=-1)
    return d / ((size_a[:, None] + size_b[None, :]) / 2)


class BoxKalman:
    """Constant-velocity Kalman filter on a box's centre and size (as in SORT/DeepSORT).

    State ``(cx, cy, w, h, vcx, vcy, vw, vh)`` in pixels and pixels per frame; noise scales with the box size, so
    the filter behaves the same for near and far faces. :meth:`predict` advances one frame; :meth:`update` folds in
    a measured box.

    Args:
        box: The first measured box ``(x1, y1, x2, y2)``.
    """

    POS_STD = 1 / 20  # measurement/position noise, fraction of the box side
    VEL_STD = 1 / 160  # process noise on velocities, fraction of the box side per frame
    _F = np.eye(8) + np.eye(8, k=4)
    _H = np.eye(4, 8)

    def __init__(self, box: Sequence[float]) -> None:
        z = self._measure(box)
        side = max(z[2], z[3], 1.0)
        self.x = np.concatenate([z, np.zeros(4)])
        self.P = np.diag(np.square(np.r_[[2 * self.POS_STD * side] * 4, [10 * self.VEL_STD * side] * 4]))

    @staticmethod
    def _measure(box: Sequence[float]) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in box)
        return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])

    @property
    def box(self) -> Box:
        """The current estimate as ``(x1, y1, x2, y2)`` (sides kept >= 1 px)."""
        cx, cy, w, h = self.x[:4]
        w, h = max(w, 1.0), max(h, 1.0)
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def predict(self) -> Box:
        """Advance one frame; returns the predicted box."""
        side = max(self.x[2], self.x[3], 1.0)
        q = np.square(np.r_[[self.POS_STD * side] * 4, [self.VEL_STD * side] * 4])
        self.x = self._F @ self.x
        self.P = self._F @ self.P @ self._F.T + np.diag(q)
        return self.box

    def update(self, box: Sequence[float]) -> Box:
        """Correct the estimate with a measured box; returns the corrected box."""
        z = self._measure(box)
        r = np.diag(np.square([self.POS_STD * max(z[2], z[3], 1.0)] * 4))
        s = self._H @ self.P @ self._H.T + r
        k = np.linalg.solve(s, self._H @ self.P).T
        self.x = self.x + k @ (z - self._H @ self.x)
        self.P = (np.eye(8) - k @ self._H) @ self.P
        return self.box


@dataclass
class Track:
    """One tracked face: its id, last measured box, motion filter, frames matched and frames missed in a row."""

    id: int
    box: Box
    hits: int = 1
    missed: int = 0
    motion: BoxKalman | None = None

    @property
    def predicted(self) -> Box:
        """Where the motion model expects the face in the current frame (the last box without a model)."""
        return self.motion.box if self.motion is not None else self.box


class Tracker:
    """Gives each detected face a stable id across frames.

    Args:
        max_missed: Frames a track survives without a matching detection before it is dropped.
        iou_threshold: A detection may continue a track if their IoU is at least this...
        max_distance: ...or if their centres are at most this many face sizes apart (helps when a headset or a
            hand changes the detected box shape, or the face moved during a gap).
        motion: Predict each track's box with a constant-velocity Kalman filter (:class:`BoxKalman`) and match
            detections against the prediction, so two faces that cross keep their ids; ``False`` matches against
            the last box.

    Matching minimises ``(1 - IoU) + centre distance`` over all allowed track/detection pairs (Hungarian).
    """

    def __init__(
        self, *, max_missed: int = 15, iou_threshold: float = 0.3, max_distance: float = 0.75, motion: bool = True
    ) -> None:
        if not isinstance(max_missed, int) or max_missed < 0:
            raise ConfigError(f"max_missed must be an integer >= 0 (frames), got {max_missed!r}")
        if not 0 < iou_threshold <= 1:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
        if max_distance < 0:
            raise ConfigError(f"max_distance must be >= 0 (face sizes), got {max_distance!r}")
        self.max_missed = max_missed
        self.iou_threshold = float(iou_threshold)
        self.max_distance = float(max_distance)
        self.motion = bool(motion)
        self.tracks: dict[int, Track] = {}
        self.removed: list[int] = []  # ids that died in the last update()
        self._next_id = 1
        self._predicted = False

    def predict(self) -> dict[int, Box]:
        """Advance every track's motion model to the current frame; returns ``{track id: predicted box}``.

        Call it once per frame before :meth:`update` (``update`` calls it when it was not called).
        """
        if not self._predicted:
            for t in self.tracks.values():
                if t.motion is not None:
                    t.motion.predict()
            self._predicted = True
        return {t.id: t.predicted for t in self.tracks.values()}

    def match(self, boxes: Sequence[Sequence[float]], tracks: Sequence[Track] | None = None) -> list[tuple[int, int]]:
        """Allowed ``(track index, box index)`` pairs of the minimum-cost assignment against predicted boxes.

        A matching cascade as in DeepSORT: tracks seen in the last frame are matched first, then tracks missed for
        one frame, and so on. Where a hidden face's predicted box passes over a visible one (two people crossing),
        the visible face's detection stays with its own track.
        """
        live = list(self.tracks.values()) if tracks is None else list(tracks)
        dets = np.asarray(boxes, np.float64).reshape(-1, 4)
        if not live or not len(dets):
            return []
        tboxes = np.array([t.predicted for t in live], np.float64)
        iou = iou_matrix(tboxes, dets)
        dist = centre_distance(tboxes, dets)
        allowed = (iou >= self.iou_threshold) | (dist <= self.max_distance)
        cost = np.where(allowed, (1.0 - iou) + dist, _BLOCKED)
        pairs: list[tuple[int, int]] = []
        free = np.ones(len(dets), bool)
        for level in sorted({t.missed for t in live}):
            rows = [i for i, t in enumerate(live) if t.missed == level]
            cols = np.flatnonzero(free)
            if not len(cols):
                break
            for r, c in linear_assignment(cost[np.ix_(rows, cols)]):
                if allowed[rows[r], cols[c]]:
                    pairs.append((rows[r], int(cols[c])))
                    free[cols[c]] = False
        return sorted(pairs)

    def update(self, boxes: Sequence[Sequence[float]], *, new_tracks: bool = True) -> list[int]:
        """Associate this frame's face boxes with the live tracks.

        Args:
            boxes: This frame's face boxes ``(x1, y1, x2, y2)``.
            new_tracks: Start a track for each box that continues none; ``False`` gives such boxes id ``-1``.

        Returns:
            The track id of each box, in the order given. Tracks dropped by this update are in ``removed``.
        """
        self.predict()
        self._predicted = False
        dets = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids: list[int] = [-1] * len(dets)
        live = list(self.tracks.values())
        for r, c in self.match(dets, live):
            track = live[r]
            track.box = tuple(float(v) for v in dets[c])  # type: ignore[assignment]
            if track.motion is not None:
                track.motion.update(track.box)
            track.hits += 1
            track.missed = 0
            ids[c] = track.id
        matched = set(ids)
        self.removed = []
        for track in live:
            if track.id not in matched:
                track.missed += 1
                if track.missed > self.max_missed:
                    del self.tracks[track.id]
                    self.removed.append(track.id)
        for k, box in enumerate(dets):
            if ids[k] == -1 and new_tracks:
                ids[k] = self._next_id
                b = tuple(float(v) for v in box)
                self.tracks[self._next_id] = Track(self._next_id, b, motion=BoxKalman(b) if self.motion else None)  # type: ignore[arg-type]
                self._next_id += 1
        return ids

    def reset(self) -> None:
        """Forget every track (ids still never repeat)."""
        self.removed = list(self.tracks)
        self.tracks.clear()

    def __len__(self) -> int:
        return len(self.tracks)
