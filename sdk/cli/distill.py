"""``ofer distill --teacher BUNDLE_OR_CHECKPOINT --data faces:... --out DIR [--route inpaint]``: an occlusion-robust
student, or a de-occluder (inpainter) for the inpaint route in front of the frozen teacher."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``distill`` on an ``argparse`` subparsers object."""
    from sdk.training.distill.config import DEFAULT_WEIGHTS

    p = subparsers.add_parser(
        "distill",
        help="train an occlusion-robust student from a teacher on unlabelled faces",
        description="The teacher sees each clean face, the student the same face occluded; soft targets plus the "
        "privileged-information terms. The checkpoint kept is the epoch with the best held-out occluded "
        "agreement among epochs whose clean agreement with the teacher is >= --clean-floor.",
    )
    p.add_argument(
        "--route",
        default="student",
        choices=("student", "inpaint"),
        help="student: a classifier that sees the occluded face (default); inpaint: a de-occluder "
        "(inpainter) in front of the frozen teacher, trained with pixel, adversarial and "
        "expression-consistency losses; export it with the teacher as its classifier",
    )
    p.add_argument(
        "--inpainter-width", type=int, default=16, help="channels of the inpainter's first stage (--route inpaint)"
    )
    p.add_argument("--teacher", default=None, help="bundle or checkpoint folder (default: ofer's default bundle)")
    p.add_argument(
        "--teacher-model",
        default="mini_xception",
        help="registry architecture of a bundle teacher's ONNX classifier (weights are imported)",
    )
    p.add_argument(
        "--student-model", default=None, help="registry model for the student (default: a copy of the teacher)"
    )
    p.add_argument("--data", required=True, help="dataset spec, e.g. faces:/videos/,/photos/,stride=5")
    p.add_argument("--val-data", default=None, help="held-out people (default: the val split of --data)")
    p.add_argument("--out", required=True, help="output folder (checkpoint/ = chosen epoch, state/, distill_log.csv)")
    p.add_argument(
        "--protocols",
        default="general",
        help="'general', 'headset' (upper face covered) or a comma list of occlusion protocols",
    )
    p.add_argument("--val-protocols", default=None, help="held-out occluders (default: the preset's)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=None, help="cap on optimiser steps per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--temperature", type=float, default=2.0)
    for term, default in DEFAULT_WEIGHTS["student"].items():
        p.add_argument(
            f"--w-{term}",
            type=float,
            default=None,
            help=f"weight of the {term} term (0: off; default {default}"
            f"{', --route inpaint: %s' % DEFAULT_WEIGHTS['inpaint'][term] if term == 'adv' else ''})",
        )
    for term in ("pixel", "hole", "expr"):
        p.add_argument(
            f"--w-{term}",
            type=float,
            default=None,
            help=f"--route inpaint: weight of the {term} term (default {DEFAULT_WEIGHTS['inpaint'][term]})",
        )
    p.add_argument("--label-mix", type=float, default=0.5, help="share of the one-hot label in labelled targets")
    p.add_argument("--clean-floor", type=float, default=0.97, help="minimum held-out clean agreement of a kept epoch")
    p.add_argument("--patience", type=int, default=3, help="epochs without a better kept epoch before stopping")
    p.add_argument("--min-epochs", type=int, default=4, help="never stop early before this many epochs")
    p.add_argument("--train-bn", action="store_true", help="update BatchNorm statistics (default: frozen)")
    p.add_argument("--time-budget", type=float, default=None, help="stop after the first epoch past this many s")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU when torch sees one), cpu or cuda[:i]")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="data-loader processes that occlude and augment faces (0: in the training process)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, help="an interrupted run's --out folder")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The ``DistillConfig`` the arguments describe."""
    from runtime.errors import ConfigError
    from sdk.recognizer import DEFAULT_BUNDLE
    from sdk.training.distill import DistillConfig
    from sdk.training.distill.config import DEFAULT_WEIGHTS
    from sdk.training.distill.loop import PRESETS

    from .train import parse_protocol_list

    preset, protocols = "general", None
    if args.protocols in PRESETS:
        preset = args.protocols
    else:
        protocols = parse_protocol_list(args.protocols)
    val = parse_protocol_list(args.val_protocols) if args.val_protocols else None
    route = getattr(args, "route", "student")
    defaults = DEFAULT_WEIGHTS[route]
    other = {t for t in (*DEFAULT_WEIGHTS["student"], *DEFAULT_WEIGHTS["inpaint"]) if t not in defaults}
    stray = sorted(t for t in other if getattr(args, f"w_{t}", None) is not None)
    if stray:
        raise ConfigError(f"--w-{stray[0]} is not a term of --route {route} (its terms: {', '.join(defaults)})")
    weights = {t: d if getattr(args, f"w_{t}", None) is None else getattr(args, f"w_{t}") for t, d in defaults.items()}
    return DistillConfig(
        teacher=str(args.teacher or DEFAULT_BUNDLE),
        data=args.data,
        val_data=args.val_data,
        teacher_model=args.teacher_model,
        student_model=args.student_model,
        preset=preset,
        protocols=protocols,
        val_protocols=val,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        temperature=args.temperature,
        weights=weights,
        label_mix=args.label_mix,
        clean_floor=args.clean_floor,
        patience=args.patience,
        min_epochs=args.min_epochs,
        freeze_bn=not args.train_bn,
        route=route,
        inpainter_width=args.inpainter_width,
        max_steps=args.steps,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``ofer distill``."""
    from runtime.errors import ConfigError

    from .args import output_dir

    output_dir(args.out, args.force or args.resume is not None, "--out")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    from sdk.training.distill import distill

    cfg = build_config(args)
    res = distill(cfg, args.out, resume=args.resume, time_budget_s=args.time_budget, log=lambda m: print(m, flush=True))
    b = res["best"]
    what = "inpaint route (inpainter -> teacher)" if cfg.route == "inpaint" else "student"
    print(
        f"kept epoch {b['epoch']} ({what}): held-out clean {100 * b['clean']:.1f}%, occluded mean "
        f"{100 * b['occluded_mean']:.1f}% ({res['seconds']:.0f} s); export with: ofer export {args.out}/checkpoint "
        f"--out BUNDLE --calib YOUR_FACES/ (INT8 calibrates on faces of the model's domain; or --precision fp32,fp16)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sdk.cli.distill``)."""
    from .main import main as ofer_main

    return ofer_main(["distill", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
