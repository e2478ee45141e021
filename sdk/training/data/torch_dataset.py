"""PyTorch adapter: a numpy face dataset -> normalised float tensors ``(C, H, W)`` and labels.

Per sample, the serving preprocessing of :mod:`runtime.preprocess` for an :class:`~runtime.input_spec.InputSpec`:
decode -> :func:`~runtime.preprocess.fit_face` (size and colour, sampled as the runtime crops a face) -> optional
numpy ``transform`` (uint8 ``H x W`` or ``H x W x 3`` at the model input size; training plugs occlusion synthesis in
here) -> :func:`~runtime.preprocess.to_tensor` -> tensor.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.datasets.base import FaceDatasetLike
from runtime.errors import ConfigError
from runtime.input_spec import InputSpec
from runtime.preprocess import fit_face, to_tensor

Transform = Callable[[np.ndarray], np.ndarray]


class TorchFaceDataset(Dataset):
    """Wrap a face dataset for a ``torch.utils.data.DataLoader``.

    Args:
        dataset: Any ``(image, label)`` dataset with ``labels`` (a reader, ProceduralFaces, a Subset).
        spec: The model's input spec (size, colour, normalisation; NCHW).
        transform: Optional ``f(uint8 image) -> uint8 image`` applied after resizing (same shape out).
        soft_labels: Also return the dataset's soft label (float tensor over ``labels``; a one-hot of the
            hard label where the dataset has none).

    Items are ``(x, y)`` or ``(x, y, soft)``, with ``x`` float32 ``(C, H, W)`` and ``y`` an int.
    """

    def __init__(
        self, dataset: FaceDatasetLike, spec: InputSpec, transform: Transform | None = None, soft_labels: bool = False
    ):
        if spec.layout != "NCHW":
            raise ConfigError(f"torch models take NCHW input, the spec says {spec.layout}")
        self.dataset, self.spec = dataset, spec
        self.transform, self.soft_labels = transform, soft_labels
        self.labels = tuple(dataset.labels)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, torch.Tensor]:
        image, label = self.dataset[i]
        img = fit_face(image, self.spec)
        if self.transform is not None:
            out = self.transform(img)
            if not isinstance(out, np.ndarray) or out.shape != img.shape or out.dtype != np.uint8:
                raise ConfigError(
                    f"transform returned {type(out).__name__} "
                    f"{getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}; expected uint8 "
                    f"{img.shape} (same shape as its input)"
                )
            img = out
        tensor = torch.from_numpy(to_tensor(img[None], self.spec)[0])
        if not self.soft_labels:
            return tensor, int(label)
        soft_fn = getattr(self.dataset, "soft_label", None)
        soft = soft_fn(i) if soft_fn is not None else None
        if soft is None:
            soft = np.zeros(len(self.labels), dtype=np.float32)
            soft[int(label)] = 1.0
        return tensor, int(label), torch.from_numpy(np.asarray(soft, dtype=np.float32))
