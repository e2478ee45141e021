"""Evaluate a deployed bundle's pipeline on a labelled dataset, without torch.

``ofer eval BUNDLE`` runs what the runtime runs: the bundle's ``direct``, ``inpaint`` (inpainter, then the
classifier on its output) or ``auto`` pipeline (per face, from the occlusion), built by
:func:`runtime.pipelines.build_pipeline` exactly as :class:`sdk.Recognizer` builds it. The masks the inpainter
gets are the evaluation protocol's own (``masks="protocol"``, as a checkpoint is evaluated, so the two tables
compare) or the bundle's occlusion estimate (``masks="estimate"``, what a deployed ``auto`` pipeline sees).
Nothing here imports torch: a device without it can evaluate its bundles.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError
from runtime.pipelines import PIPELINE_NAMES

from runtime.input_spec import InputSpec

from .training.evaluation import Predict

MASK_SOURCES = ("protocol", "estimate")


def default_pipeline(bundle: Any) -> str:
    """The pipeline a bundle is evaluated with by default: ``inpaint`` when it has an inpainter, else ``direct``."""
    return "inpaint" if bundle.find_engines("inpainter") else "direct"


@dataclass
class BundlePredictor:
    """A predict function over a bundle's pipeline, and what it runs.

    Attributes:
        predict: ``(uint8 crops NHW or NHW3, float masks NHW) -> (N, K) probabilities`` (see
            ``sdk.training.evaluation``).
        spec: The bundle's input spec (images are prepared to it as the runtime prepares crops).
        labels: The bundle's labels, in its order.
        pipeline: The pipeline that runs (``direct``, ``inpaint`` or ``auto``).
        engines: ``role -> "name format/precision"`` of every engine it opened.
        masks: Where the inpainter's masks come from (``protocol`` or ``estimate``).
        routes: For ``auto``: how many faces went each way.
    """

    predict: Predict
    spec: InputSpec
    labels: tuple[str, ...]
    pipeline: str
    engines: dict[str, str]
    masks: str
    routes: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        """One line: the pipeline, its engines in order, and the mask source."""
        order = [r for r in ("occlusion_estimator", "inpainter", "classifier") if r in self.engines]
        chain = " -> ".join(f"{r} ({self.engines[r]})" for r in order)
        masks = (
            ""
            if self.pipeline == "direct"
            else (", masks from the protocol" if self.masks == "protocol" else ", masks from the occlusion estimate")
        )
        return f"pipeline {self.pipeline}: {chain}{masks}"


def bundle_predictor(
    path: str | Path,
    pipeline: str | None = None,
    *,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    masks: str = "protocol",
    threshold: float = 0.25,
) -> BundlePredictor:
    """A predict function running a deployed bundle's pipeline.

    Args:
        path: Bundle folder.
        pipeline: ``direct``, ``inpaint`` or ``auto``; ``None`` = :func:`default_pipeline`.
        backend, precision, threads: As for :class:`sdk.Recognizer`.
        masks: ``protocol`` (the occluder the protocol drew) or ``estimate`` (the bundle's occlusion estimate).
        threshold: Covered fraction from which ``auto`` inpaints a face.

    Raises:
        ConfigError: unknown pipeline or mask source, ``inpaint`` on a bundle without an inpainter.
        BundleError / EngineError: from ``runtime`` when the bundle or an engine cannot be loaded.
    """
    from runtime.backends import open_for_role
    from runtime.bundle import load_bundle
    from runtime.occlusion_estimate import GivenMasks
    from runtime.pipelines import build_pipeline

    if masks not in MASK_SOURCES:
        raise ConfigError(f"unknown mask source {masks!r}; choose one of {', '.join(MASK_SOURCES)}")
    if pipeline is not None and pipeline not in PIPELINE_NAMES:
        raise ConfigError(f"unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINE_NAMES)}")
    bundle = load_bundle(path)
    spec = bundle.input
    name = pipeline or default_pipeline(bundle)
    opened: dict[str, str] = {}

    def open_role(role: str) -> Any:
        engine, espec = open_for_role(bundle, role, backend=backend, precision=precision, threads=threads)
        opened[role] = f"{espec.name} {espec.format}/{espec.precision}"
        return engine, espec

    given = GivenMasks() if masks == "protocol" else None
    pipe = build_pipeline(bundle, name, open_role, occlusion=given if name != "direct" else None, threshold=threshold)
    result = BundlePredictor(lambda i, m: np.empty(0), spec, tuple(bundle.labels), pipe.name, opened, masks)

    def predict(images: np.ndarray, batch_masks: np.ndarray) -> np.ndarray:
        crops = list(images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images)
        if given is not None:
            given.set(batch_masks)
        res = pipe.run(crops)
        result.routes.update(res.per_face)
        return res.probabilities

    result.predict = predict
    return result
