"""Pipelines: what runs on a batch of face crops.

* ``direct``  -- the classifier engine on the face crop.
* ``inpaint`` -- the inpainter engine fills the covered part of the crop (it gets the occluded crop in the bundle's
  normalisation plus the occlusion mask when it takes one), and the classifier runs on its output image.
* ``auto``    -- per face: an occlusion estimate (:mod:`runtime.occlusion_estimate`) decides; faces whose covered
  fraction reaches ``threshold`` go to ``inpaint``, the others to ``direct``. On a bundle without an inpainter
  every face goes to ``direct`` (the occlusion is still estimated and reported). When the bundle carries a
  ``classifier_headset`` engine (a student trained for the upper-face-covered case, ``ofer distill --protocols
  headset``), faces whose upper face is covered (at least ``HEADSET_UPPER_THRESHOLD`` of the upper half of the face
  region, estimated or a known ``upper_half`` region) go to it (route ``headset``) before the inpaint rule.
  When those engines record what they measured per occlusion kind (upper face, lower face, other), ``auto`` sends
  each kind to the route that measured best instead (:mod:`runtime.routing`).

Every result says which pipeline ran for each face and the occlusion estimate when there is one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .bundle import Bundle, EngineSpec
from .engines.base import Engine
from .errors import ConfigError, EngineError
from .occlusion_estimate import OcclusionEstimate
from .preprocess import softmax, to_tensor
from .routing import (
    HEADSET_UPPER_THRESHOLD,
    KINDS,
    ROUTE_CODES,
    bundle_routes,
    face_kinds,
    recorded,
    upper_face_fraction,
)

__all__ = [
    "HEADSET_UPPER_THRESHOLD",
    "AutoPipeline",
    "DirectPipeline",
    "InpaintPipeline",
    "PipelineResult",
    "build_pipeline",
    "resolve_pipeline",
    "upper_face_fraction",
]

PIPELINE_NAMES = ("auto", "direct", "inpaint")
#: The stages a pipeline reports in ``PipelineResult.timings_ms``, in the order they run.
STAGES = ("occlusion", "normalize", "inpaint", "classify")
DEFAULT_THRESHOLD = 0.25
HEADSET_ROLE = "classifier_headset"
GET_INPAINTER = (
    "export a bundle with an inpainter: `ofer export INPAINTER.onnx CLASSIFIER --out BUNDLE` (or "
    "`ofer export CHECKPOINT --out BUNDLE` with a gan-inpaint / deocclusion training checkpoint)"
)


@dataclass
class PipelineResult:
    """Probabilities for a batch of crops, which pipeline ran, and per-stage milliseconds.

    Attributes:
        probabilities: ``(N, n_labels)``.
        pipeline: The pipeline object's name (``direct``, ``inpaint`` or ``auto``).
        timings_ms: Milliseconds per stage for the whole batch, keys from :data:`STAGES` (``occlusion`` when
            estimated, ``inpaint`` when some face was inpainted; ``auto`` adds both sub-batches' ``normalize`` and
            ``classify`` together), in the order they ran.
        per_face: The pipeline that produced each face (``direct`` or ``inpaint``).
        occlusion: Covered fraction of each face's face region, or ``None`` when not estimated.
        inpainted: The inpainter's output ``(M, ...)`` for the faces that went through it (in order), else ``None``.
        engines: The classifier engine that answered for each face (empty when the pipeline does not say).
    """

    probabilities: np.ndarray
    pipeline: str
    timings_ms: dict[str, float]
    per_face: list[str] = field(default_factory=list)
    occlusion: np.ndarray | None = None
    inpainted: np.ndarray | None = None
    engines: list[str] = field(default_factory=list)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class DirectPipeline:
    """Classifier engine on the face crop.

    Args:
        bundle: The bundle (input spec).
        classifier: The classifier engine.
        output_kind: ``logits`` (softmax applied) or ``probabilities``.
        estimator: Optional occlusion estimator whose estimate is reported (e.g. a known headset region).
    """

    name = "direct"
    engine_name = "classifier"  # the manifest name of the classifier engine (set by build_pipeline)

    def __init__(self, bundle: Bundle, classifier: Engine, output_kind: str = "logits", estimator: Any = None) -> None:
        self.bundle = bundle
        self.classifier = classifier
        self.output_kind = output_kind
        self.estimator = estimator
        self._input = classifier.input_names[0]
        self._output = classifier.output_names[0]

    def classify_tensor(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for an already normalised batch.

        Raises:
            EngineError: the classifier gave NaN or infinite outputs (never turned into a confident label).
        """
        out = self.classifier.run({self._input: batch})[self._output].astype(np.float32)
        bad = ~np.isfinite(out).reshape(len(out), -1).all(axis=1)
        if bad.any():
            raise EngineError(
                f"the classifier engine gave NaN or infinite outputs for {int(bad.sum())} of "
                f"{len(out)} faces; its weights are broken or it overflows at this precision: try "
                "another precision (--precision fp32) or re-export the bundle"
            )
        return softmax(out) if self.output_kind == "logits" else out

    def run(self, crops: list[np.ndarray]) -> PipelineResult:
        """Classify uint8 crops already cropped and resized to the bundle's input spec."""
        timings: dict[str, float] = {}
        occlusion = None
        if self.estimator is not None:
            t = time.perf_counter()
            occlusion = self.estimator.estimate(crops).fraction
            timings["occlusion"] = _ms(t)
        t0 = time.perf_counter()
        batch = to_tensor(crops, self.bundle.input)
        t1 = time.perf_counter()
        probs = self.classify_tensor(batch)
        timings.update(normalize=(t1 - t0) * 1e3, classify=_ms(t1))
        return PipelineResult(
            probs, self.name, timings, [self.name] * len(crops), occlusion, engines=[self.engine_name] * len(crops)
        )


class InpaintPipeline:
    """Inpainter engine (occluded crop + mask) then the classifier on its output image.

    Args:
        bundle: The bundle (input spec).
        inpainter: The inpainter engine: input ``image`` (the bundle's normalised tensor) and, when it has a
            second input, ``mask`` (``(N, 1, H, W)`` float, 1 = covered; ``(N, H, W, 1)`` for NHWC bundles).
        direct: The direct pipeline whose classifier runs on the inpainted image.
        estimator: Gives the mask: a known region, the bundle's estimator or the built-in one.
    """

    name = "inpaint"

    def __init__(self, bundle: Bundle, inpainter: Engine, direct: DirectPipeline, estimator: Any) -> None:
        self.bundle, self.inpainter, self.direct, self.estimator = bundle, inpainter, direct, estimator
        names = list(inpainter.input_names)
        if not names or len(names) > 2:
            raise EngineError(
                f"an inpainter engine takes an image and optionally a mask; this one has inputs "
                f"{names}; re-export it with `ofer export`"
            )
        self._mask_input = next((n for n in names if "mask" in n.lower()), names[1] if len(names) == 2 else None)
        self._image_input = next(n for n in names if n != self._mask_input)
        self._output = inpainter.output_names[0]

    def mask_tensor(self, masks: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` 0/1 masks as the inpainter's float mask input, in the bundle's layout."""
        m = masks.astype(np.float32)
        return np.ascontiguousarray(m[:, None] if self.bundle.input.layout == "NCHW" else m[..., None])

    def inpaint_tensor(self, batch: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The inpainter's output for a normalised batch and its ``(N, H, W)`` masks."""
        feed = {self._image_input: batch}
        if self._mask_input is not None:
            feed[self._mask_input] = self.mask_tensor(masks)
        out = self.inpainter.run(feed)[self._output]
        if out.shape != batch.shape:
            raise EngineError(
                f"the inpainter returned shape {list(out.shape)} for input {list(batch.shape)}; its "
                "output must be an image of the classifier's input shape — re-export the bundle"
            )
        return out.astype(np.float32, copy=False)

    def run_with(self, crops: list[np.ndarray], estimate: OcclusionEstimate) -> PipelineResult:
        """Inpaint and classify with a given occlusion estimate (masks for these crops)."""
        t0 = time.perf_counter()
        batch = to_tensor(crops, self.bundle.input)
        t1 = time.perf_counter()
        filled = self.inpaint_tensor(batch, estimate.masks)
        t2 = time.perf_counter()
        probs = self.direct.classify_tensor(filled)
        timings = {"normalize": (t1 - t0) * 1e3, "inpaint": (t2 - t1) * 1e3, "classify": _ms(t2)}
        return PipelineResult(
            probs,
            self.name,
            timings,
            [self.name] * len(crops),
            estimate.fraction,
            filled,
            engines=[self.direct.engine_name] * len(crops),
        )

    def run(self, crops: list[np.ndarray]) -> PipelineResult:
        """Estimate the occlusion mask, inpaint, classify."""
        t = time.perf_counter()
        estimate = self.estimator.estimate(crops)
        occ_ms = _ms(t)
        res = self.run_with(crops, estimate)
        res.timings_ms = {"occlusion": occ_ms, **res.timings_ms}
        return res


class AutoPipeline:
    """Per face: ``inpaint`` when the estimated covered fraction reaches ``threshold``, else ``direct``.

    Args:
        direct: The direct pipeline.
        inpaint: The inpaint pipeline, or ``None`` (bundle without an inpainter: every face goes direct).
        estimator: The occlusion estimator.
        threshold: Covered fraction of the face region from which a face is inpainted.
        headset: The headset student's pipeline, or ``None``.
        upper_threshold: Covered fraction of the upper face from which a face goes to the headset student.
        routes: Route per occlusion kind (``upper``, ``lower``, ``other`` -> ``direct``, ``inpaint`` or
            ``headset``) measured by the bundle (:func:`runtime.routing.bundle_routes`); ``None``: the fixed rules.
    """

    name = "auto"

    def __init__(
        self,
        direct: DirectPipeline,
        inpaint: InpaintPipeline | None,
        estimator: Any,
        threshold: float = DEFAULT_THRESHOLD,
        headset: DirectPipeline | None = None,
        upper_threshold: float = HEADSET_UPPER_THRESHOLD,
        routes: dict[str, str] | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"occlusion threshold must be in [0, 1], got {threshold!r}")
        self.direct, self.inpaint, self.estimator, self.threshold = direct, inpaint, estimator, float(threshold)
        self.headset, self.upper_threshold, self.routes = headset, float(upper_threshold), routes

    def _route(self, est: OcclusionEstimate) -> np.ndarray:
        """Per face 0 direct, 1 inpaint, 2 headset."""
        n = len(est.fraction)
        route = np.zeros(n, np.int8)
        if self.routes is not None and n:
            kinds = face_kinds(np.asarray(est.masks), est.fraction, self.threshold)
            available = {0, *([1] if self.inpaint is not None else []), *([2] if self.headset is not None else [])}
            for i, kind in enumerate(KINDS, 1):
                code = ROUTE_CODES[self.routes.get(kind, "direct")]
                route[kinds == i] = code if code in available else 0
            return route
        if self.inpaint is not None:
            route[est.fraction >= self.threshold] = 1
        if self.headset is not None and n:
            route[upper_face_fraction(np.asarray(est.masks)) >= self.upper_threshold] = 2
        return route

    def run(self, crops: list[np.ndarray]) -> PipelineResult:
        """Estimate, route each face, run the sub-batches, put the results back in order."""
        n = len(crops)
        t = time.perf_counter()
        est = self.estimator.estimate(crops)
        timings = {"occlusion": _ms(t)}
        route = self._route(est)
        probs = np.zeros((n, len(self.direct.bundle.labels)), np.float32)
        names = ("direct", "inpaint", "headset")
        per_face = [names[r] for r in route]
        engines = [""] * n
        inpainted = None
        runs = (
            (0, lambda idx: self.direct.run([crops[i] for i in idx])),
            (1, lambda idx: self.inpaint.run_with([crops[i] for i in idx], est.take(idx))),
            (2, lambda idx: self.headset.run([crops[i] for i in idx])),
        )
        for flag, run in runs:
            idx = np.flatnonzero(route == flag)
            if not len(idx):
                continue
            res = run(idx)
            probs[idx] = res.probabilities
            for j, i in enumerate(idx):
                engines[i] = res.engines[j] if res.engines else ""
            for k, v in res.timings_ms.items():  # every sub-batch adds to the same stage keys
                timings[k] = timings.get(k, 0.0) + v
            if flag == 1:
                inpainted = res.inpainted
        return PipelineResult(
            probs, self.name, timings, per_face, est.fraction, inpainted, engines if all(engines) else []
        )


def resolve_pipeline(bundle: Bundle, requested: str) -> str:
    """The pipeline to build for a request, with a clear error when the bundle cannot do it."""
    if requested not in PIPELINE_NAMES:
        raise ConfigError(f"unknown pipeline {requested!r}; choose one of {', '.join(PIPELINE_NAMES)}")
    if requested == "inpaint" and not bundle.find_engines("inpainter"):
        raise ConfigError(
            f"bundle {bundle.name!r} has no inpainter engine, so it cannot run pipeline 'inpaint' "
            f"(it supports {list(bundle.pipelines)}); {GET_INPAINTER}; or use pipeline 'direct' or "
            "'auto'"
        )
    return requested


OpenRole = Callable[[str], tuple[Engine, EngineSpec]]


def build_pipeline(
    bundle: Bundle, requested: str, open_role: OpenRole, *, occlusion: Any = None, threshold: float = DEFAULT_THRESHOLD
) -> DirectPipeline | InpaintPipeline | AutoPipeline:
    """Build the pipeline ``requested`` for ``bundle``.

    Args:
        bundle: The loaded bundle.
        requested: ``auto``, ``direct`` or ``inpaint``.
        open_role: Opens the bundle's engine of a role (``classifier``, ``inpainter``, ``occlusion_estimator``)
            for the chosen backend and returns it with its manifest entry.
        occlusion: The Recognizer's ``occlusion`` option (see :func:`runtime.occlusion_estimate.make_estimator`);
            with ``direct`` an estimate is only made (and reported) when the region is given; ``"off"`` makes none
            (``auto`` then runs ``direct``; refused when the bundle has an inpainter or headset student to route to).
        threshold: Covered fraction from which ``auto`` inpaints a face.

    Raises:
        ConfigError: ``occlusion="off"`` with a pipeline that routes by the estimate.
    """
    from .occlusion_estimate import make_estimator

    name = resolve_pipeline(bundle, requested)
    off = isinstance(occlusion, str) and occlusion == "off"
    if (
        off
        and name != "direct"
        and (bundle.find_engines("inpainter") or (name == "auto" and bundle.find_engines(HEADSET_ROLE)))
    ):
        need = (
            "needs the occlusion mask to inpaint"
            if name == "inpaint"
            else f"has nothing to route faces by (bundle {bundle.name!r} has an inpainter or a headset student)"
        )
        raise ConfigError(
            f"occlusion='off': pipeline {name!r} {need}; use pipeline='direct' (--pipeline direct), "
            "or leave the occlusion estimate on"
        )
    clf, clf_spec = open_role("classifier")
    if name == "direct" or off:  # off: auto on a bundle with nothing to route is direct without an estimate
        given = occlusion is not None and not (isinstance(occlusion, str) and occlusion in ("auto", "off"))
        direct = DirectPipeline(bundle, clf, clf_spec.output, make_estimator(occlusion) if given else None)
        direct.engine_name = clf_spec.name
        return direct
    est_engine, est_kind = None, "probabilities"
    if bundle.find_engines("occlusion_estimator") and (
        occlusion is None or (isinstance(occlusion, str) and occlusion == "auto")
    ):
        est_engine, est_spec = open_role("occlusion_estimator")
        est_kind = est_spec.output
    estimator = make_estimator(occlusion, estimator_engine=est_engine, spec=bundle.input, output_kind=est_kind)
    direct = DirectPipeline(bundle, clf, clf_spec.output)
    direct.engine_name = clf_spec.name
    headset, routes = None, None
    if name == "auto":
        routes = bundle_routes(
            {
                "inpaint": recorded(bundle.find_engines("inpainter")),
                "headset": recorded(bundle.find_engines(HEADSET_ROLE)),
            }
        )
    if name == "auto" and bundle.find_engines(HEADSET_ROLE):
        hs, hs_spec = open_role(HEADSET_ROLE)
        headset = DirectPipeline(bundle, hs, hs_spec.output)
        headset.engine_name = hs_spec.name
    inpaint = None
    if bundle.find_engines("inpainter"):
        inp, inp_spec = open_role("inpainter")
        if inp_spec.output != "image":
            raise EngineError(
                f"bundle {bundle.name!r}: inpainter engine {inp_spec.name!r} has output "
                f"{inp_spec.output!r}, expected 'image'; re-export the bundle"
            )
        inpaint = InpaintPipeline(bundle, inp, direct, estimator)
    if name == "inpaint":
        return inpaint  # type: ignore[return-value]  # resolve_pipeline checked there is an inpainter
    return AutoPipeline(direct, inpaint, estimator, threshold, headset=headset, routes=routes)
