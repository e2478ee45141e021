"""``ofer profile [BUNDLE]``: latency and throughput of every engine and every pipeline stage on this machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.errors import InputError

from .args import add_recognizer_args, distinct_outputs, make_parent, output_path, recognizer_from_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "profile",
        help="measure every engine and pipeline stage (ms p50/p90/p95/p99, items/s)",
        description="Times every engine the pipeline runs on its own at several batch sizes "
        "(classifier, inpainter, occlusion estimator, detector engines), and each stage "
        "(detect, crop, occlusion, normalize, inpaint, classify, predictions) on a real "
        "frame; the stages add up to the total predict().",
    )
    p.add_argument(
        "bundle_path",
        nargs="?",
        default=None,
        metavar="BUNDLE",
        help="bundle folder (default: --bundle, or the bundle shipped with ofer)",
    )
    p.add_argument("--frame", default=None, help="image to measure the stages on (default: a synthetic frame)")
    p.add_argument("--batch", default="1,8", help="engine batch sizes, comma separated")
    p.add_argument("--iters", type=int, default=100, help="timed iterations per measurement")
    p.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    p.add_argument("--json", default=None, help="write the report as JSON here")
    p.add_argument("--png", default=None, help="draw a bar chart comparing engines and stages here (.png)")
    p.add_argument("--force", action="store_true", help="overwrite existing --json/--png files")
    add_recognizer_args(p)
    p.set_defaults(func=run)


def _batches(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(b < 1 for b in sizes):
        raise InputError(f"--batch must be positive integers separated by commas (e.g. 1,8), got {text!r}")
    return sizes


def run(args: argparse.Namespace) -> int:
    if args.iters < 1 or args.warmup < 0:
        raise InputError(f"--iters must be >= 1 and --warmup >= 0, got {args.iters} and {args.warmup}")
    batches = _batches(args.batch)
    inputs = [args.frame] if args.frame else []
    json_path = output_path(args.json, args.force, "--json", inputs=inputs)
    png_path = output_path(args.png, args.force, "--png", suffixes=(".png",), inputs=inputs)
    distinct_outputs(json=json_path, png=png_path)
    if args.bundle_path:
        args.bundle = args.bundle_path
    recognizer = recognizer_from_args(args)
    report = recognizer.profile(
        args.frame,
        iters=args.iters,
        batch_sizes=batches,
        warmup=args.warmup,
        engines="loaded" if args.precision else "all",
    )
    print(report)
    if json_path is not None:
        report.save_json(make_parent(json_path))
        print(f"ofer profile: JSON report in {json_path}", file=sys.stderr)
    if png_path is not None:
        report.save_png(make_parent(png_path))
        print(f"ofer profile: chart in {png_path}", file=sys.stderr)
    return 0
