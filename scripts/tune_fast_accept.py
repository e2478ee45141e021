"""Choose the two-stage detector's fast-accept score on the TUNING split: the short-range BlazeFace score from which
a candidate whose keypoints form a face is taken without the verifier (``candidates.fast_accept`` in
``face_verifier.json``; see :func:`runtime.detection.two_stage.fast_accepted`).

    python scripts/tune_fast_accept.py --assets runtime/assets      # writes candidates.fast_accept in place

Candidates: the short-range model at the candidate threshold on every tuning image (research-only media included),
upright clean and with every occluder kind (``seeds`` draws each; on face-free images the realistic occluders are
drawn alone at random places) and rolled by 30-90 degrees, plus procedural face-free frames (title cards, clutter).
Each candidate is labelled face / not a face / unsure (a box on part of a face, or in an ignore region), as for the
verifier's training. The chosen score is the highest score of any non-face or unsure candidate with a face's
keypoint layout, plus ``margin``, rounded up to 0.01: no such candidate at that score or near it was anything else.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.detection.blazeface import plausible_face  # noqa: E402
from runtime.detection.two_stage import CandidateDetector  # noqa: E402
from scripts.detection_data import (  # noqa: E402
    OCCLUDER_KINDS,
    REALISTIC_KINDS,
    fill_keypoints,
    label_candidates,
    load_samples,
    occlude_sample,
    rotate,
)
from scripts.tune_two_stage import ROLLS, TUNE_NEGATIVE_SEED  # noqa: E402

MARGIN = 0.05


def candidate_rows(candidates: CandidateDetector, samples: list, seeds: int) -> list[dict]:
    """One row per short-range candidate: ``kind``, ``score``, ``plausible`` (keypoint layout), ``label``."""
    short = candidates.detectors[:1]
    rows = []
    for i, s in enumerate(samples):
        jobs = [(kind, k) for kind in ("clean", *OCCLUDER_KINDS) for k in range(seeds)] + [("rolled", 0)]
        for kind, k in jobs:
            if kind == "rolled":
                v = rotate(s, ROLLS[i % len(ROLLS)])
                image, faces, ignore = v.image, v.faces, v.ignore
            elif not s.faces and kind not in REALISTIC_KINDS and kind != "clean":
                continue  # the upper-half block needs a face to cover
            else:
                image, faces, ignore = occlude_sample(s, kind, seed=i + 1000 * k), s.faces, s.ignore
            found = candidates.propose(image, short)
            if not found:
                continue
            labels = label_candidates(np.array([d.box for d in found]), faces, ignore)
            rows += [
                {
                    "kind": kind,
                    "score": float(d.score),
                    "plausible": bool(d.keypoints is not None and plausible_face(np.asarray(d.box), d.keypoints)),
                    "label": int(lab),
                }
                for d, lab in zip(found, labels)
            ]
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(samples)} images", flush=True)
    return rows


def choose(rows: list[dict], margin: float = MARGIN) -> tuple[float, dict]:
    """``(fast-accept score, record)``: above every non-face / unsure plausible candidate by ``margin``."""
    plausible = [r for r in rows if r["plausible"]]
    worst = max((r["score"] for r in plausible if r["label"] != 1), default=0.0)
    chosen = min(0.99, math.ceil((worst + margin) * 100 - 1e-9) / 100)
    faces = [r for r in rows if r["label"] == 1]
    by_kind = {}
    for kind in sorted({r["kind"] for r in faces}):
        ks = [r for r in faces if r["kind"] == kind]
        by_kind[kind] = round(sum(r["score"] >= chosen and r["plausible"] for r in ks) / len(ks), 4)
    record = {
        "candidates": len(rows),
        "faces": len(faces),
        "not_faces": sum(r["label"] == 0 for r in rows),
        "unsure": sum(r["label"] == -1 for r in rows),
        "highest_non_face_plausible_score": round(worst, 4),
        "margin": margin,
        "fast_accepted_share_of_face_candidates": by_kind,
        "non_faces_fast_accepted": sum(r["label"] != 1 and r["score"] >= chosen for r in plausible),
    }
    return chosen, record


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument(
        "--assets",
        type=Path,
        default=ROOT / "runtime" / "assets",
        help="folder whose face_verifier.json gets candidates.fast_accept (written in place; use a copy to try)",
    )
    ap.add_argument("--seeds", type=int, default=3, help="occluder draws per image and kind")
    ap.add_argument("--negatives", type=int, default=30, help="procedural face-free frames added")
    ap.add_argument("--margin", type=float, default=MARGIN, help="added to the best non-face score")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per model")
    args = ap.parse_args()
    from scripts.verifier_negatives import negative_samples

    cfg_path = args.assets / "face_verifier.json"
    cfg = json.loads(cfg_path.read_text())
    cand = cfg["candidates"]
    samples = load_samples("tune")
    fill_keypoints(samples)
    samples += negative_samples(
        args.negatives, TUNE_NEGATIVE_SEED, [s.image for s in samples if not s.faces and not s.research_only]
    )
    candidates = CandidateDetector(
        score_threshold=float(cand["score_threshold"]), variants=tuple(cand["variants"]), threads=args.threads
    )
    chosen, record = choose(candidate_rows(candidates, samples, args.seeds), args.margin)
    record.update(
        {
            "data": f"tuning split ({len(samples)} images incl. {args.negatives} procedural face-free frames), "
            f"clean, every occluder kind ({args.seeds} draws) and rolled",
            "rule": "highest score of a plausible non-face or unsure candidate + margin, rounded up to 0.01",
        }
    )
    cand["fast_accept"] = chosen
    cfg.setdefault("tuning", {})["fast_accept"] = record
    cfg_path.write_text(json.dumps(cfg, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    print(f"fast_accept {chosen:.2f}; wrote {cfg_path}")


if __name__ == "__main__":
    main()
