"""Rendering speed of the procedural faces on one core (prints a table, writes JSON).

``render_batch`` (vectorised over the batch) as CPU time of this process (the one-core figure) and wall time, and
one sample at a time (``ds[i]``, what a per-item data loader does; CPU time) in order and shuffled. The load
average is printed because the wall figure depends on other jobs. Run it under ``nice`` on a shared machine.

Usage:
    nice python benchmarks/procedural_speed.py [--n 2000] [--sizes 48 64 112]
        [--out benchmarks/results/procedural_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from runtime.occlusion import apply_batch  # noqa: E402
from runtime.datasets.procedural import ProceduralFaces  # noqa: E402


def measure(size: int, n: int, repeats: int, color: bool) -> dict:
    """Images per second over ``repeats`` runs of ``n`` fresh samples (new identities included).

    Reports CPU time of this process (the one-core figure, robust to other jobs on a shared machine) and wall time.
    """
    cpu, wall = [], []
    for r in range(repeats):
        ds = ProceduralFaces(n * (r + 2), size=size, seed=r, color=color)
        ds.render_batch(range(64))  # warm-up (banks, caches)
        t, c = time.perf_counter(), time.process_time()
        ds.render_batch(range(n * (r + 1), n * (r + 2)))
        cpu.append(n / (time.process_time() - c))
        wall.append(n / (time.perf_counter() - t))
    in_order, shuffled = [], []
    for r in range(repeats):  # ds[i] one at a time, as a per-item data loader reads: in order and shuffled
        ds = ProceduralFaces(n * (r + 2), size=size, seed=100 + r, color=color)
        ds[0]
        for out, idx in (
            (in_order, np.arange(n * (r + 1), n * (r + 1) + n // 4)),
            (shuffled, np.random.default_rng(r).permutation(n) + n * (r + 1)),
        ):
            idx = idx[: n // 4].tolist()
            c = time.process_time()
            for i in idx:
                ds[i]
            out.append(len(idx) / (time.process_time() - c))
    return {
        "size": size,
        "color": color,
        "n": n,
        "cpu_median_img_s": float(np.median(cpu)),
        "cpu_min_img_s": float(np.min(cpu)),
        "wall_median_img_s": float(np.median(wall)),
        "wall_min_img_s": float(np.min(wall)),
        "item_in_order_cpu_median_img_s": float(np.median(in_order)),
        "item_shuffled_cpu_median_img_s": float(np.median(shuffled)),
    }


def measure_occlusion(size: int, protocol: str, repeats: int = 5, batch: int = 256) -> dict:
    """Median images per second of ``apply_batch`` on a rendered batch."""
    images, _ = ProceduralFaces(batch, size=size).render_batch(range(batch))
    rates = []
    for r in range(repeats):
        t = time.perf_counter()
        apply_batch(images, protocol, seed=r)
        rates.append(batch / (time.perf_counter() - t))
    return {"size": size, "protocol": protocol, "batch": batch, "median_img_s": float(np.median(rates))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 112])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/procedural_speed.json"))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    load0 = os.getloadavg()[0]
    render = [measure(s, args.n, args.repeats, c) for s in args.sizes for c in (True, False)]
    print(
        f"{'size':>5} {'color':>6} {'batch cpu img/s (median)':>25} {'cpu min':>8} "
        f"{'wall img/s (median)':>20} {'wall min':>9} {'ds[i] in order':>15} {'ds[i] shuffled':>15}"
    )
    for r in render:
        print(
            f"{r['size']:>5} {str(r['color']):>6} {r['cpu_median_img_s']:>25.0f} {r['cpu_min_img_s']:>8.0f} "
            f"{r['wall_median_img_s']:>20.0f} {r['wall_min_img_s']:>9.0f} "
            f"{r['item_in_order_cpu_median_img_s']:>15.0f} {r['item_shuffled_cpu_median_img_s']:>15.0f}"
        )
    load1 = os.getloadavg()[0]
    print(f"(1-min load average {load0:.1f} before and {load1:.1f} after the run, on {os.cpu_count()} cores)")
    occ = [measure_occlusion(64, p) for p in ("random_box:0.3", "upper_half@noise", "random_shapes", "textured:hand")]
    print(f"\n{'apply_batch (64 px, batch 256)':<32} {'median img/s':>13}")
    for r in occ:
        print(f"{r['protocol']:<32} {r['median_img_s']:>13.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": 1,
        "loadavg_1min_before": load0,
        "loadavg_1min_after": load1,
    }
    args.out.write_text(json.dumps({"meta": meta, "render": render, "apply_batch": occ}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
