"""The held-out people of a distillation: the teacher's clean answers and fixed occluded views, evaluated per epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.preprocess import fit_face, to_tensor

from ..consistency import cohen_kappa
from .data import occluded_views_and_masks
from .teacher import Teacher


def predict_probs(model: nn.Module, images: np.ndarray, spec: Any, batch: int = 256) -> np.ndarray:
    """Softmax of ``model`` (eval mode, on the model's device) on uint8 crops ``(N, H, W[, 3])`` prepared for
    ``spec``; returns ``(N, K)`` float32 on the CPU."""
    imgs = images
    out = []
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        for s in range(0, len(imgs), batch):
            x = torch.from_numpy(to_tensor(imgs[s : s + batch], spec)).to(dev)
            out.append(model(x).softmax(1).float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class HeldOut:
    """The held-out people's faces, the teacher's clean answers and the fixed occluded views."""

    def __init__(self, dataset: Any, teacher: Teacher, protocols: tuple[str, ...], seed: int) -> None:
        spec = teacher.input
        crops = np.stack([fit_face(dataset[i][0], spec) for i in range(len(dataset))])
        self.people = np.asarray([dataset.subject(i) or str(i) for i in range(len(dataset))], dtype=str)
        views = {p: occluded_views_and_masks(crops, p, seed) for p in protocols}
        self.views = {"clean": crops, **{p: v[0] for p, v in views.items()}}
        #: The occluders' masks per view (1 = covered), for routes that take the mask (inpaint).
        self.masks = {"clean": np.zeros(crops.shape[:3], np.uint8), **{p: v[1] for p, v in views.items()}}
        self.spec = spec
        self.teacher_probs = self.predict(teacher.model, crops)
        self.ref = self.teacher_probs.argmax(1)
        _, inverse, counts = np.unique(self.people, return_inverse=True, return_counts=True)
        self.weights = 1.0 / (counts[inverse] * len(counts))  # sums to 1: every person counts the same

    def predict(self, model: nn.Module, images: np.ndarray) -> np.ndarray:
        return predict_probs(model, images, self.spec)

    def view_probs(self, model: nn.Module, view: str) -> np.ndarray:
        """``model``'s probabilities on one view (``clean`` or a protocol); routes with more parts override it."""
        return self.predict(model, self.views[view])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``{clean, <protocol>..., <protocol>_kappa..., occluded_mean}``: agreement with the teacher's clean answer,
        each person weighted equally (a person with a long video counts as much as one with a photo); κ per face."""
        k = self.teacher_probs.shape[1]
        res: dict[str, float] = {}
        for p in self.views:
            pred = self.view_probs(model, p).argmax(1)
            res[p] = float(np.sum(self.weights * (pred == self.ref)))
            res[f"{p}_kappa"] = cohen_kappa(pred, self.ref, k)
        occ = [res[p] for p in self.views if p != "clean"]
        res["occluded_mean"] = float(np.mean(occ)) if occ else float("nan")
        return res
