"""A small model registry (timm style): every model is listed and created by name.

Example:
    >>> from sdk.training.models import create_model, list_models
    >>> model = create_model("mini_xception", num_classes=7, in_channels=1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

_REGISTRY: dict[str, "ModelEntry"] = {}


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one model.

    Attributes:
        name: Registry name.
        factory: Callable returning an ``nn.Module``.
        kind: ``classifier``, ``inpainter``, ``discriminator``, ``feature_discriminator`` or ``decoder``.
        default_input: Example input shape ``(C, H, W)`` used by tests and export (batch excluded).
        default_kwargs: Keyword arguments the tests create the model with.
    """

    name: str
    factory: Callable[..., Any]
    kind: str
    default_input: tuple[int, ...]
    default_kwargs: dict[str, Any] = field(default_factory=dict)


def register_model(
    name: str | None = None,
    *,
    kind: str = "classifier",
    default_input: tuple[int, ...] = (3, 64, 64),
    **default_kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a model factory (a function or an ``nn.Module`` class)."""

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__.lower()
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = ModelEntry(key, factory, kind, tuple(default_input), dict(default_kwargs))
        return factory

    return wrap


def list_models(kind: str | None = None) -> list[str]:
    """Names of registered models, optionally only those of one kind."""
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; raises ``KeyError`` listing known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Create a registered model by name; ``kwargs`` override the entry's defaults."""
    entry = get_entry(name)
    return entry.factory(**{**entry.default_kwargs, **kwargs})
