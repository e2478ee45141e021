"""Choosing and loading an engine of a bundle for a backend (the table of backends lives here).

``backend="auto"`` picks the fastest backend that actually loads on this machine, in this order:

1. ``tensorrt``: a native TensorRT engine of the bundle (format ``trt``), when TensorRT and a CUDA binding import,
   and the engine was built for this GPU and TensorRT version;
2. ``onnxruntime`` with the TensorRT or CUDA execution provider, when onnxruntime-gpu really loads it;
3. ``onnxruntime`` on the CPU.

What was tried and why it was skipped is kept (see :func:`open_for_role`) so ``Recognizer.describe()`` can say it.
"""

from __future__ import annotations

from typing import Any

from .bundle import Bundle, EngineSpec
from .engines.base import Engine
from .errors import ConfigError, EngineError

# backend name -> (bundle engine format, onnxruntime providers or None)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "tensorrt": ("trt", None),
    "onnxruntime": ("onnx", "auto"),
    "onnxruntime-cpu": ("onnx", "cpu"),
    "onnxruntime-cuda": ("onnx", "cuda"),
    "onnxruntime-tensorrt": ("onnx", "tensorrt"),
}
BACKEND_NAMES = ("auto", *BACKENDS)
#: ``auto`` tries these backends in order.
AUTO_ORDER = ("tensorrt", "onnxruntime")
_PRECISION_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}


def select_engine(bundle: Bundle, role: str, *, backend: str = "auto", precision: str | None = None) -> EngineSpec:
    """Pick the engine of ``role`` that suits ``backend`` and ``precision`` (fp32 first when unspecified).

    ``auto`` here means the ONNX engines (what loads everywhere); :func:`open_for_role` tries TensorRT first.
    """
    if backend not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    fmt = "onnx" if backend == "auto" else BACKENDS[backend][0]
    candidates = bundle.find_engines(role, format=fmt)
    if not candidates:
        have = sorted({f"{e.format}/{e.precision}" for e in bundle.find_engines(role)}) or ["none"]
        how = (
            "build TensorRT engines on this device with `ofer build-engines BUNDLE`"
            if fmt == "trt"
            else "re-export it with `ofer export`"
        )
        raise EngineError(
            f"bundle {bundle.name!r} has no {fmt} {role} engine for backend {backend!r} "
            f"(it has: {', '.join(have)}); {how}"
        )
    if precision is not None:
        chosen = [e for e in candidates if e.precision == precision]
        if not chosen:
            have = ", ".join(sorted({e.precision for e in candidates}))
            raise EngineError(
                f"bundle {bundle.name!r} has no {precision} {role} engine (it has {have}); "
                f"add one with `ofer export --precision {precision}`"
            )
        return chosen[0]
    return sorted(candidates, key=lambda e: _PRECISION_ORDER[e.precision])[0]


def open_engine(
    bundle: Bundle, spec: EngineSpec, *, backend: str = "auto", threads: int | None = None, **options: Any
) -> Engine:
    """Open one engine of a bundle for ``backend``; ``engine.describe()`` says what actually loaded.

    The engine is built from :meth:`Bundle.read_engine`'s bytes (read once, sha256-checked), never re-read by path.
    A TensorRT plan is first checked against the bundle (:func:`runtime.bundle_checks.check_plan_record`).
    """
    if spec.format == "onnx":
        from .engines.onnxruntime_engine import OnnxRuntimeEngine

        if backend == "tensorrt":
            raise EngineError(
                f"engine {spec.name!r} is ONNX; backend 'tensorrt' runs TensorRT engines (format trt): "
                "build them with `ofer build-engines BUNDLE`, or use backend 'onnxruntime-tensorrt'"
            )
        providers = "auto" if backend == "auto" else BACKENDS[backend][1]
        return OnnxRuntimeEngine(
            bundle.engine_path(spec.name),
            model_bytes=bundle.read_engine(spec.name),
            threads=threads,
            providers=providers,
            **options,
        )
    if spec.format == "trt":
        if backend not in ("auto", "tensorrt"):
            raise EngineError(f"engine {spec.name!r} is a TensorRT engine; open it with backend 'tensorrt' or 'auto'")
        from .bundle_checks import check_plan_record
        from .engines.tensorrt_engine import TensorRTEngine

        check_plan_record(bundle, spec)  # stale or mislabelled plans are refused before TensorRT is touched
        return TensorRTEngine(
            bundle.engine_path(spec.name), data=bundle.read_engine(spec.name), built_with=spec.built_with, **options
        )
    raise EngineError(f"engine format {spec.format!r} has no backend in this version of ofer")


def auto_candidates(bundle: Bundle, role: str, precision: str | None = None) -> list[tuple[str, EngineSpec]]:
    """``(backend, engine)`` pairs that ``auto`` tries for ``role``, in order (TensorRT engines, then ONNX)."""
    out: list[tuple[str, EngineSpec]] = []
    for backend in AUTO_ORDER:
        fmt = BACKENDS[backend][0]
        specs = [e for e in bundle.find_engines(role, format=fmt) if precision in (None, e.precision)]
        out += [(backend, e) for e in sorted(specs, key=lambda e: _PRECISION_ORDER[e.precision])]
    return out


def open_for_role(
    bundle: Bundle,
    role: str,
    *,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    log: list[dict[str, Any]] | None = None,
) -> tuple[Engine, EngineSpec]:
    """Open the bundle's engine of ``role`` for ``backend``; with ``auto`` the first that loads (see module doc).

    Args:
        bundle: The bundle.
        role: ``classifier``, ``inpainter`` or ``occlusion_estimator``.
        backend: A name of :data:`BACKEND_NAMES`.
        precision: Wanted precision; for roles other than ``classifier`` it falls back to the most accurate one
            when the bundle has no engine of that precision for the role.
        threads: CPU threads for ONNX Runtime.
        log: When given, one dict per attempt is appended: ``{role, backend, engine, loaded, error?}``.

    Raises:
        EngineError: Nothing loads; the message lists every attempt and why it failed.
    """
    if role != "classifier" and precision is not None and not bundle.find_engines(role, precision=precision):
        precision = None
    if backend != "auto":
        spec = select_engine(bundle, role, backend=backend, precision=precision)
        engine = open_engine(bundle, spec, backend=backend, threads=threads)
        if log is not None:
            log.append({"role": role, "backend": backend, "engine": spec.name, "loaded": True})
        return engine, spec
    candidates = auto_candidates(bundle, role, precision)
    if not candidates:  # select_engine gives the message that says what the bundle has
        select_engine(bundle, role, backend="auto", precision=precision)
    errors = []
    for name, spec in candidates:
        try:
            engine = open_engine(bundle, spec, backend="auto" if name == "onnxruntime" else name, threads=threads)
        except EngineError as exc:
            errors.append(f"{name} {spec.name}: {exc}")
            if log is not None:
                log.append({"role": role, "backend": name, "engine": spec.name, "loaded": False, "error": str(exc)})
            continue
        if log is not None:
            log.append({"role": role, "backend": name, "engine": spec.name, "loaded": True})
        return engine, spec
    raise EngineError(f"no {role} engine of bundle {bundle.name!r} loads here: " + "; ".join(errors))
