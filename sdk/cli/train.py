"""``ofer train METHOD --data SPEC --out DIR``: train one of the methods, one line per epoch, then its table.

Prints the plan (stages, steps, model sizes) and an estimate of the time after the first steps, one line per epoch
(losses, held-out accuracy, time, items/s; also in ``OUT/results.csv``), and at the end a summary per stage,
``curves.png`` (with matplotlib), the evaluation table and "results saved to OUT". ``OUT/checkpoint`` is the last
epoch (resumable), ``OUT/best`` the best held-out epoch of the last stage. Ctrl-C prints the command that resumes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError, InputError

METHODS = ("gan-inpaint", "deocclusion", "privileged", "cbam", "lower-half", "baseline")

#: CLI options that set a module's size: option dest -> (model_kwargs role, kwarg).
MODEL_OPTIONS = {
    "width": ("classifier", "width"),
    "stem": ("classifier", "stem"),
    "dropout": ("classifier", "dropout"),
    "gen_width": ("generator", "width"),
    "gen_depth": ("generator", "depth"),
    "disc_width": ("discriminator", "width"),
    "disc_depth": ("discriminator", "depth"),
}


def add_parser(subparsers: Any) -> None:
    """Register ``train`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "train",
        help="train a FER model on (occluded) faces",
        description="Train a method: the plan and an estimate of the time first, one line per "
        "epoch (also OUT/results.csv), OUT/checkpoint (last) and OUT/best, a "
        "summary, curves.png and the evaluation table at the end.",
    )
    p.add_argument("method", help=f"training method: {', '.join(METHODS)}")
    p.add_argument("--data", required=True, help="dataset spec, e.g. procedural:n=20000,size=64 or fer2013:/x.csv")
    p.add_argument(
        "--out", required=True, help="output folder (checkpoint/, best/, results.csv, train_log.csv, curves.png, eval/)"
    )
    p.add_argument("--eval-data", help="dataset spec of the final evaluation (default: the test split of --data)")
    p.add_argument("--epochs", type=int, help="epochs per stage (default: the method's)")
    p.add_argument("--steps", type=int, help="cap on optimiser steps per stage")
    p.add_argument("--stage-minutes", type=float, help="end each stage after this many minutes (equal budgets)")
    p.add_argument("--batch-size", type=int, default=64, help="faces per optimiser step (per process)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (stages may scale it)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and occlusions")
    p.add_argument("--size", type=int, default=48, help="input size in pixels")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1 grey, 3 colour")
    m = p.add_argument_group("model sizes (defaults follow --size: see sdk.training.method.size_defaults)")
    m.add_argument("--model", help="classifier registry name (default: the method's)")
    m.add_argument("--width", type=int, help="classifier width (channels of the first stage)")
    m.add_argument("--stem", choices=("3x3", "3x3s2", "7x7"), help="ResNet stem (3x3s2 up to 128 px by default)")
    m.add_argument("--dropout", type=float, help="classifier dropout before the last layer")
    m.add_argument("--gen-width", type=int, help="inpainter (generator) width: gan-inpaint, deocclusion")
    m.add_argument("--gen-depth", type=int, help="inpainter (generator) downsampling stages")
    m.add_argument("--disc-width", type=int, help="GAN discriminator width (gan-inpaint: also its classifier)")
    m.add_argument("--disc-depth", type=int, help="GAN discriminator stride-2 convs")
    m.add_argument(
        "--model-arg",
        dest="model_args",
        action="append",
        metavar="ROLE.KEY=VALUE",
        help="any other model option, e.g. feature_disc.width=32 or decoder.hidden=32,16 (repeatable)",
    )
    p.add_argument(
        "--protocols",
        default=None,
        help="comma-separated evaluation protocols, or 'all' for runtime.occlusion.EVAL_PROTOCOLS "
        "(default: the training config's standard list)",
    )
    p.add_argument(
        "--val-limit",
        type=int,
        default=256,
        help="held-out faces (val split) checked after each epoch; 0 turns the check off",
    )
    p.add_argument(
        "--set",
        dest="options",
        action="append",
        metavar="KEY=VALUE",
        help="method option, e.g. --set use_expr_loss=false --set w_adv=0 (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; pin it for comparable timings)",
    )
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="CHECKPOINT",
        help="resume an interrupted run: a checkpoint, or nothing for OUT/checkpoint",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="hide the within-epoch progress bar (terminals only)")
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


def model_kwargs_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``{role: {kwarg: value}}`` from the model-size options and ``--model-arg ROLE.KEY=VALUE``."""
    from sdk.training.config import parse_option_value

    out: dict[str, dict[str, Any]] = {}
    for dest, (role, key) in MODEL_OPTIONS.items():
        if getattr(args, dest, None) is not None:
            out.setdefault(role, {})[key] = getattr(args, dest)
    for item in getattr(args, "model_args", None) or []:
        target, sep, value = item.partition("=")
        role, dot, key = target.strip().partition(".")
        if not sep or not dot or not role or not key:
            raise ConfigError(f"--model-arg {item!r} is not ROLE.KEY=VALUE (e.g. feature_disc.width=32)")
        out.setdefault(role, {})[key] = parse_option_value(value)
    return out


def build_config(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` the arguments describe."""
    from runtime.input_spec import InputSpec
    from sdk.training.config import TrainConfig, parse_options

    kw: dict[str, Any] = {}
    if args.protocols:
        kw["eval_protocols"] = parse_protocol_list(args.protocols)
    return TrainConfig(
        method=args.method,
        data=args.data,
        model=args.model,
        model_kwargs=model_kwargs_from_args(args),
        input=InputSpec.square(args.size, args.channels),
        epochs=args.epochs,
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        num_workers=args.workers,
        device=args.device,
        amp=not args.no_amp,
        options=parse_options(args.options),
        val_limit=getattr(args, "val_limit", 256),
        **kw,
    )


def check_out_dir(out: Path, force: bool, resume: str | None) -> None:
    """Refuse to overwrite a non-empty output folder unless ``--force`` (or resuming into it), a folder that is a
    file or cannot be written."""
    from .args import output_dir

    output_dir(str(out), force or resume is not None, "--out")


def resume_command(argv: list[str]) -> str:
    """The command line that resumes a run started with ``argv`` (``train ...``): ``--resume`` instead of any
    ``--resume [PATH]`` and ``--force``."""
    out, skip = ["ofer"], False
    for i, tok in enumerate(argv):
        if skip:
            skip = False
            continue
        if tok == "--resume":
            skip = i + 1 < len(argv) and not argv[i + 1].startswith("-")
            continue
        if tok.startswith("--resume=") or tok == "--force":
            continue
        out.append(tok)
    return shlex.join([*out, "--resume"])


def _interrupted(out: Path, argv: list[str] | None) -> None:
    """Ctrl-C: say whether a checkpoint exists, and the exact command that resumes from it."""
    ck = out / "checkpoint"
    if not (ck / "config.json").is_file():
        print(
            "ofer train: interrupted before the first epoch ended, so no checkpoint was written; start again "
            "without --resume",
            file=sys.stderr,
            flush=True,
        )
        return
    from sdk.training.checkpoint import read_config

    pos = read_config(ck).get("position", {})
    cmd = resume_command(argv) if argv else f"ofer train ... --out {shlex.quote(str(out))} --resume"
    print(
        f"ofer train: interrupted; the checkpoint of the last finished epoch (step {pos.get('step', '?')}) is in "
        f"{ck}. Resume with:\n  {cmd}",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``ofer train``; raises ``OferError`` subclasses with one-line messages."""
    from sdk.training.methods import build_method, get_method_class, train

    if args.method not in METHODS:
        raise ConfigError(f"unknown training method {args.method!r}; choose one of: {', '.join(METHODS)}")
    get_method_class(args.method)
    out = Path(args.out)
    resume = args.resume
    if resume == "":  # --resume without a path: this --out's checkpoint
        resume = str(out / "checkpoint")
        if not (out / "checkpoint").is_dir():
            raise InputError(
                f"--resume: {out} has no checkpoint/ to resume from; start without --resume (or give "
                "the checkpoint: --resume PATH)"
            )
    check_out_dir(out, args.force, resume)
    if args.stage_minutes is not None and args.stage_minutes <= 0:
        raise ConfigError(f"--stage-minutes must be > 0, got {args.stage_minutes}")
    cfg = build_config(args)
    build_method(cfg).checked_specs(7)  # an option the method would ignore fails now, before any data is read
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    try:
        train(
            cfg,
            str(out),
            eval_data=args.eval_data,
            resume=resume,
            progress=not args.no_progress,
            stage_budget_s=args.stage_minutes * 60 if args.stage_minutes else None,
        )
    except KeyboardInterrupt:
        _interrupted(out, getattr(args, "argv", None))
        raise
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sdk.cli.train``): the same as ``ofer train``."""
    from .main import main as ofer_main

    return ofer_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
