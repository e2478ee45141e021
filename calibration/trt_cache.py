"""Native TensorRT INT8 calibration caches: write them from ranges computed on CPU, read them back.

Format (text), checked against public code that reads/writes it:

* ONNX Runtime's TensorRT execution provider, ``ReadDynamicRange`` in
  ``onnxruntime/core/providers/tensorrt/tensorrt_execution_provider.cc``: the first line holds ``TRT-``; each
  following line is ``tensor_name: <hex>``, parsed with ``strtoul(hex, 16)`` as the bit pattern of an IEEE-754
  float32 *scale*, and the dynamic range is ``scale * 127``;
* NVIDIA TAO's ``_calibration_cache_from_dict``: writes ``"TRT-{version}-EntropyCalibration2"`` then
  ``tensor + ": " + hex(bits(amax / 127.0))[2:]`` per tensor;
* caches dumped by TensorRT itself: ``TRT-8401-EntropyCalibration2`` / ``TRT-101401-EntropyCalibration2`` headers
  (version number = major*1000+minor*100+patch before TensorRT 10, major*10000+minor*100+patch from 10 on;
  TensorRT rejects a cache whose header names another version) and ``TRT-8400-MinMaxCalibration``.

Tensor names may contain ``:`` (PyTorch's ``onnx::Conv_380``): the value is what follows the *last* colon, so
readers split there (ONNX Runtime's reader splits at the first colon and would misread such names).

So a Jetson with TensorRT 10 can build an INT8 engine from this cache (``IInt8Calibrator.read_calibration_cache``
returns it) without running calibration on the device.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from runtime.errors import ConfigError, ExportError

ALGORITHMS = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration"}
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")


@dataclass(frozen=True)
class TrtCache:
    """A parsed cache: TensorRT version number, algorithm name and ``tensor -> scale`` (amax / 127)."""

    version: int
    algorithm: str
    scales: dict[str, float]

    def amax(self) -> dict[str, float]:
        """``tensor -> dynamic range`` (scale * 127)."""
        return {k: v * 127.0 for k, v in self.scales.items()}


def trt_version_number(version: str | tuple[int, ...]) -> int:
    """``"10.3.0"`` -> 100300, ``"8.6.1"`` -> 8601 (the number in a cache header)."""
    parts = version if isinstance(version, tuple) else tuple(int(p) for p in re.findall(r"\d+", str(version))[:3])
    if not parts or parts[0] < 1:
        raise ConfigError(f"cannot read a TensorRT version from {version!r}; pass it as MAJOR.MINOR.PATCH, e.g. 10.3.0")
    major, minor, patch = (list(parts) + [0, 0])[:3]
    return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch


def scale_hex(scale: float) -> str:
    """Hex of the float32 bit pattern (big-endian, no leading zeros, like TensorRT/TAO write it)."""
    return format(struct.unpack(">I", struct.pack(">f", float(scale)))[0], "x")


def hex_scale(text: str) -> float:
    """Inverse of :func:`scale_hex`."""
    return struct.unpack(">f", struct.pack(">I", int(text.strip(), 16)))[0]


def format_trt_cache(amax: Mapping[str, float], *, trt_version: str | tuple[int, ...], method: str = "entropy") -> str:
    """The cache text for ``tensor -> amax`` (scales are amax / 127, tensors in sorted order)."""
    if method not in ALGORITHMS:
        raise ConfigError(f"TensorRT caches exist for {', '.join(ALGORITHMS)} calibration, not {method!r}")
    lines = [f"TRT-{trt_version_number(trt_version)}-{ALGORITHMS[method]}"]
    for name in sorted(amax):
        if "\n" in name or "\r" in name:
            raise ExportError(
                f"tensor name {name!r} cannot be written to a TensorRT cache (contains a newline); "
                "rename the tensor in the ONNX model"
            )
        value = float(amax[name])
        if not value >= 0 or value == float("inf"):
            raise ExportError(f"tensor {name!r} has an invalid range {value}; recalibrate with more varied data")
        lines.append(f"{name}: {scale_hex(value / 127.0)}")
    return "\n".join(lines) + "\n"


def write_trt_cache(
    path: str | os.PathLike[str],
    amax: Mapping[str, float],
    *,
    trt_version: str | tuple[int, ...],
    method: str = "entropy",
) -> Path:
    """Write a native TensorRT calibration cache; see :func:`format_trt_cache`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_trt_cache(amax, trt_version=trt_version, method=method), encoding="ascii")
    return path


def parse_trt_cache(text: str | bytes) -> TrtCache:
    """Parse cache text (as TensorRT writes it, or :func:`format_trt_cache`)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    m = _HEADER.match(lines[0].strip()) if lines else None
    if m is None:
        raise ConfigError(
            "not a TensorRT calibration cache: the first line must look like "
            "'TRT-100300-EntropyCalibration2'; regenerate it with `ofer export --precision int8`"
        )
    scales: dict[str, float] = {}
    for k, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")
        if not sep or not name.strip():
            raise ConfigError(f"TensorRT calibration cache line {k} is not 'tensor: hex' ({line!r})")
        try:
            scales[name.strip()] = hex_scale(value)
        except (ValueError, struct.error):
            raise ConfigError(f"TensorRT calibration cache line {k}: {value.strip()!r} is not a hex float32") from None
    return TrtCache(int(m.group(1)), m.group(2), scales)


def read_trt_cache(path: str | os.PathLike[str]) -> TrtCache:
    """Read and parse a cache file."""
    return parse_trt_cache(Path(path).read_bytes())
