"""Procedural face-free frames for the verifier's hard negatives: video title cards and captions (text drawn with
``cv2.putText``) and geometric clutter (blobs, rings, polygons, stripes, checkers; no drawn smileys: a schematic
face is not a clear negative). Drawn by ofer itself, so they carry no third-party licence and may train shipped
weights.

BlazeFace proposes candidates on such frames at low thresholds (a title card in a face-free video was a false face);
``scripts/train_verifier.py`` mines those candidates as negatives, and the tuning step counts false faces on a
separately seeded set.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from scripts.detection_data import Sample

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
)
_SYLLABLES = (
    "the",
    "an",
    "on",
    "ma",
    "ri",
    "ko",
    "lo",
    "go",
    "oo",
    "ee",
    "do",
    "be",
    "sa",
    "ta",
    "mo",
    "no",
    "pe",
    "qu",
    "xo",
    "zy",
    "wa",
    "hi",
    "ou",
    "ed",
    "er",
    "ing",
    "00",
    "08",
    "19",
    "2",
    "3",
    "@",
    "&",
)


def _word(rng: np.random.Generator) -> str:
    w = "".join(rng.choice(_SYLLABLES) for _ in range(int(rng.integers(1, 4))))
    style = rng.random()
    return w.upper() if style < 0.4 else w.capitalize() if style < 0.7 else w


def _background(rng: np.random.Generator, h: int, w: int, images: Sequence[np.ndarray]) -> np.ndarray:
    """Solid colour, a linear gradient, smooth noise, or a resized crop of one of ``images``."""
    kind = rng.integers(4) if images else rng.integers(3)
    if kind == 0:
        return np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    if kind == 1:
        a, b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        ramp = a + (b - a) * t[:, None]
        return np.ascontiguousarray(np.broadcast_to(ramp[None] if len(t) == w else ramp[:, None], (h, w, 3))).astype(
            np.uint8
        )
    if kind == 2:
        small = rng.integers(0, 256, (int(rng.integers(2, 12)), int(rng.integers(2, 12)), 3)).astype(np.uint8)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = images[int(rng.integers(len(images)))]
    ih, iw = img.shape[:2]
    s = rng.uniform(0.3, 1.0)
    ch, cw = max(8, int(ih * s)), max(8, int(iw * s))
    y, x = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
    return cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)


def _colour(rng: np.random.Generator, bg: np.ndarray) -> tuple[int, int, int]:
    """A text colour that contrasts with the background's mean."""
    m = float(bg.mean())
    base = rng.integers(0, 70, 3) if m > 128 else rng.integers(185, 256, 3)
    return tuple(int(v) for v in base)


def text_frame(rng: np.random.Generator, h: int = 360, w: int = 640, images: Sequence[np.ndarray] = ()) -> np.ndarray:
    """A title card or captioned frame: 1-4 lines of text, random fonts, sizes, colours, outline or shadow."""
    img = _background(rng, h, w, images)
    lines = int(rng.integers(1, 5))
    y = rng.uniform(0.15, 0.5) * h
    for _ in range(lines):
        font = int(rng.choice(FONTS))
        text = " ".join(_word(rng) for _ in range(int(rng.integers(1, 5))))
        scale = rng.uniform(0.6, 4.0) * h / 360
        thick = int(rng.integers(1, max(2, int(scale * 3))))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        x = (w - tw) / 2 if rng.random() < 0.6 else rng.uniform(0, max(1, w - tw))
        org = (int(x), int(min(h - 5, y + th)))
        col = _colour(rng, img)
        if rng.random() < 0.4:  # outline or drop shadow
            off = 0 if rng.random() < 0.5 else max(1, thick)
            cv2.putText(
                img,
                text,
                (org[0] + off, org[1] + off),
                font,
                scale,
                tuple(255 - c for c in col),
                thick + 2,
                cv2.LINE_AA,
            )
        cv2.putText(img, text, org, font, scale, col, thick, cv2.LINE_AA)
        y += th * rng.uniform(1.4, 2.2)
        if y > h:
            break
    return img


def clutter_frame(
    rng: np.random.Generator, h: int = 360, w: int = 640, images: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """Geometric clutter: filled and ring ellipses, polygons, rectangles, stripes, checker patches."""
    img = _background(rng, h, w, images)
    for _ in range(int(rng.integers(3, 15))):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = rng.integers(5)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.uniform(0.02, 0.2) * min(h, w)) + 2
        if shape == 0:
            cv2.ellipse(
                img,
                (cx, cy),
                (r, int(r * rng.uniform(0.4, 1.6))),
                float(rng.uniform(0, 180)),
                0,
                360,
                col,
                -1 if rng.random() < 0.6 else int(rng.integers(1, 6)),
                cv2.LINE_AA,
            )
        elif shape == 1:  # a random polygon
            pts = (np.array([cx, cy]) + rng.uniform(-r, r, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
        elif shape == 2:
            cv2.rectangle(img, (cx, cy), (cx + r * 2, cy + int(r * rng.uniform(0.5, 2))), col, -1)
        elif shape == 3:  # stripes
            for k in range(int(rng.integers(3, 9))):
                cv2.line(img, (cx, cy + k * r // 3), (cx + 2 * r, cy + k * r // 3), col, max(1, r // 8))
        else:  # checker patch
            s = max(2, r // 4)
            for i in range(4):
                for j in range(4):
                    if (i + j) % 2:
                        cv2.rectangle(img, (cx + i * s, cy + j * s), (cx + (i + 1) * s, cy + (j + 1) * s), col, -1)
    return img


def negative_samples(
    n: int, seed: int, images: Sequence[np.ndarray] = (), *, split: str = "tune", text_fraction: float = 0.6
) -> list[Sample]:
    """``n`` face-free procedural frames (text cards and clutter) as :class:`Sample` objects (source
    ``"procedural"``, shippable), each its own group; sizes vary between 320x240 and 1280x720."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.choice([(360, 640), (240, 320), (480, 640), (720, 1280), (480, 480)]))
        is_text = rng.random() < text_fraction
        img = (text_frame if is_text else clutter_frame)(rng, h, w, images)
        name = f"procedural/{'text' if is_text else 'clutter'}-{seed}-{i}"
        out.append(Sample(name, "procedural", img, [], [], split, False, "ofer (procedural, no third-party media)"))
    return out
