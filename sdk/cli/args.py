"""Argument groups shared by several subcommands (Polygraphy style)."""
from __future__ import annotations

import argparse
from pathlib import Path

from runtime.errors import InputError


def add_recognizer_args(parser: argparse.ArgumentParser) -> None:
    """Bundle, backend, detector, pipeline, precision and threads: how a Recognizer is built."""
    g = parser.add_argument_group("model")
    g.add_argument("--bundle", default=None, help="bundle folder (default: the bundle shipped with ofer)")
    g.add_argument("--backend", default="auto",
                   help="auto | onnxruntime | onnxruntime-cpu | onnxruntime-cuda | onnxruntime-tensorrt")
    g.add_argument("--precision", default=None, choices=("fp32", "fp16", "int8"), help="engine precision")
    g.add_argument("--pipeline", default="auto", help="auto | direct | inpaint")
    g.add_argument("--threads", type=int, default=None, help="CPU threads per engine")
    d = parser.add_argument_group("faces")
    d.add_argument("--detector", default="auto", help="auto | none (input is a face crop) | roi (fixed box)")
    d.add_argument("--roi", default=None, help="x1,y1,x2,y2 of the face for --detector roi")
    d.add_argument("--max-faces", type=int, default=None, help="keep at most this many faces per frame")


def recognizer_from_args(args: argparse.Namespace):
    """Build a :class:`sdk.Recognizer` from :func:`add_recognizer_args` options."""
    from sdk import Recognizer

    roi = None
    if args.roi:
        try:
            roi = tuple(float(v) for v in args.roi.split(","))
        except ValueError:
            roi = ()
        if len(roi) != 4:
            raise InputError(f"--roi must be four numbers x1,y1,x2,y2, got {args.roi!r}")
    return Recognizer(args.bundle, backend=args.backend, detector=args.detector, pipeline=args.pipeline, roi=roi,
                      precision=args.precision, threads=args.threads, max_faces=args.max_faces)


def output_path(path: str | None, force: bool, what: str) -> Path | None:
    """Check an output file: refuse to overwrite an existing one unless ``--force``; create its folder."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not force:
        raise InputError(f"{what} {p} already exists; choose another name or pass --force to overwrite it")
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; give a file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
