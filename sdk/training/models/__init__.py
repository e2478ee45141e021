"""Model definitions (PyTorch). Importing this package registers every model."""
from __future__ import annotations

from .registry import create_model, get_entry, list_models, register_model

# Model modules register themselves on import; keep this list in sync with the files here.
from . import mini_xception  # noqa: E402,F401

__all__ = ["create_model", "get_entry", "list_models", "register_model"]
