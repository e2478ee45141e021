"""Discriminators: the GAN discriminator with an expression head, and the privileged-information feature one.

``gan_discriminator`` (``gan-inpaint``, ``deocclusion``): a DCGAN-style trunk of 4x4 stride-2 convs with
LeakyReLU(0.2) (no norm on the first conv), then two heads on the shared features:
``forward(x) -> (real_fake_logit (N, 1), expression_logits (N, num_classes))``. The real/fake head judges the
globally pooled map; the expression head reads the map pooled to a ``head_grid`` x ``head_grid`` layout and
flattened, because expression cues are where they are (a brow vs a lip corner): on the procedural benchmark
(48 px, width 16, depth 4, 400 steps of Adam 1e-3 on clean faces) global pooling reached 0.71 test accuracy,
the 3x3 layout 0.79 (depth 3 with global pooling: 0.33). In ``gan-inpaint`` the expression head is the deployed
classifier: :meth:`GANDiscriminator.as_classifier` gives a module that returns only the expression logits, for
export.

``feature_discriminator`` (``privileged``): tells teacher (clean-face) from student (occluded-face) mid-level
feature maps: ``forward(feats (N, C, h, w)) -> logit (N, 1)``. Build it with ``in_channels`` =
the student's ``feature_channels``.
"""

from __future__ import annotations

import torch
from torch import nn

from runtime.errors import ConfigError

from .common import check_image, conv_bn_act
from .registry import register_model


class GANDiscriminator(nn.Module):
    """Shared conv trunk, a real/fake head and an expression head.

    Args:
        num_classes: Number of expression classes.
        in_channels: Image channels.
        width: Channels of the first conv; layer i has ``width * 2**i`` (capped at ``8 * width``).
        depth: Number of stride-2 convs (4: a 64 px input ends at 4x4).
        norm: Norm after every conv but the first: ``batch``, ``instance`` or ``none``.
        dropout: Dropout before the expression head.
        head_grid: The expression head pools the trunk's map to ``head_grid`` x ``head_grid`` and flattens it.
            Set it to ``input_size / 2**depth`` (the map's own size, see :func:`discriminator_grid`); the ONNX
            export needs the map size to be a multiple of it.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 3,
        width: int = 64,
        depth: int = 4,
        norm: str = "batch",
        dropout: float = 0.0,
        head_grid: int = 4,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"discriminator depth must be >= 1, got {depth}")
        if head_grid < 1:
            raise ConfigError(f"discriminator head_grid must be >= 1, got {head_grid}")
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            cout = width * min(2**i, 8)
            layers += list(conv_bn_act(cin, cout, 4, 2, padding=1, norm="none" if i == 0 else norm, act="lrelu"))
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.real_fake = nn.Linear(cin, 1)
        self.expression = nn.Sequential(
            nn.AdaptiveAvgPool2d(head_grid),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(cin * head_grid * head_grid, num_classes),
        )
        self.min_size = 2**depth

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared trunk's output map ``(N, width * 2**(depth-1), H / 2**depth, W / 2**depth)``."""
        check_image(x, self.in_channels, min_size=self.min_size)
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real_fake_logit (N, 1), expression_logits (N, num_classes))``."""
        feats = self.features(x)
        return self.real_fake(self.pool(feats)), self.expression(feats)

    def as_classifier(self) -> nn.Module:
        """A module sharing these weights whose ``forward(x)`` returns only the expression logits."""
        return _ExpressionOnly(self)


class _ExpressionOnly(nn.Module):
    def __init__(self, disc: GANDiscriminator) -> None:
        super().__init__()
        self.disc = disc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.disc.expression(self.disc.features(x))


class FeatureDiscriminator(nn.Module):
    """Conv 3x3 -> ``depth`` x (conv 3x3 stride 2) with LeakyReLU(0.2), global pooling, FC -> (N, 1) logit.

    Args:
        in_channels: Channels of the feature map it judges (the student's ``feature_channels``).
        width: Channels of its convs.
        depth: Number of stride-2 convs.
        norm: ``batch``, ``instance`` or ``none`` (default: no norm, so the two feature sources are judged
            sample by sample).
    """

    def __init__(self, in_channels: int = 256, width: int = 128, depth: int = 2, norm: str = "none") -> None:
        super().__init__()
        self.in_channels = in_channels
        layers = list(conv_bn_act(in_channels, width, 3, norm="none", act="lrelu"))
        for _ in range(depth):
            layers += list(conv_bn_act(width, width, 3, 2, norm=norm, act="lrelu"))
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Real (teacher) vs fake (student) logit ``(N, 1)`` for a feature map ``(N, in_channels, h, w)``."""
        check_image(feats, self.in_channels, name="feature map")
        return self.net(feats)


@register_model("gan_discriminator", kind="discriminator", default_input=(3, 64, 64), num_classes=7, in_channels=3)
def gan_discriminator(
    num_classes: int = 7,
    in_channels: int = 3,
    width: int = 64,
    depth: int = 4,
    norm: str = "batch",
    dropout: float = 0.0,
    head_grid: int = 4,
) -> GANDiscriminator:
    """GAN discriminator with a real/fake head and an expression head on shared features."""
    return GANDiscriminator(num_classes, in_channels, width, depth, norm, dropout, head_grid)


def discriminator_grid(input_size: int, depth: int = 4) -> int:
    """The size of ``gan_discriminator``'s last map for a square ``input_size`` input (its natural ``head_grid``)."""
    return max(1, input_size // 2**depth)  # each 4x4 stride-2 conv (padding 1) floors the size by half


@register_model("feature_discriminator", kind="feature_discriminator", default_input=(256, 16, 16), in_channels=256)
def feature_discriminator(
    in_channels: int = 256, width: int = 128, depth: int = 2, norm: str = "none"
) -> FeatureDiscriminator:
    """Feature discriminator; the default input is resnet18's ``features`` map for a 64 px face."""
    return FeatureDiscriminator(in_channels, width, depth, norm)
