"""PyTorch adapter: a numpy face dataset -> normalised float tensors ``(C, H, W)`` and labels.

Per sample: decode -> colour conversion to ``channels`` (gray <-> BGR, then BGR -> RGB when
``color="rgb"``) -> resize to ``size`` (area when shrinking, linear when enlarging) -> optional numpy
``transform`` (uint8 HxW or HxWx3 at the model input size; training plugs occlusion synthesis in here)
-> ``(x / 255 - mean) / std`` -> tensor.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.errors import ConfigError

from runtime.datasets.base import FaceDatasetLike
from .convert import to_model_input

Transform = Callable[[np.ndarray], np.ndarray]


def _per_channel(value: float | Sequence[float], channels: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels:
        raise ConfigError(f"{name} has {arr.size} values but channels={channels}; give one value or one per channel")
    return arr


class TorchFaceDataset(Dataset):
    """Wrap a face dataset for a ``torch.utils.data.DataLoader``.

    Args:
        dataset: Any ``(image, label)`` dataset with ``labels`` (a reader, ProceduralFaces, a Subset).
        size: Output side (int) or ``(height, width)``.
        channels: 1 (gray) or 3.
        mean, std: Normalisation on the 0..1 scale, one value or one per channel.
        transform: Optional ``f(uint8 image) -> uint8 image`` applied after resizing (same shape out).
        color: Channel order of 3-channel tensors, ``"rgb"`` (default) or ``"bgr"``.
        soft_labels: Also return the dataset's soft label (float tensor over ``labels``; a one-hot of the
            hard label where the dataset has none).

    Items are ``(x, y)`` or ``(x, y, soft)``, with ``x`` float32 ``(C, H, W)`` and ``y`` an int.
    """

    def __init__(self, dataset: FaceDatasetLike, size: int | tuple[int, int], channels: int,
                 mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5,
                 transform: Transform | None = None, color: str = "rgb", soft_labels: bool = False):
        if channels not in (1, 3):
            raise ConfigError(f"channels={channels}; expected 1 (gray) or 3 (colour)")
        if color not in ("rgb", "bgr"):
            raise ConfigError(f"color={color!r}; expected 'rgb' or 'bgr'")
        self.size = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ConfigError(f"size={size}; expected positive sides")
        self.dataset, self.channels, self.color = dataset, channels, color
        self.mean = _per_channel(mean, channels, "mean")
        self.std = _per_channel(std, channels, "std")
        if np.any(self.std <= 0):
            raise ConfigError(f"std={std}; every value must be > 0")
        self.transform, self.soft_labels = transform, soft_labels
        self.labels = tuple(dataset.labels)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, torch.Tensor]:
        image, label = self.dataset[i]
        img = to_model_input(image, self.size, self.channels, self.color)
        if self.transform is not None:
            out = self.transform(img)
            if not isinstance(out, np.ndarray) or out.shape != img.shape or out.dtype != np.uint8:
                raise ConfigError(f"transform returned {type(out).__name__} "
                                  f"{getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}; expected uint8 "
                                  f"{img.shape} (same shape as its input)")
            img = out
        x = img.astype(np.float32) / 255.0
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        if not self.soft_labels:
            return tensor, int(label)
        soft_fn = getattr(self.dataset, "soft_label", None)
        soft = soft_fn(i) if soft_fn is not None else None
        if soft is None:
            soft = np.zeros(len(self.labels), dtype=np.float32)
            soft[int(label)] = 1.0
        return tensor, int(label), torch.from_numpy(np.asarray(soft, dtype=np.float32))
