"""``lower-half``: the VR-headset setting — full faces first, then faces with the upper half occluded.

Optional Dense-Sparse-Dense (DSD): the occluded stage is split into dense training, sparse training (the
smallest-magnitude weights of every layer pruned to that layer's sparsity and kept at zero by a mask), and
dense re-training of all weights at a tenth of the learning rate.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from runtime.errors import ConfigError

from ..loop import Models, Stage
from .baseline import SupervisedMethod

_PRUNABLE = (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)


def layer_sparsity(spec: float | dict[str, float], layer: str) -> float:
    """Sparsity of one layer: a float for all layers, or ``{fnmatch pattern: sparsity}`` (first match; none = 0)."""
    if isinstance(spec, (int, float)):
        return float(spec)
    for pattern, value in spec.items():
        if fnmatch.fnmatchcase(layer, pattern):
            return float(value)
    return 0.0


def prune_masks(model: nn.Module, sparsity: float | dict[str, float]) -> dict[str, torch.Tensor]:
    """Per-layer masks zeroing exactly ``round(sparsity * n)`` smallest-magnitude weights of each layer.

    Returns ``{module name: bool mask}`` for every conv/linear weight with a non-zero sparsity.
    """
    masks: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if not isinstance(module, _PRUNABLE):
            continue
        s = layer_sparsity(sparsity, name)
        if not 0.0 <= s < 1.0:
            raise ConfigError(f"DSD sparsity of layer {name!r} must be in [0, 1), got {s}")
        w = module.weight.detach()
        k = int(round(s * w.numel()))
        if k == 0:
            continue
        order = torch.argsort(w.abs().flatten(), stable=True)
        mask = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
        mask[order[:k]] = False
        masks[name] = mask.view_as(w)
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights (after every optimiser step of the sparse phase)."""
    if not masks:
        return
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            modules[name].weight.mul_(mask)


def measured_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights of every conv/linear layer."""
    return {
        name: float((m.weight == 0).float().mean()) for name, m in model.named_modules() if isinstance(m, _PRUNABLE)
    }


class LowerHalfMethod(SupervisedMethod):
    """Two-stage fine-tuning (full, then upper half occluded), optionally with DSD in the second stage."""

    name = "lower-half"
    defaults: dict[str, Any] = {
        **SupervisedMethod.defaults,
        "protocols": ["upper_half"],
        "full_epochs": None,
        "dsd": False,
        "dsd_sparsity": 0.3,
        "redense_lr_scale": 0.1,
    }

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.masks: dict[str, torch.Tensor] = {}

    def stages(self) -> list[Stage]:
        epochs, steps = self.epochs(), self.cfg.max_steps
        full = Stage(
            "full",
            int(self.opts["full_epochs"] or epochs),
            {"main": ["classifier"]},
            self.mix("clean"),
            max_steps=steps,
        )
        occ = self.mix()
        if not self.opts["dsd"]:
            return [full, Stage("upper-occluded", epochs, {"main": ["classifier"]}, occ, max_steps=steps)]
        return [
            full,
            Stage("occluded-dense", epochs, {"main": ["classifier"]}, occ, max_steps=steps),
            Stage("occluded-sparse", epochs, {"main": ["classifier"]}, occ, max_steps=steps),
            Stage(
                "occluded-redense",
                epochs,
                {"main": ["classifier"]},
                occ,
                lr_scale=float(self.opts["redense_lr_scale"]),
                max_steps=steps,
            ),
        ]

    def on_stage_start(self, index: int, stage: Stage, models: Models) -> None:
        self.masks = {}
        if stage.name == "occluded-sparse":
            self.masks = prune_masks(models["classifier"], self.opts["dsd_sparsity"])
            apply_masks(models["classifier"], self.masks)

    def after_step(self, stage: Stage, models: Models) -> None:
        apply_masks(models["classifier"], self.masks)


METHOD = LowerHalfMethod
