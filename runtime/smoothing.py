"""Per-track smoothing of class probabilities over time: exponential moving average or sliding window.

State is kept per track id and dropped with :meth:`Smoother.drop` when a track dies, so memory stays flat over
long streams.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Iterable

import numpy as np

from .errors import ConfigError


class Smoother(ABC):
    """Smooths a probability vector per track; subclasses keep each track's state in ``_state[track_id]``."""

    spec: str
    _state: dict[int, Any]

    @abstractmethod
    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        """Add this frame's probabilities for ``track_id`` and return the smoothed vector."""

    def drop(self, track_ids: Iterable[int]) -> None:
        """Forget the state of tracks that ended."""
        for t in track_ids:
            self._state.pop(t, None)

    def __len__(self) -> int:
        """Number of tracks with state."""
        return len(self._state)


class EmaSmoother(Smoother):
    """``s_t = alpha * p_t + (1 - alpha) * s_{t-1}``; the first frame of a track is taken as is.

    Args:
        alpha: Weight of the newest frame, in (0, 1]; 1 means no smoothing, small values smooth more.
    """

    def __init__(self, alpha: float) -> None:
        if not 0 < alpha <= 1:
            raise ConfigError(f"EMA alpha must be in (0, 1] (weight of the newest frame), got {alpha!r}")
        self.alpha = float(alpha)
        self.spec = f"ema:{alpha:g}"
        self._state: dict[int, np.ndarray] = {}

    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs, np.float64)
        prev = self._state.get(track_id)
        s = p.copy() if prev is None else self.alpha * p + (1.0 - self.alpha) * prev
        self._state[track_id] = s
        return s.copy()


class WindowSmoother(Smoother):
    """Mean of the last ``size`` frames of a track (fewer at the start of a track).

    Args:
        size: Window length in frames (>= 1).
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or size < 1:
            raise ConfigError(f"window size must be an integer >= 1 (frames), got {size!r}")
        self.size = size
        self.spec = f"window:{size}"
        self._state: dict[int, deque[np.ndarray]] = {}

    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        window = self._state.setdefault(track_id, deque(maxlen=self.size))
        window.append(np.asarray(probs, np.float64))
        return np.mean(window, axis=0)


def parse_smoothing(spec: str | Smoother | None) -> Smoother | None:
    """Build a smoother from ``"ema:ALPHA"``, ``"window:N"``, ``"none"``/``None`` (or pass one through)."""
    if spec is None or isinstance(spec, Smoother):
        return spec
    text = str(spec).strip().lower()
    if text in ("", "none", "off"):
        return None
    kind, _, value = text.partition(":")
    try:
        if kind == "ema":
            return EmaSmoother(float(value) if value else 0.5)
        if kind == "window":
            return WindowSmoother(int(value) if value else 5)
    except ValueError:
        pass
    raise ConfigError(
        f"unknown smoothing {spec!r}; use 'ema:ALPHA' (e.g. ema:0.5, ALPHA in (0, 1]), "
        "'window:N' (e.g. window:5) or 'none'"
    )
