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
    from export.tensorrt import EngineJob, build_engines
    from runtime.bundle import load_bundle
    from runtime.errors import InputError

    from .args import check_writable

    formats = parse_precisions(args.precision, target="trt")
    try:
        lo, opt, hi = (int(v) for v in args.batch.split(","))
    except ValueError:
        raise InputError(f"--batch must be three integers min,opt,max, got {args.batch!r}") from None
    bundle = load_bundle(args.bundle)
    check_writable(Path(bundle.path) / "manifest.json", "bundle")  # engines are added to the bundle folder

    def built(job: EngineJob) -> None:
        print(f"built {job.out.name}: {job.fmt.description} ({', '.join(job.plan.notes) or 'default'})")

    build_engines(
        bundle, formats, batch=(lo, opt, hi), workspace_mb=args.workspace_mb, force=args.force, on_built=built
    )
    return 0
