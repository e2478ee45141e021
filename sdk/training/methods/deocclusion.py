"""``deocclusion``: a de-occluder trained with an expression-consistency loss.

L = L_expr + L_pixel + L_adv, where L_expr is the cross-entropy of a FROZEN classifier (pre-trained on clean
faces in stage 1, or loaded with ``classifier_checkpoint=DIR``) on the generated image. ``use_expr_loss=false``
drops L_expr (the paper's ablation). Deployed as inpaint -> classify with that classifier.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from runtime.errors import ConfigError

from ..augment import DEFAULT_TRAIN_PROTOCOLS, OcclusionMix
from ..loop import Batch, ExportPlan, Method, Models, ModelSpec, Stage
from ..losses import adversarial_g, first_output, reconstruction_l1
from .gan_inpaint import discriminator_spec, inpaint, real_fake_loss


def load_pretrained(models: Models, name: str, path: str, labels: tuple[str, ...], role: str | None = None) -> None:
    """Copy the weights of module ``role`` (default: the checkpoint's exported classifier) into ``models[name]``.

    Raises:
        ConfigError: the checkpoint lacks the module, was trained on other labels, or has another architecture.
    """
    from ..checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    if labels and ck.labels != tuple(labels):
        raise ConfigError(
            f"label sets differ: checkpoint {ck.path} was trained on {list(ck.labels)}, this dataset "
            f"has {list(labels)}; train the pretrained model on the same labels or remap the dataset"
        )
    role = role or ck.config.get("export", {}).get("classifier", "classifier")
    if role not in ck.models:
        raise ConfigError(f"checkpoint {ck.path} has no {role!r} module (it has {sorted(ck.models)})")
    try:
        models[name].load_state_dict(ck.models[role].state_dict())
    except RuntimeError:
        raise ConfigError(
            f"the {role!r} of checkpoint {ck.path} ({ck.config['models'][role]['registry']}) does "
            f"not match this run's {name!r}; pass the same --model"
        ) from None


class DeocclusionMethod(Method):
    """Encoder-decoder + real/fake discriminator, guided by a frozen expression classifier."""

    name = "deocclusion"
    defaults: dict[str, Any] = {
        "protocols": list(DEFAULT_TRAIN_PROTOCOLS[1:]),
        "noise_prob": 0.0,
        "use_expr_loss": True,
        "classifier_checkpoint": None,
        "pretrain_epochs": None,
        "w_expr": 1.0,
        "w_pixel": 1.0,
        "w_adv": 0.01,
        "w_d_adv": 1.0,
        "w_pre": 1.0,
    }

    def model_specs(self, num_classes: int) -> dict[str, ModelSpec]:
        c = self.cfg.input.channels
        return {
            "generator": ModelSpec("inpainter", self.kwargs_for("generator", in_channels=c, use_mask=True)),
            "discriminator": discriminator_spec(self, num_classes),
            "classifier": ModelSpec(
                self.classifier_name(),
                self.kwargs_for("classifier", self.classifier_name(), num_classes=num_classes, in_channels=c),
            ),
        }

    def stages(self) -> list[Stage]:
        e, steps = self.epochs(), self.cfg.max_steps
        out = []
        if not self.opts["classifier_checkpoint"]:
            out.append(
                Stage(
                    "pretrain-classifier",
                    int(self.opts["pretrain_epochs"] or e),
                    {"main": ["classifier"]},
                    OcclusionMix(["clean"], flip=True),
                    max_steps=steps,
                )
            )
        mix = OcclusionMix(self.opts["protocols"], noise_prob=float(self.opts["noise_prob"]))
        out.append(Stage("deocclude", e, {"main": ["generator"], "disc": ["discriminator"]}, mix, max_steps=steps))
        return out

    def export_plan(self) -> ExportPlan:
        return ExportPlan("inpaint", classifier="classifier", inpainter="generator")

    def on_stage_start(self, index: int, stage: Stage, models: Models) -> None:
        if index == 0 and self.opts["classifier_checkpoint"]:
            load_pretrained(models, "classifier", str(self.opts["classifier_checkpoint"]), self.labels)

    def losses(self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        if stage.name == "pretrain-classifier":
            return {"pre": F.cross_entropy(first_output(models["classifier"](batch["clean"])), batch["label"])}
        fake = inpaint(models, batch, cache)
        terms = {"pixel": reconstruction_l1(fake, batch["clean"])}
        if self.active("adv"):
            terms["adv"] = adversarial_g(models["discriminator"](fake)[0])
        if self.opts["use_expr_loss"] and self.active("expr"):
            terms["expr"] = F.cross_entropy(first_output(models["classifier"](fake)), batch["label"])
        return terms

    def discriminator_losses(
        self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        return {"d_adv": real_fake_loss(models, batch, cache)[0]}


METHOD = DeocclusionMethod
