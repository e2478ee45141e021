"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018).

Channel attention (a shared MLP over the average- and max-pooled channel descriptors) followed by spatial
attention (a 7x7 conv over the channel-wise average and max maps). The ``cbam`` method puts one after every
residual block of ResNet-18 (see :func:`sdk.training.models.resnet.resnet18_cbam`).
"""

from __future__ import annotations

import torch
from torch import nn

from runtime.errors import ConfigError


class ChannelAttention(nn.Module):
    """``x * sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``; the MLP has ``channels // reduction`` hidden units."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ConfigError(f"CBAM reduction must be >= 1, got {reduction}")
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in (0, 1), shape ``(N, C, 1, 1)``."""
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv_kxk([mean_c(x), max_c(x)]))``."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"CBAM spatial kernel must be odd and >= 1, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-position weights in (0, 1), shape ``(N, 1, H, W)``."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class CBAM(nn.Module):
    """Channel attention then spatial attention (the sequential, channel-first order of the paper)."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
