"""Applying occlusion protocols to one face crop or a batch, deterministically from a seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from runtime.errors import ConfigError, InputError
from runtime.occlusion import geometry as geo
from runtime.occlusion.face_frame import canonical_keypoints
from runtime.occlusion.placed import render
from runtime.occlusion.protocols import REALISTIC_KINDS, Protocol, parse_protocol
from runtime.occlusion.textured import render_textured

_FIXED_BOXES = {
    "eyes": geo.EYES_BAND,
    "mouth": geo.MOUTH_BAND,
    "upper_half": geo.UPPER_HALF,
    "lower_half": geo.LOWER_HALF,
}
_RN_SIDES = {"r8": 8, "r16": 16, "r24": 24}


@dataclass(frozen=True)
class Occluded:
    """Result of an occlusion: ``image`` (same shape/dtype as the input) and ``mask`` (uint8 0/1, 1 = covered).

    For a batch, ``image`` is (N, H, W[, C]) and ``mask`` is (N, H, W).
    """

    image: np.ndarray
    mask: np.ndarray


def _check(images: object, batch: bool) -> np.ndarray:
    what = "images batch" if batch else "image"
    if not isinstance(images, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(images).__name__}; load it with cv2.imread.")
    if images.dtype != np.uint8:
        raise InputError(f"{what} must be uint8, got {images.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8).")
    base = images.ndim - (1 if batch else 0)
    if base not in (2, 3) or (base == 3 and images.shape[-1] not in (1, 3)):
        shape = "(N, H, W) or (N, H, W, 1|3)" if batch else "(H, W) or (H, W, 1|3)"
        raise InputError(f"{what} has shape {images.shape}; expected {shape} (gray or BGR).")
    if images.size == 0 or min(images.shape[int(batch) : int(batch) + 2]) < 2:
        raise InputError(f"{what} of shape {images.shape} is empty or smaller than 2x2; pass a face crop.")
    return images


def _sample_boxes(rng: np.random.Generator, p: Protocol, n: int, h: int, w: int) -> np.ndarray:
    """Integer boxes (n, 4) as x0, y0, x1, y1 for the single-box kinds."""
    if p.kind in _FIXED_BOXES:
        return np.tile(geo.box_to_pixels(_FIXED_BOXES[p.kind], h, w), (n, 1))
    fx0, fy0, fx1, fy1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
    fw, fh = fx1 - fx0, fy1 - fy0
    u = rng.random((n, 3))  # one row per item, so item i does not depend on the batch size
    if p.kind == "random_box":
        area = float(p.fraction) * fw * fh
        ratio = np.exp(np.log(0.5) + u[:, 0] * np.log(4.0))
        bw = np.minimum(np.sqrt(area * ratio), fw)
        bh = np.minimum(area / bw, fh)
        bw = np.minimum(area / bh, fw)
    else:
        side = max(1, round(_RN_SIDES[p.kind] / 48 * min(h, w)))
        bw = bh = np.full(n, float(side))
    bw = np.clip(np.round(bw), 1, fw).astype(np.int64)
    bh = np.clip(np.round(bh), 1, fh).astype(np.int64)
    x0 = fx0 + np.floor(u[:, 1] * (fw - bw + 1)).astype(np.int64)
    y0 = fy0 + np.floor(u[:, 2] * (fh - bh + 1)).astype(np.int64)
    return np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)


def _shapes_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1-4 random rectangles and circles inside the face region."""
    fx0, fy0, fx1, fy1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = int(rng.integers(fx0, fx1)), int(rng.integers(fy0, fy1))
        if rng.random() < 0.5:
            hw, hh = (rng.uniform(0.05, 0.2, 2) * side).astype(int) + 1
            cv2.rectangle(mask, (cx - hw, cy - hh), (cx + hw, cy + hh), 1, -1)
        else:
            cv2.circle(mask, (cx, cy), int(rng.uniform(0.05, 0.2) * side) + 1, 1, -1)
    return mask.astype(bool)


def _fill_layer(rng: np.random.Generator, fill: str, n: int, h: int, w: int, c: int) -> np.ndarray:
    """Fill values broadcastable to (n, h, w, c)."""
    if fill == "black":
        return np.zeros((1, 1, 1, c), np.uint8)
    if fill == "gray":
        return np.full((1, 1, 1, c), 128, np.uint8)
    if fill == "color":
        return rng.integers(0, 256, (n, 1, 1, c), dtype=np.uint8)
    return rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _item_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """One generator per batch item; item i's generator does not depend on n."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 2]).spawn(n)]


def _as_channels(layer: np.ndarray, c: int) -> np.ndarray:
    return layer if c == 3 else cv2.cvtColor(layer, cv2.COLOR_BGR2GRAY)[..., None]


def _batch_keypoints(keypoints: object, n: int, h: int, w: int) -> np.ndarray:
    """(n, 6, 2) keypoints: the canonical crop layout, one (6, 2) set for all items, or one set per item."""
    if keypoints is None:
        return np.broadcast_to(canonical_keypoints(h, w), (n, 6, 2))
    k = np.asarray(keypoints, dtype=np.float64) if isinstance(keypoints, (np.ndarray, list, tuple)) else None
    if k is not None and k.shape == (6, 2):
        return np.broadcast_to(k, (n, 6, 2))
    if k is None or k.shape != (n, 6, 2):
        raise InputError(
            f"keypoints must be (6, 2) or ({n}, 6, 2) BlazeFace keypoints in pixels, got "
            f"{getattr(keypoints, 'shape', type(keypoints).__name__)}."
        )
    return k


def apply_batch(
    images: np.ndarray,
    protocol: str | Protocol,
    seed: int,
    *,
    sources: Sequence[np.ndarray] | None = None,
    keypoints: np.ndarray | None = None,
) -> Occluded:
    """Occludes a batch of face crops (N, H, W) or (N, H, W, C) with one protocol.

    Deterministic in ``(protocol, seed, H, W)``: item ``i`` of the batch depends on ``i`` but not on the batch
    size, so item 0 equals ``apply_occlusion(images[0], protocol, seed=seed)``. Box kinds are vectorised.

    Args:
        images: uint8 batch, gray or BGR.
        protocol: spec string or :class:`Protocol` (see :func:`parse_protocol`).
        seed: any non-negative int.
        sources: images to cut ``textured:patch`` patches from (else a procedural texture).
        keypoints: for the realistic kinds (``headset``, ``sunglasses``, ...): BlazeFace keypoints (6, 2) shared
            by the batch or (N, 6, 2), in crop pixels; default :func:`canonical_keypoints` of the crop geometry.
            Ignored by the other kinds, which assume the aligned crop geometry.

    Raises:
        InputError: wrong type, dtype or shape; invalid keypoints.
        ConfigError: invalid protocol or seed.
    """
    images = _check(images, batch=True)
    p = parse_protocol(protocol)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}.")
    gray2d = images.ndim == 3
    x = images[..., None] if gray2d else images
    n, h, w, c = x.shape
    masks = np.zeros((n, h, w), bool)
    if p.kind == "clean":
        return Occluded(images.copy(), masks.astype(np.uint8))
    seed = int(seed)
    for k, src in enumerate(sources or ()):
        if not isinstance(src, np.ndarray) or src.dtype != np.uint8 or src.ndim not in (2, 3) or min(src.shape[:2]) < 2:
            raise InputError(
                f"sources[{k}] must be a uint8 image (H, W) or (H, W, 3|4) of at least 2x2, got "
                f"{getattr(src, 'shape', type(src).__name__)}; load patch sources with cv2.imread."
            )
    if p.kind in REALISTIC_KINDS:
        kps = _batch_keypoints(keypoints, n, h, w)
        out = x.copy()
        for i, child in enumerate(_item_rngs(seed, n)):
            render(out[i], masks[i], p.kind, kps[i], child)
        return Occluded(out[..., 0] if gray2d else out, masks.astype(np.uint8))
    layer: np.ndarray
    if p.kind == "textured":
        layer = np.empty_like(x)
        for i, child in enumerate(_item_rngs(seed, n)):
            tex, masks[i] = render_textured(child, str(p.texture), h, w, sources)
            layer[i] = _as_channels(tex, c)
    else:
        if p.kind == "random_shapes":
            for i, child in enumerate(_item_rngs(seed, n)):
                masks[i] = _shapes_mask(child, h, w)
        else:
            boxes = _sample_boxes(np.random.default_rng([seed, 0]), p, n, h, w)
            ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
            masks = (
                (ys >= boxes[:, 1, None, None])
                & (ys < boxes[:, 3, None, None])
                & (xs >= boxes[:, 0, None, None])
                & (xs < boxes[:, 2, None, None])
            )
        layer = _fill_layer(np.random.default_rng([seed, 1]), str(p.fill), n, h, w, c)
    out = np.where(masks[..., None], layer, x)
    return Occluded(out[..., 0] if gray2d else out, masks.astype(np.uint8))


def apply_occlusion(
    image: np.ndarray,
    protocol: str | Protocol,
    *,
    seed: int,
    sources: Sequence[np.ndarray] | None = None,
    keypoints: np.ndarray | None = None,
) -> Occluded:
    """Occludes one aligned face crop (H, W) or (H, W, C) uint8; see :func:`apply_batch` for the arguments.

    Returns:
        ``Occluded(image, mask)``: the occluded copy (input untouched) and the uint8 0/1 mask (H, W).
    """
    image = _check(image, batch=False)
    if keypoints is not None and np.asarray(keypoints).shape != (6, 2):
        raise InputError(f"keypoints must be (6, 2) BlazeFace keypoints in pixels, got {np.asarray(keypoints).shape}.")
    res = apply_batch(image[None], protocol, seed, sources=sources, keypoints=keypoints)
    return Occluded(res.image[0], res.mask[0])


def stratified_assignment(n: int, mix: Sequence[tuple[str, float]], seed: int) -> list[str]:
    """Assigns ``n`` samples to the specs of ``mix`` in proportion to the shares (largest remainder), shuffled.

    Raises:
        ConfigError: empty mix, negative or all-zero shares, or an invalid spec.
    """
    if not mix or any(share < 0 for _, share in mix) or sum(s for _, s in mix) <= 0:
        raise ConfigError("mix must be a non-empty list of (spec, share) with non-negative shares summing > 0.")
    specs = [parse_protocol(spec).spec for spec, _ in mix]
    shares = np.array([s for _, s in mix], float)
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: n - counts.sum()]] += 1
    out = [s for s, k in zip(specs, counts) for _ in range(k)]
    order = np.random.default_rng(seed).permutation(n)
    return [out[i] for i in order]
