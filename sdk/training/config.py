"""Training configuration: what a run needs, in one JSON-serialisable dataclass."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import ConfigError


@dataclass
class InputSpec:
    """How a face crop becomes a model input.

    Images are resized to ``size`` x ``size``, converted to ``channels`` (1 = grey, 3 = BGR), scaled to [0, 1]
    and normalised as ``(x - mean) / std``; 3-channel inputs are in ``color`` order (``rgb`` or ``bgr``, as
    ``sdk.training.data.torch_dataset``). The default mean/std 0.5 maps pixels to [-1, 1], the range of the
    inpainter's tanh output, so an inpainted image is directly a valid classifier input.
    """

    size: int = 48
    channels: int = 1
    mean: float = 0.5
    std: float = 0.5
    color: str = "rgb"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"input channels must be 1 (grey) or 3 (colour), got {self.channels}")
        if self.size < 8:
            raise ConfigError(f"input size must be >= 8 px, got {self.size}")
        if self.color not in ("rgb", "bgr"):
            raise ConfigError(f"input colour order must be 'rgb' or 'bgr', got {self.color!r}")
        if not self.std > 0:
            raise ConfigError(f"input std must be > 0, got {self.std}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dataclasses.asdict(self)

    def to_bundle_input(self, crop_margin: float = 0.0) -> dict[str, Any]:
        """The equivalent ``input`` section of a bundle manifest (``runtime.bundle``)."""
        return {"size": [self.size, self.size], "channels": self.channels,
                "color": "gray" if self.channels == 1 else self.color, "layout": "NCHW", "scale": 1 / 255,
                "mean": [self.mean] * self.channels, "std": [self.std] * self.channels, "crop_margin": crop_margin}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("size", "channels", "mean", "std", "color") if k in d})


#: The evaluation table's protocols unless a run says otherwise (training, and ``ofer eval`` of a bundle).
DEFAULT_EVAL_PROTOCOLS: tuple[str, ...] = ("clean", "upper_half", "lower_half", "eyes", "mouth", "r16",
                                           "random_box:0.3")


@dataclass
class TrainConfig:
    """Everything that defines a training run (written into every checkpoint).

    Attributes:
        method: Method id (``gan-inpaint``, ``deocclusion``, ``privileged``, ``cbam``, ``lower-half``, ``baseline``).
        data: Dataset spec for training (see ``runtime.datasets.spec``).
        model: Classifier registry name; ``None`` = the method's default.
        model_kwargs: Extra keyword arguments for every model the method creates, by role (``{"classifier": {...}}``).
        input: Input spec.
        epochs: Epochs per stage (``None`` = the method's defaults).
        max_steps: Optional cap on optimiser steps per stage (smoke tests, budgets).
        batch_size: Batch size per process.
        lr: Learning rate (Adam).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        seed: Seed of everything random (init, data order, occlusion, dropout).
        num_workers: DataLoader workers.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        amp: Mixed precision on CUDA (always off on CPU).
        channels_last: channels_last memory format on CUDA (always off on CPU).
        options: Method options (loss weights, switches); validated by the method.
        eval_protocols: Protocols of the final evaluation table (and of the held-out check after each epoch).
        val_limit: Held-out faces (from the ``val`` split) checked after each epoch; 0 = no per-epoch check.
    """

    method: str
    data: str
    model: str | None = None
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    input: InputSpec = field(default_factory=InputSpec)
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    eval_protocols: tuple[str, ...] = DEFAULT_EVAL_PROTOCOLS
    val_limit: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.val_limit < 0:
            raise ConfigError(f"val_limit must be >= 0 (0: no per-epoch check), got {self.val_limit}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max steps must be >= 1, got {self.max_steps}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.eval_protocols = tuple(self.eval_protocols)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["input"] = self.input.to_dict()
        d["betas"] = list(self.betas)
        d["eval_protocols"] = list(self.eval_protocols)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config keys {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("input"), dict):
            d["input"] = InputSpec.from_dict(d["input"])
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def parse_option_value(text: str) -> Any:
    """Parse ``--set key=value`` values: bools, ints, floats, comma lists, else the string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if "," in text:
        return [parse_option_value(t) for t in text.split(",") if t]
    return text


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``["a=1", "b=false"]`` into ``{"a": 1, "b": False}``; raise ``ConfigError`` on a malformed pair."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option {pair!r} is not KEY=VALUE (e.g. --set use_expr_loss=false)")
        out[key.strip()] = parse_option_value(value)
    return out
