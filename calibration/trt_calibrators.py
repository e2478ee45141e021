"""TensorRT 10 INT8 calibrators (IInt8EntropyCalibrator2, IInt8MinMaxCalibrator) over an occluded calibration set.

TensorRT is imported when a calibrator is made, never at import time. The calibrator feeds batches through the
runtime's CUDA layer (:class:`runtime.engines.cuda_memory.CudaMemory`: cuda-python or pycuda, whichever imports;
a pinned staging buffer, one device buffer, a copy per batch) and reads/writes the native cache file, so a second
build (or a Jetson given the cache written by :mod:`calibration.trt_cache`) skips calibration. TensorRT 11 removed
implicit-quantisation calibrators: there, INT8 comes from explicit Q/DQ ONNX (see :mod:`export.tensorrt`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError, EngineError

CALIBRATOR_CLASSES = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


class _Feeder:
    """The TensorRT-independent half of a calibrator: batching, the device buffer and the cache file."""

    def __init__(self, inputs: np.ndarray, batch_size: int, cache_path: str | os.PathLike[str] | None) -> None:
        if inputs.ndim < 2 or len(inputs) == 0:
            raise ConfigError(f"calibration inputs must be a non-empty batch, got shape {inputs.shape}")
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self.batch_size = int(min(batch_size, len(inputs)))
        self.cache_path = Path(cache_path) if cache_path else None
        self.index = 0
        self.memory: Any = None
        self.host: np.ndarray | None = None
        self.device = 0

    def next_pointer(self) -> int | None:
        """Device pointer of the next full batch, or None when the data are used up."""
        if self.index + self.batch_size > len(self.inputs):
            return None
        batch = self.inputs[self.index : self.index + self.batch_size]
        self.index += self.batch_size
        if self.memory is None:
            from runtime.engines.cuda_memory import CudaMemory

            self.memory = CudaMemory()
            self.host = self.memory.pinned(batch.shape, batch.dtype)
            self.device = self.memory.device(batch.nbytes)
        self.host[...] = batch
        self.memory.h2d(self.device, self.host)
        self.memory.synchronize()  # TensorRT reads the buffer on its own stream
        return self.device

    def read_cache(self) -> bytes | None:
        if self.cache_path is not None and self.cache_path.is_file():
            return self.cache_path.read_bytes()
        return None

    def write_cache(self, cache: Any) -> None:
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_bytes(bytes(cache))

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
            self.memory = None


def make_trt_calibrator(
    method: str, inputs: np.ndarray, *, batch_size: int = 16, cache_path: str | os.PathLike[str] | None = None
) -> Any:
    """A TensorRT 10 calibrator of ``method`` (``entropy`` or ``minmax``) over ``inputs`` (N, C, H, W float32).

    Raises:
        ConfigError: unknown method. EngineError: TensorRT (or its calibrator class) is missing.
    """
    if method not in CALIBRATOR_CLASSES:
        raise ConfigError(
            f"TensorRT calibrates with {', '.join(CALIBRATOR_CLASSES)}, not {method!r}; use "
            "--calib-method entropy or minmax for TensorRT engines"
        )
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError("TensorRT is not installed; run `pip install ofer[tensorrt]` on the target device") from None
    base = getattr(trt, CALIBRATOR_CLASSES[method], None)
    if base is None:
        raise EngineError(
            f"TensorRT {trt.__version__} has no {CALIBRATOR_CLASSES[method]} (removed in TensorRT 11); "
            "build INT8 from the bundle's explicit Q/DQ ONNX (classifier-int8-trt) instead"
        )

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.feeder = _Feeder(inputs, batch_size, cache_path)

        def get_batch_size(self) -> int:
            return self.feeder.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            ptr = self.feeder.next_pointer()
            return None if ptr is None else [ptr]

        def read_calibration_cache(self) -> bytes | None:
            return self.feeder.read_cache()

        def write_calibration_cache(self, cache: Any) -> None:
            self.feeder.write_cache(cache)

    return Calibrator()
