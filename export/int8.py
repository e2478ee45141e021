"""INT8 specifics of export: which faces are the model's own domain, and the per-flavour sensitivity fallback.

Every INT8 flavour is quantised from one set of activation ranges and judged on its own
(:func:`export.variants.export_variant`); when one misses the gate, :func:`sensitivity_fallback` keeps its most
sensitive nodes in float (:mod:`export.sensitivity`). One that fails never takes the others with it.

Domain: :func:`model_domain`, :func:`source_domain`, :func:`check_calibration_domain`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from runtime.errors import ExportError

if TYPE_CHECKING:
    from .formats import ExportFormat
    from .variants import ExportRun, Variant

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
        raise ExportError(
            f"INT8 export needs calibration faces from the model's own domain: {what}; pass --calib "
            "with real faces like the deployment's (a folder of photos, a video, or a dataset spec such "
            "as fer2013:/data/fer2013.csv)"
        )
    if domain == "real" and source_domain(calib) == "procedural" and not allow_mismatch:
        raise ExportError(
            f"--calib {calib} gives procedural faces, but {what}: INT8 ranges from the wrong domain lose "
            "agreement; pass real faces (a folder of photos, a video, a dataset spec), or "
            "--allow-domain-mismatch to calibrate on them anyway"
        )
    return calib


def sensitivity_fallback(
    fmt: ExportFormat, run: ExportRun, path: Path, result: dict[str, Any], info: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The INT8 flavour ``fmt`` at ``path`` below the gate: keep its most sensitive nodes in float
    (:func:`export.sensitivity.fallback`, ranked on the first 64 calibration faces) and write the chosen model back
    to ``path``. Returns ``(result, quantisation record)``: the record gains ``excluded_nodes`` and, when the fallback
    ran, ``sensitivity`` (what all-INT8 reached, the ranking, what was tried). ``run.max_float_nodes`` 0: no fallback.

    A flavour that quantises every op (``int8-cpu``) and still misses the gate tries again with Q/DQ on the weighted
    layers only (:data:`export.formats.TRT_QDQ_OPS`, its own activation type kept): the element-wise ops between them
    (residual Add, CBAM's Sigmoid/Mul attention, ReduceMean/Max, Concat) then stay in float. Measured on a CBAM
    ResNet-18: all-INT8 agreement 0.878 -> 0.923, and the gate passed with 14 of 61 convs in float where 64 of 167
    nodes of the full scheme did not. The record's ``ops`` and ``sensitivity.weighted_ops_only`` say so.
    """
    import dataclasses

    from .formats import TRT_QDQ_OPS

    assert fmt.int8 is not None and fmt.make is not None
    if result["top1_agreement"] >= run.agreement or run.max_float_nodes <= 0:
        return result, {**info, "excluded_nodes": []}
    first, info1 = _node_fallback(fmt, run, path, result)
    if first["top1_agreement"] >= run.agreement or fmt.int8.ops is not None:
        return first, info1
    weighted = dataclasses.replace(fmt, int8=dataclasses.replace(fmt.int8, ops=TRT_QDQ_OPS, fallback_ops=TRT_QDQ_OPS))
    start = run.check(weighted, _write(weighted, run, path, []))
    if start["top1_agreement"] >= run.agreement:
        second, info2 = (
            start,
            {
                **weighted.make(weighted, run, "classifier", path, []),
                "excluded_nodes": [],
                "sensitivity": {
                    "all_int8_agreement": start["top1_agreement"],
                    "candidates": 0,
                    "tried": [],
                    "ranking": [],
                },
            },
        )
    else:
        second, info2 = _node_fallback(weighted, run, path, start)
    if second["top1_agreement"] < first["top1_agreement"]:  # neither passed: keep the better one, say what was tried
        fmt.make(fmt, run, "classifier", path, info1["excluded_nodes"])
        info1["sensitivity"]["weighted_ops_tried"] = {
            "excluded": len(info2["excluded_nodes"]),
            "agreement": round(second["top1_agreement"], 4),
        }
        return first, info1
    info2["sensitivity"].update(
        weighted_ops_only=True,
        all_int8_agreement=result["top1_agreement"],
        weighted_ops_all_int8_agreement=start["top1_agreement"],
        full_scheme={
            "excluded": len(info1["excluded_nodes"]),
            "agreement": round(first["top1_agreement"], 4),
            "candidates": info1["sensitivity"]["candidates"],
        },
    )
    return second, info2


def _write(fmt: ExportFormat, run: ExportRun, path: Path, exclude: list[str]) -> Path:
    assert fmt.make is not None
    fmt.make(fmt, run, "classifier", path, exclude)
    return path


def _node_fallback(
    fmt: ExportFormat, run: ExportRun, path: Path, result: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`sensitivity_fallback`'s node-level search in one scheme ``fmt``; writes the chosen model to ``path``."""
    from .agreement import run_onnx
    from .sensitivity import candidates, fallback

    assert fmt.int8 is not None and fmt.make is not None
    classifier = run.models["classifier"]
    sample = run.calib.inputs[:64]
    nodes = candidates(classifier, fmt.int8.fallback_ops)

    def quantize(dst: Path, exclude: list[str]) -> dict[str, Any]:
        return fmt.make(fmt, run, "classifier", dst, exclude)

    def run_model(model: Path, x: np.ndarray) -> np.ndarray:
        return run_onnx(model, x, simulate=fmt.simulate)

    # at least one node stays INT8: a model with every node in float is not an INT8 model
    fb = fallback(
        quantize,
        run_model,
        run.compare,
        run.agreement,
        nodes=nodes,
        calib_inputs=sample,
        calib_reference=run_onnx(classifier, sample),
        heldout_inputs=run.heldout.inputs,
        max_excluded=min(run.max_float_nodes, len(nodes) - 1),
        work=run.work / f"{fmt.key}-{'weighted' if fmt.int8.ops else 'all'}-fallback",
    )
    info = quantize(path, fb.excluded)  # the chosen model, written where the bundle takes it from
    info["excluded_nodes"] = fb.excluded
    info["sensitivity"] = {
        "all_int8_agreement": result["top1_agreement"],
        "candidates": len(nodes),
        "ranking": [[n, round(e, 5)] for n, e in fb.ranking[:10]],
        "tried": [[k, round(a, 4)] for k, a in fb.tried],
        "ranked_on": len(sample),
    }
    return fb.result, info


def inpainter_fallback(
    fmt: ExportFormat, run: ExportRun, path: Path, classifier: Path, result: dict[str, Any], info: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The INT8 inpainter of flavour ``fmt`` at ``path`` leaves the whole pipeline (with ``classifier``, of the same
    flavour) below the gate: keep its most sensitive nodes in float. Nodes are ranked by the error of the inpainted
    image on the first 64 calibration faces and their masks; the steps stop when the whole pipeline passes on the
    held-out faces. Returns ``(pipeline result, quantisation record)`` like :func:`sensitivity_fallback`.
    """
    from .agreement import run_onnx
    from .inpaint_check import feeds
    from .sensitivity import candidates, fallback

    assert fmt.int8 is not None and fmt.make is not None
    if result["top1_agreement"] >= run.agreement or run.max_float_nodes <= 0:
        return result, {**info, "excluded_nodes": []}
    import onnxruntime as ort

    sample = run.calib.inputs[:64]
    masks = {id(sample): run.calib.masks[:64], id(run.heldout.inputs): run.heldout.masks}
    nodes = candidates(run.models["inpainter"], fmt.int8.fallback_ops)

    def quantize(dst: Path, exclude: list[str]) -> dict[str, Any]:
        return fmt.make(fmt, run, "inpainter", dst, exclude)

    def inpaint(model: Path, x: np.ndarray) -> np.ndarray:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
        if fmt.simulate:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        m = masks[id(x)]
        return np.concatenate(
            [
                sess.run(None, feeds(model, x[i : i + 64], m[i : i + 64], run.spec.layout))[0]
                for i in range(0, len(x), 64)
            ]
        )

    def judge(images: np.ndarray) -> dict[str, Any]:
        return run.compare(run_onnx(classifier, images, simulate=fmt.simulate), run.pipeline_reference)

    fb = fallback(
        quantize,
        inpaint,
        judge,
        run.agreement,
        nodes=nodes,
        calib_inputs=sample,
        calib_reference=inpaint(run.models["inpainter"], sample),
        heldout_inputs=run.heldout.inputs,
        max_excluded=min(run.max_float_nodes, len(nodes) - 1),
        work=run.work / f"{fmt.key}-inpainter-fallback",
    )
    info = quantize(path, fb.excluded)
    info["excluded_nodes"] = fb.excluded
    info["sensitivity"] = {
        "all_int8_agreement": result["top1_agreement"],
        "candidates": len(nodes),
        "ranking": [[n, round(e, 5)] for n, e in fb.ranking[:10]],
        "tried": [[k, round(a, 4)] for k, a in fb.tried],
        "ranked_on": len(sample),
        "judged_on": "whole pipeline",
    }
    return fb.result, info


def require_some(variants: Sequence[Variant]) -> None:
    """Raise ExportError (one line per failed variant) when every requested variant failed its gate."""
    failed = [v for v in variants if not v.passed]
    if variants and len(failed) == len(variants):
        raise ExportError(
            "no requested precision passed the agreement gate, nothing written:\n  "
            + "\n  ".join(str(v.message) for v in failed)
        )
