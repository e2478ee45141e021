"""AffectNet (manually annotated lists ``training.csv`` / ``validation.csv``).

Columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
valence, arousal``. ``expression``: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger,
7 Contempt (AFFECTNET8 indices), 8 None, 9 Uncertain, 10 No-Face (rows with 8..10 are left out).
Images (``subDirectory_filePath``) are relative to ``root`` and decoded on access, then cropped by the
face box (grown by ``margin``, clipped to the image).

Splits: ``path`` may be the folder holding ``training.csv`` and ``validation.csv`` (``train`` reads
``training.csv``; ``val`` and ``test`` read ``validation.csv``, AffectNet's test set being private; ``all``
reads both), or one CSV file, which is read whole; a file named ``training.csv`` / ``validation.csv``
refuses a split it does not hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import ConfigError, DatasetError

from ..base import LabelArrayDataset, check_split
from ..labels import AFFECTNET8
from ._io import parse_int, read_csv, read_image, require_dir

COLUMNS: tuple[str, ...] = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "expression",
    "valence",
    "arousal",
)
DROPPED_CODES: dict[int, str] = {8: "None", 9: "Uncertain", 10: "No-Face"}
FILE_SPLITS: dict[str, tuple[str, ...]] = {"training.csv": ("train",), "validation.csv": ("val", "test")}


def _csv_files(path: Path, split: str) -> list[Path]:
    if path.is_dir():
        names = [n for n, splits in FILE_SPLITS.items() if split == "all" or split in splits]
        files = [path / n for n in names]
        for f in files:
            if not f.is_file():
                raise DatasetError(
                    f"AffectNet list {f} does not exist; pass the folder holding training.csv "
                    f"and validation.csv, or one CSV file"
                )
        return files
    if not path.is_file():
        raise DatasetError(f"AffectNet list {path} does not exist; pass training.csv, validation.csv or their folder")
    allowed = FILE_SPLITS.get(path.name)
    if allowed is not None and split not in allowed + ("all",):
        raise ConfigError(
            f"{path.name} holds the {'/'.join(allowed)} split, not {split!r}; pass the matching "
            f"file, its folder, or split='all'"
        )
    return [path]


class AffectNet(LabelArrayDataset):
    """AffectNet faces cropped by their annotated box, AFFECTNET8 labels, valence and arousal.

    Args:
        path: A list CSV or the folder holding ``training.csv`` and ``validation.csv``.
        root: Image folder that ``subDirectory_filePath`` is relative to (``Manually_Annotated_Images``).
        split: ``train``, ``val``, ``test`` or ``all`` (see the module docstring).
        margin: Grow the face box by this fraction of its size on each side before cropping.
    """

    labels = AFFECTNET8

    def __init__(self, path: str | Path, root: str | Path, split: str = "train", margin: float = 0.0):
        check_split(split, dataset="AffectNet")
        if margin < 0:
            raise ConfigError(f"margin={margin}; expected >= 0")
        self.root = require_dir(root, "AffectNet image root", "pass root=<folder of Manually_Annotated_Images>")
        self.split, self.margin = split, margin
        files, rel, boxes, labels, va, where = [], [], [], [], [], []
        for file in _csv_files(Path(path).expanduser(), split):
            columns, rows = read_csv(file, COLUMNS)
            c = [columns[name] for name in COLUMNS]
            for line, fields in rows:
                at = f"{file.name} line {line}"
                code = parse_int(fields[c[5]], at, "'expression'")
                if code in DROPPED_CODES:
                    continue
                if not 0 <= code < len(AFFECTNET8):
                    raise DatasetError(
                        f"{at}: 'expression' is {code}, expected 0..10 (0..7 = "
                        f"{', '.join(AFFECTNET8)}; 8..10 = None/Uncertain/No-Face, left out)"
                    )
                box = [parse_int(fields[c[k]], at, f"'{COLUMNS[k]}'") for k in range(1, 5)]
                if box[2] <= 0 or box[3] <= 0:
                    raise DatasetError(f"{at}: face box {box} has a non-positive width or height")
                try:
                    va.append((float(fields[c[6]]), float(fields[c[7]])))
                except ValueError:
                    raise DatasetError(
                        f"{at}: valence/arousal {fields[c[6]]!r}/{fields[c[7]]!r} are not numbers"
                    ) from None
                name = fields[c[0]].strip()
                if not name:
                    raise DatasetError(f"{at}: empty 'subDirectory_filePath'")
                rel.append(name)
                boxes.append(box)
                labels.append(code)
                where.append((len(files), line))
            files.append(file)
        self.files = files
        self.rel = rel
        self.boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        self._labels = np.asarray(labels, dtype=np.int64)
        self.valence_arousal_values = np.asarray(va, dtype=np.float32).reshape(-1, 2)
        self.where = where

    def __len__(self) -> int:
        return len(self.rel)

    def path(self, i: int) -> Path:
        """Image file of sample ``i``."""
        return self.root / self.rel[self.index(i)]

    def face_box(self, i: int) -> tuple[int, int, int, int]:
        x, y, w, h = (int(v) for v in self.boxes[self.index(i)])
        return x, y, w, h

    def image(self, i: int) -> np.ndarray:
        i = self.index(i)
        full = read_image(self.path(i), context=self.source(i))
        x, y, w, h = self.face_box(i)
        mx, my = int(round(self.margin * w)), int(round(self.margin * h))
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(full.shape[1], x + w + mx), min(full.shape[0], y + h + my)
        if x1 <= x0 or y1 <= y0:
            raise DatasetError(
                f"{self.source(i)}: face box (x={x}, y={y}, w={w}, h={h}) lies outside the "
                f"{full.shape[1]}x{full.shape[0]} image {self.path(i)}"
            )
        return np.ascontiguousarray(full[y0:y1, x0:x1])

    def valence_arousal(self, i: int) -> tuple[float, float]:
        """Annotated ``(valence, arousal)`` of sample ``i`` (AffectNet uses -2 for "not annotated")."""
        v, a = self.valence_arousal_values[self.index(i)]
        return float(v), float(a)

    def source(self, i: int) -> str:
        k, line = self.where[self.index(i)]
        return f"{self.files[k].name} line {line}"
