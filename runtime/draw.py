"""Drawing predictions on frames: box, label and a bar per label score."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

PALETTE = [(66, 135, 245), (60, 180, 75), (230, 25, 75), (255, 225, 25), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (128, 128, 128)]


def draw_predictions(frame: np.ndarray, predictions: Sequence[Any], *, bars: bool = True) -> np.ndarray:
    """Return a copy of ``frame`` with each prediction's box, label, confidence and score bars drawn."""
    import cv2

    out = frame.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    font = max(0.4, min(h, w) / 900)
    for k, p in enumerate(predictions):
        color = PALETTE[(p.track_id if p.track_id is not None else k) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in p.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick + 1, cv2.LINE_AA)
        text = f"{p.label} {p.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick, cv2.LINE_AA)
        if bars:
            bar_h = max(6, int(th * 0.9))
            bw = max(40, x2 - x1)
            for j, (name, score) in enumerate(sorted(p.scores.items(), key=lambda kv: -kv[1])[:4]):
                by = min(h - bar_h, y2 + 4 + j * (bar_h + 2))
                cv2.rectangle(out, (x1, by), (x1 + int(bw * score), by + bar_h), color, -1)
                cv2.putText(out, f"{name} {score:.2f}", (x1 + 2, by + bar_h - 1), cv2.FONT_HERSHEY_SIMPLEX,
                            font * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def labelled_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], *, label_width: int = 150,
                  font_scale: float = 0.42) -> np.ndarray:
    """One row per ``(label, cells)``: the label on a white cell at the left, then the cells (same size, BGR)."""
    import cv2

    out = []
    for label, cells in rows:
        size = cells[0].shape[0]
        tag = np.full((size, label_width, 3), 255, np.uint8)
        cv2.putText(tag, label, (4, size // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.hstack([tag, *cells]))
    return np.vstack(out)
