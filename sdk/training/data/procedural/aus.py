"""FACS action units and the prototype expressions that drive the procedural faces.

An AU state is a float array of shape (len(AUS), 2): intensity 0..1 per AU on the face's left and
right side (left = image left). Prototypes are symmetric except contempt (12 + 14 on one side).
"""
from __future__ import annotations

from typing import Final

import numpy as np

AUS: Final = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 20, 23, 26)
AU_INDEX: Final = {au: k for k, au in enumerate(AUS)}

FER7: Final = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER7_CONTEMPT: Final = FER7 + ("contempt",)

#: Prototype AU sets (EMFACS-style, /work/shared/PROCEDURAL_FACES.md). Disgust has two variants.
PROTOTYPES: Final[dict[str, tuple[tuple[int, ...], ...]]] = {
    "neutral": ((),),
    "happy": ((6, 12),),
    "sad": ((1, 4, 15),),
    "surprise": ((1, 2, 5, 26),),
    "fear": ((1, 2, 4, 5, 7, 20, 26),),
    "angry": ((4, 5, 7, 23),),
    "disgust": ((9, 15, 16), (9, 10)),
    "contempt": ((12, 14),),
}

#: Scale of each AU within a prototype (fear opens the mouth less than surprise does).
_WITHIN: Final[dict[tuple[str, int], float]] = {("fear", 26): 0.55, ("fear", 4): 0.7, ("angry", 5): 0.6}


def zero_aus() -> np.ndarray:
    """An all-zero AU state (neutral)."""
    return np.zeros((len(AUS), 2), np.float32)


def set_au(state: np.ndarray, au: int, value: float, side: str = "both") -> np.ndarray:
    """Sets AU ``au`` to ``value`` on ``side`` ('left', 'right' or 'both') in place; returns ``state``."""
    cols = {"left": [0], "right": [1], "both": [0, 1]}[side]
    state[AU_INDEX[au], cols] = value
    return state


def sample_aus(rng: np.random.Generator, label: str) -> np.ndarray:
    """Samples the AU state of one face showing ``label``.

    One global intensity per face (20 % weak: 0.1-0.35, else 0.35-1.0), jittered per AU; with
    probability 0.3 one unrelated AU is added at trace level (0-0.3), so some samples are ambiguous.
    """
    variants = PROTOTYPES[label]
    aus = variants[int(rng.integers(len(variants)))]
    state = zero_aus()
    g = rng.uniform(0.1, 0.35) if rng.random() < 0.2 else rng.uniform(0.35, 1.0)
    side = "left" if rng.random() < 0.5 else "right"
    for au in aus:
        v = min(1.0, g * rng.uniform(0.75, 1.2) * _WITHIN.get((label, au), 1.0))
        set_au(state, au, v, side if label == "contempt" else "both")
    if rng.random() < 0.3:
        extra = AUS[int(rng.integers(len(AUS)))]
        k = AU_INDEX[extra]
        state[k] = np.maximum(state[k], rng.uniform(0.0, 0.3))
    return state
