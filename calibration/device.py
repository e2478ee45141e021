"""A small device-memory layer for TensorRT calibration: cuda-python if it imports, else pycuda (both lazily).

Only what a calibrator needs: allocate a buffer, copy a host array into it, its device pointer, free it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime.errors import EngineError

_INSTALL = "install `pip install ofer[tensorrt]` (cuda-python) or pycuda on the target device"


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


def cuda_backend() -> str | None:
    """``"cuda-python"``, ``"pycuda"`` or ``None`` (what :class:`DeviceBuffer` will use)."""
    if _cudart() is not None:
        return "cuda-python"
    try:
        import pycuda.driver  # noqa: F401
        return "pycuda"
    except ImportError:
        return None


def _check(result: tuple, what: str) -> Any:
    err, *rest = result
    if int(err) != 0:
        raise EngineError(f"CUDA {what} failed ({err}); check the GPU driver and that a GPU is visible")
    return rest[0] if len(rest) == 1 else rest


class DeviceBuffer:
    """One device allocation of ``nbytes`` bytes."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self.backend = cuda_backend()
        if self.backend is None:
            raise EngineError(f"no CUDA Python binding found for TensorRT calibration; {_INSTALL}")
        if self.backend == "cuda-python":
            self._rt = _cudart()
            self.ptr = int(_check(self._rt.cudaMalloc(self.nbytes), "cudaMalloc"))
        else:
            import pycuda.autoinit  # noqa: F401  (creates the context)
            import pycuda.driver as drv

            self._drv = drv
            self._mem = drv.mem_alloc(self.nbytes)
            self.ptr = int(self._mem)

    def upload(self, array: np.ndarray) -> int:
        """Copy a host array (at most ``nbytes``) to the buffer; returns the device pointer."""
        host = np.ascontiguousarray(array)
        if host.nbytes > self.nbytes:
            raise EngineError(f"batch of {host.nbytes} bytes does not fit the {self.nbytes}-byte device buffer")
        if self.backend == "cuda-python":
            rt = self._rt
            _check(rt.cudaMemcpy(self.ptr, host.ctypes.data, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice),
                   "cudaMemcpy")
        else:
            self._drv.memcpy_htod(self._mem, host)
        return self.ptr

    def free(self) -> None:
        """Release the allocation (idempotent)."""
        if getattr(self, "ptr", 0):
            if self.backend == "cuda-python":
                _check(self._rt.cudaFree(self.ptr), "cudaFree")
            else:
                self._mem.free()
            self.ptr = 0


def gpu_info() -> dict[str, Any]:
    """``{"name", "compute_capability"}`` of GPU 0 via cuda-python or pycuda; EngineError when none is visible."""
    backend = cuda_backend()
    if backend == "cuda-python":
        rt = _cudart()
        props = _check(rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        return {"name": name.strip("\x00 "), "compute_capability": f"{props.major}.{props.minor}"}
    if backend == "pycuda":
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as drv

        dev = drv.Device(0)
        major, minor = dev.compute_capability()
        return {"name": dev.name(), "compute_capability": f"{major}.{minor}"}
    raise EngineError(f"cannot query the GPU: no CUDA Python binding; {_INSTALL}")
