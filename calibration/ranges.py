"""Activation ranges of an FP32 ONNX model on calibration data, computed on CPU with ONNX Runtime's calibrators.

One computation serves both the INT8 Q/DQ export (as ONNX Runtime's JSON calibration cache) and the native
TensorRT calibration cache (:mod:`calibration.trt_cache`), so the two agree on every tensor's range.
Entropy uses 512-bin histograms with 128 quantised bins (TensorRT uses 2048: minutes in ONNX Runtime's Python);
ONNX Runtime's default (128/128) would make it identical to MinMax.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError, ExportError

METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {},
    "entropy": {"num_bins": 512, "num_quantized_bins": 128},  # 2048 (TensorRT's) takes minutes in ORT's Python
    "percentile": {"num_bins": 2048, "percentile": 99.99},
}


def calibrate_method(method: str) -> Any:
    """The ``onnxruntime.quantization.CalibrationMethod`` of a method name (``entropy``/``minmax``/``percentile``)."""
    from onnxruntime.quantization import CalibrationMethod

    table = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in table:
        raise ConfigError(f"unknown calibration method {method!r}; choose from {', '.join(table)}")
    return table[method]


def compute_ranges(
    onnx_path: str | os.PathLike[str], reader: Any, method: str = "entropy", *, percentile: float | None = None
) -> Any:
    """Run calibration and return ONNX Runtime ``TensorsData`` (``tensor name -> lowest/highest``).

    Args:
        onnx_path: FP32 ONNX model.
        reader: A ``CalibrationDataReader`` (rewound first).
        method: ``entropy``, ``minmax`` or ``percentile``.
        percentile: Overrides the percentile for ``percentile``.

    Raises:
        ExportError: calibration failed (the message names the model and method).
    """
    from onnxruntime.quantization import create_calibrator

    options = dict(METHOD_OPTIONS[method])
    if percentile is not None and method == "percentile":
        options["percentile"] = float(percentile)
    with tempfile.TemporaryDirectory(prefix="ofer.calib.") as tmp:
        try:
            calibrator = create_calibrator(
                Path(onnx_path),
                None,
                augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=calibrate_method(method),
                providers=["CPUExecutionProvider"],
                extra_options=options,
            )
            reader.rewind()
            calibrator.collect_data(reader)
            data = calibrator.compute_data()
        except Exception as exc:  # onnxruntime raises its own types
            raise ExportError(
                f"calibration ({method}) of {Path(onnx_path).name} failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); check that the calibration inputs "
                "match the model input, or try --calib-method minmax"
            ) from None
    return data


def amax_table(data: Any) -> dict[str, float]:
    """``tensor -> max(|lowest|, |highest|)`` (the symmetric range TensorRT uses)."""
    out: dict[str, float] = {}
    for name, r in data.data.items():
        lo, hi = r.range_value  # 0-d or 1-element arrays
        out[name] = float(max(abs(float(np.max(lo))), abs(float(np.max(hi))), abs(float(np.min(lo)))))
    return out
