"""What a training method declares: its modules, stages, loss terms and export plan (see :mod:`.loop`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from runtime.errors import ConfigError

from .augment import OcclusionMix
from .config import TrainConfig

Batch = dict[str, torch.Tensor]
Models = dict[str, nn.Module]

#: Extra advice when an option is given for a module a method does not have.
ROLE_HINTS: dict[tuple[str, str], str] = {
    ("gan-inpaint", "classifier"): "; gan-inpaint's classifier is its discriminator's expression head: set its "
    "size with --disc-width/--disc-depth",
}


def size_defaults(registry: str, size: int) -> dict[str, Any]:
    """Model defaults that fit the input size, so that a first run is neither hung nor starved.

    ResNet-18 (with or without CBAM) at 48-64 px: a stride-2 3x3 stem and width 32 (the ImageNet width 64 with a
    stride-1 stem costs ~16x as much per step: ~17 s per batch of 64 on a 2-core CPU); up to 128 px: stride-2
    stem, width 64; larger: the ImageNet 7x7 stem. The GAN discriminator: width 32 up to 64 px. Explicit
    ``model_kwargs`` always win.
    """
    if registry in ("resnet18", "resnet18_cbam"):
        if size <= 64:
            return {"stem": "3x3s2", "width": 32}
        return {"stem": "3x3s2", "width": 64} if size <= 128 else {"stem": "7x7", "width": 64}
    if registry == "gan_discriminator" and size <= 64:
        return {"width": 32}
    return {}


@dataclass(frozen=True)
class ModelSpec:
    """A module of a method: registry name and constructor kwargs (JSON-serialisable)."""

    registry: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportPlan:
    """What a trained method deploys: the runtime pipeline and which module plays which engine role.

    ``classifier_output`` selects an element when the classifier module returns a tuple (the GAN discriminator).
    """

    pipeline: str  # "direct" or "inpaint"
    classifier: str
    inpainter: str | None = None
    classifier_output: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "pipeline": self.pipeline,
            "classifier": self.classifier,
            "inpainter": self.inpainter,
            "classifier_output": self.classifier_output,
        }


@dataclass
class Stage:
    """One training stage.

    Attributes:
        name: Shown in logs and progress bars.
        epochs: Epochs of this stage.
        groups: Optimiser name -> modules it trains. ``main`` gets ``Method.losses``; ``disc`` (optional) gets
            ``Method.discriminator_losses`` and is updated after ``main`` in the same step. Modules in no group
            are frozen (``eval()`` mode, no gradients).
        occlusion: Occlusions applied to the ``occluded`` half of each batch.
        lr_scale: Multiplies the configured learning rate.
        max_steps: Optional cap on optimiser steps in this stage.
    """

    name: str
    epochs: int
    groups: dict[str, list[str]]
    occlusion: OcclusionMix = field(default_factory=OcclusionMix)
    lr_scale: float = 1.0
    max_steps: int | None = None

    @property
    def trainable(self) -> list[str]:
        """Every module some optimiser of this stage trains."""
        return [m for mods in self.groups.values() for m in mods]


class Method:
    """Base class of a training method. Subclasses set ``name``/``defaults`` and override the hooks."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = "resnet18"
    default_epochs: ClassVar[int] = 10
    #: Option defaults; loss weights are options named ``w_<term>`` (0 switches a term off).
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: TrainConfig) -> None:
        unknown = set(cfg.options) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"method {self.name!r} has no option(s) {sorted(unknown)}; "
                f"known options: {sorted(self.defaults) or 'none'}"
            )
        self.cfg = cfg
        self.opts: dict[str, Any] = {**self.defaults, **cfg.options}
        self.labels: tuple[str, ...] = ()  # set by the Trainer (the dataset's label names)
        self._roles_used: set[str] = set()  # model_kwargs roles kwargs_for() was asked for
        self._model_used = False  # whether classifier_name() was asked (so cfg.model matters)

    # --- declared by subclasses
    def model_specs(self, num_classes: int) -> dict[str, ModelSpec]:
        """Modules this method trains or uses, by name."""
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        """The stages, in order."""
        raise NotImplementedError

    def export_plan(self) -> ExportPlan:
        """What to export for deployment."""
        raise NotImplementedError

    def losses(self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named loss terms of the ``main`` optimiser (weighted by ``w_<name>`` options, default 1)."""
        raise NotImplementedError

    def discriminator_losses(
        self, stage: Stage, batch: Batch, models: Models, cache: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Named loss terms of the ``disc`` optimiser (runs after ``losses`` with the same ``cache``)."""
        return {}

    def on_stage_start(self, index: int, stage: Stage, models: Models) -> None:
        """Hook before a stage (e.g. compute pruning masks)."""

    def after_step(self, stage: Stage, models: Models) -> None:
        """Hook after each optimiser step (e.g. re-apply pruning masks)."""

    # --- shared helpers
    def weight(self, term: str) -> float:
        """Weight of a loss term (option ``w_<term>``, default 1.0)."""
        return float(self.opts.get(f"w_{term}", 1.0))

    def active(self, term: str) -> bool:
        """Whether a loss term is switched on (non-zero weight)."""
        return self.weight(term) != 0.0

    def epochs(self, default: int | None = None) -> int:
        """Epochs per stage: the config's, else ``default``, else the method's default."""
        return self.cfg.epochs or default or self.default_epochs

    def classifier_name(self) -> str:
        """The classifier registry name (``--model`` or the method's default)."""
        self._model_used = True
        return self.cfg.model or self.default_model

    def kwargs_for(self, role: str, registry: str | None = None, **base: Any) -> dict[str, Any]:
        """``base`` kwargs, then the defaults of ``registry`` for the input size (:func:`size_defaults`), then the
        config's ``model_kwargs[role]``."""
        self._roles_used.add(role)
        auto = size_defaults(registry, self.cfg.input.size[0]) if registry else {}
        return {**base, **auto, **self.cfg.model_kwargs.get(role, {})}

    def used_roles(self, num_classes: int = 7) -> set[str]:
        """The ``model_kwargs`` roles this method's modules read (``classifier``, ``generator``...)."""
        self._roles_used.clear()
        self.model_specs(num_classes)
        return set(self._roles_used)

    def checked_specs(self, num_classes: int) -> dict[str, ModelSpec]:
        """:meth:`model_specs`, refusing model options the method would ignore or its models do not take.

        Raises:
            ConfigError: ``model_kwargs`` has a role no module of this method reads, ``model`` is set but the
                method has no registry classifier, or a kwarg is not a parameter of its model.
        """
        from .models.registry import get_entry

        self._roles_used.clear()
        self._model_used = False
        specs = self.model_specs(num_classes)
        unused = sorted(set(self.cfg.model_kwargs) - self._roles_used)
        if unused:
            raise ConfigError(
                f"method {self.name!r} has no {' or '.join(unused)} module, so the options given for it "
                f"would be ignored; its modules take options as: {', '.join(sorted(self._roles_used))}"
                f"{ROLE_HINTS.get((self.name, unused[0]), '')}"
            )
        if self.cfg.model and not self._model_used:
            raise ConfigError(
                f"method {self.name!r} does not use a registry classifier, so --model "
                f"{self.cfg.model!r} would be ignored (its modules: "
                f"{', '.join(f'{n} ({s.registry})' for n, s in specs.items())})"
            )
        for name, spec in specs.items():
            params = inspect.signature(get_entry(spec.registry).factory).parameters
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                continue
            bad = sorted(set(spec.kwargs) - set(params))
            if bad:
                takes = ", ".join(k for k in params if k not in ("num_classes", "in_channels"))
                raise ConfigError(
                    f"the {name} of method {self.name!r} ({spec.registry}) has no option(s) {bad}; it takes: {takes}"
                )
        return specs
