"""How much of each face is covered: a known region (headsets), a bundle engine, or a built-in image estimator.

Every estimator maps face crops (uint8, the bundle's input size and colour) to an :class:`OcclusionEstimate`:
the covered fraction of the face region (:data:`runtime.occlusion.geometry.FACE_BOX`) per face and a 0/1 mask
per crop (1 = covered), which the inpaint pipeline feeds to the inpainter.

* :class:`KnownRegion` -- the caller knows what is hidden (``"upper_half"`` for a VR headset, or a mask).
* :class:`EngineEstimator` -- an engine of role ``occlusion_estimator`` carried by the bundle; its output is a
  covered fraction per face (``(N,)`` / ``(N, 1)``) or a mask (``(N, 1, H, W)``), as probabilities or logits.
* :class:`ImageStatsEstimator` -- built in, no model: the face region is cut into a grid of cells and a cell
  counts as covered when it is flat (local contrast below ``min_std``: uniform fills, dark plastic) or has no
  spatial structure (neighbour correlation below ``min_corr``: noise-like textures). Its accuracy on real faces
  is measured by ``benchmarks/occlusion_estimate.py`` (see README, "Occlusion-aware pipelines").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .bundle import InputSpec
from .engines.base import Engine
from .errors import ConfigError, InputError
from .occlusion import geometry as geo
from .preprocess import to_tensor

REGIONS: dict[str, geo.Box] = {
    "upper_half": geo.UPPER_HALF,
    "lower_half": geo.LOWER_HALF,
    "eyes": geo.EYES_BAND,
    "mouth": geo.MOUTH_BAND,
}


@dataclass
class OcclusionEstimate:
    """Per-face covered fraction of the face region (``(N,)`` float) and masks (``(N, H, W)`` uint8, 1 = covered)."""

    fraction: np.ndarray
    masks: np.ndarray
    source: str

    def take(self, index: np.ndarray) -> "OcclusionEstimate":
        """The estimate for a subset of the faces."""
        return OcclusionEstimate(self.fraction[index], self.masks[index], self.source)


def face_fraction(masks: np.ndarray) -> np.ndarray:
    """Covered fraction of the face region of ``(N, H, W)`` 0/1 masks."""
    h, w = masks.shape[1:3]
    x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
    return masks[:, y0:y1, x0:x1].reshape(len(masks), -1).mean(axis=1).astype(np.float32)


def _resize_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    m = (np.asarray(mask, np.float32) > 0.5).astype(np.uint8)
    return m if m.shape == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)


class KnownRegion:
    """A fixed covered region, known in advance (a headset always hides the same part of the face).

    Args:
        region: ``"upper_half"``, ``"lower_half"``, ``"eyes"``, ``"mouth"``, or a 2-D mask (any size, 1 = covered)
            in face-crop coordinates; it is resized to the crop size.
    """

    def __init__(self, region: str | np.ndarray) -> None:
        if isinstance(region, str):
            if region not in REGIONS:
                raise ConfigError(
                    f"unknown occlusion option {region!r}; use None/'auto' (estimate), 'image-stats', 'off', "
                    f"a region ({', '.join(REGIONS)}) or a 2-D mask of the face crop (1 = covered)"
                )
            self._box: geo.Box | None = REGIONS[region]
            self._mask = None
            self.name = region
        else:
            m = np.asarray(region)
            if m.ndim != 2 or min(m.shape) < 2:
                raise ConfigError(
                    f"an occlusion mask must be a 2-D array (H, W), 1 where the face is covered; got shape {m.shape}"
                )
            self._box, self._mask, self.name = None, m, "mask"

    def mask(self, h: int, w: int) -> np.ndarray:
        """The region as an ``h x w`` uint8 mask."""
        if self._mask is not None:
            return _resize_mask(self._mask, h, w)
        out = np.zeros((h, w), np.uint8)
        x0, y0, x1, y1 = geo.box_to_pixels(self._box, h, w)  # type: ignore[arg-type]
        out[y0:y1, x0:x1] = 1
        return out

    def estimate(self, crops: Sequence[np.ndarray]) -> OcclusionEstimate:
        """The same mask for every crop."""
        if not len(crops):
            return OcclusionEstimate(np.zeros(0, np.float32), np.zeros((0, 1, 1), np.uint8), f"known:{self.name}")
        h, w = crops[0].shape[:2]
        masks = np.repeat(self.mask(h, w)[None], len(crops), axis=0)
        return OcclusionEstimate(face_fraction(masks), masks, f"known:{self.name}")


def _gray(crop: np.ndarray) -> np.ndarray:
    import cv2

    if crop.ndim == 3 and crop.shape[2] == 3:
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)  # channel order barely matters for contrast and structure
    return crop.reshape(crop.shape[:2])


SATURATED = 250  # gray level from which a pixel counts as a clipped highlight
SOFT_EDGE = 200  # clipped areas whose border pixels are this bright (median) roll off gradually: overexposure
BRIGHT_QUARTER = 180  # a crop whose darker quarter is above this gray level is heavily overexposed


def _percentiles(gray: np.ndarray, *qs: float) -> list[int]:
    """Gray levels at fractions ``qs`` of a uint8 image's pixels (a histogram: much faster than np.percentile)."""
    if gray.dtype != np.uint8:
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    cum = np.bincount(gray.ravel(), minlength=256).cumsum()
    return [int(np.searchsorted(cum, q * cum[-1])) for q in qs]


def _blown_out(gray: np.ndarray) -> bool:
    """Whether the crop's clipped highlights are overexposed skin (they fade into bright pixels, or the whole crop
    is bright) rather than a bright occluder (a hard step from the fill to a normally exposed face)."""
    import cv2

    sat = (gray >= SATURATED).astype(np.uint8)
    if not sat.any():
        return False
    if _percentiles(gray, 0.25)[0] >= BRIGHT_QUARTER:  # heavy overexposure: even the darker quarter is bright
        return True
    ring = cv2.dilate(sat, np.ones((3, 3), np.uint8)) > sat
    return bool(ring.any() and np.median(gray[ring]) >= SOFT_EDGE)


def _normalise_exposure(gray: np.ndarray, face: tuple[int, int, int, int]) -> np.ndarray:
    """The crop with its face region's 2nd..98th percentile stretched to 0..255 (float32), so that contrast and
    flatness mean the same in a very dark, backlit or bright face as in a well exposed one. A region with almost
    no range (< 4 levels: a uniform fill) is left as it is."""
    x0, y0, x1, y1 = face
    g = gray.astype(np.float32)
    lo, hi = _percentiles(gray[y0:y1, x0:x1], 0.02, 0.98)
    if hi - lo < 4:
        return g
    return (g - lo) * np.float32(255.0 / (hi - lo))


class ImageStatsEstimator:
    """Built-in estimator from local image statistics (no model; well under 1 ms per 64x64 face on one core).

    For every pixel of the face region, statistics over a ``window x window`` neighbourhood (default: 1/12 of the
    crop side, odd): a pixel is covered when the local gray-level standard deviation is below ``min_std`` (flat:
    uniform fills, a headset's plastic) or the local correlation of horizontal and vertical neighbours is below
    ``min_corr`` (noise-like: no facial structure). Both are computed after stretching the face region's contrast
    to the full range, so a very dark, backlit or bright face reads like a well exposed one; clipped highlights of
    an overexposed face do not count as covered. An opening removes isolated specks of smooth skin, then the
    mask is dilated by half a window to reach the occluder's edges. Occluders that look like skin (a hand) are
    mostly missed: see the measured accuracy per protocol in the README.
    """

    def __init__(
        self, min_std: float = 2.0, min_corr: float = 0.3, window: int | None = None, min_blob: float = 0.06
    ) -> None:
        if min_std < 0 or not -1 <= min_corr <= 1 or (window is not None and window < 3) or not 0 <= min_blob < 1:
            raise ConfigError(
                f"bad ImageStatsEstimator settings min_std={min_std}, min_corr={min_corr}, "
                f"window={window}, min_blob={min_blob}"
            )
        self.min_std, self.min_corr, self.window, self.min_blob = float(min_std), float(min_corr), window, min_blob

    def covered(self, gray: np.ndarray) -> np.ndarray:
        """The covered-pixel mask (uint8 0/1) of one gray crop."""
        import cv2

        h, w = gray.shape
        k = self.window or max(3, int(round(min(h, w) / 12)) | 1)
        x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
        g = _normalise_exposure(gray, (x0, y0, x1, y1))
        box = lambda a: cv2.boxFilter(a, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)  # noqa: E731
        mu = box(g)
        var = np.maximum(box(g * g) - mu * mu, 0.0)
        gx, gy = np.roll(g, -1, axis=1), np.roll(g, -1, axis=0)
        cov = 0.5 * (box(g * gx) - mu * np.roll(mu, -1, axis=1) + box(g * gy) - mu * np.roll(mu, -1, axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(var > 0, cov / np.maximum(var, 1e-6), 1.0)
        raw = (var < self.min_std**2) | (corr < self.min_corr)
        # In an overexposed face, clipped highlights carry no information: flat or structureless *because* they
        # are blown out is not evidence of an occluder. Flat dark areas stay covered (a black headset), and so do
        # bright fills on a normally exposed face.
        if _blown_out(gray):
            raw &= box((gray >= SATURATED).astype(np.float32)) < 0.5
        raw = raw.astype(np.uint8)
        face = np.zeros_like(raw)
        face[y0:y1, x0:x1] = 1
        raw &= face
        blob = max(1, int(round(self.min_blob * min(h, w))))
        kernel = np.ones((blob, blob), np.uint8)
        mask = cv2.morphologyEx(raw, cv2.MORPH_OPEN, kernel)
        mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
        return mask & face

    def estimate(self, crops: Sequence[np.ndarray]) -> OcclusionEstimate:
        """Covered-pixel masks and the covered fraction of the face region, per crop."""
        if not len(crops):
            return OcclusionEstimate(np.zeros(0, np.float32), np.zeros((0, 1, 1), np.uint8), "image-stats")
        masks = np.stack([self.covered(_gray(np.asarray(c))) for c in crops])
        return OcclusionEstimate(face_fraction(masks), masks, "image-stats")


class EngineEstimator:
    """An ``occlusion_estimator`` engine of the bundle, fed the normalised crops like the classifier.

    Args:
        engine: The loaded engine.
        spec: The bundle's input spec (normalisation of the crops).
        output_kind: ``probabilities`` (values in [0, 1]) or ``logits`` (a sigmoid is applied); ``image`` is
            read as a probability mask.
    """

    def __init__(self, engine: Engine, spec: InputSpec, output_kind: str = "probabilities") -> None:
        self.engine, self.spec, self.output_kind = engine, spec, output_kind
        self._input, self._output = engine.input_names[0], engine.output_names[0]

    def estimate(self, crops: Sequence[np.ndarray]) -> OcclusionEstimate:
        """Run the engine; a per-face fraction becomes a mask of the top rows of the face (headset-like)."""
        if not len(crops):
            return OcclusionEstimate(np.zeros(0, np.float32), np.zeros((0, 1, 1), np.uint8), "engine")
        h, w = crops[0].shape[:2]
        out = np.asarray(self.engine.run({self._input: to_tensor(crops, self.spec)})[self._output], np.float32)
        if self.output_kind == "logits":
            out = 1.0 / (1.0 + np.exp(-out))
        n = len(crops)
        if out.ndim == 4 and out.shape[0] == n and 1 in (out.shape[1], out.shape[3]):
            prob = out[:, 0] if out.shape[1] == 1 else out[..., 0]
            masks = np.stack([_resize_mask(p, h, w) for p in prob])
            return OcclusionEstimate(face_fraction(masks), masks, "engine")
        if out.size == n:
            frac = np.clip(out.reshape(n), 0.0, 1.0).astype(np.float32)
            masks = np.zeros((n, h, w), np.uint8)
            x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
            for i, f in enumerate(frac):  # no location given: assume the covered part starts at the top
                masks[i, : y0 + int(round(f * (y1 - y0))), :] = 1
            return OcclusionEstimate(frac, masks, "engine")
        raise InputError(
            f"occlusion_estimator output has shape {list(out.shape)} for {n} faces; expected a "
            "fraction per face (N,) / (N, 1) or a mask (N, 1, H, W); re-export the estimator"
        )


class GivenMasks:
    """Masks known from elsewhere (an evaluation protocol draws the occluder, so it knows what is covered).

    :meth:`set` gives the ``(N, H, W)`` masks (1 = covered) of the next batch; :meth:`estimate` returns them.
    Evaluation uses it so that a bundle's inpainter gets the same masks as the checkpoint it came from.
    """

    source = "given"

    def __init__(self) -> None:
        self._masks: np.ndarray | None = None

    def set(self, masks: np.ndarray) -> None:
        """The masks of the next :meth:`estimate` call."""
        self._masks = (np.asarray(masks) > 0.5).astype(np.uint8)

    def estimate(self, crops: Sequence[np.ndarray]) -> OcclusionEstimate:
        """The masks given with :meth:`set` (their number must match the crops)."""
        if self._masks is None or len(self._masks) != len(crops):
            n = None if self._masks is None else len(self._masks)
            raise ConfigError(
                f"GivenMasks: {n} masks were set for {len(crops)} crops; call set(masks) with one "
                "mask per crop before each batch"
            )
        return OcclusionEstimate(face_fraction(self._masks), self._masks, self.source)


def make_estimator(
    occlusion: Any,
    *,
    estimator_engine: Engine | None = None,
    spec: InputSpec | None = None,
    output_kind: str = "probabilities",
) -> Any:
    """The estimator for a Recognizer's ``occlusion`` option.

    Args:
        occlusion: ``None``/``"auto"`` (the bundle's estimator engine if any, else the built-in one),
            ``"image-stats"`` (always the built-in one), a region name or a 2-D mask (:class:`KnownRegion`), or
            an estimator object (anything with ``estimate(crops)``, e.g. :class:`GivenMasks`), used as is.
        estimator_engine: The bundle's ``occlusion_estimator`` engine, when it has one.
        spec: The bundle's input spec (needed with an engine).
        output_kind: The estimator engine's manifest ``output``.
    """
    if occlusion is None or (isinstance(occlusion, str) and occlusion == "auto"):
        if estimator_engine is not None:
            if spec is None:
                raise ConfigError("an occlusion_estimator engine needs the bundle's input spec")
            return EngineEstimator(estimator_engine, spec, output_kind)
        return ImageStatsEstimator()
    if isinstance(occlusion, str) and occlusion == "image-stats":
        return ImageStatsEstimator()
    if callable(getattr(occlusion, "estimate", None)):
        return occlusion
    if isinstance(occlusion, (str, np.ndarray, list, tuple)):
        return KnownRegion(occlusion if isinstance(occlusion, str) else np.asarray(occlusion))
    raise ConfigError(
        f"occlusion must be None, 'auto', 'image-stats', one of {', '.join(REGIONS)} or a 2-D mask; "
        f"got {type(occlusion).__name__}"
    )
