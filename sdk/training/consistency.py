"""Occlusion consistency without labels: does a model give, on the occluded face, the teacher's clean answer?

Per occluder kind: top-1 agreement with the teacher's answer on the clean face, Cohen's κ of that agreement (chance
corrected with both answer distributions), mean total-variation distance between the probability vectors, with 95 %
intervals from a bootstrap over people (people are resampled, so faces of one person move together). Numpy and
OpenCV only (no torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from runtime.errors import InputError


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of equal entries of two label arrays (NaN when empty)."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.mean(a == b)) if len(a) else float("nan")


def cohen_kappa(a: np.ndarray, b: np.ndarray, k: int | None = None) -> float:
    """Cohen's κ of two label arrays: ``(p_o - p_e) / (1 - p_e)``.

    ``p_e`` is the agreement expected from the two marginal distributions. When ``p_e == 1`` (both raters always
    give the same single label) κ is 0 if they agree perfectly by construction: a constant rater carries no
    information, so it scores 0 rather than 1 (NaN for no samples).
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if len(a) == 0:
        return float("nan")
    k = int(max(a.max(), b.max()) + 1) if k is None else int(k)
    pa = np.bincount(a, minlength=k) / len(a)
    pb = np.bincount(b, minlength=k) / len(b)
    po, pe = float(np.mean(a == b)), float(pa @ pb)
    if pe >= 1.0 - 1e-12:
        return 0.0
    return (po - pe) / (1.0 - pe)


def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum|p - q|`` per row of two ``(N, K)`` probability arrays."""
    return 0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum(-1)


def bootstrap_ci(
    people: Sequence[str], stat: Any, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of ``stat(indices)`` over ``n`` resamples of the people (with replacement).

    Args:
        people: Person id per sample.
        stat: ``f(sample_indices) -> float`` (indices may repeat).
    """
    people = np.asarray(people, dtype=str)
    ids, inverse = np.unique(people, return_inverse=True)
    members = [np.flatnonzero(inverse == j) for j in range(len(ids))]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(int(n)):
        pick = rng.integers(0, len(ids), len(ids))
        idx = np.concatenate([members[j] for j in pick])
        v = stat(idx)
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


@dataclass
class ConsistencyRow:
    """One occluder kind: point estimates and 95 % intervals (bootstrap over people)."""

    protocol: str
    faces: int
    agreement: float
    agreement_ci: tuple[float, float]
    kappa: float
    kappa_ci: tuple[float, float]
    tv: float
    tv_ci: tuple[float, float]


@dataclass
class ConsistencyReport:
    """A model's occlusion consistency with a teacher, per occluder kind (``clean`` is the clean agreement)."""

    model: str
    teacher: str
    labels: tuple[str, ...]
    people: int
    rows: dict[str, ConsistencyRow] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model,
            "teacher": self.teacher,
            "labels": list(self.labels),
            "people": self.people,
            "protocols": {
                p: {
                    "faces": r.faces,
                    "agreement": r.agreement,
                    "agreement_ci": list(r.agreement_ci),
                    "kappa": r.kappa,
                    "kappa_ci": list(r.kappa_ci),
                    "tv": r.tv,
                    "tv_ci": list(r.tv_ci),
                }
                for p, r in self.rows.items()
            },
        }

    def markdown(self) -> str:
        """The table: agreement, κ and TV per occluder kind with intervals."""
        lines = [
            f"{self.model} vs teacher {self.teacher} ({self.people} people; 95 % CI, bootstrap over people)",
            "",
            "| occluder | faces | agreement | κ | mean TV |",
            "|---|---:|---|---|---|",
        ]
        for p, r in self.rows.items():
            lines.append(
                f"| {p} | {r.faces} | {_pct(r.agreement, r.agreement_ci)} | "
                f"{r.kappa:.2f} [{r.kappa_ci[0]:.2f}, {r.kappa_ci[1]:.2f}] | "
                f"{r.tv:.3f} [{r.tv_ci[0]:.3f}, {r.tv_ci[1]:.3f}] |"
            )
        return "\n".join(lines)


def _pct(v: float, ci: tuple[float, float]) -> str:
    return f"{100 * v:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def consistency(
    teacher_clean: np.ndarray,
    model_probs: Mapping[str, np.ndarray],
    people: Sequence[str],
    *,
    labels: Sequence[str],
    model: str = "model",
    teacher: str = "teacher",
    n_boot: int = 1000,
    seed: int = 0,
) -> ConsistencyReport:
    """Occlusion consistency of a model with a teacher.

    Args:
        teacher_clean: ``(N, K)`` teacher probabilities on the clean faces.
        model_probs: Occluder kind -> ``(N, K)`` model probabilities on those faces so occluded (``clean``: the
            model on the clean faces, i.e. the clean agreement).
        people: Person id per face (the bootstrap unit).

    Raises:
        InputError: shapes disagree.
    """
    t = np.asarray(teacher_clean, np.float64)
    people = np.asarray(people, dtype=str)
    if t.ndim != 2 or len(people) != len(t):
        raise InputError(f"teacher probabilities {t.shape} and {len(people)} person ids do not match")
    k = t.shape[1]
    ref = t.argmax(1)
    report = ConsistencyReport(model, teacher, tuple(labels), int(len(set(people.tolist()))))
    for proto, probs in model_probs.items():
        p = np.asarray(probs, np.float64)
        if p.shape != t.shape:
            raise InputError(f"{proto}: model probabilities {p.shape} do not match the teacher's {t.shape}")
        pred, tv = p.argmax(1), tv_distance(p, t)
        report.rows[proto] = ConsistencyRow(
            proto,
            len(p),
            agreement(pred, ref),
            bootstrap_ci(people, lambda i: agreement(pred[i], ref[i]), n_boot, seed),
            cohen_kappa(pred, ref, k),
            bootstrap_ci(people, lambda i: cohen_kappa(pred[i], ref[i], k), n_boot, seed),
            float(tv.mean()),
            bootstrap_ci(people, lambda i: float(tv[i].mean()), n_boot, seed),
        )
    return report


def draw_consistency(reports: Sequence[ConsistencyReport], title: str = "") -> np.ndarray:
    """Agreement per occluder kind as grouped bars with CI whiskers, one colour per model (BGR uint8 image)."""
    import cv2

    protos = list(dict.fromkeys(p for r in reports for p in r.rows))
    colours = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]
    left, top, plot_h, group_w = 60, 50, 300, max(60, 22 * len(reports) + 20)
    w = left + group_w * len(protos) + 20
    img = np.full((top + plot_h + 70 + 18 * len(reports), max(w, 420), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(
        img, (title or "agreement with the teacher's clean answer")[:80], (8, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA
    )
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(top + plot_h * (1 - v))
        cv2.line(img, (left, y), (w - 10, y), (220, 220, 220), 1)
        cv2.putText(img, f"{int(v * 100)}%", (8, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    bar = max(6, (group_w - 20) // max(1, len(reports)))
    for g, proto in enumerate(protos):
        x0 = left + g * group_w + 10
        for m, r in enumerate(reports):
            row = r.rows.get(proto)
            if row is None or not np.isfinite(row.agreement):
                continue
            x = x0 + m * bar
            y = int(top + plot_h * (1 - row.agreement))
            cv2.rectangle(img, (x, y), (x + bar - 3, top + plot_h), colours[m % len(colours)], -1)
            lo, hi = (int(top + plot_h * (1 - c)) for c in row.agreement_ci)
            cx = x + (bar - 3) // 2
            cv2.line(img, (cx, lo), (cx, hi), (0, 0, 0), 1)
        cv2.putText(img, proto[:10], (x0, top + plot_h + 16 + (g % 2) * 14), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    for m, r in enumerate(reports):
        y = top + plot_h + 50 + 18 * m
        cv2.rectangle(img, (left, y - 10), (left + 12, y), colours[m % len(colours)], -1)
        cv2.putText(img, r.model[:60], (left + 18, y), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_consistency(reports: Sequence[ConsistencyReport], out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """``consistency.json``, ``consistency.md`` and ``consistency.png`` in ``out_dir``."""
    import cv2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "consistency.json", "md": out / "consistency.md", "png": out / "consistency.png"}
    paths["json"].write_text(json.dumps([r.to_dict() for r in reports], indent=1))
    paths["md"].write_text("\n\n".join(r.markdown() for r in reports) + "\n")
    if not cv2.imwrite(str(paths["png"]), draw_consistency(reports, title)):
        raise InputError(f"cannot write {paths['png']}; check the folder is writable")
    return paths
