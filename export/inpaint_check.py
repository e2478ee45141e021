"""Running the whole inpaint pipeline (inpainter -> classifier) on ONNX Runtime, as the export gate judges it.

An inpaint bundle's variant is judged as it runs: the occluded held-out face and its occlusion mask go through the
inpainter of that precision, its output through the classifier of that precision, and the class scores are
compared with the FP32 pipeline's. Masks use the runtime's layout (:meth:`runtime.pipelines.InpaintPipeline.
mask_tensor`: ``(N, 1, H, W)`` for NCHW, ``(N, H, W, 1)`` for NHWC).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def input_names(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """(image input, mask input or None) of an inpainter, named as the runtime finds them (a classifier: its
    input, ``None``)."""
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()]
    mask = next((n for n in names if "mask" in n.lower()), names[1] if len(names) == 2 else None)
    return next(n for n in names if n != mask), mask


def mask_tensor(masks: np.ndarray, layout: str) -> np.ndarray:
    """``(N, H, W)`` 0/1 masks as the inpainter's float input."""
    m = masks.astype(np.float32)
    return np.ascontiguousarray(m[:, None] if layout == "NCHW" else m[..., None])


def feeds(inpainter: str | os.PathLike[str], inputs: np.ndarray, masks: np.ndarray, layout: str) -> dict[str, Any]:
    """The inpainter's named inputs for normalised ``inputs`` and their masks."""
    image, mask = input_names(inpainter)
    out = {image: np.ascontiguousarray(inputs, np.float32)}
    if mask is not None:
        out[mask] = mask_tensor(masks, layout)
    return out


def run_pipeline(
    inpainter: str | os.PathLike[str],
    classifier: str | os.PathLike[str],
    inputs: np.ndarray,
    masks: np.ndarray,
    layout: str,
    *,
    simulate: bool = False,
    batch: int = 64,
) -> np.ndarray:
    """Classifier scores on the inpainter's output, in batches on ONNX Runtime CPU (``simulate``: see
    :func:`export.agreement.run_onnx`)."""
    import onnxruntime as ort

    from .agreement import run_onnx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    if simulate:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(inpainter), opts, providers=["CPUExecutionProvider"])
    filled = []
    for i in range(0, len(inputs), batch):
        filled.append(sess.run(None, feeds(inpainter, inputs[i : i + batch], masks[i : i + batch], layout))[0])
    return run_onnx(classifier, np.concatenate(filled), simulate=simulate)
