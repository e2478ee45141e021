"""The numpy-level dataset contract every face dataset follows.

Core contract (shared with :class:`runtime.datasets.procedural.ProceduralFaces`):

* ``labels``: tuple of canonical class names; a label is an index into it.
* ``len(ds)`` and ``ds[i] -> (image, label)`` with ``image`` uint8, ``HxW`` (gray) or ``HxWx3`` (BGR),
  and ``label`` a Python ``int``.

Extras live behind methods of :class:`FaceDataset` so that a plain ``(image, label)`` dataset stays valid:
``label(i)`` and ``targets()`` read labels without decoding images, ``soft_label(i)`` gives a vote
distribution (FER+), ``face_box(i)`` the box the image was cropped by (AffectNet), ``subject(i)`` the
person (CK+, for subject-wise splits) and ``source(i)`` where the sample came from (for messages).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from runtime.errors import ConfigError

from .labels import label_set, remap

SPLITS: tuple[str, ...] = ("train", "val", "test", "all")


@runtime_checkable
class FaceDatasetLike(Protocol):
    """Anything with ``labels``, ``len`` and ``ds[i] -> (image, label)``."""

    labels: tuple[str, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]: ...


def check_split(split: str, allowed: Sequence[str] = SPLITS, dataset: str = "dataset") -> str:
    """Return ``split`` if ``allowed``, else raise a ConfigError naming the accepted splits."""
    if split not in allowed:
        raise ConfigError(f"{dataset} has no split {split!r}; use one of {', '.join(allowed)}")
    return split


class FaceDataset(ABC):
    """Base class of the readers: subclasses implement ``__len__``, ``image(i)`` and ``label(i)``.

    Attributes:
        labels: Class names (canonical), indexed by the labels.
        split: The split this object holds (``train``, ``val``, ``test`` or ``all``).
    """

    labels: tuple[str, ...] = ()
    split: str = "all"

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def image(self, i: int) -> np.ndarray:
        """Image of sample ``i`` (uint8, HxW gray or HxWx3 BGR); decoded on access where the data are large."""

    @abstractmethod
    def label(self, i: int) -> int:
        """Label index of sample ``i`` (no image decoding)."""

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        i = self.index(i)
        return self.image(i), self.label(i)

    def index(self, i: int) -> int:
        """Normalise ``i`` (negative indices count from the end); IndexError when out of range."""
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        return j

    def targets(self) -> np.ndarray:
        """All labels as an int64 array, without decoding images."""
        return np.array([self.label(i) for i in range(len(self))], dtype=np.int64)

    def soft_label(self, i: int) -> np.ndarray | None:
        """Label distribution (float32, sums to 1) of sample ``i``, or None when the dataset has none."""
        return None

    def face_box(self, i: int) -> tuple[int, int, int, int] | None:
        """Face box ``(x, y, w, h)`` in the source image that ``image(i)`` was cropped by, or None."""
        return None

    def subject(self, i: int) -> str | None:
        """Subject (person) id of sample ``i``, or None when unknown."""
        return None

    def source(self, i: int) -> str:
        """Where sample ``i`` comes from (a file, a line), for messages."""
        return f"{type(self).__name__}[{i}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)}, labels={self.labels})"


class LabelArrayDataset(FaceDataset):
    """A reader that holds every sample's label in an int64 array ``_labels`` (in sample order)."""

    _labels: np.ndarray

    def label(self, i: int) -> int:
        return int(self._labels[self.index(i)])

    def targets(self) -> np.ndarray:
        return self._labels.copy()


class Subset(FaceDataset):
    """A view of selected samples of another :class:`FaceDataset` (extras are forwarded)."""

    def __init__(self, dataset: FaceDataset, indices: Sequence[int], labels: tuple[str, ...] | None = None):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = dataset.labels if labels is None else labels
        self.split = dataset.split

    def __len__(self) -> int:
        return len(self.indices)

    def _at(self, i: int) -> int:
        return int(self.indices[self.index(i)])

    def image(self, i: int) -> np.ndarray:
        return self.dataset.image(self._at(i))

    def label(self, i: int) -> int:
        return self.dataset.label(self._at(i))

    def soft_label(self, i: int) -> np.ndarray | None:
        return self.dataset.soft_label(self._at(i))

    def face_box(self, i: int) -> tuple[int, int, int, int] | None:
        return self.dataset.face_box(self._at(i))

    def subject(self, i: int) -> str | None:
        return self.dataset.subject(self._at(i))

    def source(self, i: int) -> str:
        return self.dataset.source(self._at(i))


class Remapped(Subset):
    """A dataset seen through another label set (see :func:`runtime.datasets.labels.remap`).

    Samples whose class is dropped by the mapping are left out. Soft labels are remapped by summing the
    mass of the source classes that land on each target class and renormalising (a dropped class's
    mass is removed).

    Example:
        >>> ds7 = Remapped(ferplus_ds, "fer7")          # contempt samples are left out
    """

    def __init__(self, dataset: FaceDataset, labels_to: str | Sequence[str], unmapped: str = "drop"):
        target = label_set(labels_to)
        self.mapping = np.asarray(remap(dataset.labels, target, unmapped), dtype=np.int64)
        keep = np.flatnonzero(self.mapping[dataset.targets()] >= 0)
        super().__init__(dataset, keep, labels=target)

    def label(self, i: int) -> int:
        return int(self.mapping[self.dataset.label(self._at(i))])

    def targets(self) -> np.ndarray:
        return self.mapping[self.dataset.targets()[self.indices]]

    def soft_label(self, i: int) -> np.ndarray | None:
        soft = self.dataset.soft_label(self._at(i))
        if soft is None:
            return None
        out = np.zeros(len(self.labels), dtype=np.float64)
        keep = self.mapping >= 0
        np.add.at(out, self.mapping[keep], np.asarray(soft, dtype=np.float64)[keep])
        total = out.sum()
        return (out / total if total > 0 else out).astype(np.float32)
