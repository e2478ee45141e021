"""FP32 ONNX (+ optional inpainter) -> a bundle with FP16 / INT8 variants, checked on held-out occluded faces.

:func:`export_bundle` is what ``ofer export`` runs once the model is ONNX: it converts, calibrates on occluded faces,
measures top-1 agreement with FP32 and accuracy per occlusion protocol on a *held-out* occluded set, refuses
(ExportError) a precision whose agreement is below the threshold, writes a native TensorRT calibration cache next
to the models, and records everything in the manifest.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from calibration.sets import DEFAULT_CACHE
from runtime.bundle import Bundle, InputSpec, attach_file, write_bundle
from runtime.errors import BundleError, ExportError

from .formats import EXPORT_FORMATS, ExportFormat, check_method

TRT_CACHE_FILE = "classifier.trt-calib.cache"
#: TensorRT version written into the cache header unless told otherwise (JetPack 6.x ships 10.3).
DEFAULT_TRT_VERSION = "10.3.0"


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
                  agreement: float = 0.97, faces: str = "detect", seed: int = 0, inpainter: str | None = None,
                  provenance: Mapping[str, Any] | None = None, name: str | None = None,
                  files: Sequence[str | os.PathLike[str]] = (), trt_version: str = DEFAULT_TRT_VERSION,
                  cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
                  force: bool = False) -> Bundle:
    """Write a bundle with the requested formats of ``classifier`` (FP32 ONNX).

    Args:
        classifier: FP32 ONNX classifier (copied as ``classifier.onnx``).
        out: Bundle folder.
        labels, input_spec: The model's class names and input spec (go into the manifest).
        formats: From :func:`export.formats.parse_precisions` (ONNX formats; ``fp32`` is always written).
        calib_source: Calibration/held-out face source (see :mod:`calibration.sources`); required for INT8.
        calib_method: ``minmax`` (default: best agreement measured on the FER model), ``entropy``, ``percentile``.
        calib_count, heldout_count: Calibration faces; held-out faces (each under every evaluation protocol).
        agreement: Minimum top-1 agreement with FP32 for every FP16/INT8 variant.
        faces: ``detect`` or ``whole`` (images are face crops).
        seed: Seeds face choice, protocol assignment and occluders.
        inpainter: Optional FP32 ONNX inpainter (bundle gets the inpaint/auto pipelines).
        provenance, name: Manifest provenance (export metrics are added) and bundle name.
        files: Other files the bundle carries, e.g. the licence texts ``provenance.licence_file`` names.
        trt_version: TensorRT version named in the native calibration cache header (must match the device's).
        cache_dir: Calibration-set cache folder (``None``: no cache).
        force: Replace an existing bundle.

    Raises:
        ExportError: a precision falls below ``agreement`` (nothing is written), a conversion fails, or INT8 was
            asked for without ``calib_source``.
        BundleError: ``out`` exists and ``force`` is not set.
    """
    classifier = Path(classifier)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise BundleError(f"{out} already exists and is not empty; choose another --out or pass --force to replace it")
    method = check_method(calib_method)
    cache = cache_dir
    keys = [f.key for f in formats if f.format == "onnx"]
    int8 = [k for k in keys if EXPORT_FORMATS[k].calibrated]
    if int8 and not calib_source:
        raise ExportError("INT8 export needs calibration faces: pass --calib (a folder of face images, a video, a "
                          "dataset spec such as fer2013:/data/fer2013.csv, or 'procedural')")
    engines: list[dict[str, Any]] = []
    report: dict[str, Any] = {"threshold": agreement, "method": method}
    with tempfile.TemporaryDirectory(prefix=".ofer-export.", dir=out.parent if out.parent.exists() else None) as t:
        tmp = Path(t)
        classifier = self_contained(classifier, tmp)
        inpainter = self_contained(Path(inpainter), tmp) if inpainter is not None else None
        engines.append({"name": "classifier", "path": classifier, "format": "onnx", "precision": "fp32",
                        "role": "classifier", "file": EXPORT_FORMATS["fp32"].file_name("classifier")})
        heldout = None
        if len(keys) > 1:
            from calibration.sets import build_heldout_set

            from .agreement import check_agreement, compare, run_onnx

            source = calib_source or "procedural"
            heldout = build_heldout_set(source, input_spec, count=heldout_count, seed=seed + 1, faces=faces,
                                        cache_dir=cache)
            reference = run_onnx(classifier, heldout.inputs)
            report["heldout"] = {"source": source, **heldout.describe()}
        if "fp16" in keys:
            from .fp16 import convert_fp16

            fmt = EXPORT_FORMATS["fp16"]
            path = tmp / fmt.file_name("classifier")
            info = convert_fp16(classifier, path)
            result = compare(reference, run_onnx(path, heldout.inputs), heldout.protocols, heldout.labels,
                             heldout.label_names, labels)
            report["fp16"] = result
            check_agreement(result, agreement, what="fp16")
            engines.append({"name": fmt.engine_name("classifier"), "path": path, "file": path.name, "format": "onnx",
                            "precision": "fp16", "role": "classifier", "conversion": info,
                            "agreement": result["top1_agreement"]})
        if int8:
            from calibration.ranges import amax_table, compute_ranges
            from calibration.reader import ArrayCalibrationReader
            from calibration.sets import build_calibration_set
            from calibration.trt_cache import write_trt_cache

            from .quantize import quantize_int8

            calib = build_calibration_set(calib_source, input_spec, count=calib_count, seed=seed, faces=faces,
                                          cache_dir=cache)
            report["calibration"] = {"source": calib_source, **calib.describe()}
            reader = ArrayCalibrationReader(calib.inputs, _input_name(classifier))
            ranges = compute_ranges(classifier, reader, method)
            for key in int8:
                fmt = EXPORT_FORMATS[key]
                path = tmp / fmt.file_name("classifier")
                info = quantize_int8(classifier, path, ranges, flavour=key, method=method, reader=reader)
                # int8-trt is judged as TensorRT computes it (exact Q/DQ maths), int8-cpu as ONNX Runtime CPU runs it.
                result = compare(reference, run_onnx(path, heldout.inputs, simulate=key == "int8-trt"),
                                 heldout.protocols, heldout.labels, heldout.label_names, labels)
                report[key] = result
                check_agreement(result, agreement, what=f"{key} ({method})", method=method)
                engines.append({"name": fmt.engine_name("classifier"), "path": path, "file": path.name,
                                "format": "onnx", "precision": "int8", "role": "classifier", "quantization": info,
                                "agreement": result["top1_agreement"]})
            cache_file = tmp / TRT_CACHE_FILE
            if method in ("entropy", "minmax"):
                write_trt_cache(cache_file, amax_table(ranges), trt_version=trt_version, method=method)
        if inpainter is not None:
            engines.append({"name": "inpainter", "path": Path(inpainter), "file": "inpainter.onnx", "format": "onnx",
                            "precision": "fp32", "role": "inpainter", "output": "image"})
        prov = dict(provenance or {})
        prov.setdefault("metrics", {})
        prov["metrics"] = {**prov["metrics"], "export": report}
        bundle = write_bundle(out, labels=labels, input_spec=input_spec, engines=engines,
                              pipelines=["direct", "inpaint", "auto"] if inpainter else ["direct"], provenance=prov,
                              name=name, files=files, force=force)
        if int8 and (tmp / TRT_CACHE_FILE).is_file():
            bundle = attach_file(bundle.path, tmp / TRT_CACHE_FILE, "trt_calibration_cache",
                                 {"method": method, "tensorrt": trt_version, "source_onnx": "classifier"})
    return bundle
