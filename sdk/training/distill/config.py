"""The configuration of a distillation run and the occluder presets of the general and the headset student."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from runtime.errors import ConfigError


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths (0 switches one off).

    Attributes:
        flip: Probability of a horizontal flip.
        shift: Largest shift, as a fraction of the crop size.
        scale: Largest relative zoom in or out.
        rotate: Largest rotation in degrees.
        brightness: Largest brightness offset and relative contrast change (fraction of 255 / of 1).
        blur: Probability of a Gaussian blur (sigma 0.5-1.2 px).
    """

    flip: float = 0.5
    shift: float = 0.05
    scale: float = 0.08
    rotate: float = 8.0
    brightness: float = 0.2
    blur: float = 0.2

    def to_dict(self) -> dict[str, float]:
        """JSON form."""
        return asdict(self)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One random draw of the parameters."""
        u = rng.uniform
        return {
            "flip": rng.random() < self.flip,
            "dx": u(-self.shift, self.shift),
            "dy": u(-self.shift, self.shift),
            "zoom": 1 + u(-self.scale, self.scale),
            "angle": u(-self.rotate, self.rotate),
            "offset": u(-self.brightness, self.brightness) * 255,
            "gain": 1 + u(-self.brightness, self.brightness),
            "sigma": u(0.5, 1.2) if rng.random() < self.blur else 0.0,
        }


#: The general student's training occluders (realistic kinds + geometric bands + boxes; a share of clean faces).
GENERAL_PROTOCOLS: tuple[str, ...] = (
    "headset",
    "sunglasses",
    "mask",
    "hand",
    "cup",
    "phone",
    "upper_half",
    "lower_half",
    "eyes",
    "mouth",
    "random_box:0.3",
    "clean",
)
#: The headset student's occluders (the upper face covered).
HEADSET_PROTOCOLS: tuple[str, ...] = ("headset", "headset", "upper_half", "eyes")
PRESETS = {"general": GENERAL_PROTOCOLS, "headset": HEADSET_PROTOCOLS}
VAL_PROTOCOLS = {"general": ("headset", "hand", "mask", "sunglasses"), "headset": ("headset",)}
TERMS = ("soft", "clean", "lir", "adv", "rec", "label")
#: The inpaint route's terms: L1 over the crop, L1 on the covered region, adversarial (real/fake discriminator on the
#: clean crop vs the inpainted one), expression consistency (the frozen teacher on the inpainted vs the clean face).
INPAINT_TERMS = ("pixel", "hole", "adv", "expr")
ROUTES = ("student", "inpaint")
DEFAULT_WEIGHTS = {
    "student": {"soft": 1.0, "clean": 2.0, "lir": 0.5, "adv": 0.0, "rec": 0.0, "label": 1.0},
    "inpaint": {"pixel": 1.0, "hole": 1.0, "adv": 0.01, "expr": 1.0},
}


@dataclass
class DistillConfig:
    """Everything that defines a distillation run (stored in the checkpoint)."""

    teacher: str
    data: str
    val_data: str | None = None
    teacher_model: str = "mini_xception"
    student_model: str | None = None  # None: a copy of the teacher
    preset: str = "general"
    protocols: tuple[str, ...] | None = None  # None: the preset's
    val_protocols: tuple[str, ...] | None = None
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-4
    temperature: float = 2.0
    weights: dict[str, float] | None = None  # None: the route's DEFAULT_WEIGHTS; given terms over zeros otherwise
    route: str = "student"  # student: a direct classifier; inpaint: a de-occluder in front of the frozen teacher
    inpainter_width: int = 16  # the registry ``inpainter``'s first-stage channels (route inpaint)
    label_mix: float = 0.5
    clean_floor: float = 0.97
    patience: int = 3
    min_epochs: int = 4  # no early stop before this many epochs (clean agreement often dips, then recovers)
    freeze_bn: bool = True
    clean_share: float = 0.5  # share of each batch's clean faces the clean term uses
    balance: float = 0.5  # sampling weight of a face = 1 / (faces of its person) ** balance (0: uniform)
    cache_teacher: bool = True  # targets from the teacher on the un-augmented (and flipped) clean crop, computed once
    augment: dict[str, float] = field(default_factory=lambda: Augment().to_dict())
    max_steps: int | None = None  # per epoch
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available), cpu or cuda[:i]
    workers: int = 0  # data-loader worker processes (occluding and augmenting run there)

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ConfigError(f"--route must be one of {', '.join(ROUTES)}, got {self.route!r}")
        if self.preset not in PRESETS:
            raise ConfigError(
                f"--protocols preset must be one of {', '.join(PRESETS)} or a comma list of protocols, "
                f"got {self.preset!r}"
            )
        terms = self.terms
        given = DEFAULT_WEIGHTS[self.route] if self.weights is None else self.weights
        unknown = set(given) - set(terms)
        if unknown:
            raise ConfigError(
                f"unknown loss term(s) {sorted(unknown)} for route {self.route}; terms: {', '.join(terms)}"
            )
        self.weights = {**{t: 0.0 for t in terms}, **{k: float(v) for k, v in given.items()}}
        needed = ("soft", "clean", "label") if self.route == "student" else ("pixel", "hole", "expr")
        if not any(self.weights[t] for t in needed):
            raise ConfigError(f"every output term ({', '.join(needed)}) is switched off; enable at least one")
        for name, v in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if not self.temperature > 0 or not self.lr > 0:
            raise ConfigError(f"temperature and lr must be > 0 (got {self.temperature}, {self.lr})")

    @property
    def terms(self) -> tuple[str, ...]:
        """The loss terms of this run's route."""
        return TERMS if self.route == "student" else INPAINT_TERMS

    @property
    def train_protocols(self) -> tuple[str, ...]:
        return tuple(self.protocols or PRESETS[self.preset])

    @property
    def held_out_protocols(self) -> tuple[str, ...]:
        return tuple(self.val_protocols or VAL_PROTOCOLS[self.preset])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocols"], d["val_protocols"] = list(self.train_protocols), list(self.held_out_protocols)
        return d
