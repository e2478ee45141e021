"""The evaluation table every method reports: accuracy and macro-F1 per occlusion protocol + confusion matrices.

Evaluation consumes a *predict function* ``predict(images, masks) -> probabilities``: ``images`` are uint8 face
crops at the input size as :mod:`runtime.preprocess` makes them, ``(N, H, W)`` gray or ``(N, H, W, 3)`` (occluded
by the protocol), ``masks`` float ``(N, H, W)`` with 1
where occluded; the result is ``(N, K)`` class probabilities. A checkpoint (:func:`torch_predictor`) or a
deployed bundle plugs in the same way. Occlusions are seeded from ``(seed, protocol, sample index)``, so
every number is reproducible.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from runtime.errors import ConfigError
from runtime.occlusion import apply_occlusion, parse_protocol

from runtime.input_spec import InputSpec
from runtime.preprocess import fit_face, to_tensor

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: ``progress(done, total, protocol, result)`` after each protocol.
Progress = Callable[[int, int, str, "ProtocolResult"], None]


@dataclass
class ProtocolResult:
    """Metrics of one protocol."""

    protocol: str
    n: int
    accuracy: float
    macro_f1: float
    per_class_f1: list[float]
    confusion: list[list[int]]


@dataclass
class EvalReport:
    """Metrics of every protocol, for one model."""

    labels: tuple[str, ...]
    results: dict[str, ProtocolResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "labels": list(self.labels),
            "protocols": {p: r.__dict__ for p, r in self.results.items()},
            "occluded_mean": self.occluded_mean(),
        }

    def summary(self) -> dict[str, dict[str, float]]:
        """``{protocol: {"accuracy", "macro_f1"}}``."""
        return {p: {"accuracy": r.accuracy, "macro_f1": r.macro_f1} for p, r in self.results.items()}

    def occluded_mean(self) -> dict[str, float] | None:
        """Mean accuracy and macro-F1 over every protocol but ``clean`` (``None`` when there is none)."""
        occ = [r for p, r in self.results.items() if p != "clean"]
        if not occ:
            return None
        return {
            "accuracy": float(np.mean([r.accuracy for r in occ])),
            "macro_f1": float(np.mean([r.macro_f1 for r in occ])),
            "protocols": len(occ),
        }

    def markdown(self) -> str:
        """The evaluation table (one row per protocol, then the occluded mean)."""
        lines = ["| protocol | n | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
        for p, r in self.results.items():
            lines.append(f"| {p} | {r.n} | {r.accuracy:.4f} | {r.macro_f1:.4f} |")
        occ = self.occluded_mean()
        if occ is not None:
            k = occ["protocols"]
            lines.append(
                f"| occluded mean | {k} protocol{'s' if k != 1 else ''} | {occ['accuracy']:.4f} | "
                f"{occ['macro_f1']:.4f} |"
            )
        return "\n".join(lines)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """``cm[t, p]`` = number of samples of true class ``t`` predicted as ``p``."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def f1_scores(cm: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class F1 and macro-F1 over the classes that occur in the truth or the predictions (as sklearn)."""
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = denom > 0
    return f1, float(f1[present].mean()) if present.any() else 0.0


def protocol_seed(seed: int, protocol: str, index: int) -> int:
    """The occlusion seed of one evaluation sample."""
    return (int(seed) * 1_000_003 + zlib.crc32(protocol.encode()) * 7919 + int(index)) % (2**31 - 1)


def occluded_views(images: np.ndarray, protocol: str, seed: int) -> np.ndarray:
    """Every ``(H, W[, C])`` uint8 crop occluded by ``protocol``, deterministically per (seed, protocol, index)."""
    return occluded_views_and_masks(images, protocol, seed)[0]


def occluded_views_and_masks(images: np.ndarray, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`occluded_views` and the occluders' ``(N, H, W)`` uint8 masks (1 = covered; zeros for ``clean``)."""
    occ = [apply_occlusion(img, protocol, seed=protocol_seed(seed, protocol, i)) for i, img in enumerate(images)]
    return np.stack([o.image for o in occ]), np.stack([(np.asarray(o.mask) > 0).astype(np.uint8) for o in occ])


def align_labels(model_labels: Sequence[str], data_labels: Sequence[str]) -> np.ndarray:
    """Index map data label -> model label; ``ConfigError`` when the label sets differ."""
    if set(model_labels) != set(data_labels) or len(model_labels) != len(data_labels):
        missing = sorted(set(data_labels) - set(model_labels))
        extra = sorted(set(model_labels) - set(data_labels))
        raise ConfigError(
            f"label sets differ: the model has {list(model_labels)}, the dataset "
            f"{list(data_labels)} (dataset-only {missing}, model-only {extra}); remap the dataset "
            f"labels (runtime.datasets.labels.remap) to the model's"
        )
    return np.array([list(model_labels).index(n) for n in data_labels], dtype=np.int64)


def evaluate(
    predict: Predict,
    dataset: Any,
    protocols: Sequence[str],
    spec: InputSpec,
    labels: Sequence[str] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Evaluate ``predict`` on every protocol.

    Args:
        predict: ``(uint8 crops NHW or NHW3, float masks NHW) -> (N, K) probabilities`` in ``labels`` order.
        dataset: ``FaceDataset`` (``labels``, ``__len__``, ``__getitem__ -> (image, label)``).
        protocols: ``runtime.occlusion`` protocol strings.
        spec: Input spec the images are prepared to.
        labels: Model label order (default: the dataset's); the dataset's labels are mapped onto it.
        batch_size: Images per ``predict`` call.
        seed: Base seed of the occlusions.
        limit: Evaluate only the first ``limit`` samples.
        progress: Called after each protocol (long evaluations say how far they are).
    """
    labels = tuple(labels) if labels is not None else tuple(dataset.labels)
    mapping = align_labels(labels, tuple(dataset.labels))
    for p in protocols:
        parse_protocol(p)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ConfigError("the evaluation dataset is empty; pass a dataset spec with samples")
    images, truth = [], np.empty(n, np.int64)
    for i in range(n):
        img, y = dataset[i]
        images.append(fit_face(img, spec))
        truth[i] = mapping[int(y)]
    report = EvalReport(labels=labels)
    k = len(labels)
    for done, p in enumerate(protocols, start=1):
        preds = np.empty(n, np.int64)
        for start in range(0, n, batch_size):
            occ_imgs, masks = [], []
            for i in range(start, min(n, start + batch_size)):
                o = apply_occlusion(images[i], p, seed=protocol_seed(seed, p, i))
                occ_imgs.append(o.image)
                masks.append((np.asarray(o.mask) > 0).astype(np.float32))
            probs = np.asarray(predict(np.stack(occ_imgs), np.stack(masks)))
            if probs.shape != (len(occ_imgs), k):
                raise ConfigError(
                    f"predict returned shape {probs.shape}, expected {(len(occ_imgs), k)} "
                    f"(one probability per label {list(labels)})"
                )
            preds[start : start + len(occ_imgs)] = probs.argmax(1)
        cm = confusion_matrix(truth, preds, k)
        f1, macro = f1_scores(cm)
        report.results[p] = ProtocolResult(
            p, n, float((preds == truth).mean()), macro, f1.round(6).tolist(), cm.tolist()
        )
        if progress is not None:
            progress(done, len(protocols), p, report.results[p])
    return report


def print_progress(prefix: str) -> Progress:
    """A ``progress`` callback for :func:`evaluate`: one stderr line per protocol (terminal or not)."""
    import sys
    import time

    t0 = time.monotonic()

    def report(done: int, total: int, protocol: str, result: ProtocolResult) -> None:
        print(
            f"{prefix}: [{done}/{total}] {protocol}: accuracy {result.accuracy:.4f} on {result.n} faces "
            f"({time.monotonic() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    return report


def torch_predictor(models: dict[str, Any], plan: dict[str, Any], spec: InputSpec, device: str = "cpu") -> Predict:
    """A predict function running a checkpoint's modules as its export plan says (``direct`` or ``inpaint``)."""
    import torch

    from export.modules import select_modules

    from .losses import first_output

    modules = select_modules(models, plan)  # what export deploys: the classifier's logits output, the inpainter
    clf, inp = modules["classifier"], modules.get("inpainter")

    def predict(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(to_tensor(images, spec)).to(device)
        m = torch.from_numpy(masks[:, None].astype(np.float32)).to(device)
        with torch.no_grad():
            if inp is not None:
                x = inp(x, m)
            logits = first_output(clf(x))
            return logits.float().softmax(1).cpu().numpy()

    return predict


def draw_confusion(cm: np.ndarray, labels: Sequence[str], title: str = "") -> np.ndarray:
    """A row-normalised confusion-matrix image (BGR uint8) drawn with OpenCV."""
    k, cell, left, top = len(labels), 56, 110, 60
    img = np.full((top + k * cell + 100, left + k * cell + 20, 3), 255, np.uint8)
    rows = cm.sum(1, keepdims=True).clip(min=1)
    frac = cm / rows
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title[:60], (8, 24), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for t in range(k):
        cv2.putText(img, labels[t][:10], (4, top + t * cell + cell // 2 + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for p in range(k):
            shade = int(255 * (1.0 - frac[t, p]))
            x0, y0 = left + p * cell, top + t * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (160, 160, 160), 1)
            colour = (255, 255, 255) if frac[t, p] > 0.5 else (0, 0, 0)
            cv2.putText(img, str(int(cm[t, p])), (x0 + 6, y0 + cell // 2 + 5), font, 0.45, colour, 1, cv2.LINE_AA)
    for p in range(k):
        org = (left + p * cell + 4, top + k * cell + 16 + (p % 2) * 16)
        cv2.putText(img, labels[p][:8], org, font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        img, "rows: true, columns: predicted", (left, top + k * cell + 70), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA
    )
    return img


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def draw_summary(report: EvalReport, title: str = "") -> np.ndarray:
    """Accuracy per protocol as horizontal bars, the occluded mean last, chance marked (BGR uint8, OpenCV)."""
    rows = [(p, r.accuracy) for p, r in report.results.items()]
    occ = report.occluded_mean()
    if occ is not None:
        rows.append(("occluded mean", occ["accuracy"]))
    row_h, left, top, bar_w = 28, 190, 56, 560
    img = np.full((top + row_h * len(rows) + 40, left + bar_w + 90, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title[:70], (8, 24), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "accuracy per occlusion protocol", (8, 44), font, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    for i, (name, acc) in enumerate(rows):
        y = top + i * row_h
        colour = (60, 60, 200) if name == "occluded mean" else ((60, 160, 60) if name == "clean" else (200, 120, 40))
        cv2.putText(img, name[:24], (8, y + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (left, y + 4), (left + max(1, int(acc * bar_w)), y + row_h - 4), colour, -1)
        cv2.putText(img, f"{acc:.3f}", (left + int(acc * bar_w) + 6, y + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    chance = left + int(bar_w / max(1, len(report.labels)))
    y_end = top + row_h * len(rows)
    cv2.line(img, (chance, top), (chance, y_end), (0, 0, 0), 1)
    cv2.putText(img, "chance", (chance - 20, y_end + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_report(
    report: EvalReport, out_dir: str | Path, title: str = "evaluation", meta: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.md``, ``summary.png`` (accuracy per protocol) and
    ``confusion_<protocol>.png`` under ``out_dir``; ``meta`` (e.g. the pipeline that ran) goes into the JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json", "markdown": out / "metrics.md", "summary": out / "summary.png"}
    paths["json"].write_text(json.dumps({"title": title, **(meta or {}), **report.to_dict()}, indent=2))
    notes = "".join(f"- {k}: {v}\n" for k, v in (meta or {}).items())
    paths["markdown"].write_text(f"# {title}\n\n{notes}{chr(10) if notes else ''}{report.markdown()}\n")
    if not cv2.imwrite(str(paths["summary"]), draw_summary(report, title)):
        raise OSError(f"could not write {paths['summary']}")
    for p, r in report.results.items():
        png = out / f"confusion_{_slug(p)}.png"
        if not cv2.imwrite(str(png), draw_confusion(np.asarray(r.confusion), report.labels, f"{title}: {p}")):
            raise OSError(f"could not write {png}")
        paths[f"confusion:{p}"] = png
    return paths


def side_by_side(reports: dict[str, EvalReport], metric: str = "accuracy") -> str:
    """Markdown table: one row per protocol, one column per model/method."""
    names = list(reports)
    protocols: list[str] = []
    for r in reports.values():
        protocols.extend(p for p in r.results if p not in protocols)
    lines = ["| protocol | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for p in protocols:
        cells = [f"{getattr(reports[n].results[p], metric):.4f}" if p in reports[n].results else "-" for n in names]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
