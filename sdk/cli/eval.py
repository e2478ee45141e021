"""``ofer eval CHECKPOINT --data SPEC --protocols clean,upper_half --out DIR``: the evaluation table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint or a bundle per occlusion protocol",
        description="Accuracy and macro-F1 per occlusion protocol, the occluded mean, a "
        "summary chart and confusion matrices. A bundle is evaluated through its "
        "pipeline (inpainter + classifier for inpaint bundles), without torch.",
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT_OR_BUNDLE",
        help="checkpoint folder (or the --out folder of 'ofer train'), or a bundle folder (manifest.json)",
    )
    p.add_argument("--data", required=True, help="dataset spec; the test split is evaluated")
    p.add_argument(
        "--split",
        default=None,
        choices=("train", "val", "test", "all"),
        help="split to evaluate (default: test, else val)",
    )
    p.add_argument(
        "--protocols",
        default=None,
        help="comma-separated protocols or 'all' (default: those the checkpoint was trained to report; "
        "for a bundle the standard list: clean, upper_half, lower_half, eyes, mouth, r16, "
        "random_box:0.3)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder for metrics.json, metrics.md, summary.png, confusion_*.png (refused if not empty, unless --force)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out folder (earlier metrics and confusion PNGs are removed first)",
    )
    p.add_argument("--limit", type=int, help="evaluate only the first N samples")
    p.add_argument("--seed", type=int, default=0, help="seed of the occlusions")
    p.add_argument("--batch-size", type=int, default=64, help="faces per predict call")
    p.add_argument("--device", default="cpu", help="torch device for a checkpoint")
    p.add_argument(
        "--pipeline",
        default=None,
        choices=("direct", "inpaint", "auto"),
        help="bundle pipeline to evaluate (default: inpaint when the bundle has an inpainter, else direct)",
    )
    p.add_argument(
        "--mask",
        default="protocol",
        choices=("protocol", "estimate"),
        help="bundle inpaint/auto: masks from the protocol's occluder (as a checkpoint is evaluated) or "
        "from the bundle's occlusion estimate (as deployed)",
    )
    p.add_argument("--backend", default="auto", help="runtime backend for a bundle")
    p.add_argument("--precision", default=None, help="engine precision for a bundle (fp32, fp16, int8)")
    p.add_argument(
        "--teacher",
        default=None,
        metavar="BUNDLE_OR_CHECKPOINT",
        help="label-free occlusion consistency: agreement/kappa with this teacher's clean answer per "
        "occluder kind, bootstrap intervals over people (works on unlabelled faces: specs)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ofer eval`` on a checkpoint (torch) or a bundle (its pipeline, no torch) and print the table."""
    from sdk.training.evaluation import evaluate, print_progress, write_report
    from sdk.training.methods import open_data, open_eval_data

    from .args import output_dir

    out = output_dir(args.out, args.force, "--out", inputs=[args.checkpoint])
    if args.teacher is not None:
        from .eval_consistency import run_consistency

        return run_consistency(args, out)
    meta: dict[str, Any] = {}
    bp = None
    if (Path(args.checkpoint) / "manifest.json").is_file():
        from sdk.bundle_eval import bundle_predictor
        from sdk.training.config import DEFAULT_EVAL_PROTOCOLS

        bp = bundle_predictor(
            args.checkpoint, args.pipeline, backend=args.backend, precision=args.precision, masks=args.mask
        )
        predict, spec, labels = bp.predict, bp.spec, bp.labels
        title, default_protocols = f"bundle {Path(args.checkpoint).name}", list(DEFAULT_EVAL_PROTOCOLS)
        meta["pipeline"] = bp.describe()
        print(f"ofer eval: {bp.describe()}", file=sys.stderr, flush=True)
    else:
        if args.pipeline is not None or args.mask != "protocol":
            raise ConfigError(
                "--pipeline and --mask apply to bundles; a checkpoint is evaluated as its method "
                "deploys it (its export plan), with the protocol's masks"
            )
        from sdk.training.checkpoint import load_checkpoint
        from sdk.training.evaluation import torch_predictor

        ck = load_checkpoint(args.checkpoint, device=args.device)
        spec, labels = ck.input, ck.labels
        predict = torch_predictor(ck.models, ck.config["export"], spec, args.device)
        title = str(ck.config.get("method", "?"))
        meta["pipeline"] = f"checkpoint export plan: {ck.config['export'].get('pipeline', 'direct')}"
        default_protocols = ck.config.get("train_config", {}).get("eval_protocols") or ["clean"]
    if args.protocols:
        from sdk.cli.train import parse_protocol_list

        protocols = list(parse_protocol_list(args.protocols))
    else:
        protocols = list(default_protocols)
    data = open_data(args.data, args.split) if args.split else open_eval_data(args.data)
    report = evaluate(
        predict,
        data,
        protocols,
        spec,
        labels=labels,
        batch_size=args.batch_size,
        seed=args.seed,
        limit=args.limit,
        progress=print_progress("ofer eval"),
    )
    if bp is not None and bp.pipeline == "auto":
        meta["routes"] = ", ".join(f"{k} {v} faces" for k, v in sorted(bp.routes.items()))
        meta["pipeline"] += f" (routed: {meta['routes']})"
    _remove_earlier_report(out)
    write_report(report, out, title=f"{title} on {args.data}", meta=meta)
    print(f"{meta['pipeline']}\n{report.markdown()}")
    print(f"results saved to {out}", file=sys.stderr)
    return 0


def _remove_earlier_report(out: Path) -> None:
    """With --force: drop the files an earlier ``ofer eval`` wrote, so no stale metrics or PNGs remain."""
    if out.is_dir():
        for f in [out / "metrics.json", out / "metrics.md", out / "summary.png", *out.glob("confusion_*.png")]:
            if f.is_file():
                f.unlink()


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sdk.cli.eval``): the same as ``ofer eval``."""
    from .main import main as ofer_main

    return ofer_main(["eval", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
