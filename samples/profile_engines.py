"""Profile a bundle on this machine: every engine at several batch sizes and every pipeline stage on a real frame.

Writes the report as JSON and as a PNG chart and prints the table.

Usage::

    python samples/profile_engines.py --bundle BUNDLE --frame clip.mp4 --json profile.json --png profile.png
"""

from __future__ import annotations

import argparse
import sys

from _common import add_model_args, checked_outputs


def _frame(path: str):
    import cv2

    from runtime.frames import IMAGE_SUFFIXES

    if path.lower().endswith(IMAGE_SUFFIXES):
        return path
    cap = cv2.VideoCapture(path)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read a frame from {path}")
    return frame


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", default=None, help="image or video (its first frame) to profile the stages on")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-sizes", default="1,8", help="comma list of engine batch sizes")
    p.add_argument("--json", default="profile.json")
    p.add_argument("--png", default="profile.png")
    p.add_argument("--force", action="store_true", help="overwrite existing --json/--png files")
    add_model_args(p)
    args = p.parse_args(argv)
    if not args.png.lower().endswith(".png"):
        raise SystemExit(f"--png {args.png}: give the chart a .png name")
    checked_outputs(args.force, [args.frame] if args.frame else [], json=args.json, png=args.png)

    import sdk

    rec = sdk.Recognizer(args.bundle, backend=args.backend, pipeline=args.pipeline, threads=args.threads)
    batches = tuple(int(b) for b in args.batch_sizes.split(","))
    report = rec.profile(
        _frame(args.frame) if args.frame else None, iters=args.iters, warmup=args.warmup, batch_sizes=batches
    )
    print(report)  # the table, and how the stages add up to the total
    report.save_json(args.json)
    report.save_png(args.png)
    print(f"profile_engines: wrote {args.json} and {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
