"""Inference backends behind one interface (:class:`Engine`)."""

from __future__ import annotations

from .base import Engine
from .onnxruntime_engine import OnnxRuntimeEngine, available_providers

__all__ = ["Engine", "OnnxRuntimeEngine", "available_providers"]
