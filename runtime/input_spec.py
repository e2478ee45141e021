"""The model input: how a face crop becomes the tensor a model takes — one description for training, export and
serving (:mod:`runtime.preprocess` applies it).

Manifest form (the bundle's ``input`` section, :meth:`InputSpec.to_json` / :meth:`InputSpec.from_json`)::

    {"size": [64, 64],                      # [height, width]
     "channels": 1, "color": "gray",        # gray | bgr | rgb
     "layout": "NCHW",                      # NCHW | NHWC
     "scale": 0.00392156862745098,          # x = (pixel * scale - mean) / std
     "mean": [0.5], "std": [0.5],           # one value, or one per channel
     "crop_margin": 0.075,                  # fraction of the face box added on each side
     "crop_offset": [0.0, -0.09]}           # crop centre shift, fractions of box width/height

Short form (training configs written before the one spec, and ``--spec`` files may use it):
``{"size": 48, "channels": 1, "mean": 0.5, "std": 0.5, "color": "rgb"}`` — a square input, scale 1/255, one
mean/std for every channel, ``color`` the order of 3-channel inputs (``gray`` when ``channels`` is 1) and the
default detector's crop geometry (:data:`DEFAULT_CROP_MARGIN`, :data:`DEFAULT_CROP_OFFSET`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .errors import BundleError, ConfigError, OferError
from .manifest_json import is_int, is_num

COLORS = {"gray": 1, "bgr": 3, "rgb": 3}
LAYOUTS = ("NCHW", "NHWC")
MAX_SIZE = 8192  # input.size limit, pixels per side
#: Face-crop geometry that matches the default detector's boxes (the shipped default bundle's, tuned to BlazeFace):
#: what a model trained on dataset face crops is deployed with unless its spec says otherwise.
DEFAULT_CROP_MARGIN = 0.075
DEFAULT_CROP_OFFSET = (0.0, -0.09)
_SHORT_KEYS = ("size", "channels", "mean", "std", "color")


@dataclass(frozen=True)
class InputSpec:
    """How a face crop is turned into a model's input tensor.

    Attributes:
        size: ``(height, width)`` in pixels.
        channels: 1 (``gray``) or 3 (``bgr``/``rgb``); must match ``color``.
        color: ``gray``, ``bgr`` or ``rgb``: the crop's channel order.
        scale, mean, std: ``x = (pixel * scale - mean) / std``; mean/std one value or one per channel.
        crop_margin: Fraction of the face box added on each side before cropping a frame.
        layout: ``NCHW`` or ``NHWC``.
        crop_offset: Crop centre shift ``(dx, dy)`` as fractions of the box width/height (negative dy = up).

    Raises:
        ConfigError: On construction with values :meth:`from_json` would refuse.
    """

    size: tuple[int, int]
    channels: int
    color: str
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    crop_margin: float = 0.0
    layout: str = "NCHW"
    crop_offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "size", (int(self.size[0]), int(self.size[1])))
            set_(self, "mean", tuple(float(x) for x in self.mean))
            set_(self, "std", tuple(float(x) for x in self.std))
            set_(self, "crop_offset", (float(self.crop_offset[0]), float(self.crop_offset[1])))
            set_(self, "scale", float(self.scale))
            set_(self, "crop_margin", float(self.crop_margin))
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"invalid input spec: {exc}") from None
        _validate(self.to_json(), "InputSpec", ConfigError, "invalid input spec")

    @classmethod
    def square(
        cls,
        size: int,
        channels: int = 1,
        *,
        color: str = "rgb",
        mean: float = 0.5,
        std: float = 0.5,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        crop_offset: tuple[float, float] = DEFAULT_CROP_OFFSET,
    ) -> "InputSpec":
        """A square input at scale 1/255, the same mean/std for every channel (what training makes by default).

        ``color`` is the order of 3-channel inputs (``rgb``/``bgr``); 1 channel is always ``gray``. The crop
        geometry defaults to the default detector's.
        """
        if channels not in (1, 3):
            raise ConfigError(f"input channels must be 1 (grey) or 3 (colour), got {channels}")
        if color not in ("rgb", "bgr"):
            raise ConfigError(f"input colour order must be 'rgb' or 'bgr', got {color!r}")
        return cls(
            (size, size),
            channels,
            "gray" if channels == 1 else color,
            1 / 255,
            (mean,) * channels,
            (std,) * channels,
            crop_margin,
            "NCHW",
            crop_offset,
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest form (JSON-serialisable)."""
        return {
            "size": list(self.size),
            "channels": self.channels,
            "color": self.color,
            "layout": self.layout,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "crop_margin": self.crop_margin,
            "crop_offset": list(self.crop_offset),
        }

    to_dict = to_json  # the name bundles and checkpoints used before ``to_json``

    @classmethod
    def from_json(cls, d: Any, where: str = "input") -> "InputSpec":
        """Read a bundle manifest's ``input`` section strictly (manifest form only; missing ``layout``,
        ``crop_margin`` and ``crop_offset`` are NCHW, 0 and [0, 0]).

        Raises:
            BundleError: ``invalid bundle manifest (<where>): ...`` naming the bad field.
        """
        return _build(_validate(d, where, BundleError, "invalid bundle manifest"))


def parse_input_spec(value: Any, where: str) -> InputSpec:
    """An input spec from user configuration (``--spec`` files, training configs, checkpoints): the manifest form
    or the short form (see the module docstring); an :class:`InputSpec` passes through.

    Raises:
        ConfigError: ``invalid input spec (<where>): ...`` naming the bad field and what it must be.
    """
    if isinstance(value, InputSpec):
        return value
    if isinstance(value, Mapping) and is_int(value.get("size")):
        extra = sorted(set(value) - set(_SHORT_KEYS))
        if extra:
            raise ConfigError(
                f"invalid input spec ({where}): unknown keys {extra} in the short form "
                f"{list(_SHORT_KEYS)}; give size as [height, width] for the full form"
            )
        channels = value.get("channels", 1)
        color = value.get("color", "rgb")
        color = "gray" if channels == 1 and color in ("rgb", "bgr", "gray") else color
        n = channels if channels in (1, 3) else 1  # a bad channel count is reported below, by name
        value = {
            "size": [value["size"]] * 2,
            "channels": channels,
            "color": color,
            "scale": 1 / 255,
            "mean": [value.get("mean", 0.5)] * n,
            "std": [value.get("std", 0.5)] * n,
            "crop_margin": DEFAULT_CROP_MARGIN,
            "crop_offset": list(DEFAULT_CROP_OFFSET),
        }
    return _build(_validate(value, where, ConfigError, "invalid input spec"))


def _build(d: Mapping[str, Any]) -> InputSpec:
    offset = d.get("crop_offset", [0.0, 0.0])
    return InputSpec(
        (d["size"][0], d["size"][1]),
        d["channels"],
        d["color"],
        float(d["scale"]),
        tuple(float(x) for x in d["mean"]),
        tuple(float(x) for x in d["std"]),
        float(d.get("crop_margin", 0.0)),
        d.get("layout", "NCHW"),
        (float(offset[0]), float(offset[1])),
    )


def _validate(d: Any, where: str, error: type[OferError], prefix: str) -> Mapping[str, Any]:
    """Check the manifest form field by field; the first problem raises ``error('<prefix> (<where>): ...')``."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise error(f"{prefix} ({where}): {what}")

    need(isinstance(d, Mapping), "'input' must be an object")
    for key in ("size", "channels", "color", "scale", "mean", "std"):
        need(key in d, f"'input' is missing '{key}'")
    size = d["size"]
    need(
        isinstance(size, (list, tuple)) and len(size) == 2 and all(is_int(s) and 0 < s <= MAX_SIZE for s in size),
        f"'input.size' must be [height, width] integers in 1..{MAX_SIZE}, got {size!r}"[:300],
    )
    color = d["color"]
    need(
        isinstance(color, str) and color in COLORS,
        f"'input.color' must be one of {sorted(COLORS)}, got {color!r}"[:300],
    )
    channels = d["channels"]
    need(
        is_int(channels) and channels == COLORS[color],
        f"'input.channels' is {channels!r} but color {color!r} has {COLORS[color]}"[:300],
    )
    mean, std = d["mean"], d["std"]
    for nm, v in (("mean", mean), ("std", std)):
        need(
            isinstance(v, (list, tuple)) and len(v) in (1, channels) and all(is_num(x) for x in v),
            f"'input.{nm}' must be a list of 1 or {channels} numbers, got {v!r}"[:300],
        )
    need(all(s > 0 for s in std), "'input.std' values must be > 0")
    need(is_num(d["scale"]) and d["scale"] > 0, "'input.scale' must be a positive number")
    margin = d.get("crop_margin", 0.0)
    need(is_num(margin) and 0 <= margin <= 1, "'input.crop_margin' must be in [0, 1]")
    layout = d.get("layout", "NCHW")
    need(isinstance(layout, str) and layout in LAYOUTS, f"'input.layout' must be NCHW or NHWC, got {layout!r}"[:300])
    offset = d.get("crop_offset", [0.0, 0.0])
    need(
        isinstance(offset, (list, tuple)) and len(offset) == 2 and all(is_num(v) and abs(v) <= 1 for v in offset),
        f"'input.crop_offset' must be [dx, dy] fractions of the box size in [-1, 1], got {offset!r}"[:300],
    )
    return d
