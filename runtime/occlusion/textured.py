"""Textured occluders (hand, cup, image patch) drawn with OpenCV at a random place on the face.

Each renderer returns a full-size BGR layer and a boolean mask of where the occluder is; the caller
composes ``where(mask, layer, image)`` so pixels outside the mask never change.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from runtime.occlusion.geometry import FACE_BOX

_SKIN_BGR = np.array([[95, 125, 175], [120, 160, 215], [60, 90, 140], [140, 180, 230], [45, 65, 105]], np.float32)


def value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (h, w): a random ``cells x cells`` grid upsampled bicubically."""
    grid = rng.random((cells, cells), dtype=np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def procedural_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A cluttered BGR texture (smooth colour noise plus stripes or checks) used when no patch source is given."""
    c1, c2 = rng.integers(0, 256, (2, 3)).astype(np.float32)
    t = value_noise(rng, h, w, int(rng.integers(3, 9)))[..., None]
    img = c1 * t + c2 * (1.0 - t)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(3, 10))
    angle = float(rng.uniform(0, np.pi))
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    if rng.random() < 0.5:
        pattern = np.floor(phase) % 2
    else:
        pattern = (np.floor(xx / period) + np.floor(yy / period)) % 2
    c3 = rng.integers(0, 256, 3).astype(np.float32)
    img = img * (1 - 0.5 * pattern[..., None]) + c3 * 0.5 * pattern[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _placement(
    rng: np.random.Generator, h: int, w: int, scale_range: tuple[float, float], max_angle: float
) -> tuple[np.ndarray, float]:
    """A 2x3 affine from a local unit frame (origin = occluder centre) to pixels, and the size in pixels."""
    x0, y0, x1, y1 = FACE_BOX
    cx = rng.uniform(x0, x1) * w
    cy = rng.uniform(y0, y1) * h
    size = rng.uniform(*scale_range) * min(h, w)
    a = np.deg2rad(rng.uniform(-max_angle, max_angle))
    c, s = np.cos(a) * size, np.sin(a) * size
    return np.array([[c, -s, cx], [s, c, cy]], np.float64), size


def _pts(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Maps local points (k, 2) through the affine ``m`` to int32 pixel points for cv2."""
    return np.round(pts @ m[:, :2].T + m[:, 2]).astype(np.int32)


def _hand(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    m, size = _placement(rng, h, w, (0.45, 0.8), 180.0)
    mask = np.zeros((h, w), np.uint8)
    palm = cv2.ellipse2Poly((0, 0), (1000, 1000), 0, 0, 360, 20).astype(np.float64) / 1000 * [0.24, 0.22] + [0, 0.2]
    cv2.fillPoly(mask, [_pts(m, palm)], 1)
    finger_w = max(1, int(round(0.085 * size)))
    spread = rng.uniform(0.0, 0.12)
    lengths = rng.uniform(0.8, 1.0) * np.array([0.36, 0.42, 0.40, 0.32])
    for k, (bx, length) in enumerate(zip((-0.16, -0.055, 0.055, 0.16), lengths)):
        tilt = (k - 1.5) * spread
        base = np.array([[bx, 0.05]])
        tip = base + length * np.array([[np.sin(tilt), -np.cos(tilt)]])
        p, q = _pts(m, base)[0], _pts(m, tip)[0]
        cv2.line(mask, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1, finger_w)
    side = rng.choice([-1.0, 1.0])
    thumb = _pts(m, np.array([[0.2 * side, 0.25], [0.42 * side, 0.02]]))
    cv2.line(mask, tuple(map(int, thumb[0])), tuple(map(int, thumb[1])), 1, max(1, int(round(0.1 * size))))
    skin = _SKIN_BGR[rng.integers(len(_SKIN_BGR))] * rng.uniform(0.85, 1.15)
    shade = 0.75 + 0.4 * value_noise(rng, h, w, 4)[..., None]
    grain = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    layer = np.clip(skin * shade + grain, 0, 255).astype(np.uint8)
    for y in (-0.1, 0.0):  # knuckle creases
        crease = _pts(m, np.array([[-0.2, y], [0.2, y]]))
        cv2.line(layer, tuple(map(int, crease[0])), tuple(map(int, crease[1])), (skin * 0.6).tolist(), 1)
    return layer, mask.astype(bool)


def _cup(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    m, size = _placement(rng, h, w, (0.35, 0.6), 25.0)
    mask = np.zeros((h, w), np.uint8)
    body = np.array([[-0.3, -0.4], [0.3, -0.4], [0.22, 0.4], [-0.22, 0.4]])
    cv2.fillPoly(mask, [_pts(m, body)], 1)
    side = rng.choice([-1.0, 1.0])
    ring = cv2.ellipse2Poly((0, 0), (1000, 1000), 0, 0, 360, 20).astype(np.float64) / 1000 * [0.16, 0.2]
    ring += [0.3 * side, -0.05]
    cv2.polylines(mask, [_pts(m, ring)], True, 1, max(1, int(round(0.07 * size))))
    rim = cv2.ellipse2Poly((0, 0), (1000, 1000), 0, 0, 360, 20).astype(np.float64) / 1000 * [0.3, 0.07] + [0, -0.4]
    cv2.fillPoly(mask, [_pts(m, rim)], 1)
    base_c = rng.integers(30, 256, 3).astype(np.float32)
    stripe_c = rng.integers(0, 256, 3).astype(np.float32)
    local = cv2.invertAffineTransform(m)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lx = local[0, 0] * xx + local[0, 1] * yy + local[0, 2]
    ly = local[1, 0] * xx + local[1, 1] * yy + local[1, 2]
    shading = (0.65 + 0.45 * np.cos(np.clip(lx / 0.3, -1.5, 1.5)))[..., None]
    stripe = ((ly > rng.uniform(-0.2, 0.0)) & (ly < rng.uniform(0.05, 0.25)))[..., None]
    layer = np.where(stripe, stripe_c, base_c) * shading
    layer = np.where((np.abs(ly + 0.4) < 0.05)[..., None], base_c * 0.35, layer)  # dark inside of the rim
    return np.clip(layer, 0, 255).astype(np.uint8), mask.astype(bool)


def _patch(
    rng: np.random.Generator, h: int, w: int, sources: Sequence[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    ph = max(2, int(round(rng.uniform(0.2, 0.5) * h)))
    pw = max(2, int(round(rng.uniform(0.2, 0.5) * w)))
    if sources:
        src = sources[int(rng.integers(len(sources)))]
        src = src if src.ndim == 3 else cv2.cvtColor(src, cv2.COLOR_GRAY2BGR)
        sh, sw = src.shape[:2]
        ch, cw = max(1, int(rng.uniform(0.2, 0.6) * sh)), max(1, int(rng.uniform(0.2, 0.6) * sw))
        y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
        tex = cv2.resize(np.ascontiguousarray(src[y : y + ch, x : x + cw, :3]), (pw, ph), interpolation=cv2.INTER_AREA)
    else:
        tex = procedural_texture(rng, ph, pw)
    x0, y0, x1, y1 = FACE_BOX
    cx = int(round(rng.uniform(x0, x1) * w))
    cy = int(round(rng.uniform(y0, y1) * h))
    top, left = cy - ph // 2, cx - pw // 2
    local = np.zeros((ph, pw), np.uint8)
    if rng.random() < 0.5:
        local[:] = 1
    else:
        cv2.ellipse(local, (pw // 2, ph // 2), (max(1, pw // 2), max(1, ph // 2)), 0, 0, 360, 1, -1)
    layer = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    ys, xs = slice(max(top, 0), min(top + ph, h)), slice(max(left, 0), min(left + pw, w))
    ly, lx = slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left)
    layer[ys, xs] = tex[ly, lx]
    mask[ys, xs] = local[ly, lx].astype(bool)
    return layer, mask


def render_textured(
    rng: np.random.Generator, texture: str, h: int, w: int, sources: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draws one textured occluder; returns ``(layer BGR uint8 (h, w, 3), mask bool (h, w))``."""
    if texture == "hand":
        return _hand(rng, h, w)
    if texture == "cup":
        return _cup(rng, h, w)
    return _patch(rng, h, w, sources)
