"""Measure a face verifier through the two-stage pipeline on the TUNING split, with several occluder seeds per
image, fast enough to compare training runs: the candidates (BlazeFace short+full at the runtime's threshold)
and their verifier crops are computed once and cached; a verifier only has to score the cached crops.

    python scripts/verifier_eval.py --onnx runtime/assets/face_verifier.onnx [--seeds 3] [--cache /tmp/x.npz]

Prints recall and false faces per kind at the config's combination and threshold, and the best worst-kind recall
over a sweep of verifier weight x threshold, separately for the tuning people the shipped verifier trained on
(shippable media) and those it never saw (research-only tuning media: the honest part for comparing verifiers).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.detection.geometry import aligned_crops  # noqa: E402
from runtime.detection.two_stage import (  # noqa: E402
    CandidateDetector,
    candidate_features,
    combined_score,
    drop_spanning,
    nms,
)
from runtime.detection.verifier import FaceVerifier, load_config  # noqa: E402
from scripts.detection_data import (  # noqa: E402
    OCCLUDER_KINDS,
    Face,
    Sample,
    fill_keypoints,
    load_samples,
    match,
    occlude,
    rotate,
)

KINDS = ("clean", *OCCLUDER_KINDS, "rolled", "procedural")
EVAL_NEGATIVE_SEED = 3_000_003  # procedural face-free frames (training and tuning use other seeds)
ROLLS = (30, 60, 90, -30, -60, -90)


@dataclass
class Run:
    """One image variant: its kind, whether its people trained the verifier, GT, candidates and their crops."""

    kind: str
    seen: bool
    faces: list[Face]
    ignore: list[np.ndarray]
    boxes: np.ndarray
    feats: dict[str, np.ndarray]
    rows: slice


def collect(
    samples: list[Sample], seeds: int, size: int = 48, expand: float = 1.4, candidate_threshold: float = 0.2
) -> tuple[list[Run], np.ndarray]:
    """Candidates and crops of every sample x kind x seed (rolled: one angle per seed); procedural samples once,
    as kind ``"procedural"``."""
    det = CandidateDetector(score_threshold=candidate_threshold, threads=1)
    runs, crops, n = [], [], 0
    for i, s in enumerate(samples):
        kinds = ("procedural",) if s.source == "procedural" else KINDS[:-1]
        for kind in kinds:
            for k in range(seeds if kind != "procedural" else 1):
                if kind in ("procedural", "rolled") and s.source == "procedural":
                    v = s
                elif kind == "rolled":
                    v = rotate(s, ROLLS[(i + k) % len(ROLLS)])
                else:
                    v = Sample(s.name, s.source, occlude(s.image, s.faces, kind, seed=i + 1000 * k), s.faces, s.ignore)
                cands = det.propose(v.image)
                boxes = np.array([c.box for c in cands]).reshape(-1, 4)
                c = (
                    aligned_crops(v.image, boxes, [d.roll for d in cands], size, expand)
                    if len(cands)
                    else np.zeros((0, size, size, 3), np.uint8)
                )
                crops.append(c)
                runs.append(
                    Run(
                        kind,
                        not s.research_only,
                        v.faces,
                        v.ignore,
                        boxes,
                        candidate_features(cands, np.zeros(len(cands))),
                        slice(n, n + len(c)),
                    )
                )
                n += len(c)
        if (i + 1) % 10 == 0:
            print(f"  collected {i + 1}/{len(samples)} images ({n} candidates)", flush=True)
    return runs, np.concatenate(crops)


def evaluate(
    runs: list[Run],
    logits: np.ndarray,
    combination: dict,
    threshold: float,
    nms_iou: float = 0.3,
    seen: bool | None = None,
) -> dict:
    """Recall and false faces per kind (``seen``: only runs whose people trained the verifier, or only the
    others, or all with ``None``)."""
    faces, tp, fp = ({k: 0 for k in KINDS} for _ in range(3))
    for r in runs:
        if seen is not None and r.seen != seen:
            continue
        feats = {**r.feats, "verifier": logits[r.rows].astype(np.float64)}
        scores = combined_score(feats, combination)
        idx = np.flatnonzero(scores >= threshold)
        keep = idx[nms(r.boxes[idx], scores[idx], nms_iou)] if len(idx) else idx
        keep = keep[drop_spanning(r.boxes[keep])]  # as TwoStageDetector does
        a, b = match(r.boxes[keep], scores[keep], r.faces, r.ignore, occluded=r.kind not in ("clean", "rolled"))
        faces[r.kind] += len(r.faces)
        tp[r.kind] += a
        fp[r.kind] += b
    return {
        k: (tp[k] / faces[k] if faces[k] else float("nan"), fp[k], faces[k])
        for k in KINDS
        if faces[k] or k == "procedural"
    }


def table(res: dict, title: str) -> str:
    return f"{title:<34}" + " ".join(f"{k[:6]:>6} {100 * r:5.1f}/{f:<3}" for k, (r, f, _) in res.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, default=ROOT / "runtime" / "assets" / "face_verifier.onnx")
    ap.add_argument("--config", type=Path, default=None, help="default: the .json beside --onnx")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--negatives", type=int, default=100, help="procedural face-free frames (own seed)")
    args = ap.parse_args()
    cfg = load_config(args.config or args.onnx.with_suffix(".json"))
    import pickle  # the cache is a local scratch file written by this script only

    if args.cache and args.cache.exists():
        runs, crops = pickle.loads(args.cache.read_bytes())
    else:
        from scripts.verifier_negatives import negative_samples

        samples = load_samples("tune")
        fill_keypoints(samples)
        samples += negative_samples(args.negatives, EVAL_NEGATIVE_SEED)
        runs, crops = collect(samples, args.seeds, int(cfg["input"]["size"]), float(cfg["input"]["expand"]))
        if args.cache:
            args.cache.write_bytes(pickle.dumps((runs, crops)))
    ver = FaceVerifier(model_path=args.onnx, config=cfg, threads=1)
    logits = np.concatenate([ver.logits_of_crops(crops[i : i + 1024]) for i in range(0, len(crops), 1024)])
    comb, thr = cfg["combination"], float(cfg["threshold"])
    print(f"config: {json.dumps(comb)} threshold {thr}")
    for seen, name in ((None, "all"), (True, "seen (shippable)"), (False, "unseen (research-only)")):
        print(table(evaluate(runs, logits, comb, thr, seen=seen), f"config {name}"))
    best = []
    for wv in (0.2, 0.3, 0.5, 0.75, 1.0, 1.5):
        c = {"bias": comb["bias"], "weights": {**comb["weights"], "verifier": wv}}
        for t in np.round(np.arange(0.3, 0.99, 0.02), 2):
            res = evaluate(runs, logits, c, float(t))
            ok = max(f for k, (_, f, _) in res.items() if k != "procedural") <= args.seeds
            best.append(
                (
                    ok,
                    min(r for k, (r, _, _) in res.items() if k != "procedural"),
                    -sum(f for _, f, _ in res.values()),
                    wv,
                    t,
                    res,
                )
            )
    ok, mr, nf, wv, t, res = max(best, key=lambda x: x[:3])
    print(table(res, f"best w={wv} t={t} ({'ok' if ok else 'over'})"))
    c = {"bias": comb["bias"], "weights": {**comb["weights"], "verifier": wv}}
    print(table(evaluate(runs, logits, c, float(t), seen=False), "  unseen part"))


if __name__ == "__main__":
    main()
