"""Loss terms shared by the methods (each method only picks and weights them)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def adversarial_d(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Discriminator loss (non-saturating GAN): real -> 1, fake -> 0."""
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    )


def adversarial_g(fake_logit: torch.Tensor) -> torch.Tensor:
    """Generator (or feature-extractor) loss: make the discriminator say real."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


def reconstruction_l2(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error; ``output`` is resized to ``target`` when a decoder's size differs."""
    if output.shape[-2:] != target.shape[-2:]:
        output = F.interpolate(output, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(output, target)


def reconstruction_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (pixel loss of the de-occluder)."""
    return F.l1_loss(output, target)


def kl_soft(logits: torch.Tensor, target: torch.Tensor, t: float) -> torch.Tensor:
    """T²·KL(target ‖ softmax(logits/T)) averaged over the batch (``target``: probabilities at temperature T)."""
    logp = F.log_softmax(logits / t, dim=1)
    return (target * (target.clamp_min(1e-8).log() - logp)).sum(1).mean() * t * t


def expression_consistency(
    classifier: nn.Module, generated: torch.Tensor, clean: torch.Tensor, t: float = 1.0
) -> torch.Tensor:
    """Seed 001's expression-consistency loss with a frozen classifier as the judge, label-free:
    T²·KL(softmax(c(clean)/T) ‖ softmax(c(generated)/T)).

    The classifier's answer on the clean face is the (constant) target; gradients flow through the classifier into
    ``generated`` only (freeze its parameters and keep it in eval mode). Zero when ``generated == clean``.

    Args:
        classifier: Returns logits (or a tuple whose first element is the logits).
        generated: ``(N, C, H, W)`` de-occluded faces, in the classifier's input normalisation.
        clean: ``(N, C, H, W)`` the same faces unoccluded.
        t: Temperature.
    """
    with torch.no_grad():
        target = F.softmax(first_output(classifier(clean)) / t, dim=1)
    return kl_soft(first_output(classifier(generated)), target, t)


def output_distance(logits_o: torch.Tensor, logits_c: torch.Tensor) -> torch.Tensor:
    """``||ŷo - ŷc||²`` between the softmax outputs of the student (occluded) and teacher (clean), per sample."""
    return (logits_o.softmax(1) - logits_c.softmax(1)).pow(2).sum(1).mean()


def loss_inequality_regularizer(loss_clean: torch.Tensor, loss_occluded: torch.Tensor) -> torch.Tensor:
    """LIR ``[l_sup(c) - l_sup(o)]₊`` per sample: the occluded loss should not fall below the clean one.

    Both arguments are per-sample losses (``reduction="none"``); ``loss_clean`` comes from the frozen teacher.
    """
    return F.relu(loss_clean.detach() - loss_occluded).mean()


def first_output(out: Any) -> torch.Tensor:
    """The logits of a model that may return a tuple (the GAN discriminator returns (real/fake, expression))."""
    return out[0] if isinstance(out, (tuple, list)) else out


def features_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's mid-level feature map (``features`` or ``forward_features``)."""
    for name in ("features", "forward_features"):
        fn = getattr(model, name, None)
        if callable(fn):
            return fn(x)
    raise AttributeError(f"{type(model).__name__} exposes neither features(x) nor forward_features(x)")


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature map and logits; one pass when the model has ``classify_features``/``forward_head``, else two."""
    feats = features_of(model, x)
    head = getattr(model, "classify_features", None) or getattr(model, "forward_head", None)
    logits = head(feats) if callable(head) else model(x)
    return feats, first_output(logits)
