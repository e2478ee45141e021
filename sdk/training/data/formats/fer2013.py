"""FER2013 (``fer2013.csv``: columns ``emotion,pixels,Usage``; 48x48 gray faces as space-separated pixels).

``Usage`` maps to splits: ``Training`` -> ``train``, ``PublicTest`` -> ``val``, ``PrivateTest`` -> ``test``.
A file without a ``Usage`` column (Kaggle's ``train.csv``) is one split, ``all``. The whole file is parsed
up front (35,887 rows take about 3 s) and cached per file, so that FER+ and several splits share it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError, DatasetError

from ..base import FaceDataset, check_split
from ..labels import FER7
from ._io import parse_int, read_csv, require_file

SIDE = 48
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


@dataclass(frozen=True)
class Fer2013Table:
    """Every row of a ``fer2013.csv`` file, in file order.

    Attributes:
        path: The file.
        pixels: ``(N, 48, 48)`` uint8 faces.
        emotion: ``(N,)`` int64 labels (FER7 indices).
        split: ``(N,)`` split of each row (``train``/``val``/``test``, or ``all`` without a Usage column).
        line: ``(N,)`` line number of each row in the file (the header is line 1).
    """

    path: Path
    pixels: np.ndarray
    emotion: np.ndarray
    split: np.ndarray
    line: np.ndarray


def _count_values(text: str) -> tuple[str, int]:
    s = text.strip()
    if "  " in s or "\t" in s:
        s = " ".join(s.split())
    return s, (s.count(" ") + 1 if s else 0)


def _parse_pixels(path: Path, strings: list[str], lines: list[int]) -> np.ndarray:
    """Parse the validated pixel strings in one pass; on failure find the offending line."""
    try:
        flat = np.fromstring(" ".join(strings), dtype=np.int32, sep=" ")
    except ValueError:
        flat = None
    if flat is None or flat.size != len(strings) * SIDE * SIDE:
        for s, line in zip(strings, lines):
            bad = [t for t in s.split() if not (t.isascii() and t.isdigit())]
            if bad:
                raise DatasetError(f"{path.name} line {line}: 'pixels' value {bad[0]!r} is not an integer 0..255")
        raise DatasetError(f"{path.name}: 'pixels' could not be parsed")  # pragma: no cover (counted above)
    flat = flat.reshape(len(strings), SIDE * SIDE)
    out_of_range = np.flatnonzero((flat.min(axis=1) < 0) | (flat.max(axis=1) > 255))
    if out_of_range.size:
        row = int(out_of_range[0])
        value = int(flat[row][(flat[row] < 0) | (flat[row] > 255)][0])
        raise DatasetError(f"{path.name} line {lines[row]}: 'pixels' value {value} is outside 0..255")
    return flat.astype(np.uint8).reshape(-1, SIDE, SIDE)


def _read(path: Path) -> Fer2013Table:
    columns, rows = read_csv(path, ("emotion", "pixels"))
    ie, ip, iu = columns["emotion"], columns["pixels"], columns.get("Usage")
    strings: list[str] = []
    emotions: list[int] = []
    splits: list[str] = []
    lines: list[int] = []
    for line, fields in rows:
        where = f"{path.name} line {line}"
        emotion = parse_int(fields[ie], where, "'emotion'")
        if not 0 <= emotion < len(FER7):
            raise DatasetError(f"{where}: 'emotion' is {emotion}, expected 0..6 ({', '.join(FER7)})")
        s, n = _count_values(fields[ip])
        if n != SIDE * SIDE:
            raise DatasetError(f"{where}: 'pixels' has {n} values, expected {SIDE * SIDE} ({SIDE}x{SIDE})")
        if iu is None:
            splits.append("all")
        else:
            usage = fields[iu].strip()
            if usage not in USAGE_TO_SPLIT:
                raise DatasetError(f"{where}: 'Usage' is {usage!r}, expected one of {', '.join(USAGE_TO_SPLIT)}")
            splits.append(USAGE_TO_SPLIT[usage])
        strings.append(s)
        emotions.append(emotion)
        lines.append(line)
    if not strings:
        raise DatasetError(f"{path.name} ({path}) has a header but no rows")
    return Fer2013Table(path=path, pixels=_parse_pixels(path, strings, lines),
                        emotion=np.asarray(emotions, dtype=np.int64), split=np.asarray(splits),
                        line=np.asarray(lines, dtype=np.int64))


@lru_cache(maxsize=2)
def _read_cached(path: str, mtime_ns: int, size: int) -> Fer2013Table:
    return _read(Path(path))


def read_fer2013(path: str | Path) -> Fer2013Table:
    """Parse a ``fer2013.csv`` file (cached while the file is unchanged).

    Raises:
        DatasetError: missing file, missing column, wrong column count, bad emotion/Usage value, or a
            ``pixels`` field without exactly 2304 integers 0..255; the message names the line.
    """
    p = require_file(path, "FER2013 file", "download fer2013.csv (columns emotion,pixels,Usage) and pass its path")
    st = p.stat()
    return _read_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def select_split(table_split: np.ndarray, split: str, path: Path) -> np.ndarray:
    """Row indices of ``split``; ConfigError when the file has no such split (no Usage column)."""
    check_split(split, dataset=path.name)
    if split == "all":
        return np.arange(len(table_split))
    if table_split.size and table_split[0] == "all":
        raise ConfigError(f"{path.name} has no Usage column, so it has no {split!r} split; use split='all'")
    return np.flatnonzero(table_split == split)


class FER2013(FaceDataset):
    """FER2013 faces: 48x48 gray images, FER7 labels.

    Args:
        path: ``fer2013.csv``.
        split: ``train`` (Training), ``val`` (PublicTest), ``test`` (PrivateTest) or ``all``.
    """

    labels = FER7

    def __init__(self, path: str | Path, split: str = "train"):
        self.table = read_fer2013(path)
        self.split = split
        self.rows = select_split(self.table.split, split, self.table.path)

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int) -> np.ndarray:
        return self.table.pixels[self.rows[self.index(i)]].copy()

    def label(self, i: int) -> int:
        return int(self.table.emotion[self.rows[self.index(i)]])

    def targets(self) -> np.ndarray:
        return self.table.emotion[self.rows].copy()

    def source(self, i: int) -> str:
        return f"{self.table.path.name} line {int(self.table.line[self.rows[self.index(i)]])}"
