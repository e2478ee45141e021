"""A small raster in face units on which one occluder is painted, then warped into the image through the face frame.

Shapes are filled anti-aliased (OpenCV ``LINE_AA``, sub-pixel coordinates). The canvas keeps a colour and an
alpha (coverage) layer; :meth:`Canvas.composite` warps both (premultiplied) into the image, blends where the
warped alpha is at least 0.5 and leaves every other pixel untouched, so the returned mask is exactly the set of
pixels that may have changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from runtime.occlusion.face_frame import FaceFrame

_SHIFT = 4  # fixed-point bits for cv2 sub-pixel coordinates
_ONE = float(1 << _SHIFT)
#: Raster density in pixels per face unit (IOD): ``DENSITY_SCALE`` of the image's own, within these bounds. The
#: warp upsamples the slightly coarser raster smoothly; the cap keeps large faces cheap (36 px per IOD resolves
#: the details drawn here).
DENSITY_SCALE, MIN_DENSITY, MAX_DENSITY = 0.8, 8.0, 36.0


@lru_cache(maxsize=64)
def _unit_arc(a0: float, a1: float, n: int) -> np.ndarray:
    """(n, 2) cos/sin of ``n`` angles from ``a0`` to ``a1`` degrees (cached: shapes are drawn in tight loops)."""
    t = np.deg2rad(np.linspace(a0, a1, n, endpoint=(a1 - a0) % 360 != 0))
    out = np.stack([np.cos(t), np.sin(t)], axis=1)
    out.flags.writeable = False
    return out


def ellipse(
    cu: float, cv: float, ru: float, rv: float, angle: float = 0.0, a0: float = 0.0, a1: float = 360.0, n: int = 48
) -> np.ndarray:
    """Points (n, 2) on an ellipse arc in face units (angles in degrees, ``angle`` rotates the axes)."""
    p = _unit_arc(float(a0), float(a1), n) * (ru, rv)
    if angle:
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        p = p @ np.array([[c, s], [-s, c]])
    return p + (cu, cv)


@lru_cache(maxsize=64)
def _unit_super(power: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    cs = _unit_arc(0.0, 360.0, n)
    shape = np.sign(cs) * np.abs(cs) ** (2.0 / power)
    shape.flags.writeable = False
    return cs < 0, shape


def superellipse(
    cu: float, cv: float, half_u: tuple[float, float], half_v: tuple[float, float], power: float, n: int = 96
) -> np.ndarray:
    """A rounded-rectangle-like outline ``|u/a|^p + |v/b|^p = 1`` with separate left/right and top/bottom halves.

    ``half_u = (towards -u, towards +u)``, ``half_v = (up, down)``; power 2 is an ellipse, 4-6 a rounded box.
    """
    neg, shape = _unit_super(round(float(power), 2), n)
    scale = np.where(neg, (half_u[0], half_v[0]), (half_u[1], half_v[1]))
    return shape * scale + (cu, cv)


def capsule(
    p: tuple[float, float], q: tuple[float, float], r0: float, r1: float | None = None, n: int = 10
) -> np.ndarray:
    """A tapered stroke from ``p`` (radius ``r0``) to ``q`` (radius ``r1``) with round ends, as a polygon."""
    r1 = r0 if r1 is None else r1
    ang = float(np.degrees(np.arctan2(q[1] - p[1], q[0] - p[0])))
    end = ellipse(q[0], q[1], r1, r1, ang, -90, 90, n)
    start = ellipse(p[0], p[1], r0, r0, ang, 90, 270, n)
    return np.concatenate([end, start])


def bounds_of(*polys: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The face-unit rectangle ``(u0, v0, u1, v1)`` holding all polygons, plus ``margin``."""
    p = np.concatenate(polys)
    lo, hi = p.min(axis=0) - margin, p.max(axis=0) + margin
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


class Canvas:
    """Colour (float32 BGR) and alpha (float32 0-1) rasters over a face-unit rectangle.

    Args:
        frame: where the face is in the image.
        bounds: ``(u0, v0, u1, v1)`` face-unit rectangle that holds every shape of the occluder; the canvas covers
            only its part inside the image when ``frame.image_size`` is known.
    """

    def __init__(self, frame: FaceFrame, bounds: tuple[float, float, float, float]) -> None:
        self.frame = frame
        u0, v0, u1, v1 = bounds
        if frame.image_size is not None:  # only the part of the bounds that lands in the image
            h, w = frame.image_size
            inv = np.linalg.inv(np.vstack([frame.affine, [0, 0, 1]]))[:2]
            corners = np.array([[-1, -1], [w, -1], [-1, h], [w, h]], float) @ inv[:, :2].T + inv[:, 2]
            u0, v0 = max(u0, corners[:, 0].min()), max(v0, corners[:, 1].min())
            u1, v1 = max(u0, min(u1, corners[:, 0].max())), max(v0, min(v1, corners[:, 1].max()))
        self.u0, self.v0 = u0, v0
        self.density = min(max(DENSITY_SCALE * frame.iod, MIN_DENSITY), MAX_DENSITY)
        self._origin = np.array([u0 - 0.5 / (self.density * _ONE), v0 - 0.5 / (self.density * _ONE)])
        self._scale = self.density * _ONE
        self.w = max(2, int(np.ceil((u1 - self.u0) * self.density)) + 1)
        self.h = max(2, int(np.ceil((v1 - self.v0) * self.density)) + 1)
        self.color = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    # -- geometry -------------------------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Face-unit coordinates of the canvas pixels: ``U`` (1, w) and ``V`` (h, 1) float32, which broadcast.

        Shading that depends on one of them stays a row or a column until it meets the other (cheap).
        """
        if self._grid is None:
            u = (self.u0 + np.arange(self.w, dtype=np.float32) / self.density)[None, :]
            v = (self.v0 + np.arange(self.h, dtype=np.float32) / self.density)[:, None]
            self._grid = (u, v)
        return self._grid

    def _px(self, uv: np.ndarray) -> np.ndarray:
        p = (uv - self._origin) * self._scale
        return p.astype(np.int32)

    def fill(self, *polys: np.ndarray) -> np.ndarray:
        """Coverage (h, w) float32 in [0, 1] of the union of filled polygons (face units)."""
        buf = np.zeros((self.h, self.w), np.uint8)
        for p in polys:  # one call each: a single fillPoly of overlapping polygons leaves even-odd holes
            cv2.fillPoly(buf, [self._px(p)], 255, cv2.LINE_AA, _SHIFT)
        return buf.astype(np.float32) * (1 / 255)

    def stroke(self, pts: np.ndarray | Sequence[np.ndarray], width: float, closed: bool = False) -> np.ndarray:
        """Coverage of a polyline (or a list of polylines) of ``width`` face units."""
        buf = np.zeros((self.h, self.w), np.uint8)
        thick = max(1, int(round(width * self.density)))
        lines = [self._px(p) for p in pts] if isinstance(pts, (list, tuple)) else [self._px(pts)]
        cv2.polylines(buf, lines, closed, 255, thick, cv2.LINE_AA, _SHIFT)
        return buf.astype(np.float32) * (1 / 255)

    # -- painting -------------------------------------------------------------------------------------------
    def paint(self, cov: np.ndarray, color: object, *, opacity: float = 1.0, solid: bool = True) -> None:
        """Paints ``color`` (BGR triple or (h, w, 3) array) with coverage ``cov`` times ``opacity``.

        ``solid`` adds to the alpha (the occluder grows); otherwise only the colour of what is already there
        changes (details, shading, highlights).
        """
        cov = np.broadcast_to(cov, self.alpha.shape)
        x, y, w, h = cv2.boundingRect((cov > 0).view(np.uint8))
        if w == 0:
            return
        win = np.s_[y : y + h, x : x + w]
        a = cov[win] * opacity if opacity != 1.0 else cov[win]
        if not solid:
            a = a * self.alpha[win]
        c = np.asarray(color, np.float32)
        if c.ndim == 3:
            c = np.broadcast_to(c, self.color.shape)[win]
        col = self.color[win]
        col += (c - col) * a[..., None]
        if solid:
            self.alpha[win] += (1.0 - self.alpha[win]) * a

    def shade(self, factor: np.ndarray) -> None:
        """Multiplies the colour by ``factor`` (an array that broadcasts to (h, w)) where the occluder is."""
        self.color *= factor[..., None]

    def add_light(self, amount: np.ndarray, color: object = (255, 255, 255)) -> None:
        """Blends towards ``color`` by ``amount`` (broadcasts to (h, w), 0-1): highlights, gloss."""
        self.paint(np.clip(amount, 0, 1), color, solid=False)

    def erase(self, cov: np.ndarray) -> None:
        """Removes coverage (cut-outs such as the nose gap of a headset)."""
        self.alpha *= 1.0 - cov

    # -- output ---------------------------------------------------------------------------------------------
    def composite(self, out: np.ndarray, mask: np.ndarray) -> None:
        """Blends the occluder into ``out`` (H, W, C) uint8 in place; sets ``mask`` (H, W) bool where alpha >= 0.5."""
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
        rgba = np.empty((self.h, self.w, 4), np.float32)  # premultiplied colour and alpha, 0-255
        np.multiply(self.color, self.alpha[..., None], out=rgba[..., :3])
        np.multiply(self.alpha, 255.0, out=rgba[..., 3])
        rgba8 = cv2.convertScaleAbs(rgba)  # rounds and saturates to uint8
        warped = cv2.warpAffine(
            rgba8,
            m,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
        alpha = warped[..., 3]
        cover = alpha >= 128
        roi = out[y0:y1, x0:x1]
        premult = warped[..., :3]
        inv = 255 - alpha
        if roi.shape[2] == 1:
            premult = cv2.cvtColor(np.ascontiguousarray(premult), cv2.COLOR_BGR2GRAY)[..., None]
            behind = cv2.multiply(roi[..., 0], inv, scale=1 / 255)[..., None]
        else:
            behind = cv2.multiply(roi, cv2.merge([inv, inv, inv]), scale=1 / 255)
        blended = cv2.add(premult, behind)
        np.copyto(roi, blended.reshape(roi.shape), where=cover[..., None])
        mask[y0:y1, x0:x1] |= cover
