"""Train ofer's face verifier (the second detection stage) and fit how its score combines with BlazeFace's.

    python scripts/train_verifier.py --out runtime/assets [--force]

Steps (seeded, one line per epoch):
1. Real images of the TUNING split whose licence allows shipping weights (research-only media never train the
   shipped weights); missing GT keypoints are taken from BlazeFace on the clean image.
2. Crops (:mod:`scripts.verifier_data`): the candidate stage's proposals on occluded (every realistic kind and
   the upper-half block; extra hand variants), rolled, rescaled and degraded (blur, JPEG, resampling) copies,
   labelled against GT, plus jittered GT crops and random background crops; and hard negatives from procedural
   face-free frames (title cards, captions, clutter: :mod:`scripts.verifier_negatives`).
3. Cross-fitting by person (2 folds): a verifier trained on the other fold scores each fold's candidates; on these
   out-of-fold scores a logistic combination (verifier logit, detector logit, and the keypoint geometry only if it
   measurably helps) is fitted.
4. The shipped verifier is trained on all of these people (label smoothing 0.1: softer logits that combine better
   with the detector's) and exported to ONNX (parity-checked).
5. The verifier's weight in the combination and the acceptance threshold are chosen through the real pipeline on
   every tuning image, three occluder draws each, plus procedural face-free frames of other seeds
   (:mod:`scripts.tune_two_stage`; research-only tuning media included: they trained nothing, so they are held-out
   people there). The JSON config holds crop geometry, the combination, the threshold, provenance and the tuning
   sweeps.

``scripts/verifier_eval.py`` compares trained verifiers on the tuning split (held-out tuning people separately).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.detection.two_stage import FEATURES, CandidateDetector, combined_score  # noqa: E402
from scripts.detection_data import fill_keypoints, load_samples  # noqa: E402
from scripts.tune_two_stage import retune  # noqa: E402
from scripts.verifier_data import build_crops  # noqa: E402
from scripts.verifier_negatives import negative_samples  # noqa: E402

NEGATIVE_SEED = 1_000_003  # procedural training negatives; tuning negatives use TUNE_NEGATIVE_SEED

FEATURE_SETS = {
    "verifier+detector": ("verifier", "detector"),
    "verifier+detector+geometry": ("verifier", "detector", "ear_span", "mouth_drop", "eye_span"),
    "verifier": ("verifier",),
    "detector": ("detector",),
}


def to_tensor(crops: np.ndarray):
    """BGR uint8 ``(N, S, S, 3)`` -> the runtime's normalised RGB ``(N, 3, S, S)`` tensor."""
    import torch

    from runtime.detection.verifier import preprocess_crops

    return torch.from_numpy(preprocess_crops(crops))


def augment(x, gen):
    """Photometric jitter on a normalised batch: flip, per-channel gain (skin tones, white balance), brightness,
    contrast, grey, blur, noise, and a random erased rectangle (occlusion beyond the drawn kinds)."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    gain = 1 + (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.3
    a = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.6
    b = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.5
    x = (x + 1) * gain * a - 1 + b
    grey = torch.rand(n, generator=gen) < 0.2
    x = torch.where(grey[:, None, None, None], x.mean(1, keepdim=True).expand_as(x), x)
    blur = torch.rand(n, generator=gen) < 0.25
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
    x = torch.where(blur[:, None, None, None], F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3), x)
    x = x + torch.randn(x.shape, generator=gen) * 0.04 * torch.rand(n, 1, 1, 1, generator=gen)
    erase = torch.rand(n, generator=gen) < 0.25
    for i in torch.nonzero(erase).flatten().tolist():
        eh, ew = (int(v) for v in torch.randint(h // 6, h // 2, (2,), generator=gen))
        y0, x0 = int(torch.randint(0, h - eh, (1,), generator=gen)), int(torch.randint(0, w - ew, (1,), generator=gen))
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = torch.rand(3, 1, 1, generator=gen) * 2 - 1
    return x.clamp(-1.5, 1.5)


def train(
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    seed: int,
    tag: str,
    width: float = 1.0,
    smoothing: float = 0.0,
):
    """Train ``face_verifier`` on crops (targets smoothed to ``smoothing / 2`` and ``1 - smoothing / 2``: softer,
    better calibrated logits); prints one line per epoch. Returns the model (eval mode)."""
    import torch
    from torch import nn

    from sdk.training.models import create_model

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_model("face_verifier", width=width)
    x_all, y_all = to_tensor(crops), torch.from_numpy(labels.astype(np.float32))
    pos = float(y_all.sum())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y_all) - pos) / max(pos, 1.0)))
    batch = 128
    steps = epochs * ((len(y_all) + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    for epoch in range(epochs):
        model.train()
        t0, total, correct = time.time(), 0.0, 0
        perm = torch.randperm(len(y_all), generator=gen)
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            xb, yb = augment(x_all[idx], gen), y_all[idx]
            logit = model(xb)[:, 0]
            loss = loss_fn(logit, yb * (1 - smoothing) + smoothing / 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int(((logit > 0).float() == yb).sum())
        print(
            f"[{tag}] epoch {epoch + 1}/{epochs} loss {total / len(y_all):.4f} "
            f"train acc {correct / len(y_all):.3f} ({time.time() - t0:.1f}s)",
            flush=True,
        )
    return model.eval()


def predict(model, crops: np.ndarray) -> np.ndarray:
    """Face logits ``(N,)``."""
    import torch

    with torch.no_grad():
        return np.concatenate([model(to_tensor(crops[i : i + 512]))[:, 0].numpy() for i in range(0, len(crops), 512)])


def person_folds(groups: np.ndarray, k: int = 2) -> np.ndarray:
    """Fold index per row; rows of the same person group share a fold (largest groups dealt first)."""
    names, counts = np.unique(groups, return_counts=True)
    load = np.zeros(k)
    fold_of = {}
    for i in np.argsort(-counts, kind="stable"):
        f = int(load.argmin())
        fold_of[names[i]] = f
        load[f] += counts[i]
    return np.array([fold_of[g] for g in groups])


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; returns ``[bias, w_1..w_d]``."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def sweep(scores: np.ndarray, data: dict, faces_per_kind: dict, images_per_kind: dict) -> list[dict]:
    """Per threshold: recall per kind (faces with an accepted positive candidate) and false faces per kind per
    100 images (accepted negatives / image variants of that kind x 100)."""
    rows = []
    for t in np.round(np.arange(0.05, 0.991, 0.01), 2):
        acc = scores >= t
        row = {"threshold": float(t), "recall": {}, "false_faces": {}}
        for kind, n_faces in faces_per_kind.items():
            m = data["kind"] == kind
            found = len(np.unique(data["face"][m & acc & (data["label"] == 1)]))
            row["recall"][kind] = found / n_faces if n_faces else float("nan")
            row["false_faces"][kind] = 100.0 * float(np.sum(m & acc & (data["label"] == 0))) / images_per_kind[kind]
        row["min_recall"] = min(row["recall"].values())
        row["max_false"] = max(row["false_faces"].values())
        rows.append(row)
    return rows


def choose_threshold(rows: list[dict], budget: float) -> dict:
    """The threshold with the best worst-kind recall whose false faces per kind stay within ``budget``
    (ties: the higher threshold)."""
    ok = [r for r in rows if r["max_false"] <= budget] or [max(rows, key=lambda r: r["threshold"])]
    return max(ok, key=lambda r: (round(r["min_recall"], 4), r["threshold"]))


def crossfit(data: dict, meta: dict, args: argparse.Namespace) -> tuple[str, dict, dict]:
    """Out-of-fold verifier logits (folds by person) -> the logistic combination of the verifier's and detector's
    logits (and the keypoint geometry if it measurably helps). Returns ``(feature set, combination, comparison)``."""
    n = len(data["label"])
    folds = person_folds(data["group"], args.folds)
    oof = np.full(n, np.nan)
    for k in range(args.folds):
        model = train(
            data["crops"][folds != k],
            data["label"][folds != k],
            epochs=args.epochs,
            seed=args.seed + 1 + k,
            tag=f"fold {k + 1}/{args.folds}",
            width=args.width,
            smoothing=args.smoothing,
        )
        oof[folds == k] = predict(model, data["crops"][folds == k])
    # the combination and threshold are fitted on what the runtime sees: candidates above its threshold
    cand = (data["origin"] == "candidate") & (data["feat_detector"] >= _logit(args.candidate_threshold) - 1e-9)
    y = data["label"][cand].astype(np.float64)
    feats = {k: data[f"feat_{k}"][cand] for k in FEATURES if k != "verifier"}
    feats["verifier"] = oof[cand]
    sub = {k: v[cand] for k, v in data.items() if k != "crops"}
    comparison, fits = {}, {}
    for name, cols in FEATURE_SETS.items():
        w = fit_logistic(np.stack([feats[c] for c in cols], 1), y)
        comb = {"bias": float(w[0]), "weights": {c: float(v) for c, v in zip(cols, w[1:])}}
        scores = combined_score(feats, comb)
        swept = sweep(scores, sub, meta["faces_per_kind"], meta["variants_per_kind"])
        best = choose_threshold(swept, args.false_budget)
        comparison[name] = {
            "threshold": best["threshold"],
            "min_recall": best["min_recall"],
            "max_false_per_100_images": best["max_false"],
            "recall": best["recall"],
        }
        fits[name] = (comb, best)
        print(
            f"  {name:<28} threshold {best['threshold']:.2f} worst-kind recall {best['min_recall']:.3f} "
            f"max false/100 images {best['max_false']:.2f} "
            + " ".join(f"{k}:{v:.2f}" for k, v in best["recall"].items()),
            flush=True,
        )
    # geometry only if it measurably helps (>= 0.5 point worst-kind recall at the same budget)
    chosen = "verifier+detector"
    if comparison["verifier+detector+geometry"]["min_recall"] >= comparison[chosen]["min_recall"] + 0.005:
        chosen = "verifier+detector+geometry"
    comb, best = fits[chosen]
    print(f"chosen combination: {chosen} {comb}, threshold {best['threshold']:.2f}", flush=True)
    return chosen, comb, comparison


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runtime" / "assets")
    ap.add_argument("--force", action="store_true", help="overwrite an existing face_verifier.onnx/json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=float, default=1.0, help="face_verifier channel multiplier")
    ap.add_argument("--folds", type=int, default=2, help="cross-fitting folds by person group")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--expand", type=float, default=1.4)
    ap.add_argument("--per-kind", type=int, default=4, help="variants per occluder kind per image")
    ap.add_argument("--candidate-threshold", type=float, default=0.2, help="the runtime's candidate threshold")
    ap.add_argument(
        "--mine-threshold",
        type=float,
        default=0.08,
        help="candidates down to this score are mined for training (more hard negatives)",
    )
    ap.add_argument("--rotations", type=str, default="", help="extra candidate passes, e.g. '90,-90'")
    ap.add_argument(
        "--false-budget",
        type=float,
        default=1.0,
        help="false faces per kind per 100 image variants allowed when comparing feature sets",
    )
    ap.add_argument(
        "--tune-budget",
        type=int,
        default=1,
        help="false faces per kind over the tuning images allowed when choosing the threshold",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (1 is fastest here)")
    ap.add_argument("--crop-cache", type=Path, default=None, help="reuse/write the mined crops (.npz)")
    ap.add_argument("--smoothing", type=float, default=0.1, help="label smoothing of the verifier's targets")
    ap.add_argument(
        "--combination-from",
        type=Path,
        default=None,
        help="skip cross-fitting: take bias and detector weight from this verifier config (quick trials)",
    )
    ap.add_argument("--extra", type=str, default="hand:4", help="more variants for some kinds, e.g. 'hand:4,headset:2'")
    ap.add_argument("--no-degrade", action="store_true", help="no blur/JPEG/resampling of the variants")
    ap.add_argument(
        "--procedural-negatives",
        type=int,
        default=300,
        help="procedural face-free frames (text cards, clutter) mined for negatives",
    )
    ap.add_argument(
        "--upright-above",
        type=float,
        default=None,
        help="degrees: candidates whose keypoints claim more roll are also scored upright (hidden eyes give a "
        "false roll; see runtime.detection.verifier); default: off",
    )
    ap.add_argument("--tune-seeds", type=int, default=3, help="occluder draws per tuning image with faces")
    ap.add_argument(
        "--tune-negatives",
        type=int,
        default=30,
        help="procedural face-free frames (other seeds) added to the threshold tuning images",
    )
    args = ap.parse_args()
    onnx_path, cfg_path = args.out / "face_verifier.onnx", args.out / "face_verifier.json"
    if not args.force and (onnx_path.exists() or cfg_path.exists()):
        sys.exit(f"{onnx_path} or {cfg_path} exists; pass --force to overwrite")
    import torch

    torch.set_num_threads(args.threads)
    rotations = tuple(int(a) for a in args.rotations.split(",") if a.strip())
    samples = load_samples("tune", shippable_only=True)
    fill_keypoints(samples)
    print(
        f"tuning split, shippable media: {len(samples)} images, {sum(len(s.faces) for s in samples)} faces, "
        f"{len({p for s in samples for p in s.people})} people/groups",
        flush=True,
    )
    miner = CandidateDetector(
        score_threshold=min(args.mine_threshold, args.candidate_threshold), rotations=rotations, threads=args.threads
    )
    extra = {k: int(v) for k, v in (kv.split(":") for kv in args.extra.split(",") if kv.strip())}
    negatives = negative_samples(
        args.procedural_negatives, args.seed + NEGATIVE_SEED, [s.image for s in samples if not s.faces]
    )
    if args.crop_cache and args.crop_cache.exists():
        data = dict(np.load(args.crop_cache, allow_pickle=False))
        meta = json.loads(str(data.pop("meta")))
    else:
        cs = build_crops(
            samples,
            miner,
            size=args.size,
            expand=args.expand,
            per_kind=args.per_kind,
            seed=args.seed,
            extra=extra,
            degraded=not args.no_degrade,
            negatives=negatives,
        )
        data, meta = cs.arrays(), {"faces_per_kind": cs.faces_per_kind, "variants_per_kind": cs.variants_per_kind}
        if args.crop_cache:
            np.savez_compressed(args.crop_cache, meta=json.dumps(meta), **data)
    n = len(data["label"])
    print(
        f"crops: {n} ({int(data['label'].sum())} positive); by origin "
        f"{ {o: int((data['origin'] == o).sum()) for o in np.unique(data['origin'])} }",
        flush=True,
    )

    # 3. cross-fitting by person: out-of-fold verifier logits for every candidate
    if args.combination_from:
        prior = json.loads(args.combination_from.read_text())
        chosen, comb = prior["combination_features"], prior["combination"]
        comparison = {"from": str(args.combination_from)}
        print(f"combination from {args.combination_from}: {comb}", flush=True)
    else:
        chosen, comb, comparison = crossfit(data, meta, args)

    # 4. the shipped model: all tuning people
    model = train(
        data["crops"],
        data["label"],
        epochs=args.epochs,
        seed=args.seed,
        tag="final",
        width=args.width,
        smoothing=args.smoothing,
    )
    from export.onnx import export_onnx

    sample = to_tensor(data["crops"][:16]).numpy()
    report = export_onnx(model, sample, onnx_path, input_name="crops", output_names=("face_logit",))
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    licences = sorted({f"{s.source}: {s.licence}" for s in samples})
    cfg = {
        "model": "face_verifier",
        "model_kwargs": {"width": args.width},
        "onnx": onnx_path.name,
        "onnx_sha256": sha,
        "size_bytes": report["size_bytes"],
        "input": {
            "size": args.size,
            "expand": args.expand,
            "color": "rgb",
            "layout": "NCHW",
            "scale": 1 / 255,
            "mean": 0.5,
            "std": 0.5,
            "alignment": "box centre, side = expand x longer box side, rotated by -roll from the eye keypoints",
            "upright_also_above_deg": args.upright_above,
        },
        "candidates": {
            "variants": ["blazeface-short", "blazeface-full"],
            "score_threshold": args.candidate_threshold,
            "rotations": list(rotations),
        },
        "combination": comb,
        "combination_features": chosen,
        "threshold": 0.5,
        "tuning": {
            "split": "tune",
            "combination_fit": {
                "data": f"out-of-fold verifier logits ({args.folds} folds by person) on candidates of the shippable "
                "tuning media",
                "false_budget_per_kind_per_100_images": args.false_budget,
                "feature_set_comparison": comparison,
            },
        },
        "provenance": {
            "script": "scripts/train_verifier.py",
            "argv": sys.argv[1:],
            "seed": args.seed,
            "epochs": args.epochs,
            "split": "tune",
            "research_only_media_used": False,
            "sources": sorted({s.source for s in samples} | {"procedural"}),
            "licences": licences,
            "augmentation": {"per_kind": args.per_kind, "extra": extra, "degraded": not args.no_degrade},
            "procedural_negatives": {
                "frames": len(negatives),
                "seed": args.seed + NEGATIVE_SEED,
                "what": "text cards and geometric clutter drawn by "
                "scripts/verifier_negatives.py (no third-party media)",
            },
            "images": len(samples),
            "faces": sum(len(s.faces) for s in samples),
            "people": sorted({p for s in samples for p in s.people}),
            "crops": {
                "total": n,
                "positive": int(data["label"].sum()),
                "by_origin": {o: int((data["origin"] == o).sum()) for o in np.unique(data["origin"])},
            },
            "onnx_parity_max_abs_diff": report["max_abs_diff"],
            "versions": report["versions"],
        },
    }
    cfg_path.write_text(json.dumps(cfg, indent=1) + "\n")
    # 5. verifier weight and threshold through the real pipeline on every tuning image
    retune(args.out, args.tune_budget, args.threads, negatives=args.tune_negatives, seeds=args.tune_seeds)
    print(f"wrote {onnx_path} ({report['size_bytes'] / 1024:.0f} KB, sha256 {sha[:12]}) and {cfg_path}")


if __name__ == "__main__":
    main()
