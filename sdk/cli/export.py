"""``ofer export MODEL --out BUNDLE --precision fp32,fp16,int8 --calib SOURCE``: a model to a deployable bundle.

MODEL is a training checkpoint folder (classifier, or inpainter + classifier by its export plan), an ONNX classifier
with ``--spec`` (JSON with ``labels`` and ``input``), or an existing bundle (its FP32 models are re-exported, with its
provenance and its licence files).
Two MODELs mean INPAINTER CLASSIFIER.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calibration.config import CalibrationConfig
    from export.source import ExportSource


def add_parser(sub: Any) -> None:
    from calibration.config import CALIBRATION_METHODS

    p = sub.add_parser(
        "export", help="export a checkpoint/ONNX model to a bundle (FP32, FP16, INT8 Q/DQ)", description=__doc__
    )
    p.add_argument(
        "model", nargs="+", metavar="MODEL", help="checkpoint folder, ONNX file or bundle (two: INPAINTER CLASSIFIER)"
    )
    p.add_argument("--out", required=True, help="bundle folder to write (refused if it exists, unless --force)")
    p.add_argument(
        "--precision",
        default="fp32,fp16,int8",
        help="comma list of fp32, fp16, int8 (= int8-cpu + int8-trt), int8-cpu, int8-trt",
    )
    p.add_argument("--spec", default=None, help="JSON file with 'labels' and 'input' (for an ONNX MODEL)")
    g = p.add_argument_group("calibration (INT8)")
    g.add_argument(
        "--calib",
        default=None,
        help="faces from the model's own domain: a folder of photos, a video, a dataset spec, or "
        "'procedural' (the default only for a model trained on procedural faces)",
    )
    g.add_argument(
        "--heldout",
        default=None,
        help="held-out faces for the agreement gate, e.g. other people (default: the part of --calib "
        "that calibration does not use)",
    )
    g.add_argument("--calib-note", default=None, help="recorded with the calibration source, e.g. its licence")
    g.add_argument(
        "--calib-method",
        default="minmax",
        choices=CALIBRATION_METHODS,
        help="activation ranges (default: %(default)s); minmax and entropy also write a TensorRT "
        "calibration cache, percentile does not",
    )
    g.add_argument("--calib-count", type=int, default=256, help="calibration faces")
    g.add_argument("--heldout-count", type=int, default=64, help="held-out faces (each under every protocol)")
    g.add_argument(
        "--calib-faces",
        default="detect",
        choices=("detect", "whole"),
        help="detect faces in images/videos, or use each image whole (ready face crops)",
    )
    g.add_argument(
        "--agreement",
        type=float,
        default=0.98,
        help="minimum top-1 agreement with FP32 per variant (default: %(default)s); variants below it "
        "are left out and reported",
    )
    g.add_argument(
        "--max-float-nodes",
        type=int,
        default=24,
        help="INT8 below the gate: keep up to this many of the most sensitive nodes in float "
        "(default: %(default)s; 0: no fallback)",
    )
    g.add_argument(
        "--allow-domain-mismatch",
        action="store_true",
        help="calibrate a model trained on real faces on procedural faces anyway",
    )
    g.add_argument("--trt-version", default="10.3.0", help="TensorRT version named in the calibration cache")
    g.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--headset",
        default=None,
        metavar="CHECKPOINT",
        help="a headset student (ofer distill --protocols headset) to carry as engine classifier_headset: "
        "the auto pipeline sends faces whose upper face is covered to it",
    )
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.set_defaults(func=run)


def resolve_model(paths: list[str], spec_file: str | None, work: Path) -> ExportSource:
    """The MODEL arguments as an :class:`export.source.ExportSource` (ONNX files converted into ``work``)."""
    from export.source import source_from_bundle, source_from_onnx
    from runtime.errors import InputError

    if len(paths) > 2:
        raise InputError("pass one MODEL (or two: INPAINTER CLASSIFIER)")
    items = [Path(p) for p in paths]
    for p in items:
        if not p.exists():
            raise InputError(f"model {p} does not exist")
    main = items[-1]
    if (main / "manifest.json").is_file():
        source = source_from_bundle(main, work)
    elif main.suffix.lower() == ".onnx":
        source = source_from_onnx(main, spec_file)
    elif main.is_dir():
        source = _from_checkpoint(main, work)
    else:
        raise InputError(f"{main} is not a checkpoint folder, an .onnx file or a bundle")
    if len(items) == 2:
        if items[0].suffix.lower() != ".onnx":
            raise InputError(
                "with two MODELs the first is the inpainter as an .onnx file; a checkpoint with an "
                "inpainter exports both from its export plan (pass it alone)"
            )
        source = source.with_inpainter(items[0])
    return source


def _from_checkpoint(path: Path, work: Path) -> ExportSource:
    """A training checkpoint's modules as ONNX (:func:`export.modules.checkpoint_to_onnx`)."""
    from runtime.errors import InputError

    try:
        from sdk.training.checkpoint import load_checkpoint
    except ImportError as exc:
        raise InputError(
            f"cannot read checkpoints here ({exc}); install the training extra (pip install "
            "ofer[train]) or pass an ONNX classifier with --spec"
        ) from None
    from export.modules import checkpoint_to_onnx

    import dataclasses

    ck = load_checkpoint(path)
    source = checkpoint_to_onnx(ck, ck.input, work, name=path.name)
    licence, files = _teacher_licence(ck.config)
    if licence:  # weights distilled from (or, for the inpaint route, equal to) a bundle teacher's: its licence
        source = dataclasses.replace(source, provenance={**source.provenance, **licence}, files=(*source.files, *files))
    return source


def _teacher_licence(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[Path]]:
    """For a checkpoint distilled from a bundle teacher: the teacher's provenance licence fields and licence files
    (empty when the teacher is not a bundle or names no licence)."""
    from runtime.bundle import load_bundle
    from runtime.errors import OferError

    teacher = (cfg.get("distill_config") or {}).get("teacher")
    if not teacher or not (Path(teacher) / "manifest.json").is_file():
        return {}, []
    try:
        tb = load_bundle(teacher)
    except OferError:
        return {}, []
    keep = {k: tb.provenance[k] for k in ("licence", "licence_file") if k in tb.provenance}
    return keep, ([tb.path / f for f in tb.licence_files()] if keep else [])


def calibration_config(args: argparse.Namespace) -> CalibrationConfig:
    """The calibration group's flags as one :class:`calibration.config.CalibrationConfig`."""
    from calibration.config import CalibrationConfig

    return CalibrationConfig(
        source=args.calib,
        method=args.calib_method,
        count=args.calib_count,
        heldout=args.heldout,
        heldout_count=args.heldout_count,
        faces=args.calib_faces,
        seed=args.seed,
        note=args.calib_note,
        allow_domain_mismatch=args.allow_domain_mismatch,
        trt_version=args.trt_version,
    )


def run(args: argparse.Namespace) -> int:
    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions

    from .args import output_dir

    formats = parse_precisions(args.precision)
    calibration = calibration_config(args)
    output_dir(args.out, args.force, "--out", inputs=[*args.model, *([args.spec] if args.spec else [])])
    with tempfile.TemporaryDirectory(prefix="ofer-export-") as work:
        source = resolve_model(args.model, args.spec, Path(work))
        bundle = export_bundle(
            source,
            args.out,
            formats=formats,
            calibration=calibration,
            agreement=args.agreement,
            max_float_nodes=args.max_float_nodes,
            force=args.force,
        )
    if source.inpainter is not None and source.provenance.get("method") == "distill-inpaint":
        from sdk.training.distill.bundle import record_measured

        bundle = record_measured(args.out, "inpainter", source.provenance.get("metrics") or {})
    if args.headset:
        from sdk.training.distill.bundle import add_headset_student

        bundle = add_headset_student(args.out, args.headset)
    report = bundle.provenance.get("metrics", {}).get("export", {})
    print(f"wrote bundle {bundle.path} in {report.get('seconds', 0):.1f} s")
    for name, e in bundle.engines.items():
        agree = report.get(e.extra.get("quantization", {}).get("flavour", e.precision), {}).get("top1_agreement")
        extra = f"  agreement {agree:.4f}" if isinstance(agree, float) else ""
        quant = e.extra.get("quantization", {})
        floats = len(quant.get("excluded_nodes", []))
        of = quant.get("sensitivity", {}).get("candidates")
        extra += f" ({floats}{f' of {of}' if of else ''} nodes kept in float)" if floats else ""
        size = bundle.engine_path(name).stat().st_size / 1024
        print(f"  {name:<22} {e.format}/{e.precision:<5} {size:8.1f} KB{extra}")
    for key, outcome in report.get("outcome", {}).items():
        if outcome != "passed":
            print(f"  not exported: {report[key]['failure']}")
    return 0
