"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``, labels 1..7) and images in
``Image/aligned/train_00001_aligned.jpg`` (100x100 aligned faces) or ``Image/original/train_00001.jpg``.

The split is the name prefix (``train_`` / ``test_``); RAF-DB has no validation split. Images are decoded
on access (BGR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import DatasetError

from ..base import LabelArrayDataset, check_split
from ..labels import RAFDB7
from ._io import parse_int, read_image, require_dir, require_file

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"


class RAFDB(LabelArrayDataset):
    """RAF-DB basic-emotion faces with RAFDB7 labels (file label ``k`` -> index ``k - 1``).

    Args:
        root: Dataset folder holding ``EmoLabel/`` and ``Image/``.
        split: ``train``, ``test`` or ``all``.
        aligned: Read ``Image/aligned/<name>_aligned.jpg`` (default) or ``Image/original/<name>.jpg``.
        verify: Check up front that every image file exists (one ``stat`` per file).
    """

    labels = RAFDB7

    def __init__(self, root: str | Path, split: str = "train", aligned: bool = True, verify: bool = False):
        self.root = require_dir(root, "RAF-DB root folder", "pass the folder holding EmoLabel/ and Image/")
        check_split(split, ("train", "test", "all"), "RAF-DB (it has no val split; hold out part of train)")
        self.split = split
        label_path = require_file(
            self.root / LABEL_FILE, "RAF-DB label file", f"expected {LABEL_FILE} under the RAF-DB root"
        )
        self.image_dir = require_dir(
            self.root / "Image" / ("aligned" if aligned else "original"), "RAF-DB image folder"
        )
        self.aligned = aligned
        names, labels, lines = [], [], []
        with open(label_path, encoding="utf-8") as f:
            for line_no, text in enumerate(f, start=1):
                parts = text.split()
                if not parts:
                    continue
                where = f"{LABEL_FILE.name} line {line_no}"
                if len(parts) != 2:
                    raise DatasetError(
                        f"{where}: {text.strip()!r} has {len(parts)} fields, expected "
                        f"'<image name> <label 1..7>' (e.g. 'train_00001.jpg 5')"
                    )
                name, value = parts
                label = parse_int(value, where, "the label")
                if not 1 <= label <= len(RAFDB7):
                    raise DatasetError(
                        f"{where}: label {label} is not in 1..7 "
                        f"({', '.join(f'{k + 1}={n}' for k, n in enumerate(RAFDB7))})"
                    )
                prefix = name.split("_", 1)[0]
                if prefix not in ("train", "test"):
                    raise DatasetError(f"{where}: image name {name!r} does not start with 'train_' or 'test_'")
                if split in ("all", prefix):
                    names.append(name)
                    labels.append(label - 1)
                    lines.append(line_no)
        self.names = names
        self.lines = lines
        self._labels = np.asarray(labels, dtype=np.int64)
        if verify:
            missing = [str(self.path(i)) for i in range(len(self)) if not self.path(i).is_file()]
            if missing:
                raise DatasetError(
                    f"RAF-DB: {len(missing)} image(s) listed in {LABEL_FILE} are missing, "
                    f"e.g. {missing[:3]}; re-extract the images"
                )

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> Path:
        """Image file of sample ``i``."""
        name = self.names[self.index(i)]
        if not self.aligned:
            return self.image_dir / name
        stem, dot, ext = name.rpartition(".")
        return self.image_dir / f"{stem}_aligned.{ext}"

    def image(self, i: int) -> np.ndarray:
        return read_image(self.path(i), context=self.source(i))

    def source(self, i: int) -> str:
        return f"{LABEL_FILE.name} line {self.lines[self.index(i)]}"
