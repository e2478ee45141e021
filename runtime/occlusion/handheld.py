"""Held occluders, in face units: a hand (over the mouth, a cheek or the eyes), a cup or mug, a phone."""

from __future__ import annotations

import cv2
import numpy as np

from runtime.occlusion.canvas import Canvas, bounds_of, capsule, ellipse, superellipse
from runtime.occlusion.face_frame import FaceFrame
from runtime.occlusion.headset import jitter
from runtime.occlusion.textured import value_noise

#: Skin tones (BGR), light to dark.
SKIN = np.array(
    [
        [180, 200, 240],
        [160, 184, 228],
        [135, 165, 212],
        [112, 145, 196],
        [88, 122, 172],
        [66, 96, 140],
        [50, 72, 110],
        [40, 54, 82],
    ],
    np.float32,
)
#: Mug and cup body colours (BGR): white, cream, black, grey, navy, red, green, yellow, teal, terracotta.
CUP_COLOURS = np.array(
    [
        [240, 240, 240],
        [200, 225, 235],
        [35, 35, 38],
        [140, 140, 140],
        [90, 50, 30],
        [40, 40, 170],
        [70, 120, 60],
        [60, 190, 225],
        [140, 140, 40],
        [70, 100, 170],
    ],
    np.float32,
)
HAND_POSES = ("mouth", "cheek", "eyes")


def _place(pts: np.ndarray, center: tuple[float, float], angle: float, scale: float) -> np.ndarray:
    """Local points (k, 2) rotated by ``angle`` degrees, scaled and moved to ``center`` (face units)."""
    c, s = np.cos(np.deg2rad(angle)) * scale, np.sin(np.deg2rad(angle)) * scale
    return pts @ np.array([[c, s], [-s, c]]) + center


def _soft_shading(cv: Canvas, cov: np.ndarray, depth: float) -> np.ndarray:
    """Rounded-object shading: 1 inside, down to ``1 - depth`` at the silhouette (blurred coverage)."""
    sigma = max(1.0, 0.12 * cv.density)
    inner = cv2.GaussianBlur(cov, (0, 0), sigma)
    return 1 - depth * (1 - np.clip(inner * 1.6 - 0.3, 0, 1))


def draw_hand(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints one random hand: back of the hand, four fingers, thumb and the wrist leaving the face."""
    pose = HAND_POSES[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    side = float(rng.choice([-1.0, 1.0]))
    scale = rng.uniform(0.9, 1.15)
    if pose == "mouth":
        center, angle = (0.35 * frame.yaw - side * 0.55, rng.uniform(0.85, 1.1)), (0 if side > 0 else 180)
    elif pose == "cheek":
        center, angle = (side * rng.uniform(0.7, 0.95), rng.uniform(0.9, 1.2)), -90
    else:
        center, angle = (0.3 * frame.yaw - side * 0.75, rng.uniform(-0.05, 0.1)), (0 if side > 0 else 180)
    angle += rng.uniform(-25, 25)
    # local frame: x from the wrist (x < 0) to the fingertips, y across the hand; thumb on the +y or -y side
    thumb_side = float(rng.choice([-1.0, 1.0]))
    spread = rng.uniform(0.0, 0.12)
    lengths = rng.uniform(0.9, 1.1) * np.array([0.85, 1.05, 1.12, 1.02]) * (1.0 if thumb_side > 0 else 1.0)
    palm = superellipse(0.55, 0.0, (0.75, 0.7), (0.62, 0.62), 3.0, 48)
    wrist = capsule((0.2, 0.0), (-2.4, 0.0), 0.45, 0.55)
    fingers, tips = [], []
    radius = rng.uniform(0.13, 0.16)
    bend = rng.uniform(-0.25, 0.25)  # fingers curve together a little to one side
    for k, (y, length) in enumerate(zip((-0.45, -0.15, 0.15, 0.45), lengths[:: int(thumb_side)])):
        a = (k - 1.5) * spread + rng.normal(0, 0.05)
        base = np.array([1.05, y])
        joint = base + 0.55 * length * np.array([np.cos(a), np.sin(a)])
        tip = joint + 0.45 * length * np.array([np.cos(a + bend), np.sin(a + bend)])
        fingers += [
            capsule(tuple(base), tuple(joint), radius * 1.05, radius * 0.95),
            capsule(tuple(joint), tuple(tip), radius * 0.95, radius * 0.82),
        ]
        tips.append((tip, np.degrees(a + bend)))
    thumb = capsule((0.3, 0.35 * thumb_side), (1.0, 0.95 * thumb_side), 0.24, 0.15)
    placed_fingers = [_place(p, center, angle, scale) for p in fingers]
    parts = [_place(p, center, angle, scale) for p in (palm, wrist, thumb)] + placed_fingers
    cv = Canvas(frame, bounds_of(*parts))
    skin = jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 8)
    cov = cv.fill(*parts)
    U, V = cv.grid
    light = 0.92 + 0.12 * np.cos((U - center[0]) * 1.3 + (V - center[1]) * 0.7)
    grain = 0.96 + 0.08 * value_noise(rng, cv.h, cv.w, max(4, cv.w // 5))
    cv.paint(cov, skin[None, None] * (_soft_shading(cv, cov, 0.3) * light * grain)[..., None])
    # the gaps between the fingers and creases at the joints, then flushed fingertips and nails
    cv.paint(cv.stroke(placed_fingers, 0.03, closed=True) * cov, skin * 0.6, opacity=0.4, solid=False)
    flush = np.float32([skin[0] * 0.85, skin[1] * 0.85, min(255.0, skin[2] * 1.05)])
    tip_polys = [_place(ellipse(t[0], t[1], 0.22, radius, a, n=16), center, angle, scale) for t, a in tips]
    nails = [
        _place(
            ellipse(
                t[0] - 0.12 * np.cos(np.radians(a)), t[1] - 0.12 * np.sin(np.radians(a)), 0.1, radius * 0.6, a, n=16
            ),
            center,
            angle,
            scale,
        )
        for t, a in tips
    ]
    cv.paint(cv.fill(*tip_polys), flush, opacity=0.35, solid=False)
    cv.paint(cv.fill(*nails), np.minimum(skin * 1.12 + 14, 255), opacity=0.7, solid=False)
    knuckles = [
        _place(capsule((1.0, y - 0.09), (1.0, y + 0.09), 0.015), center, angle, scale)
        for y in (-0.45, -0.15, 0.15, 0.45)
    ]
    cv.paint(cv.fill(*knuckles), skin * 0.75, opacity=0.5, solid=False)
    return cv


def draw_cup(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints a mug or paper cup held in front of the mouth (rim near the nose, body below the chin)."""
    style = ("mug", "paper", "glass_mug")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    d = rng.uniform(1.0, 1.35)
    height = d * rng.uniform(1.05, 1.45)
    center = (0.35 * frame.yaw + rng.uniform(-0.25, 0.25), rng.uniform(0.55, 0.75) + height / 2)
    angle = rng.uniform(-20, 20)
    extent = np.array([[-d, -height / 2 - 0.3], [d, height / 2 + 0.3], [-d, height / 2 + 0.3], [d, -height / 2 - 0.3]])
    cv = Canvas(frame, bounds_of(_place(extent, center, angle, 1.0)))
    taper = 0.78 if style == "paper" else rng.uniform(0.92, 1.0)
    r = d / 2
    body = np.concatenate(
        [[[-r, -height / 2]], [[r, -height / 2]], ellipse(0, height / 2, r * taper, 0.1 * d, 0, 0, 180, 16)]
    )
    colour = jitter(rng, CUP_COLOURS[int(rng.integers(len(CUP_COLOURS)))], 6)
    if style == "paper":
        colour = jitter(rng, np.float32([235, 238, 240] if rng.random() < 0.6 else [60, 110, 170]), 5)
    if style != "paper" and rng.random() < 0.5:  # handle on one side
        side = float(rng.choice([-1.0, 1.0]))
        ring = ellipse(side * (r + 0.1), -0.05 * height, 0.25, 0.3 * height, 0, 0, 360, 32)
        cv.paint(cv.stroke(_place(ring, center, angle, 1.0), 0.11, True), colour * 0.9)
    poly = _place(body, center, angle, 1.0)
    cov = cv.fill(poly)
    U, V = cv.grid
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    lu = (U - center[0]) * c + (V - center[1]) * s  # across the cup
    lv = -(U - center[0]) * s + (V - center[1]) * c  # along the cup
    x = np.clip(lu / r, -1, 1)
    hl = rng.uniform(-0.5, 0.5)
    shade = 0.68 + 0.32 * np.sqrt(1 - x**2) + 0.35 * np.exp(-(((x - hl) / 0.12) ** 2))
    cv.paint(cov, colour[None, None] * shade[..., None])
    if rng.random() < 0.6:  # a printed band or a round logo
        band_col = jitter(rng, CUP_COLOURS[int(rng.integers(len(CUP_COLOURS)))], 5)
        if rng.random() < 0.5:
            sel = (np.abs(lv - rng.uniform(-0.1, 0.2) * height) < rng.uniform(0.08, 0.2) * height).astype(np.float32)
        else:
            sel = np.clip((0.22 * d - np.hypot(lu - hl * 0.2, lv)) * cv.density * 0.5, 0, 1)
        cv.paint(sel * cov, band_col[None, None] * shade[..., None], solid=False)
    rim = _place(ellipse(0, -height / 2, r * 1.0, 0.1 * d, 0, 0, 360, 32), center, angle, 1.0)
    if style == "paper":  # a lid
        lid = _place(
            superellipse(0, -height / 2 - 0.03, (r * 1.05, r * 1.05), (0.12, 0.1), 4.0, 40), center, angle, 1.0
        )
        lid_col = jitter(rng, np.float32([40, 40, 40] if rng.random() < 0.5 else [240, 240, 240]), 5)
        cv.paint(cv.fill(lid), lid_col)
    else:
        cv.paint(cv.fill(rim), colour * 0.8)
        inner = _place(ellipse(0, -height / 2 + 0.015, r * 0.9, 0.075 * d, 0, 0, 360, 32), center, angle, 1.0)
        cv.paint(cv.fill(inner), jitter(rng, np.float32([25, 45, 70]), 8))  # the drink
    return cv


def draw_phone(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints a phone held in front of the lower face, showing its back (cameras) or its screen, with fingers."""
    w, h = rng.uniform(1.05, 1.3), rng.uniform(2.1, 2.6)
    landscape = rng.random() < 0.2
    angle = rng.uniform(-25, 25) + (90 if landscape else 0)
    center = (0.35 * frame.yaw + rng.uniform(-0.3, 0.3), rng.uniform(1.3, 1.6))
    outline = _place(superellipse(0, 0, (w / 2, w / 2), (h / 2, h / 2), rng.uniform(6, 10), 64), center, angle, 1.0)
    grip = float(rng.choice([-1.0, 1.0]))
    heel = _place(capsule((grip * 0.1, h / 2 - 0.15), (grip * 0.35, h / 2 + 1.1), 0.58, 0.5), center, angle, 1.0)
    cv = Canvas(frame, bounds_of(outline * 1.0, heel, margin=0.35))
    U, V = cv.grid
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    lu = (U - center[0]) * c + (V - center[1]) * s
    lv = -(U - center[0]) * s + (V - center[1]) * c
    cov = cv.fill(outline)
    back = rng.random() < 0.6
    if back:
        body = jitter(
            rng,
            np.float32(
                [
                    [25, 25, 28],
                    [235, 235, 232],
                    [190, 192, 195],
                    [150, 190, 215],
                    [140, 90, 40],
                    [50, 40, 150],
                    [120, 140, 90],
                ][int(rng.integers(7))]
            ),
            6,
        )
        cv.paint(cov, body[None, None] * (0.9 + 0.1 * np.cos(np.clip(lu / w, -1, 1) * 2))[..., None])
        cu, cvv = -w / 2 + 0.32, -h / 2 + 0.32
        bump = _place(superellipse(cu, cvv, (0.25, 0.25), (0.25, 0.25), 5, 32), center, angle, 1.0)
        cv.paint(cv.fill(bump), body * 0.85, solid=False)
        lenses = [
            _place(ellipse(cu + du, cvv + dv, 0.085, 0.085, n=16), center, angle, 1.0)
            for du, dv in ((-0.1, -0.1), (-0.1, 0.1), (0.1, 0.0))[: int(rng.integers(1, 4))]
        ]
        cv.paint(cv.fill(*lenses), np.float32([10, 10, 12]), solid=False)
        cv.paint(cv.stroke(lenses, 0.02, True), np.float32([120, 120, 125]), solid=False)
        logo = _place(ellipse(0, -0.1, 0.1, 0.11, n=16), center, angle, 1.0)
        cv.paint(cv.fill(logo), body * 0.8 + 30, opacity=0.6, solid=False)
    else:
        cv.paint(cov, np.float32([12, 12, 14]))
        screen = _place(
            superellipse(0, 0, (w / 2 - 0.05, w / 2 - 0.05), (h / 2 - 0.08, h / 2 - 0.08), 8, 48), center, angle, 1.0
        )
        c1, c2 = np.float32(rng.integers(30, 255, 3)), np.float32(rng.integers(0, 200, 3))
        t = np.clip((lv + h / 2) / h, 0, 1)[..., None]
        cv.paint(cv.fill(screen), c1 * (1 - t) + c2 * t, solid=False)
        blocks = [
            _place(superellipse(0, y, (w / 2 - 0.15, w / 2 - 0.15), (0.09, 0.09), 6, 24), center, angle, 1.0)
            for y in np.arange(-h / 2 + 0.35, h / 2 - 0.2, rng.uniform(0.25, 0.4))
        ]
        cv.paint(cv.fill(*blocks), np.float32([240, 240, 240]), opacity=0.5, solid=False)
    gloss = np.exp(-(((lu * 0.8 + lv * 0.6 - rng.uniform(-0.5, 0.5)) / 0.25) ** 2))
    cv.add_light(0.15 * gloss * cov)
    cv.paint(cv.stroke(outline, 0.03, True) * cov, np.float32([80, 80, 85]), solid=False)
    # fingers wrapping over the long edges
    skin = jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 8)
    fingers = [
        _place(capsule((grip * (w / 2 + 0.15), y), (grip * (w / 2 - 0.12), y + 0.02), 0.13, 0.11), center, angle, 1.0)
        for y in np.arange(rng.uniform(-0.2, 0.2), h / 2, 0.3)[:3]
    ]
    thumb = _place(
        capsule((-grip * (w / 2 + 0.2), 0.35), (-grip * (w / 2 - 0.18), 0.15), 0.15, 0.13), center, angle, 1.0
    )
    fcov = cv.fill(*fingers, thumb, heel)
    cv.paint(fcov, skin[None, None] * _soft_shading(cv, fcov, 0.3)[..., None])
    return cv
