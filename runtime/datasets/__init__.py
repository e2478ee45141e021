"""Face-expression datasets as numpy arrays (torch-free; layer 1, below ``calibration``).

What lives here: the dataset contract (:mod:`.base`: ``FaceDataset``, ``Subset``, ``Remapped``), label sets and
remapping (:mod:`.labels`), the one-line spec parser (:mod:`.spec`: ``open_dataset("fer2013:/data/fer2013.csv")``),
the readers of the public datasets (:mod:`.formats`: FER2013, FER+, RAF-DB, CK+, AffectNet, image folders), the
procedural face renderer (:mod:`.procedural`) and unlabelled faces from the user's videos and photos
(:mod:`.faces`). The torch ``Dataset`` wrappers live in ``sdk.training.data``.
"""

from __future__ import annotations

from .base import SPLITS, FaceDataset, FaceDatasetLike, LabelArrayDataset, Remapped, Subset, check_split
from .labels import (
    AFFECTNET8,
    CANONICAL,
    CKPLUS8,
    FER7,
    FERPLUS8,
    LABEL_SETS,
    RAFDB7,
    canonical_name,
    canonical_names,
    label_set,
    remap,
)
from .spec import FORMATS, LABELLED_FORMATS, open_dataset, parse_spec

__all__ = [
    "SPLITS",
    "FaceDataset",
    "FaceDatasetLike",
    "LabelArrayDataset",
    "Remapped",
    "Subset",
    "check_split",
    "AFFECTNET8",
    "CANONICAL",
    "CKPLUS8",
    "FER7",
    "FERPLUS8",
    "LABEL_SETS",
    "RAFDB7",
    "canonical_name",
    "canonical_names",
    "label_set",
    "remap",
    "FORMATS",
    "LABELLED_FORMATS",
    "open_dataset",
    "parse_spec",
]
