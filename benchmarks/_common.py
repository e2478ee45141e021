"""Shared helpers for benchmark scripts: percentiles, tables, JSON results, pinned threads."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def pin_threads(n: int) -> None:
    """Pin BLAS/OpenMP/OpenCV thread pools (call before heavy imports where possible)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass


def time_ms(fn: Callable[[], Any], iters: int, warmup: int = 10) -> np.ndarray:
    """Run ``fn`` ``warmup`` times, then time ``iters`` calls; returns milliseconds per call."""
    for _ in range(warmup):
        fn()
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def time_interleaved(
    fns: dict[str, Callable[[], Any]], iters: int, warmup: int = 10
) -> dict[str, dict[str, np.ndarray]]:
    """Time several variants round-robin (one call of each in turn), so that they share the machine's load; returns
    per variant ``wall`` and ``cpu`` (process CPU time: all threads, robust to other processes' load) ms per call."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {k: {"wall": np.empty(iters), "cpu": np.empty(iters)} for k in fns}
    for i in range(iters):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            out[k]["wall"][i] = (time.perf_counter() - t0) * 1e3
            out[k]["cpu"][i] = (time.process_time() - c0) * 1e3
    return out


def load_average() -> float | None:
    """The 1-minute load average (other processes share the cores: numbers above the core count are noisy)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def stats(ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """mean, p50, p90, p95, p99 (ms) and throughput (per second at the mean)."""
    a = np.asarray(ms, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "per_s": float(1e3 / a.mean()) if a.mean() > 0 else float("inf"),
        "n": int(a.size),
    }


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (also valid Markdown)."""

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    return "\n".join(
        [line(list(columns)), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells)]
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1min": load_average(),
    }


def write_json(name: str, payload: dict[str, Any], out: str | None = None) -> Path:
    """Write results JSON (default ``benchmarks/results/NAME.json``) and return its path."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def read_frames(path: Path, n: int, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    """The first ``n`` frames of a video resized to ``size`` (width, height) with an area filter.

    Raises:
        SystemExit: No frame could be read.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    if not out:
        raise SystemExit(f"could not read {path}")
    return out
