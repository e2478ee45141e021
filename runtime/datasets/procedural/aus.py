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
    The uniform draws of one face come from one ``rng.random`` call (the same numbers as drawing them one by one).
    """
    variants = PROTOTYPES[label]
    aus = variants[int(rng.integers(len(variants)))]
    u = rng.random(4 + len(aus)).tolist()
    state = np.zeros((len(AUS), 2), np.float32)
    g = 0.1 + (0.35 - 0.1) * u[1] if u[0] < 0.2 else 0.35 + (1.0 - 0.35) * u[1]  # = rng.uniform
    side = 0 if u[2] < 0.5 else 1
    for j, au in enumerate(aus):
        v = min(1.0, g * (0.75 + (1.2 - 0.75) * u[3 + j]) * _WITHIN.get((label, au), 1.0))
        if label == "contempt":
            state[AU_INDEX[au], side] = v
        else:
            state[AU_INDEX[au]] = v
    if u[-1] < 0.3:
        k = int(rng.integers(len(AUS)))
        state[k] = np.maximum(state[k], 0.3 * rng.random())
    return state
