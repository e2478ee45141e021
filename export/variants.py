"""One export format's variant of a model: made as its table entry says, judged against FP32 on held-out faces.

:class:`ExportRun` holds what every variant of one export shares, each computed once when first needed: the FP32
models (self-contained), the held-out occluded faces and the FP32 outputs on them, the calibration set and the
activation ranges per model, the FP32 inpaint pipeline's outputs. :func:`export_variant` makes one format's
classifier (``fmt.make``), runs the agreement gate (``fmt.simulate``: as TensorRT computes), gives an INT8 flavour
that misses it the sensitivity fallback, and for an inpaint bundle makes the inpainter of that format and judges
the whole pipeline. The makers of the table (:data:`export.formats.EXPORT_FORMATS`) are here too.

ONNX Runtime, onnx and the calibration modules are imported when used (the table imports this module).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

    from calibration.config import CalibrationConfig
    from calibration.sets import OccludedSet

    from .formats import ExportFormat
    from .source import ExportSource


class ExportRun:
    """What the variants of one export share (see the module docstring).

    Args:
        source: The FP32 models, labels, input spec and provenance.
        calibration: Calibration and held-out settings (``source`` already resolved for INT8).
        agreement: Minimum top-1 agreement with FP32 of every variant.
        max_float_nodes: The most nodes the INT8 sensitivity fallback may keep in float (0: no fallback).
        work: Folder for the models made.
    """

    def __init__(
        self,
        source: ExportSource,
        calibration: CalibrationConfig,
        *,
        agreement: float,
        max_float_nodes: int,
        work: Path,
    ) -> None:
        from .source import self_contained

        self.models: dict[str, Path] = {"classifier": self_contained(Path(source.classifier), work)}
        if source.inpainter is not None:
            self.models["inpainter"] = self_contained(Path(source.inpainter), work)
        self.labels = tuple(source.labels)
        self.spec = source.input_spec
        self.provenance: Mapping[str, Any] = source.provenance
        self.calibration = calibration
        self.agreement = agreement
        self.max_float_nodes = int(max_float_nodes)
        self.work = work
        #: Records shared by the variants (``heldout``, ``calibration``, ``fp32_pipeline``), as they are made.
        self.records: dict[str, Any] = {}
        self.int8_passed = False  # an INT8 classifier passed its own gate (the TensorRT cache is worth writing)
        self._ranges: dict[str, tuple[Any, Any]] = {}

    @cached_property
    def heldout(self) -> OccludedSet:
        """The held-out occluded faces (:func:`calibration.sets.heldout_set`)."""
        from calibration.sets import heldout_set

        from .int8 import source_domain

        source, faces = heldout_set(self.calibration, self.spec)
        self.records["heldout"] = {"source": source, "domain": source_domain(source), **faces.describe()}
        return faces

    @cached_property
    def reference(self) -> np.ndarray:
        """FP32 classifier outputs on the held-out faces."""
        from .agreement import run_onnx

        return run_onnx(self.models["classifier"], self.heldout.inputs)

    def compare(self, outputs: np.ndarray, reference: np.ndarray | None = None) -> dict[str, Any]:
        """Agreement and accuracy per protocol of held-out ``outputs`` with ``reference`` (default: FP32)."""
        from .agreement import compare

        h = self.heldout
        ref = self.reference if reference is None else reference
        return compare(ref, outputs, h.protocols, h.labels, h.label_names, self.labels)

    def check(self, fmt: ExportFormat, path: Path) -> dict[str, Any]:
        """:meth:`compare` of the classifier ``path`` in format ``fmt``, run as the format runs."""
        from .agreement import run_onnx

        return self.compare(run_onnx(path, self.heldout.inputs, simulate=fmt.simulate))

    @cached_property
    def calib(self) -> OccludedSet:
        """The calibration set (:func:`calibration.sets.calibration_set`), recorded with its source and domain."""
        from calibration.sets import calibration_set

        from .int8 import model_domain, source_domain

        cfg = self.calibration
        faces = calibration_set(cfg, self.spec)
        self.records["calibration"] = {
            "source": cfg.source,
            "domain": source_domain(str(cfg.source)),
            "model_domain": model_domain(self.provenance),
            "method": cfg.method,
            **({"note": cfg.note} if cfg.note else {}),
            **faces.describe(),
        }
        return faces

    def ranges(self, role: str) -> tuple[Any, Any]:
        """``(activation ranges, calibration reader)`` of the FP32 ``role`` model on the calibration set; the
        inpainter reads each face with its occlusion mask."""
        if role not in self._ranges:
            from calibration.ranges import compute_ranges
            from calibration.reader import ArrayCalibrationReader

            from .inpaint_check import input_names, mask_tensor

            t0 = time.perf_counter()
            model = self.models[role]
            calib = self.calib
            if role == "inpainter":
                image, mask = input_names(model)
                extra = {mask: mask_tensor(calib.masks, self.spec.layout)} if mask is not None else None
                reader = ArrayCalibrationReader(calib.inputs, image, extra=extra)
            else:
                reader = ArrayCalibrationReader(calib.inputs, input_names(model)[0])
            self._ranges[role] = (compute_ranges(model, reader, self.calibration.method), reader)
            if role == "classifier":  # the calibration set is built by the first call: its time is counted too
                self.records["calibration"]["seconds"] = round(time.perf_counter() - t0, 2)
        return self._ranges[role]

    @cached_property
    def pipeline_reference(self) -> np.ndarray:
        """FP32 inpaint pipeline (inpainter -> classifier) outputs on the held-out faces and their masks."""
        from .inpaint_check import run_pipeline

        h = self.heldout
        ref = run_pipeline(self.models["inpainter"], self.models["classifier"], h.inputs, h.masks, self.spec.layout)
        self.records["fp32_pipeline"] = self.compare(ref, ref)
        return ref


def make_fp16(fmt: ExportFormat, run: ExportRun, role: str, dst: Path, exclude: Sequence[str] = ()) -> dict:
    """FP16 copy of the ``role`` model (:func:`export.fp16.convert_fp16`)."""
    from .fp16 import convert_fp16

    return convert_fp16(run.models[role], dst)


def make_int8(fmt: ExportFormat, run: ExportRun, role: str, dst: Path, exclude: Sequence[str] = ()) -> dict:
    """INT8 Q/DQ copy of the ``role`` model in flavour ``fmt``, from its calibration ranges, ``exclude`` left in
    float (:func:`export.quantize.quantize_int8`)."""
    from .quantize import quantize_int8

    ranges, reader = run.ranges(role)
    return quantize_int8(
        run.models[role], dst, ranges, fmt, method=run.calibration.method, reader=reader, exclude=exclude
    )


@dataclass
class Variant:
    """One format's outcome: its manifest record, whether it passed its gate, its engine entries when it did."""

    fmt: ExportFormat
    record: dict[str, Any]
    message: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every gate of this variant passed."""
        return self.message is None

    def fail(self, message: str) -> None:
        """Mark the variant failed (left out of the bundle) with ``message``."""
        self.message = message
        self.record.update(passed=False, failure=message)
        self.entries.clear()


def reference_entries(fmt: ExportFormat, run: ExportRun) -> list[dict[str, Any]]:
    """The FP32 models' engine entries (always in the bundle: the reference)."""
    return [fmt.entry(role, path) for role, path in run.models.items()]


def export_variant(fmt: ExportFormat, run: ExportRun) -> Variant:
    """Make ``fmt``'s classifier (and inpainter) and judge them (see the module docstring).

    Raises:
        ExportError: a conversion, quantisation or calibration fails.
    """
    from .agreement import gate_failure

    assert fmt.make is not None, f"{fmt.key} has no maker"
    t0 = time.perf_counter()
    path = run.work / fmt.file_name("classifier")
    info = fmt.make(fmt, run, "classifier", path, ())
    result = run.check(fmt, path)
    extra: dict[str, Any] = {}
    what, excluded = fmt.key, None
    if fmt.int8 is not None:
        from .int8 import sensitivity_fallback

        result, info = sensitivity_fallback(fmt, run, path, result, info)
        nodes = info["excluded_nodes"]
        what = f"{fmt.key} ({run.calibration.method})"
        excluded = len(nodes) if "sensitivity" in info else 0
        sens = info.get("sensitivity", {})
        extra = {
            "excluded_nodes": nodes,
            "quantizable_nodes": sens.get("candidates"),
            "all_int8_agreement": sens.get("all_int8_agreement", result["top1_agreement"]),
            **({"weighted_ops_only": True} if sens.get("weighted_ops_only") else {}),
            **({"sensitivity": {k: v for k, v in sens.items() if k != "ranking"}} if sens else {}),
        }
    message = gate_failure(
        result,
        run.agreement,
        what=what,
        excluded=excluded,
        max_excluded=run.max_float_nodes if excluded is not None else None,
    )
    record = {
        **result,
        "passed": message is None,
        "seconds": round(time.perf_counter() - t0, 2),
        **extra,
        **({"failure": message} if message else {}),
    }
    variant = Variant(fmt, record, message)
    if message is not None:
        return variant
    run.int8_passed |= fmt.int8 is not None
    variant.entries.append(fmt.entry("classifier", path, **{fmt.record: info}, agreement=result["top1_agreement"]))
    if "inpainter" in run.models:
        _check_pipeline(fmt, run, variant, path)
    return variant


def _check_pipeline(fmt: ExportFormat, run: ExportRun, variant: Variant, classifier: Path) -> None:
    """Make ``fmt``'s inpainter and judge the whole inpaint pipeline of that format against the FP32 pipeline on
    the held-out faces and their masks; below the gate, the variant fails (both models are left out)."""
    from .agreement import gate_failure
    from .inpaint_check import run_pipeline

    reference = run.pipeline_reference
    path = run.work / fmt.file_name("inpainter")
    info = fmt.make(fmt, run, "inpainter", path, ())
    h = run.heldout
    got = run_pipeline(path, classifier, h.inputs, h.masks, run.spec.layout, simulate=fmt.simulate)
    result = run.compare(got, reference)
    excluded = None
    if fmt.int8 is not None:
        from .int8 import inpainter_fallback

        result, info = inpainter_fallback(fmt, run, path, classifier, result, info)
        excluded = len(info["excluded_nodes"]) if "sensitivity" in info else 0
    message = gate_failure(
        result,
        run.agreement,
        what=f"{fmt.key} inpaint pipeline (inpainter + classifier)",
        excluded=excluded,
        max_excluded=run.max_float_nodes if excluded is not None else None,
    )
    variant.record["pipeline"] = {**result, "passed": message is None}
    if fmt.int8 is not None:
        variant.record["pipeline"].update(
            inpainter_excluded_nodes=info["excluded_nodes"],
            all_int8_agreement=info.get("sensitivity", {}).get("all_int8_agreement", result["top1_agreement"]),
        )
    if message is not None:
        variant.fail(message)
        return
    variant.entries.append(fmt.entry("inpainter", path, **{fmt.record: info}, agreement=result["top1_agreement"]))
