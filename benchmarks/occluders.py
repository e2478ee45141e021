"""Drawing cost of the realistic occluders per face, on one core (prints a table, writes JSON).

Each realistic kind on aligned face crops of several sizes (``apply_occlusion``, the training-loop path) and on a
640x360 frame (``draw_occluder``), next to three older protocols for scale (a box, ``textured:hand``,
``textured:cup``). Times are CPU time of this process (robust to other jobs on a shared machine), median and p90
over ``--n`` seeds; the load average is printed because a busy machine still slows every figure.

Usage:
    nice python benchmarks/occluders.py [--n 200] [--sizes 64 128 256] [--out benchmarks/results/occluders.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import pin_threads, table, write_json  # noqa: E402

pin_threads(1)

import numpy as np  # noqa: E402

from runtime.occlusion import REALISTIC_KINDS, apply_occlusion, draw_occluder  # noqa: E402
from runtime.occlusion.face_frame import CANONICAL_UV  # noqa: E402

REFERENCES = ("upper_half", "textured:hand", "textured:cup")


def cpu_ms(fn, n: int) -> dict[str, float]:
    """Median and p90 CPU milliseconds of ``fn(seed)`` over ``n`` seeds (after 5 warm-up calls)."""
    for s in range(5):
        fn(s)
    ms = np.empty(n)
    for s in range(n):
        t = time.process_time()
        fn(s)
        ms[s] = (time.process_time() - t) * 1e3
    return {"p50": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        crop = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for spec in (*REALISTIC_KINDS, *REFERENCES):
            r = cpu_ms(lambda s: apply_occlusion(crop, spec, seed=s), args.n)
            rows.append(
                {"input": f"crop {size}", "protocol": spec, "p50_ms": r["p50"], "p90_ms": r["p90"], "n": r["n"]}
            )
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    keypoints = CANONICAL_UV * 60 + (320, 150)  # one face, 60 px between the eyes
    for kind in REALISTIC_KINDS:
        r = cpu_ms(lambda s: draw_occluder(frame, kind, keypoints, seed=s), args.n)
        rows.append(
            {"input": "frame 640x360, IOD 60", "protocol": kind, "p50_ms": r["p50"], "p90_ms": r["p90"], "n": r["n"]}
        )
    load1 = os.getloadavg()[0]
    print(table(rows, ["input", "protocol", "p50_ms", "p90_ms", "n"]))
    print(
        f"(CPU ms per face, one thread; 1-min load average {load0:.1f} before, {load1:.1f} after, "
        f"{os.cpu_count()} cores)"
    )
    path = write_json("occluders", {"rows": rows, "threads": 1, "loadavg_1min": [load0, load1]}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
