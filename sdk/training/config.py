"""Training configuration: what a run needs, in one JSON-serialisable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import ConfigError
from runtime.input_spec import InputSpec, parse_input_spec


def default_train_input() -> InputSpec:
    """48 x 48 grey, ``(x / 255 - 0.5) / 0.5`` (pixels to [-1, 1], the range of the inpainter's tanh output, so an
    inpainted image is directly a valid classifier input), the default detector's crop geometry."""
    return InputSpec.square(48, 1)


#: The evaluation table's protocols unless a run says otherwise (training, and ``ofer eval`` of a bundle).
DEFAULT_EVAL_PROTOCOLS: tuple[str, ...] = (
    "clean",
    "upper_half",
    "lower_half",
    "eyes",
    "mouth",
    "r16",
    "random_box:0.3",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (written into every checkpoint).

    Attributes:
        method: Method id (``gan-inpaint``, ``deocclusion``, ``privileged``, ``cbam``, ``lower-half``, ``baseline``).
        data: Dataset spec for training (see ``runtime.datasets.spec``).
        model: Classifier registry name; ``None`` = the method's default.
        model_kwargs: Extra keyword arguments for every model the method creates, by role (``{"classifier": {...}}``).
        input: Input spec (:class:`runtime.input_spec.InputSpec`; square, NCHW); the dict forms of
            :func:`runtime.input_spec.parse_input_spec` are read too.
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
    input: InputSpec = field(default_factory=default_train_input)
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
        self.input = parse_input_spec(self.input, "training config 'input'")
        h, w = self.input.size
        if h != w or h < 8:
            raise ConfigError(f"training needs a square input of at least 8 px, got {h}x{w}")
        if self.input.layout != "NCHW":
            raise ConfigError(f"training models take NCHW input, the spec says {self.input.layout}")
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
        d["input"] = self.input.to_json()
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
