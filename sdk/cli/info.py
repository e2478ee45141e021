"""``ofer info [BUNDLE]``: the bundle's manifest in readable form, and which backends actually load here.

A bad bundle (one that fails :func:`runtime.bundle.load_bundle`, an ONNX engine ONNX Runtime cannot load, a stale
or mislabelled TensorRT plan) is a user error: one line on stderr saying what is wrong, exit code 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("info", help="show a bundle's manifest and which backends load on this machine")
    p.add_argument("bundle", nargs="?", default=None, help="bundle folder (default: the bundle shipped with ofer)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def collect(bundle_path: str | None) -> dict[str, Any]:
    """Everything ``ofer info`` reports, as a dict.

    Raises:
        BundleError: The bundle is bad (see the module doc); the message says what is wrong.
    """
    import onnxruntime as ort

    from runtime.bundle import load_bundle
    from runtime.bundle_checks import check_plan_record
    from runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
    from runtime.errors import BundleError, EngineError
    from sdk.recognizer import DEFAULT_BUNDLE

    bundle = load_bundle(bundle_path or DEFAULT_BUNDLE)
    engines = {}
    for name, e in bundle.engines.items():
        data = bundle.read_engine(name)
        entry: dict[str, Any] = {**e.to_dict(), "size_kb": round(len(data) / 1024, 1)}
        try:
            if e.format == "onnx":
                eng = OnnxRuntimeEngine(bundle.engine_path(name), model_bytes=data, providers="auto")
                entry["loads_with"] = eng.providers_loaded
                entry["inputs"] = eng.describe()["inputs"]
            else:
                check_plan_record(bundle, e)
                entry["loads_with"] = "TensorRT on a GPU matching built_with (checked when opened)"
        except EngineError as exc:
            raise BundleError(f"bundle {bundle.path}: engine {name!r} cannot be used: {exc}") from None
        engines[name] = entry
    return {
        "bundle": str(bundle.path),
        "name": bundle.name,
        "schema_version": bundle.manifest["schema_version"],
        "labels": list(bundle.labels),
        "input": bundle.input.to_json(),
        "pipelines": list(bundle.pipelines),
        "engines": engines,
        "provenance": bundle.provenance,
        "onnxruntime": {"version": ort.__version__, "providers_listed": ort.get_available_providers()},
    }


def _num(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def summarize_metrics(metrics: dict[str, Any]) -> list[str]:
    """Readable lines for a manifest's metrics: accuracy, conversion parity, the export record, the rest.

    Metrics are free-form provenance: values that are not numbers are shown as they are, never a crash.
    """
    from .export_record import export_lines, parity_lines

    if not isinstance(metrics, dict):
        return [f"metrics    {json.dumps(metrics)[:300]}"]
    acc = {k: v for k, v in metrics.items() if isinstance(v, dict) and "accuracy" in v}
    lines = []
    if acc:
        lines.append("accuracy   " + ", ".join(f"{k} {_num(v['accuracy'], 3)}" for k, v in acc.items()))
    lines += parity_lines(metrics)
    lines += export_lines(metrics)
    rest = {k: v for k, v in metrics.items() if k not in acc and k not in ("export", "onnx_parity")}
    if rest:
        lines.append(f"metrics    {json.dumps(rest)[:300]}")
    return lines


def run(args: argparse.Namespace) -> int:
    info = collect(args.bundle)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    lines = [
        f"bundle     {info['name']}  ({info['bundle']}, schema v{info['schema_version']})",
        f"labels     {', '.join(info['labels'])}",
        "input      {size[0]}x{size[1]} {color}, {layout}, x*{scale:.6g} - mean {mean} / std {std}, "
        "crop margin {crop_margin}".format(**info["input"]),
        f"pipelines  {', '.join(info['pipelines'])}",
        "engines",
    ]
    from .export_record import table

    rows = []
    for name, e in info["engines"].items():
        loads = e.get("loads_with")
        loads = ", ".join(loads) if isinstance(loads, list) else str(loads)
        rows.append(
            [
                name,
                f"{e['format']}/{e['precision']}",
                str(e["role"]),
                f"{e['size_kb']:.1f}",
                str(e["sha256"])[:12],
                loads,
            ]
        )
    lines += table(["name", "format", "role", "KB", "sha256", "loads with"], rows)
    prov = info["provenance"]
    for key in ("method", "data", "source", "licence"):
        if key in prov:
            lines.append(f"{key:<10} {prov[key] if isinstance(prov[key], str) else json.dumps(prov[key])}")
    if "metrics" in prov:
        lines.extend(summarize_metrics(prov["metrics"]))
    ort_info = info["onnxruntime"]
    lines.append(
        f"onnxruntime {ort_info['version']}: providers listed {', '.join(ort_info['providers_listed'])} "
        "(listed is not loaded: see 'loads with' above)"
    )
    print("\n".join(lines))
    return 0
