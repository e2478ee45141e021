"""FP32 ONNX (+ optional inpainter) -> a bundle with FP16 / INT8 variants, checked on held-out occluded faces.

:func:`export_bundle` is what ``ofer export`` runs once the model is ONNX (an :class:`export.source.ExportSource`):
a loop over the requested entries of the format table (:mod:`export.formats`), each made and judged against FP32 on
a *held-out* occluded set by :func:`export.variants.export_variant` (INT8 calibrated on occluded faces of the
model's own domain; a flavour below the gate first gets the sensitivity fallback). It keeps the variants that pass,
reports the ones that do not, writes a native TensorRT calibration cache next to the models (minmax and entropy
ranges), and records everything in the manifest: parity, calibration source, agreement and accuracy per protocol
per precision, excluded nodes, times.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from calibration.config import DEFAULT_TRT_VERSION, CalibrationConfig
from runtime.bundle import Bundle, attach_file, write_bundle
from runtime.errors import BundleError, ExportError

from .formats import EXPORT_FORMATS, ExportFormat
from .source import ExportSource, self_contained

if TYPE_CHECKING:
    from .variants import ExportRun, Variant

__all__ = [
    "DEFAULT_AGREEMENT",
    "DEFAULT_MAX_FLOAT_NODES",
    "DEFAULT_TRT_VERSION",
    "TRT_CACHE_FILE",
    "export_bundle",
    "self_contained",
]

TRT_CACHE_FILE = "classifier.trt-calib.cache"
#: Default agreement gate: top-1 agreement with FP32 on held-out occluded faces.
DEFAULT_AGREEMENT = 0.98
#: Default cap on the nodes the INT8 sensitivity fallback keeps in float.
DEFAULT_MAX_FLOAT_NODES = 24
#: What of :func:`export.onnx.export_onnx`'s report goes into the manifest as conversion parity.
PARITY_KEYS = ("max_abs_diff", "top1_agreement", "opset", "inputs")


def _check_inputs(source: ExportSource) -> None:
    """Every source model takes the crops of ``source.input_spec``: checked before any calibration or ONNX Runtime
    session, so a mismatch (e.g. a 32x32 inpainter before a 64x64 classifier) is one clear error."""
    from runtime.bundle_checks import check_image_input
    from runtime.onnx_info import read_onnx_info

    for role, path in (("classifier", source.classifier), ("inpainter", source.inpainter)):
        if path is None:
            continue
        what = f"the {role} {Path(path).name}"
        try:
            check_image_input(read_onnx_info(Path(path).read_bytes(), what), role, source.input_spec, what)
        except BundleError as exc:
            raise ExportError(f"cannot export: {exc}") from None


def export_bundle(
    source: ExportSource,
    out: str | os.PathLike[str],
    *,
    formats: Sequence[ExportFormat],
    calibration: CalibrationConfig = CalibrationConfig(),
    agreement: float = DEFAULT_AGREEMENT,
    max_float_nodes: int = DEFAULT_MAX_FLOAT_NODES,
    name: str | None = None,
    force: bool = False,
) -> Bundle:
    """Write a bundle with the requested formats of ``source`` (FP32 ONNX models).

    Every FP16/INT8 variant is judged on its own against FP32 on held-out occluded faces: the variants that pass
    go into the bundle, the ones that do not are recorded (``provenance.metrics.export[KEY].passed = false`` and
    the reason) and left out. An INT8 flavour that misses the gate first gets the sensitivity fallback
    (:mod:`export.sensitivity`: its most sensitive nodes stay in float, recorded as ``excluded_nodes``). With an
    inpainter, each variant's inpainter of the same format is made and the whole pipeline judged.

    Args:
        source: FP32 classifier (copied as ``classifier.onnx``), optional inpainter, labels, input spec, provenance
            (export metrics are added), licence files and conversion parity.
        out: Bundle folder.
        formats: From :func:`export.formats.parse_precisions` (ONNX formats; ``fp32`` is always written).
        calibration: Calibration and held-out faces, range method, TensorRT cache version
            (:class:`calibration.config.CalibrationConfig`); the source must be from the model's own domain
            (:func:`export.int8.check_calibration_domain`); ``None`` means ``procedural`` for a procedural model.
        agreement: Minimum top-1 agreement with FP32 for every FP16/INT8 variant.
        max_float_nodes: The most nodes the INT8 sensitivity fallback may keep in float (0: no fallback).
        name: Bundle name (default: the folder's name).
        force: Replace an existing bundle.

    Raises:
        ExportError: every requested variant fell below ``agreement`` (nothing is written), a conversion fails, or
            the calibration faces are missing or from the wrong domain.
        BundleError: ``out`` exists and ``force`` is not set.
    """
    from .int8 import check_calibration_domain, require_some
    from .variants import ExportRun, export_variant, reference_entries

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise BundleError(f"{out} already exists and is not empty; choose another --out or pass --force to replace it")
    _check_inputs(source)
    variants = [f for f in formats if f.format == "onnx" and f.make is not None]
    prov = dict(source.provenance)
    if any(f.calibrated for f in variants):
        calibration = calibration.with_source(
            check_calibration_domain(calibration.source, prov, allow_mismatch=calibration.allow_domain_mismatch)
        )
    with tempfile.TemporaryDirectory(prefix=".ofer-export.", dir=out.parent if out.parent.exists() else None) as t:
        tmp = Path(t)
        run = ExportRun(source, calibration, agreement=agreement, max_float_nodes=max_float_nodes, work=tmp)
        engines = reference_entries(EXPORT_FORMATS["fp32"], run)
        fp32 = run.compare(run.reference) if variants else None
        done = [export_variant(fmt, run) for fmt in variants]
        require_some(done)
        engines += [e for v in done for e in v.entries]
        engines.sort(key=lambda e: e["role"] != "classifier")  # classifiers first, each role in table order
        report = _report(source, run, fp32, done, calibration.method)
        report["seconds"] = round(time.perf_counter() - started, 2)
        prov["metrics"] = {**prov.get("metrics", {}), "export": report}
        bundle = write_bundle(
            out,
            labels=source.labels,
            input_spec=source.input_spec,
            engines=engines,
            pipelines=["direct", "inpaint", "auto"] if source.inpainter else ["direct"],
            provenance=prov,
            name=name,
            files=source.files,
            force=force,
        )
        if _write_trt_cache(run, tmp / TRT_CACHE_FILE):
            bundle = attach_file(
                bundle.path,
                tmp / TRT_CACHE_FILE,
                "trt_calibration_cache",
                {"method": calibration.method, "tensorrt": calibration.trt_version, "source_onnx": "classifier"},
            )
    return bundle


def _report(
    source: ExportSource, run: ExportRun, fp32: dict[str, Any] | None, done: Sequence[Variant], method: str
) -> dict[str, Any]:
    """The export record (``provenance.metrics.export``): gate, parity, held-out and calibration faces, one record
    per format (the calibration record with the INT8 ones), the FP32 pipeline, the outcome per variant."""
    report: dict[str, Any] = {"threshold": run.agreement, "method": method}
    if source.parity:
        report["parity"] = {
            role: {k: info.get(k) for k in PARITY_KEYS if k in info} for role, info in source.parity.items()
        }
    if "heldout" in run.records:
        report["heldout"] = run.records["heldout"]
    if fp32 is not None:
        report["fp32"] = fp32
    for v in done:
        if v.fmt.calibrated and "calibration" in run.records:
            report.setdefault("calibration", run.records["calibration"])
        report[v.fmt.key] = v.record
    if "fp32_pipeline" in run.records:
        report["fp32_pipeline"] = run.records["fp32_pipeline"]
    report["outcome"] = {v.fmt.key: "passed" if v.passed else "failed" for v in done}
    return report


def _write_trt_cache(run: ExportRun, path: Path) -> bool:
    """Write the native TensorRT calibration cache of the classifier's ranges when an INT8 classifier passed its
    gate and the method is one TensorRT has (minmax, entropy); whether it was written."""
    from calibration.trt_cache import ALGORITHMS, write_trt_cache

    method = run.calibration.method
    if not run.int8_passed or method not in ALGORITHMS:
        return False
    from calibration.ranges import amax_table

    ranges, _ = run.ranges("classifier")
    write_trt_cache(path, amax_table(ranges), trt_version=run.calibration.trt_version, method=method)
    return True
