"""Top-1 agreement with FP32 and accuracy per occlusion protocol on a held-out occluded set; the export gate."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from runtime.errors import ExportError


def run_onnx(
    path: str | os.PathLike[str], inputs: np.ndarray, *, batch: int = 64, threads: int = 1, simulate: bool = False
) -> np.ndarray:
    """First output of an ONNX model over ``inputs`` in batches on ONNX Runtime CPU.

    ``simulate`` turns graph optimisations off so Q/DQ nodes run as written (float maths between exact
    quantise/dequantise steps): the numbers TensorRT's explicit quantisation computes, without the 16-bit
    saturation of x86 U8S8 kernels.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if simulate:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [
        sess.run(None, {name: np.ascontiguousarray(inputs[i : i + batch], np.float32)})[0]
        for i in range(0, len(inputs), batch)
    ]
    return np.concatenate(outs).astype(np.float32)


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    protocols: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    model_labels: Sequence[str],
) -> dict[str, Any]:
    """Agreement of ``candidate`` with ``reference`` (class scores), overall and per protocol, plus accuracies.

    Accuracy is computed on samples whose source label name is one of the model's labels (``None`` if none).
    """
    name_to_model = {n: i for i, n in enumerate(model_labels)}
    truth = np.array([name_to_model.get(label_names[k], -1) if k >= 0 else -1 for k in labels], np.int64)
    ref, got = reference.argmax(1), candidate.argmax(1)

    def acc(pred: np.ndarray, mask: np.ndarray) -> float | None:
        m = mask & (truth >= 0)
        return float((pred[m] == truth[m]).mean()) if m.any() else None

    per: dict[str, dict[str, Any]] = {}
    for p in sorted(set(protocols.tolist())):
        m = protocols == p
        per[p] = {
            "n": int(m.sum()),
            "agreement": float((ref[m] == got[m]).mean()),
            "accuracy": acc(got, m),
            "accuracy_fp32": acc(ref, m),
        }
    everything = np.ones(len(ref), bool)
    return {
        "top1_agreement": float((ref == got).mean()),
        "n": int(len(ref)),
        "max_abs_diff": float(np.abs(reference - candidate).max()),
        "accuracy": acc(got, everything),
        "accuracy_fp32": acc(ref, everything),
        "per_protocol": per,
    }


def worst_protocols(result: dict[str, Any], k: int = 3) -> str:
    """``"upper_half 0.912, mouth 0.930, ..."``: the ``k`` protocols with the lowest agreement."""
    worst = sorted(result["per_protocol"].items(), key=lambda kv: kv[1]["agreement"])[:k]
    return ", ".join(f"{p} {r['agreement']:.3f}" for p, r in worst)


def gate_failure(
    result: dict[str, Any], threshold: float, *, what: str, excluded: int | None = None, max_excluded: int | None = None
) -> str | None:
    """``None`` when ``result['top1_agreement'] >= threshold``, else one line: what failed and what to do.

    The advice follows from what was measured, never a round of calibration methods: ``excluded`` is how many
    nodes the sensitivity fallback already left in float (``None``: it did not run, e.g. FP16).
    """
    agreement = result["top1_agreement"]
    if agreement >= threshold:
        return None
    head = (
        f"{what}: top-1 agreement with FP32 {agreement:.4f} on {result['n']} held-out occluded faces is below "
        f"--agreement {threshold:g} (worst protocols: {worst_protocols(result)})"
    )
    clean = result["per_protocol"].get("clean", {}).get("agreement")
    if excluded is None:
        fix = "leave this precision out, or report the model (FP16 should agree almost exactly)"
    elif excluded == 0 and clean is not None and clean < threshold:
        fix = (
            f"even clean faces agree only {clean:.3f}: calibrate on more faces from the deployment domain "
            "(--calib, --calib-count)"
        )
    else:
        fix = (
            f"the sensitivity analysis kept the {excluded} most sensitive nodes in float (--max-float-nodes "
            f"{max_excluded}); allow more, calibrate on more faces from the deployment domain, or use fp16 "
            "for this model"
        )
    return f"{head}; {fix}"


def check_agreement(result: dict[str, Any], threshold: float, *, what: str) -> None:
    """Raise ExportError with :func:`gate_failure`'s line when ``result`` is below ``threshold``."""
    message = gate_failure(result, threshold, what=what)
    if message:
        raise ExportError(message)
