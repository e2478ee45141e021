"""Worn occluders other than the headset: sunglasses and face masks (surgical, KN95-style and cloth), in face units.

Mask textures are procedural. The ``insightface`` sdist ships four mask photos (``data/images/mask_*.jpg``), but
their source and licence are not stated (the package's code is MIT, its models non-commercial research only), so
ofer does not ship or load them.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.occlusion.canvas import Canvas, ellipse, superellipse
from runtime.occlusion.face_frame import FaceFrame
from runtime.occlusion.headset import jitter
from runtime.occlusion.textured import value_noise

LENS_SHAPES = ("round", "aviator", "wayfarer", "rect", "cateye")
_FRAMES = np.array(
    [[20, 20, 22], [30, 45, 70], [40, 70, 110], [60, 170, 205], [190, 190, 195], [235, 235, 235], [40, 40, 160]],
    np.float32,
)  # black, tortoise, brown, gold, silver, white, red
_TINTS = np.array(
    [[22, 22, 24], [22, 38, 62], [30, 48, 32], [190, 120, 40], [50, 140, 200], [90, 70, 120], [45, 45, 50]], np.float32
)  # grey, brown, green, blue mirror, gold mirror, rose, smoke
_TINT_P = np.array([0.3, 0.2, 0.12, 0.1, 0.06, 0.07, 0.15])
SURGICAL = np.array([[225, 200, 145], [240, 240, 236], [205, 190, 240], [40, 40, 42], [200, 215, 160]], np.float32)
_CLOTH = np.array(
    [
        [35, 35, 38],
        [90, 50, 30],
        [120, 120, 125],
        [60, 60, 150],
        [70, 120, 70],
        [180, 200, 220],
        [150, 110, 190],
        [200, 170, 120],
    ],
    np.float32,
)


def _lens(rng: np.random.Generator, shape: str, lw: float, lh: float) -> np.ndarray:
    """Outline of the person's left lens (+u side) centred at the origin; its outer side is +u."""
    power = {"round": 2.0, "aviator": 2.4, "wayfarer": 3.4, "rect": rng.uniform(4.0, 7.0), "cateye": 3.0}[shape]
    p = superellipse(0.0, 0.0, (lw, lw), (lh, lh), power, 64)
    u, v = p[:, 0], p[:, 1].copy()
    if shape == "wayfarer":
        u = u * (1 + 0.18 * (-v / lh))  # wider at the top
    elif shape == "aviator":
        inner = np.clip(-u / lw, 0, 1)
        v = np.where(v > 0, v * (1 + 0.45 * inner), v)  # the bottom droops towards the nose
    elif shape == "cateye":
        v = v - 0.5 * lh * np.clip(u / lw, 0, 1) ** 2 * (v < 0.2 * lh)
    return np.stack([u, v], axis=1)


def draw_sunglasses(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints one random pair of sunglasses on a canvas placed on ``frame``."""
    shape = LENS_SHAPES[int(rng.integers(len(LENS_SHAPES)))]
    lw = rng.uniform(0.36, 0.48) * (1.05 if shape == "round" else 1.0)
    lh = lw * (rng.uniform(0.8, 1.0) if shape == "round" else rng.uniform(0.55, 0.8))
    vl = rng.uniform(-0.02, 0.07)
    gap = rng.uniform(0.5, 0.56)
    hw_r, hw_l = frame.half_widths
    shift = 0.45 * frame.yaw
    scale_r, scale_l = (float(np.clip(0.55 + 0.45 * hw / 1.05, 0.6, 1.2)) for hw in (hw_r, hw_l))
    cv = Canvas(
        frame,
        (
            shift - gap * scale_r - lw * 1.4 - 0.6,
            vl - lh * 1.6 - 0.1,
            shift + gap * scale_l + lw * 1.4 + 0.6,
            vl + lh * 1.8 + 0.3,
        ),
    )
    U, V = cv.grid
    lens = _lens(rng, shape, lw, lh)
    lenses = [
        np.stack([shift + sign * gap * sc + sign * lens[:, 0] * sc, vl + lens[:, 1]], axis=1)
        for sign, sc in ((-1, scale_r), (1, scale_l))
    ]
    fcol = jitter(rng, _FRAMES[int(rng.integers(len(_FRAMES)))], 6)
    fw = rng.uniform(0.025, 0.045) if fcol.mean() > 150 and fcol[0] > 50 else rng.uniform(0.03, 0.09)

    # temples to the ears, then the bridge, then lenses and rims over them
    for sign, sc, hw in ((-1, scale_r, hw_r), (1, scale_l, hw_l)):
        start = (shift + sign * (gap + lw * 0.9) * sc, vl - 0.45 * lh)
        end = (sign * max(hw + 0.05, abs(start[0]) + 0.12), 0.18)
        cv.paint(cv.stroke(np.array([start, end]), fw * 1.2), fcol)
    inner_r, inner_l = (shift + s * (gap - lw * 0.95) * sc for s, sc in ((-1, scale_r), (1, scale_l)))
    bridge = ellipse(shift, vl - 0.35 * lh, (inner_l - inner_r) / 2 + 0.02, rng.uniform(0.02, 0.1), 0, 180, 360, 12)
    cv.paint(cv.stroke(bridge, max(fw, 0.035)), fcol)
    if shape == "aviator":
        cv.paint(cv.stroke(bridge - (0, 0.18 * lh), 0.025), fcol)

    tint = jitter(rng, _TINTS[int(rng.choice(len(_TINTS), p=_TINT_P))], 6)
    mirror = tint.max() - tint.min() > 80
    cov = cv.fill(*lenses)
    top, bot = rng.uniform(0.9, 0.98), rng.uniform(0.78, 0.95)
    grad = top + (bot - top) * np.clip((V - (vl - lh)) / (2 * lh), 0, 1)
    lens_col = tint[None, None] * (1.15 - 0.3 * np.clip((V - (vl - lh)) / (2 * lh), 0, 1))[..., None]
    cv.paint(cov * grad, lens_col)
    if mirror:  # sky-to-ground reflection on mirrored lenses
        cv.add_light(0.35 * cov * np.clip(1 - (V - (vl - lh)) / (1.2 * lh), 0, 1))
    for _ in range(int(rng.integers(1, 3))):  # diagonal highlight streaks
        c = rng.uniform(-0.3, 0.3)
        band = np.exp(-((((U - shift) * 0.35 + (V - vl) + c) / rng.uniform(0.03, 0.07)) ** 2))
        cv.add_light(rng.uniform(0.2, 0.45) * band * cov)
    cv.paint(cv.stroke(lenses, fw, closed=True), fcol)
    cv.add_light(0.25 * cv.stroke(lenses[0] - (0, 0.01), fw * 0.3, True) * (fcol.mean() < 100))
    return cv


def _mask_outline(frame: FaceFrame, rng: np.random.Generator, pointed: bool) -> tuple[np.ndarray, float, float]:
    hw_r, hw_l = frame.half_widths
    w_r, w_l = hw_r * rng.uniform(0.88, 0.98), hw_l * rng.uniform(0.88, 0.98)
    cu = 0.35 * frame.yaw
    t_side, t_mid = rng.uniform(0.3, 0.42), rng.uniform(0.18, 0.3)
    b_side, b_mid = rng.uniform(1.0, 1.15), rng.uniform(1.55, 1.75)
    t = np.linspace(-1, 1, 25)
    top = np.stack([cu + np.where(t < 0, t * w_r, t * w_l), t_side + (t_mid - t_side) * (1 - t**2)], axis=1)
    if pointed:
        top[:, 1] = t_side + (t_mid - t_side) * (1 - np.abs(t))
    s = np.linspace(1, -1, 25)
    bw = 0.82
    prof = np.sqrt(1 - s**2) if not pointed else 1 - np.abs(s)
    bottom = np.stack([cu + np.where(s < 0, s * w_r * bw, s * w_l * bw), b_side + (b_mid - b_side) * prof], axis=1)
    return np.concatenate([top, bottom]), w_r, w_l


def draw_mask(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints one random face mask (surgical, KN95-style or cloth) from the nose bridge to below the chin."""
    kind = ("surgical", "kn95", "cloth")[int(rng.choice(3, p=[0.45, 0.2, 0.35]))]
    outline, w_r, w_l = _mask_outline(frame, rng, kind == "kn95")
    cu = 0.35 * frame.yaw
    cv = Canvas(frame, (cu - w_r - 0.35, 0.05, cu + w_l + 0.35, 1.85))
    U, V = cv.grid
    if kind == "cloth":
        base = jitter(rng, _CLOTH[int(rng.integers(len(_CLOTH)))], 10)
    else:
        base = jitter(rng, SURGICAL[int(rng.choice(len(SURGICAL), p=[0.5, 0.3, 0.08, 0.07, 0.05]))], 5)
    loop = np.float32([235, 235, 235]) if kind != "cloth" else base * 0.9
    loops = [
        np.array([(cu + sign * (w * (0.98 if v0 < 0.5 else 0.84)), v0), (cu + sign * (hw + 0.04), 0.2)])
        for sign, w, hw in ((-1, w_r, frame.half_widths[0]), (1, w_l, frame.half_widths[1]))
        for v0 in (0.38, 1.0)
    ]
    cv.paint(cv.stroke(loops, rng.uniform(0.025, 0.04)), loop)
    body = cv.fill(outline)
    nu = np.where(U < cu, (U - cu) / w_r, (U - cu) / w_l)
    shade = 0.78 + 0.22 * np.cos(np.clip(nu, -1, 1) * 1.3)
    if kind == "cloth":
        colour = base[None, None] * shade[..., None]
        colour = _cloth_pattern(rng, colour, U, V, base)
    else:
        fibre = 0.97 + 0.05 * value_noise(rng, cv.h, cv.w, max(4, cv.w // 6))
        colour = base[None, None] * (shade * fibre)[..., None]
    cv.paint(body, colour)
    # the nose ridge catches light; the area under the chin is in shadow
    cv.add_light(0.18 * body * np.exp(-(((U - cu) / 0.3) ** 2) - ((V - 0.55) / 0.3) ** 2))
    cv.shade(1 - 0.18 * np.clip((V - 1.25) / 0.45, 0, 1) * body)
    if kind == "surgical":
        folds = []
        for k, v in enumerate(np.sort(rng.uniform(0.0, 0.08, 3)) + (0.6, 0.85, 1.1)):
            fold = np.stack([np.linspace(cu - w_r * 0.97, cu + w_l * 0.97, 12), np.full(12, v)], axis=1)
            fold[:, 1] += 0.04 * np.sin(np.linspace(0, np.pi, 12)) * (k - 1)
            folds.append(fold)
        cv.paint(cv.stroke(folds, 0.035) * body, base * 0.72, opacity=0.8, solid=False)
        cv.add_light(0.3 * cv.stroke([f - (0, 0.04) for f in folds], 0.03) * body)
        cv.paint(cv.stroke(outline, 0.07, closed=True) * body, base * 0.93, solid=False)  # bound edges
        cv.paint(cv.stroke(np.array([(cu - 0.3, 0.3), (cu + 0.3, 0.3)]), 0.03) * body, base * 0.85, solid=False)
    else:
        seam = np.stack([cu + 0.03 * np.sin(np.linspace(0, 3, 12)), np.linspace(0.22, 1.7, 12)], axis=1)
        cv.paint(cv.stroke(seam, 0.03) * body, base * 0.7, opacity=0.7, solid=False)
        if kind == "kn95":
            cv.paint(cv.stroke(outline, 0.05, closed=True) * body, base * 0.88, solid=False)
    return cv


def _cloth_pattern(
    rng: np.random.Generator, colour: np.ndarray, U: np.ndarray, V: np.ndarray, base: np.ndarray
) -> np.ndarray:
    """Procedural cloth: plain, stripes, checks, dots or camouflage blotches over ``colour``."""
    pattern = ("plain", "stripes", "checks", "dots", "camo")[int(rng.integers(5))]
    second = _CLOTH[int(rng.integers(len(_CLOTH)))] if rng.random() < 0.6 else base * rng.uniform(0.5, 1.6)
    other = jitter(rng, second, 5)
    if pattern == "plain":
        return colour
    period = rng.uniform(0.12, 0.3)
    if pattern == "stripes":
        ang = rng.uniform(0, np.pi)
        sel = (np.floor((U * np.cos(ang) + V * np.sin(ang)) / period) % 2).astype(np.float32)
    elif pattern == "checks":
        sel = 0.5 * ((np.floor(U / period) % 2) + (np.floor(V / period) % 2)).astype(np.float32)
    elif pattern == "dots":
        du, dv = (U / period) % 1 - 0.5, (V / period) % 1 - 0.5
        sel = np.clip((0.3 - np.hypot(du, dv)) * 12, 0, 1)
    else:
        h, w = V.shape[0], U.shape[1]
        noise = value_noise(rng, h, w, max(3, w // 8))
        noise = cv2.GaussianBlur(noise, (0, 0), 1.0)
        sel = np.clip((noise - 0.5) * 8, 0, 1)
    shade = colour / np.maximum(base, 1)[None, None]
    return colour + (other[None, None] * shade - colour) * sel[..., None]
