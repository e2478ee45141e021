"""INT8 flavours of one FP32 ONNX model, each judged on its own: quantise, gate, and fall back per flavour.

:func:`export_int8` quantises ``int8-cpu`` and/or ``int8-trt`` from one set of activation ranges, measures each
against FP32 on the held-out occluded set (int8-trt as TensorRT computes it: exact Q/DQ maths), and when a flavour
misses the gate runs the sensitivity fallback (:mod:`export.sensitivity`), which keeps the most sensitive nodes in
float. Every flavour gets an :class:`Int8Outcome`; one that fails never takes the others with it.

Also here: which faces are the model's own domain (:func:`model_domain`, :func:`check_calibration_domain`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from runtime.errors import ExportError

#: Words in a model's provenance (``data``/``method``) that mark it as trained on procedural (synthetic) faces.
PROCEDURAL_WORDS = ("procedural", "synthetic")


def model_domain(provenance: Mapping[str, Any]) -> str:
    """``procedural`` when the provenance says the model learned from procedural faces, else ``real``.

    ofer's own trainers record the data spec (``procedural:...`` or a dataset of photos); imported models name
    their dataset (the default bundle: "FER2013 ..."), which is real faces.
    """
    text = " ".join(str(provenance.get(k, "")) for k in ("data", "method", "source")).lower()
    return "procedural" if any(w in text for w in PROCEDURAL_WORDS) else "real"


def source_domain(source: str) -> str:
    """``procedural`` for the procedural benchmark, ``real`` for photos, videos and datasets of photos."""
    from calibration.sources import source_kind

    return "procedural" if source_kind(source) == "procedural" else "real"


def check_calibration_domain(calib: str | None, provenance: Mapping[str, Any], *, allow_mismatch: bool = False) -> str:
    """The calibration source to use: ``calib``, or ``procedural`` for a procedural model when none is given.

    Raises:
        ExportError: no source for a model of real faces, or procedural faces for it (measured on the default
            model: 0.927 top-1 agreement calibrated on procedural faces against 0.966 on a real video), unless
            ``allow_mismatch``.
    """
    domain = model_domain(provenance)
    what = f"the model was trained on real faces (data: {provenance.get('data', 'not recorded')})"
    if calib is None:
        if domain == "procedural":
            return "procedural"
        raise ExportError(f"INT8 export needs calibration faces from the model's own domain: {what}; pass --calib "
                          "with real faces like the deployment's (a folder of photos, a video, or a dataset spec such "
                          "as fer2013:/data/fer2013.csv)")
    if domain == "real" and source_domain(calib) == "procedural" and not allow_mismatch:
        raise ExportError(f"--calib {calib} gives procedural faces, but {what}: INT8 ranges from the wrong domain lose "
                          "agreement; pass real faces (a folder of photos, a video, a dataset spec), or "
                          "--allow-domain-mismatch to calibrate on them anyway")
    return calib


@dataclass
class Int8Outcome:
    """One flavour's result: the model (when it passed), its agreement record and the settings, for the manifest."""

    key: str
    path: Path | None
    result: dict[str, Any]
    quantization: dict[str, Any]
    passed: bool
    message: str | None
    seconds: float


def export_int8(classifier: Path, keys: Sequence[str], *, ranges: Any, method: str, reader: Any,
                calib_inputs: np.ndarray, heldout_inputs: np.ndarray, reference: np.ndarray,
                judge: Callable[[np.ndarray], dict[str, Any]], threshold: float, max_float_nodes: int,
                work: Path) -> dict[str, Int8Outcome]:
    """Quantise every flavour in ``keys`` and gate each on its own (see the module docstring).

    Args:
        classifier: FP32 ONNX.
        keys: ``int8-cpu`` and/or ``int8-trt``.
        ranges, method, reader: Activation ranges, the method they came from, the calibration reader.
        calib_inputs: Calibration inputs (the sensitivity ranking runs on the first 64).
        heldout_inputs, reference: Held-out inputs and FP32 outputs on them.
        judge: Held-out outputs -> :func:`export.agreement.compare` result.
        threshold: The agreement gate.
        max_float_nodes: The most nodes the fallback may keep in float (0: no fallback).
        work: Folder for the models.
    """
    from .agreement import gate_failure, run_onnx
    from .quantize import quantize_int8
    from .sensitivity import candidates, fallback

    outcomes: dict[str, Int8Outcome] = {}
    sample = calib_inputs[:64]
    sample_ref = run_onnx(classifier, sample)
    for key in keys:
        start = time.perf_counter()
        simulate = key == "int8-trt"

        def quantize(dst: Path, exclude: list[str], key: str = key) -> dict[str, Any]:
            return quantize_int8(classifier, dst, ranges, flavour=key, method=method, reader=reader, exclude=exclude)

        def run(path: Path, x: np.ndarray, simulate: bool = simulate) -> np.ndarray:
            return run_onnx(path, x, simulate=simulate)

        path = work / f"{key}.onnx"
        info = quantize(path, [])
        result = judge(run(path, heldout_inputs))
        excluded: list[str] = []
        sensitivity: dict[str, Any] | None = None
        if result["top1_agreement"] < threshold and max_float_nodes > 0:
            nodes = candidates(classifier, key)
            # at least one node stays INT8: a model with every node in float is not an INT8 model
            fb = fallback(quantize, run, judge, threshold, nodes=nodes, calib_inputs=sample,
                          calib_reference=sample_ref, heldout_inputs=heldout_inputs,
                          max_excluded=min(max_float_nodes, len(nodes) - 1), work=work / f"{key}-fallback")
            sensitivity = {"all_int8_agreement": result["top1_agreement"], "candidates": len(nodes),
                           "ranking": [[n, round(e, 5)] for n, e in fb.ranking[:10]],
                           "tried": [[k, round(a, 4)] for k, a in fb.tried], "ranked_on": len(sample)}
            result, excluded = fb.result, fb.excluded
            path = work / f"{key}.onnx"
            info = quantize(path, excluded)  # the chosen model, written where the bundle takes it from
        info["excluded_nodes"] = excluded
        if sensitivity is not None:
            info["sensitivity"] = sensitivity
        message = gate_failure(result, threshold, what=f"{key} ({method})",
                               excluded=len(excluded) if sensitivity is not None else 0,
                               max_excluded=max_float_nodes)
        outcomes[key] = Int8Outcome(key, path if message is None else None, result, info, message is None, message,
                                    time.perf_counter() - start)
    return outcomes


def require_some(outcomes: Mapping[str, Any]) -> None:
    """Raise ExportError (one line per failed variant) when every requested variant failed its gate."""
    failed = [o for o in outcomes.values() if not o["passed"]]
    if outcomes and len(failed) == len(outcomes):
        raise ExportError("no requested precision passed the agreement gate, nothing written:\n  "
                          + "\n  ".join(o["message"] for o in failed))
