"""Native TensorRT engine (``.engine`` / ``.plan`` files built on the device by ``ofer build-engines``).

Written against the TensorRT 10 Python API: ``trt.Runtime(logger).deserialize_cuda_engine``, the named-tensor I/O
(``engine.num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_shape``, ``get_tensor_dtype``,
``get_tensor_profile_shape``), ``context.set_input_shape``, ``context.set_tensor_address`` and
``context.execute_async_v3(stream)``. Memory: pinned host buffers and device buffers sized for the profile's
largest batch, one CUDA stream per engine (:mod:`runtime.engines.cuda_memory`). Larger batches are split.

The compatibility check (:func:`check_built_with`), the dtype table, the profile/batch checks and the batch
split are plain Python and tested without a GPU; ``tensorrt`` and the CUDA binding are imported lazily.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import EngineError, InputError

REBUILD = "run `ofer build-engines BUNDLE` on this device to build engines for it"
INSTALL = "TensorRT is not installed; install it on the target device (`pip install ofer[tensorrt]`; Jetson: JetPack)"

#: TensorRT ``DataType`` names -> numpy dtypes (BF16/FP8/INT4 have no numpy type: such engines are refused).
TRT_DTYPES: dict[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
}


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """numpy dtype of a TensorRT ``DataType`` (or its name)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    if name not in TRT_DTYPES:
        raise EngineError(
            f"engine tensor type {name} has no numpy equivalent; rebuild the engine with FP32/FP16 "
            "inputs and outputs (`ofer build-engines BUNDLE`)"
        )
    return TRT_DTYPES[name]


def trt_version_tuple(version: str) -> tuple[int, int, int]:
    """``"10.3.0.26"`` -> ``(10, 3, 0)``."""
    parts = [int(p) for p in re.findall(r"\d+", str(version))[:3]]
    if not parts:
        raise EngineError(f"cannot read a TensorRT version from {version!r}")
    return tuple((parts + [0, 0])[:3])  # type: ignore[return-value]


def check_built_with(
    built_with: Mapping[str, Any], *, trt_version: str, gpu: Mapping[str, str], engine: str = "engine"
) -> None:
    """Refuse an engine built for another GPU or another TensorRT version.

    A serialized engine only runs on the TensorRT version (major.minor.patch) and GPU compute capability it was
    built with. A GPU of the same compute capability under another name (another board of the same architecture)
    is accepted.

    Args:
        built_with: The engine's manifest ``built_with`` (``tensorrt``, ``compute_capability``, ``gpu``).
        trt_version: This device's TensorRT version.
        gpu: This device's ``{"name", "compute_capability"}``.
        engine: The engine's name, for the message.

    Raises:
        EngineError: What differs, and to run ``ofer build-engines BUNDLE`` on this device.
    """
    built_trt, built_cc = built_with.get("tensorrt"), built_with.get("compute_capability")
    if not built_trt or not built_cc:
        raise EngineError(
            f"{engine} has no TensorRT build record (built_with.tensorrt and .compute_capability); {REBUILD}"
        )
    if trt_version_tuple(str(built_trt)) != trt_version_tuple(trt_version):
        raise EngineError(
            f"{engine} was built with TensorRT {built_trt}, this device has TensorRT {trt_version}; {REBUILD}"
        )
    if str(built_cc) != str(gpu.get("compute_capability")):
        was = f" ({built_with['gpu']})" if built_with.get("gpu") else ""
        raise EngineError(
            f"{engine} was built for a GPU of compute capability {built_cc}{was}, this GPU is "
            f"{gpu.get('name', '?')} ({gpu.get('compute_capability')}); {REBUILD}"
        )


def check_input(name: str, shape: Sequence[int], profile: tuple[Sequence[int], Sequence[int], Sequence[int]]) -> None:
    """Check a batch's shape against an input's optimisation profile (any batch >= 1; other dims in range).

    The batch dimension is not limited by the profile's maximum (:func:`split_batch` splits large batches).
    """
    lo, _, hi = profile
    if len(shape) != len(lo):
        raise InputError(f"input {name!r} expects {len(lo)} dimensions {list(hi)}, got shape {list(shape)}")
    if shape[0] < 1:
        raise InputError(f"input {name!r} got an empty batch")
    for axis, (s, a, b) in enumerate(zip(shape[1:], lo[1:], hi[1:]), start=1):
        if not a <= s <= b:
            want = a if a == b else f"{a}..{b}"
            raise InputError(
                f"input {name!r} dimension {axis} must be {want} (the engine's optimisation profile), "
                f"got shape {list(shape)}"
            )


def split_batch(n: int, max_batch: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of at most ``max_batch`` covering ``n`` items."""
    if max_batch < 1:
        raise EngineError(f"the engine's optimisation profile allows a batch of {max_batch}; {REBUILD}")
    return [(i, min(i + max_batch, n)) for i in range(0, n, max_batch)]


def tensorrt_version() -> str:
    """The installed TensorRT version (EngineError with the install hint when missing)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(INSTALL) from None
    return str(trt.__version__)


class TensorRTEngine:
    """A serialized TensorRT engine, run with execute_async_v3 on its own CUDA stream.

    Args:
        path: The engine file (names it in messages; read once when ``data`` is not given).
        data: The plan's bytes, already checked (a bundle's :meth:`~runtime.bundle.Bundle.read_engine`); they are
            deserialized as they are and the file is not read again.
        built_with: The manifest's ``built_with`` record; checked against this device before loading.
        check_device: Set ``False`` only for an engine that has no build record and that you know fits.
    """

    backend = "tensorrt"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        data: bytes | None = None,
        built_with: Mapping[str, Any] | None = None,
        check_device: bool = True,
    ) -> None:
        from .cuda_memory import CudaMemory, gpu_identity

        self.path = Path(path)
        version = tensorrt_version()
        import tensorrt as trt

        if data is None:
            try:
                data = self.path.read_bytes()
            except OSError:
                raise EngineError(f"TensorRT engine not found or not readable: {self.path}") from None
        self.gpu = gpu_identity()
        if check_device:
            check_built_with(built_with or {}, trt_version=version, gpu=self.gpu, engine=self.path.name)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise EngineError(f"TensorRT could not deserialize {self.path.name} (see the TensorRT log); {REBUILD}")
        self.context = self.engine.create_execution_context()
        self.trt_version = version
        self.mem = CudaMemory()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_in = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = tuple(n for n in names if is_in[n])
        self.output_names = tuple(n for n in names if not is_in[n])
        self.dtypes = {n: numpy_dtype(self.engine.get_tensor_dtype(n)) for n in names}
        self.profiles = {
            n: tuple(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(n, 0))
            for n in self.input_names
        }
        self.max_batch = min(p[2][0] for p in self.profiles.values())
        for n in self.input_names:  # the largest shapes, to size the output buffers
            self.context.set_input_shape(n, self.profiles[n][2])
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, int] = {}
        for n in names:
            shape = self.profiles[n][2] if is_in[n] else tuple(int(d) for d in self.context.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                raise EngineError(
                    f"output {n!r} of {self.path.name} has a data-dependent shape {list(shape)}; "
                    "ofer runs engines with static output shapes — re-export the model"
                )
            size = int(np.prod(shape))
            self._host[n] = self.mem.pinned((size,), self.dtypes[n])
            self._dev[n] = self.mem.device(size * self.dtypes[n].itemsize)
            self.context.set_tensor_address(n, self._dev[n])
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._events = [self.mem.event() for _ in range(4)]

    def input_shape(self, name: str) -> list[int | str]:
        """Declared input shape (the batch as ``"batch"`` when dynamic)."""
        lo, _, hi = self.profiles[name]
        return ["batch" if lo[0] != hi[0] else lo[0], *hi[1:]]

    def input_dtype(self, name: str) -> np.dtype:
        """numpy dtype the engine expects for an input."""
        return self.dtypes[name]

    def _chunk(self, feed: dict[str, np.ndarray], timed: bool) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        ev = self._events
        if timed:
            self.mem.record(ev[0])
        for n, arr in feed.items():
            if self._shapes.get(n) != arr.shape:
                if not self.context.set_input_shape(n, arr.shape):
                    raise InputError(f"TensorRT refused shape {list(arr.shape)} for input {n!r}")
                self._shapes[n] = arr.shape
            host = self._host[n][: arr.size].reshape(arr.shape)
            np.copyto(host, arr, casting="same_kind")
            self.mem.h2d(self._dev[n], host)
        if timed:
            self.mem.record(ev[1])
        if not self.context.execute_async_v3(self.mem.stream_handle):
            raise EngineError(f"TensorRT execution of {self.path.name} failed (see the TensorRT log)")
        if timed:
            self.mem.record(ev[2])
        outs = {}
        for n in self.output_names:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(n))
            host = self._host[n][: int(np.prod(shape))].reshape(shape)
            self.mem.d2h(host, self._dev[n])
            outs[n] = host
        if timed:
            self.mem.record(ev[3])
        self.mem.synchronize()
        subs = (
            {
                "h2d": self.mem.elapsed_ms(ev[0], ev[1]),
                "compute": self.mem.elapsed_ms(ev[1], ev[2]),
                "d2h": self.mem.elapsed_ms(ev[2], ev[3]),
            }
            if timed
            else {}
        )
        return {n: o.copy() for n, o in outs.items()}, subs

    def _run(self, inputs: dict[str, np.ndarray], timed: bool) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputError(f"{self.path.name} needs inputs {list(self.input_names)}; missing {missing}")
        feed = {n: np.asarray(inputs[n]) for n in self.input_names}
        batches = {a.shape[0] if a.ndim else 0 for a in feed.values()}
        if len(batches) != 1:
            raise InputError(f"all inputs of {self.path.name} need the same batch size, got {sorted(batches)}")
        for n, a in feed.items():
            check_input(n, a.shape, self.profiles[n])
        parts, totals = [], {"h2d": 0.0, "compute": 0.0, "d2h": 0.0}
        for start, stop in split_batch(batches.pop(), self.max_batch):
            out, subs = self._chunk(
                {n: np.ascontiguousarray(a[start:stop], self.dtypes[n]) for n, a in feed.items()}, timed
            )
            parts.append(out)
            for k, v in subs.items():
                totals[k] += v
        outs = {n: parts[0][n] if len(parts) == 1 else np.concatenate([p[n] for p in parts]) for n in self.output_names}
        return outs, (totals if timed else {})

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch (split into profile-sized chunks when larger than the profile's maximum)."""
        return self._run(inputs, timed=False)[0]

    def timed_run(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Like :meth:`run`, with ``{"h2d", "compute", "d2h"}`` milliseconds measured by CUDA events."""
        return self._run(inputs, timed=True)

    def describe(self) -> dict[str, object]:
        """What actually loaded."""
        return {
            "backend": self.backend,
            "file": self.path.name,
            "device": "tensorrt",
            "gpu": self.gpu,
            "tensorrt": self.trt_version,
            "cuda_binding": self.mem.binding,
            "max_batch": self.max_batch,
            "inputs": {n: self.input_shape(n) for n in self.input_names},
        }

    def close(self) -> None:
        """Free the CUDA buffers and the stream."""
        self.mem.close()

    def __del__(self) -> None:
        mem = getattr(self, "mem", None)
        if mem is not None:
            try:
                mem.close()
            except Exception:  # interpreter shutdown: the CUDA context may already be gone
                pass
