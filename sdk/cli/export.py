"""``ofer export MODEL --out BUNDLE --precision fp32,fp16,int8 --calib SOURCE``: a model to a deployable bundle.

MODEL is a training checkpoint folder (classifier, or inpainter + classifier by its export plan), an ONNX classifier
with ``--spec`` (JSON with ``labels`` and ``input``), or an existing bundle (its FP32 models are re-exported, with its
provenance and its licence files).
Two MODELs mean INPAINTER CLASSIFIER.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    from export.formats import CALIBRATION_METHODS

    p = sub.add_parser("export", help="export a checkpoint/ONNX model to a bundle (FP32, FP16, INT8 Q/DQ)",
                       description=__doc__)
    p.add_argument("model", nargs="+", metavar="MODEL", help="checkpoint folder, ONNX file or bundle "
                   "(two: INPAINTER CLASSIFIER)")
    p.add_argument("--out", required=True, help="bundle folder to write (refused if it exists, unless --force)")
    p.add_argument("--precision", default="fp32,fp16,int8",
                   help="comma list of fp32, fp16, int8 (= int8-cpu + int8-trt), int8-cpu, int8-trt")
    p.add_argument("--spec", default=None, help="JSON file with 'labels' and 'input' (for an ONNX MODEL)")
    g = p.add_argument_group("calibration (INT8)")
    g.add_argument("--calib", default=None,
                   help="faces from the model's own domain: a folder of photos, a video, a dataset spec, or "
                        "'procedural' (the default only for a model trained on procedural faces)")
    g.add_argument("--heldout", default=None,
                   help="held-out faces for the agreement gate, e.g. other people (default: the part of --calib "
                        "that calibration does not use)")
    g.add_argument("--calib-note", default=None, help="recorded with the calibration source, e.g. its licence")
    g.add_argument("--calib-method", default="minmax", choices=CALIBRATION_METHODS,
                   help="activation ranges (default: %(default)s); minmax and entropy also write a TensorRT "
                        "calibration cache, percentile does not")
    g.add_argument("--calib-count", type=int, default=256, help="calibration faces")
    g.add_argument("--heldout-count", type=int, default=64, help="held-out faces (each under every protocol)")
    g.add_argument("--calib-faces", default="detect", choices=("detect", "whole"),
                   help="detect faces in images/videos, or use each image whole (ready face crops)")
    g.add_argument("--agreement", type=float, default=0.98,
                   help="minimum top-1 agreement with FP32 per variant (default: %(default)s); variants below it "
                        "are left out and reported")
    g.add_argument("--max-float-nodes", type=int, default=24,
                   help="INT8 below the gate: keep up to this many of the most sensitive nodes in float "
                        "(default: %(default)s; 0: no fallback)")
    g.add_argument("--allow-domain-mismatch", action="store_true",
                   help="calibrate a model trained on real faces on procedural faces anyway")
    g.add_argument("--trt-version", default="10.3.0", help="TensorRT version named in the calibration cache")
    g.add_argument("--seed", type=int, default=0)
    p.add_argument("--headset", default=None, metavar="CHECKPOINT",
                   help="a headset student (ofer distill --protocols headset) to carry as engine classifier_headset: "
                        "the auto pipeline sends faces whose upper face is covered to it")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.set_defaults(func=run)


def _from_spec_file(path: str | None, onnx_path: Path) -> tuple[list[str], Any]:
    """``(labels, InputSpec)`` of an ONNX classifier's ``--spec`` file."""
    from runtime.errors import InputError
    from runtime.input_spec import parse_input_spec

    if path is None:
        raise InputError(f"{onnx_path.name} is an ONNX file: pass --spec SPEC.json with its 'labels' and 'input' "
                         "(see the bundle schema in runtime/bundle.py)")
    try:
        spec = json.loads(Path(path).read_text())
        labels, inp = list(spec["labels"]), spec["input"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--spec {path} must be a JSON object with 'labels' and 'input' ({exc})") from None
    return labels, parse_input_spec(inp, f"--spec {path}")


def resolve_model(paths: list[str], spec_file: str | None, work: Path) -> dict[str, Any]:
    """``{classifier, inpainter, labels, input, provenance, files}`` from the MODEL arguments (ONNX files in ``work``;
    ``input`` an :class:`~runtime.input_spec.InputSpec`).

    From a bundle: its FP32 models as the bytes that passed its sha256 check (written to ``work``), its provenance
    (plus ``exported_from``: the source bundle's name and model sha256) and its licence files (``files``).
    """
    from runtime.bundle import load_bundle
    from runtime.errors import InputError

    if len(paths) > 2:
        raise InputError("pass one MODEL (or two: INPAINTER CLASSIFIER)")
    items = [Path(p) for p in paths]
    for p in items:
        if not p.exists():
            raise InputError(f"model {p} does not exist")
    main = items[-1]
    res: dict[str, Any] = {"inpainter": None, "provenance": {}, "files": []}
    if (main / "manifest.json").is_file():
        b = load_bundle(main)
        clf = b.find_engines("classifier", format="onnx", precision="fp32")
        if not clf:
            raise InputError(f"bundle {main} has no FP32 ONNX classifier to export from")
        inp = b.find_engines("inpainter", format="onnx", precision="fp32")
        models = {}
        for role, specs in (("classifier", clf), ("inpainter", inp)):
            if specs:
                models[role] = work / f"source-{role}.onnx"
                models[role].write_bytes(b.read_engine(specs[0].name))  # the checked bytes, not a re-read by path
        provenance = dict(b.provenance)
        provenance["exported_from"] = {"bundle": b.name, "classifier_sha256": clf[0].sha256}
        res.update(classifier=models["classifier"], labels=list(b.labels), input=b.input,
                   inpainter=models.get("inpainter"), provenance=provenance,
                   files=[b.path / f for f in b.licence_files()])
    elif main.suffix.lower() == ".onnx":
        labels, spec = _from_spec_file(spec_file, main)
        res.update(classifier=main, labels=labels, input=spec)
    elif main.is_dir():
        res.update(_from_checkpoint(main, work))
    else:
        raise InputError(f"{main} is not a checkpoint folder, an .onnx file or a bundle")
    if len(items) == 2:
        if items[0].suffix.lower() != ".onnx":
            raise InputError("with two MODELs the first is the inpainter as an .onnx file; a checkpoint with an "
                             "inpainter exports both from its export plan (pass it alone)")
        res["inpainter"] = items[0]
    return res


def _select_output(module: Any, index: int) -> Any:
    """Wrap a module returning a tuple (the GAN discriminator) so it returns element ``index``."""
    import torch

    class Select(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)[index]

    return Select().eval()


def _from_checkpoint(path: Path, work: Path) -> dict[str, Any]:
    """Export a training checkpoint's modules to ONNX (classifier; inpainter too for the inpaint pipeline)."""
    from runtime.errors import InputError

    try:
        from sdk.training.checkpoint import load_checkpoint
    except ImportError as exc:
        raise InputError(f"cannot read checkpoints here ({exc}); install the training extra (pip install "
                         "ofer[train]) or pass an ONNX classifier with --spec") from None
    import numpy as np

    from export.onnx import export_onnx
    from runtime.preprocess import to_tensor

    ck = load_checkpoint(path)
    cfg = ck.config
    plan = cfg.get("export") or {"pipeline": "direct", "classifier": next(iter(ck.models)), "inpainter": None}
    spec = ck.input
    h, w = spec.size
    shape = (4, h, w) if spec.channels == 1 else (4, h, w, 3)
    sample = to_tensor(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), spec)
    out: dict[str, Any] = {"labels": list(cfg["labels"]), "input": spec,
                           "provenance": {"method": cfg.get("method"), "data": cfg.get("data"),
                                          "metrics": cfg.get("metrics", {}), "source": f"checkpoint {path.name}"}}
    clf = ck.models[plan["classifier"]]
    if plan.get("classifier_output") is not None:
        clf = _select_output(clf, int(plan["classifier_output"]))
    out["parity"] = {"classifier": export_onnx(clf, sample, work / "classifier.onnx")}
    out["classifier"] = work / "classifier.onnx"
    if plan.get("pipeline") == "inpaint" and plan.get("inpainter"):
        mask = (np.random.default_rng(1).random((4, 1, h, w)) > 0.5).astype(np.float32)
        out["parity"]["inpainter"] = export_onnx(ck.models[plan["inpainter"]], {"image": sample, "mask": mask},
                                                 work / "inpainter.onnx", output_names=("inpainted",))
        # (an output named like the input gets renamed)
        out["inpainter"] = work / "inpainter.onnx"
    return out


def run(args: argparse.Namespace) -> int:
    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions

    from .args import output_dir

    formats = parse_precisions(args.precision)
    output_dir(args.out, args.force, "--out", inputs=[*args.model, *([args.spec] if args.spec else [])])
    with tempfile.TemporaryDirectory(prefix="ofer-export-") as work:
        model = resolve_model(args.model, args.spec, Path(work))
        bundle = export_bundle(model["classifier"], args.out, labels=model["labels"], input_spec=model["input"],
                               formats=formats, calib_source=args.calib, calib_method=args.calib_method,
                               calib_count=args.calib_count, heldout_count=args.heldout_count,
                               agreement=args.agreement, faces=args.calib_faces, seed=args.seed,
                               inpainter=model["inpainter"], provenance=model["provenance"],
                               files=model["files"], trt_version=args.trt_version, force=args.force,
                               heldout_source=args.heldout, calib_note=args.calib_note,
                               max_float_nodes=args.max_float_nodes,
                               allow_domain_mismatch=args.allow_domain_mismatch, parity=model.get("parity"))
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
