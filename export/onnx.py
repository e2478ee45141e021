"""PyTorch module -> single-file ONNX, checked (checker, shape inference) and parity-tested with ONNX Runtime.

torch is imported inside :func:`export_onnx` only, so importing ``export`` stays torch-free.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from runtime.errors import ExportError

Sample = Any  # np.ndarray | torch.Tensor | Mapping[str, np.ndarray | torch.Tensor]


def _as_numpy_inputs(sample: Sample, input_name: str) -> dict[str, np.ndarray]:
    """Normalise the sample(s) to ``{input name: float32/int numpy array}``."""
    named = dict(sample) if isinstance(sample, Mapping) else {input_name: sample}
    out: dict[str, np.ndarray] = {}
    for name, value in named.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise ExportError(
                f"sample {name!r} is a {type(value).__name__}; pass a numpy array or torch tensor "
                "(or a dict of them for a model with several inputs)."
            )
        if value.ndim == 0:
            raise ExportError(f"sample {name!r} is a scalar; pass a batch, e.g. shape (1, C, H, W).")
        out[name] = np.ascontiguousarray(value)
    return out


def _as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def _top1_agreement(ref: np.ndarray, got: np.ndarray) -> float | None:
    """Fraction of rows with the same argmax, for (N, K) class-score outputs; None for other outputs."""
    if ref.ndim != 2 or ref.shape[1] < 2:
        return None
    return float(np.mean(ref.argmax(1) == got.argmax(1)))


def _run_ort(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def export_onnx(
    model: Any,
    sample: Sample,
    path: str | Path,
    *,
    input_name: str = "input",
    output_names: Sequence[str] = ("logits",),
    opset: int = 17,
    dynamic_batch: bool = True,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Export ``model`` to one ONNX file and check it against PyTorch on a real ``sample``.

    Args:
        model: ``torch.nn.Module``; exported in eval mode with the legacy (TorchScript) exporter.
        sample: A real input batch (numpy array or tensor), or ``{input name: batch}`` for several inputs
            (the dict's order is the order of ``forward``'s positional arguments).
        path: Output ``.onnx`` file; written only when every check passes.
        input_name: Name of the single input (ignored when ``sample`` is a dict).
        output_names: Names of the model's outputs, in the order ``forward`` returns them.
        opset: ONNX opset version.
        dynamic_batch: Make axis 0 of every input and output dynamic (checked by running a batch of 2x).
        atol: Largest allowed absolute difference between PyTorch and ONNX Runtime outputs.

    Returns:
        ``{path, opset, max_abs_diff, top1_agreement, onnx_sha256, size_bytes, inputs, outputs, versions}``;
        ``top1_agreement`` is over the 2-D outputs (None when there are none).

    Raises:
        ExportError: the sample does not fit the model, export or the ONNX checks fail, or the parity is off.
    """
    import onnx
    import onnxruntime
    import torch

    path = Path(path)
    feeds = _as_numpy_inputs(sample, input_name)
    names = list(feeds)
    output_names = list(output_names)
    model = model.eval()
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    try:
        with torch.no_grad():
            reference = [o.detach().cpu().numpy() for o in _as_list(model(*args))]
    except Exception as exc:  # the model's own error names the mismatch (channels, size, dtype)
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        raise ExportError(
            f"the sample {shapes} does not fit {type(model).__name__}: {exc}. Pass a real input "
            "batch of the shape and dtype the model expects."
        ) from None
    if len(reference) != len(output_names):
        raise ExportError(
            f"{type(model).__name__} returns {len(reference)} outputs but output_names has "
            f"{len(output_names)} ({output_names}); pass one name per output."
        )
    axes = {n: {0: "batch"} for n in names + output_names} if dynamic_batch else None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with warnings.catch_warnings():  # the legacy exporter is our deliberate choice: fast, single file
                warnings.filterwarnings(
                    "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
                )
                warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
                # shape checks (e.g. the inpainter's padding) are constants at the example's fixed H x W, which is
                # what a bundle's input spec promises; parity below checks the traced graph on the real sample
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                # InstanceNorm without running statistics normalises per image in eval mode too, which is what
                # the exporter's "set to train=True" warning describes; parity below checks the result
                warnings.filterwarnings("ignore", message=".*instance_norm.*train=True", category=UserWarning)
                torch.onnx.export(
                    model,
                    args,
                    str(tmp),
                    input_names=names,
                    output_names=output_names,
                    opset_version=opset,
                    dynamic_axes=axes,
                    do_constant_folding=True,
                    dynamo=False,
                )
            proto = onnx.load(str(tmp))
            onnx.checker.check_model(proto, full_check=True)
            onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        except Exception as exc:
            raise ExportError(
                f"ONNX export of {type(model).__name__} failed ({type(exc).__name__}: {exc}); "
                f"try another opset (now {opset}) or replace the unsupported operation."
            ) from None
        got = _run_ort(tmp, feeds)
        diff = max(float(np.max(np.abs(r.astype(np.float64) - g))) if r.size else 0.0 for r, g in zip(reference, got))
        agreements = [a for a in (_top1_agreement(r, g) for r, g in zip(reference, got)) if a is not None]
        top1 = min(agreements) if agreements else None
        if not diff <= atol:
            raise ExportError(
                f"ONNX Runtime differs from PyTorch by {diff:.3g} (> atol {atol:g}; top-1 agreement {top1}). "
                "Check that the model is deterministic in eval mode (no random ops, dropout, data-dependent "
                "Python control flow), try another opset, or export without constant folding."
            )
        if dynamic_batch:
            doubled = _run_ort(tmp, {k: np.concatenate([v, v]) for k, v in feeds.items()})
            if any(
                d.shape[0] != 2 * r.shape[0] or float(np.max(np.abs(d[: r.shape[0]] - r))) > atol
                for d, r in zip(doubled, reference)
            ):
                raise ExportError(
                    "the ONNX model does not handle a larger batch like the sample; the model's "
                    "forward probably hard-codes the batch size (use x.shape[0] / -1 in reshapes)."
                )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    data = path.read_bytes()
    return {
        "path": str(path),
        "opset": opset,
        "max_abs_diff": diff,
        "top1_agreement": top1,
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "inputs": {k: list(v.shape) for k, v in feeds.items()},
        "outputs": output_names,
        "dynamic_batch": dynamic_batch,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
