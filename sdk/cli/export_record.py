"""The export record of a bundle as aligned text: parity, calibration, outcome per precision, per-protocol tables.

Reads ``provenance.metrics.export`` (written by :func:`export.bundle_writer.export_bundle`) and the conversion
parity some bundles carry (``onnx_parity``). Manifests are free-form here: anything of an unexpected type is shown
as it is or skipped, never a crash.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

VARIANTS = ("fp32", "fp16", "int8-cpu", "int8-trt")


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.{digits}g}" if abs(value) and abs(value) < 10**-digits else f"{value:.{digits}f}"


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text == "-"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Columns as wide as their widest cell: numbers right-aligned, text left-aligned."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    right = [bool(rows) and all(_numeric(r[i]) for r in rows) for i in range(len(header))]
    return [
        (indent + "  ".join(c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))).rstrip()
        for r in cells
    ]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _source_line(what: str, rec: Mapping[str, Any]) -> str:
    faces = rec.get("faces", rec.get("n", "?"))
    protocols = len(_dict(rec.get("per_protocol")))
    text = (
        f"{what:<11}{rec.get('source', '?')} ({rec.get('domain', '?')} faces: {rec.get('n', '?')} samples of "
        f"{faces} faces, {protocols} occlusion protocols"
    )
    if rec.get("method"):
        text += f", {rec['method']}"
    text += ")"
    if rec.get("note"):
        text += f"; {rec['note']}"
    return text


def parity_lines(metrics: Mapping[str, Any]) -> list[str]:
    """Conversion parity (ONNX vs PyTorch) from the export record or an imported model's ``onnx_parity``."""
    export = _dict(metrics.get("export"))
    lines = []
    for role, p in _dict(export.get("parity")).items():
        p = _dict(p)
        lines.append(
            f"parity     {role}: max |onnx - torch| {_num(p.get('max_abs_diff'))}, top-1 agreement "
            f"{_num(p.get('top1_agreement'))} (ONNX Runtime vs PyTorch at export)"
        )
    if not lines and isinstance(metrics.get("onnx_parity"), dict):
        p = metrics["onnx_parity"]
        diff = p.get("max_abs_logit_diff_vs_torch", p.get("max_abs_diff"))
        lines.append(
            f"parity     classifier: max |onnx - torch| {_num(diff)}"
            + (
                f", top-1 agreement {_num(p['top1_agreement_vs_keras'])} vs the original Keras model"
                if "top1_agreement_vs_keras" in p
                else ""
            )
        )
    return lines


def export_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The export record: times and sources, one row per precision, agreement and accuracy per protocol."""
    export = _dict(metrics.get("export"))
    if not export:
        return []
    lines = [
        f"export     gate: top-1 agreement with FP32 >= {_num(export.get('threshold'))}"
        + (f", took {_num(export.get('seconds'), 1)} s" if "seconds" in export else "")
    ]
    if isinstance(export.get("calibration"), dict):
        lines.append(_source_line("calib", export["calibration"]))
    if isinstance(export.get("heldout"), dict):
        lines.append(_source_line("held-out", export["heldout"]))
    variants = [k for k in VARIANTS if isinstance(export.get(k), dict) and "top1_agreement" in export[k]]
    if not variants:
        return lines
    rows = []
    for k in variants:
        r = export[k]
        passed = r.get("passed", True)
        status = "reference" if k == "fp32" else ("in bundle" if passed else "LEFT OUT")
        excluded = r.get("excluded_nodes")
        floats = str(len(excluded)) if isinstance(excluded, list) else "-"
        if isinstance(r.get("quantizable_nodes"), int):
            floats += f" of {r['quantizable_nodes']}"
        pipe = _dict(r.get("pipeline")).get("top1_agreement", 1.0 if k == "fp32" else None)
        rows.append(
            [
                k,
                status,
                _num(r.get("top1_agreement"), 4),
                _num(r.get("max_abs_diff")),
                _num(r.get("accuracy")),
                floats,
                _num(r.get("seconds"), 1),
            ]
            + ([_num(pipe, 4)] if "fp32_pipeline" in export else [])
        )
    lines.append(
        "precisions (agreement: top-1 vs FP32 classifier"
        + (
            "; inpaint pipeline: inpainter + classifier of that precision vs the FP32 pipeline)"
            if "fp32_pipeline" in export
            else ")"
        )
    )
    lines += table(
        ["precision", "status", "agreement", "max |diff|", "accuracy", "float nodes", "time s"]
        + (["inpaint pipeline"] if "fp32_pipeline" in export else []),
        rows,
    )
    for k in variants:
        if isinstance(export[k].get("failure"), str):
            lines.append(f"  {k} left out: {export[k]['failure']}")
    protocols: list[str] = []
    for k in variants:
        protocols += [p for p in _dict(export[k].get("per_protocol")) if p not in protocols]
    if protocols:
        shown = [k for k in variants if k != "fp32"]
        if shown:
            lines.append("agreement with FP32 per protocol")
            lines += table(
                ["protocol", *shown],
                [
                    [p, *(_num(_dict(_dict(export[k].get("per_protocol")).get(p)).get("agreement")) for k in shown)]
                    for p in protocols
                ],
            )
        labelled = any(
            _dict(_dict(export[k].get("per_protocol")).get(p)).get("accuracy") is not None
            for k in variants
            for p in protocols
        )
        if labelled:
            lines.append("accuracy per protocol")
            lines += table(
                ["protocol", *variants],
                [
                    [p, *(_num(_dict(_dict(export[k].get("per_protocol")).get(p)).get("accuracy")) for k in variants)]
                    for p in protocols
                ],
            )
        else:
            lines.append("accuracy   not measured (the held-out faces have no expression labels)")
    return lines
