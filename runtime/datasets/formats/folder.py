"""Image folders: ``root/<class>/*.jpg|png`` or, with splits, ``root/<split>/<class>/*.jpg|png``.

Class folder names are mapped to canonical names (``Happy``, ``happiness`` -> ``happy``); an unknown name
is refused with a ConfigError listing it. Split folders may be named ``train``/``training``,
``val``/``valid``/``validation``/``PublicTest``, ``test``/``testing``/``PrivateTest`` (any case). A folder
without split subfolders is one split: it is served for ``split="train"`` or ``"all"`` and refused for
``val``/``test`` (so that a model is never silently evaluated on its training images).

The label set is ``labels`` when given, else FER7 when every class found is one of its seven, else the
eight canonical classes; it is computed over all splits so that indices agree between splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.errors import ConfigError, DatasetError
from runtime.frames import IMAGE_SUFFIXES

from ..base import LabelArrayDataset, check_split
from ..labels import CANONICAL, FER7, canonical_name, label_set
from ._io import read_image, require_dir

SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "publictest"),
    "test": ("test", "testing", "privatetest"),
}


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _split_of(name: str) -> str | None:
    key = name.lower()
    return next((split for split, names in SPLIT_DIRS.items() if key in names), None)


def _class_dirs(split_roots: list[Path], base: Path) -> dict[Path, str]:
    """Class folder -> canonical name, over all split roots; ConfigError listing unknown names."""
    out, unknown = {}, []
    for root in split_roots:
        for d in _subdirs(root):
            try:
                out[d] = canonical_name(d.name)
            except ConfigError:
                unknown.append(str(d.relative_to(base)))
    if unknown:
        raise ConfigError(
            f"image folder has class folder(s) with unknown names: {', '.join(sorted(unknown))}; "
            f"known names: {', '.join(CANONICAL)} (or aliases such as anger, happiness, sadness); "
            f"rename or remove them"
        )
    return out


class ImageFolder(LabelArrayDataset):
    """Images sorted into class folders (decoded on access, BGR or gray).

    Args:
        root: The folder.
        split: ``train``, ``val``, ``test`` or ``all``.
        labels: Label set (name or class names); default as in the module docstring.
        gray: Decode in gray instead of BGR.
    """

    def __init__(
        self, root: str | Path, split: str = "train", labels: str | Sequence[str] | None = None, gray: bool = False
    ):
        self.root = require_dir(root, "image folder", "pass a folder of <class>/ or <split>/<class>/ folders")
        check_split(split, dataset="image folder")
        self.split, self.gray = split, gray
        top = _subdirs(self.root)
        splits = {d: _split_of(d.name) for d in top}
        if any(s is not None for s in splits.values()):
            strays = [d.name for d, s in splits.items() if s is None]
            if strays:
                raise DatasetError(
                    f"image folder {self.root} mixes split folders with other folders {strays}; "
                    f"use either root/<split>/<class>/ or root/<class>/"
                )
            all_roots = list(splits)
            roots = [d for d, s in splits.items() if split in ("all", s)]
            if not roots:
                raise DatasetError(
                    f"image folder {self.root} has no {split!r} folder (found "
                    f"{', '.join(d.name for d in top)}); expected one of {', '.join(SPLIT_DIRS[split])}"
                )
        else:
            if split in ("val", "test"):
                raise ConfigError(
                    f"image folder {self.root} has no split folders, so it has no {split!r} split; "
                    f"use split='all' or arrange it as root/train/<class>/, root/test/<class>/"
                )
            all_roots = roots = [self.root]
        names = _class_dirs(all_roots, self.root)
        found = set(names.values())
        if labels is None:
            self.labels = FER7 if found <= set(FER7) else CANONICAL
        else:
            self.labels = label_set(labels)
            extra = sorted(found - set(self.labels))
            if extra:
                raise ConfigError(
                    f"image folder {self.root} has classes {extra} that are not in the label set "
                    f"{self.labels}; pass a label set that holds them or remove those folders"
                )
        files, targets = [], []
        for d, name in names.items():
            if d.parent not in roots:
                continue
            imgs = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files.extend(imgs)
            targets.extend([self.labels.index(name)] * len(imgs))
        if not files:
            raise DatasetError(
                f"image folder {self.root} ({split}) holds no images with suffixes {', '.join(IMAGE_SUFFIXES)}"
            )
        self.files = files
        self._labels = np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def path(self, i: int) -> Path:
        """Image file of sample ``i``."""
        return self.files[self.index(i)]

    def image(self, i: int) -> np.ndarray:
        return read_image(self.path(i), gray=self.gray, context="image folder")

    def source(self, i: int) -> str:
        return str(self.path(i))
