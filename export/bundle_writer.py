"""FP32 ONNX (+ optional inpainter) -> a bundle with FP16 / INT8 variants, checked on held-out occluded faces.

:func:`export_bundle` is what ``ofer export`` runs once the model is ONNX: it converts, calibrates on occluded faces
of the model's own domain, measures top-1 agreement with FP32 and accuracy per occlusion protocol on a *held-out*
occluded set, keeps the variants that pass and reports the ones that do not (INT8 flavours first get the
sensitivity fallback), writes a native TensorRT calibration cache next to the models (minmax and entropy ranges),
and records everything in the manifest: parity, calibration source, agreement and accuracy per protocol per
precision, excluded nodes, times.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from calibration.sets import DEFAULT_CACHE
from runtime.bundle import Bundle, InputSpec, attach_file, write_bundle
from runtime.errors import BundleError, ExportError

from .agreement import gate_failure
from .formats import EXPORT_FORMATS, ExportFormat, check_method
from .int8 import check_calibration_domain, model_domain, require_some, source_domain

TRT_CACHE_FILE = "classifier.trt-calib.cache"
#: TensorRT version written into the cache header unless told otherwise (JetPack 6.x ships 10.3).
DEFAULT_TRT_VERSION = "10.3.0"
#: Default agreement gate: top-1 agreement with FP32 on held-out occluded faces.
DEFAULT_AGREEMENT = 0.98
#: Default cap on the nodes the INT8 sensitivity fallback keeps in float.
DEFAULT_MAX_FLOAT_NODES = 24
#: What of :func:`export.onnx.export_onnx`'s report goes into the manifest as conversion parity.
PARITY_KEYS = ("max_abs_diff", "top1_agreement", "opset", "inputs")


def self_contained(onnx_path: Path, work: Path) -> Path:
    """``onnx_path``, or a copy in ``work`` with its external data inlined: a bundle engine is one file, covered by
    one sha256 (loading refuses external data). Models over protobuf's 2 GB limit cannot be inlined.

    Raises:
        ExportError: The external data cannot be read or the model is too large for one file.
    """
    from runtime.onnx_info import read_onnx_info

    if not read_onnx_info(onnx_path.read_bytes(), str(onnx_path)).external:
        return onnx_path
    import onnx

    dest = work / f"inlined-{onnx_path.name}"
    try:
        onnx.save(onnx.load(str(onnx_path)), str(dest))  # load() reads the external files; save() writes one file
    except Exception as exc:  # onnx raises ValueError/OSError/protobuf errors
        raise ExportError(f"cannot inline the external data of {onnx_path} ({str(exc).splitlines()[0]}); ofer "
                          "bundles hold self-contained ONNX files (at most 2 GB)") from None
    return dest


def _input_name(onnx_path: Path) -> str:
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name


def export_bundle(classifier: str | os.PathLike[str], out: str | os.PathLike[str], *, labels: Sequence[str],
                  input_spec: InputSpec, formats: Sequence[ExportFormat], calib_source: str | None = None,
                  calib_method: str = "minmax", calib_count: int = 256, heldout_count: int = 64,
                  agreement: float = DEFAULT_AGREEMENT, faces: str = "detect", seed: int = 0,
                  inpainter: str | None = None, provenance: Mapping[str, Any] | None = None, name: str | None = None,
                  files: Sequence[str | os.PathLike[str]] = (), trt_version: str = DEFAULT_TRT_VERSION,
                  cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE, force: bool = False,
                  heldout_source: str | None = None, calib_note: str | None = None,
                  max_float_nodes: int = DEFAULT_MAX_FLOAT_NODES, allow_domain_mismatch: bool = False,
                  parity: Mapping[str, Any] | None = None) -> Bundle:
    """Write a bundle with the requested formats of ``classifier`` (FP32 ONNX).

    Every FP16/INT8 variant is judged on its own against FP32 on held-out occluded faces: the variants that pass
    go into the bundle, the ones that do not are recorded (``provenance.metrics.export[KEY].passed = false`` and
    the reason) and left out. An INT8 flavour that misses the gate first gets the sensitivity fallback
    (:mod:`export.sensitivity`: its most sensitive nodes stay in float, recorded as ``excluded_nodes``).

    Args:
        classifier: FP32 ONNX classifier (copied as ``classifier.onnx``).
        out: Bundle folder.
        labels, input_spec: The model's class names and input spec (go into the manifest).
        formats: From :func:`export.formats.parse_precisions` (ONNX formats; ``fp32`` is always written).
        calib_source: Calibration face source (see :mod:`calibration.sources`); from the model's own domain
            (:func:`export.int8.check_calibration_domain`). ``None``: ``procedural`` for a procedural model.
        calib_method: ``minmax`` (default), ``entropy`` or ``percentile`` (no TensorRT cache for percentile).
        calib_count, heldout_count: Calibration samples; held-out faces (each under every held-out protocol).
        agreement: Minimum top-1 agreement with FP32 for every FP16/INT8 variant.
        faces: ``detect`` or ``whole`` (images are face crops).
        seed: Seeds face choice, protocol assignment and occluders.
        inpainter: Optional FP32 ONNX inpainter (bundle gets the inpaint/auto pipelines).
        provenance, name: Manifest provenance (export metrics are added) and bundle name.
        files: Other files the bundle carries, e.g. the licence texts ``provenance.licence_file`` names.
        trt_version: TensorRT version named in the native calibration cache header (must match the device's).
        cache_dir: Calibration-set cache folder (``None``: no cache).
        force: Replace an existing bundle.
        heldout_source: Where the held-out faces come from (default: the other part of ``calib_source``), e.g.
            other people than the calibration faces.
        calib_note: Free text recorded with the calibration source (e.g. "research-use-only media").
        max_float_nodes: The most nodes the INT8 sensitivity fallback may keep in float (0: no fallback).
        allow_domain_mismatch: Calibrate a model of real faces on procedural faces anyway.
        parity: ONNX-vs-PyTorch parity of the conversion (``{role: export_onnx info}``), recorded.

    Raises:
        ExportError: every requested variant fell below ``agreement`` (nothing is written), a conversion fails, or
            the calibration faces are missing or from the wrong domain.
        BundleError: ``out`` exists and ``force`` is not set.
    """
    started = time.perf_counter()
    classifier = Path(classifier)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise BundleError(f"{out} already exists and is not empty; choose another --out or pass --force to replace it")
    method = check_method(calib_method)
    cache = cache_dir
    keys = [f.key for f in formats if f.format == "onnx"]
    int8 = [k for k in keys if EXPORT_FORMATS[k].calibrated]
    prov = dict(provenance or {})
    if int8:
        calib_source = check_calibration_domain(calib_source, prov, allow_mismatch=allow_domain_mismatch)
    engines: list[dict[str, Any]] = []
    report: dict[str, Any] = {"threshold": agreement, "method": method}
    if parity:
        report["parity"] = {role: {k: info.get(k) for k in PARITY_KEYS if k in info} for role, info in parity.items()}
    outcomes: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}  # key -> classifier engine entry (passed its own gate)
    inpainter_variants: dict[str, dict[str, Any]] = {}
    calib = None
    with tempfile.TemporaryDirectory(prefix=".ofer-export.", dir=out.parent if out.parent.exists() else None) as t:
        tmp = Path(t)
        classifier = self_contained(classifier, tmp)
        inpainter = self_contained(Path(inpainter), tmp) if inpainter is not None else None
        engines.append({"name": "classifier", "path": classifier, "format": "onnx", "precision": "fp32",
                        "role": "classifier", "file": EXPORT_FORMATS["fp32"].file_name("classifier")})
        if len(keys) > 1:
            from calibration.sets import build_heldout_set

            from .agreement import compare, run_onnx

            source = heldout_source or calib_source or "procedural"
            heldout = build_heldout_set(source, input_spec, count=heldout_count, seed=seed + 1, faces=faces,
                                        cache_dir=cache, part="all" if heldout_source else "heldout")
            reference = run_onnx(classifier, heldout.inputs)
            report["heldout"] = {"source": source, "domain": source_domain(source), **heldout.describe()}

            def judge(outputs: Any) -> dict[str, Any]:
                return compare(reference, outputs, heldout.protocols, heldout.labels, heldout.label_names, labels)

            report["fp32"] = judge(reference)
        if "fp16" in keys:
            from .fp16 import convert_fp16

            t0 = time.perf_counter()
            fmt = EXPORT_FORMATS["fp16"]
            path = tmp / fmt.file_name("classifier")
            info = convert_fp16(classifier, path)
            result = judge(run_onnx(path, heldout.inputs))
            message = gate_failure(result, agreement, what="fp16")
            outcomes["fp16"] = {"passed": message is None, "message": message}
            report["fp16"] = {**result, "passed": message is None, "seconds": round(time.perf_counter() - t0, 2),
                              **({"failure": message} if message else {})}
            if message is None:
                variants["fp16"] = {"name": fmt.engine_name("classifier"), "path": path, "file": path.name,
                                    "format": "onnx", "precision": "fp16", "role": "classifier", "conversion": info,
                                    "agreement": result["top1_agreement"]}
        cache_written = False
        if int8:
            from calibration.ranges import amax_table, compute_ranges
            from calibration.reader import ArrayCalibrationReader
            from calibration.sets import build_calibration_set
            from calibration.trt_cache import ALGORITHMS, write_trt_cache

            from .int8 import export_int8

            t0 = time.perf_counter()
            calib = build_calibration_set(calib_source, input_spec, count=calib_count, seed=seed, faces=faces,
                                          cache_dir=cache)
            report["calibration"] = {"source": calib_source, "domain": source_domain(calib_source),
                                     "model_domain": model_domain(prov), "method": method,
                                     **({"note": calib_note} if calib_note else {}), **calib.describe()}
            reader = ArrayCalibrationReader(calib.inputs, _input_name(classifier))
            ranges = compute_ranges(classifier, reader, method)
            report["calibration"]["seconds"] = round(time.perf_counter() - t0, 2)
            results = export_int8(classifier, int8, ranges=ranges, method=method, reader=reader,
                                  calib_inputs=calib.inputs, heldout_inputs=heldout.inputs, reference=reference,
                                  judge=judge, threshold=agreement, max_float_nodes=max_float_nodes, work=tmp)
            for key, o in results.items():
                outcomes[key] = {"passed": o.passed, "message": o.message}
                report[key] = {**o.result, "passed": o.passed, "seconds": round(o.seconds, 2),
                               "excluded_nodes": o.quantization["excluded_nodes"],
                               "quantizable_nodes": o.quantization.get("sensitivity", {}).get("candidates"),
                               **({"failure": o.message} if o.message else {})}
                if o.passed:
                    fmt = EXPORT_FORMATS[key]
                    variants[key] = {"name": fmt.engine_name("classifier"), "path": o.path,
                                     "file": fmt.file_name("classifier"), "format": "onnx", "precision": "int8",
                                     "role": "classifier", "quantization": o.quantization,
                                     "agreement": o.result["top1_agreement"]}
            if method in ALGORITHMS and any(o.passed for o in results.values()):
                write_trt_cache(tmp / TRT_CACHE_FILE, amax_table(ranges), trt_version=trt_version, method=method)
                cache_written = True
        if inpainter is not None and variants:
            inpainter_variants = _check_pipelines(Path(inpainter), classifier, variants, outcomes, report,
                                                  heldout=heldout, calib=calib, layout=input_spec.layout,
                                                  method=method, threshold=agreement, labels=labels, work=tmp)
        require_some(outcomes)
        for key, entry in variants.items():
            if outcomes[key]["passed"]:
                engines.append(entry)
        if inpainter is not None:
            engines.append({"name": "inpainter", "path": Path(inpainter), "file": "inpainter.onnx", "format": "onnx",
                            "precision": "fp32", "role": "inpainter", "output": "image"})
            for key, entry in inpainter_variants.items():
                if outcomes[key]["passed"]:
                    engines.append(entry)
        report["outcome"] = {k: "passed" if o["passed"] else "failed" for k, o in outcomes.items()}
        report["seconds"] = round(time.perf_counter() - started, 2)
        prov.setdefault("metrics", {})
        prov["metrics"] = {**prov["metrics"], "export": report}
        bundle = write_bundle(out, labels=labels, input_spec=input_spec, engines=engines,
                              pipelines=["direct", "inpaint", "auto"] if inpainter else ["direct"], provenance=prov,
                              name=name, files=files, force=force)
        if cache_written:
            bundle = attach_file(bundle.path, tmp / TRT_CACHE_FILE, "trt_calibration_cache",
                                 {"method": method, "tensorrt": trt_version, "source_onnx": "classifier"})
    return bundle


def _check_pipelines(inpainter: Path, classifier: Path, variants: dict[str, dict[str, Any]],
                     outcomes: dict[str, dict[str, Any]], report: dict[str, Any], *, heldout: Any, calib: Any,
                     layout: str, method: str, threshold: float, labels: Sequence[str],
                     work: Path) -> dict[str, dict[str, Any]]:
    """Inpainter variants for the classifier variants that passed, each pair judged as the whole inpaint pipeline
    against the FP32 pipeline on the held-out faces and their masks; a pair below the gate fails its key.

    Returns the inpainter engine entries (key -> entry) of the pairs that passed.
    """
    from .agreement import compare
    from .inpaint_check import inpainter_variant, run_pipeline

    reference = run_pipeline(inpainter, classifier, heldout.inputs, heldout.masks, layout)
    report["fp32_pipeline"] = compare(reference, reference, heldout.protocols, heldout.labels, heldout.label_names,
                                      labels)
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in variants.items():
        fmt = EXPORT_FORMATS[key]
        path = work / fmt.file_name("inpainter")
        info = inpainter_variant(inpainter, key, path, calib=calib, layout=layout, method=method)
        got = run_pipeline(path, entry["path"], heldout.inputs, heldout.masks, layout, simulate=key == "int8-trt")
        result = compare(reference, got, heldout.protocols, heldout.labels, heldout.label_names, labels)
        message = gate_failure(result, threshold, what=f"{key} inpaint pipeline (inpainter + classifier)")
        report[key]["pipeline"] = {**result, "passed": message is None}
        if message is not None:
            outcomes[key] = {"passed": False, "message": message}
            report[key].update(passed=False, failure=message)
            continue
        entries[key] = {"name": fmt.engine_name("inpainter"), "path": path, "file": path.name, "format": "onnx",
                        "precision": fmt.precision, "role": "inpainter", "output": "image",
                        ("conversion" if key == "fp16" else "quantization"): info,
                        "agreement": result["top1_agreement"]}
    return entries
