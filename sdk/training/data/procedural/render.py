"""Draws one procedural face (numpy + OpenCV, anti-aliased) from an identity, an AU state and a scene.

Coordinates are fractions of the crop and follow the aligned-crop geometry of
:mod:`runtime.occlusion.geometry` (eye line 0.38, nose tip ~0.58, mouth 0.75, chin ~0.97), so the
occlusion protocols cover the parts they name.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from runtime.occlusion import geometry as geo
from sdk.training.data.procedural.aus import AU_INDEX
from sdk.training.data.procedural.identity import Color, Identity, Scene

_SHIFT = 4
_ONE = 1 << _SHIFT
_DARK = (25.0, 20.0, 30.0)
_T = np.linspace(-1.0, 1.0, 11)
_FRINGE_T = np.linspace(1.0, -1.0, 9)
_FRINGE_WAVE = 0.1 * np.abs(_FRINGE_T) ** 3 + 0.008 * np.cos(np.arange(9) * 2.1)
_BROW_U = np.linspace(0.0, 1.0, 7)[:, None]


def _mix(a: Color, b: Color, k: float) -> Color:
    k = 0.0 if k < 0.0 else 1.0 if k > 1.0 else k
    return (a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k, a[2] + (b[2] - a[2]) * k)


def _scale(a: Color, f: tuple[float, float, float]) -> Color:
    return (a[0] * f[0], a[1] * f[1], a[2] * f[2])


class _Canvas:
    """Records polygons/lines/circles in crop fractions, then draws them through one similarity transform.

    Recording first and transforming every point in one matrix product keeps the per-primitive Python
    overhead small (thousands of faces per second at 64 px).
    """

    def __init__(self, img: np.ndarray, m: np.ndarray) -> None:
        self.img = img
        self.m = m * _ONE
        self.px = float(np.hypot(m[0, 0], m[0, 1]))  # pixels per crop unit
        self.ops: list[tuple[int, np.ndarray, Color, int]] = []

    def poly(self, pts: np.ndarray, color: Color) -> None:
        self.ops.append((0, np.asarray(pts, np.float64).reshape(-1, 2), color, 0))

    def line(self, pts: np.ndarray, color: Color, width: float, closed: bool = False) -> None:
        thick = max(1, int(round(width * self.px)))
        self.ops.append((2 if closed else 1, np.asarray(pts, np.float64).reshape(-1, 2), color, thick))

    def crease(self, pts: np.ndarray, base: Color, k: float, width: float) -> None:
        """A line darkened from ``base`` by strength ``k``; skipped when too faint to see (k < 0.03)."""
        if k >= 0.03:
            self.line(pts, _mix(base, _DARK, k), width)

    def circle(self, c: tuple[float, float], r: float, color: Color) -> None:
        self.ops.append((3, np.array([c], np.float64), color, max(1, int(round(r * self.px * _ONE)))))

    def flush(self) -> None:
        """Transforms all recorded points at once and draws the primitives in order."""
        allpts = np.concatenate([op[1] for op in self.ops])
        allpts = np.round(allpts @ self.m[:, :2].T + self.m[:, 2]).astype(np.int32)
        i = 0
        img, aa = self.img, cv2.LINE_AA
        for kind, pts, color, extra in self.ops:
            q = allpts[i:i + len(pts)]
            i += len(pts)
            if kind == 0:
                cv2.fillPoly(img, [q], color, aa, _SHIFT)
            elif kind == 3:
                cv2.circle(img, (int(q[0, 0]), int(q[0, 1])), extra, color, -1, aa, _SHIFT)
            else:
                cv2.polylines(img, [q], kind == 2, color, extra, aa, _SHIFT)
        self.ops.clear()


@lru_cache(maxsize=256)
def _unit_arc(t0: float, t1: float, n: int, p: float) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / p
    return np.stack([np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e], axis=1)


def oval(cx: float, cy: float, ax: float, ay: float, t0: float, t1: float, n: int = 16, p: float = 2.0) -> np.ndarray:
    """Points of a super-ellipse arc (angles t0..t1, radians; p = 2 is an ellipse)."""
    return _unit_arc(t0, t1, n, round(p, 2)) * (ax, ay) + (cx, cy)


_BANK = 512


@lru_cache(maxsize=4)
def _background_bank(size: int) -> np.ndarray:
    """``_BANK`` cluttered backgrounds (a base colour and random rectangles, circles and lines), made once per size."""
    rng = np.random.default_rng(12345)
    bank = np.empty((_BANK, size, size, 3), np.uint8)
    for img in bank:
        img[:] = rng.integers(30, 230, 3)
        for _ in range(int(rng.integers(4, 9))):
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            x, y = (int(v) for v in rng.integers(0, size, 2))
            r = int(rng.integers(size // 12, size // 3))
            kind = rng.integers(3)
            if kind == 0:
                cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r), color, -1)
            elif kind == 1:
                cv2.circle(img, (x, y), r, color, -1, cv2.LINE_AA)
            else:
                end = tuple(int(v) for v in rng.integers(0, size, 2))
                cv2.line(img, (x, y), end, color, max(1, size // 20))
    return bank


def _background(size: int, seed: int) -> np.ndarray:
    """A background picked from the bank by ``seed``, flipped and channel-permuted by ``seed`` (a fresh copy)."""
    img = _background_bank(size)[seed % _BANK]
    if (seed // _BANK) % 2:
        img = img[:, ::-1]
    if (seed // (2 * _BANK)) % 2:
        img = img[::-1]
    return np.ascontiguousarray(img[..., _PERMS[(seed // (4 * _BANK)) % len(_PERMS)]])


_PERMS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    return np.random.default_rng(54321).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


def _transform(scene: Scene, size: int) -> np.ndarray:
    a = np.deg2rad(scene.angle)
    c, s = np.cos(a) * scene.scale, np.sin(a) * scene.scale
    r = np.array([[c, -s], [s, c]])
    centre = np.array([0.5, 0.55])
    t = centre - r @ centre + np.array(scene.shift)
    return np.hstack([r, t[:, None]]) * size


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    return xx, yy


def render_face(idn: Identity, aus: np.ndarray, scene: Scene, size: int = 64, color: bool = True) -> np.ndarray:
    """Renders one face: BGR uint8 (size, size, 3), or (size, size) gray when ``color`` is False."""
    sides = aus.tolist()
    means = aus.mean(axis=1).tolist()

    def au(n: int, side: int = -1) -> float:
        return means[AU_INDEX[n]] if side < 0 else sides[AU_INDEX[n]][side]

    img = _background(size, scene.bg_seed)
    cv = _Canvas(img, _transform(scene, size))
    skin, hair = idn.skin, idn.hair
    dx = 0.025 * scene.yaw
    fcy, fw = 0.53, idn.face_w
    if idn.long_hair:
        back = np.vstack([oval(0.5, 0.5, fw + 0.07, idn.face_h + 0.06, np.pi, 2 * np.pi), [[0.5 + fw + 0.09, 1.1],
                                                                                       [0.5 - fw - 0.09, 1.1]]])
        cv.poly(back, _mix(hair, _DARK, 0.25))
    cv.poly(np.array([[0.5 - 0.55 * fw, 0.8], [0.5 + 0.55 * fw, 0.8], [0.5 + 0.7 * fw, 1.1], [0.5 - 0.7 * fw, 1.1]]),
            _mix(skin, _DARK, 0.25))
    for s in (-1, 1):
        cv.poly(oval(0.5 + s * (fw + 0.005), 0.47, 0.03, 0.06, 0, 2 * np.pi, 10), _mix(skin, _DARK, 0.12))
    jaw = idn.jaw_h + 0.045 * au(26)
    face = np.vstack([oval(0.5, fcy, fw, idn.face_h, np.pi, 2 * np.pi, 14),
                      oval(0.5, fcy, fw, jaw, 0, np.pi, 14, idn.jaw_square)])
    cv.poly(face, skin)
    top = np.pi + (0.1 if idn.long_hair else 0.35)
    fringe_x = 0.5 + fw * 0.97 * _FRINGE_T
    fringe_y = idn.hairline + _FRINGE_WAVE
    cap = np.vstack([oval(0.5, fcy, fw + 0.025, idn.face_h + 0.035, top, 3 * np.pi - top, 16),
                     np.stack([fringe_x, fringe_y], axis=1)])
    cv.poly(cap, hair)

    # nose geometry first (folds start at the nose wings)
    nx, ny9 = 0.5 + dx, idn.nose_y - 0.012 * au(9) - 0.006 * au(10)
    mx, my = 0.5 + 0.9 * dx, geo.MOUTH_Y + idn.mouth_dy
    a12m, a26, a23, a20, a16, a15, a10 = au(12), au(26), au(23), au(20), au(16), au(15), au(10)
    cx, cyy = {}, {}
    for k, s in ((0, -1), (1, 1)):
        cx[s] = mx + s * idn.mouth_w * (1 + 0.22 * au(12, k) + 0.25 * a20 - 0.15 * au(14, k) - 0.12 * a23
                                        - 0.1 * a26 + 0.05 * a10)
        cyy[s] = (my + idn.corner_rest - 0.042 * au(12, k) + 0.034 * a15 + 0.012 * a20 - 0.008 * au(14, k)
                  + 0.006 * a16 + 0.018 * a26)
    fold = idn.fold + 0.55 * a12m + 0.4 * a10 + 0.35 * au(9) + 0.25 * au(6)
    for s in (-1, 1):
        a = (nx + s * idn.nose_w * 0.62, ny9 - 0.01)
        b = (cx[s] + s * 0.035, cyy[s] + 0.02)
        mid = ((a[0] + b[0]) / 2 + s * 0.03, (a[1] + b[1]) / 2)
        cv.crease(np.array([a, mid, b]), skin, 0.4 * min(fold, 1.0), 0.007)

    ey = geo.EYE_Y + idn.eye_dy
    for k, s in ((0, -1), (1, 1)):
        ex, ew = 0.5 + s * idn.eye_dx + 0.7 * dx, idn.eye_w
        a5, a6, a7 = au(5, k), au(6, k), au(7, k)
        hu = idn.eye_open * (1 + 1.1 * a5 - 0.45 * a7 - 0.25 * a6)
        hl = idn.eye_open * 0.75 * (1 - 0.6 * a6 - 0.4 * a7 + 0.15 * a5)
        prof = (1 - _T**2) ** 0.7
        xs = ex + _T * ew
        upper = np.stack([xs, ey - hu * prof], 1)
        lower = np.stack([xs, ey + hl * prof], 1)
        cv.poly(np.vstack([upper, lower[::-1]]), (225.0, 228.0, 232.0))
        ic = (ex + scene.gaze[0] * ew * 0.4, ey + scene.gaze[1] * 0.008 + 0.003)
        cv.circle(ic, idn.iris_r, idn.iris)
        cv.circle(ic, idn.iris_r * 0.45, (15.0, 15.0, 15.0))
        edge = [[ex + ew * 1.05, ey], [ex + ew * 1.05, ey - 0.045], [ex - ew * 1.05, ey - 0.045], [ex - ew * 1.05, ey]]
        cv.poly(np.vstack([upper, edge]), _mix(skin, _DARK, 0.07))
        edge = [[ex + ew * 1.05, ey], [ex + ew * 1.05, ey + 0.04], [ex - ew * 1.05, ey + 0.04], [ex - ew * 1.05, ey]]
        cv.poly(np.vstack([lower, edge]), skin)
        blush = _scale(skin, (0.85, 0.82, 1.12))
        cv.poly(oval(ex, ey + 0.1 - 0.03 * a6, 0.055, 0.035, 0, 2 * np.pi, 12), _mix(skin, blush, 0.15 + 0.6 * a6))
        cv.crease(upper, skin, 0.85, 0.012)
        cv.crease(lower, skin, 0.3, 0.006)
        cv.crease(upper + [0, -0.012 * (1 - 0.8 * a5)], skin, 0.25 * (1 - a5), 0.006)
        cv.crease(lower + [0, 0.014], skin, 0.6 * a6 + 0.35 * a7, 0.006)
        if a6 > 0.05:
            for ang in (-0.35, 0.0, 0.35):   # crow's feet (AU6)
                o = (ex + s * ew * 1.15, ey)
                cv.crease(np.array([o, (o[0] + s * 0.03 * np.cos(ang), o[1] + 0.03 * np.sin(ang))]), skin, 0.55 * a6,
                          0.005)
        _brow(cv, idn, au, k, s, ex, ey, dx)
        if idn.glasses:
            cv.line(oval(ex, ey + 0.005, ew * 1.5, 0.05, 0, 2 * np.pi, 16, 4.0), (30.0, 30.0, 30.0), 0.01, True)
    if idn.glasses:
        inner = idn.eye_dx - idn.eye_w * 1.5
        cv.line(np.array([[0.5 + dx - inner, ey], [0.5 + dx + inner, ey]]),
                (30.0, 30.0, 30.0), 0.01)
    base = ey - idn.brow_h
    for off in (-0.012, 0.012):   # vertical furrow (AU4)
        cv.crease(np.array([[nx + off, base - 0.005], [nx + off * 0.6, base + 0.045]]), skin,
                  0.6 * au(4) + 0.2 * au(9), 0.006)
    a1, a2 = au(1), au(2)
    span = 0.04 + 0.1 * a2 / (a1 + a2 + 1e-6)
    for h in (0.045, 0.07):   # forehead wrinkles (AU1/AU2)
        y = base - h
        if y > idn.hairline + 0.01:
            cv.crease(oval(nx, y + 0.02, span, 0.02, np.pi + 0.5, 2 * np.pi - 0.5, 7), skin, 0.5 * max(a1, a2), 0.006)
    _nose(cv, idn, au, nx, ny9, ey)
    _mouth(cv, idn, au, mx, my, cx, cyy)
    cv.flush()
    return _finish(img, scene, size, color)


def _brow(cv: _Canvas, idn: Identity, au, k: int, s: int, ex: float, ey: float, dx: float) -> None:
    a1, a2, a4, a9 = au(1, k), au(2, k), au(4, k), au(9, k)
    ew, base = idn.eye_w, ey - idn.brow_h
    inner = (ex - s * (ew * 0.95 + 0.012 * a4), base - idn.brow_tilt - 0.045 * a1 + 0.03 * a4 + 0.022 * a9 + 0.01 * a2)
    mid = (ex + s * ew * 0.1, base - 0.012 - 0.025 * a1 - 0.028 * a2 + 0.022 * a4 + 0.01 * a9)
    outer = (ex + s * ew * 1.25, base + 0.005 + idn.brow_tilt - 0.045 * a2 + 0.012 * a4 - 0.01 * a1)
    u = _BROW_U
    pts = (1 - u) ** 2 * np.array(inner) + 2 * u * (1 - u) * np.array(mid) + u**2 * np.array(outer)
    half = (idn.brow_thick * (1.0 - 0.45 * u)) / 2
    color = _mix(idn.skin, _scale(idn.hair, (0.7, 0.7, 0.7)), idn.brow_dark)
    cv.poly(np.vstack([pts - [0, 1] * half, (pts + [0, 1] * half)[::-1]]), color)


def _nose(cv: _Canvas, idn: Identity, au, nx: float, ny: float, ey: float) -> None:
    skin, nw, a9 = idn.skin, idn.nose_w, au(9)
    for s in (-1, 1):
        cv.crease(np.array([[nx + s * 0.022, ey + 0.035], [nx + s * nw * 0.42, ny - 0.03]]), skin, 0.1, 0.006)
        cv.poly(oval(nx + s * nw * 0.28, ny + 0.004, 0.012 * (1 + 0.3 * a9), 0.006, 0, 2 * np.pi, 8),
                _mix(skin, _DARK, 0.7))
        t0 = -np.pi / 2 if s > 0 else np.pi / 2   # alar wing arc bulging outwards
        cv.crease(oval(nx + s * nw * 0.38, ny - 0.004, nw * 0.16, 0.016, t0, t0 + np.pi, 6), skin, 0.35, 0.006)
    for y in (0.05, 0.068, 0.086):   # nose wrinkles (AU9)
        cv.crease(oval(nx, ey + y + 0.01, 0.03, 0.01, np.pi + 0.6, 2 * np.pi - 0.6, 5), skin, 0.75 * a9, 0.006)


def _mouth(cv: _Canvas, idn: Identity, au, mx: float, my: float, cx: dict, cy: dict) -> None:
    a10, a12, a16, a20, a23, a26 = au(10), au(12), au(16), au(20), au(23), au(26)
    uy = my - 0.02 * a10 - 0.008 * au(9) - 0.005 * a12 - 0.008 * a26
    ly = my + 0.075 * a26 + 0.022 * a16 + 0.008 * a12 + 0.004 * a20
    if ly - uy < 0.006:
        uy = ly = (uy + ly) / 2
    ut = idn.lip_up * (1 - 0.6 * a23 - 0.25 * a20 - 0.2 * a12)
    lt = idn.lip_low * (1 - 0.6 * a23 - 0.25 * a20 + 0.15 * a16)
    t = _T
    xs = (cx[-1] * (1 - t) + cx[1] * (1 + t)) / 2
    ycs = (cy[-1] * (1 - t) + cy[1] * (1 + t)) / 2
    cmean = (cy[-1] + cy[1]) / 2
    iu = np.stack([xs, ycs + (uy - cmean) * (1 - t**2)], 1)
    il = np.stack([xs, ycs + (ly - cmean) * (1 - t**2) ** 0.8], 1)
    bow = 1 - 0.3 * np.exp(-(t / 0.18) ** 2)
    ou = iu - np.stack([0 * t, ut * (1 - t**2) ** 0.5 * bow], 1)
    ol = il + np.stack([0 * t, lt * (1 - t**2) ** 0.6], 1)
    cv.poly(np.vstack([ou, ol[::-1]]), idn.lip)
    gap = ly - uy
    if gap > 0.004:
        cv.poly(np.vstack([iu, il[::-1]]), (40.0, 25.0, 45.0))
        inner = np.abs(t) < 0.75
        if gap > 0.01 and (a10 > 0.15 or a12 > 0.3 or a26 > 0.2):
            th = min(0.02, 0.5 * gap)
            cv.poly(np.vstack([iu[inner], (iu[inner] + [0, th])[::-1]]), (210.0, 222.0, 228.0))
        if a16 > 0.2 or a26 > 0.35:
            th = min(0.012, 0.3 * gap)
            low = il[np.abs(t) < 0.55]
            cv.poly(np.vstack([low - [0, th], low[::-1]]), (200.0, 212.0, 218.0))
    else:
        cv.crease(iu, idn.lip, 0.6, 0.008)
    for k, s in ((0, -1), (1, 1)):   # dimple (AU14)
        a14 = au(14, k)
        if a14 > 0.05:
            cv.crease(np.array([[cx[s] + s * 0.016, cy[s] - 0.014], [cx[s] + s * 0.02, cy[s]],
                              [cx[s] + s * 0.016, cy[s] + 0.014]]), idn.skin, 0.7 * a14, 0.006)


def _finish(img: np.ndarray, scene: Scene, size: int, color: bool) -> np.ndarray:
    """Lighting gradient, blur, sensor noise, optional grey conversion."""
    xx, yy = _grid(size)
    gain = scene.brightness * (1 + scene.light_amp * (xx * np.cos(scene.light_dir) + yy * np.sin(scene.light_dir)))
    out = img.astype(np.float32) * gain[..., None]
    sigma = scene.blur * size / 64
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    oy, ox = scene.noise_seed % size, (scene.noise_seed // size) % size
    noise = _noise_bank(size)[oy:oy + size, ox:ox + size]
    out = np.clip(out + noise * scene.noise, 0, 255).astype(np.uint8)
    return out if color else cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
