"""Annotate a video: boxes, labels and scores drawn on every frame, plus one JSON line per face and a CSV series.

Usage::

    python samples/annotate_video.py clip.mp4 --out clip_annotated.mp4 --jsonl clip.jsonl --csv clip.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from contextlib import ExitStack

from _common import VideoOut, add_model_args, annotate, checked_outputs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", help="input video file")
    p.add_argument("--out", required=True, help="annotated video (.mp4: H.264 when available, else mp4v; .avi: MJPG)")
    p.add_argument("--jsonl", required=True, help="one JSON line per face per frame")
    p.add_argument("--csv", default=None, help="frame, time, track_id, label, pipeline, occlusion, a score per label")
    p.add_argument("--smooth", default=None, help="per-face smoothing: ema:ALPHA or window:N")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (never the input)")
    add_model_args(p)
    args = p.parse_args(argv)
    checked_outputs(args.force, [args.video], out=args.out, jsonl=args.jsonl, csv=args.csv)

    import sdk
    from runtime.sources import open_source

    rec = sdk.Recognizer(args.bundle, backend=args.backend, pipeline=args.pipeline, threads=args.threads)
    source = open_source(args.video)
    if source.kind != "video":
        raise SystemExit(f"{args.video} is not a video file")
    out = VideoOut(args.out, source.fps)
    labels = list(rec.labels)
    faces = 0
    with open(args.jsonl, "w", encoding="utf-8") as jl, ExitStack() as stack:
        table = csv.writer(stack.enter_context(open(args.csv, "w", newline="", encoding="utf-8"))) if args.csv else None
        if table:
            table.writerow(["frame", "time", "track_id", "label", "pipeline", "occlusion", *labels])
        with rec.stream(source, mode="offline", smooth=args.smooth) as results:
            for r in results:
                if r.error is not None:
                    print(f"annotate_video: {r.error}", file=sys.stderr)
                    continue
                out.write(annotate(r.image, r.predictions))
                for face, q in enumerate(r.predictions):
                    faces += 1
                    jl.write(
                        json.dumps({"frame": r.frame_index, "time": round(r.time, 4), "face": face, **q.to_dict()})
                        + "\n"
                    )
                    if table:
                        table.writerow(
                            [
                                r.frame_index,
                                f"{r.time:.4f}",
                                q.track_id,
                                q.label,
                                q.pipeline,
                                "" if q.occlusion is None else f"{q.occlusion:.4f}",
                                *(f"{q.scores[k]:.6f}" for k in labels),
                            ]
                        )
    out.close()
    print(
        f"annotate_video: {out.frames} frames, {faces} faces -> {args.out} ({out.codec}), {args.jsonl}"
        + (f", {args.csv}" if args.csv else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
