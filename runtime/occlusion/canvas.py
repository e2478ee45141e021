"""A small raster in face units on which one occluder is painted, then warped into the image through the face frame.

Shapes are filled anti-aliased (OpenCV ``LINE_AA``, sub-pixel coordinates). The canvas keeps a colour and an
alpha (coverage) layer; :meth:`Canvas.composite` warps both (premultiplied) into the image, blends where the
warped alpha is at least 0.5 and leaves every other pixel untouched, so the returned mask is exactly the set of
pixels that may have changed.
"""
from __future__ import annotations

import cv2
import numpy as np

from runtime.occlusion.face_frame import FaceFrame

_SHIFT = 4                     # fixed-point bits for cv2 sub-pixel coordinates
_ONE = float(1 << _SHIFT)
#: Raster density in pixels per face unit (IOD): about the image's own, within these bounds.
MIN_DENSITY, MAX_DENSITY = 8.0, 72.0


def ellipse(cu: float, cv: float, ru: float, rv: float, angle: float = 0.0, a0: float = 0.0, a1: float = 360.0,
            n: int = 48) -> np.ndarray:
    """Points (n, 2) on an ellipse arc in face units (angles in degrees, ``angle`` rotates the axes)."""
    t = np.deg2rad(np.linspace(a0, a1, n, endpoint=(a1 - a0) % 360 != 0))
    x, y = ru * np.cos(t), rv * np.sin(t)
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    return np.stack([cu + c * x - s * y, cv + s * x + c * y], axis=1)


def superellipse(cu: float, cv: float, half_u: tuple[float, float], half_v: tuple[float, float], power: float,
                 n: int = 96) -> np.ndarray:
    """A rounded-rectangle-like outline ``|u/a|^p + |v/b|^p = 1`` with separate left/right and top/bottom halves.

    ``half_u = (towards -u, towards +u)``, ``half_v = (up, down)``; power 2 is an ellipse, 4-6 a rounded box.
    """
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    a = np.where(c < 0, half_u[0], half_u[1])
    b = np.where(s < 0, half_v[0], half_v[1])
    return np.stack([cu + a * np.sign(c) * np.abs(c) ** e, cv + b * np.sign(s) * np.abs(s) ** e], axis=1)


def capsule(p: tuple[float, float], q: tuple[float, float], r0: float, r1: float | None = None,
            n: int = 10) -> np.ndarray:
    """A tapered stroke from ``p`` (radius ``r0``) to ``q`` (radius ``r1``) with round ends, as a polygon."""
    r1 = r0 if r1 is None else r1
    p_, q_ = np.asarray(p, float), np.asarray(q, float)
    d = q_ - p_
    ang = np.degrees(np.arctan2(d[1], d[0]))
    end = ellipse(q_[0], q_[1], r1, r1, ang, -90, 90, n)
    start = ellipse(p_[0], p_[1], r0, r0, ang, 90, 270, n)
    return np.concatenate([end, start])


class Canvas:
    """Colour (float32 BGR) and alpha (float32 0-1) rasters over a face-unit rectangle.

    Args:
        frame: where the face is in the image.
        bounds: ``(u0, v0, u1, v1)`` face-unit rectangle that holds every shape of the occluder.
    """

    def __init__(self, frame: FaceFrame, bounds: tuple[float, float, float, float]) -> None:
        self.frame = frame
        self.u0, self.v0, u1, v1 = bounds
        self.density = float(np.clip(frame.iod, MIN_DENSITY, MAX_DENSITY))
        self.w = max(2, int(np.ceil((u1 - self.u0) * self.density)) + 1)
        self.h = max(2, int(np.ceil((v1 - self.v0) * self.density)) + 1)
        self.color = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    # -- geometry -------------------------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Face-unit coordinates ``(U, V)`` of every canvas pixel, each (h, w) float32."""
        if self._grid is None:
            u = (self.u0 + np.arange(self.w, dtype=np.float32) / self.density)[None, :]
            v = (self.v0 + np.arange(self.h, dtype=np.float32) / self.density)[:, None]
            self._grid = (np.broadcast_to(u, (self.h, self.w)), np.broadcast_to(v, (self.h, self.w)))
        return self._grid

    def _px(self, uv: np.ndarray) -> np.ndarray:
        p = (np.asarray(uv, np.float64) - (self.u0, self.v0)) * self.density
        return np.round(p * _ONE).astype(np.int32)

    def fill(self, *polys: np.ndarray) -> np.ndarray:
        """Coverage (h, w) float32 in [0, 1] of the union of filled polygons (face units)."""
        buf = np.zeros((self.h, self.w), np.uint8)
        for p in polys:      # one call each: a single fillPoly of overlapping polygons leaves even-odd holes
            cv2.fillPoly(buf, [self._px(p)], 255, cv2.LINE_AA, _SHIFT)
        return buf.astype(np.float32) * (1 / 255)

    def stroke(self, pts: np.ndarray, width: float, closed: bool = False) -> np.ndarray:
        """Coverage of a polyline of ``width`` face units."""
        buf = np.zeros((self.h, self.w), np.uint8)
        thick = max(1, int(round(width * self.density)))
        cv2.polylines(buf, [self._px(pts)], closed, 255, thick, cv2.LINE_AA, _SHIFT)
        return buf.astype(np.float32) * (1 / 255)

    # -- painting -------------------------------------------------------------------------------------------
    def paint(self, cov: np.ndarray, color: object, *, opacity: float = 1.0, solid: bool = True) -> None:
        """Paints ``color`` (BGR triple or (h, w, 3) array) with coverage ``cov`` times ``opacity``.

        ``solid`` adds to the alpha (the occluder grows); otherwise only the colour of what is already there
        changes (details, shading, highlights).
        """
        a = cov * opacity if opacity != 1.0 else cov
        if not solid:
            a = a * self.alpha
        c = np.asarray(color, np.float32)
        self.color += (c - self.color) * a[..., None]
        if solid:
            self.alpha += (1.0 - self.alpha) * a

    def shade(self, factor: np.ndarray) -> None:
        """Multiplies the colour by ``factor`` ((h, w) array) where the occluder is."""
        self.color *= factor[..., None]

    def add_light(self, amount: np.ndarray, color: object = (255, 255, 255)) -> None:
        """Blends towards ``color`` by ``amount`` ((h, w), 0-1): highlights, gloss."""
        self.color += (np.asarray(color, np.float32) - self.color) * np.clip(amount, 0, 1)[..., None]

    def erase(self, cov: np.ndarray) -> None:
        """Removes coverage (cut-outs such as the nose gap of a headset)."""
        self.alpha *= 1.0 - cov

    # -- output ---------------------------------------------------------------------------------------------
    def composite(self, out: np.ndarray, mask: np.ndarray) -> None:
        """Blends the occluder into ``out`` (H, W, C) uint8 in place and sets ``mask`` (H, W) bool where alpha >= 0.5."""
        a = self.frame.affine
        lin = a[:, :2] / self.density
        off = a[:, :2] @ np.array([self.u0, self.v0]) + a[:, 2]
        corners = np.array([[0, 0], [self.w - 1, 0], [0, self.h - 1], [self.w - 1, self.h - 1]], float) @ lin.T + off
        H, W = out.shape[:2]
        x0, y0 = (max(0, int(np.floor(corners[:, i].min())) - 1) for i in (0, 1))
        x1 = min(W, int(np.ceil(corners[:, 0].max())) + 2)
        y1 = min(H, int(np.ceil(corners[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return
        m = np.concatenate([lin, (off - (x0, y0))[:, None]], axis=1)
        np.clip(self.color, 0, 255, out=self.color)
        rgba = np.concatenate([self.color * self.alpha[..., None], self.alpha[..., None]], axis=2)
        warped = cv2.warpAffine(rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        alpha = warped[..., 3]
        cover = alpha >= 0.5
        if not cover.any():
            return
        roi = out[y0:y1, x0:x1]
        premult = warped[..., :3]
        if roi.shape[2] == 1:
            premult = premult @ np.array([[0.114], [0.587], [0.299]], np.float32)
        blended = premult + roi.astype(np.float32) * (1.0 - alpha)[..., None]
        roi[cover] = np.clip(blended[cover] + 0.5, 0, 255).astype(np.uint8)
        mask[y0:y1, x0:x1] |= cover
