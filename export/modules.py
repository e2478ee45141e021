"""A training checkpoint's deployable modules, by engine role, and their ONNX files.

:func:`export_modules` is the one place that reads a checkpoint's export plan (``config["export"]``: the pipeline,
which module is the classifier and which the inpainter, which element of a tuple output are the logits);
``ofer export``, evaluation in torch and the tests all take their modules from it. :func:`checkpoint_to_onnx`
exports them (parity-checked by :func:`export.onnx.export_onnx`) as an :class:`export.source.ExportSource`.

A checkpoint is passed loaded (``sdk.training.checkpoint.load_checkpoint``): anything with ``models`` (name ->
``torch.nn.Module``) and ``config`` (dict); rebuilding modules needs the model registry of ``sdk.training``, which
this layer never imports. torch is imported inside the functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.input_spec import InputSpec
from runtime.errors import ExportError

from .source import ExportSource


def select_modules(models: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    """The modules an export ``plan`` deploys, in eval mode: ``{"classifier": m}`` (+ ``"inpainter"`` for the
    ``inpaint`` pipeline). A classifier whose output is a tuple (the GAN discriminator) is wrapped so that it returns
    element ``plan["classifier_output"]`` only.

    Raises:
        ExportError: the plan names a module the checkpoint does not have.
    """

    def module(role: str) -> Any:
        name = plan.get(role)
        if name not in models:
            raise ExportError(
                f"the checkpoint's export plan names {name!r} as its {role}, but it holds "
                f"{sorted(models)}; re-save the checkpoint with `ofer train`"
            )
        return models[name].eval()

    clf = module("classifier")
    if plan.get("classifier_output") is not None:
        clf = _select_output(clf, int(plan["classifier_output"]))
    out = {"classifier": clf}
    if plan.get("pipeline") == "inpaint" and plan.get("inpainter"):
        out["inpainter"] = module("inpainter")
    return out


def export_plan(checkpoint: Any) -> dict[str, Any]:
    """A checkpoint's export plan; a checkpoint without one deploys its first module directly."""
    return dict(
        checkpoint.config.get("export")
        or {"pipeline": "direct", "classifier": next(iter(checkpoint.models)), "inpainter": None}
    )


def export_modules(checkpoint: Any) -> dict[str, Any]:
    """The modules to export from a loaded ``checkpoint`` by engine role (see :func:`select_modules`)."""
    return select_modules(checkpoint.models, export_plan(checkpoint))


def _select_output(module: Any, index: int) -> Any:
    """Wrap a module returning a tuple (the GAN discriminator) so that it returns element ``index``."""
    import torch

    class SelectOutput(torch.nn.Module):
        """Returns element ``index`` of the wrapped module's tuple output."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)[index]

    return SelectOutput().eval()


def sample_batch(spec: InputSpec, n: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` random uint8 faces prepared as the model input (``runtime.preprocess.to_tensor``): the example batch
    ONNX export traces and checks parity on."""
    from runtime.preprocess import to_tensor

    h, w = spec.size
    shape = (n, h, w) if spec.channels == 1 else (n, h, w, 3)
    return to_tensor(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8), spec)


def checkpoint_to_onnx(
    checkpoint: Any, input_spec: InputSpec, work: str | Path, *, name: str | None = None
) -> ExportSource:
    """Export a loaded checkpoint's modules to ONNX in ``work`` (classifier; inpainter too for the inpaint pipeline).

    Args:
        checkpoint: A loaded checkpoint (``models``, ``config``, ``path``).
        input_spec: The bundle input spec its modules take (size, channels, layout, normalisation).
        work: Folder for ``classifier.onnx`` (and ``inpainter.onnx``).
        name: The checkpoint's name in the provenance (default: its folder's name).

    Returns:
        The source of a bundle: the ONNX files, labels, spec, provenance from the config and the conversion parity.

    Raises:
        ExportError: a module does not export or its ONNX differs from PyTorch.
    """
    from .onnx import export_onnx

    work = Path(work)
    cfg = checkpoint.config
    modules = export_modules(checkpoint)
    sample = sample_batch(input_spec)
    parity = {"classifier": export_onnx(modules["classifier"], sample, work / "classifier.onnx")}
    inpainter = None
    if "inpainter" in modules:
        h, w = input_spec.size
        mask = (np.random.default_rng(1).random((len(sample), 1, h, w)) > 0.5).astype(np.float32)
        inpainter = work / "inpainter.onnx"
        # (an output named like the input would get renamed)
        parity["inpainter"] = export_onnx(
            modules["inpainter"], {"image": sample, "mask": mask}, inpainter, output_names=("inpainted",)
        )
    provenance = {
        "method": cfg.get("method"),
        "data": cfg.get("data"),
        "metrics": cfg.get("metrics", {}),
        "source": f"checkpoint {name or Path(checkpoint.path).name}",
    }
    return ExportSource(
        work / "classifier.onnx",
        tuple(cfg["labels"]),
        input_spec,
        inpainter=inpainter,
        provenance=provenance,
        parity=parity,
    )
