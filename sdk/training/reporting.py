"""What a training run tells its user: the plan and cost up front, one line per epoch, curves and a summary.

Every line goes to a text stream (stdout) whether or not it is a terminal, so a job under ``nohup``, a CI log
or a notebook shows the same as a terminal. The epoch rows are also written to ``results.csv`` in the output
folder, and :func:`draw_curves` plots them (matplotlib, the ``plot`` extra) to ``curves.png`` at the end.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

#: Steps timed before the run's duration is estimated.
ESTIMATE_AFTER_STEPS = 5
#: Epoch-row columns that are not losses (everything else numeric is a loss term, or a ``val_`` metric).
META_COLUMNS = ("stage", "epoch", "epochs", "step", "seconds", "items_per_s")


def format_duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class StagePlan:
    """How many optimiser steps a stage will take: ``min(epochs * steps_per_epoch, max_steps)``."""

    name: str
    epochs: int
    steps_per_epoch: int
    max_steps: int | None = None

    @property
    def steps(self) -> int:
        total = self.epochs * self.steps_per_epoch
        return total if self.max_steps is None else min(total, self.max_steps)


class TrainingReport:
    """Prints and records a run: :meth:`plan`, :meth:`step` (for the estimate), :meth:`epoch`, :meth:`summary`.

    Args:
        method: Method id (first column of every line).
        out_dir: Where ``results.csv`` (and ``curves.png``) go; ``None`` writes nothing.
        stream: Text stream of the lines (default: stdout).
        rows: Epoch rows of an earlier part of a resumed run.
    """

    def __init__(
        self,
        method: str,
        out_dir: str | Path | None = None,
        stream: TextIO | None = None,
        rows: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.method = method
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.stream = stream
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]
        self.total_steps = 0
        self._t0: float | None = None
        self._steps_at_t0 = 0
        self._estimated = False

    def say(self, text: str) -> None:
        """One line (flushed at once)."""
        print(text, file=self.stream or sys.stdout, flush=True)

    # ------------------------------------------------------------------------------------------ up front
    def plan(self, stages: Sequence[StagePlan], *, batch_size: int, done_steps: int = 0, model: str = "") -> None:
        """Print the stages, their steps and the total (before the first step)."""
        self.total_steps = sum(s.steps for s in stages)
        parts = [
            f"{s.name} {s.epochs} epoch(s) x {s.steps_per_epoch} steps"
            + (
                f" (capped at {s.max_steps})"
                if s.max_steps is not None and s.max_steps < s.epochs * s.steps_per_epoch
                else ""
            )
            for s in stages
        ]
        self.say(
            f"{self.method}: plan: {'; '.join(parts)} = {self.total_steps} steps of batch {batch_size}"
            + (f", {done_steps} already done (resumed)" if done_steps else "")
            + (f"; {model}" if model else "")
        )

    def step(self, steps_done: int) -> None:
        """Call after every optimiser step (``steps_done``: global step count); prints the estimate once."""
        now = time.monotonic()
        if self._t0 is None:  # the first step includes start-up costs: time from its end
            self._t0, self._steps_at_t0 = now, steps_done
            return
        timed = steps_done - self._steps_at_t0
        if not self._estimated and timed >= ESTIMATE_AFTER_STEPS:
            self._estimated = True
            per_step = (now - self._t0) / timed
            left = max(0, self.total_steps - steps_done)
            self.say(
                f"{self.method}: {per_step:.3g} s/step over the first {timed} steps -> about "
                f"{format_duration(per_step * left)} for the {left} steps left (at this stage's pace; "
                "validation and later stages may differ)"
            )

    # ------------------------------------------------------------------------------------------ per epoch
    def epoch(self, row: dict[str, Any]) -> None:
        """Record one epoch row (``stage, epoch, epochs, step, <losses>, <val_*>, seconds, items_per_s``),
        print its line and rewrite ``results.csv``."""
        self.rows.append(dict(row))
        self.say(self.line(row))
        self.write_csv()

    def line(self, row: dict[str, Any]) -> str:
        """The printed form of an epoch row."""
        terms = "  ".join(
            f"{k} {float(v):.4g}" for k, v in row.items() if k not in META_COLUMNS and not k.startswith("val_")
        )
        val = "  ".join(f"{k} {float(v):.4f}" for k, v in row.items() if k.startswith("val_"))
        return (
            f"{self.method} {row['stage']} epoch {row['epoch']}/{row['epochs']}  step {row['step']}  {terms}"
            + (f"  {val}" if val else "")
            + f"  {float(row['seconds']):.1f} s  {float(row['items_per_s']):.0f} "
            "items/s"
        )

    def write_csv(self) -> Path | None:
        """``results.csv``: one row per epoch, columns the union over the rows."""
        if self.out_dir is None:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fields: list[str] = []
        for r in self.rows:
            fields.extend(k for k in r if k not in fields)
        path = self.out_dir / "results.csv"
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(self.rows)
        return path

    # ------------------------------------------------------------------------------------------ at the end
    def summary(self) -> str:
        """A table with one row per stage: epochs, steps, time, last losses and the best held-out metrics."""
        stages: dict[str, list[dict[str, Any]]] = {}
        for r in self.rows:
            stages.setdefault(str(r["stage"]), []).append(r)
        lines = ["| stage | epochs | steps | time | last losses | best held-out |", "|---|---:|---:|---:|---|---|"]
        prev_step = 0
        for name, rows in stages.items():
            last = rows[-1]
            losses = ", ".join(
                f"{k} {float(v):.4g}" for k, v in last.items() if k not in META_COLUMNS and not k.startswith("val_")
            )
            vals = [k for k in last if k.startswith("val_")]
            best = ", ".join(f"{k} {max(float(r[k]) for r in rows if r.get(k) not in (None, '')):.4f}" for k in vals)
            seconds = sum(float(r["seconds"]) for r in rows)
            lines.append(
                f"| {name} | {len(rows)} | {int(last['step']) - prev_step} | {format_duration(seconds)} | "
                f"{losses} | {best or '-'} |"
            )
            prev_step = int(last["step"])
        return "\n".join(lines)


def read_results(path: str | Path, keep: int | None = None) -> list[dict[str, Any]]:
    """Epoch rows of a ``results.csv`` (the first ``keep``; empty when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open(newline="") as f:
        rows = [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    return rows if keep is None else rows[:keep]


def draw_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | str:
    """Plot every loss term and held-out metric against the step (one panel each) with matplotlib.

    Returns the PNG path, or a one-line reason when nothing was drawn (matplotlib not installed, no rows).
    """
    if not rows:
        return "no epoch finished, so there are no curves to draw"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'ofer[plot]'), so no curves.png was drawn"
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in META_COLUMNS and k not in keys)
    cols = min(4, max(1, len(keys)))
    n_rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.6 * cols, 2.8 * n_rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
