"""CUDA memory for the TensorRT engine: cuda-python (``cuda.bindings.runtime`` / ``cuda.cudart``) or pycuda.

Only what an inference engine needs: a stream, pinned host buffers seen as numpy arrays, device buffers,
asynchronous copies on the stream, and events to time the copies and the compute. Both bindings are imported
lazily, the first that imports wins.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ..errors import EngineError

INSTALL = "install cuda-python (`pip install ofer[tensorrt]`) or pycuda on the target device"


def _cudart() -> Any | None:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6

        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart  # older cuda-python

        return cudart
    except ImportError:
        return None


def binding_name() -> str | None:
    """``"cuda-python"``, ``"pycuda"`` or ``None`` (no binding importable)."""
    if _cudart() is not None:
        return "cuda-python"
    try:
        import pycuda.driver  # noqa: F401

        return "pycuda"
    except ImportError:
        return None


def _ok(result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, value...)`` tuple, raising :class:`EngineError` on an error code."""
    if not isinstance(result, tuple):
        result = (result,)
    err, *rest = result
    if int(err) != 0:
        raise EngineError(f"CUDA {what} failed ({err}); check the GPU driver and that a GPU is visible")
    return rest[0] if len(rest) == 1 else (rest or None)


class CudaMemory:
    """A CUDA stream plus the allocations and copies of one engine (free them with :meth:`close`)."""

    def __init__(self) -> None:
        self.binding = binding_name()
        if self.binding is None:
            raise EngineError(f"the TensorRT backend needs a CUDA Python binding; {INSTALL}")
        self._host: list[Any] = []
        self._device: list[Any] = []
        if self.binding == "cuda-python":
            self.rt = _cudart()
            self.stream = _ok(self.rt.cudaStreamCreate(), "cudaStreamCreate")
            self.stream_handle = int(self.stream)
        else:
            import pycuda.autoinit  # noqa: F401  (creates the context on GPU 0)
            import pycuda.driver as drv

            self.drv = drv
            self.stream = drv.Stream()
            self.stream_handle = int(self.stream.handle)

    # ------------------------------------------------------------------------------------------- allocations
    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (fast, asynchronous copies)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if self.binding == "pycuda":
            arr = self.drv.pagelocked_empty(shape, dtype)
            self._host.append(arr)
            return arr
        ptr = int(_ok(self.rt.cudaMallocHost(max(nbytes, 1)), "cudaMallocHost"))
        self._host.append(ptr)
        raw = (ctypes.c_byte * max(nbytes, 1)).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def device(self, nbytes: int) -> int:
        """A device allocation; returns its address."""
        if self.binding == "pycuda":
            mem = self.drv.mem_alloc(max(int(nbytes), 1))
            self._device.append(mem)
            return int(mem)
        ptr = int(_ok(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))
        self._device.append(ptr)
        return ptr

    # ------------------------------------------------------------------------------------------------ copies
    def h2d(self, dst: int, src: np.ndarray) -> None:
        """Asynchronous host-to-device copy of ``src`` (pinned) on the stream."""
        if self.binding == "pycuda":
            self.drv.memcpy_htod_async(dst, src, self.stream)
            return
        _ok(
            self.rt.cudaMemcpyAsync(
                dst, src.ctypes.data, src.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream
            ),
            "cudaMemcpyAsync",
        )

    def d2h(self, dst: np.ndarray, src: int) -> None:
        """Asynchronous device-to-host copy into ``dst`` (pinned) on the stream."""
        if self.binding == "pycuda":
            self.drv.memcpy_dtoh_async(dst, src, self.stream)
            return
        _ok(
            self.rt.cudaMemcpyAsync(
                dst.ctypes.data, src, dst.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream
            ),
            "cudaMemcpyAsync",
        )

    def synchronize(self) -> None:
        """Wait for everything queued on the stream."""
        if self.binding == "pycuda":
            self.stream.synchronize()
        else:
            _ok(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    # ------------------------------------------------------------------------------------------------ events
    def event(self) -> Any:
        """A CUDA event (for timing)."""
        if self.binding == "pycuda":
            return self.drv.Event()
        return _ok(self.rt.cudaEventCreate(), "cudaEventCreate")

    def record(self, event: Any) -> None:
        """Record ``event`` on the stream."""
        if self.binding == "pycuda":
            event.record(self.stream)
        else:
            _ok(self.rt.cudaEventRecord(event, self.stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events (after :meth:`synchronize`)."""
        if self.binding == "pycuda":
            return float(end.time_since(start))
        return float(_ok(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def close(self) -> None:
        """Free every allocation and the stream (idempotent)."""
        if self.binding == "cuda-python":
            for ptr in self._device:
                self.rt.cudaFree(ptr)
            for ptr in self._host:
                self.rt.cudaFreeHost(ptr)
            if self.stream is not None:
                self.rt.cudaStreamDestroy(self.stream)
        else:
            for mem in self._device:
                mem.free()
        self._device, self._host, self.stream = [], [], None


def gpu_identity() -> dict[str, str]:
    """``{"name", "compute_capability"}`` of GPU 0 (EngineError when no binding or no GPU)."""
    binding = binding_name()
    if binding == "cuda-python":
        rt = _cudart()
        props = _ok(rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name.strip("\x00 "), "compute_capability": f"{props.major}.{props.minor}"}
    if binding == "pycuda":
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as drv

        dev = drv.Device(0)
        major, minor = dev.compute_capability()
        return {"name": str(dev.name()), "compute_capability": f"{major}.{minor}"}
    raise EngineError(f"cannot query the GPU: no CUDA Python binding; {INSTALL}")
