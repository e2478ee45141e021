"""Model-input preprocessing, the one implementation training, calibration, export and serving share: a face
(a box in a frame, or a ready crop) -> uint8 crop at the :class:`~runtime.input_spec.InputSpec`'s size and colour
-> normalised float32 batch in its layout.

- :func:`crop_face`: a face box of a BGR frame (plus the spec's margin and offset; optionally rotated upright).
- :func:`fit_face`: a ready face crop (a dataset sample, a calibration photo), sampled exactly as :func:`crop_face`
  samples a box that is the whole image.
- :func:`to_tensor`: uint8 crops -> ``(pixel * scale - mean) / std`` float32, ``N x C x H x W`` (or NHWC).

Crops are ``H x W`` (gray) or ``H x W x 3`` uint8 in the spec's colour order throughout.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InputError
from .input_spec import InputSpec

Box = tuple[float, float, float, float]


def expand_box(box: Box, margin: float, *, square: bool = True, offset: tuple[float, float] = (0.0, 0.0)) -> Box:
    """Grow a face box by ``margin`` of its size on each side (optionally made square around its centre).

    ``offset`` moves the centre by fractions of the box's width and height first (negative ``dy`` = up): it maps
    the detector's box convention to the crops the model was trained on.
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2.0 + offset[0] * w, (y1 + y2) / 2.0 + offset[1] * h
    if square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    return cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0


def crop_face(frame: np.ndarray, box: Box, spec: InputSpec, *, square: bool = True, roll: float = 0.0) -> np.ndarray:
    """Crop ``box`` (plus the spec's margin and offset) from a BGR frame and resize it to the spec's size and colour.

    Args:
        frame: BGR ``H x W x 3`` (or gray ``H x W``) uint8.
        box: Face box ``(x1, y1, x2, y2)`` in frame pixels.
        spec: The bundle's input spec (size, colour, ``crop_margin``, ``crop_offset``).
        square: Make the crop square around the box centre.
        roll: The face's in-plane rotation in radians (``Detection.roll``); the crop is rotated so the
            face comes out upright (the spec's offset is applied along the face's own axes). 0: axis-aligned.

    Parts of the crop that fall outside the frame are filled by replicating the border, so faces at the edge keep
    their scale. Returns ``H x W`` (gray) or ``H x W x 3`` uint8.
    """
    if abs(roll) > 1e-3:
        return convert_color(_rotated_crop(frame, box, spec, square=square, roll=roll), spec.color)
    region = expand_box(box, spec.crop_margin, square=square, offset=spec.crop_offset)
    return convert_color(_resample(frame, region, spec.size, gray=spec.color == "gray"), spec.color)


def fit_face(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A ready face crop (the whole image is the face) at the spec's size and colour.

    Sampled exactly as :func:`crop_face` samples a box covering the whole image with no margin (area filter when
    shrinking, bilinear when enlarging, then the colour conversion), so a model trained on such crops sees what
    serving gives it.

    Args:
        image: uint8 ``H x W`` (gray), ``H x W x 1`` or ``H x W x 3`` (BGR).
        spec: The input spec (size and colour; its crop margin and offset do not apply to a ready crop).

    Returns:
        uint8 ``h x w`` (gray) or ``h x w x 3`` in the spec's colour order, ``(h, w) = spec.size``.

    Raises:
        InputError: Not a uint8 gray or BGR image.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise InputError(
            f"face image has dtype {image.dtype} and shape {image.shape}; expected uint8 HxW (gray) or HxWx3 (BGR)"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    h, w = image.shape[:2]
    if (h, w) != spec.size:
        image = _resample(image, (0.0, 0.0, float(w), float(h)), spec.size, gray=spec.color == "gray")
    return convert_color(image, spec.color)


def _resample(frame: np.ndarray, region: Box, out_hw: tuple[int, int], *, gray: bool = False) -> np.ndarray:
    """The axis-aligned ``region`` ``(x1, y1, x2, y2)`` of ``frame`` (borders replicated) resized to ``out_hw``.

    With ``gray`` a shrunk BGR region is converted to gray before the area filter (a third of the pixels to
    average; the result may differ from converting after by one gray level) and comes back ``H x W``.
    """
    import cv2

    x1, y1, x2, y2 = region
    out_h, out_w = out_hw
    sx, sy = (x2 - x1) / out_w, (y2 - y1) / out_h
    if min(sx, sy) > 1.0:
        # warpAffine has no area filter: crop first, then let resize() average properly.
        pixels = _padded_region(
            frame, int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2)), (out_h, out_w)
        )
        if gray and pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        return cv2.resize(pixels, (out_w, out_h), interpolation=cv2.INTER_AREA)
    # An affine map from the output grid to the frame: one warp does crop, pad and resize together.
    m = np.array([[sx, 0.0, x1 + 0.5 * sx - 0.5], [0.0, sy, y1 + 0.5 * sy - 0.5]], dtype=np.float64)
    return cv2.warpAffine(
        frame, m, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def _padded_region(frame: np.ndarray, ix1: int, iy1: int, ix2: int, iy2: int, out_hw: tuple[int, int]) -> np.ndarray:
    """Pixels ``[iy1:iy2, ix1:ix2]`` of ``frame`` with the parts outside it filled by replicating the border, to be
    resized to ``out_hw`` next. A region mostly outside the frame (e.g. a 1 x 100000 strip made square) would pad to
    gigabytes, so when it is over 4x the output size the visible part and its padding shrink by the same factor first.
    """
    import cv2

    out_h, out_w = out_hw
    fh, fw = frame.shape[:2]
    pad = [max(0, -iy1), max(0, iy2 - fh), max(0, -ix1), max(0, ix2 - fw)]
    region = frame[max(0, iy1) : min(fh, iy2), max(0, ix1) : min(fw, ix2)]
    if region.size == 0:
        region = np.zeros((1, 1) + frame.shape[2:], frame.dtype)
        pad = [0, iy2 - iy1 - 1, 0, ix2 - ix1 - 1]
    shrink = min((iy2 - iy1) / (4 * out_h), (ix2 - ix1) / (4 * out_w))
    if any(pad) and shrink > 1.0:
        rh, rw = region.shape[:2]
        region = cv2.resize(
            region, (max(1, round(rw / shrink)), max(1, round(rh / shrink))), interpolation=cv2.INTER_AREA
        )
        pad = [round(v / shrink) for v in pad]
    if any(pad):
        region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
    return region


def _rotated_crop(frame: np.ndarray, box: Box, spec: InputSpec, *, square: bool, roll: float) -> np.ndarray:
    """The crop of :func:`crop_face` sampled along the face's rotated axes (BGR or gray, not colour-converted)."""
    import cv2

    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cos, sin = float(np.cos(roll)), float(np.sin(roll))
    ox, oy = spec.crop_offset[0] * w, spec.crop_offset[1] * h  # offset along the face's axes
    cx, cy = (x1 + x2) / 2.0 + cos * ox - sin * oy, (y1 + y2) / 2.0 + sin * ox + cos * oy
    if square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * spec.crop_margin), h * (1 + 2 * spec.crop_margin)
    out_h, out_w = spec.size
    sx, sy = w / out_w, h / out_h
    src = frame
    pre = min(sx, sy)
    if pre > 1.0:
        # Shrink the region around the face first with an area filter (warpAffine alone would alias), then rotate.
        r = 0.5 * np.hypot(w, h) + 2.0
        ix1, iy1, ix2, iy2 = int(np.floor(cx - r)), int(np.floor(cy - r)), int(np.ceil(cx + r)), int(np.ceil(cy + r))
        size = (max(1, round((ix2 - ix1) / pre)), max(1, round((iy2 - iy1) / pre)))
        region = _padded_region(frame, ix1, iy1, ix2, iy2, (size[1], size[0]))
        src = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        k = (ix2 - ix1) / size[0], (iy2 - iy1) / size[1]
        cx, cy = (cx - ix1) / k[0], (cy - iy1) / k[1]
        sx, sy = sx / k[0], sy / k[1]
    # Output pixel (u, v) samples the source at centre + R(roll) @ ((u + 0.5) * sx - w'/2, (v + 0.5) * sy - h'/2).
    m = np.array([[cos * sx, -sin * sy, 0.0], [sin * sx, cos * sy, 0.0]], dtype=np.float64)
    m[:, 2] = (cx, cy) - m[:, :2] @ (out_w / 2.0, out_h / 2.0) + m[:, :2] @ (0.5, 0.5) - 0.5
    return cv2.warpAffine(
        src, m, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def convert_color(image: np.ndarray, color: str) -> np.ndarray:
    """Convert a BGR (or gray) uint8 image to the spec's colour order."""
    import cv2

    if color == "gray":
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color == "rgb" else image


def to_tensor(crops: Sequence[np.ndarray] | np.ndarray, spec: InputSpec) -> np.ndarray:
    """Stack uint8 crops into a normalised float32 batch in the spec's layout: ``(x * scale - mean) / std``."""
    batch = np.asarray(crops, dtype=np.float32)
    if batch.ndim == 3:  # N x H x W gray
        batch = batch[..., None]
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    batch = (batch * np.float32(spec.scale) - mean) / std
    if spec.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
