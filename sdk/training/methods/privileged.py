"""``privileged``: clean faces as privileged information for a student that sees occluded faces.

L = l_sup + λ1·‖ŷo − ŷc‖² + λ2·[l_sup(c) − l_sup(o)]₊ + λ3·l_adv + λ4·l_rec, with options
``w_out`` (λ1), ``w_lir`` (λ2), ``w_adv`` (λ3, a feature discriminator telling the student's mid-level
features of occluded faces from the teacher's of clean faces) and ``w_rec`` (λ4, a 3-deconv decoder from the
student's features to the clean image). A weight of 0 switches a term (and the modules only it needs) off;
with all four off this is the plain occluded-face student. The teacher is trained on clean faces first
(or loaded with ``teacher_checkpoint=DIR``) and frozen. Only the student is exported.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..augment import DEFAULT_TRAIN_PROTOCOLS, OcclusionMix
from ..loop import Batch, ExportPlan, Method, Models, ModelSpec, Stage
from ..losses import (
    adversarial_d,
    adversarial_g,
    features_and_logits,
    features_of,
    first_output,
    loss_inequality_regularizer,
    output_distance,
    reconstruction_l2,
)
from .deocclusion import load_pretrained


class PrivilegedMethod(Method):
    """Teacher (clean) -> student (occluded) with output, LIR, adversarial-feature and reconstruction terms."""

    name = "privileged"
    defaults: dict[str, Any] = {
        "protocols": list(DEFAULT_TRAIN_PROTOCOLS[1:]),
        "noise_prob": 0.0,
        "teacher_checkpoint": None,
        "teacher_epochs": None,
        "w_sup": 1.0,
        "w_out": 1.0,
        "w_lir": 1.0,
        "w_adv": 0.1,
        "w_rec": 1.0,
        "w_teacher": 1.0,
        "w_d_adv": 1.0,
    }

    def needs_teacher(self) -> bool:
        """The teacher is used by the output-distance and LIR terms and as the adversary's 'real' features."""
        return self.active("out") or self.active("lir") or self.active("adv")

    def _feature_shape(self, kw: dict[str, Any]) -> tuple[int, int]:
        """Channels and downsampling factor of the classifier's mid-level feature map (probed once)."""
        from ..models import create_model

        probe = create_model(self.classifier_name(), **kw).eval()
        s, c = self.cfg.input.size[0], self.cfg.input.channels  # square (TrainConfig checks)
        with torch.no_grad():
            f = features_of(probe, torch.zeros(2, c, s, s))
        return int(f.shape[1]), max(1, s // int(f.shape[-1]))

    def model_specs(self, num_classes: int) -> dict[str, ModelSpec]:
        c = self.cfg.input.channels
        kw = self.kwargs_for("classifier", self.classifier_name(), num_classes=num_classes, in_channels=c)
        specs = {"student": ModelSpec(self.classifier_name(), kw)}
        if self.needs_teacher():
            specs["teacher"] = ModelSpec(self.classifier_name(), kw)
        if self.active("adv") or self.active("rec"):
            fc, stride = self._feature_shape(kw)
            if self.active("adv"):
                specs["feature_disc"] = ModelSpec(
                    "feature_discriminator", self.kwargs_for("feature_disc", in_channels=fc)
                )
            if self.active("rec"):
                specs["decoder"] = ModelSpec(
                    "reconstruction_decoder",
                    self.kwargs_for(
                        "decoder",
                        in_channels=fc,
                        out_channels=c,
                        upsample=min(8, 1 << (stride.bit_length() - 1)),
                        out_size=list(self.cfg.input.size),
                    ),
                )
        return specs

    def stages(self) -> list[Stage]:
        e, steps = self.epochs(), self.cfg.max_steps
        out = []
        if self.needs_teacher() and not self.opts["teacher_checkpoint"]:
            out.append(
                Stage(
                    "teacher",
                    int(self.opts["teacher_epochs"] or e),
                    {"main": ["teacher"]},
                    OcclusionMix(["clean"], flip=True),
                    max_steps=steps,
                )
            )
        groups = {"main": ["student"] + (["decoder"] if self.active("rec") else [])}
        if self.active("adv"):
            groups["disc"] = ["feature_disc"]
        mix = OcclusionMix(self.opts["protocols"], noise_prob=float(self.opts["noise_prob"]))
        out.append(Stage("student", e, groups, mix, max_steps=steps))
        return out

    def export_plan(self) -> ExportPlan:
        return ExportPlan("direct", classifier="student")

    def on_stage_start(self, index: int, stage: Stage, models: Models) -> None:
        if index == 0 and self.needs_teacher() and self.opts["teacher_checkpoint"]:
            load_pretrained(models, "teacher", str(self.opts["teacher_checkpoint"]), self.labels)

    def losses(self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        y = batch["label"]
        if stage.name == "teacher":
            return {"teacher": F.cross_entropy(first_output(models["teacher"](batch["clean"])), y)}
        f_o, y_o = features_and_logits(models["student"], batch["occluded"])
        sup_o = F.cross_entropy(y_o, y, reduction="none")
        terms = {"sup": sup_o.mean()}
        if self.needs_teacher():
            with torch.no_grad():
                f_c, y_c = features_and_logits(models["teacher"], batch["clean"])
            cache["f_c"], cache["f_o"] = f_c, f_o
            if self.active("out"):
                terms["out"] = output_distance(y_o, y_c)
            if self.active("lir"):
                terms["lir"] = loss_inequality_regularizer(F.cross_entropy(y_c, y, reduction="none"), sup_o)
            if self.active("adv"):
                terms["adv"] = adversarial_g(models["feature_disc"](f_o))
        if self.active("rec"):
            terms["rec"] = reconstruction_l2(models["decoder"](f_o), batch["clean"])
        return terms

    def discriminator_losses(
        self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        d = models["feature_disc"]
        return {"d_adv": adversarial_d(d(cache["f_c"]), d(cache["f_o"].detach()))}


METHOD = PrivilegedMethod
