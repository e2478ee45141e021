"""The reconstruction decoder of the ``privileged`` method: student features -> clean face.

Three transposed convs map the student's mid-level feature map ``(N, C, h, w)`` back to an image
``(N, out_channels, H, W)``. The first ``log2(upsample)`` of them have stride 2 (kernel 4) and double the size,
the others have stride 1 (kernel 3); set ``upsample`` to the student's ``feature_stride``. If ``out_size`` is
given and the result differs from it (input sizes that are not a multiple of the stride), it is bilinearly
resized to ``out_size``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import ConfigError

from .common import check_image, deconv_bn_act, make_output
from .registry import register_model


class ReconstructionDecoder(nn.Module):
    """Three transposed convs (the last without norm/activation) then the output activation.

    Args:
        in_channels: Channels of the feature map (the student's ``feature_channels``).
        out_channels: Image channels.
        upsample: Total upsampling, 1, 2, 4 or 8 (the student's ``feature_stride``).
        hidden: Channels after the first and second transposed convs.
        out_size: Output ``(H, W)``, or ``None`` for ``upsample * (h, w)``.
        output: ``tanh`` ([-1, 1] images), ``sigmoid`` ([0, 1]) or ``linear``.
        norm: ``batch``, ``instance`` or ``none``.
    """

    def __init__(
        self,
        in_channels: int = 256,
        out_channels: int = 3,
        upsample: int = 4,
        hidden: tuple[int, int] = (128, 64),
        out_size: tuple[int, int] | None = (64, 64),
        output: str = "tanh",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if upsample not in (1, 2, 4, 8):
            raise ConfigError(f"decoder upsample must be 1, 2, 4 or 8 (three transposed convs), got {upsample}")
        self.in_channels = in_channels
        self.out_size = tuple(out_size) if out_size is not None else None
        n_up = int(math.log2(upsample))
        strides = [2 if i < n_up else 1 for i in range(3)]
        chans = [in_channels, *hidden]
        self.net = nn.Sequential(
            deconv_bn_act(chans[0], chans[1], stride=strides[0], norm=norm),
            deconv_bn_act(chans[1], chans[2], stride=strides[1], norm=norm),
            deconv_bn_act(chans[2], out_channels, stride=strides[2], norm="none", act="none"),
            make_output(output),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """The reconstructed image ``(N, out_channels, H, W)``."""
        check_image(feats, self.in_channels, name="feature map")
        out = self.net(feats)
        if self.out_size is not None and tuple(out.shape[2:]) != self.out_size:
            out = F.interpolate(out, size=self.out_size, mode="bilinear", align_corners=False)
        return out


@register_model(
    "reconstruction_decoder",
    kind="decoder",
    default_input=(256, 16, 16),
    in_channels=256,
    upsample=4,
    out_size=(64, 64),
)
def reconstruction_decoder(
    in_channels: int = 256,
    out_channels: int = 3,
    upsample: int = 4,
    hidden: tuple[int, int] = (128, 64),
    out_size: tuple[int, int] | None = (64, 64),
    output: str = "tanh",
    norm: str = "batch",
) -> ReconstructionDecoder:
    """Decoder from resnet18's 64 px ``features`` map (256 x 16 x 16) back to a 3 x 64 x 64 image by default."""
    return ReconstructionDecoder(in_channels, out_channels, upsample, hidden, out_size, output, norm)
