"""``cbam``: ResNet-18 with CBAM attention, trained with random rectangle/circle occlusions and noise."""

from __future__ import annotations

from typing import Any

from .baseline import SupervisedMethod


class CbamMethod(SupervisedMethod):
    """Same loss as the baseline; CBAM model, random shapes/boxes and Gaussian noise on half the samples."""

    name = "cbam"
    default_model = "resnet18_cbam"
    defaults: dict[str, Any] = {
        **SupervisedMethod.defaults,
        "protocols": ["clean", "random_shapes", "random_shapes", "random_box:0.3"],
        "noise_prob": 0.5,
        "noise_std": 0.05,
    }


METHOD = CbamMethod
