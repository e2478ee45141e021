"""Tracker (Hungarian association, gaps, id policy) and per-track smoothing math."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.smoothing import EmaSmoother, WindowSmoother, parse_smoothing
from runtime.tracking import Tracker, centre_distance, iou_matrix, linear_assignment


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5)])
def test_linear_assignment_matches_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.uniform(0, 10, shape)
        pairs = linear_assignment(cost)
        r, c = shape
        assert len(pairs) == min(r, c)
        assert len({p[0] for p in pairs}) == len(pairs) and len({p[1] for p in pairs}) == len(pairs)
        if r <= c:
            best = min(sum(cost[i, j] for i, j in enumerate(perm)) for perm in itertools.permutations(range(c), r))
        else:
            best = min(sum(cost[i, j] for j, i in enumerate(perm)) for perm in itertools.permutations(range(r), c))
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(best)


def test_linear_assignment_edge_cases():
    assert linear_assignment(np.zeros((0, 3))) == []
    with pytest.raises(ConfigError):
        linear_assignment(np.array([[np.inf, 1.0]]))


def test_iou_and_centre_distance():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(centre_distance(a, b)[0], [0.0, 0.5, np.sqrt(2) * 2])


def _face(cx: float, cy: float, s: float = 40.0) -> tuple[float, float, float, float]:
    return cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2


def test_two_faces_keep_ids_while_moving_and_across_gaps():
    tr = Tracker(max_missed=5)
    history: dict[int, list[int]] = {0: [], 1: []}
    for t in range(60):
        a = _face(100 + 2 * t, 100)  # walks right
        b = _face(400 - 2 * t, 300, 60)  # walks left, larger
        boxes, who = [], []
        if not (20 <= t < 24):  # face A is lost for 4 frames (headset going on)
            boxes.append(a)
            who.append(0)
        boxes.append(b)
        who.append(1)
        if t % 2:  # detector output order is not stable
            boxes, who = boxes[::-1], who[::-1]
        for w, tid in zip(who, tr.update(boxes)):
            history[w].append(tid)
    assert len(set(history[0])) == 1 and len(set(history[1])) == 1
    assert history[0][0] != history[1][0]
    assert len(tr) == 2


def test_headset_changes_box_shape_but_keeps_track():
    tr = Tracker(max_missed=3)
    first = tr.update([(100, 100, 200, 220)])[0]
    # the headset hides the upper face: the detector's box shrinks to the lower half, IoU drops below 0.3
    lower = (110, 175, 190, 225)
    assert iou_matrix(np.array([(100, 100, 200, 220)]), np.array([lower]))[0, 0] < 0.3
    tr.update([])
    assert tr.update([lower]) == [first]


def test_lost_too_long_gets_new_id_and_ids_are_never_reused():
    tr = Tracker(max_missed=2)
    a = tr.update([_face(100, 100)])[0]
    for _ in range(3):
        tr.update([])
    assert tr.removed == [a] and len(tr) == 0
    b = tr.update([_face(100, 100)])[0]
    assert b != a
    far = tr.update([_face(100, 100), _face(500, 500)])
    assert far[0] == b and far[1] not in (a, b)
    seen = {a, b, far[1]}
    tr.reset()
    assert tr.update([_face(100, 100)])[0] not in seen


def test_state_stays_bounded_with_many_short_lived_faces():
    tr = Tracker(max_missed=3)
    sm = EmaSmoother(0.3)
    rng = np.random.default_rng(0)
    peak = 0
    for t in range(2000):
        boxes = [_face(*rng.uniform(0, 2000, 2)) for _ in range(rng.integers(0, 4))]  # a new face every time
        ids = tr.update(boxes)
        for tid in ids:
            sm.update(tid, rng.dirichlet(np.ones(7)))
        sm.drop(tr.removed)
        peak = max(peak, len(tr), len(sm))
    assert peak <= 4 * 4 + 3  # at most (max_missed + 1) frames of at most 3 faces, plus this frame's
    assert len(sm) == len(tr)


def test_ema_math():
    sm = EmaSmoother(0.25)
    p1, p2, p3 = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5, 0.5])
    np.testing.assert_allclose(sm.update(7, p1), p1)
    s2 = 0.25 * p2 + 0.75 * p1
    np.testing.assert_allclose(sm.update(7, p2), s2)
    np.testing.assert_allclose(sm.update(7, p3), 0.25 * p3 + 0.75 * s2)
    np.testing.assert_allclose(sm.update(8, p2), p2)  # tracks are independent
    sm.drop([7])
    np.testing.assert_allclose(sm.update(7, p2), p2)  # state gone with the track
    assert len(sm) == 2


def test_window_math():
    sm = WindowSmoother(3)
    seq = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5, 0.5]), np.array([0.2, 0.8])]
    outs = [sm.update(1, p) for p in seq]
    np.testing.assert_allclose(outs[0], seq[0])
    np.testing.assert_allclose(outs[1], (seq[0] + seq[1]) / 2)
    np.testing.assert_allclose(outs[3], (seq[1] + seq[2] + seq[3]) / 3)
    for o in outs:
        assert o.sum() == pytest.approx(1.0)


def test_parse_smoothing():
    assert parse_smoothing(None) is None and parse_smoothing("none") is None
    assert isinstance(parse_smoothing("ema:0.5"), EmaSmoother)
    w = parse_smoothing("window:5")
    assert isinstance(w, WindowSmoother) and w.size == 5
    for bad in ("ema:0", "ema:1.5", "window:0", "window:x", "median:3"):
        with pytest.raises(ConfigError):
            parse_smoothing(bad)
