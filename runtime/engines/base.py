"""The one interface every backend implements, so a pipeline never knows which backend runs it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Engine(Protocol):
    """An inference engine: named numpy inputs in, named numpy outputs out, batch dimension first."""

    backend: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; every array's first dimension is the batch."""
        ...

    def describe(self) -> dict[str, object]:
        """What actually loaded: backend, providers/device, precision, input shapes."""
        ...
