"""The held-out people of a distillation: the teacher's clean answers and fixed occluded views, evaluated per epoch."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.preprocess import fit_face, to_tensor

from ..consistency import cohen_kappa
from .data import occluded_views
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
            x = torch.from_numpy(to_tensor(imgs[s:s + batch], spec)).to(dev)
            out.append(model(x).softmax(1).float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class HeldOut:
    """The held-out people's faces, the teacher's clean answers and the fixed occluded views."""

    def __init__(self, dataset: Any, teacher: Teacher, protocols: tuple[str, ...], seed: int) -> None:
        spec = teacher.input
        crops = np.stack([fit_face(dataset[i][0], spec) for i in range(len(dataset))])
        self.people = np.asarray([dataset.subject(i) or str(i) for i in range(len(dataset))], dtype=str)
        self.views = {"clean": crops, **{p: occluded_views(crops, p, seed)
                                          for p in protocols}}
        self.spec = spec
        self.teacher_probs = self.predict(teacher.model, crops)
        self.ref = self.teacher_probs.argmax(1)
        _, inverse, counts = np.unique(self.people, return_inverse=True, return_counts=True)
        self.weights = 1.0 / (counts[inverse] * len(counts))  # sums to 1: every person counts the same

    def predict(self, model: nn.Module, images: np.ndarray) -> np.ndarray:
        return predict_probs(model, images, self.spec)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``{clean, <protocol>..., <protocol>_kappa..., occluded_mean}``: agreement with the teacher's clean answer,
        each person weighted equally (a person with a long video counts as much as one with a photo); κ per face."""
        k = self.teacher_probs.shape[1]
        res: dict[str, float] = {}
        for p, imgs in self.views.items():
            pred = self.predict(model, imgs).argmax(1)
            res[p] = float(np.sum(self.weights * (pred == self.ref)))
            res[f"{p}_kappa"] = cohen_kappa(pred, self.ref, k)
        occ = [res[p] for p in self.views if p != "clean"]
        res["occluded_mean"] = float(np.mean(occ)) if occ else float("nan")
        return res
