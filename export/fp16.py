"""FP32 ONNX -> FP16 ONNX with FP32 inputs and outputs.

Uses ONNX Runtime's copy of onnxconverter-common's converter (``onnxruntime.transformers.float16``), so no extra
dependency is needed; the graph keeps float32 inputs/outputs (``keep_io_types``) so callers feed the same arrays to
every precision. Weights outside the FP16 range are clamped by the converter; the result is checked by running it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from runtime.errors import ExportError

#: Ops kept in FP32: ONNX Runtime/TensorRT reductions that overflow or lose accuracy in FP16.
DEFAULT_FP32_OPS: tuple[str, ...] = ("Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "Exp", "Log", "Pow")


def convert_fp16(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, keep_fp32_ops: Sequence[str] = DEFAULT_FP32_OPS
) -> dict[str, Any]:
    """Write an FP16 copy of ``src`` to ``dst`` (float32 inputs/outputs kept).

    Args:
        src: FP32 ONNX file.
        dst: Output file; written only when conversion and the ONNX checker succeed.
        keep_fp32_ops: Op types left in FP32 (casts are inserted around them).

    Returns:
        ``{"fp32_ops": [...], "nodes": n, "casts": n}`` describing the converted graph.

    Raises:
        ExportError: the model cannot be read or converted.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    src, dst = Path(src), Path(dst)
    try:
        model = onnx.load(str(src))
        half = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(keep_fp32_ops))
        wrapped = OnnxModel(half)
        wrapped.topological_sort()  # the converter appends the I/O casts after the nodes that read them
        half = wrapped.model
        onnx.checker.check_model(half)
    except Exception as exc:  # onnx raises its own errors for malformed graphs
        raise ExportError(
            f"FP16 conversion of {src.name} failed ({type(exc).__name__}: {exc}); export FP32 only "
            "(--precision fp32,int8) or report the unsupported op"
        ) from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dst.parent)
    os.close(fd)
    try:
        onnx.save(half, tmp)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    casts = sum(1 for n in half.graph.node if n.op_type == "Cast")
    return {"fp32_ops": list(keep_fp32_ops), "nodes": len(half.graph.node), "casts": casts}
