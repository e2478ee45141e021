"""VR headset occluder: a visor wider than the face from above the brows to below the eyes, with straps.

Styles (drawn in face units, see :mod:`runtime.occlusion.face_frame`), each with random size, roundness,
colour, gloss and details:

* ``box``: one-colour rounded shell with four corner cameras (Quest 2 style);
* ``pills``: light or dark shell with three dark vertical sensor pills (Quest 3 style);
* ``glass``: a shell holding a black glossy front glass (Pico / Vision Pro style);
* ``dimples``: dark shell covered in sensor dimples (Vive style);
* ``halo``: black glossy visor under a light head band ring (PSVR style).
"""

from __future__ import annotations

import numpy as np

from runtime.occlusion.canvas import Canvas, capsule, ellipse, superellipse
from runtime.occlusion.face_frame import FaceFrame

STYLES = ("box", "pills", "glass", "dimples", "halo")
_SHELLS = np.array(
    [
        [24, 24, 26],
        [40, 42, 45],
        [70, 70, 72],
        [120, 120, 122],
        [185, 186, 188],
        [226, 228, 228],
        [214, 218, 222],
        [70, 50, 38],
        [30, 30, 50],
    ],
    np.float32,
)
_SHELL_P = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.17, 0.1, 0.05, 0.03])
_STRAPS = np.array([[22, 22, 22], [45, 45, 48], [90, 90, 92], [200, 200, 200], [60, 45, 35]], np.float32)


def jitter(rng: np.random.Generator, color: np.ndarray, amount: float = 8.0) -> np.ndarray:
    """``color`` with a random brightness change (sd ``amount``) and a slight per-channel tint."""
    return np.clip(color + rng.normal(0, amount) + rng.normal(0, amount / 4, 3), 0, 255).astype(np.float32)


def draw_headset(rng: np.random.Generator, frame: FaceFrame) -> Canvas:
    """Paints one random headset on a canvas placed on ``frame``."""
    style = STYLES[int(rng.choice(len(STYLES), p=[0.3, 0.2, 0.2, 0.15, 0.15]))]
    base = rng.uniform(1.32, 1.6)
    hw_r, hw_l = frame.half_widths
    a_r, a_l = (base * (0.45 + 0.55 * hw / 1.05) for hw in (hw_r, hw_l))
    uc = 0.6 * frame.yaw
    top, bottom = rng.uniform(0.68, 0.92), rng.uniform(0.44, 0.58)
    vc = rng.uniform(-0.08, 0.02)
    power = rng.uniform(3.0, 5.5) if style != "halo" else rng.uniform(2.4, 3.6)
    cv = Canvas(frame, (uc - a_r - 0.7, vc - top - 1.05, uc + a_l + 0.7, vc + bottom + 0.08))
    U, V = cv.grid

    if style in ("box", "pills") and rng.random() < 0.5:  # Quest-style headsets are often white or light grey
        shell = jitter(rng, _SHELLS[int(rng.choice([4, 5, 6]))])
    else:
        shell = jitter(rng, _SHELLS[int(rng.choice(len(_SHELLS), p=_SHELL_P))])
    if style == "dimples" and shell.mean() > 100:
        shell = jitter(rng, _SHELLS[int(rng.integers(0, 3))])
    strap = jitter(rng, _STRAPS[int(rng.integers(len(_STRAPS)))])
    light = float(shell.mean()) > 110

    # straps first: the visor is drawn over their inner ends
    strap_w = rng.uniform(0.16, 0.24)
    rise = rng.uniform(0.05, 0.25)
    straps = [
        capsule(
            (uc + sign * (a - 0.2), vc - 0.1),
            (uc + sign * (max(a + rng.uniform(0.12, 0.3), hw + 0.45)), vc - 0.1 - rise),
            strap_w / 2,
            strap_w / 2.5,
        )
        for sign, a, hw in ((-1, a_r, hw_r), (1, a_l, hw_l))
    ]
    cv.paint(cv.fill(*straps), strap)
    if style == "halo":  # a head band ring across the upper forehead, the visor hanging from it
        hb = 0.5 * (hw_r + hw_l) + 0.15
        ring = ellipse(uc, vc - top - 0.12, hb, rng.uniform(0.12, 0.25), 0, 180, 360, 40)
        cv.paint(cv.stroke(ring, rng.uniform(0.2, 0.28)), shell if light else jitter(rng, np.float32([215, 215, 215])))
        cv.paint(cv.fill(capsule((uc, vc - top - 0.2), (uc, vc - top + 0.2), 0.16)), np.float32([40, 40, 42]))
    elif rng.random() < 0.6:
        length = rng.uniform(0.55, 0.95)
        w0 = rng.uniform(0.28, 0.42)
        cv.paint(cv.fill(capsule((uc, vc - top + 0.2), (uc, vc - top - length), w0 / 2, w0 / 2.6)), strap)
    cv.shade(1.0 + 0.12 * (np.clip(V - (vc - top), -1.2, 0)) * (cv.alpha > 0))  # straps darken away from the visor

    # the visor shell with curvature shading and a soft top light
    outline = superellipse(uc, vc, (a_r, a_l), (top, bottom), power)
    body = cv.fill(outline)
    nu = np.where(U < uc, (U - uc) / a_r, (U - uc) / a_l)
    nv = np.where(V < vc, (V - vc) / top, (V - vc) / bottom)
    curve = 0.72 + 0.28 * np.cos(np.clip(nu, -1, 1) * 1.35) ** 1.5
    vert = 1.06 - 0.1 * (np.clip(nv, -1, 1) + 1)
    cv.paint(body, shell[None, None] * (curve * vert)[..., None])

    if style == "glass":
        inset = rng.uniform(0.05, 0.12)
        glass = cv.fill(superellipse(uc, vc, (a_r - inset, a_l - inset), (top - inset, bottom - inset), power))
        cv.paint(glass * body, jitter(rng, np.float32([14, 14, 16]), 4), solid=False)
    elif style == "halo":
        glass = cv.fill(superellipse(uc, vc + 0.06, (a_r * 0.93, a_l * 0.93), (top * 0.7, bottom * 0.9), power))
        cv.paint(glass * body, np.float32([12, 12, 14]), solid=False)
        strips = [
            ellipse(
                uc,
                vc,
                0.82 * (a_l if sign > 0 else a_r),
                0.8 * top,  # blue lights, upper corners
                0,
                200 if sign < 0 else 290,
                250 if sign < 0 else 340,
                12,
            )
            for sign in (-1, 1)
        ]
        cv.paint(cv.stroke(strips, 0.05) * body, np.float32([255, 190, 90]), opacity=0.9, solid=False)
    elif style == "pills":
        pr = rng.uniform(0.07, 0.1)
        pills = [
            capsule(
                (uc + du * (a_l if du > 0 else a_r), vc - 0.28 * top),
                (uc + du * (a_l if du > 0 else a_r), vc + 0.3 * bottom),
                pr,
            )
            for du in (-0.56, 0.0, 0.56)
        ]
        cv.paint(cv.fill(*pills) * body, np.float32([18, 18, 20]), opacity=0.95, solid=False)
    elif style == "box":
        cam_r = rng.uniform(0.05, 0.08)
        cams = [
            ellipse(uc + s * 0.78 * (a_l if s > 0 else a_r), vc + t, cam_r, cam_r, n=16)
            for s in (-1, 1)
            for t in (-0.5 * top, 0.55 * bottom)
        ]
        cv.paint(cv.fill(*cams) * body, np.float32([12, 12, 12]), solid=False)
    elif style == "dimples":
        step = rng.uniform(0.22, 0.3)
        xs, ys = np.meshgrid(
            np.arange(uc - a_r + 0.2, uc + a_l - 0.15, step), np.arange(vc - top + 0.18, vc + bottom - 0.1, step * 0.9)
        )
        pit = ellipse(0, 0, 0.045, 0.045, n=10)
        pits = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :] + pit[None]
        cv.paint(cv.fill(*pits) * body, shell * 0.45, solid=False)

    # rim: a dark edge and a light bevel just inside it
    cv.paint(cv.stroke(outline, rng.uniform(0.04, 0.07), closed=True) * body, shell * 0.45, solid=False)
    bevel = superellipse(uc, vc, (a_r - 0.06, a_l - 0.06), (top - 0.06, bottom - 0.06), power)
    cv.paint(
        cv.stroke(bevel, 0.03, closed=True), np.float32([250, 250, 250]), opacity=0.18 + 0.2 * (not light), solid=False
    )

    # gloss: a broad soft reflection in the upper part and a thin streak
    gloss = rng.uniform(0.12, 0.28) if light else rng.uniform(0.18, 0.45)
    hu = uc + rng.uniform(-0.5, 0.5)
    blob = np.exp(-(((U - hu) / (0.55 * (a_r + a_l) / 2)) ** 2) - ((V - (vc - 0.45 * top)) / (0.22 * top)) ** 2)
    cv.add_light(gloss * blob * body)
    if rng.random() < 0.7:
        streak = ellipse(
            uc + rng.uniform(-0.3, 0.3), vc + 0.6 * bottom, 0.85 * a_l, 0.95 * top + 0.6 * bottom, 0, 235, 300, 16
        )
        cv.paint(
            cv.stroke(streak, rng.uniform(0.03, 0.06)) * body,
            np.float32([255, 255, 255]),
            opacity=rng.uniform(0.25, 0.5),
            solid=False,
        )

    # small details: a logo and/or vents
    if rng.random() < 0.5:
        lu, lv = uc + rng.choice([-0.6, 0.0, 0.6]) * a_l, vc - 0.55 * top
        logo = [ellipse(lu - 0.055, lv, 0.06, 0.035, n=16), ellipse(lu + 0.055, lv, 0.06, 0.035, n=16)]
        cv.paint(
            cv.stroke(logo[0], 0.022, True) + cv.stroke(logo[1], 0.022, True),
            np.float32([230, 230, 230]) if not light else np.float32([60, 60, 60]),
            opacity=0.85,
            solid=False,
        )
    if rng.random() < 0.45:
        vy = vc - 0.8 * top if rng.random() < 0.5 else vc + 0.8 * bottom
        slits = [capsule((uc + x, vy), (uc + x + 0.09, vy), 0.014) for x in np.arange(-0.45, 0.45, 0.12)]
        cv.paint(cv.fill(*slits) * body, shell * 0.3, solid=False)

    # nose gap
    cv.erase(
        cv.fill(ellipse(uc + 0.3 * frame.yaw, vc + bottom + 0.02, rng.uniform(0.2, 0.3), rng.uniform(0.14, 0.24), n=24))
    )
    return cv
