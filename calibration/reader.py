"""ONNX Runtime ``CalibrationDataReader`` over an occluded calibration set."""
from __future__ import annotations

from typing import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from runtime.errors import ConfigError


class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds ``{input_name: batch}`` dicts from an array of preprocessed inputs; ``rewind()`` starts over.

    Args:
        inputs: ``(N, ...)`` float32 model inputs (e.g. ``OccludedSet.inputs``).
        input_name: The model's input name.
        batch_size: Samples per ``get_next()``.
    """

    def __init__(self, inputs: np.ndarray, input_name: str, batch_size: int = 32) -> None:
        if inputs.ndim < 2 or inputs.shape[0] == 0:
            raise ConfigError(f"calibration inputs must be a non-empty batch, got shape {inputs.shape}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self.input_name = input_name
        self.batch_size = int(batch_size)
        self._it: Iterator[dict[str, np.ndarray]] = iter(())
        self.rewind()

    def __len__(self) -> int:
        return -(-self.inputs.shape[0] // self.batch_size)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = ({self.input_name: self.inputs[i:i + self.batch_size]}
                    for i in range(0, self.inputs.shape[0], self.batch_size))
