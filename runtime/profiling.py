"""Profiling: every engine on its own at several batch sizes, and every pipeline stage on a real frame.

Latency is reported as mean/p50/p90/p95/p99 milliseconds per call and throughput as items per second (faces for
engines, frames for stages). An engine may give sub-timings by offering an optional method::

    engine.timed_run(inputs) -> (outputs, {"h2d": ms, "compute": ms, "d2h": ms})

(the TensorRT backend does; ONNX Runtime cannot split them), and the report then carries their statistics too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, InputError

SUB_TIMINGS = ("h2d", "compute", "d2h")


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call and items per second (``items`` per call: the batch size, or 1 frame)."""

    n: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    per_s: float
    items: int = 1

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float] | np.ndarray, items: int = 1) -> "LatencyStats":
        a = np.asarray(samples_ms, np.float64)
        if a.size == 0:
            raise ConfigError("no samples to summarise; run at least one iteration")
        p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
        mean = float(a.mean())
        return cls(
            int(a.size),
            mean,
            float(p50),
            float(p90),
            float(p95),
            float(p99),
            float(a.min()),
            float(a.max()),
            items * 1e3 / mean if mean > 0 else float("inf"),
            items,
        )


@dataclass
class EngineProfile:
    """One engine at one batch size."""

    name: str
    batch: int
    latency: LatencyStats | None
    sub_ms: dict[str, LatencyStats] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class StageProfile:
    """One pipeline stage on a real frame (``faces`` faces in it)."""

    name: str
    latency: LatencyStats
    faces: int = 1


def time_calls(fn: Callable[[], Any], *, iters: int, warmup: int) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Call ``fn`` ``warmup`` times, then time ``iters`` calls.

    Returns:
        Milliseconds per call, and the sub-timings dict of each call when ``fn`` returns ``(outputs, dict)``
        (as ``timed_run`` does), else an empty list.
    """
    if iters < 1 or warmup < 0:
        raise ConfigError(f"iters must be >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    out = np.empty(iters)
    subs: list[dict[str, float]] = []
    for i in range(iters):
        t0 = time.perf_counter()
        r = fn()
        out[i] = (time.perf_counter() - t0) * 1e3
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], Mapping):
            subs.append({k: float(v) for k, v in r[1].items()})
    return out, subs


def _input_shape(engine: Any, name: str) -> list[Any]:
    if hasattr(engine, "input_shape"):
        return list(engine.input_shape(name))
    shapes = engine.describe().get("inputs", {})
    if name not in shapes:
        raise ConfigError(
            f"engine {engine!r} does not say the shape of input {name!r} (no input_shape() and no "
            "describe()['inputs']); pass real inputs to profile it"
        )
    return list(shapes[name])


def random_inputs(engine: Any, batch: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the engine's declared shapes and dtypes, batch dimension set to ``batch``.

    Raises:
        InputError: A fixed batch dimension differs from ``batch``, or a non-batch dimension is symbolic.
    """
    rng = np.random.default_rng(seed)
    feed = {}
    for name in engine.input_names:
        shape = _input_shape(engine, name)
        if isinstance(shape[0], int) and shape[0] != batch:
            raise InputError(f"input {name!r} has a fixed batch of {shape[0]}, cannot run batch {batch}")
        dims = [batch] + shape[1:]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            raise InputError(f"input {name!r} has symbolic dimensions {shape}; pass real inputs to profile it")
        dtype = np.dtype(engine.input_dtype(name)) if hasattr(engine, "input_dtype") else np.dtype(np.float32)
        if np.issubdtype(dtype, np.integer):
            feed[name] = rng.integers(0, 255, dims).astype(dtype)
        else:
            feed[name] = rng.uniform(-1, 1, dims).astype(dtype)
    return feed


def profile_engine(
    name: str,
    engine: Any,
    *,
    batch_sizes: Sequence[int] = (1, 8),
    iters: int = 100,
    warmup: int = 10,
    inputs: Callable[[int], dict[str, np.ndarray]] | None = None,
    info: Mapping[str, Any] | None = None,
) -> list[EngineProfile]:
    """Time ``engine.run`` (or ``engine.timed_run`` when it has one) at each batch size.

    Args:
        name: Label for the report.
        engine: Any object with ``input_names`` and ``run(inputs)`` (the :class:`~runtime.engines.Engine` protocol).
        batch_sizes: Batch sizes to measure; sizes the engine cannot run are reported with an ``error``.
        inputs: ``batch -> feed`` for real inputs (default: :func:`random_inputs`).
        info: Extra fields for the report (backend, device, precision...; default: ``engine.describe()``).
    """
    base_info = dict(info) if info is not None else dict(engine.describe())
    timed = getattr(engine, "timed_run", None)
    call = timed if callable(timed) else engine.run
    results = []
    for b in batch_sizes:
        try:
            feed = inputs(b) if inputs is not None else random_inputs(engine, b)
            ms, subs = time_calls(lambda: call(feed), iters=iters, warmup=warmup)
        except InputError as exc:
            results.append(EngineProfile(name, b, None, info=base_info, error=str(exc)))
            continue
        sub_ms = {k: LatencyStats.from_samples([s[k] for s in subs], b) for k in (subs[0] if subs else {})}
        results.append(EngineProfile(name, b, LatencyStats.from_samples(ms, b), sub_ms, base_info))
    return results


def profile_stages(
    stages: Mapping[str, Callable[[], Any]], *, iters: int = 100, warmup: int = 10, faces: int = 1
) -> list[StageProfile]:
    """Time each stage callable on its own (in the given order); throughput is frames per second."""
    return [
        StageProfile(name, LatencyStats.from_samples(time_calls(fn, iters=iters, warmup=warmup)[0]), faces)
        for name, fn in stages.items()
    ]


def interleaved_stages(
    stages: Sequence[tuple[str | None, Callable[[], Any]]], *, iters: int = 100, warmup: int = 10, faces: int = 1
) -> list[StageProfile]:
    """Time stages round-robin: every round calls each stage once, so all of them (and a total among them) see the
    same machine load, and their sum compares with the total even on a busy machine.

    Args:
        stages: ``(name, fn)`` in order; ``name=None`` marks a self-timed callable ``fn() -> {stage: ms}`` (e.g. a
            pipeline's ``timings_ms``) whose parts become stages.
        iters, warmup: Timed and untimed rounds.
        faces: Faces in the frame (reported with each stage).
    """
    if iters < 1 or warmup < 0:
        raise ConfigError(f"iters must be >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    for _ in range(warmup):
        for _, fn in stages:
            fn()
    samples: dict[str, list[float]] = {}
    for _ in range(iters):
        for name, fn in stages:
            t0 = time.perf_counter()
            out = fn()
            ms = (time.perf_counter() - t0) * 1e3
            for k, v in out.items() if name is None else [(name, ms)]:
                samples.setdefault(k, []).append(float(v))
    return [StageProfile(k, LatencyStats.from_samples(v), faces) for k, v in samples.items()]


@dataclass
class ProfileReport:
    """Engines and stages measured, plus what they ran on (``meta``)."""

    engines: list[EngineProfile]
    stages: list[StageProfile]
    meta: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """The title, the frame, the table and how the stages add up: ``print(rec.profile())``."""
        head = [str(self.meta["title"])] if "title" in self.meta else []
        if "frame" in self.meta:
            head.append(
                f"frame: {self.meta['frame']} {self.meta.get('frame_shape', '')}, faces detected: "
                f"{self.meta.get('faces_detected', '?')}" + (f" ({self.meta['note']})" if "note" in self.meta else "")
            )
        lines = [*head, self.table()]
        total, parts = self.stage_sum()
        if total is not None:
            lines.append(f"stages add up to {parts:.3f} ms of the {total:.3f} ms total (means)")
        return "\n".join(lines)

    def stage_sum(self) -> tuple[float | None, float]:
        """The ``total`` stage's mean and the sum of the other stages' means (``None`` without a total).

        Means, not medians: the mean of a sum is the sum of the means, while on a busy machine the median of a
        long call (the total) catches a stolen time slice more often than the medians of its short parts do.
        """
        total = next((s.latency.mean for s in self.stages if s.name.startswith("total")), None)
        return total, float(sum(s.latency.mean for s in self.stages if not s.name.startswith("total")))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "meta": self.meta,
            "engines": [asdict(e) for e in self.engines],
            "stages": [asdict(s) for s in self.stages],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per engine/batch and per stage (what :meth:`table` prints)."""
        rows = []
        for e in self.engines:
            row: dict[str, Any] = {"kind": "engine", "name": e.name, "batch": e.batch}
            if e.latency is None:
                row["error"] = e.error
            else:
                row.update({k: getattr(e.latency, k) for k in ("mean", "p50", "p90", "p95", "p99", "per_s")})
                row.update({f"{k}_p50": v.p50 for k, v in e.sub_ms.items()})
            rows.append(row)
        for s in self.stages:
            rows.append(
                {
                    "kind": "stage",
                    "name": s.name,
                    "batch": s.faces,
                    **{k: getattr(s.latency, k) for k in ("mean", "p50", "p90", "p95", "p99", "per_s")},
                }
            )
        return rows

    def table(self) -> str:
        """A terminal table: ms per call (mean, p50, p90, p95, p99) and items/s."""
        rows = self.rows()
        subs = [k for k in (f"{s}_p50" for s in SUB_TIMINGS) if any(k in r for r in rows)]
        cols = ["kind", "name", "batch", "mean", "p50", "p90", "p95", "p99", "per_s", *subs]
        heads = {"per_s": "items/s", "batch": "batch/faces", **{k: k.replace("_p50", " p50") for k in subs}}

        def cell(v: Any, c: str) -> str:
            if isinstance(v, float):
                return f"{v:.1f}" if c == "per_s" else f"{v:.3f}"
            return str(v)

        cells = [[heads.get(c, c) for c in cols]] + [[cell(r.get(c, ""), c) for c in cols] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
        for k, r in enumerate(rows, start=1):
            if "error" in r:
                lines[k] += f"  not run: {r['error']}"
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n(ms per call; items/s = faces/s for engines, frames/s for stages)"

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    def save_png(self, path: str | os.PathLike[str]) -> Path:
        """Draw a bar chart (p50 bar, p99 whisker, ms per call) of every engine/batch and stage with OpenCV."""
        return draw_chart(self.rows(), path, title=str(self.meta.get("title", "ofer profile")))


def draw_chart(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str) -> Path:
    """Horizontal bars (p50) with p99 whiskers, one row per engine/batch or stage; OpenCV, so it always works."""
    import cv2

    rows = [r for r in rows if "p50" in r]
    if not rows:
        raise ConfigError("nothing was measured, so there is nothing to draw")
    row_h, left, right, top = 26, 300, 260, 50
    width = 1100
    img = np.full((top + row_h * (len(rows) + 2) + 20, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title[:90], (10, 28), font, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    scale = (width - left - right) / max(r["p99"] for r in rows)
    y = top
    kind = None
    for r in rows:
        if r["kind"] != kind:
            kind = r["kind"]
            cv2.putText(
                img,
                "engines (ms per batch)" if kind == "engine" else "pipeline stages (ms per frame)",
                (10, y + 18),
                font,
                0.55,
                (80, 80, 80),
                1,
                cv2.LINE_AA,
            )
            y += row_h
        color = (200, 120, 40) if kind == "engine" else (60, 160, 60)
        label = f"{r['name']}  x{r['batch']}"
        cv2.putText(img, label[:38], (10, y + 17), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x50, x99 = left + int(r["p50"] * scale), left + int(r["p99"] * scale)
        cv2.rectangle(img, (left, y + 4), (max(left + 1, x50), y + row_h - 4), color, -1)
        cv2.line(img, (x50, y + row_h // 2), (x99, y + row_h // 2), (0, 0, 0), 1)
        cv2.line(img, (x99, y + 7), (x99, y + row_h - 7), (0, 0, 0), 1)
        text = f"p50 {r['p50']:.2f}  p99 {r['p99']:.2f} ms  {r['per_s']:.0f}/s"
        cv2.putText(img, text, (max(x99, x50) + 8, y + 17), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        y += row_h
    p = Path(path)
    if not cv2.imwrite(str(p), img):
        raise InputError(f"could not write {p}; give it a .png name")
    return p
