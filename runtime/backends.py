"""Choosing and loading an engine of a bundle for a backend (the table of backends lives here)."""
from __future__ import annotations

from typing import Any

from .bundle import Bundle, EngineSpec
from .engines.base import Engine
from .errors import ConfigError, EngineError

# backend name -> (bundle engine format, onnxruntime providers or None)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "onnxruntime": ("onnx", "auto"),
    "onnxruntime-cpu": ("onnx", "cpu"),
    "onnxruntime-cuda": ("onnx", "cuda"),
    "onnxruntime-tensorrt": ("onnx", "tensorrt"),
}
BACKEND_NAMES = ("auto", *BACKENDS)


def select_engine(bundle: Bundle, role: str, *, backend: str = "auto", precision: str | None = None) -> EngineSpec:
    """Pick the engine of ``role`` that suits ``backend`` and ``precision`` (fp32 first when unspecified)."""
    if backend not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    fmt = "onnx" if backend == "auto" else BACKENDS[backend][0]
    candidates = bundle.find_engines(role, format=fmt)
    if not candidates:
        have = sorted({f"{e.format}/{e.precision}" for e in bundle.find_engines(role)}) or ["none"]
        raise EngineError(f"bundle {bundle.name!r} has no {fmt} {role} engine for backend {backend!r} "
                          f"(it has: {', '.join(have)}); re-export it with `ofer export`")
    if precision is not None:
        chosen = [e for e in candidates if e.precision == precision]
        if not chosen:
            have = ", ".join(sorted({e.precision for e in candidates}))
            raise EngineError(f"bundle {bundle.name!r} has no {precision} {role} engine (it has {have}); "
                              f"add one with `ofer export --precision {precision}`")
        return chosen[0]
    order = {"fp32": 0, "fp16": 1, "int8": 2}
    return sorted(candidates, key=lambda e: order[e.precision])[0]


def open_engine(bundle: Bundle, spec: EngineSpec, *, backend: str = "auto", threads: int | None = None,
                **options: Any) -> Engine:
    """Open one engine of a bundle for ``backend``; ``engine.describe()`` says what actually loaded."""
    if spec.format == "onnx":
        from .engines.onnxruntime_engine import OnnxRuntimeEngine

        providers = "auto" if backend == "auto" else BACKENDS[backend][1]
        return OnnxRuntimeEngine(bundle.engine_path(spec.name), threads=threads, providers=providers, **options)
    raise EngineError(f"engine format {spec.format!r} has no backend in this version of ofer")
