"""``ofer distill --route inpaint``: a label-free de-occluder in front of the frozen real teacher (seeds 000/001).

The registry ``inpainter`` gets the occluded crop and the occluder's mask; the teacher (a frozen torch module:
imported from the bundle's ONNX classifier, or a checkpoint) judges its output. Loss per batch (each switchable):

* ``pixel``: L1 between the inpainted and the clean crop over the whole crop;
* ``hole``: L1 on the covered pixels only (the inpainter blends, so visible pixels are the input's);
* ``adv``: non-saturating GAN loss from the real/fake head of a registry ``gan_discriminator`` that tells clean
  crops from inpainted ones (trained with its own optimiser);
* ``expr``: seed 001's expression-consistency loss with the real teacher as the frozen classifier,
  T²·KL(teacher(clean) ‖ teacher(inpainted)) (:func:`sdk.training.losses.expression_consistency`); the gradient
  flows through the teacher into the inpainter.

Held-out people are evaluated before training and after every epoch on the route *inpaint → teacher* with the
occluders' true masks: agreement with the teacher's clean answer per ``val_protocols`` occluder (clean faces have an
empty mask, so the route gives the teacher's own answer: clean agreement is 1 by construction). **Selection rule:**
the saved checkpoint is the epoch with the best mean held-out occluded agreement (epoch 0 is the untrained
inpainter). The direct route (the teacher on the occluded face) is measured once on the same views
(``metrics.direct`` beside ``metrics.best``), so that ``ofer export`` records per occlusion kind which route measured
best (:mod:`runtime.routing`). The checkpoint holds the inpainter and the teacher (export plan ``inpaint``), so
``ofer export OUT/checkpoint --out BUNDLE`` writes a bundle for ``Recognizer(pipeline="inpaint"/"auto")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import ConfigError

from runtime.preprocess import to_tensor

from .. import checkpoint as ckpt
from ..losses import adversarial_d, adversarial_g, expression_consistency
from .heldout import HeldOut
from .loop import Distiller


def inpaint_probs(
    inpainter: nn.Module, classifier: nn.Module, images: np.ndarray, masks: np.ndarray, spec: Any, batch: int = 256
) -> np.ndarray:
    """Softmax of ``classifier(inpainter(image, mask))`` (both in eval mode, on the inpainter's device) on uint8 crops
    ``(N, H, W[, 3])`` fitted to ``spec`` with ``(N, H, W)`` 0/1 masks (1 = covered); ``(N, K)`` float32 on the CPU."""
    out = []
    was = inpainter.training
    inpainter.eval()
    dev = next(inpainter.parameters()).device
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(to_tensor(images[s : s + batch], spec)).to(dev)
            m = torch.from_numpy(np.ascontiguousarray(masks[s : s + batch], np.float32)[:, None]).to(dev)
            out.append(classifier(inpainter(x, m)).softmax(1).float().cpu().numpy())
    inpainter.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class InpaintHeldOut(HeldOut):
    """:class:`HeldOut` for the inpaint route: a module evaluated here is the inpainter, the teacher judges its
    output (the teacher itself is the direct route)."""

    def __init__(self, dataset: Any, teacher: Any, protocols: tuple[str, ...], seed: int) -> None:
        super().__init__(dataset, teacher, protocols, seed)
        self.classifier = teacher.model

    def view_probs(self, model: nn.Module, view: str) -> np.ndarray:
        if model is self.classifier:
            return super().view_probs(model, view)
        return inpaint_probs(model, self.classifier, self.views[view], self.masks[view], self.spec)


class InpaintDistiller(Distiller):
    """Trains the inpainter of the inpaint route (see the module docstring); ``fit()``, ``resume()`` as
    :class:`Distiller`."""

    disc_name = "discriminator"
    main_name = "inpainter"

    def __init__(self, cfg: Any, train: Any, val: Any, out_dir: Any, log: Any = print, teacher: Any = None) -> None:
        if cfg.route != "inpaint":
            raise ConfigError(f"InpaintDistiller needs route='inpaint', got {cfg.route!r}")
        try:
            super().__init__(cfg, train, val, out_dir, log=log, teacher=teacher)
        except ConfigError as exc:
            if "architecture" not in str(exc):
                raise
            raise ConfigError(
                f"{exc}. The inpaint route backpropagates the expression-consistency loss through the "
                f"teacher, so it needs the teacher as a torch module of a known architecture; an ONNX "
                f"classifier of unknown architecture cannot judge the inpainter"
            ) from None
        self.teacher.model.eval().requires_grad_(False)
        self.direct = self.held_out.evaluate(self.teacher.model)  # the direct route on the same views
        occ = "  ".join(f"{p} {100 * self.direct[p]:.1f}%" for p in cfg.held_out_protocols)
        self.log(f"direct route (teacher on the occluded face), held-out: {occ}")

    def _build_models(self) -> None:
        from ..models import create_model
        from ..models.discriminators import discriminator_grid

        spec = self.teacher.input
        # Instance norm: the same statistics in training and at inference. With the registry default (batch norm)
        # a few hundred steps leave the running statistics behind the weights: on 15 real faces, 4 epochs of the
        # pixel + expr terms moved the held-in route KL 0.88 -> 0.79 with batch norm, 2.02 -> 0.40 with instance
        # norm (pixel term alone: 2.02 -> 1.21).
        kw = {
            "in_channels": spec.channels,
            "use_mask": True,
            "width": int(self.cfg.inpainter_width),
            "norm": "instance",
        }
        self.models["inpainter"] = create_model("inpainter", **kw).to(self.device)
        self.specs["inpainter"] = {"registry": "inpainter", "kwargs": kw}
        if self.cfg.weights["adv"]:
            kw = {
                "num_classes": len(self.labels),
                "in_channels": spec.channels,
                "width": 32,
                "depth": 4,
                "head_grid": discriminator_grid(spec.size[0], 4),
            }
            self.models["discriminator"] = create_model("gan_discriminator", **kw).to(self.device)
            self.specs["discriminator"] = {"registry": "gan_discriminator", "kwargs": kw}

    def _held_out(self, val: Any) -> HeldOut:
        return InpaintHeldOut(val, self.teacher, self.cfg.held_out_protocols, self.cfg.seed)

    def _protocols(self) -> tuple[str, ...]:
        protocols = tuple(p for p in self.cfg.train_protocols if p != "clean")  # nothing to fill on a clean face
        return protocols or self.cfg.train_protocols

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One inpainter step (and one discriminator step when ``adv`` is on); returns the loss terms."""
        w = self.cfg.weights
        x_o, x_c, mask = (batch[k].to(self.device, non_blocking=True) for k in ("occluded", "clean", "mask"))
        self._train_mode()
        self.teacher.model.eval()
        fake = self.models["inpainter"](x_o, mask)
        terms: dict[str, torch.Tensor] = {}
        if w["pixel"]:
            terms["pixel"] = F.l1_loss(fake, x_c)
        if w["hole"]:
            covered = mask.expand_as(fake)
            terms["hole"] = ((fake - x_c).abs() * covered).sum() / covered.sum().clamp_min(1.0)
        if w["expr"]:
            terms["expr"] = expression_consistency(self.teacher.model, fake, x_c, self.cfg.temperature)
        disc = self.models.get("discriminator")
        if disc is not None:
            disc.requires_grad_(False)
            terms["adv"] = adversarial_g(disc(fake)[0])
            disc.requires_grad_(True)
        total = sum(w[k] * v for k, v in terms.items())
        if not torch.isfinite(total):
            raise ConfigError(
                f"distill --route inpaint: the loss became non-finite "
                f"({ {k: float(v) for k, v in terms.items()} }); lower --lr"
            )
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["total"] = float(total.detach())
        if disc is not None and self.opt_d is not None:
            loss_d = adversarial_d(disc(x_c)[0], disc(fake.detach())[0])
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["d_adv"] = float(loss_d.detach())
        return logs

    def qualifies(self, row: dict[str, Any]) -> bool:
        """Every epoch qualifies: clean faces bypass the inpainter (empty mask), so the route keeps the clean answer."""
        return True

    def config_dict(self, models: dict[str, Any]) -> dict[str, Any]:
        cfg = super().config_dict(models)
        cfg["method"] = "distill-inpaint"
        cfg["export"] = {
            "pipeline": "inpaint",
            "classifier": "teacher",
            "inpainter": "inpainter",
            "classifier_output": None,
        }
        cfg["metrics"]["selection"] = (
            "best mean held-out occluded agreement of the teacher on the inpainted face "
            "with its clean answer (occluders' true masks)"
        )
        cfg["metrics"]["direct"] = dict(getattr(self, "direct", {}))  # the teacher on the same occluded views
        return cfg

    def _save_best(self) -> None:
        if self.out is None:
            return
        teacher = {"registry": self.teacher.registry, "kwargs": self.teacher.kwargs}
        ckpt.save_checkpoint(
            self.out / "checkpoint",
            config=self.config_dict({"inpainter": self.specs["inpainter"], "teacher": teacher}),
            models={"inpainter": self.models["inpainter"], "teacher": self.teacher.model},
        )
