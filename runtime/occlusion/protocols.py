"""Occlusion protocol specs: parsing, the list of valid specs and the standard mixes.

A protocol is written as one string, ``KIND[:PARAM][@FILL]``, for example ``clean``, ``random_box:0.3``,
``r16@noise``, ``upper_half@gray`` or ``textured:hand``. The fill is part of the spec (there is no separate
``fill=`` argument), so a spec string alone reproduces an evaluation number. Fills apply to the geometric
kinds only (default ``black``); textured occluders bring their own texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from runtime.errors import ConfigError

FILLS: Final = ("black", "gray", "color", "noise")
BOX_KINDS: Final = ("random_box", "r8", "r16", "r24", "eyes", "mouth", "upper_half", "lower_half")
TEXTURES: Final = ("hand", "cup", "patch")
#: Realistic occluders placed from face keypoints (:mod:`runtime.occlusion.realistic`); each is a protocol name.
REALISTIC_KINDS: Final[tuple[str, ...]] = ("headset", "sunglasses", "mask", "hand", "cup", "phone")
RANDOM_BOX_RANGE: Final = (0.1, 0.7)

_DESCRIPTIONS: Final[dict[str, str]] = {
    "clean": "no occlusion",
    "random_box:F": "one random box covering fraction F (0.1-0.7) of the face region",
    "r8": "one 8x8 box on a 48-px face, scaled to the input size, placed at random",
    "r16": "one 16x16 box on a 48-px face, scaled, placed at random",
    "r24": "one 24x24 box on a 48-px face, scaled, placed at random",
    "eyes": "band over both eyes and lids",
    "mouth": "band over the mouth and jaw opening",
    "upper_half": "upper half of the crop (VR headset)",
    "lower_half": "lower half of the crop (medical mask)",
    "random_shapes": "1-4 random rectangles and circles",
    "textured:hand": "hand-like occluder with skin texture and finger gaps",
    "textured:cup": "cup-like occluder (body, rim, handle, stripe)",
    "textured:patch": "patch cut from caller-supplied images, else a built-in procedural texture",
    "headset": "VR headset placed from keypoints: visor wider than the face, brows to below the eyes, straps",
    "sunglasses": "sunglasses placed from keypoints: tinted lenses over the eyes, frame, reflections",
    "mask": "surgical or cloth face mask placed from keypoints: nose bridge to chin, ear loops",
    "hand": "hand placed from keypoints over the mouth, a cheek or the eyes (skin tones, fingers)",
    "cup": "cup or mug held in front of the mouth, placed from keypoints",
    "phone": "phone held in front of the lower face, placed from keypoints",
}

#: The standard evaluation list every trainer reports.
EVAL_PROTOCOLS: Final[tuple[str, ...]] = (
    "clean",
    "random_box:0.1",
    "random_box:0.2",
    "random_box:0.3",
    "random_box:0.4",
    "random_box:0.5",
    "random_box:0.6",
    "random_box:0.7",
    "r8",
    "r16",
    "r24",
    "eyes",
    "mouth",
    "upper_half",
    "lower_half",
)

#: The realistic occluders as evaluation protocols (kept out of ``EVAL_PROTOCOLS`` so that existing tables, held-out
#: set sizes and their tests keep their meaning; evaluate them with ``EVAL_PROTOCOLS + REALISTIC_PROTOCOLS``).
REALISTIC_PROTOCOLS: Final[tuple[str, ...]] = REALISTIC_KINDS

#: Default stratified mix for INT8 calibration: (spec, share); shares sum to 1.
CALIBRATION_MIX: Final[tuple[tuple[str, float], ...]] = (
    ("clean", 0.25),
    ("upper_half", 0.15),
    ("lower_half", 0.10),
    ("eyes", 0.05),
    ("mouth", 0.05),
    ("random_box:0.3", 0.10),
    ("random_box:0.5", 0.05),
    ("r16", 0.05),
    ("r24", 0.05),
    ("random_shapes@noise", 0.05),
    ("textured:hand", 0.05),
    ("textured:patch", 0.05),
)


@dataclass(frozen=True)
class Protocol:
    """A parsed occlusion protocol.

    Attributes:
        kind: ``clean``, one of ``BOX_KINDS``, ``random_shapes``, ``textured`` or one of ``REALISTIC_KINDS``.
        fraction: face-area fraction for ``random_box``, else ``None``.
        texture: ``hand``/``cup``/``patch`` for ``textured``, else ``None``.
        fill: one of ``FILLS`` for geometric kinds, ``None`` for ``clean``/``textured``/realistic kinds.
    """

    kind: str
    fraction: float | None = None
    texture: str | None = None
    fill: str | None = None

    @property
    def spec(self) -> str:
        """The canonical spec string (``parse_protocol(p.spec) == p``)."""
        s = self.kind
        if self.fraction is not None:
            s += f":{self.fraction:g}"
        if self.texture is not None:
            s += f":{self.texture}"
        if self.fill is not None and self.fill != "black":
            s += f"@{self.fill}"
        return s

    def __str__(self) -> str:
        return self.spec


def list_protocols() -> dict[str, str]:
    """Valid spec forms mapped to a one-line description (append ``@black|gray|color|noise`` to geometric ones)."""
    return dict(_DESCRIPTIONS)


def _bad(spec: object, why: str) -> ConfigError:
    valid = ", ".join(_DESCRIPTIONS)
    return ConfigError(
        f"invalid occlusion protocol {spec!r}: {why}. Valid specs: {valid}; "
        f"geometric kinds take an optional fill suffix @{'|@'.join(FILLS)} (e.g. 'upper_half@noise')."
    )


def parse_protocol(spec: str | Protocol) -> Protocol:
    """Parses ``KIND[:PARAM][@FILL]`` into a :class:`Protocol`.

    Raises:
        ConfigError: unknown kind, missing/extra/out-of-range parameter or unknown fill; the message lists
            the valid specs.
    """
    if isinstance(spec, Protocol):
        return spec
    if not isinstance(spec, str):
        raise _bad(spec, f"expected a string, got {type(spec).__name__}")
    text = spec.strip().lower()
    body, _, fill = text.partition("@")
    if "@" in text and fill not in FILLS:
        raise _bad(spec, f"unknown fill {fill!r}")
    kind, sep, param = body.partition(":")
    if kind in REALISTIC_KINDS:
        if "@" in text or sep:
            raise _bad(spec, f"'{kind}' takes no parameter or fill (it brings its own colours)")
        return Protocol(kind)
    if kind == "clean" or kind == "textured":
        if "@" in text:
            raise _bad(spec, f"'{kind}' takes no fill")
        if kind == "clean":
            if sep:
                raise _bad(spec, "'clean' takes no parameter")
            return Protocol("clean")
        if param not in TEXTURES:
            raise _bad(spec, f"texture must be one of {', '.join(TEXTURES)}")
        return Protocol("textured", texture=param)
    if kind not in BOX_KINDS and kind != "random_shapes":
        raise _bad(spec, f"unknown kind {kind!r}")
    fill = fill or "black"
    if kind == "random_box":
        try:
            fraction = float(param)
        except ValueError:
            raise _bad(spec, "random_box needs a face fraction, e.g. 'random_box:0.3'") from None
        lo, hi = RANDOM_BOX_RANGE
        if not lo - 1e-9 <= fraction <= hi + 1e-9:
            raise _bad(spec, f"random_box fraction must be in [{lo}, {hi}], got {fraction}")
        return Protocol(kind, fraction=round(fraction, 6), fill=fill)
    if sep:
        raise _bad(spec, f"'{kind}' takes no parameter")
    return Protocol(kind, fill=fill)
