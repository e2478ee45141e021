"""FER+ (``fer2013new.csv``): ten crowd votes per FER2013 face, joined with ``fer2013.csv`` by row order.

Row ``k`` of ``fer2013new.csv`` (columns ``Usage, Image name, neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF``) describes row ``k`` of ``fer2013.csv``; the two files must have the
same number of rows and the same ``Usage`` on every row (checked, so a mismatched pair is refused).

Label policy:

* Rows with an empty ``Image name`` are left out (FER+ removed those images).
* The hard label is the class with the most votes over all ten columns. A row whose top class is
  ``unknown`` or ``NF`` (not a face) is left out.
* Ties: with ``ties="first"`` (default) the first tied emotion in FER+ column order wins (what
  ``numpy.argmax`` does), unless ``unknown`` or ``NF`` is among the tied columns, in which case the row is
  left out; with ``ties="drop"`` every tied row is left out.
* ``min_votes_fraction`` (default 0) leaves out rows whose top class has at most that fraction of the
  votes (0.5 gives FER+'s own "majority" mode: a strict majority is required).
* The soft label is the vote distribution over the eight emotions (unknown/NF votes removed),
  normalised to sum to 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import ConfigError, DatasetError

from ..base import FaceDataset
from ..labels import FERPLUS8
from ._io import parse_int, read_csv, require_file
from .fer2013 import USAGE_TO_SPLIT, read_fer2013, select_split

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
TIES: tuple[str, ...] = ("first", "drop")


def read_votes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Parse ``fer2013new.csv``.

    Returns:
        ``(votes (N, 10) int64, has_image (N,) bool, split (N,), names, line (N,))`` in file order.
    """
    columns, rows = read_csv(path, ("Usage", "Image name") + VOTE_COLUMNS)
    vote_idx = [columns[c] for c in VOTE_COLUMNS]
    votes, has_image, splits, names, lines = [], [], [], [], []
    for line, fields in rows:
        where = f"{path.name} line {line}"
        usage = fields[columns["Usage"]].strip()
        if usage not in USAGE_TO_SPLIT:
            raise DatasetError(f"{where}: 'Usage' is {usage!r}, expected one of {', '.join(USAGE_TO_SPLIT)}")
        name = fields[columns["Image name"]].strip()
        row = [parse_int(fields[k], where, f"vote count {c!r}") for k, c in zip(vote_idx, VOTE_COLUMNS)]
        if min(row) < 0:
            raise DatasetError(f"{where}: negative vote count {min(row)}; vote counts must be >= 0")
        if name and sum(row) == 0:
            raise DatasetError(f"{where}: image {name!r} has no votes at all; expected vote counts that sum > 0")
        votes.append(row)
        has_image.append(bool(name))
        splits.append(USAGE_TO_SPLIT[usage])
        names.append(name)
        lines.append(line)
    if not votes:
        raise DatasetError(f"{path.name} ({path}) has a header but no rows")
    return (
        np.asarray(votes, dtype=np.int64),
        np.asarray(has_image),
        np.asarray(splits),
        names,
        np.asarray(lines, dtype=np.int64),
    )


def majority(votes: np.ndarray, ties: str = "first", min_votes_fraction: float = 0.0) -> np.ndarray:
    """Hard labels (FERPLUS8 indices) from ``(N, 10)`` votes; -1 for rows the policy leaves out."""
    if ties not in TIES:
        raise ConfigError(f"ties={ties!r}; use one of {', '.join(TIES)}")
    if not 0.0 <= min_votes_fraction < 1.0:
        raise ConfigError(f"min_votes_fraction={min_votes_fraction}; expected a value in [0, 1)")
    top = votes.max(axis=1)
    is_top = votes == top[:, None]
    label = np.argmax(votes, axis=1)
    n_emotions = len(FERPLUS8)
    bad = is_top[:, n_emotions:].any(axis=1) | (top <= 0)
    if ties == "drop":
        bad |= is_top.sum(axis=1) > 1
    bad |= top <= min_votes_fraction * votes.sum(axis=1)
    return np.where(bad, -1, label).astype(np.int64)


class FERPlus(FaceDataset):
    """FER+ faces: FER2013's 48x48 gray pixels with FER+ majority labels (FERPLUS8) and vote distributions.

    Args:
        path: ``fer2013new.csv``.
        pixels: ``fer2013.csv`` (default: ``fer2013.csv`` in the same folder as ``path``).
        split: ``train``, ``val``, ``test`` or ``all`` (from the Usage column).
        ties: ``"first"`` or ``"drop"`` (see the module docstring).
        min_votes_fraction: Leave out rows whose top class has at most this fraction of the votes.
    """

    labels = FERPLUS8

    def __init__(
        self,
        path: str | Path,
        pixels: str | Path | None = None,
        split: str = "train",
        ties: str = "first",
        min_votes_fraction: float = 0.0,
    ):
        p = require_file(path, "FER+ label file", "pass the path of fer2013new.csv from the FERPlus repository")
        if pixels is None:
            pixels = p.with_name("fer2013.csv")
            if not pixels.is_file():
                raise DatasetError(
                    f"FER+ needs the FER2013 pixels: {pixels} does not exist; pass "
                    f"pixels=/path/fer2013.csv (the spec form is ferplus:{p},pixels=/path/fer2013.csv)"
                )
        self.table = read_fer2013(pixels)
        votes, has_image, vote_split, self.names, self.vote_line = read_votes(p)
        self.path = p
        if len(votes) != len(self.table.emotion):
            raise DatasetError(
                f"{p.name} has {len(votes)} rows but {self.table.path.name} has "
                f"{len(self.table.emotion)}; FER+ rows are matched to FER2013 rows by order, so "
                f"both files must be the original, unfiltered pair"
            )
        mismatch = np.flatnonzero(vote_split != self.table.split)
        if mismatch.size:
            k = int(mismatch[0])
            raise DatasetError(
                f"{p.name} line {int(self.vote_line[k])}: Usage is {str(vote_split[k])!r} but "
                f"{self.table.path.name} line {int(self.table.line[k])} says "
                f"{str(self.table.split[k])!r}; "
                f"the files are not the matching FER+/FER2013 pair (or are in a different order)"
            )
        self.split = split
        self.votes = votes
        self.hard = majority(votes, ties, min_votes_fraction)
        keep = np.zeros(len(votes), dtype=bool)
        keep[select_split(self.table.split, split, p)] = True
        self.rows = np.flatnonzero(keep & has_image & (self.hard >= 0))

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int) -> np.ndarray:
        return self.table.pixels[self.rows[self.index(i)]].copy()

    def label(self, i: int) -> int:
        return int(self.hard[self.rows[self.index(i)]])

    def targets(self) -> np.ndarray:
        return self.hard[self.rows].copy()

    def soft_label(self, i: int) -> np.ndarray:
        v = self.votes[self.rows[self.index(i)], : len(FERPLUS8)].astype(np.float64)
        return (v / v.sum()).astype(np.float32)

    def source(self, i: int) -> str:
        k = self.rows[self.index(i)]
        return f"{self.path.name} line {int(self.vote_line[k])} ({self.names[k]})"
