"""Occluded calibration and held-out sets: deterministic, stratified over occlusion protocols, cached as ``.npz``.

* :func:`build_calibration_set`: ``count`` faces, each occluded by one protocol of a mix (default
  :data:`DEFAULT_MIX`: :data:`runtime.occlusion.CALIBRATION_MIX` plus the realistic occluders placed from
  keypoints), assigned by largest remainder and shuffled from ``seed``. A source with fewer faces than ``count``
  gives each face several times, under different protocols (``views``).
* :func:`build_heldout_set`: held-out faces (another split / other files / the end of a video), each one under
  every protocol of a list (default :data:`HELDOUT_PROTOCOLS`: the standard evaluation protocols and the realistic
  occluders), for agreement and accuracy per protocol.

Both are preprocessed with the bundle's input spec (:func:`runtime.preprocess.to_tensor`) and cached under
``cache_dir`` in a file named by the sha256 of everything they depend on (source identity, part, protocols,
seed, input spec, count, face mode), so a changed input is never served from a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from runtime.bundle import InputSpec
from runtime.errors import ConfigError

from .config import DEFAULT_CACHE, CalibrationConfig
from .sources import load_faces, source_identity

CACHE_VERSION = 5  # 4: ready crops resampled by runtime.preprocess.fit_face (as the runtime crops); 5: gray first
#: Share of the calibration mix given to the realistic occluders (headset, sunglasses, mask, hand, cup, phone).
REALISTIC_SHARE = 0.24


def _default_mix() -> tuple[tuple[str, float], ...]:
    from runtime.occlusion import CALIBRATION_MIX, REALISTIC_PROTOCOLS

    rest = 1.0 - REALISTIC_SHARE
    return tuple((spec, share * rest) for spec, share in CALIBRATION_MIX) + tuple(
        (kind, REALISTIC_SHARE / len(REALISTIC_PROTOCOLS)) for kind in REALISTIC_PROTOCOLS
    )


def _heldout_protocols() -> tuple[str, ...]:
    from runtime.occlusion import EVAL_PROTOCOLS, REALISTIC_PROTOCOLS

    return tuple(EVAL_PROTOCOLS) + tuple(REALISTIC_PROTOCOLS)


#: Default calibration mix: ``runtime.occlusion.CALIBRATION_MIX`` scaled to 76 %, plus 4 % per realistic occluder.
DEFAULT_MIX: tuple[tuple[str, float], ...] = _default_mix()
#: Default held-out protocols: ``EVAL_PROTOCOLS`` (15) + ``REALISTIC_PROTOCOLS`` (6).
HELDOUT_PROTOCOLS: tuple[str, ...] = _heldout_protocols()
#: Most times one face is used in a calibration set (under different protocols) when the source has few faces.
MAX_VIEWS = 8


@dataclass(frozen=True)
class OccludedSet:
    """Preprocessed occluded faces.

    Attributes:
        inputs: ``(N, C, H, W)`` (or NHWC per the spec) float32, ready for the model.
        labels: ``(N,)`` int64 indices into ``label_names``; ``-1`` when unknown.
        label_names: Class names of the source's labels (empty when unlabelled).
        protocols: ``(N,)`` occlusion spec of each sample.
        key: sha256 of the inputs the set was built from (its cache key).
        faces: Distinct face crops behind the samples (a face can appear under several protocols).
        masks: ``(N, H, W)`` uint8 0/1 occlusion masks (what an inpainter is told to fill).
    """

    inputs: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    protocols: np.ndarray
    key: str
    faces: int = 0  # distinct face crops (0: unknown, as many as samples)
    masks: np.ndarray | None = None  # (N, H, W) uint8 0/1: what the occluder covers (for inpainters)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batches(self, batch_size: int) -> list[np.ndarray]:
        """The inputs in consecutive batches (the last may be smaller)."""
        return [self.inputs[i : i + batch_size] for i in range(0, len(self), batch_size)]

    def describe(self) -> dict[str, Any]:
        """Counts (samples, distinct faces, per protocol) and the key, for manifests."""
        specs, counts = np.unique(self.protocols, return_counts=True)
        return {
            "n": len(self),
            "faces": self.faces or len(self),
            "key": self.key,
            "labelled": bool((self.labels >= 0).any()),
            "per_protocol": {str(s): int(c) for s, c in zip(specs, counts)},
        }


def _key(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _protocol_seed(seed: int, spec: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}|{spec}".encode()).digest()[:4], "little")


def _cached(key: str, cache_dir: str | os.PathLike[str] | None, build: Callable[[], OccludedSet]) -> OccludedSet:
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return OccludedSet(
                    z["inputs"],
                    z["labels"],
                    tuple(str(s) for s in z["label_names"]),
                    z["protocols"].astype(str),
                    key,
                    int(z["faces"]),
                    z["masks"],
                )
        except (OSError, ValueError, KeyError):  # a truncated or foreign file: rebuild it
            path.unlink(missing_ok=True)
    result = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                inputs=result.inputs,
                labels=result.labels,
                label_names=np.asarray(result.label_names, dtype=str),
                protocols=result.protocols.astype(str),
                faces=np.int64(result.faces),
                masks=result.masks,
            )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return result


def _payload(
    source: str, spec: InputSpec, part: str, count: int, seed: int, faces: str, protocols: Any
) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "source": source_identity(source),
        "part": part,
        "count": count,
        "seed": seed,
        "faces": faces,
        "protocols": protocols,
        "input": spec.to_json(),
    }


def _occlude(crops: np.ndarray, specs: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``specs[i]`` to crop ``i`` (grouped by spec, one seeded batch per spec); images and masks."""
    from runtime.occlusion import apply_batch

    out = crops.copy()
    masks = np.zeros(crops.shape[:3], np.uint8)
    specs_arr = np.asarray(specs)
    for spec in sorted(set(specs)):
        idx = np.flatnonzero(specs_arr == spec)
        occ = apply_batch(crops[idx], spec, _protocol_seed(seed, spec))
        out[idx], masks[idx] = occ.image, occ.mask
    return out, masks


def build_calibration_set(
    source: str,
    spec: InputSpec,
    *,
    count: int = 256,
    mix: Sequence[tuple[str, float]] | None = None,
    seed: int = 0,
    faces: str = "detect",
    cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
) -> OccludedSet:
    """A stratified occluded calibration set (see the module docstring).

    Args:
        source: Dataset spec, folder, image, video or ``procedural`` (see :mod:`calibration.sources`).
        spec: The bundle's input spec.
        count: Number of samples wanted. A source with fewer faces gives each face ``ceil(count / faces)`` times
            (at most :data:`MAX_VIEWS`), each time under a protocol of the mix.
        mix: ``(protocol, share)`` pairs; default :data:`DEFAULT_MIX`.
        seed: Seeds the sample choice, the protocol assignment and every occluder.
        faces: ``detect`` (crop detected faces) or ``whole`` (images are face crops).
        cache_dir: Where the ``.npz`` cache lives (``None``: no cache).
    """
    from runtime.occlusion import parse_protocol, stratified_assignment
    from runtime.preprocess import to_tensor

    mix = [(parse_protocol(s).spec, float(w)) for s, w in (mix or DEFAULT_MIX)]
    key = _key(_payload(source, spec, "calib", count, seed, faces, mix))

    def build() -> OccludedSet:
        found = load_faces(source, spec, count=count, part="calib", seed=seed, faces=faces)
        n = len(found.crops)
        views = min(MAX_VIEWS, -(-count // n))
        index = np.tile(np.arange(n), views)[: max(n, min(count, n * views))]
        specs = stratified_assignment(len(index), mix, seed)
        images, masks = _occlude(found.crops[index], specs, seed)
        return OccludedSet(
            to_tensor(images, spec), found.labels[index], found.label_names, np.asarray(specs, str), key, n, masks
        )

    return _cached(key, cache_dir, build)


def build_heldout_set(
    source: str,
    spec: InputSpec,
    *,
    count: int = 64,
    protocols: Sequence[str] | None = None,
    seed: int = 1,
    faces: str = "detect",
    cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
    part: str = "heldout",
) -> OccludedSet:
    """Held-out faces, each under every protocol (default :data:`HELDOUT_PROTOCOLS`).

    The faces come from the part of the source that calibration never sees (see :mod:`calibration.sources`);
    ``part="all"`` takes the whole source (a held-out source of its own, e.g. other people).
    """
    from runtime.occlusion import parse_protocol
    from runtime.preprocess import to_tensor

    specs = [parse_protocol(p).spec for p in (protocols or HELDOUT_PROTOCOLS)]
    if not specs:
        raise ConfigError("the held-out set needs at least one occlusion protocol")
    key = _key(_payload(source, spec, part, count, seed, faces, specs))

    def build() -> OccludedSet:
        found = load_faces(source, spec, count=count, part=part, seed=seed, faces=faces)
        n = len(found.crops)
        parts = [_occlude(found.crops, [p] * n, seed) for p in specs]
        return OccludedSet(
            to_tensor(np.concatenate([i for i, _ in parts]), spec),
            np.tile(found.labels, len(specs)),
            found.label_names,
            np.repeat(np.asarray(specs, str), n),
            key,
            n,
            np.concatenate([m for _, m in parts]),
        )

    return _cached(key, cache_dir, build)


def calibration_set(config: CalibrationConfig, spec: InputSpec) -> OccludedSet:
    """The calibration set ``config`` describes (``source``, ``count``, ``seed``, ``faces``, ``cache_dir``).

    Raises:
        ConfigError: ``config.source`` is not set (resolve it first, e.g. with the model's domain).
    """
    if config.source is None:
        raise ConfigError("no calibration source; pass --calib with faces from the model's own domain")
    return build_calibration_set(
        config.source, spec, count=config.count, seed=config.seed, faces=config.faces, cache_dir=config.cache_dir
    )


def heldout_set(config: CalibrationConfig, spec: InputSpec) -> tuple[str, OccludedSet]:
    """``(source, set)``: the held-out faces ``config`` describes. ``config.heldout`` is taken whole (other people);
    without it, the part of ``config.source`` that calibration never sees (``procedural`` when neither is set)."""
    source = config.heldout or config.source or "procedural"
    return source, build_heldout_set(
        source,
        spec,
        count=config.heldout_count,
        seed=config.seed + 1,
        faces=config.faces,
        cache_dir=config.cache_dir,
        part="all" if config.heldout else "heldout",
    )
