"""Draws procedural faces (numpy + OpenCV, anti-aliased) from identities, AU states and scenes, a batch at a time.

:mod:`.geometry` computes every primitive of the batch in a few vectorised numpy steps; this module transforms all
points through each face's similarity transform at once, then issues the OpenCV calls face by face (primitives of
the same kind and colour share one call where that draws the same pixels), and finishes lighting, blur and sensor
noise on the whole batch. A face is the same image whether rendered alone or in any batch.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from runtime.datasets.procedural.geometry import CIRCLE, CLOSED, POLY, Op, face_ops
from runtime.datasets.procedural.identity import Identity, Scene, identity_columns

_SHIFT = 4
_ONE = 1 << _SHIFT
#: Scene as numbers: the order of :func:`scene_row` and of ``identity.scene_values``.
SCENE_FIELDS = (
    "angle",
    "scale",
    "shift_x",
    "shift_y",
    "yaw",
    "gaze_x",
    "gaze_y",
    "light_dir",
    "light_amp",
    "brightness",
    "blur",
    "noise",
    "bg_seed",
    "noise_seed",
)


@lru_cache(maxsize=4096)
def _identity_values(idn: Identity) -> dict[str, float | np.ndarray]:
    """The fields for rendering one face: floats, colours as (3,) float64 arrays, flags as 0/1."""
    cols = identity_columns(idn.row[None])
    return {k: v[0] if v.ndim == 2 else float(v[0]) for k, v in cols.items()}


def scene_row(scene: Scene) -> list[float]:
    """A scene as the numbers of :data:`SCENE_FIELDS`."""
    return [
        scene.angle,
        scene.scale,
        *scene.shift,
        scene.yaw,
        *scene.gaze,
        scene.light_dir,
        scene.light_amp,
        scene.brightness,
        scene.blur,
        scene.noise,
        float(scene.bg_seed),
        float(scene.noise_seed),
    ]


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
        for c, p in enumerate(_PERMS[(seed // (4 * _BANK)) % len(_PERMS)]):  # channel by channel: faster than a
            o[..., c] = img[..., p]  # fancy index or a flipped copy
    return out


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    return np.random.default_rng(54321).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred pixel coordinates (float32): x repeated per channel (1, 3 * size) and y as a column (size, 1)."""
    v = np.arange(size, dtype=np.float32) / np.float32(max(size - 1, 1)) - np.float32(0.5)
    return np.repeat(v, 3)[None], v[:, None]


def _transforms(sc: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point similarity transforms (N, 2, 3) (crop fractions -> pixels * 16) and pixels per crop unit (N,)."""
    a = np.deg2rad(sc["angle"])
    c, s = np.cos(a) * sc["scale"], np.sin(a) * sc["scale"]
    m = np.empty((len(a), 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = c, -s, 0.5 - (c * 0.5 + -s * 0.55) + sc["shift_x"]
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = s, c, 0.55 - (s * 0.5 + c * 0.55) + sc["shift_y"]
    m *= size
    return m * _ONE, np.hypot(m[:, 0, 0], m[:, 0, 1])


def _draw(images: np.ndarray, ops: list[Op], m: np.ndarray, px: np.ndarray) -> None:
    """Transforms every point of the batch at once, then draws each face's primitives in order.

    OpenCV rounds a colour to the image's integers before drawing, so colours are rounded here and packed with the
    primitive's kind and pixel width into one integer key per primitive and face (-1: not drawn): a primitive
    joins the previous call when it may merge and its key is equal.
    """
    n, nops = len(images), len(ops)
    pts = np.concatenate([op.pts.reshape(n, -1, 2) for op in ops], axis=1)
    q = np.empty(pts.shape, np.int32)
    x, y = pts[..., 0], pts[..., 1]
    for c in (0, 1):
        q[..., c] = np.round(x * m[:, c, 0:1] + y * m[:, c, 1:2] + m[:, c, 2:3])
    if n == 1:
        color = np.array([op.color for op in ops])[None]
        width = np.array([[float(op.width) for op in ops]])
        on = np.array([[op.on is None or bool(op.on) for op in ops]])
    else:
        color, width, on = np.empty((n, nops, 3)), np.empty((n, nops)), np.ones((n, nops), bool)
        for j, op in enumerate(ops):  # assignment broadcasts shared values over the batch
            color[:, j] = op.color
            width[:, j] = op.width
            if op.on is not None:
                on[:, j] = op.on
    kinds = np.array([op.kind for op in ops])
    width = np.round(width * px[:, None] * np.where(kinds == CIRCLE, _ONE, 1))
    color = np.clip(np.round(color), 0, 255).astype(np.int64)
    keys = (
        (((kinds << 12) | np.clip(width, 1, 4095).astype(np.int64)) << 24)
        | (color[..., 0] << 16)
        | (color[..., 1] << 8)
        | color[..., 2]
    )
    keys = np.where(on, keys, -1).tolist()
    static, end = [], 0
    for op in ops:
        static.append((end, end + op.pts.shape[-2], op.merge, op.kind == CIRCLE))
        end += op.pts.shape[-2]
    for img, qn, kn in zip(images, q, keys):
        group: list[np.ndarray] = []
        gkey = -1
        for (a, b, merge, circle), key in zip(static, kn):
            if key < 0:
                continue
            if merge and key == gkey:
                group.append(qn[a:b])
                continue
            if group:
                _emit(img, gkey, group)
            if circle:
                cv2.circle(img, (int(qn[a, 0]), int(qn[a, 1])), (key >> 24) & 4095, _bgr(key), -1, cv2.LINE_AA, _SHIFT)
                group, gkey = [], -1
            else:
                group, gkey = [qn[a:b]], key
        if group:
            _emit(img, gkey, group)


def _bgr(key: int) -> tuple[int, int, int]:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


def _emit(img: np.ndarray, key: int, group: list[np.ndarray]) -> None:
    kind = key >> 36
    if kind == POLY:
        cv2.fillPoly(img, group, _bgr(key), cv2.LINE_AA, _SHIFT)
    else:
        cv2.polylines(img, group, kind == CLOSED, _bgr(key), (key >> 24) & 4095, cv2.LINE_AA, _SHIFT)


_BLOCK = 16  # faces finished together: float64 work that stays in the CPU cache


def _finish(images: np.ndarray, sc: dict[str, np.ndarray], size: int, color: bool) -> np.ndarray:
    """Lighting, blur, noise and grey conversion, in cache-sized blocks of faces."""
    if len(images) <= _BLOCK:
        return _finish_block(images, sc, size, color)
    shape = images.shape if color else images.shape[:3]
    out = np.empty(shape, np.uint8)
    for a in range(0, len(images), _BLOCK):
        out[a : a + _BLOCK] = _finish_block(
            images[a : a + _BLOCK], {k: v[a : a + _BLOCK] for k, v in sc.items()}, size, color
        )
    return out


def _finish_block(images: np.ndarray, sc: dict[str, np.ndarray], size: int, color: bool) -> np.ndarray:
    """Lighting gradient, blur, sensor noise, optional grey conversion (per face, vectorised over the block)."""
    x3, y = _grid(size)
    ld = sc["light_dir"][:, None, None]
    # the gradient is a row term plus a column term; rows are laid out as (x, channel) so every pass is contiguous
    gain = x3 * np.cos(ld) + y * np.sin(ld)
    gain *= sc["light_amp"][:, None, None]
    gain += 1
    gain *= sc["brightness"][:, None, None]
    n = len(images)
    out = images.reshape(n, size, 3 * size).astype(np.float64)
    out *= gain
    out = out.reshape(images.shape)
    for n, blur in enumerate(sc["blur"].tolist()):
        sigma = blur * size / 64
        if sigma > 0.3:
            out[n] = cv2.GaussianBlur(out[n], (0, 0), sigma)
    bank = _noise_bank(size)
    noise = np.empty(images.shape, np.float32)
    for n, (seed, amp) in enumerate(zip(sc["noise_seed"].astype(np.int64).tolist(), sc["noise"].astype(np.float32))):
        oy, ox = seed % size, (seed // size) % size
        np.multiply(bank[oy : oy + size, ox : ox + size], amp, out=noise[n])
    out += noise
    np.clip(out, 0, 255, out=out)
    out = out.astype(np.uint8)
    if color:
        return out
    return cv2.cvtColor(out.reshape(-1, size, 3), cv2.COLOR_BGR2GRAY).reshape(len(out), size, size)


def render_faces(
    identities: list[Identity], aus: np.ndarray, scenes: np.ndarray, size: int = 64, color: bool = True
) -> np.ndarray:
    """Renders N faces: identities, AU states (N, AUs, 2) and scene rows (N, len(SCENE_FIELDS)) ->
    uint8 (N, size, size, 3) BGR, or (N, size, size) grey when ``color`` is False."""
    n = len(identities)
    if n == 0:
        return np.zeros((0, size, size, 3) if color else (0, size, size), np.uint8)
    sc = dict(zip(SCENE_FIELDS, np.asarray(scenes, np.float64).T))
    images = _backgrounds(size, sc["bg_seed"].astype(np.int64).tolist())
    m, px = _transforms(sc, size)
    aus = np.asarray(aus, np.float32)
    if n == 1:  # one face: plain floats (see geometry); the same numbers as in a batch
        ops = face_ops(_identity_values(identities[0]), aus, {k: float(v[0]) for k, v in sc.items()}, single=True)
    else:
        ops = face_ops(identity_columns(np.array([i.row for i in identities], np.float64)), aus, sc)
    _draw(images, ops, m, px)
    return _finish(images, sc, size, color)


def render_face(idn: Identity, aus: np.ndarray, scene: Scene, size: int = 64, color: bool = True) -> np.ndarray:
    """Renders one face: BGR uint8 (size, size, 3), or (size, size) gray when ``color`` is False."""
    return render_faces([idn], np.asarray(aus)[None], np.array([scene_row(scene)]), size, color)[0]
