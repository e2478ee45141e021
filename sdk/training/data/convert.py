"""Face crop -> model input, without torch: the conversions training, evaluation and bundles share.

``to_model_input`` converts colour and size; ``prepare_image`` applies it for an :class:`InputSpec`;
``normalize`` scales uint8 images to the float NCHW tensor a model takes.
"""
from __future__ import annotations

import cv2
import numpy as np

from runtime.errors import DatasetError

from ..config import InputSpec


def to_model_input(image: np.ndarray, size: tuple[int, int], channels: int, color: str = "rgb") -> np.ndarray:
    """Convert a uint8 HxW / HxWx3 BGR image to uint8 ``size`` with ``channels`` channels (HxW when 1)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise DatasetError(f"dataset image has dtype {image.dtype} and shape {image.shape}; expected uint8 HxW or "
                           f"HxWx3 BGR")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 3:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = size
    if image.shape[:2] != (h, w):
        shrink = h * w < image.shape[0] * image.shape[1]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image


def prepare_image(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Convert a face crop to the input size, channels and colour order; returns uint8 ``(H, W, C)``."""
    img = to_model_input(np.asarray(image), (spec.size, spec.size), spec.channels, spec.color)
    return np.ascontiguousarray(img[:, :, None] if img.ndim == 2 else img)


def normalize(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 ``(H, W, C)`` or ``(N, H, W, C)`` -> float32 CHW / NCHW, ``(x/255 - mean) / std``."""
    x = images.astype(np.float32) / 255.0
    x = (x - spec.mean) / spec.std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))
