"""Procedural face benchmark: FACS action units drive the expressions of rendered faces.

Sample ``i`` of a dataset is a pure function of ``(seed, split, i)``:

* label ``i % n_classes`` (exactly balanced over every ``n_classes`` consecutive samples),
* identity ``k = (i // n_classes) % identities`` of the split; its global identity number is
  ``3 * k + {"train": 0, "val": 1, "test": 2}[split]``, so train, val and test identities are disjoint by
  construction (different residues mod 3) and identity parameters are drawn from ``(seed, number)``,
* AU intensities, pose, lighting, background, blur and noise from ``(seed, split, i)``.

Rendering is vectorised over a batch (:mod:`.geometry`, :mod:`.render`): ``render_batch`` is the fast path
(about 4,000 faces/s at 64 px on one core); ``ds[i]`` read in order renders ahead in blocks, a lone ``ds[i]`` renders
one face. A sample is bit-identical however it is rendered.

See /work/shared/PROCEDURAL_FACES.md for the AU table and why this makes occlusion hard in the right way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from runtime.errors import ConfigError
from runtime.datasets.procedural.aus import AUS, FER7, FER7_CONTEMPT, PROTOTYPES, sample_aus, set_au, zero_aus
from runtime.datasets.procedural.identity import Identity, Scene, sample_identity, sample_scene, scene_values
from runtime.datasets.procedural.render import render_face, render_faces
from runtime.datasets.procedural.seeding import generators

SPLITS = {"train": 0, "val": 1, "test": 2}
LABEL_SETS = {"fer7": FER7, "fer7+contempt": FER7_CONTEMPT}

__all__ = [
    "AUS",
    "FER7",
    "FER7_CONTEMPT",
    "PROTOTYPES",
    "Identity",
    "ProceduralFaces",
    "Scene",
    "identity_number",
    "make_identity",
    "render_face",
    "render_faces",
    "sample_aus",
    "sample_scene",
    "set_au",
    "zero_aus",
]
_CHUNK = 256  # faces per vectorised rendering pass (bounded memory, cache-friendly)
_AHEAD = 64  # faces rendered ahead when ds[i] is read in order


def identity_number(split: str, k: int) -> int:
    """Global identity number of the split's ``k``-th identity (``3k + split code``; disjoint across splits)."""
    return 3 * k + SPLITS[split]


@lru_cache(maxsize=65536)
def make_identity(seed: int, number: int) -> Identity:
    """The identity with global number ``number`` under dataset seed ``seed``."""
    return sample_identity(np.random.default_rng([seed, 1, number]))


class ProceduralFaces:
    """A deterministic, indexable procedural FER dataset (the ``FaceDatasetLike`` contract: ``labels``, ``len``,
    ``ds[i] -> (image, label)``, plus ``label(i)``, ``targets()`` and ``subject(i)``).

    Args:
        n: number of samples.
        size: output side in pixels (square crops).
        seed: dataset seed.
        split: ``train``, ``val`` or ``test`` (disjoint identities).
        labels: ``fer7`` (FER2013 order) or ``fer7+contempt`` (8 classes).
        label_noise: probability that the returned label is replaced by a different random class
            (the face is still rendered with its true expression; ``true_label(i)`` gives it).
        color: BGR (H, W, 3) when True, grey (H, W) when False.
        identities: number of identities in the split; default ``ceil(n / n_classes)``.
    """

    def __init__(
        self,
        n: int,
        size: int = 64,
        seed: int = 0,
        split: str = "train",
        labels: str = "fer7",
        label_noise: float = 0.0,
        color: bool = True,
        identities: int | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
        if labels not in LABEL_SETS:
            raise ConfigError(f"labels must be one of {', '.join(LABEL_SETS)}, got {labels!r}.")
        if n < 1 or size < 16:
            raise ConfigError(f"need n >= 1 and size >= 16, got n={n}, size={size}.")
        if not 0.0 <= label_noise < 1.0:
            raise ConfigError(f"label_noise must be in [0, 1), got {label_noise}.")
        self.n, self.size, self.seed, self.split = int(n), int(size), int(seed), split
        self.labels: tuple[str, ...] = LABEL_SETS[labels]
        self.label_noise, self.color = float(label_noise), bool(color)
        c = len(self.labels)
        self.identities = int(identities) if identities else max(1, -(-self.n // c))
        self._last = -2  # last index read through ds[i]
        self._ahead: tuple[int, np.ndarray, np.ndarray] | None = None  # (first index, images, labels)
        if self.identities < 1:
            raise ConfigError(f"identities must be >= 1, got {identities}.")

    def __len__(self) -> int:
        return self.n

    def true_label(self, i: int) -> int:
        """The expression actually rendered for sample ``i``."""
        return i % len(self.labels)

    def identity_of(self, i: int) -> int:
        """Global identity number of sample ``i``."""
        return identity_number(self.split, (i // len(self.labels)) % self.identities)

    def index(self, i: int) -> int:
        """Normalises ``i`` (negative counts from the end); IndexError when out of range."""
        j = int(i) + self.n if int(i) < 0 else int(i)
        if not 0 <= j < self.n:
            raise IndexError(f"index {i} out of range for a dataset of {self.n} samples")
        return j

    def label(self, i: int) -> int:
        """Returned (possibly noisy) label of sample ``i``, without rendering."""
        return self.sample_params(i)[3]

    def targets(self) -> np.ndarray:
        """All returned labels (int64), without rendering."""
        return np.array([self.label(i) for i in range(self.n)], np.int64)

    def subject(self, i: int) -> int:
        """Identity (person) of sample ``i``, for subject-wise analyses."""
        return self.identity_of(self.index(i))

    def _raw_params(
        self, i: int, rng: np.random.Generator | None = None
    ) -> tuple[Identity, np.ndarray, list[float], int]:
        """``(identity, AU state, scene numbers, returned label)`` of sample ``i`` (already normalised); ``rng``, if
        given, must be in the state of ``default_rng([seed, 2, split code, i])``."""
        rng = np.random.default_rng([self.seed, 2, SPLITS[self.split], i]) if rng is None else rng
        label = self.true_label(i)
        aus = sample_aus(rng, self.labels[label])
        scene = scene_values(rng)
        if self.label_noise and rng.random() < self.label_noise:
            label = (label + int(rng.integers(1, len(self.labels)))) % len(self.labels)
        return make_identity(self.seed, self.identity_of(i)), aus, scene, label

    def sample_params(self, i: int) -> tuple[Identity, np.ndarray, Scene, int]:
        """``(identity, AU state, scene, returned label)`` of sample ``i``."""
        idn, aus, scene, label = self._raw_params(self.index(i))
        return idn, aus, Scene.from_values(scene), label

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i``. Reading in order (``i`` right after the last index read) renders the next ``_AHEAD``
        samples in one vectorised pass and serves them from that block; other orders render one face."""
        j = self.index(i)
        sequential, self._last = j == self._last + 1, j
        if self._ahead is not None and 0 <= j - self._ahead[0] < len(self._ahead[1]):
            k = j - self._ahead[0]
            return self._ahead[1][k].copy(), int(self._ahead[2][k])
        if sequential:
            self._ahead = (j, *self.render_batch(range(j, min(j + _AHEAD, self.n))))
            return self._ahead[1][0].copy(), int(self._ahead[2][0])
        images, labels = self.render_batch([j])
        return images[0], int(labels[0])

    def render_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Renders several samples: images (N, H, W, 3) or (N, H, W) uint8 and labels (N,) int64.

        Vectorised over chunks of the batch; sample ``i`` is the same image as ``self[i]``.
        """
        idx = [self.index(int(i)) for i in indices]
        params = [self._raw_params(i, rng) for i, rng in zip(idx, generators((self.seed, 2, SPLITS[self.split]), idx))]
        shape = (self.size, self.size, 3) if self.color else (self.size, self.size)
        images = np.empty((len(params), *shape), np.uint8)
        for a in range(0, len(params), _CHUNK):
            chunk = params[a : a + _CHUNK]
            images[a : a + len(chunk)] = render_faces(
                [p[0] for p in chunk],
                np.stack([p[1] for p in chunk]),
                np.array([p[2] for p in chunk]),
                self.size,
                self.color,
            )
        return images, np.array([p[3] for p in params], np.int64)
