"""Headset companion: a camera fixed to a VR headset sees the lower face at a fixed place; the upper half is hidden.

The face box is fixed (``--roi``, or found once on the first frame), the covered region is known
(``occlusion="upper_half"``), and the bundle decides the pipeline: with an inpainter the hidden half is filled in
before classification (``inpaint``); without one a lower-half model classifies the crop as it is (``direct``).
Prints one JSON line per frame.

Usage::

    python samples/headset_companion.py headset_cam.mp4 --roi 180,190,385,400 --bundle inpaint_bundle
    python samples/headset_companion.py clip.mp4 --simulate-headset --limit 50   # normal video, upper half hidden
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import VideoOut, add_model_args, annotate, checked_outputs


def _first_face(frame) -> tuple[float, float, float, float]:
    from runtime.detection import create_detector

    dets = create_detector("auto").detect(frame)
    if not dets:
        raise SystemExit("no face on the first frame; pass --roi x1,y1,x2,y2")
    return max(dets, key=lambda d: d.width * d.height).box


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="video file or camera index")
    p.add_argument("--roi", default=None, help="x1,y1,x2,y2 of the face in the frame (default: found on frame 0)")
    p.add_argument(
        "--simulate-headset",
        action="store_true",
        help="black out the upper half of the face region of every frame (demo on normal videos)",
    )
    p.add_argument("--limit", type=int, default=None, help="stop after this many frames")
    p.add_argument("--out", default=None, help="also write the annotated video here (.avi/.mp4)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (never the input)")
    add_model_args(p)
    p.set_defaults(pipeline=None)
    args = p.parse_args(argv)
    checked_outputs(args.force, [args.source], out=args.out)

    import sdk
    from runtime.bundle import load_bundle
    from runtime.preprocess import expand_box
    from sdk.recognizer import DEFAULT_BUNDLE
    from runtime.sources import open_source

    bundle = load_bundle(args.bundle or DEFAULT_BUNDLE)
    pipeline = args.pipeline or ("inpaint" if bundle.find_engines("inpainter") else "direct")
    source = open_source(args.source)
    frames = iter(source)
    first = next((f for f in frames if f.error is None), None)
    if first is None:
        raise SystemExit(f"{args.source} has no frames")
    roi = tuple(float(v) for v in args.roi.split(",")) if args.roi else _first_face(first.image)
    rec = sdk.Recognizer(
        bundle,
        backend=args.backend,
        detector="roi",
        roi=roi,
        pipeline=pipeline,
        occlusion="upper_half",
        threads=args.threads,
    )
    x1, y1, x2, y2 = expand_box(roi, bundle.input.crop_margin, offset=bundle.input.crop_offset)
    print(
        json.dumps(
            {
                "roi": [round(v, 1) for v in roi],
                "pipeline": rec.pipeline_name,
                "backend": rec.classifier.describe().get("device"),
            }
        ),
        flush=True,
    )
    out = VideoOut(args.out, source.fps) if args.out else None
    n = 0
    for frame in _chain(first, frames):
        if frame.error is not None:
            print(f"headset_companion: skipped {frame.name}: {frame.error}", file=sys.stderr)
            continue
        image = frame.image
        if args.simulate_headset:
            image = image.copy()
            image[max(0, int(y1)) : max(0, int((y1 + y2) / 2)), max(0, int(x1)) : max(0, int(x2))] = 20
        (pred,) = rec.predict(image)
        print(
            json.dumps(
                {
                    "frame": frame.index,
                    "label": pred.label,
                    "confidence": round(pred.confidence, 4),
                    "pipeline": pred.pipeline,
                    "occlusion": round(pred.occlusion, 3),
                    "ms": round(pred.timings_ms["total"], 2),
                }
            ),
            flush=True,
        )
        if out:
            out.write(annotate(image, [pred]))
        n += 1
        if args.limit is not None and n >= args.limit:
            break
    source.close()
    if out:
        out.close()
    print(f"headset_companion: {n} frames ({rec.pipeline_name})", file=sys.stderr)
    return 0


def _chain(first, rest):
    yield first
    yield from rest


if __name__ == "__main__":
    sys.exit(main())
