"""``baseline``: a classifier trained with cross-entropy on (optionally occluded) faces.

With the default ``protocols=clean`` this is the clean-trained baseline every benchmark compares against;
``cbam`` and ``lower-half`` reuse it and change only the model, the occlusions and the stages.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..augment import OcclusionMix
from ..loop import Batch, ExportPlan, Method, Models, ModelSpec, Stage
from ..losses import first_output


class SupervisedMethod(Method):
    """Cross-entropy of the classifier on ``batch["occluded"]`` (which is clean where the stage says so)."""

    name = "baseline"
    defaults: dict[str, Any] = {"protocols": ["clean"], "noise_prob": 0.0, "noise_std": 0.05, "flip": True, "w_ce": 1.0}

    def model_specs(self, num_classes: int) -> dict[str, ModelSpec]:
        name = self.classifier_name()
        kw = self.kwargs_for("classifier", name, num_classes=num_classes, in_channels=self.cfg.input.channels)
        return {"classifier": ModelSpec(name, kw)}

    def mix(self, protocols: Any = None) -> OcclusionMix:
        """The stage's occlusion mix from the options (``protocols`` overrides the option)."""
        p = protocols if protocols is not None else self.opts["protocols"]
        return OcclusionMix(
            [p] if isinstance(p, str) else list(p),
            noise_prob=float(self.opts["noise_prob"]),
            noise_std=float(self.opts["noise_std"]),
            flip=bool(self.opts["flip"]),
        )

    def stages(self) -> list[Stage]:
        return [Stage("train", self.epochs(), {"main": ["classifier"]}, self.mix(), max_steps=self.cfg.max_steps)]

    def export_plan(self) -> ExportPlan:
        return ExportPlan("direct", classifier="classifier")

    def losses(self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = first_output(models["classifier"](batch["occluded"]))
        return {"ce": F.cross_entropy(logits, batch["label"])}


METHOD = SupervisedMethod
