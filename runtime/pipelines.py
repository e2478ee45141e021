"""Pipelines: what runs on a batch of face crops (direct classification; inpaint-then-classify comes later)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .bundle import Bundle
from .engines.base import Engine
from .errors import ConfigError
from .preprocess import softmax, to_tensor

PIPELINE_NAMES = ("auto", "direct", "inpaint")


@dataclass
class PipelineResult:
    """Probabilities for a batch of crops, which pipeline ran, and per-stage milliseconds."""

    probabilities: np.ndarray
    pipeline: str
    timings_ms: dict[str, float]


class DirectPipeline:
    """Classifier engine on the face crop."""

    name = "direct"

    def __init__(self, bundle: Bundle, classifier: Engine, output_kind: str = "logits") -> None:
        self.bundle = bundle
        self.classifier = classifier
        self.output_kind = output_kind
        self._input = classifier.input_names[0]
        self._output = classifier.output_names[0]

    def run(self, crops: list[np.ndarray]) -> PipelineResult:
        """Classify uint8 crops already cropped and resized to the bundle's input spec."""
        t0 = time.perf_counter()
        batch = to_tensor(crops, self.bundle.input)
        t1 = time.perf_counter()
        out = self.classifier.run({self._input: batch})[self._output]
        t2 = time.perf_counter()
        probs = softmax(out.astype(np.float32)) if self.output_kind == "logits" else out.astype(np.float32)
        return PipelineResult(probs, self.name, {"normalize": (t1 - t0) * 1e3, "classify": (t2 - t1) * 1e3})


def resolve_pipeline(bundle: Bundle, requested: str) -> str:
    """The pipeline to build for a request, with a clear error when the bundle cannot do it."""
    if requested not in PIPELINE_NAMES:
        raise ConfigError(f"unknown pipeline {requested!r}; choose one of {', '.join(PIPELINE_NAMES)}")
    if requested == "auto":
        return "direct"
    if requested not in bundle.pipelines:
        raise ConfigError(f"bundle {bundle.name!r} supports pipelines {list(bundle.pipelines)}, not {requested!r}; "
                          "for 'inpaint' export a bundle with an inpainter: "
                          "`ofer export INPAINTER_CHECKPOINT CLASSIFIER_CHECKPOINT --out BUNDLE`")
    return requested
