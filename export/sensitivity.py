"""Per-layer sensitivity to INT8 and the mixed-precision fallback: keep the most sensitive nodes in floating point.

When an INT8 flavour misses the agreement gate, :func:`rank_nodes` quantises one node at a time (every other
candidate left in float) on the calibration set and measures the mean absolute difference of the model's output
from FP32: the larger, the more that node alone costs. :func:`fallback` then leaves the top-ranked nodes out of
quantisation (``quantize_static(nodes_to_exclude=...)``) in growing steps until the gate passes on the held-out
set, or gives up at ``max_excluded`` nodes; between the last step that failed and the first that passed it bisects
for the fewest nodes that pass. Excluded nodes run in FP32 on ONNX Runtime CPU and in FP16/FP32 in
TensorRT (explicit quantisation quantises only what has Q/DQ).

The ranking uses calibration faces only; the held-out set only decides when to stop (as the gate does).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: Numbers of excluded nodes tried, in order (capped by ``max_excluded``).
STEPS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)


def candidates(onnx_path: str | os.PathLike[str], ops: Sequence[str]) -> list[str]:
    """Names of the nodes of ``onnx_path`` whose op type is one of ``ops`` (an INT8 flavour's
    :attr:`export.formats.Int8Scheme.fallback_ops`), in graph order."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ops and n.name]


@dataclass
class Fallback:
    """Outcome of :func:`fallback`.

    Attributes:
        excluded: Nodes left in floating point (most sensitive first); empty when none were needed.
        result: The agreement result (:func:`export.agreement.compare`) of the last model tried.
        path: The last model tried (passed the gate when ``passed``).
        passed: Whether ``result`` meets the threshold.
        ranking: ``[(node, error)]`` most sensitive first (error: mean |output - FP32| on calibration faces).
        tried: ``[(number excluded, agreement)]`` by number excluded.
    """

    excluded: list[str]
    result: dict[str, Any]
    path: Path
    passed: bool
    ranking: list[tuple[str, float]] = field(default_factory=list)
    tried: list[tuple[int, float]] = field(default_factory=list)


def rank_nodes(
    quantize: Callable[[Path, list[str]], None],
    run: Callable[[Path, np.ndarray], np.ndarray],
    nodes: Sequence[str],
    inputs: np.ndarray,
    reference: np.ndarray,
    work: Path,
) -> list[tuple[str, float]]:
    """Quantise one node at a time and rank the nodes by the error that alone causes (largest first).

    Args:
        quantize: ``(dst, exclude)`` writes the INT8 model with the nodes ``exclude`` left in float.
        run: ``(model, inputs) -> outputs`` as the gate runs the flavour.
        nodes: Candidate nodes.
        inputs, reference: Calibration inputs and the FP32 outputs on them.
        work: Folder for the temporary models.
    """
    errors = []
    path = work / "sensitivity.onnx"
    for node in nodes:
        quantize(path, [n for n in nodes if n != node])
        errors.append((node, float(np.abs(run(path, inputs) - reference).mean())))
    return sorted(errors, key=lambda e: -e[1])


def fallback(
    quantize: Callable[[Path, list[str]], None],
    run: Callable[[Path, np.ndarray], np.ndarray],
    judge: Callable[[np.ndarray], dict[str, Any]],
    threshold: float,
    *,
    nodes: Sequence[str],
    calib_inputs: np.ndarray,
    calib_reference: np.ndarray,
    heldout_inputs: np.ndarray,
    max_excluded: int,
    work: str | os.PathLike[str] | None = None,
) -> Fallback:
    """Leave the most sensitive ``nodes`` in float, in growing steps, until ``judge`` says the gate passes.

    Args:
        quantize, run: See :func:`rank_nodes`.
        judge: Held-out outputs -> agreement result (``top1_agreement`` is compared with ``threshold``).
        threshold: The agreement gate.
        nodes: Candidate nodes (:func:`candidates`).
        calib_inputs, calib_reference: Calibration inputs (at most a few hundred are used) and FP32 outputs.
        heldout_inputs: The held-out inputs ``judge`` expects outputs for.
        max_excluded: The most nodes left in float.
        work: Folder for the models (a temporary one when ``None``; then ``path`` is gone on return).
    """
    own = tempfile.TemporaryDirectory(prefix="ofer.sens.") if work is None else None
    folder = Path(own.name if own else work)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ranking = rank_nodes(quantize, run, nodes, calib_inputs, calib_reference, folder)
        order = [n for n, _ in ranking]
        steps = sorted({min(k, max_excluded, len(order)) for k in STEPS if k <= max(max_excluded, 1)})
        tried: list[tuple[int, float]] = []

        def attempt(k: int) -> Fallback:
            path = folder / f"excluded-{k}.onnx"
            quantize(path, order[:k])
            result = judge(run(path, heldout_inputs))
            tried.append((k, result["top1_agreement"]))
            tried.sort()
            return Fallback(order[:k], result, path, result["top1_agreement"] >= threshold, ranking, tried)

        best, failed = None, 0
        for k in steps:
            best = attempt(k)
            if best.passed:
                break
            failed = k
        assert best is not None
        hi = len(best.excluded)
        while best.passed and hi - failed > 1:  # bisect between the last step that failed and the one that passed
            mid = (failed + hi) // 2
            trial = attempt(mid)
            if trial.passed:
                best, hi = trial, mid
            else:
                failed = mid
        return best
    finally:
        if own is not None:
            own.cleanup()
