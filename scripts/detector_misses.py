"""Why the two-stage detector misses faces: each missed face sorted by the stage that lost it (the TUNING split
by default).

    python scripts/detector_misses.py [--kinds hand,upper_half] [--seeds 3] [--split tune] [--verbose]

Per occluder kind (occluder seeds ``i + 1000 k`` as in ``scripts/tune_two_stage.py``), every face the detector
(``blazeface-verified``, default settings, cascade included) does not find is put in the first bucket that holds:

* ``no_candidate``: no candidate of either BlazeFace model at the runtime's score threshold matches it (the
  occluded matching rule); ``no_candidate_but_lower`` when one appears at ``--low`` (how far down it is);
* ``cascade_skipped``: only the full-range model proposes it, and the cascade did not run that model;
* ``rejected_by_score``: a matching candidate was scored, but its combined score is below the threshold;
* ``dropped_after_threshold``: a matching candidate passed the threshold but NMS, ``drop_spanning`` or the
  one-detection-per-face matching removed it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.detection.ssd import iou_matrix  # noqa: E402
from runtime.detection.two_stage import CandidateDetector, TwoStageDetector  # noqa: E402
from scripts.detection_data import OCCLUDER_KINDS, Face, fill_keypoints, load_samples, match, occlude  # noqa: E402


def matches(boxes: list, face: Face) -> np.ndarray:
    """Which of ``boxes`` would match ``face`` under the occluded rule (centre inside, IoU >= 0.25)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros(0, bool)
    c = (b[:, :2] + b[:, 2:]) / 2
    x1, y1, x2, y2 = face.box
    inside = (c[:, 0] >= x1) & (c[:, 0] <= x2) & (c[:, 1] >= y1) & (c[:, 1] <= y2)
    return inside & (iou_matrix(b, face.box[None])[:, 0] >= 0.25)


def diagnose(kind: str, seeds: int, split: str, low: float, verbose: bool) -> Counter:
    """Recall and the miss buckets of one occluder kind (printed); returns the bucket counts."""
    samples = load_samples(split)
    fill_keypoints(samples)
    det = TwoStageDetector(threads=1)
    lower = CandidateDetector(score_threshold=low, threads=1)
    buckets: Counter = Counter()
    faces = found = false = 0
    for k in range(seeds):
        for i, s in enumerate(samples):
            image = occlude(s.image, s.faces, kind, seed=i + 1000 * k)
            dets = det.detect(image)
            boxes = [d.box for d in dets]
            t, f = match(np.array(boxes), np.array([d.score for d in dets]), s.faces, s.ignore, kind != "clean")
            faces, found, false = faces + len(s.faces), found + t, false + f
            if t == len(s.faces):
                continue
            cascaded, sc_c, _ = det.scored_candidates(image)
            both, sc, _ = det.scored_candidates(image, cascade=False)
            for face in s.faces:
                if matches(boxes, face).any():
                    continue
                in_both, in_cascade = matches([c.box for c in both], face), matches([c.box for c in cascaded], face)
                if not in_both.any():
                    low_hit = [c.score for c in lower.propose(image) if matches([c.box], face)[0]]
                    why = "no_candidate_but_lower" if low_hit else "no_candidate"
                    note = f"best {max(low_hit):.2f} at {low}" if low_hit else ""
                elif not in_cascade.any():
                    why, note = "cascade_skipped", f"full-range combined {sc[in_both].max():.2f}"
                elif sc_c[in_cascade].max() < det.threshold:
                    j = int(np.flatnonzero(in_cascade)[np.argmax(sc_c[in_cascade])])
                    why, note = "rejected_by_score", f"combined {sc_c[j]:.2f}, BlazeFace {cascaded[j].score:.2f}"
                else:
                    why, note = "dropped_after_threshold", ""
                buckets[why] += 1
                if verbose:
                    print(f"    {s.name} seed {k}: {why} {note}")
    print(f"{split} {kind}: recall {found}/{faces} ({100 * found / faces:.1f} %), {false} false faces, {seeds} draws")
    print(f"  misses: {dict(buckets)}", flush=True)
    return buckets


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--kinds", default="hand,upper_half", help="occluder kinds, comma-separated (e.g. clean,mask)")
    ap.add_argument("--seeds", type=int, default=3, help="occluder draws per face and kind")
    ap.add_argument("--split", choices=("tune", "report"), default="tune", help="which people's images")
    ap.add_argument("--low", type=float, default=0.05, help="lower candidate threshold probed for no_candidate")
    ap.add_argument("--verbose", action="store_true", help="one line per missed face")
    args = ap.parse_args()
    unknown = [k for k in args.kinds.split(",") if k not in ("clean", *OCCLUDER_KINDS)]
    if unknown:
        ap.error(f"unknown occluder kind(s) {unknown}; use clean, {', '.join(OCCLUDER_KINDS)}")
    for kind in args.kinds.split(","):
        diagnose(kind, args.seeds, args.split, args.low, args.verbose)


if __name__ == "__main__":
    main()
