"""ONNX classifier weights back into a registry model (the inverse of ``export.onnx`` for known architectures).

The exporter folds every BatchNorm into the convolution before it, so an exported graph holds, per ``Conv`` node, a
weight ``W'`` and (for folded convolutions) a bias ``b'``. :func:`import_onnx_weights` walks the ``Conv`` nodes in
graph order next to the module's ``Conv2d`` layers in call order (the exporter emits them in execution order), and
writes ``W'`` into the convolution and ``b'`` into its BatchNorm: with ``running_mean = μ``, ``running_var = σ²``
measured on sample inputs (or 0 / 1-eps without them), ``gamma = sqrt(σ² + eps)`` and ``beta = b' + μ``, the
BatchNorm is the identity plus ``b'`` in eval mode (exact) and close to it in training mode, where it normalises
with batch statistics near ``μ, σ²``. :func:`parity` then checks the module against ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.errors import ConfigError

#: Largest logit difference (vs ONNX Runtime) an imported model may show.
PARITY_TOL = 1e-3


def _conv_order(model: nn.Module, sample: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """The model's convolutions in call order, each with the BatchNorm that directly consumes its output."""
    calls: list[nn.Conv2d] = []
    out_of: dict[int, nn.Conv2d] = {}
    bn_of: dict[int, nn.BatchNorm2d] = {}
    hooks = []

    def conv_hook(m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        calls.append(m)  # type: ignore[arg-type]
        out_of[id(out)] = m  # type: ignore[assignment]

    def bn_hook(m: nn.Module, inp: Any, _out: Any) -> None:
        conv = out_of.get(id(inp[0]))
        if conv is not None:
            bn_of[id(conv)] = m  # type: ignore[assignment]

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    _run_hooked(model, sample, hooks)
    return [(c, bn_of.get(id(c))) for c in calls]


def _run_hooked(model: nn.Module, sample: torch.Tensor, hooks: list[Any]) -> None:
    """One eval-mode forward pass of ``sample`` with the registered ``hooks``, removed afterwards."""
    try:
        with torch.no_grad():
            model.eval()(sample)
    finally:
        for h in hooks:
            h.remove()


def _bn_stats(
    model: nn.Module, pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]], sample: torch.Tensor
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel mean/variance of each BN-fed convolution's raw output (``W'x``, bias-free) on ``sample``."""
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for conv, bn in pairs:
        if bn is None:
            continue

        def hook(m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            stats[id(m)] = (out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=False))

        hooks.append(conv.register_forward_hook(hook))
    _run_hooked(model, sample, hooks)
    return stats


def import_onnx_weights(
    model: nn.Module, onnx_path: str | Path, sample: torch.Tensor, calibration: torch.Tensor | None = None
) -> nn.Module:
    """Load an exported classifier's ONNX weights into ``model`` (same architecture); returns it in eval mode.

    Args:
        model: A freshly created registry model of the architecture the ONNX file was exported from.
        onnx_path: The ONNX file.
        sample: A ``(N, C, H, W)`` input of the model's size (traces the call order).
        calibration: Optional inputs (normalised faces) whose statistics initialise the BatchNorm running
            statistics, so that training-mode BatchNorm starts near the imported function.

    Raises:
        ConfigError: the graph does not fit the architecture (count or shapes of convolutions).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    gemms = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    pairs = _conv_order(model, sample)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    name = type(model).__name__
    if len(convs) != len(pairs) or len(gemms) != len(linears):
        raise ConfigError(
            f"{Path(onnx_path).name} has {len(convs)} convolutions and {len(gemms)} dense layers, "
            f"{name} has {len(pairs)} and {len(linears)}: not the same architecture; pass the "
            f"teacher's registry model (--teacher-model) or distill from a checkpoint"
        )
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs):
            w = init.get(node.input[1])
            if w is None or tuple(w.shape) != tuple(conv.weight.shape):
                raise ConfigError(
                    f"{Path(onnx_path).name}: Conv {node.name or node.input[1]} weight "
                    f"{None if w is None else w.shape} does not fit {name}'s {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
            b = init.get(node.input[2]) if len(node.input) > 2 else None
            b_t = torch.zeros(conv.out_channels) if b is None else torch.from_numpy(np.array(b, dtype=np.float32))
            if bn is None:
                if conv.bias is not None:
                    conv.bias.copy_(b_t)
                elif b is not None and np.abs(b).max() > 0:
                    raise ConfigError(f"{Path(onnx_path).name}: Conv {node.input[1]} has a bias {name} lacks")
            else:
                if conv.bias is not None:
                    conv.bias.zero_()
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(b_t)
        for node, lin in zip(gemms, linears):
            w = init.get(node.input[1])
            if w is None:
                raise ConfigError(f"{Path(onnx_path).name}: dense layer {node.name} has no constant weight")
            w = w.T if w.shape != tuple(lin.weight.shape) else w
            lin.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
            if lin.bias is not None and len(node.input) > 2 and node.input[2] in init:
                lin.bias.copy_(torch.from_numpy(np.array(init[node.input[2]], dtype=np.float32)))
        if calibration is not None:
            stats = _bn_stats(model, pairs, calibration)
            for conv, bn in pairs:
                if bn is not None and id(conv) in stats:
                    mu, var = stats[id(conv)]
                    b_t = bn.bias.clone()
                    bn.running_mean.copy_(mu)
                    bn.running_var.copy_(var)
                    bn.weight.copy_(torch.sqrt(var + bn.eps))
                    bn.bias.copy_(b_t + mu)
    return model.eval()


def parity(model: nn.Module, onnx_path: str | Path, x: np.ndarray) -> float:
    """Largest absolute logit difference between ``model`` and ONNX Runtime on the float32 batch ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x.astype(np.float32))).numpy()
    return float(np.abs(got - ref).max())
