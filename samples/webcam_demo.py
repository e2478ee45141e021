"""Live expression recognition from a camera: a window when a display exists, else annotated video on disk.

Usage::

    python samples/webcam_demo.py                 # camera 0, window (q quits)
    python samples/webcam_demo.py 1 --smooth ema:0.5
    python samples/webcam_demo.py clip.mp4 --headless --out demo.avi --limit 100   # a video in place of a camera
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import VideoOut, add_model_args, annotate, checked_outputs, display_available


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", nargs="?", default="0", help="camera index (default 0) or a video file")
    p.add_argument("--headless", action="store_true", help="never open a window")
    p.add_argument("--out", default="webcam_demo.avi", help="annotated video when there is no window")
    p.add_argument("--limit", type=int, default=None, help="stop after this many frames")
    p.add_argument("--smooth", default="ema:0.5", help="per-face smoothing (ema:ALPHA, window:N or none)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (never the input)")
    add_model_args(p)
    args = p.parse_args(argv)

    import cv2

    import sdk

    rec = sdk.Recognizer(args.bundle, backend=args.backend, pipeline=args.pipeline, threads=args.threads)
    window = not args.headless and display_available()
    if not window:
        checked_outputs(args.force, [args.source], out=args.out)
    out = None if window else VideoOut(args.out, None)
    source = args.source  # a camera index, unless a file of that name exists
    smooth = None if args.smooth == "none" else args.smooth
    n = 0
    with rec.stream(source, smooth=smooth) as results:
        for r in results:
            if r.error is not None:
                print(f"webcam_demo: {r.error}", file=sys.stderr)
                continue
            image = annotate(r.image, r.predictions)
            cv2.putText(image, f"{r.latency_ms:.0f} ms", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
            if window:
                cv2.imshow("ofer", image)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            else:
                out.write(image)
                print(
                    json.dumps(
                        {
                            "frame": r.frame_index,
                            "faces": [
                                {
                                    "track_id": q.track_id,
                                    "label": q.label,
                                    "confidence": round(q.confidence, 3),
                                    "pipeline": q.pipeline,
                                }
                                for q in r.predictions
                            ],
                        }
                    )
                )
            n += 1
            if args.limit is not None and n >= args.limit:
                break
    if window:
        cv2.destroyAllWindows()
    else:
        out.close()
        print(f"webcam_demo: {n} frames, annotated video in {out.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
