"""FER2013 (``fer2013.csv``: columns ``emotion,pixels,Usage``; 48x48 gray faces as space-separated pixels).

``Usage`` maps to splits: ``Training`` -> ``train``, ``PublicTest`` -> ``val``, ``PrivateTest`` -> ``test``.
A file without a ``Usage`` column (Kaggle's ``train.csv``) is one split, ``all``. The whole file is parsed
up front (35,887 rows take a few seconds) and cached per file, so that FER+ and several splits share it.
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


CHUNK_ROWS = 2048


def _parse_row(path: Path, text: str, line: int) -> np.ndarray:
    """Parse one ``pixels`` field the slow way, raising the precise error of a bad one."""
    tokens = text.split()
    bad = [t for t in tokens if not (t.isascii() and t.isdigit())]
    if bad:
        raise DatasetError(f"{path.name} line {line}: 'pixels' value {bad[0]!r} is not an integer 0..255")
    if len(tokens) != SIDE * SIDE:
        raise DatasetError(
            f"{path.name} line {line}: 'pixels' has {len(tokens)} values, expected {SIDE * SIDE} ({SIDE}x{SIDE})"
        )
    values = np.array([int(t) for t in tokens], dtype=np.int64)
    if values.max() > 255:
        raise DatasetError(f"{path.name} line {line}: 'pixels' value {int(values[values > 255][0])} is outside 0..255")
    return values.astype(np.uint8).reshape(SIDE, SIDE)


def _parse_chunk(texts: list[str]) -> np.ndarray | None:
    """Parse rows of exactly 2304 single-space-separated integers 0..255 (vectorised); None if a row is not so."""
    buf = np.frombuffer(" ".join(texts).encode("ascii", "replace"), dtype=np.uint8)
    digits = buf - np.uint8(48)
    space = buf == 32
    if not np.all((digits <= 9) | space):
        return None
    starts = np.flatnonzero(np.concatenate(([True], space))).astype(np.int32)  # a token starts after a space
    if starts.size != len(texts) * SIDE * SIDE:
        return None
    lengths = np.diff(np.append(starts, np.int32(buf.size + 1))) - 1
    if lengths.min() < 1 or lengths.max() > 3:
        return None
    padded = np.concatenate((digits, np.zeros(2, np.uint8))).astype(np.int16)
    d0, d1, d2 = padded[starts], padded[starts + 1], padded[starts + 2]
    value = np.where(lengths == 1, d0, np.where(lengths == 2, d0 * 10 + d1, d0 * 100 + d1 * 10 + d2))
    if value.max() > 255:
        return None
    return value.astype(np.uint8).reshape(len(texts), SIDE, SIDE)


def _parse_pixels(path: Path, strings: list[str], lines: list[int]) -> np.ndarray:
    """Parse all ``pixels`` fields, vectorised by chunks; on a bad chunk find the offending line."""
    out = np.empty((len(strings), SIDE, SIDE), dtype=np.uint8)
    for lo in range(0, len(strings), CHUNK_ROWS):
        chunk = [" ".join(t.split()) if ("  " in t or "\t" in t) else t.strip() for t in strings[lo : lo + CHUNK_ROWS]]
        parsed = _parse_chunk(chunk)
        if parsed is None:  # some row is unusual (leading zeros) or bad: go row by row
            rows = [_parse_chunk([text]) for text in chunk]
            parsed = np.stack(
                [
                    r[0] if r is not None else _parse_row(path, text, lines[lo + k])
                    for k, (r, text) in enumerate(zip(rows, chunk))
                ]
            )
        out[lo : lo + len(chunk)] = parsed
    return out


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
        if iu is None:
            splits.append("all")
        else:
            usage = fields[iu].strip()
            if usage not in USAGE_TO_SPLIT:
                raise DatasetError(f"{where}: 'Usage' is {usage!r}, expected one of {', '.join(USAGE_TO_SPLIT)}")
            splits.append(USAGE_TO_SPLIT[usage])
        strings.append(fields[ip])
        emotions.append(emotion)
        lines.append(line)
    if not strings:
        raise DatasetError(f"{path.name} ({path}) has a header but no rows")
    return Fer2013Table(
        path=path,
        pixels=_parse_pixels(path, strings, lines),
        emotion=np.asarray(emotions, dtype=np.int64),
        split=np.asarray(splits),
        line=np.asarray(lines, dtype=np.int64),
    )


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
