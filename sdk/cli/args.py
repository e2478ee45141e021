"""Argument groups shared by several subcommands (Polygraphy style)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from runtime.errors import InputError


def add_recognizer_args(parser: argparse.ArgumentParser) -> None:
    """Bundle, backend, detector, pipeline, precision and threads: how a Recognizer is built."""
    g = parser.add_argument_group("model")
    g.add_argument("--bundle", default=None, help="bundle folder (default: the bundle shipped with ofer)")
    g.add_argument(
        "--backend",
        default="auto",
        help="auto (TensorRT engine, else ONNX Runtime TensorRT/CUDA/CPU: first that loads) | tensorrt | "
        "onnxruntime | onnxruntime-cpu | onnxruntime-cuda | onnxruntime-tensorrt; the face detector "
        "runs on LiteRT when ai-edge-litert is installed, on ONNX Runtime with onnxruntime*",
    )
    g.add_argument("--precision", default=None, choices=("fp32", "fp16", "int8"), help="engine precision")
    g.add_argument(
        "--pipeline",
        default="auto",
        choices=("auto", "direct", "inpaint"),
        help="auto: per face, inpaint when the occlusion estimate reaches --occlusion-threshold (bundles "
        "with an inpainter), else direct",
    )
    g.add_argument(
        "--occlusion",
        default=None,
        help="what is covered: auto (estimate; default) | image-stats | upper_half (VR headset) | "
        "lower_half | eyes | mouth | a mask image of the face crop (white = covered) | off (no "
        "estimate, where nothing routes by it)",
    )
    g.add_argument(
        "--occlusion-threshold", type=float, default=0.25, help="covered fraction of the face from which auto inpaints"
    )
    g.add_argument("--threads", type=int, default=None, help="CPU threads per engine (default: 1)")
    d = parser.add_argument_group("faces")
    d.add_argument("--detector", default="auto", help="auto | none (input is a face crop) | roi (fixed box)")
    d.add_argument("--roi", default=None, help="x1,y1,x2,y2 of the face for --detector roi")
    d.add_argument("--max-faces", type=int, default=None, help="keep at most this many faces per frame")
    d.add_argument(
        "--min-face",
        type=float,
        default=None,
        help="smallest face width to find, in pixels: also search overlapping tiles of large frames "
        "(slower; without it faces narrower than ~4%% of the frame's longer side are missed)",
    )
    d.add_argument(
        "--no-align",
        dest="align",
        action="store_false",
        help="crop faces axis-aligned instead of rotating tilted faces upright",
    )


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
    return Recognizer(
        args.bundle,
        backend=args.backend,
        detector=args.detector,
        pipeline=args.pipeline,
        roi=roi,
        precision=args.precision,
        threads=args.threads,
        max_faces=args.max_faces,
        occlusion=occlusion_from_arg(getattr(args, "occlusion", None)),
        occlusion_threshold=getattr(args, "occlusion_threshold", 0.25),
        align=getattr(args, "align", True),
        min_face=getattr(args, "min_face", None),
    )


def occlusion_from_arg(value: str | None):
    """``--occlusion``: a region name is passed on; anything with an image extension is read as a mask."""
    from runtime.frames import IMAGE_SUFFIXES

    if value is None or Path(value).suffix.lower() not in IMAGE_SUFFIXES:
        return value
    import cv2

    mask = cv2.imread(value, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(
            f"--occlusion {value}: cannot read the mask image; give a PNG/JPEG of the face crop, white "
            "where the face is covered"
        )
    return (mask > 127).astype("uint8")


def _first_existing(p: Path) -> Path:
    q = p.absolute()
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def check_writable(p: Path, what: str) -> None:
    """Refuse an output whose folder cannot be created or written (a parent that is a file, no permission, a
    read-only file system), before anything is written. Nothing is left behind."""
    import tempfile

    if p.exists() and not p.is_dir():
        try:
            with open(p, "r+b"):  # opens for writing without changing it
                pass
        except OSError as exc:
            raise InputError(f"{what} {p}: cannot write it ({exc.strerror or exc})") from None
        return
    anc = _first_existing(p.parent if not p.exists() else p)
    if not anc.is_dir():
        raise InputError(f"{what} {p}: {anc} is a file, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=anc):
            pass
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot write in {anc} ({exc.strerror or exc}); choose another path") from None


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file or folder (after resolving links; hard links too)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def output_path(
    path: str | None,
    force: bool,
    what: str,
    *,
    suffixes: Sequence[str] | None = None,
    inputs: Sequence[str | Path] = (),
) -> Path | None:
    """Check an output file before anything is written: its extension (``suffixes``), that it is not one of
    ``inputs``, that it does not exist unless ``force``, that it is not a folder, and that it can be written.
    Creates nothing (see :func:`make_parent`)."""
    if path is None:
        return None
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise InputError(f"{what} {p}: use one of the extensions {', '.join(suffixes)}")
    for inp in inputs:
        if same_path(p, inp):
            raise InputError(
                f"{what} {p} is the input {inp}; write the output elsewhere (--force only replaces "
                "earlier outputs, never the input)"
            )
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; give a file name")
    if p.exists() and not force:
        raise InputError(f"{what} {p} already exists; choose another name or pass --force to overwrite it")
    check_writable(p, what)
    return p


def output_dir(path: str | None, force: bool, what: str, *, inputs: Sequence[str | Path] = ()) -> Path | None:
    """Check an output folder: not one of ``inputs``, not a file, empty unless ``force``, writable."""
    if path is None:
        return None
    p = Path(path)
    for inp in inputs:
        if same_path(p, inp):
            raise InputError(f"{what} {p} is the input {inp}; write the output elsewhere")
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {p} is a file; pass a folder")
    if p.is_dir() and any(p.iterdir()) and not force:
        raise InputError(f"{what} {p} is not empty; pass --force to write into it, or choose another folder")
    check_writable(p, what)
    return p


def distinct_outputs(**outputs: Path | None) -> None:
    """Refuse two options naming the same output file (e.g. ``--jsonl x --csv x``)."""
    given = [(k, v) for k, v in outputs.items() if v is not None]
    for i, (ka, a) in enumerate(given):
        for kb, b in given[i + 1 :]:
            if same_path(a, b):
                raise InputError(f"--{ka} and --{kb} name the same file {a}; give each output its own name")


def make_parent(p: Path) -> Path:
    """Create the folder of an output checked by :func:`output_path`."""
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
