"""The inpainting (de-occlusion) generator of the ``gan-inpaint`` and ``deocclusion`` methods.

A fully convolutional encoder/decoder: the encoder is ``depth`` VGG-style stages (two 3x3 conv-BN-ReLU, then
2x2 max-pooling), a two-conv bottleneck, and the decoder mirrors it with fractional-strided (transposed) convs,
optionally concatenating the encoder stage of the same size (U-Net style skip connections).

Inputs, ``forward(image, mask=None)``:
    image: ``(N, C, H, W)`` occluded face, in the training normalisation (``[-1, 1]`` for ``output="tanh"``).
    mask:  ``(N, 1, H, W)`` float, **1 where the face is occluded** (to be filled in), 0 where it is visible.
           Required when the model was built with ``use_mask=True`` (it is then concatenated to the image as an
           extra input channel); optional otherwise (it is then only used for blending).
Output: ``(N, C, H, W)`` in the range of ``output`` (``tanh``: [-1, 1]). Any H, W works: the input is
replicate-padded to a multiple of ``2 ** depth`` and the output cropped back. With ``blend=True`` and a mask,
the output is ``mask * generated + (1 - mask) * image``, so visible pixels are passed through exactly.
ONNX: export with inputs ``(image, mask)`` when ``use_mask`` (or ``blend``) is on; the padding and cropping
are traced for the export size, so make only the batch axis dynamic.
"""

from __future__ import annotations

import torch
from torch import nn

from runtime.errors import ConfigError, InputError

from .common import check_image, conv_bn_act, deconv_bn_act, is_tracing, make_output, pad_to_multiple
from .registry import register_model


def _double_conv(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(*conv_bn_act(cin, cout, 3, norm=norm), *conv_bn_act(cout, cout, 3, norm=norm))


class Inpainter(nn.Module):
    """Encoder/decoder inpainting generator (see module doc for the inputs and outputs).

    Args:
        in_channels: Image channels C (the output has C channels too).
        use_mask: Feed the occlusion mask as an extra input channel (C + 1 input channels).
        width: Channels of the first encoder stage; stage i has ``width * 2**i``.
        depth: Number of downsampling stages (the input is padded to a multiple of ``2**depth``).
        skip: U-Net skip connections from each encoder stage to the decoder stage of the same size.
        blend: When a mask is given, keep the input's visible pixels and only fill the occluded ones.
        output: Output activation: ``tanh`` ([-1, 1] images), ``sigmoid`` ([0, 1]) or ``linear``.
        norm: ``batch``, ``instance`` or ``none``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        use_mask: bool = True,
        width: int = 32,
        depth: int = 3,
        skip: bool = True,
        blend: bool = True,
        output: str = "tanh",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"inpainter depth must be >= 1, got {depth}")
        self.in_channels, self.use_mask, self.depth, self.skip, self.blend = in_channels, use_mask, depth, skip, blend
        widths = [width * 2**i for i in range(depth)]
        self.encoder = nn.ModuleList()
        cin = in_channels + int(use_mask)
        for c in widths:
            self.encoder.append(_double_conv(cin, c, norm))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(cin, cin * 2, norm)
        cin *= 2
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for c in reversed(widths):
            self.up.append(deconv_bn_act(cin, c, norm=norm))
            self.fuse.append(_double_conv(c * (2 if skip else 1), c, norm))
            cin = c
        self.to_image = nn.Sequential(nn.Conv2d(cin, in_channels, 3, padding=1), make_output(output))

    def _check(self, image: torch.Tensor, mask: torch.Tensor | None) -> None:
        check_image(image, self.in_channels, name="image")
        if mask is None:
            if self.use_mask:
                raise InputError(
                    "this inpainter was built with use_mask=True: pass forward(image, mask) with "
                    "mask (N, 1, H, W), 1 where the face is occluded"
                )
            return
        check_image(mask, 1, name="mask")
        if not is_tracing() and (mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]):
            raise InputError(
                f"mask {tuple(mask.shape)} does not match image {tuple(image.shape)}; "
                "pass one (N, 1, H, W) mask per image, same H and W"
            )

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The de-occluded image ``(N, C, H, W)``; see the module doc for ``mask``."""
        self._check(image, mask)
        height, width = image.shape[2], image.shape[3]
        x = torch.cat([image, mask], dim=1) if self.use_mask and mask is not None else image
        x = pad_to_multiple(x, 2**self.depth)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips), strict=True):
            x = up(x)
            x = fuse(torch.cat([x, skip], dim=1) if self.skip else x)
        out = self.to_image(x)[:, :, :height, :width]
        if self.blend and mask is not None:
            out = mask * out + (1 - mask) * image
        return out


@register_model("inpainter", kind="inpainter", default_input=(3, 64, 64), in_channels=3, use_mask=True)
def inpainter(
    in_channels: int = 3,
    use_mask: bool = True,
    width: int = 16,
    depth: int = 3,
    skip: bool = True,
    blend: bool = True,
    output: str = "tanh",
    norm: str = "batch",
) -> Inpainter:
    """Inpainting generator; input image ``default_input`` plus, with ``use_mask``, a ``(N, 1, H, W)`` mask.

    The default width 16 (0.61 M parameters) runs in ~4.4 ms per 64x64 gray face on one CPU core with ONNX Runtime,
    which keeps inpaint-then-classify above 80 faces/s on 2 cores; width 32 (2.44 M) costs ~15.5 ms
    (``benchmarks/streaming.py``).
    """
    return Inpainter(in_channels, use_mask, width, depth, skip, blend, output, norm)
