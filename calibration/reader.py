"""ONNX Runtime ``CalibrationDataReader`` over an occluded calibration set."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from runtime.errors import ConfigError


class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds ``{input_name: batch}`` dicts from an array of preprocessed inputs; ``rewind()`` starts over.

    Every batch has the same size (ONNX Runtime's histogram calibrators, entropy and percentile, stack the batches
    and fail on a short last one): when ``N`` is not a multiple of ``batch_size`` the last batch is the last
    ``batch_size`` samples, so it overlaps the one before it (each sample is seen, a few twice).

    Args:
        inputs: ``(N, ...)`` float32 model inputs (e.g. ``OccludedSet.inputs``).
        input_name: The model's input name.
        batch_size: Samples per ``get_next()``.
        extra: More inputs of a multi-input model (e.g. an inpainter's ``mask``), ``(N, ...)`` each.
    """

    def __init__(
        self, inputs: np.ndarray, input_name: str, batch_size: int = 32, extra: dict[str, np.ndarray] | None = None
    ) -> None:
        if inputs.ndim < 2 or inputs.shape[0] == 0:
            raise ConfigError(f"calibration inputs must be a non-empty batch, got shape {inputs.shape}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self.input_name = input_name
        self.extra = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in (extra or {}).items()}
        if any(len(v) != len(self.inputs) for v in self.extra.values()):
            raise ConfigError("every calibration input needs one row per sample")
        self.batch_size = int(min(batch_size, inputs.shape[0]))
        self._it: Iterator[dict[str, np.ndarray]] = iter(())
        self.rewind()

    def __len__(self) -> int:
        return -(-self.inputs.shape[0] // self.batch_size)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        n, b = self.inputs.shape[0], self.batch_size
        self._it = (
            {
                name: x[min(i, n - b) : min(i, n - b) + b]
                for name, x in {self.input_name: self.inputs, **self.extra}.items()
            }
            for i in range(0, n, b)
        )
