"""Drawing predictions on frames: box, track id, label, pipeline, occlusion and score bars, laid out so that
the panels of several faces never overlap each other or leave the frame."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

PALETTE = [
    (66, 135, 245),
    (60, 180, 75),
    (230, 25, 75),
    (255, 225, 25),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (128, 128, 128),
]


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def _overlap(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _place(
    size: tuple[int, int], box: Rect, frame: tuple[int, int], panels: Sequence[Rect], boxes: Sequence[Rect] = ()
) -> Rect:
    """A ``(w, h)`` panel next to ``box``, inside the frame: never over another panel when any position avoids
    them, then over as little of the face boxes as possible, then as close to below-the-box as possible.

    Candidates: below, above, right and left of the box, slid along that side to line up with the box's edges or
    to clear the panels already placed.
    """
    w, h = size
    fh, fw = frame
    x1, y1, x2, y2 = box
    xs = {x1, x2 - w, *(p[2] + 2 for p in panels), *(p[0] - w - 2 for p in panels)}
    ys = {y1, y2 - h, *(p[3] + 2 for p in panels), *(p[1] - h - 2 for p in panels)}
    options = (
        [(x, y2 + 2) for x in xs]
        + [(x, y1 - h - 2) for x in xs]
        + [(x2 + 2, y) for y in ys]
        + [(x1 - w - 2, y) for y in ys]
        + [(x1 + 2, y1 + 2)]
    )
    best, best_cost = None, None
    for x, y in options:
        x = int(min(max(x, 0), max(fw - w, 0)))
        y = int(min(max(y, 0), max(fh - h, 0)))
        rect = (x, y, x + w, y + h)
        cost = (
            sum(_overlap(rect, p) for p in panels) * 1000
            + sum(_overlap(rect, b) for b in boxes)
            + abs(x - x1)
            + abs(y - (y2 + 2))
        )
        if best_cost is None or cost < best_cost:
            best, best_cost = rect, cost
    assert best is not None
    return best


def _panel(out: np.ndarray, rect: Rect, alpha: float = 0.6) -> None:
    """Darken ``rect`` of ``out`` in place so white text on it stays legible over any background."""
    x1, y1, x2, y2 = rect
    roi = out[y1:y2, x1:x2]
    roi[...] = (roi.astype(np.float32) * (1 - alpha)).astype(np.uint8)


def draw_predictions(frame: np.ndarray, predictions: Sequence[Any], *, bars: bool = True, top: int = 4) -> np.ndarray:
    """A copy of ``frame`` with each face's box, a header (track id, label, confidence), the pipeline and
    occlusion estimate, and bars for its ``top`` scores.

    Each face's text panel sits below its box when there is room (else above, right, left or inside), always
    inside the frame and, when the frame has room, clear of the other faces' panels and boxes. Text is sized from
    the frame height (at least ~12 px) on a darkened panel, so it reads on any background.
    """
    import cv2

    out = frame.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    fh, fw = out.shape[:2]
    font, face = max(0.4, min(fh, fw) / 1000), cv2.FONT_HERSHEY_SIMPLEX
    thick = 1 if font < 0.8 else 2
    (_, th), base = cv2.getTextSize("Ag", face, font, thick)
    line = th + base + 4
    boxes = [tuple(int(round(v)) for v in p.box) for p in predictions]
    for (x1, y1, x2, y2), (k, p) in zip(boxes, enumerate(predictions)):
        color = PALETTE[(p.track_id if p.track_id is not None else k) % len(PALETTE)]
        cv2.rectangle(out, (max(x1, 0), max(y1, 0)), (min(x2, fw - 1), min(y2, fh - 1)), color, thick + 1, cv2.LINE_AA)
    faces = [(max(b[0], 0), max(b[1], 0), min(b[2], fw), min(b[3], fh)) for b in boxes]
    taken: list[Rect] = []
    for box, (k, p) in zip(boxes, enumerate(predictions)):
        color = PALETTE[(p.track_id if p.track_id is not None else k) % len(PALETTE)]
        tid = f"#{p.track_id} " if p.track_id is not None else ""
        occ = "occl ?" if p.occlusion is None else f"occl {p.occlusion:.0%}"
        lines = [f"{tid}{p.label} {p.confidence:.0%}", f"{p.pipeline}, {occ}"]
        scores = sorted(p.scores.items(), key=lambda kv: -kv[1])[:top] if bars else []
        name_w = max([cv2.getTextSize(f"{n} 0.00", face, font * 0.8, 1)[0][0] for n, _ in scores] or [0])
        text_w = max(cv2.getTextSize(t, face, font, thick)[0][0] for t in lines)
        bar_w = max(40, int(60 * font))
        w = min(max(text_w, name_w + bar_w + 6) + 8, fw)
        h = min(line * len(lines) + line * len(scores) + 4, fh)
        rect = _place((w, h), box, (fh, fw), taken, faces)
        taken.append(rect)
        _panel(out, rect)
        cv2.rectangle(out, rect[:2], (rect[2] - 1, rect[3] - 1), color, 1)
        x, y = rect[0] + 4, rect[1] + 2
        for t in lines:
            y += line
            cv2.putText(out, t, (x, y - base - 2), face, font, (255, 255, 255), thick, cv2.LINE_AA)
        for name, score in scores:
            y += line
            cv2.putText(
                out, f"{name} {score:.2f}", (x, y - base - 2), face, font * 0.8, (255, 255, 255), 1, cv2.LINE_AA
            )
            bx = x + name_w + 4
            cv2.rectangle(out, (bx, y - line + 4), (bx + bar_w, y - 3), (90, 90, 90), -1)
            cv2.rectangle(out, (bx, y - line + 4), (bx + int(round(bar_w * float(score))), y - 3), color, -1)
    return out


def labelled_grid(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]], *, label_width: int = 150, font_scale: float = 0.42
) -> np.ndarray:
    """One row per ``(label, cells)``: the label on a white cell at the left, then the cells (same size, BGR)."""
    import cv2

    out = []
    for label, cells in rows:
        size = cells[0].shape[0]
        tag = np.full((size, label_width, 3), 255, np.uint8)
        cv2.putText(tag, label, (4, size // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.hstack([tag, *cells]))
    return np.vstack(out)
