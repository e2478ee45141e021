"""INT8 of every training method's classifier (and inpainter): train small on procedural faces, export, record.

``benchmarks/precisions.py --methods all --train-seconds N`` runs this: each method is trained for about ``N``
seconds (split over its stages) on occluded procedural faces with ``ofer train``'s own loop, exported from its
checkpoint with ``ofer export``'s own path (:func:`export.modules.checkpoint_to_onnx`,
:func:`export.bundle_writer.export_bundle`) to both INT8 flavours, calibrated on the procedural *train* split and
judged on its *test* split (disjoint identities). An inpaint bundle is judged on the whole pipeline (inpainter ->
classifier). One row per method and flavour: agreement, float nodes kept, pass/fail.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

#: Methods in the order they are trained (``ofer train METHOD``).
METHODS: tuple[str, ...] = ("baseline", "cbam", "lower-half", "gan-inpaint", "deocclusion", "privileged")
FLAVOURS: tuple[str, ...] = ("int8-cpu", "int8-trt")
#: The columns of the printed table.
COLUMNS: tuple[str, ...] = (
    "method",
    "flavour",
    "pipeline",
    "accuracy fp32",
    "fp32 under ±0.5 grey",
    "agreement",
    "all-int8",
    "q/dq on",
    "float nodes",
    "candidates",
    "pipeline agreement",
    "outcome",
)


def parse_methods(text: str) -> list[str]:
    """``"all"`` or a comma list of method ids -> the ids in :data:`METHODS` order.

    Raises:
        ConfigError: an unknown id, naming the valid ones.
    """
    from runtime.errors import ConfigError

    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ConfigError(f"unknown method(s) {unknown or text!r}; choose 'all' or from {', '.join(METHODS)}")
    return [m for m in METHODS if m in names]


def model_kwargs(method: str, roles: Sequence[str], width: int) -> dict[str, dict[str, Any]]:
    """Small models as the README's side-by-side benchmark builds them (ResNet-18 ``width`` with a stride-2 stem;
    inpainter and discriminator ``width``; the gan-inpaint discriminator one stage deeper), for ``roles`` only."""
    every = {
        "classifier": {"width": width, "stem": "3x3s2", "dropout": 0.2},
        "generator": {"width": width, "depth": 2},
        "discriminator": {"width": width, "depth": 4 if method == "gan-inpaint" else 3},
        "feature_disc": {"width": 2 * width},
        "decoder": {"hidden": [2 * width, width]},
    }
    return {r: v for r, v in every.items() if r in roles}


def train_config(method: str, data: str, size: int, width: int, seed: int = 0) -> Any:
    """The :class:`sdk.training.config.TrainConfig` of a small run of ``method`` (the side-by-side benchmark's
    settings; ``cbam`` keeps its ResNet-18 with CBAM attention)."""
    from runtime.input_spec import InputSpec
    from sdk.training.config import TrainConfig
    from sdk.training.methods import build_method

    spec = InputSpec.square(size, 1)
    probe = TrainConfig(
        method=method,
        data=data,
        input=spec,
        model="resnet18",
        model_kwargs=model_kwargs(
            method, ("classifier", "generator", "discriminator", "feature_disc", "decoder"), width
        ),
    )
    roles = build_method(probe).used_roles()
    gan = method in ("gan-inpaint", "deocclusion")
    # every classifier a ResNet-18 as in the side-by-side benchmark, but cbam keeps its own (CBAM attention)
    registry = None if method == "cbam" or "classifier" not in roles else "resnet18"
    return TrainConfig(
        method=method,
        data=data,
        input=spec,
        model=registry,
        model_kwargs=model_kwargs(method, roles, width),
        epochs=50,
        lr=2e-4 if gan else 1e-3,
        seed=seed,
        val_limit=0,
    )


def flavour_rows(method: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per INT8 flavour from an export record (``provenance.metrics.export``)."""
    rows = []
    for key in ("fp16", *FLAVOURS):
        r = report.get(key)
        if r is None:
            continue
        pipe = r.get("pipeline") or {}
        inpaint = bool(pipe) or "fp32_pipeline" in report
        rows.append(
            {
                "method": method,
                "flavour": key,
                "pipeline": "inpaint" if inpaint else "direct",
                "accuracy fp32": r.get("accuracy_fp32"),
                "agreement": r["top1_agreement"],
                "all-int8": r.get("all_int8_agreement"),
                "float nodes": len(r.get("excluded_nodes") or []),
                "candidates": r.get("quantizable_nodes"),
                "q/dq on": ("weighted ops" if r.get("weighted_ops_only") or key == "int8-trt" else "all ops")
                if key != "fp16"
                else "",
                "pipeline agreement": pipe.get("top1_agreement"),
                "outcome": report.get("outcome", {}).get(key, "?"),
                "n": r["n"],
                "excluded_nodes": list(r.get("excluded_nodes") or []),
                "failure": r.get("failure"),
                "per_protocol": {p: v["agreement"] for p, v in r["per_protocol"].items()},
            }
        )
    return rows


def export_checkpoint(
    checkpoint: Path, out: Path, calibration: Any, *, agreement: float, max_float_nodes: int
) -> dict[str, Any]:
    """Export a checkpoint as ``ofer export --precision fp16,int8`` does; its export record
    (``provenance.metrics.export``). FP16 is asked for too, so the bundle (and every INT8 flavour's record, passed or
    not) is written even when no INT8 flavour passes; when nothing passes, ``{"error": message}``."""
    import tempfile

    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions
    from export.modules import checkpoint_to_onnx
    from runtime.errors import ExportError
    from sdk.training.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    with tempfile.TemporaryDirectory(prefix="ofer-int8-methods-") as work:
        source = checkpoint_to_onnx(ck, ck.input, Path(work), name=checkpoint.parent.name)
        try:
            bundle = export_bundle(
                source,
                out,
                formats=parse_precisions("fp16,int8"),
                calibration=calibration,
                agreement=agreement,
                max_float_nodes=max_float_nodes,
                force=True,
            )
        except ExportError as exc:
            return {"outcome": {k: "failed" for k in FLAVOURS}, "error": str(exc)}
    return dict(bundle.provenance["metrics"]["export"])


def pixel_noise_agreement(bundle: Path, calibration: Any, seed: int = 0) -> float:
    """Top-1 agreement of a bundle's FP32 classifier with itself when every input pixel moves by at most half a grey
    level (uniform noise) on the held-out faces: what rounding the input alone costs, the noise floor of the gate."""
    import numpy as np

    from calibration.sets import heldout_set
    from export.agreement import run_onnx
    from runtime.bundle import load_bundle

    b = load_bundle(bundle)
    _, faces = heldout_set(calibration, b.input)
    model = b.engine_path(b.find_engines("classifier", format="onnx", precision="fp32")[0].name)
    step = b.input.scale / np.asarray(b.input.std, np.float32)  # one grey level in input units
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, faces.inputs.shape).astype(np.float32)
    shape = (1, -1, 1, 1) if b.input.layout == "NCHW" else (1, 1, 1, -1)
    ref = run_onnx(model, faces.inputs).argmax(1)
    return float((run_onnx(model, faces.inputs + noise * step.reshape(shape)).argmax(1) == ref).mean())


def run_methods(
    methods: Sequence[str],
    *,
    train_seconds: float,
    work: Path,
    train_n: int = 2000,
    size: int = 48,
    width: int = 8,
    calib_count: int = 256,
    heldout_count: int = 64,
    agreement: float = 0.98,
    max_float_nodes: int = 24,
    method: str = "minmax",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train each of ``methods`` for about ``train_seconds`` and export it to INT8 (see the module docstring).

    A method whose ``work/METHOD/checkpoint`` exists already is exported without training again.
    Returns one row per method and flavour (:func:`flavour_rows`) with the set sizes and times added.
    """
    import torch

    from calibration.config import CalibrationConfig
    from sdk.training.methods import build_method, train

    torch.set_num_threads(1)  # fastest on the shared 2-core machine (see benchmarks/methods.py)
    data = f"procedural:n={train_n},size={size}"
    calibration = CalibrationConfig(
        source=data, method=method, count=calib_count, heldout_count=heldout_count, seed=seed, cache_dir=None
    )
    rows: list[dict[str, Any]] = []
    for name in methods:
        cfg = train_config(name, data, size, width, seed)
        stages = len(build_method(cfg).stages())
        t0 = time.perf_counter()
        done = work / name / "checkpoint" / "config.json"
        if done.is_file():  # kept from an earlier run (--runs DIR): export only
            import json

            config = json.loads(done.read_text())
            steps, summary, trained = int(config["position"]["step"]), config.get("metrics", {}), float("nan")
        else:
            res = train(
                cfg,
                str(work / name),
                progress=False,
                print_table=False,
                verbose=False,
                stage_budget_s=train_seconds / stages,
                eval_limit=100,
            )
            steps = int(res["fit"]["position"]["step"])
            summary = res["report"].summary() if res["report"] is not None else {}
            trained = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = export_checkpoint(
            work / name / "checkpoint",
            work / f"{name}-bundle",
            calibration,
            agreement=agreement,
            max_float_nodes=max_float_nodes,
        )
        exported = time.perf_counter() - t0
        floor = pixel_noise_agreement(work / f"{name}-bundle", calibration) if "error" not in report else None
        failed = [{"method": name, "outcome": "failed", "failure": report.get("error")}]
        for row in flavour_rows(name, report) or failed:
            rows.append(
                {
                    **row,
                    "steps": steps,
                    "train s": round(trained, 1),
                    "fp32 under ±0.5 grey": floor,
                    "export s": round(exported, 1),
                    "test accuracy clean": summary.get("clean", {}).get("accuracy"),
                    "calibration": {k: report.get("calibration", {}).get(k) for k in ("source", "n", "faces")},
                    "heldout": report.get("heldout", {}),
                }
            )
        when = "trained earlier" if trained != trained else f"in {trained:.0f} s"
        print(
            f"{name}: {rows[-1]['steps']} steps {when}, export {exported:.0f} s: "
            + ", ".join(
                f"{r.get('flavour', '?')} {r.get('outcome')} ({r.get('agreement', float('nan')):.4f}, "
                f"{r.get('float nodes', '?')} float)"
                for r in rows
                if r["method"] == name
            ),
            flush=True,
        )
    return rows


def summary_lines(rows: Sequence[dict[str, Any]], agreement: float) -> list[str]:
    """One line per method: whether every flavour (and FP16) passed, and the float nodes per INT8 flavour."""
    out = []
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        int8 = [r for r in mine if r.get("flavour") in FLAVOURS]
        ok = len(int8) == len(FLAVOURS) and all(r["outcome"] == "passed" for r in int8)
        detail = ", ".join(
            f"{r['flavour']} {r['agreement']:.4f} with {r['float nodes']}/{r['candidates']} float"
            if r.get("agreement") is not None
            else f"{r.get('flavour')} {r['outcome']}"
            for r in int8
        )
        out.append(f"target {name} INT8 >= {agreement:g} both flavours: {'MET' if ok else 'NOT MET'} ({detail})")
    return out


def main(args: Any) -> None:
    """``precisions.py --methods ...``: train, export, print the table and the targets, write
    ``benchmarks/results/precisions-methods.json``."""
    import tempfile

    from benchmarks._common import table, write_json

    methods = parse_methods(args.methods)
    with tempfile.TemporaryDirectory(prefix="ofer-int8-methods-") as tmp:
        rows = run_methods(
            methods,
            train_seconds=args.train_seconds,
            work=Path(args.runs or tmp),
            train_n=args.train_n,
            width=args.width,
            calib_count=args.calib_count,
            heldout_count=args.heldout_count,
            agreement=args.agreement,
            max_float_nodes=args.max_float_nodes,
            method=args.method,
        )
    heldout = next((r["heldout"] for r in rows if r.get("heldout")), {})
    print(
        f"\n{len(methods)} method(s), ~{args.train_seconds:g} s of training each on procedural:n={args.train_n},"
        f"size=48 (ResNet-18 width {args.width}); calibration: {args.calib_count} faces of its train split "
        f"({args.method}); held-out: {heldout.get('faces', args.heldout_count)} faces of its test split (other "
        f"identities) x {len(heldout.get('per_protocol', {})) or 21} protocols; gate {args.agreement}, up to "
        f"{args.max_float_nodes} nodes kept in float\n"
    )
    print(table([{c: r.get(c, "") for c in (*COLUMNS, "steps")} for r in rows], [*COLUMNS, "steps"]))
    for line in summary_lines(rows, args.agreement):
        print(line)
    for r in rows:
        if r.get("failure"):
            print(f"left out: {r['method']} {r.get('flavour', '')}: {r['failure']}")
    path = write_json(
        "precisions-methods",
        {"rows": rows, "settings": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str))}},
        args.out,
    )
    print(f"wrote {path}")
