"""CK+ (extended Cohn-Kanade): image sequences ``cohn-kanade-images/S005/001/S005_001_00000001.png`` that go
from neutral to a peak expression, and one label file per labelled sequence
``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding the code (e.g. ``   3.0000000e+00``; CKPLUS8:
0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise).

Samples: the last ``peak_frames`` frames of every labelled sequence, with its emotion, plus (when
``neutral_first``) the first frame of each labelled sequence as neutral. Sequences without a label file
are skipped. Images are full frames (about 640x490, not face crops), decoded on access in gray.

Splits are subject-wise and deterministic given ``seed``: the subjects (never the frames) are shuffled
and cut into test / val / train by ``test_fraction`` and ``val_fraction``; or, with ``folds=k``, into k
folds where ``split="test"`` is fold ``fold`` and ``split="train"`` the others (subject-independent k-fold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import ConfigError, DatasetError
from runtime.frames import IMAGE_SUFFIXES

from ..base import LabelArrayDataset, check_split
from ..labels import CKPLUS8
from ._io import parse_int, read_image, require_dir


def read_emotion_file(path: Path) -> int:
    """The CKPLUS8 code stored in one ``*_emotion.txt`` file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"CK+ label file {path} cannot be read ({e})") from None
    if not text or len(text.split()) != 1:
        raise DatasetError(f"CK+ label file {path} holds {text[:40]!r}; expected one number such as '3.0000000e+00'")
    code = parse_int(text, f"CK+ label file {path}", "the emotion code")
    if not 0 <= code < len(CKPLUS8):
        raise DatasetError(
            f"CK+ label file {path}: emotion code {code} is not in 0..7 "
            f"({', '.join(f'{k}={n}' for k, n in enumerate(CKPLUS8))})"
        )
    return code


def subject_split(
    subjects: list[str],
    split: str,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    folds: int | None = None,
    fold: int = 0,
) -> set[str]:
    """The subjects of ``split`` (deterministic given ``seed``; subjects are never shared between splits)."""
    order = [subjects[k] for k in np.random.default_rng(seed).permutation(len(subjects))]
    if split == "all":
        return set(subjects)
    if folds is not None:
        if not 2 <= folds <= len(subjects) or not 0 <= fold < folds:
            raise ConfigError(
                f"folds={folds}, fold={fold}: need 2 <= folds <= {len(subjects)} subjects and 0 <= fold < folds"
            )
        check_split(split, ("train", "test", "all"), "CK+ with folds (use train/test)")
        parts = np.array_split(np.asarray(order, dtype=object), folds)
        test = set(parts[fold].tolist())
        return test if split == "test" else set(subjects) - test
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction={val_fraction}, test_fraction={test_fraction}: each must be in [0, 1) and their sum below 1"
        )
    n = len(order)
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    if n_test + n_val >= n:
        raise ConfigError(
            f"CK+ has {n} subjects, too few for {n_test} test + {n_val} val subjects and a "
            f"train split; lower the fractions"
        )
    cut = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return set(cut[split])


class CKPlus(LabelArrayDataset):
    """CK+ peak and neutral frames with CKPLUS8 labels and subject ids.

    Args:
        root: Folder holding ``cohn-kanade-images/`` and ``Emotion/``.
        split: ``train``, ``val``, ``test`` or ``all`` (subject-wise).
        peak_frames: Frames taken from the end of each labelled sequence (default 3).
        neutral_first: Add the first frame of each labelled sequence as neutral (default True).
        seed: Seed of the subject shuffle.
        val_fraction, test_fraction: Fractions of subjects in val and test (default 0.1 each).
        folds, fold: Subject-wise k-fold instead of fractions (``split`` train/test).
        gray: Decode images in gray (default) or BGR.
    """

    labels = CKPLUS8

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        peak_frames: int = 3,
        neutral_first: bool = True,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        folds: int | None = None,
        fold: int = 0,
        gray: bool = True,
    ):
        self.root = require_dir(root, "CK+ root folder", "pass the folder holding cohn-kanade-images/ and Emotion/")
        images = require_dir(self.root / "cohn-kanade-images", "CK+ image folder")
        emotions = require_dir(self.root / "Emotion", "CK+ label folder")
        check_split(split, dataset="CK+")
        if peak_frames < 1:
            raise ConfigError(f"peak_frames={peak_frames}; expected at least 1")
        self.split, self.gray = split, gray
        samples: list[tuple[Path, int, str]] = []
        for subject_dir in sorted(p for p in emotions.iterdir() if p.is_dir()):
            for seq_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
                label_files = sorted(seq_dir.glob("*_emotion.txt"))
                if not label_files:
                    continue
                if len(label_files) > 1:
                    raise DatasetError(f"CK+ sequence {seq_dir} has {len(label_files)} label files; expected one")
                code = read_emotion_file(label_files[0])
                frame_dir = images / subject_dir.name / seq_dir.name
                frames = (
                    sorted(p for p in frame_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
                    if frame_dir.is_dir()
                    else []
                )
                if not frames:
                    raise DatasetError(
                        f"CK+ label file {label_files[0]} has no image sequence: {frame_dir} is "
                        f"missing or holds no images"
                    )
                first_peak = max(1 if neutral_first else 0, len(frames) - peak_frames)
                if neutral_first:
                    samples.append((frames[0], 0, subject_dir.name))
                samples.extend((f, code, subject_dir.name) for f in frames[first_peak:])
        if not samples:
            raise DatasetError(f"CK+ root {self.root} holds no labelled sequence (no Emotion/S*/*/*_emotion.txt)")
        subjects = sorted({s for _, _, s in samples})
        chosen = subject_split(subjects, split, seed, val_fraction, test_fraction, folds, fold)
        self.samples = [s for s in samples if s[2] in chosen]
        self._labels = np.asarray([s[1] for s in self.samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def path(self, i: int) -> Path:
        """Image file of sample ``i``."""
        return self.samples[self.index(i)][0]

    def image(self, i: int) -> np.ndarray:
        return read_image(self.path(i), gray=self.gray, context="CK+")

    def subject(self, i: int) -> str:
        return self.samples[self.index(i)][2]

    def source(self, i: int) -> str:
        return str(self.path(i))
