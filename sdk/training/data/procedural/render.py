"""Draws procedural faces (numpy + OpenCV, anti-aliased) from identities, AU states and scenes, a batch at a time.

:mod:`.geometry` computes every primitive of the batch in a few vectorised numpy steps; this module transforms all
points through each face's similarity transform at once, then issues the OpenCV calls face by face (primitives of
the same kind and colour share one call where that draws the same pixels), and finishes lighting, blur and sensor
noise on the whole batch. A face is the same image whether rendered alone or in any batch.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import cv2
import numpy as np

from sdk.training.data.procedural.geometry import CIRCLE, CLOSED, POLY, Op, face_ops
from sdk.training.data.procedural.identity import Identity, Scene

_SHIFT = 4
_ONE = 1 << _SHIFT
_FIELDS = tuple(f.name for f in dataclasses.fields(Identity))
_COLORS = ("skin", "hair", "iris", "lip")
#: Scene as numbers: the order of :func:`scene_row` and of ``identity.scene_values``.
SCENE_FIELDS = ("angle", "scale", "shift_x", "shift_y", "yaw", "gaze_x", "gaze_y", "light_dir", "light_amp",
                "brightness", "blur", "noise", "bg_seed", "noise_seed")


@lru_cache(maxsize=65536)
def identity_row(idn: Identity) -> tuple[float, ...]:
    """An identity as a flat tuple of floats (colours as three numbers each, flags as 0/1)."""
    row: list[float] = []
    for name in _FIELDS:
        v = getattr(idn, name)
        row.extend(v) if name in _COLORS else row.append(float(v))
    return tuple(row)


def _identity_columns(rows: np.ndarray) -> dict[str, np.ndarray]:
    cols, j = {}, 0
    for name in _FIELDS:
        w = 3 if name in _COLORS else 1
        cols[name] = rows[:, j:j + 3] if w == 3 else rows[:, j]
        j += w
    return cols


def scene_row(scene: Scene) -> list[float]:
    """A scene as the numbers of :data:`SCENE_FIELDS`."""
    return [scene.angle, scene.scale, *scene.shift, scene.yaw, *scene.gaze, scene.light_dir, scene.light_amp,
            scene.brightness, scene.blur, scene.noise, float(scene.bg_seed), float(scene.noise_seed)]


_BANK = 512
_PERMS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


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


def _backgrounds(size: int, seeds: list[int]) -> np.ndarray:
    """Backgrounds (N, size, size, 3) picked from the bank by seed, flipped and channel-permuted by seed."""
    bank = _background_bank(size)
    out = np.empty((len(seeds), size, size, 3), np.uint8)
    for n, seed in enumerate(seeds):
        img = bank[seed % _BANK]
        if (seed // _BANK) % 2:
            img = img[:, ::-1]
        if (seed // (2 * _BANK)) % 2:
            img = img[::-1]
        o = out[n]
        for c, p in enumerate(_PERMS[(seed // (4 * _BANK)) % len(_PERMS)]):   # channel by channel: faster than a
            o[..., c] = img[..., p]                                            # fancy index or a flipped copy
    return out


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    return np.random.default_rng(54321).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    return xx, yy


def _transforms(sc: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point similarity transforms (N, 2, 3) (crop fractions -> pixels * 16) and pixels per crop unit (N,)."""
    a = np.deg2rad(sc["angle"])
    c, s = np.cos(a) * sc["scale"], np.sin(a) * sc["scale"]
    tx = 0.5 - (c * 0.5 + -s * 0.55) + sc["shift_x"]
    ty = 0.55 - (s * 0.5 + c * 0.55) + sc["shift_y"]
    m = np.stack([np.stack([c, -s, tx], 1), np.stack([s, c, ty], 1)], 1) * size
    return m * _ONE, np.hypot(m[:, 0, 0], m[:, 0, 1])


def _draw(images: np.ndarray, ops: list[Op], m: np.ndarray, px: np.ndarray) -> None:
    """Transforms every point of the batch at once, then draws each face's primitives in order."""
    pts = np.concatenate([op.pts for op in ops], axis=1)
    q = pts[..., :1] * m[:, None, :, 0] + pts[..., 1:] * m[:, None, :, 1] + m[:, None, :, 2]
    q = np.round(q).astype(np.int32)
    n = len(images)
    ends = np.cumsum([op.pts.shape[1] for op in ops]).tolist()
    colors = np.stack([op.color for op in ops], axis=1).tolist()
    on = np.stack([np.ones(n, bool) if op.on is None else op.on for op in ops], axis=1).tolist()
    widths = np.stack([np.maximum(1, np.round(np.broadcast_to(op.width, (n,)) * px * (_ONE if op.kind == CIRCLE else 1)))
                       for op in ops], axis=1).astype(int).tolist()
    kinds = [op.kind for op in ops]
    starts = [end - op.pts.shape[1] for op, end in zip(ops, ends)]
    merges = [op.merge for op in ops]
    aa = cv2.LINE_AA
    for img, qn, col, onn, wn in zip(images, q, colors, on, widths):
        group: list[np.ndarray] = []
        gkind, gcol, gw = -1, None, 0
        for kind, a, b, merge, c, w, o in zip(kinds, starts, ends, merges, col, wn, onn):
            if not o:
                continue
            if merge and kind == gkind and c == gcol and w == gw:
                group.append(qn[a:b])
            elif kind == CIRCLE:
                if group:
                    _emit(img, gkind, group, gcol, gw, aa)
                cv2.circle(img, (int(qn[a, 0]), int(qn[a, 1])), w, c, -1, aa, _SHIFT)
                group, gkind = [], -1
            else:
                if group:
                    _emit(img, gkind, group, gcol, gw, aa)
                group, gkind, gcol, gw = [qn[a:b]], kind, c, w
        if group:
            _emit(img, gkind, group, gcol, gw, aa)


def _emit(img: np.ndarray, kind: int, group: list[np.ndarray], color: list[float], width: int, aa: int) -> None:
    if kind == POLY:
        cv2.fillPoly(img, group, color, aa, _SHIFT)
    else:
        cv2.polylines(img, group, kind == CLOSED, color, width, aa, _SHIFT)


def _finish(images: np.ndarray, sc: dict[str, np.ndarray], size: int, color: bool) -> np.ndarray:
    """Lighting gradient, blur, sensor noise, optional grey conversion (per face, vectorised over the batch)."""
    xx, yy = _grid(size)
    ld = sc["light_dir"][:, None, None]
    gain = xx[:1] * np.cos(ld) + yy[:, :1] * np.sin(ld)   # the gradient is separable: a row plus a column
    gain *= sc["light_amp"][:, None, None]
    gain += 1
    gain *= sc["brightness"][:, None, None]
    out = images * gain[..., None]
    for n, blur in enumerate(sc["blur"].tolist()):
        sigma = blur * size / 64
        if sigma > 0.3:
            out[n] = cv2.GaussianBlur(out[n], (0, 0), sigma)
    bank = _noise_bank(size)
    noise = np.empty(images.shape, np.float32)
    for n, (seed, amp) in enumerate(zip(sc["noise_seed"].astype(np.int64).tolist(), sc["noise"].astype(np.float32))):
        oy, ox = seed % size, (seed // size) % size
        np.multiply(bank[oy:oy + size, ox:ox + size], amp, out=noise[n])
    out += noise
    np.clip(out, 0, 255, out=out)
    out = out.astype(np.uint8)
    if color:
        return out
    return cv2.cvtColor(out.reshape(-1, size, 3), cv2.COLOR_BGR2GRAY).reshape(len(out), size, size)


def render_faces(identities: list[Identity], aus: np.ndarray, scenes: np.ndarray, size: int = 64,
                 color: bool = True) -> np.ndarray:
    """Renders N faces: identities, AU states (N, AUs, 2) and scene rows (N, len(SCENE_FIELDS)) ->
    uint8 (N, size, size, 3) BGR, or (N, size, size) grey when ``color`` is False."""
    n = len(identities)
    if n == 0:
        return np.zeros((0, size, size, 3) if color else (0, size, size), np.uint8)
    idn = _identity_columns(np.array([identity_row(i) for i in identities], np.float64))
    sc = dict(zip(SCENE_FIELDS, np.asarray(scenes, np.float64).T))
    images = _backgrounds(size, sc["bg_seed"].astype(np.int64).tolist())
    m, px = _transforms(sc, size)
    _draw(images, face_ops(idn, np.asarray(aus, np.float32), sc), m, px)
    return _finish(images, sc, size, color)


def render_face(idn: Identity, aus: np.ndarray, scene: Scene, size: int = 64, color: bool = True) -> np.ndarray:
    """Renders one face: BGR uint8 (size, size, 3), or (size, size) gray when ``color`` is False."""
    return render_faces([idn], np.asarray(aus)[None], np.array([scene_row(scene)]), size, color)[0]
