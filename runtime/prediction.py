"""``Prediction``: the result for one face in one frame (re-exported as ``sdk.Prediction``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """The result for one face in one frame.

    Attributes:
        box: Face box ``(x1, y1, x2, y2)`` in frame pixels.
        label: The most probable expression.
        confidence: Its probability.
        scores: Probability of every label, in the bundle's label order.
        pipeline: Which pipeline produced it (``direct`` or ``inpaint``; with ``auto`` chosen per face).
        timings_ms: Milliseconds per stage (``decode``, ``detect``, ``crop``, ``normalize``, ``classify``,
            ``total``; ``track`` in streams; ``occlusion`` and ``inpaint`` when they ran); stages shared by several
            faces of a frame are reported for the whole frame.
        detection_score: The face detector's confidence for the box, in [0, 1].
        occlusion: Covered fraction of the face region (known headset region or estimate), when the pipeline
            estimated it (``auto`` and ``inpaint`` do unless ``occlusion="off"``; ``direct`` only when an
            ``occlusion`` region or mask is given).
        track_id: Stable id of the face across frames when tracking is on (``stream()``), else ``None``.
        roll: In-plane rotation of the face in degrees (positive: the face's eye line turns clockwise on screen);
            the classifier saw the face rotated upright.
        engine: The bundle engine whose answer this is (``classifier``, or ``classifier_headset`` when ``auto``
            routed a face with its upper face covered to the headset student), when the pipeline says.
    """

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    scores: dict[str, float]
    pipeline: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    detection_score: float = 1.0
    occlusion: float | None = None
    track_id: int | None = None
    roll: float = 0.0
    engine: str | None = None

    @classmethod
    def from_probabilities(
        cls,
        labels: Sequence[str],
        box: Sequence[float],
        probs: np.ndarray,
        *,
        pipeline: str,
        timings_ms: dict[str, float],
        detection_score: float = 1.0,
        track_id: int | None = None,
        occlusion: float | None = None,
        roll: float = 0.0,
        engine: str | None = None,
    ) -> "Prediction":
        """The prediction for one face from its box and probability vector (label order = ``labels``)."""
        top = int(np.argmax(probs))
        return cls(
            box=tuple(float(v) for v in box),
            label=labels[top],
            confidence=float(probs[top]),
            scores={n: float(s) for n, s in zip(labels, probs)},
            pipeline=pipeline,
            timings_ms=timings_ms,
            detection_score=float(detection_score),
            track_id=track_id,
            occlusion=None if occlusion is None else float(occlusion),
            roll=float(roll),
            engine=engine,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "pipeline": self.pipeline,
            "detection_score": round(self.detection_score, 4),
            "occlusion": None if self.occlusion is None else round(self.occlusion, 4),
            "track_id": self.track_id,
            "roll": round(self.roll, 2),
            "engine": self.engine,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
