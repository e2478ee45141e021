"""Building blocks shared by the models: conv-norm-activation, classifier heads, input checks, padding.

Every classifier in this package derives from :class:`FeatureClassifier`, which splits the network at a
documented mid-level feature map so that the ``privileged`` method can put its feature discriminator and
reconstruction decoder on it without running the network twice::

    feats = model.features(x)                 # (N, model.feature_channels, H / stride, W / stride)
    logits = model.classify_features(feats)   # (N, num_classes); model(x) gives the same
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import ConfigError, InputError

NORMS = ("batch", "instance", "none")
ACTIVATIONS = ("relu", "lrelu", "none")
OUTPUTS = ("tanh", "sigmoid", "linear")


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """``channels * width`` rounded to an int, never below ``minimum``."""
    if width <= 0:
        raise ConfigError(f"width multiplier must be > 0, got {width}; use e.g. 0.25, 0.5 or 1.0")
    return max(minimum, int(round(channels * width)))


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer: ``batch``, ``instance`` (affine) or ``none`` (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def make_act(kind: str) -> nn.Module:
    """An activation: ``relu``, ``lrelu`` (slope 0.2, the GAN default) or ``none`` (identity)."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown activation {kind!r}; choose one of {', '.join(ACTIVATIONS)}")


def make_output(kind: str) -> nn.Module:
    """The output range of an image generator: ``tanh`` ([-1, 1]), ``sigmoid`` ([0, 1]) or ``linear``."""
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "linear":
        return nn.Identity()
    raise ConfigError(f"unknown output {kind!r}; choose one of {', '.join(OUTPUTS)} (match the input normalisation)")


def conv_bn_act(
    cin: int,
    cout: int,
    kernel: int = 3,
    stride: int = 1,
    *,
    norm: str = "batch",
    act: str = "relu",
    padding: int | None = None,
) -> nn.Sequential:
    """Conv2d (no bias when a norm follows) -> norm -> activation, 'same' padding by default."""
    pad = kernel // 2 if padding is None else padding
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, pad, bias=norm == "none"), make_norm(norm, cout), make_act(act)
    )


def deconv_bn_act(cin: int, cout: int, *, stride: int = 2, norm: str = "batch", act: str = "relu") -> nn.Sequential:
    """Fractional-strided (transposed) conv: kernel 4 / stride 2 doubles H and W; stride 1 keeps them (kernel 3)."""
    if stride not in (1, 2):
        raise ConfigError(f"transposed-conv stride must be 1 or 2, got {stride}")
    kernel = 4 if stride == 2 else 3
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, kernel, stride, 1, bias=norm == "none"), make_norm(norm, cout), make_act(act)
    )


class ClassifierHead(nn.Module):
    """Adaptive average pooling -> flatten -> [FC -> ReLU -> dropout] -> FC to ``num_classes`` logits.

    ``pool_size`` > 1 keeps a coarse spatial layout (VGG style); note that the legacy ONNX exporter then needs
    the incoming map size to be a multiple of ``pool_size``. ``pool_size=1`` (global pooling) exports at any size.
    """

    def __init__(
        self, in_channels: int, num_classes: int, *, hidden: int = 0, dropout: float = 0.0, pool_size: int = 1
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        flat = in_channels * pool_size * pool_size
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()]
        if hidden > 0:
            layers += [nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            flat = hidden
        elif dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(flat, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def is_tracing() -> bool:
    """True while tracing for ONNX export (shapes are then fixed by the example input)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def check_image(x: torch.Tensor, channels: int, *, min_size: int = 1, name: str = "input") -> None:
    """Raise :class:`InputError` unless ``x`` is a float ``(N, channels, H, W)`` tensor with H, W >= ``min_size``.

    Skipped while tracing (ONNX export), where shapes are fixed by the example input.
    """
    if is_tracing():
        return
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise InputError(
            f"{name} must have shape (N, {channels}, H, W), got {tuple(x.shape)}; "
            f"convert the images to {channels} channel(s) or build the model with "
            f"in_channels={x.shape[1] if x.dim() == 4 else '?'}"
        )
    if not x.is_floating_point():
        raise InputError(f"{name} must be a float tensor, got {x.dtype}; normalise the images first")
    if min(x.shape[2], x.shape[3]) < min_size:
        raise InputError(
            f"{name} is {x.shape[2]}x{x.shape[3]} px, smaller than this model's minimum of "
            f"{min_size} px; resize the faces up"
        )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad H and W on the bottom/right up to the next multiple of ``multiple`` (no-op if already)."""
    pad_h = (-x.shape[2]) % multiple
    pad_w = (-x.shape[3]) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


class FeatureClassifier(nn.Module):
    """Base of the classifiers: ``forward(x) = classify_features(features(x))``.

    Subclasses set ``feature_channels`` and ``feature_stride`` (the channels and downsampling factor of the
    map ``features`` returns) and implement ``features`` and ``classify_features``.
    """

    in_channels: int
    num_classes: int
    feature_channels: int
    feature_stride: int
    min_size: int = 32

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def classify_features(self, feats: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, in_channels, H, W)`` with H, W >= ``min_size``."""
        check_image(x, self.in_channels, min_size=self.min_size)
        return self.classify_features(self.features(x))
