"""Vectorised face geometry: the drawing primitives of N faces at once, in crop fractions.

Every per-face quantity is either a Python float (one face: no numpy overhead per scalar) or an array over the batch
(axis 0: the Python cost is paid once per batch); the same code serves both, with the same IEEE arithmetic, so a
face is the same alone or in a batch. Only the OpenCV draw calls remain per face (:mod:`.render`). Each primitive
keeps its place in the drawing order; a face leaves out a primitive through its ``on`` mask (a crease too faint to
see, no glasses, closed mouth). Point arrays are (..., P, 2): (P, 2) for one face, (N, P, 2) for a batch.

Coordinates follow the aligned-crop geometry of :mod:`runtime.occlusion.geometry` (eye line 0.38, nose tip ~0.58,
mouth 0.75, chin ~0.97), so the occlusion protocols cover the parts they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from runtime.occlusion import geometry as geo
from runtime.datasets.procedural.aus import AU_INDEX

POLY, LINE, CLOSED, CIRCLE = 0, 1, 2, 3
_DARK = np.array([25.0, 20.0, 30.0])
_T = np.linspace(-1.0, 1.0, 11)
_FRINGE_T = np.linspace(1.0, -1.0, 9)
_FRINGE_WAVE = 0.1 * np.abs(_FRINGE_T) ** 3 + 0.008 * np.cos(np.arange(9) * 2.1)
_BROW_U = np.linspace(0.0, 1.0, 7)[:, None]
_BROW_W = ((1 - _BROW_U) ** 2, 2 * _BROW_U * (1 - _BROW_U), _BROW_U**2, 1.0 - 0.45 * _BROW_U)  # Bezier weights, taper
_PROF = (1 - _T**2) ** 0.7
_BOW = 1 - 0.3 * np.exp(-((_T / 0.18) ** 2))
_INNER, _LOW = np.abs(_T) < 0.75, np.abs(_T) < 0.55


@dataclass
class Op:
    """One primitive for every face of the batch.

    ``pts`` (..., P, 2) in crop fractions (one centre for a circle); ``color`` (..., 3) BGR; ``width`` line width or
    circle radius in crop units (scalar or (N,)); ``on`` bool, (N,) bool or None (all on); ``merge``: may share one
    OpenCV call with the previous primitive when kind, colour and width agree (safe: lines are drawn one after
    another within a call, so lines always may; merged polygons are disjoint mirror images, e.g. the two ears).
    """

    kind: int
    pts: np.ndarray
    color: np.ndarray
    width: float | np.ndarray = 0.0
    on: np.ndarray | None = None
    merge: bool = False


def _c(v: np.ndarray | float) -> np.ndarray | float:
    """(N,) -> (N, 1) for broadcasting against point indices (a float stays a float)."""
    return v if isinstance(v, float) else np.asarray(v, np.float64)[..., None]


def _pts(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """Points (..., 2) from broadcastable x and y."""
    if isinstance(x, float) and isinstance(y, float):
        return np.array((x, y))
    if type(x) is np.ndarray and type(y) is np.ndarray and x.ndim == 1 and x.shape == y.shape:
        return np.array((x, y)).T
    out = np.empty(np.broadcast(x, y).shape + (2,))
    out[..., 0] = x
    out[..., 1] = y
    return out


def _row(*v: np.ndarray | float) -> np.ndarray:
    """k per-face values (floats or (N,) arrays, not mixed) -> (k,) or (N, k)."""
    return np.array(v).T


def _cat(*parts: np.ndarray) -> np.ndarray:
    """Concatenates point runs (along P)."""
    return np.concatenate(parts, axis=-2)


def _mix(a: np.ndarray, b: np.ndarray, k: np.ndarray | float) -> np.ndarray:
    """Colours (..., 3): ``a`` moved toward ``b`` by ``k`` clipped to [0, 1]."""
    if isinstance(k, float):
        return a + (b - a) * (0.0 if k < 0.0 else 1.0 if k > 1.0 else k)
    return a + (b - a) * _c(np.minimum(np.maximum(k, 0.0), 1.0))


@lru_cache(maxsize=256)
def _unit_arc(t0: float, t1: float, n: int, p: float) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / p
    return np.stack([np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e], axis=1)


def oval(cx, cy, ax, ay, t0: float, t1: float, n: int = 16, p: float | np.ndarray = 2.0) -> np.ndarray:
    """Points (..., n, 2) of super-ellipse arcs (angles t0..t1, radians; p = 2 is an ellipse, per face or shared)."""
    if np.ndim(p) == 0:
        unit = _unit_arc(t0, t1, n, round(float(p), 2))
    else:  # per-face exponents: the cached unit arcs (one code path for a face alone or in a batch)
        unit = np.array([_unit_arc(t0, t1, n, round(v, 2)) for v in np.asarray(p).tolist()])
    return unit * _pts(ax, ay)[..., None, :] + _pts(cx, cy)[..., None, :]


def _any(v) -> bool:
    """Whether any face has flag ``v`` (a bool, numpy bool or bool array); faster than np.any on scalars."""
    return bool(v.any()) if hasattr(v, "any") else bool(v)


class _Ops(list):
    """The primitive list. ``pts`` may be a function returning the points: it is not called (and the primitive
    not recorded) when ``on`` is off for every face, so optional details cost nothing when absent."""

    def poly(self, pts, color, on=None, merge=False) -> None:
        if on is None or _any(on):
            self.append(Op(POLY, pts() if callable(pts) else pts, color, 0.0, on, merge))

    def line(self, pts, color, width, on=None, merge=True, closed=False) -> None:
        if on is None or _any(on):
            self.append(Op(CLOSED if closed else LINE, pts() if callable(pts) else pts, color, width, on, merge))

    def crease(self, pts, base, k, width, on=None, merge=True) -> None:
        """A line darkened from ``base`` by strength ``k``; off where too faint to see (k < 0.03)."""
        vis = k >= 0.03 if isinstance(k, float) else np.asarray(k) >= 0.03
        vis = vis if on is None else vis & on
        if _any(vis):
            self.line(pts, _mix(base, _DARK, k), width, vis, merge)


def face_ops(idn: dict, aus: np.ndarray, scene: dict, single: bool = False) -> list[Op]:
    """Primitives, in drawing order, of N faces: identity fields (N,) each (colours (N, 3)), AU states (N, AUs, 2),
    scene fields (N,). With ``single`` (N = 1) the fields are Python floats (colours (3,)) and points lose axis 0."""
    sides = aus.astype(np.float64)
    means = aus.mean(axis=2).astype(np.float64)
    if single:
        sides, means = sides[0].tolist(), means[0].tolist()

        def au(a: int, side: int = -1) -> float:
            return means[AU_INDEX[a]] if side < 0 else sides[AU_INDEX[a]][side]
    else:

        def au(a: int, side: int = -1) -> np.ndarray:
            return means[:, AU_INDEX[a]] if side < 0 else sides[:, AU_INDEX[a], side]

    ops = _Ops()
    skin, hair = idn["skin"], idn["hair"]

    def const(*v: float) -> np.ndarray:  # one constant column per value
        return np.array(v, np.float64)

    dx = 0.025 * scene["yaw"]
    fcy, fw, fh = 0.53, idn["face_w"], idn["face_h"]
    long_hair = np.asarray(idn["long_hair"]) > 0.5
    ops.poly(
        lambda: _cat(
            oval(0.5, 0.5, fw + 0.07, fh + 0.06, np.pi, 2 * np.pi), _pts(_row(0.5 + fw + 0.09, 0.5 - fw - 0.09), 1.1)
        ),
        _mix(hair, _DARK, 0.25),
        on=long_hair,
    )
    neck = _pts(_row(0.5 - 0.55 * fw, 0.5 + 0.55 * fw, 0.5 + 0.7 * fw, 0.5 - 0.7 * fw), [0.8, 0.8, 1.1, 1.1])
    ops.poly(neck, _mix(skin, _DARK, 0.25))
    for s in (-1, 1):
        ops.poly(oval(0.5 + s * (fw + 0.005), 0.47, 0.03, 0.06, 0, 2 * np.pi, 10), _mix(skin, _DARK, 0.12), merge=s > 0)
    jaw = idn["jaw_h"] + 0.045 * au(26)
    ops.poly(
        _cat(oval(0.5, fcy, fw, fh, np.pi, 2 * np.pi, 14), oval(0.5, fcy, fw, jaw, 0, np.pi, 14, idn["jaw_square"])),
        skin,
    )
    cap_pts = [oval(0.5, fcy, fw + 0.025, fh + 0.035, top, 3 * np.pi - top, 16) for top in (np.pi + 0.1, np.pi + 0.35)]
    cap = np.where(long_hair[..., None, None], cap_pts[0], cap_pts[1])
    fringe = _pts(0.5 + _c(fw * 0.97) * _FRINGE_T, _c(idn["hairline"]) + _FRINGE_WAVE)
    ops.poly(_cat(cap, fringe), hair)

    # nose geometry first (folds start at the nose wings)
    nx, ny = 0.5 + dx, idn["nose_y"] - 0.012 * au(9) - 0.006 * au(10)
    mx, my = 0.5 + 0.9 * dx, geo.MOUTH_Y + idn["mouth_dy"]
    a12m, a26, a23, a20, a16, a15, a10 = au(12), au(26), au(23), au(20), au(16), au(15), au(10)
    cx, cy = {}, {}
    for k, s in ((0, -1), (1, 1)):
        cx[s] = mx + s * idn["mouth_w"] * (
            1 + 0.22 * au(12, k) + 0.25 * a20 - 0.15 * au(14, k) - 0.12 * a23 - 0.1 * a26 + 0.05 * a10
        )
        cy[s] = (
            my
            + idn["corner_rest"]
            - 0.042 * au(12, k)
            + 0.034 * a15
            + 0.012 * a20
            - 0.008 * au(14, k)
            + 0.006 * a16
            + 0.018 * a26
        )
    fold = idn["fold"] + 0.55 * a12m + 0.4 * a10 + 0.35 * au(9) + 0.25 * au(6)
    for s in (-1, 1):
        a = (nx + s * idn["nose_w"] * 0.62, ny - 0.01)
        b = (cx[s] + s * 0.035, cy[s] + 0.02)
        mid = ((a[0] + b[0]) / 2 + s * 0.03, (a[1] + b[1]) / 2)
        ops.crease(_pts(_row(a[0], mid[0], b[0]), _row(a[1], mid[1], b[1])), skin, 0.4 * np.minimum(fold, 1.0), 0.007)
    ey = geo.EYE_Y + idn["eye_dy"]
    _eyes(ops, idn, au, scene, skin, dx, ey, const)
    glasses = np.asarray(idn["glasses"]) > 0.5
    inner = idn["eye_dx"] - idn["eye_w"] * 1.5
    ops.line(lambda: _pts(_row(0.5 + dx - inner, 0.5 + dx + inner), _c(ey)), const(30.0, 30.0, 30.0), 0.01, on=glasses)
    base = ey - idn["brow_h"]
    for off in (-0.012, 0.012):  # vertical furrow (AU4)
        ops.crease(
            lambda: _pts(_row(nx + off, nx + off * 0.6), _row(base - 0.005, base + 0.045)),
            skin,
            0.6 * au(4) + 0.2 * au(9),
            0.006,
        )
    a1, a2 = au(1), au(2)
    span = 0.04 + 0.1 * a2 / (a1 + a2 + 1e-6)
    for h in (0.045, 0.07):  # forehead wrinkles (AU1/AU2)
        y = base - h
        ops.crease(
            lambda: oval(nx, y + 0.02, span, 0.02, np.pi + 0.5, 2 * np.pi - 0.5, 7),
            skin,
            0.5 * np.maximum(a1, a2),
            0.006,
            on=np.asarray(y > idn["hairline"] + 0.01),
        )
    _nose(ops, idn, au, nx, ny, ey)
    _mouth(ops, idn, au, mx, my, cx, cy, const)
    return ops


def _eyes(ops: _Ops, idn: dict, au, scene: dict, skin: np.ndarray, dx: np.ndarray, ey: np.ndarray, const) -> None:
    """Both eyes, brows and glasses rims; each primitive for the left then the right eye (disjoint regions)."""
    ew, ew_ = idn["eye_w"], _c(idn["eye_w"])
    per: list[list[tuple]] = []
    for k, s in ((0, -1), (1, 1)):
        ex = 0.5 + s * idn["eye_dx"] + 0.7 * dx
        a5, a6, a7 = au(5, k), au(6, k), au(7, k)
        hu = idn["eye_open"] * (1 + 1.1 * a5 - 0.45 * a7 - 0.25 * a6)
        hl = idn["eye_open"] * 0.75 * (1 - 0.6 * a6 - 0.4 * a7 + 0.15 * a5)
        xs = _c(ex) + _T * ew_
        upper = _pts(xs, _c(ey) - _c(hu) * _PROF)
        lower = _pts(xs, _c(ey) + _c(hl) * _PROF)
        ic = _pts(ex + scene["gaze_x"] * ew * 0.4, ey + scene["gaze_y"] * 0.008 + 0.003)[..., None, :]
        xo, xi = ex + ew * 1.05, ex - ew * 1.05
        edge_up = _pts(_row(xo, xo, xi, xi), _row(ey, ey - 0.045, ey - 0.045, ey))
        edge_lo = _pts(_row(xo, xo, xi, xi), _row(ey, ey + 0.04, ey + 0.04, ey))
        blush = skin * (0.85, 0.82, 1.12)
        o = (ex + s * ew * 1.15, ey)
        crow = np.asarray(a6 > 0.05)
        feet = [
            _pts(_row(o[0], o[0] + s * 0.03 * np.cos(ang)), _row(o[1], o[1] + 0.03 * np.sin(ang)))
            if _any(crow)
            else None
            for ang in (-0.35, 0.0, 0.35)
        ]
        glasses = np.asarray(idn["glasses"]) > 0.5
        per.append(
            [
                ("poly", _cat(upper, lower[..., ::-1, :]), const(225.0, 228.0, 232.0)),
                ("circle", ic, idn["iris"], idn["iris_r"]),
                ("circle", ic, const(15.0, 15.0, 15.0), idn["iris_r"] * 0.45),
                ("poly", _cat(upper, edge_up), _mix(skin, _DARK, 0.07)),
                ("poly", _cat(lower, edge_lo), skin),
                (
                    "poly",
                    oval(ex, ey + 0.1 - 0.03 * a6, 0.055, 0.035, 0, 2 * np.pi, 12),
                    _mix(skin, blush, 0.15 + 0.6 * a6),
                ),
                ("crease", upper, 0.85, 0.012),
                ("crease", lower, 0.3, 0.006),
                ("crease", upper + _pts(0.0, -0.012 * (1 - 0.8 * a5))[..., None, :], 0.25 * (1 - a5), 0.006),
                ("crease", lower + [0, 0.014], 0.6 * a6 + 0.35 * a7, 0.006),
                *[("crease", f, 0.55 * a6, 0.005, crow) for f in feet],  # crow's feet (AU6)
                ("poly", _brow(idn, au, k, s, ex, ey), _mix(skin, idn["hair"] * 0.7, idn["brow_dark"])),
                (
                    "closed",
                    oval(ex, ey + 0.005, ew * 1.5, 0.05, 0, 2 * np.pi, 16, 4.0) if _any(glasses) else None,
                    const(30.0, 30.0, 30.0),
                    0.01,
                    glasses,
                ),
            ]
        )
    for pair in zip(*per):
        for side, (what, pts, *rest) in enumerate(pair):
            if pts is None:  # a detail no face of the batch shows
                continue
            if what == "poly":
                ops.poly(pts, rest[0], merge=side == 1)
            elif what == "circle":
                ops.append(Op(CIRCLE, pts, rest[0], rest[1]))
            elif what == "closed":
                ops.line(pts, rest[0], rest[1], on=rest[2], closed=True)
            else:
                ops.crease(pts, skin, *rest)


def _brow(idn: dict, au, k: int, s: int, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    a1, a2, a4, a9 = au(1, k), au(2, k), au(4, k), au(9, k)
    ew, base, tilt = idn["eye_w"], ey - idn["brow_h"], idn["brow_tilt"]
    inner = _pts(ex - s * (ew * 0.95 + 0.012 * a4), base - tilt - 0.045 * a1 + 0.03 * a4 + 0.022 * a9 + 0.01 * a2)
    mid = _pts(ex + s * ew * 0.1, base - 0.012 - 0.025 * a1 - 0.028 * a2 + 0.022 * a4 + 0.01 * a9)
    outer = _pts(ex + s * ew * 1.25, base + 0.005 + tilt - 0.045 * a2 + 0.012 * a4 - 0.01 * a1)
    w0, w1, w2, taper = _BROW_W
    pts = w0 * inner[..., None, :] + w1 * mid[..., None, :] + w2 * outer[..., None, :]
    thick = idn["brow_thick"]
    half = ((thick if isinstance(thick, float) else thick[:, None, None]) * taper) / 2
    return _cat(pts - [0, 1] * half, (pts + [0, 1] * half)[..., ::-1, :])


def _nose(ops: _Ops, idn: dict, au, nx: np.ndarray, ny: np.ndarray, ey: np.ndarray) -> None:
    skin, nw, a9 = idn["skin"], idn["nose_w"], au(9)
    for s in (-1, 1):  # one side after the other: the sides are close enough to share anti-aliased pixels
        ops.crease(_pts(_row(nx + s * 0.022, nx + s * nw * 0.42), _row(ey + 0.035, ny - 0.03)), skin, 0.1, 0.006)
        ops.poly(
            oval(nx + s * nw * 0.28, ny + 0.004, 0.012 * (1 + 0.3 * a9), 0.006, 0, 2 * np.pi, 8), _mix(skin, _DARK, 0.7)
        )
        t0 = -np.pi / 2 if s > 0 else np.pi / 2  # alar wing arc bulging outwards
        ops.crease(oval(nx + s * nw * 0.38, ny - 0.004, nw * 0.16, 0.016, t0, t0 + np.pi, 6), skin, 0.35, 0.006)
    for y in (0.05, 0.068, 0.086):  # nose wrinkles (AU9)
        ops.crease(lambda: oval(nx, ey + y + 0.01, 0.03, 0.01, np.pi + 0.6, 2 * np.pi - 0.6, 5), skin, 0.75 * a9, 0.006)


def _mouth(ops: _Ops, idn: dict, au, mx, my, cx: dict, cy: dict, const) -> None:
    a10, a12, a16, a20, a23, a26 = au(10), au(12), au(16), au(20), au(23), au(26)
    uy = my - 0.02 * a10 - 0.008 * au(9) - 0.005 * a12 - 0.008 * a26
    ly = my + 0.075 * a26 + 0.022 * a16 + 0.008 * a12 + 0.004 * a20
    shut = ly - uy < 0.006
    if isinstance(uy, float):
        uy, ly = ((uy + ly) / 2, (uy + ly) / 2) if shut else (uy, ly)
    else:
        uy, ly = np.where(shut, (uy + ly) / 2, uy), np.where(shut, (uy + ly) / 2, ly)
    ut = idn["lip_up"] * (1 - 0.6 * a23 - 0.25 * a20 - 0.2 * a12)
    lt = idn["lip_low"] * (1 - 0.6 * a23 - 0.25 * a20 + 0.15 * a16)
    t = _T
    xs = (_c(cx[-1]) * (1 - t) + _c(cx[1]) * (1 + t)) / 2
    ycs = (_c(cy[-1]) * (1 - t) + _c(cy[1]) * (1 + t)) / 2
    cmean = _c((cy[-1] + cy[1]) / 2)
    iu = _pts(xs, ycs + (_c(uy) - cmean) * (1 - t**2))
    il = _pts(xs, ycs + (_c(ly) - cmean) * (1 - t**2) ** 0.8)
    ou = iu - _pts(0 * t, _c(ut) * (1 - t**2) ** 0.5 * _BOW)
    ol = il + _pts(0 * t, _c(lt) * (1 - t**2) ** 0.6)
    ops.poly(_cat(ou, ol[..., ::-1, :]), idn["lip"])
    gap = ly - uy
    open_ = np.asarray(gap > 0.004)
    ops.poly(lambda: _cat(iu, il[..., ::-1, :]), const(40.0, 25.0, 45.0), on=open_)
    th = _pts(0.0, np.minimum(0.02, 0.5 * gap))[..., None, :]
    top = iu[..., _INNER, :]
    ops.poly(
        lambda: _cat(top, (top + th)[..., ::-1, :]),
        const(210.0, 222.0, 228.0),
        on=open_ & (gap > 0.01) & ((a10 > 0.15) | (a12 > 0.3) | (a26 > 0.2)),
    )
    th = _pts(0.0, np.minimum(0.012, 0.3 * gap))[..., None, :]
    low = il[..., _LOW, :]
    ops.poly(
        lambda: _cat(low - th, low[..., ::-1, :]), const(200.0, 212.0, 218.0), on=open_ & ((a16 > 0.2) | (a26 > 0.35))
    )
    ops.crease(iu, idn["lip"], 0.6, 0.008, on=~open_)
    for k, s in ((0, -1), (1, 1)):  # dimple (AU14)
        a14 = au(14, k)
        ops.crease(
            lambda: _pts(
                _row(cx[s] + s * 0.016, cx[s] + s * 0.02, cx[s] + s * 0.016), _row(cy[s] - 0.014, cy[s], cy[s] + 0.014)
            ),
            idn["skin"],
            0.7 * a14,
            0.006,
            on=np.asarray(a14 > 0.05),
        )
