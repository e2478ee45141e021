"""``ofer build-engines BUNDLE [--precision fp16,int8] [--workspace-mb N]``: TensorRT engines, built on the device."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("build-engines", help="build TensorRT engines for this GPU from a bundle's ONNX files")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--precision", default="fp16", help="comma list of fp32, fp16, int8")
    p.add_argument("--workspace-mb", type=int, default=None, help="TensorRT workspace limit (small Jetsons: 256)")
    p.add_argument("--batch", default="1,8,32", help="optimisation profile batch sizes min,opt,max")
    p.add_argument("--force", action="store_true", help="replace engines the bundle already has")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from export.formats import parse_precisions
    from export.tensorrt import build_engine, plan_build, tensorrt_version
    from runtime.bundle import add_engines, load_bundle
    from runtime.errors import InputError

    formats = parse_precisions(args.precision, target="trt")
    try:
        lo, opt, hi = (int(v) for v in args.batch.split(","))
    except ValueError:
        raise InputError(f"--batch must be three integers min,opt,max, got {args.batch!r}") from None
    bundle = load_bundle(args.bundle)
    from .args import check_writable

    check_writable(Path(bundle.path) / "manifest.json", "bundle")  # engines are added to the bundle folder
    onnx = {}
    for e in bundle.find_engines("classifier", format="onnx"):
        key = e.extra.get("quantization", {}).get("flavour", e.precision)
        onnx.setdefault(key, e)
    cache = bundle.manifest.get("trt_calibration_cache")  # load_bundle checked its sha256
    cache_path = bundle.path / cache["file"] if cache else None
    version = tensorrt_version()  # EngineError with the install hint when TensorRT is missing
    built = []
    for fmt in formats:
        plan = plan_build(fmt.precision, version, list(onnx), has_cache=cache_path is not None)
        calibrator = None
        if plan.calibration in ("cache", "calibrator"):
            from calibration.trt_calibrators import make_trt_calibrator

            if plan.calibration == "calibrator":
                raise InputError("this bundle has neither an int8-trt Q/DQ model nor a TensorRT calibration cache; "
                                 "re-export it with `ofer export ... --precision int8 --calib SOURCE`")
            import numpy as np

            spec = bundle.input
            dummy = np.zeros((1, spec.channels, *spec.size), np.float32)  # never read: the cache answers
            calibrator = make_trt_calibrator(cache.get("method", "entropy"), dummy, cache_path=cache_path)
        out = Path(bundle.path) / fmt.file_name("classifier")
        source = onnx[plan.onnx_key].name
        meta = build_engine(bundle.engine_path(source), out, plan, onnx_bytes=bundle.read_engine(source),
                            batch=(lo, opt, hi),
                            workspace_mb=args.workspace_mb, calibrator=calibrator, cache_path=cache_path)
        built.append({"name": fmt.engine_name("classifier"), "path": out, "file": out.name, "format": "trt",
                      "precision": fmt.precision, "role": "classifier", "built_with": meta})
        print(f"built {out.name}: {fmt.description} ({', '.join(plan.notes) or 'default'})")
    add_engines(bundle.path, built, force=args.force)
    return 0
