"""FP32 ONNX -> INT8 Q/DQ ONNX with ONNX Runtime static quantisation, in the flavours of :mod:`export.formats`
(each entry's :class:`export.formats.Int8Scheme` holds its settings):

* ``int8-cpu``: QUInt8 asymmetric activations, QInt8 symmetric per-channel weights. ONNX Runtime fuses the Q/DQ
  pairs into QLinearConv/QLinearMatMul (U8S8 kernels) on CPU.
* ``int8-trt``: QInt8 *symmetric* activations and per-channel weights (zero points 0), Q/DQ inserted only in front
  of Conv/ConvTranspose/Gemm/MatMul -- the layout TensorRT 10/11 reads as explicit quantisation (TensorRT supports
  only symmetric int8 scales; other ops run in FP16/FP32 and are fused by TensorRT around the Q/DQ nodes).

Activation ranges come from :func:`calibration.ranges.compute_ranges` (``minmax``: full range; ``entropy``: KL
divergence as TensorRT's EntropyCalibrator2; ``percentile``: clip at the 99.99th percentile of |x|), passed to
``quantize_static`` as its JSON calibration cache, so the Q/DQ models and the native TensorRT cache share them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from calibration.ranges import calibrate_method
from runtime.errors import ExportError

if TYPE_CHECKING:
    from .formats import ExportFormat


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_settings(fmt: ExportFormat, method: str) -> dict[str, Any]:
    """Keyword arguments for ``quantize_static`` of an INT8 format (its :class:`export.formats.Int8Scheme`) and a
    calibration method.

    Raises:
        ExportError: ``fmt`` is not an INT8 format.
    """
    from onnxruntime.quantization import QuantFormat, QuantType

    scheme = fmt.int8
    if scheme is None:
        raise ExportError(f"{fmt.key} is not an INT8 format; use int8-cpu or int8-trt")
    extra: dict[str, Any] = {"WeightSymmetric": True, "ActivationSymmetric": scheme.symmetric}
    settings = {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "weight_type": QuantType.QInt8,
        "calibrate_method": calibrate_method(method),
        "activation_type": getattr(QuantType, scheme.activations),
    }
    if scheme.ops is not None:  # explicit quantisation: Q/DQ only in front of the weighted layers
        settings["op_types_to_quantize"] = list(scheme.ops)
        extra.update(
            AddQDQPairToWeight=False,
            DedicatedQDQPair=False,
            QDQKeepRemovableActivations=False,
            OpTypesToExcludeOutputQuantization=list(scheme.ops),
        )
    return {**settings, "extra_options": extra}


def _has_range_cache() -> bool:
    """Whether ``quantize_static`` takes precomputed ranges (``calibration_cache_path``, onnxruntime PR #28221)."""
    import inspect

    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def quantize_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    ranges: Any,
    fmt: ExportFormat,
    *,
    method: str = "entropy",
    reduce_range: bool | None = None,
    reader: Any = None,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Write an INT8 Q/DQ copy of ``src`` using activation ``ranges`` computed on calibration data.

    Args:
        src: FP32 ONNX file (opset >= 13 for per-channel Q/DQ).
        dst: Output file; written only on success.
        ranges: ``TensorsData`` from :func:`calibration.ranges.compute_ranges` on ``src`` with ``method``.
        fmt: The INT8 flavour (``EXPORT_FORMATS["int8-cpu"]`` or ``["int8-trt"]``).
        method: The calibration method the ranges came from (recorded, and checked by ONNX Runtime).
        reduce_range: 7-bit weights; default: the flavour's ``Int8Scheme.reduce_range`` (on for ``int8-cpu``).
        reader: Calibration reader, used only by an onnxruntime whose ``quantize_static`` cannot take ``ranges``
            (before ``calibration_cache_path``): it then calibrates itself with ``method`` (entropy with its own
            default histogram, so results can differ slightly from ``ranges``).
        exclude: Node names left in floating point (``nodes_to_exclude``; see :mod:`export.sensitivity`).

    Returns:
        The settings used (JSON-able), for the manifest.

    Raises:
        ExportError: quantisation failed.
    """
    from onnxruntime.quantization import quantize_static

    src, dst = Path(src), Path(dst)
    settings = quantize_settings(fmt, method)
    assert fmt.int8 is not None
    settings["reduce_range"] = fmt.int8.reduce_range if reduce_range is None else bool(reduce_range)
    if exclude:
        settings["nodes_to_exclude"] = list(exclude)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # onnxruntime.quantization advises "pre-processing" through the root logger at WARNING on every call; the
    # graph is already shape-inferred by export_onnx, so keep the CLI's output to ofer's own lines.
    with _quiet_root_logger(), tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant.") as tmp:
        cache = Path(tmp) / "ranges.json"
        out = Path(tmp) / "q.onnx"
        try:
            if _has_range_cache():
                from onnxruntime.quantization.calibrate import save_tensors_data  # added with the cache parameter

                save_tensors_data(ranges, cache)
                quantize_static(str(src), str(out), None, calibration_cache_path=str(cache), **settings)
            elif reader is not None:
                reader.rewind()
                if method == "percentile":
                    settings["extra_options"]["CalibPercentile"] = 99.99
                quantize_static(str(src), str(out), reader, **settings)
            else:
                raise ExportError(
                    "this onnxruntime cannot quantise from precomputed ranges; pass the calibration "
                    "reader too, or upgrade onnxruntime"
                )
        except ExportError:
            raise
        except Exception as exc:  # onnxruntime raises many exception types here
            raise ExportError(
                f"INT8 quantisation ({fmt.key}, {method}) of {src.name} failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); try another "
                "--calib-method, or export without int8"
            ) from None
        os.replace(out, dst)
    return {
        "flavour": fmt.key,
        "method": method,
        "activations": settings["activation_type"].name,
        "weights": settings["weight_type"].name,
        "per_channel": True,
        "format": "QDQ",
        "reduce_range": settings["reduce_range"],
        "symmetric_activations": fmt.int8.symmetric,
        "ops": settings.get("op_types_to_quantize", "all"),
        "excluded_nodes": list(exclude),
        "description": fmt.description,
    }
