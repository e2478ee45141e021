"""Paired (clean, occluded) face crops for distillation, with photometric and geometric augmentation.

Per sample and epoch (every random choice from ``(seed, epoch, index)``, so a resumed run sees the same data):
the aligned crop is occluded first (realistic occluders are placed from the crop's canonical keypoints, so they
sit on the face), then the *same* augmentation — flip, shift, scale, small rotation, brightness/contrast, blur — is
applied to the clean and the occluded image, so the teacher's view and the student's differ only by the occluder.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.input_spec import InputSpec
from runtime.occlusion import apply_occlusion
from runtime.preprocess import fit_face, to_tensor

from ..augment import sample_rng
from ..evaluation import occluded_views, occluded_views_and_masks  # noqa: F401 - re-exported (torch-free home)
from .config import Augment  # noqa: F401 - re-exported (torch-free home)


def augment_image(img: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Apply one parameter draw of :meth:`Augment.draw` to a uint8 ``(H, W)`` or ``(H, W, C)`` image."""
    h, w = img.shape[:2]
    out = img[:, ::-1] if p["flip"] else img
    if p["dx"] or p["dy"] or p["zoom"] != 1 or p["angle"]:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), p["angle"], p["zoom"])
        m[:, 2] += (p["dx"] * w, p["dy"] * h)
        out = cv2.warpAffine(
            np.ascontiguousarray(out), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    if p["sigma"] > 0:
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), p["sigma"])
    if p["offset"] or p["gain"] != 1:
        mean = float(np.mean(out))
        out = np.clip((out.astype(np.float32) - mean) * p["gain"] + mean + p["offset"], 0, 255).astype(np.uint8)
    out = np.ascontiguousarray(out)
    return out.reshape(img.shape) if out.ndim != img.ndim else out


class PairedFaces(Dataset):
    """Item ``i``: ``{"clean", "occluded", "mask", "label", "index", "flip"}`` (normalised float CHW, mask
    ``(1, H, W)``, ``flip``: whether the augmentation flipped the face).

    Args:
        base: A face dataset (``ds[i] -> (image, label)``; ``-1`` = unlabelled).
        spec: The training input spec.
        protocols: Occlusion protocols to draw from (uniformly); ``clean`` allowed.
        augment: Augmentation strengths, or None for none (held-out evaluation).
        seed: Seed of every random choice.
    """

    def __init__(
        self, base: Any, spec: InputSpec, protocols: Sequence[str], augment: Augment | None, seed: int = 0
    ) -> None:
        self.base, self.spec, self.protocols = base, spec, tuple(protocols)
        self.augment, self.seed, self.epoch = augment, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, label = self.base[index]
        rng = sample_rng(self.seed, self.epoch, index, salt=7)
        clean = fit_face(image, self.spec)
        protocol = self.protocols[int(rng.integers(len(self.protocols)))]
        occ = apply_occlusion(clean, protocol, seed=int(rng.integers(0, 2**31 - 1)))
        occ_img = occ.image
        mask = (np.asarray(occ.mask) > 0).astype(np.uint8)
        flip = False
        if self.augment is not None:
            p = self.augment.draw(rng)
            flip = bool(p["flip"])
            clean, occ_img = augment_image(clean, p), augment_image(occ_img, p)
            mask = augment_image(mask * 255, {**p, "sigma": 0.0, "offset": 0.0, "gain": 1.0}) > 127
        x_clean, x_occ = to_tensor(np.stack([clean, occ_img]), self.spec)
        return {
            "clean": torch.from_numpy(x_clean),
            "occluded": torch.from_numpy(x_occ),
            "mask": torch.from_numpy(mask.astype(np.float32)[None]),
            "label": torch.tensor(int(label), dtype=torch.long),
            "index": torch.tensor(int(index)),
            "flip": torch.tensor(flip),
        }
