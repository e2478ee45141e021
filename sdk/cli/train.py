"""``ofer train METHOD --data SPEC --out DIR``: train one of the methods and print its evaluation table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError, InputError

METHODS = ("gan-inpaint", "deocclusion", "privileged", "cbam", "lower-half", "baseline")


def add_parser(subparsers: Any) -> None:
    """Register ``train`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser("train", help="train a FER model on (occluded) faces",
                              description="Train a method, write a checkpoint and print its evaluation table.")
    p.add_argument("method", help=f"training method: {', '.join(METHODS)}")
    p.add_argument("--data", required=True, help="dataset spec, e.g. procedural:n=20000,size=64 or fer2013:/x.csv")
    p.add_argument("--out", required=True, help="output folder (checkpoint/, train_log.csv, eval/)")
    p.add_argument("--eval-data", help="dataset spec of the final evaluation (default: the test split of --data)")
    p.add_argument("--epochs", type=int, help="epochs per stage (default: the method's)")
    p.add_argument("--steps", type=int, help="cap on optimiser steps per stage")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="classifier registry name (default: the method's)")
    p.add_argument("--width", type=int, help="classifier width (channels of the first stage)")
    p.add_argument("--size", type=int, default=48, help="input size in pixels")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1)
    p.add_argument("--protocols", default=None,
                   help="comma-separated evaluation protocols, or 'all' for runtime.occlusion.EVAL_PROTOCOLS")
    p.add_argument("--set", dest="options", action="append", metavar="KEY=VALUE",
                   help="method option, e.g. --set use_expr_loss=false --set w_adv=0 (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; pin it for comparable timings)")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--resume", help="checkpoint to resume from (e.g. OUT/checkpoint)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def parse_protocol_list(text: str) -> tuple[str, ...]:
    """``"clean,upper_half"`` -> a tuple (validated); ``"all"`` -> the standard evaluation list."""
    from runtime.occlusion import EVAL_PROTOCOLS, parse_protocol

    if text.strip() == "all":
        return tuple(EVAL_PROTOCOLS)
    out = tuple(p.strip() for p in text.split(",") if p.strip())
    for p in out:
        parse_protocol(p)
    return out


def build_config(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` the arguments describe."""
    from sdk.training.config import InputSpec, TrainConfig, parse_options

    model_kwargs = {"classifier": {"width": args.width}} if args.width else {}
    kw: dict[str, Any] = {}
    if args.protocols:
        kw["eval_protocols"] = parse_protocol_list(args.protocols)
    return TrainConfig(method=args.method, data=args.data, model=args.model, model_kwargs=model_kwargs,
                       input=InputSpec(size=args.size, channels=args.channels), epochs=args.epochs,
                       max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       num_workers=args.workers, device=args.device, amp=not args.no_amp,
                       options=parse_options(args.options), **kw)


def check_out_dir(out: Path, force: bool, resume: str | None) -> None:
    """Refuse to overwrite a non-empty output folder unless ``--force`` (or resuming into it), a folder that is a
    file or cannot be written."""
    from .args import output_dir

    output_dir(str(out), force or resume is not None, "--out")


def run(args: argparse.Namespace) -> int:
    """Run ``ofer train``; raises ``OferError`` subclasses with one-line messages."""
    from sdk.training.methods import get_method_class, train

    if args.method not in METHODS:
        raise ConfigError(f"unknown training method {args.method!r}; choose one of: {', '.join(METHODS)}")
    get_method_class(args.method)
    out = Path(args.out)
    check_out_dir(out, args.force, args.resume)
    cfg = build_config(args)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    train(cfg, str(out), eval_data=args.eval_data, resume=args.resume, progress=not args.no_progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sdk.cli.train``): the same as ``ofer train``."""
    from .main import main as ofer_main

    return ofer_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
