"""Model definitions (PyTorch). Importing this package registers every model."""

from __future__ import annotations

from .registry import create_model, get_entry, list_models, register_model

# Model modules register themselves on import; each model file adds its own import line below.
from . import decoders  # noqa: E402,F401
from . import discriminators  # noqa: E402,F401
from . import face_verifier  # noqa: E402,F401
from . import inpainting  # noqa: E402,F401
from . import mini_xception  # noqa: E402,F401
from . import resnet  # noqa: E402,F401
from . import vgg  # noqa: E402,F401

__all__ = ["create_model", "get_entry", "list_models", "register_model"]
