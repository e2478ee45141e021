"""Train every method on the procedural benchmark within a CPU budget and test the papers' claims.

Runs (all with the same classifier architecture, data, seed and evaluation):
  baseline          clean-trained classifier (also the frozen classifier of ``deocclusion`` and the teacher of
                    ``privileged``, so the ablations share one pretrained model)
  cbam, lower-half, gan-inpaint
  privileged        full loss;  privileged-plain: the same student with l_sup only;
                    privileged-plain-steps: the plain student stopped at the full run's step count
                    (--privileged-ablation adds privileged-{out,lir,adv,rec}-only: l_sup plus one term at its
                    default weight, each stopped at the full run's step count)
  deocclusion       with L_expr;  deocclusion-noexpr: without it
Every run gets the same wall-clock budget (``--budget-minutes`` / number of runs, split evenly over its
stages; a stage ends at the first epoch end where another epoch would overrun). The evaluation is the shared
table (accuracy and macro-F1 per occlusion protocol, test split = disjoint identities). Claims checked, on the
mean accuracy over the occluded protocols:
  1. occlusion-aware training beats the clean baseline (per method);
  2. the de-occluder trained with L_expr beats the one without;
  3. the full privileged student beats the plain student (at equal time, and at equal steps).
Equal wall-clock (not equal steps) is the fairness rule: a method whose step costs more (extra teacher pass,
decoder, discriminator) gets fewer steps; the "Runs" table lists steps and epochs per stage for that reason.
The one equal-steps run separates "the privileged terms help per step" from "they cost steps".
Writes ``benchmarks/results/methods.json`` and ``methods.md``.

Usage:
    nice python benchmarks/methods.py [--budget-minutes 30] [--train-n 6000] [--test-n 700] [--size 48]
        [--width 16] [--only baseline,cbam]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, machine, pin_threads  # noqa: E402

OCCLUSION_AWARE = ("cbam", "lower-half", "gan-inpaint", "deocclusion", "privileged")
PROTOCOLS = ("clean", "upper_half", "lower_half", "eyes", "mouth", "r16", "random_box:0.3", "random_box:0.5")


PRIVILEGED_TERMS = ("out", "lir", "adv", "rec")


def runs(baseline_ckpt: str, privileged_ablation: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """(run name, method id, options); the first run's checkpoint is the others' pretrained classifier."""
    no_priv = {f"w_{t}": 0 for t in PRIVILEGED_TERMS}
    ablation = (
        [
            (
                f"privileged-{t}-only",
                "privileged",
                {"teacher_checkpoint": baseline_ckpt, **{k: 0 for k in no_priv if k != f"w_{t}"}},
            )
            for t in PRIVILEGED_TERMS
        ]
        if privileged_ablation
        else []
    )
    return [
        ("baseline", "baseline", {}),
        ("cbam", "cbam", {}),
        ("lower-half", "lower-half", {}),
        ("gan-inpaint", "gan-inpaint", {}),
        ("deocclusion", "deocclusion", {"classifier_checkpoint": baseline_ckpt}),
        ("deocclusion-noexpr", "deocclusion", {"classifier_checkpoint": baseline_ckpt, "use_expr_loss": False}),
        ("privileged", "privileged", {"teacher_checkpoint": baseline_ckpt}),
        ("privileged-plain", "privileged", no_priv),
        ("privileged-plain-steps", "privileged", no_priv),
        *ablation,
    ]


#: Runs capped at the step count another run reached in its budget (run -> the run it matches).
EQUAL_STEPS = {
    "privileged-plain-steps": "privileged",
    **{f"privileged-{t}-only": "privileged" for t in PRIVILEGED_TERMS},
}


def occluded_mean(summary: dict[str, dict[str, float]]) -> float:
    """Mean accuracy over every protocol except ``clean``."""
    vals = [v["accuracy"] for p, v in summary.items() if p != "clean"]
    return sum(vals) / len(vals)


def claims(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each claim with both sides' numbers and whether it holds in this run."""
    occ = {n: occluded_mean(r["summary"]) for n, r in results.items()}
    out = []

    def add(claim: str, better: str, worse: str) -> None:
        if better in occ and worse in occ:
            out.append(
                {
                    "claim": claim,
                    "better": better,
                    "worse": worse,
                    "better_acc": occ[better],
                    "worse_acc": occ[worse],
                    "holds": occ[better] > occ[worse],
                }
            )

    for m in OCCLUSION_AWARE:
        add(f"occlusion-aware {m} beats the clean baseline on occluded protocols", m, "baseline")
    add("de-occluder with L_expr beats without", "deocclusion", "deocclusion-noexpr")
    add("full privileged student beats the plain student", "privileged", "privileged-plain")
    add("full privileged student beats the plain student at equal steps", "privileged", "privileged-plain-steps")
    if "lower-half" in results and "baseline" in results:
        lh, base = results["lower-half"]["summary"], results["baseline"]["summary"]
        if "upper_half" in lh:
            out.append(
                {
                    "claim": "lower-half beats the baseline on upper_half (VR headset)",
                    "better": "lower-half",
                    "worse": "baseline",
                    "better_acc": lh["upper_half"]["accuracy"],
                    "worse_acc": base["upper_half"]["accuracy"],
                    "holds": lh["upper_half"]["accuracy"] > base["upper_half"]["accuracy"],
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-minutes", type=float, default=30.0, help="total training budget for all runs")
    ap.add_argument("--train-n", type=int, default=6000)
    ap.add_argument("--test-n", type=int, default=700)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--width", type=int, default=16, help="classifier width (resnet18)")
    ap.add_argument("--stem", default="3x3s2", help="resnet18 stem (3x3s2 halves the first feature map: 4x cheaper)")
    ap.add_argument("--gen-width", type=int, default=8, help="inpainter/discriminator width")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate (GAN stages keep the papers' 2e-4)")
    ap.add_argument("--max-epochs", type=int, default=50, help="epochs per stage before the time budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--only", default=None, help="comma-separated run names (baseline always runs first)")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument(
        "--privileged-ablation",
        action="store_true",
        help="also train the privileged student with one privileged term at a time (equal steps)",
    )
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    pin_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from runtime.input_spec import InputSpec
    from sdk.training.config import TrainConfig
    from sdk.training.evaluation import EvalReport, side_by_side
    from sdk.training.methods import build_method, train

    out = Path(args.out)
    work = out / "methods_runs"
    data = f"procedural:n={args.train_n},size={args.size}"
    eval_data = f"procedural:n={args.test_n},size={args.size}"
    plan = runs(str(work / "baseline" / "checkpoint"), args.privileged_ablation)
    if args.only:
        keep = {"baseline", *args.only.split(",")}
        plan = [r for r in plan if r[0] in keep]
    per_run = args.budget_minutes * 60 / len(plan)
    gw = {"width": args.gen_width}
    model_kwargs = {
        "classifier": {"width": args.width, "stem": args.stem, "dropout": 0.2},
        "generator": {**gw, "depth": 2},
        "discriminator": {**gw, "depth": 3},
        "feature_disc": {"width": 2 * args.width},
        "decoder": {"hidden": [2 * args.width, args.width]},
    }
    results: dict[str, dict[str, Any]] = {}
    reports: dict[str, EvalReport] = {}
    t_all = time.monotonic()
    for name, method, options in plan:
        gan = method in ("gan-inpaint", "deocclusion")
        kwargs = model_kwargs
        if method == "gan-inpaint":  # its discriminator is the classifier: one more stage of receptive field
            kwargs = {**model_kwargs, "discriminator": {**gw, "depth": 4}}
        match = EQUAL_STEPS.get(name)
        probe = TrainConfig(
            method=method,
            data=data,
            input=InputSpec.square(args.size, 1),
            model="resnet18",
            model_kwargs=kwargs,
            options=options,
        )
        roles = build_method(probe).used_roles()  # only the modules this run has (others would be refused)
        kwargs = {r: v for r, v in kwargs.items() if r in roles}
        cfg = TrainConfig(
            method=method,
            data=data,
            input=InputSpec.square(args.size, 1),
            epochs=args.max_epochs,
            batch_size=args.batch_size,
            lr=2e-4 if gan else args.lr,
            seed=args.seed,
            model="resnet18" if "classifier" in roles else None,
            model_kwargs=kwargs,
            options=options,
            max_steps=results[match]["steps"] if match in results else None,
            eval_protocols=tuple(args.protocols.split(",")),
            val_limit=0,
        )
        n_stages = len(build_method(cfg).stages())
        run_dir = work / name
        t0 = time.monotonic()
        print(f"== {name}: {n_stages} stage(s), {per_run / 60:.1f} min", flush=True)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        res = train(
            cfg, str(run_dir), eval_data=eval_data, progress=False, print_table=False, stage_budget_s=per_run / n_stages
        )
        rep = res["report"]
        reports[name] = rep
        results[name] = {
            "method": method,
            "options": options,
            "seconds": time.monotonic() - t0,
            "steps": res["fit"]["position"]["step"],
            "summary": rep.summary(),
            "epochs_per_stage": _epochs(res["trainer"].rows),
        }
    table_acc = side_by_side(reports, "accuracy")
    table_f1 = side_by_side(reports, "macro_f1")
    occ_row = "| occluded mean | " + " | ".join(f"{occluded_mean(r['summary']):.4f}" for r in results.values()) + " |"
    checked = claims(results)
    lines = [
        f"# Methods on the procedural benchmark ({args.train_n} train / {args.test_n} test faces, "
        f"{args.size} px grey, resnet18 width {args.width} stem {args.stem}, "
        f"{args.budget_minutes:g} min budget)",
        "",
        "## Accuracy",
        "",
        table_acc,
        occ_row,
        "",
        "## Macro-F1",
        "",
        table_f1,
        "",
        "## Claims",
        "",
    ]
    for c in checked:
        verdict = "HOLDS" if c["holds"] else "does NOT hold"
        lines.append(
            f"- {c['claim']}: {c['better']} {c['better_acc']:.4f} vs {c['worse']} {c['worse_acc']:.4f} -> {verdict}"
        )
    lines += ["", "## Runs", "", "| run | seconds | steps | epochs per stage |", "|---|---:|---:|---|"]
    lines += [f"| {n} | {r['seconds']:.0f} | {r['steps']} | {r['epochs_per_stage']} |" for n, r in results.items()]
    md = "\n".join(lines) + "\n"
    print("\n" + md)
    out.mkdir(parents=True, exist_ok=True)
    (out / "methods.md").write_text(md)
    payload = {
        "settings": vars(args),
        "machine": machine(),
        "seconds": time.monotonic() - t_all,
        "results": results,
        "claims": checked,
    }
    (out / "methods.json").write_text(json.dumps(payload, indent=2))


def _epochs(rows: list[dict[str, Any]]) -> str:
    per: dict[str, set] = {}
    for r in rows:
        per.setdefault(str(r["stage"]), set()).add(r["epoch"])
    return ", ".join(f"{s}: {len(e)}" for s, e in per.items())


if __name__ == "__main__":
    main()
