"""Compact VGG classifiers for 48-64 px faces: a VGG-F-like one and a VGG-Face-like one.

``vgg_f`` follows Chatfield et al. 2014 "fast" (VGG-F): five conv layers (a large-kernel strided conv1, a
5x5 conv2, three 3x3 convs) and two FC layers, scaled down for 64 px faces (conv1 7x7 stride 2 instead of
11x11 stride 4) with BN after every conv (the paper's LRN is optional: ``lrn=True``).
Features (``features``): output of conv3 (``256 * width`` channels, stride 8; 8x8 for 64 px).

``vgg_face`` follows the VGG-Face / VGG-16 layout: stages of 3x3 conv-BN-ReLU (2, 2, 3, 3, 3 convs of
64, 128, 256, 512, 512 channels times ``width``), each followed by 2x2 max-pooling, then two FC layers.
Features: output of stage 3 after its pooling (``256 * width`` channels, stride 8; 8x8 for 64 px).
"""

from __future__ import annotations

import torch
from torch import nn

from runtime.errors import ConfigError

from .common import ClassifierHead, FeatureClassifier, conv_bn_act, scaled
from .registry import register_model

VGG_FACE_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGGF(FeatureClassifier):
    """VGG-F-like: conv1 7x7/2 -> pool, conv2 5x5 -> pool, conv3, conv4, conv5 -> pool, FC, FC.

    Args:
        num_classes: Number of expression classes.
        in_channels: Image channels.
        width: Channel multiplier on (64, 256, 256, 256, 256).
        lrn: Add local response normalisation after conv1 and conv2 (as in the paper).
        hidden: Units of the hidden FC layer (the paper's fc6/fc7 have 4096).
        dropout: Dropout after the hidden FC.
        pool_size: Spatial size the last map is pooled to before the FCs (1 = global pooling).
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 3,
        width: float = 0.5,
        lrn: bool = False,
        hidden: int = 512,
        dropout: float = 0.5,
        pool_size: int = 1,
    ) -> None:
        super().__init__()
        c1, c = scaled(64, width), scaled(256, width)
        self.in_channels, self.num_classes = in_channels, num_classes

        def block(cin: int, cout: int, kernel: int, stride: int = 1, pool: bool = False) -> nn.Sequential:
            layers: list[nn.Module] = list(conv_bn_act(cin, cout, kernel, stride))
            if lrn:
                layers.append(nn.LocalResponseNorm(5))
            if pool:
                layers.append(nn.MaxPool2d(3, 2, 1))
            return nn.Sequential(*layers)

        self.conv1 = block(in_channels, c1, 7, 2, pool=True)
        self.conv2 = block(c1, c, 5, pool=True)
        self.conv3 = nn.Sequential(*conv_bn_act(c, c, 3))
        self.conv4 = nn.Sequential(*conv_bn_act(c, c, 3))
        self.conv5 = nn.Sequential(*conv_bn_act(c, c, 3), nn.MaxPool2d(3, 2, 1))
        self.feature_channels, self.feature_stride = c, 8
        self.head = ClassifierHead(c, num_classes, hidden=hidden, dropout=dropout, pool_size=pool_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of conv3: ``(N, 256 * width, H / 8, W / 8)``."""
        return self.conv3(self.conv2(self.conv1(x)))

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:
        """conv4, conv5 + pool and the two FC layers."""
        return self.head(self.conv5(self.conv4(feats)))


class VGGFace(FeatureClassifier):
    """VGG-Face-like: ``stages`` stages of 3x3 conv-BN-ReLU + 2x2 max-pool, then FC, FC.

    Args:
        num_classes: Number of expression classes.
        in_channels: Image channels.
        width: Channel multiplier on (64, 128, 256, 512, 512).
        stages: Number of stages (4 or 5; 5 is VGG-16's layout, 4 suits 48 px inputs).
        hidden: Units of the hidden FC layer.
        dropout: Dropout after the hidden FC.
        pool_size: Spatial size the last map is pooled to before the FCs (1 = global pooling).
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 3,
        width: float = 0.25,
        stages: int = 5,
        hidden: int = 512,
        dropout: float = 0.5,
        pool_size: int = 1,
    ) -> None:
        super().__init__()
        if not 4 <= stages <= len(VGG_FACE_STAGES):
            raise ConfigError(f"vgg_face stages must be 4 or 5, got {stages}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.stages = nn.ModuleList()
        cin = in_channels
        for channels, convs in VGG_FACE_STAGES[:stages]:
            cout = scaled(channels, width)
            layers: list[nn.Module] = []
            for j in range(convs):
                layers += list(conv_bn_act(cin if j == 0 else cout, cout, 3))
            self.stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
            cin = cout
        self.feature_channels, self.feature_stride = scaled(256, width), 8
        self.head = ClassifierHead(cin, num_classes, hidden=hidden, dropout=dropout, pool_size=pool_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of stage 3 (after pooling): ``(N, 256 * width, H / 8, W / 8)``."""
        for stage in self.stages[:3]:
            x = stage(x)
        return x

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:
        """The remaining stages and the two FC layers."""
        for stage in self.stages[3:]:
            feats = stage(feats)
        return self.head(feats)


@register_model("vgg_f", kind="classifier", default_input=(3, 64, 64), num_classes=7, in_channels=3)
def vgg_f(
    num_classes: int = 7,
    in_channels: int = 3,
    width: float = 0.5,
    lrn: bool = False,
    hidden: int = 512,
    dropout: float = 0.5,
    pool_size: int = 1,
) -> VGGF:
    """Compact VGG-F (5 conv + 2 FC) for 64 px faces."""
    return VGGF(num_classes, in_channels, width, lrn, hidden, dropout, pool_size)


@register_model("vgg_face", kind="classifier", default_input=(3, 64, 64), num_classes=7, in_channels=3)
def vgg_face(
    num_classes: int = 7,
    in_channels: int = 3,
    width: float = 0.25,
    stages: int = 5,
    hidden: int = 512,
    dropout: float = 0.5,
    pool_size: int = 1,
) -> VGGFace:
    """Compact VGG-Face (13 3x3 convs in 5 stages + 2 FC) with a width multiplier."""
    return VGGFace(num_classes, in_channels, width, stages, hidden, dropout, pool_size)
