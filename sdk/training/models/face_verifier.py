"""``face_verifier``: the second stage of ofer's face detector, a small CNN that scores a roll-aligned candidate
crop (48x48 RGB by default) face / not face. Shipped as ``runtime/assets/face_verifier.onnx`` (trained by
``scripts/train_verifier.py``) and run by :class:`runtime.detection.verifier.FaceVerifier`.

Layout: Conv3x3/2 (16) -> [Conv3x3/2, Conv3x3] (32) -> [Conv3x3/2, Conv3x3] (64), each conv followed by batch
norm and ReLU (the features: stride 8, 6x6 at 48 px); head: 3x3 average pooling (keeps the coarse layout: eyes
above mouth) -> dropout -> linear to one face logit. About 70 k parameters (~0.3 MB as FP32 ONNX).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import ClassifierHead, FeatureClassifier, conv_bn_act, scaled
from .registry import register_model


@register_model("face_verifier", default_input=(3, 48, 48), num_classes=1)
class FaceVerifierNet(FeatureClassifier):
    """Face / not-face CNN.

    Args:
        num_classes: Outputs; 1 (a face logit) for the verifier.
        in_channels: Input channels (3: RGB).
        width: Channel multiplier (1.0: 16/32/64).
        dropout: Dropout before the linear layer.
    """

    min_size = 24
    feature_stride = 8

    def __init__(self, num_classes: int = 1, in_channels: int = 3, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        c1, c2, c3 = (scaled(c, width) for c in (16, 32, 64))
        self.in_channels, self.num_classes, self.feature_channels = in_channels, num_classes, c3
        self.body = nn.Sequential(
            conv_bn_act(in_channels, c1, stride=2),
            conv_bn_act(c1, c2, stride=2),
            conv_bn_act(c2, c2),
            conv_bn_act(c2, c3, stride=2),
            conv_bn_act(c3, c3),
        )
        self.head = ClassifierHead(c3, num_classes, dropout=dropout, pool_size=3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, feature_channels, H / 8, W / 8)``."""
        return self.body(x)

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Features -> logits ``(N, num_classes)``."""
        return self.head(feats)
