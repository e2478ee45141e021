"""ResNet-18 for small face crops, with an optional CBAM block after every residual block.

Stems (``stem=``):
    ``"3x3"``   3x3 conv, stride 1, no max-pool: for 48-64 px faces (final map 1/8 of the input).
    ``"3x3s2"`` 3x3 conv, stride 2, no max-pool: for ~96-128 px faces (final map 1/16).
    ``"7x7"``   the ImageNet stem, 7x7 stride-2 conv + 3x3 stride-2 max-pool (final map 1/32).

Mid-level features (``features``): the output of residual stage ``feature_stage`` (1-4, default 3, i.e.
``layer3``: ``4 * width`` channels = 256 at width 64, stride 4 with the ``"3x3"`` stem, so 16x16 for 64 px).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from runtime.errors import ConfigError

from .cbam import CBAM
from .common import ClassifierHead, FeatureClassifier, conv_bn_act, make_act
from .registry import register_model

STEMS = {"3x3": (3, 1, False), "3x3s2": (3, 2, False), "7x7": (7, 2, True)}  # kernel, stride, max-pool

AttentionFactory = Callable[[int], nn.Module]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut, ReLU, then optional attention."""

    def __init__(self, cin: int, cout: int, stride: int = 1, attention: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(cin, cout, 3, stride)
        self.conv2 = conv_bn_act(cout, cout, 3, 1, act="none")
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = conv_bn_act(cin, cout, 1, stride, act="none")
        self.act = make_act("relu")
        self.attention = attention if attention is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.act(self.conv2(self.conv1(x)) + self.shortcut(x)))


class ResNet(FeatureClassifier):
    """A ResNet of :class:`BasicBlock` stages (``blocks`` per stage), widths ``width * (1, 2, 4, 8)``.

    Args:
        blocks: Blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: Number of expression classes.
        in_channels: Image channels (1 grey, 3 colour).
        width: Channels of the first stage (64 in the paper).
        stem: ``"3x3"``, ``"3x3s2"`` or ``"7x7"`` (see module doc).
        attention: Optional factory ``channels -> nn.Module`` applied after every residual block.
        feature_stage: Stage (1-4) whose output ``features`` returns.
        dropout: Dropout before the final FC.
    """

    def __init__(
        self,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 7,
        in_channels: int = 3,
        width: int = 64,
        stem: str = "3x3",
        attention: AttentionFactory | None = None,
        feature_stage: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"unknown ResNet stem {stem!r}; choose one of {', '.join(STEMS)}")
        if not 1 <= feature_stage <= len(blocks):
            raise ConfigError(f"feature_stage must be in 1..{len(blocks)}, got {feature_stage}")
        kernel, stride, max_pool = STEMS[stem]
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = [conv_bn_act(in_channels, width, kernel, stride)]
        if max_pool:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*layers)
        self.stages = nn.ModuleList()
        cin = width
        for i, n in enumerate(blocks):
            cout, first_stride = width * 2**i, 1 if i == 0 else 2
            self.stages.append(
                nn.Sequential(
                    *[
                        BasicBlock(
                            cin if j == 0 else cout,
                            cout,
                            first_stride if j == 0 else 1,
                            attention(cout) if attention is not None else None,
                        )
                        for j in range(n)
                    ]
                )
            )
            cin = cout
        self.feature_stage = feature_stage
        self.feature_channels = width * 2 ** (feature_stage - 1)
        self.feature_stride = stride * (2 if max_pool else 1) * 2 ** (feature_stage - 1)
        self.head = ClassifierHead(cin, num_classes, dropout=dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of stage ``feature_stage`` (``feature_channels`` channels, 1/``feature_stride`` size)."""
        x = self.stem(x)
        for stage in self.stages[: self.feature_stage]:
            x = stage(x)
        return x

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:
        """The remaining stages and the head: logits ``(N, num_classes)``."""
        for stage in self.stages[self.feature_stage :]:
            feats = stage(feats)
        return self.head(feats)


@register_model("resnet18", kind="classifier", default_input=(3, 64, 64), num_classes=7, in_channels=3)
def resnet18(
    num_classes: int = 7,
    in_channels: int = 3,
    width: int = 64,
    stem: str = "3x3",
    feature_stage: int = 3,
    dropout: float = 0.0,
) -> ResNet:
    """ResNet-18 (BasicBlock x [2, 2, 2, 2]) for small faces."""
    return ResNet((2, 2, 2, 2), num_classes, in_channels, width, stem, None, feature_stage, dropout)


@register_model("resnet18_cbam", kind="classifier", default_input=(3, 64, 64), num_classes=7, in_channels=3)
def resnet18_cbam(
    num_classes: int = 7,
    in_channels: int = 3,
    width: int = 64,
    stem: str = "3x3",
    feature_stage: int = 3,
    dropout: float = 0.0,
    reduction: int = 16,
    spatial_kernel: int = 7,
) -> ResNet:
    """ResNet-18 with a CBAM block (reduction 16, 7x7 spatial kernel) after every residual block."""
    return ResNet(
        (2, 2, 2, 2),
        num_classes,
        in_channels,
        width,
        stem,
        lambda c: CBAM(c, reduction, spatial_kernel),
        feature_stage,
        dropout,
    )
