"""TensorRT engines from a bundle's ONNX files, their metadata, and the compatibility check the runtime calls.

Written against the TensorRT 10 Python API (``Builder.create_network``,
``OnnxParser.parse`` (from the bytes whose sha256 is recorded),
``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE)``, ``add_optimization_profile``,
``set_flag(BuilderFlag.FP16/INT8)``, ``int8_calibrator``, ``build_serialized_network``) and TensorRT 11, where the
precision flags and implicit-quantisation calibrators are gone and every network is strongly typed: there FP16
comes from the FP16-typed ONNX and INT8 from the explicit Q/DQ ONNX. :func:`plan_build` makes that decision and
:func:`plan_engines` applies it to a bundle (which ONNX, which cache, which file); both are plain Python (tested
without a GPU). :func:`build_engine` runs TensorRT for one engine and :func:`build_engines` for a bundle (what
``ofer build-engines`` runs). tensorrt is imported lazily. The metadata written here is what the runtime's
:func:`runtime.engines.tensorrt_engine.check_built_with` checks before loading.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from runtime.engines.tensorrt_engine import INSTALL, check_built_with, tensorrt_version, trt_version_tuple
from runtime.errors import BundleError, ConfigError, EngineError, ExportError

if TYPE_CHECKING:
    from runtime.bundle import Bundle

    from .formats import ExportFormat

#: The runtime's check that refuses engines built for another GPU/TensorRT (re-exported for build-engines users).
check_engine_compatible = check_built_with
__all__ = [
    "BuildPlan",
    "EngineJob",
    "build_engine",
    "build_engines",
    "check_engine_compatible",
    "engine_metadata",
    "plan_build",
    "plan_engines",
    "profile_shapes",
    "tensorrt_version",
    "trt_version_tuple",
]


def profile_shapes(input_shape: Sequence[int | str | None], batch: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """min/opt/max shapes of an optimisation profile for a ``(batch, ...)`` input with fixed other dimensions.

    Raises:
        ConfigError: a non-batch dimension is dynamic, or the batch range is not ``1 <= min <= opt <= max``.
    """
    lo, opt, hi = (int(b) for b in batch)
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(f"batch range must satisfy 1 <= min <= opt <= max, got {batch}")
    rest = list(input_shape[1:])
    if any(not isinstance(d, int) or d <= 0 for d in rest):
        raise ConfigError(
            f"input shape {list(input_shape)} has dynamic non-batch dimensions; re-export the ONNX "
            "with a fixed input size"
        )
    return {"min": (lo, *rest), "opt": (opt, *rest), "max": (hi, *rest)}


@dataclass(frozen=True)
class BuildPlan:
    """How one engine is built: which ONNX, which network flags and builder flags, calibrator or cache."""

    precision: str
    onnx_key: str  # export format key of the source ONNX (fp32 / fp16 / int8-trt)
    strongly_typed: bool
    flags: tuple[str, ...]  # BuilderFlag names
    calibration: str | None  # None | "cache" | "calibrator" | "qdq"
    notes: tuple[str, ...] = field(default_factory=tuple)


def plan_build(
    precision: str, trt_version: str, available: Sequence[str], *, has_cache: bool = False, prefer_qdq: bool = True
) -> BuildPlan:
    """Decide how to build a ``precision`` engine on TensorRT ``trt_version`` from the ONNX formats ``available``.

    TensorRT >= 11: strongly typed only, so FP16 needs the ``fp16`` ONNX and INT8 the ``int8-trt`` Q/DQ ONNX.
    TensorRT 10: FP32 ONNX with builder flags; INT8 from the Q/DQ ONNX (explicit) when present and ``prefer_qdq``,
    else implicit INT8 with the bundle's calibration cache (or a calibrator when there is none).

    Raises:
        ExportError: the bundle lacks the ONNX this TensorRT needs (the message says which to export).
    """
    major = trt_version_tuple(trt_version)[0]
    if major < 10:
        raise ExportError(
            f"TensorRT {trt_version} is too old; ofer builds engines with TensorRT 10 or newer (JetPack 6+)"
        )
    have = set(available)

    def need(key: str) -> None:
        if key not in have:
            raise ExportError(
                f"building a {precision} engine with TensorRT {trt_version} needs the bundle's {key} "
                f"ONNX; re-export with `ofer export ... --precision {key.split('-')[0]}`"
            )

    if precision == "fp32":
        need("fp32")
        return BuildPlan("fp32", "fp32", major >= 11, (), None)
    if precision == "fp16":
        if major >= 11:
            need("fp16")
            return BuildPlan("fp16", "fp16", True, (), None, ("FP16-typed ONNX, strongly typed network",))
        need("fp32")
        return BuildPlan("fp16", "fp32", False, ("FP16",), None)
    if precision == "int8":
        if major >= 11:
            need("int8-trt")
            return BuildPlan("int8", "int8-trt", True, (), "qdq", ("explicit Q/DQ, strongly typed network",))
        if prefer_qdq and "int8-trt" in have:
            return BuildPlan("int8", "int8-trt", False, ("INT8", "FP16"), "qdq", ("explicit Q/DQ",))
        need("fp32")
        return BuildPlan(
            "int8",
            "fp32",
            False,
            ("INT8", "FP16"),
            "cache" if has_cache else "calibrator",
            ("implicit INT8 (deprecated in TensorRT 10)",),
        )
    raise ConfigError(f"unknown precision {precision!r}; use fp32, fp16 or int8")


def engine_metadata(
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: str,
    onnx_sha256: str,
    plan: BuildPlan,
    batch: tuple[int, int, int],
    workspace_mb: int | None,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``built_with`` record of an engine in the manifest."""
    return {
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "compute_capability": compute_capability,
        "precision": precision,
        "source_onnx_sha256": onnx_sha256,
        "source_onnx": plan.onnx_key,
        "strongly_typed": plan.strongly_typed,
        "builder_flags": list(plan.flags),
        "calibration": dict(calibration or {}) or plan.calibration,
        "batch": {"min": batch[0], "opt": batch[1], "max": batch[2]},
        "workspace_mb": workspace_mb,
    }


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    plan: BuildPlan,
    *,
    onnx_bytes: bytes | None = None,
    batch: tuple[int, int, int] = (1, 8, 32),
    workspace_mb: int | None = None,
    calibrator: Any = None,
    cache_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build and serialise one engine as ``plan`` says; returns its ``built_with`` metadata.

    Args:
        onnx_path: The ONNX file the plan names (read once unless ``onnx_bytes`` is given; names it in messages).
        onnx_bytes: The ONNX model's bytes, already checked (a bundle's ``read_engine``): TensorRT parses exactly
            these and their sha256 becomes ``built_with.source_onnx_sha256``.
        out_path: Engine file to write.
        plan: From :func:`plan_build`.
        batch: Optimisation-profile batch sizes (min, opt, max).
        workspace_mb: Workspace memory-pool limit (small Jetsons: 256-512); ``None``: TensorRT's default.
        calibrator: A calibrator (:func:`calibration.trt_calibrators.make_trt_calibrator`) for implicit INT8; it
            reads ``cache_path`` first when it exists.
        cache_path: Native calibration cache (implicit INT8 with ``plan.calibration == "cache"``).

    Raises:
        EngineError: TensorRT missing, the parser or the builder failed.
    """
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(INSTALL) from None
    from runtime.engines.cuda_memory import gpu_identity

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    data = onnx_path.read_bytes() if onnx_bytes is None else onnx_bytes
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if plan.strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shapes = profile_shapes(list(tensor.shape), batch)
        profile.set_shape(tensor.name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    for name in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if plan.calibration in ("cache", "calibrator"):
        if calibrator is None:
            raise EngineError(
                "implicit INT8 needs a calibrator (it reads the bundle's calibration cache); pass one, "
                "or export the int8-trt Q/DQ ONNX"
            )
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(
            f"TensorRT failed to build the {plan.precision} engine from {onnx_path.name} (see the "
            "TensorRT log above); try a larger --workspace-mb or another precision"
        )
    data = bytes(serialized)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(data)
    gpu = gpu_identity()
    return engine_metadata(
        trt_version=str(trt.__version__),
        gpu_name=gpu["name"],
        compute_capability=gpu["compute_capability"],
        precision=plan.precision,
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        plan=plan,
        batch=batch,
        workspace_mb=workspace_mb,
        calibration={"kind": plan.calibration, "cache": Path(cache_path).name}
        if cache_path and plan.calibration == "cache"
        else None,
    )


@dataclass(frozen=True)
class EngineJob:
    """One engine :func:`build_engines` builds into a bundle.

    Attributes:
        fmt: The TensorRT format (``trt-fp32``, ``trt-fp16``, ``trt-int8``).
        plan: How it is built (:func:`plan_build`).
        source: Name of the bundle's ONNX classifier engine it is built from.
        out: The engine file inside the bundle folder.
        cache: The bundle's native calibration cache, for implicit INT8 (``plan.calibration == "cache"``).
        cache_method: The calibration method the cache records (its calibrator's kind).
    """

    fmt: ExportFormat
    plan: BuildPlan
    source: str
    out: Path
    cache: Path | None = None
    cache_method: str | None = None

    def entry(self, built_with: Mapping[str, Any]) -> dict[str, Any]:
        """The engine's manifest entry once built."""
        return self.fmt.entry("classifier", self.out, built_with=dict(built_with))


def plan_engines(
    bundle: Bundle, formats: Sequence[ExportFormat], trt_version: str, *, force: bool = False
) -> list[EngineJob]:
    """The engines to build into ``bundle`` for TensorRT formats ``formats`` on TensorRT ``trt_version``.

    The bundle's ONNX classifiers are known by export format key (an INT8 one by its quantisation flavour); the
    first of each key is used. Nothing is built or written.

    Raises:
        ConfigError: a format is not a TensorRT format.
        ExportError: the bundle lacks the ONNX (or calibration cache) this TensorRT needs; the message says what to
            export.
        BundleError: an engine of that name exists and ``force`` is not set.
    """
    onnx: dict[str, Any] = {}
    for e in bundle.find_engines("classifier", format="onnx"):
        onnx.setdefault(e.extra.get("quantization", {}).get("flavour", e.precision), e)
    cache = bundle.manifest.get("trt_calibration_cache")  # load_bundle checked its sha256
    cache_path = bundle.path / cache["file"] if cache else None
    jobs = []
    for fmt in formats:
        if fmt.format != "trt":
            raise ConfigError(f"{fmt.key} is not a TensorRT format; use trt-fp32, trt-fp16 or trt-int8")
        plan = plan_build(fmt.precision, trt_version, list(onnx), has_cache=cache_path is not None)
        if plan.calibration == "calibrator":
            raise ExportError(
                "this bundle has neither an int8-trt Q/DQ model nor a TensorRT calibration cache; "
                "re-export it with `ofer export ... --precision int8 --calib SOURCE`"
            )
        name = fmt.engine_name("classifier")
        if name in bundle.engines and not force:
            raise BundleError(
                f"bundle {bundle.path} already has an engine named {name!r}; pass force=True (--force) to replace it"
            )
        from_cache = plan.calibration == "cache"
        jobs.append(
            EngineJob(
                fmt,
                plan,
                onnx[plan.onnx_key].name,
                Path(bundle.path) / fmt.file_name("classifier"),
                cache_path if from_cache else None,
                cache.get("method", "entropy") if from_cache and cache else None,
            )
        )
    return jobs


def build_engines(
    bundle: Bundle | str | os.PathLike[str],
    formats: Sequence[ExportFormat],
    *,
    batch: tuple[int, int, int] = (1, 8, 32),
    workspace_mb: int | None = None,
    force: bool = False,
    on_built: Callable[[EngineJob], None] | None = None,
) -> Bundle:
    """Build TensorRT engines for this GPU from a bundle's ONNX classifiers and add them to the bundle.

    Args:
        bundle: The bundle (or its folder); it must be writable.
        formats: TensorRT formats (:func:`export.formats.parse_precisions` with ``target="trt"``).
        batch: Optimisation-profile batch sizes (min, opt, max).
        workspace_mb: TensorRT workspace limit (small Jetsons: 256-512); ``None``: TensorRT's default.
        force: Replace engines the bundle already has.
        on_built: Called after each engine is written (e.g. to print it).

    Returns:
        The bundle, reloaded with the new engines (``built_with`` records TensorRT, GPU, flags, source sha256).

    Raises:
        EngineError: TensorRT is missing (the install hint), or parsing/building failed.
        ExportError, BundleError, ConfigError: see :func:`plan_engines`; nothing is built then.
    """
    from runtime.bundle import Bundle, add_engines, load_bundle

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    jobs = plan_engines(b, formats, tensorrt_version(), force=force)  # EngineError with the install hint first
    built = []
    for job in jobs:
        calibrator = None
        if job.cache is not None:
            import numpy as np

            from calibration.trt_calibrators import make_trt_calibrator

            spec = b.input
            dummy = np.zeros((1, spec.channels, *spec.size), np.float32)  # never read: the cache answers
            calibrator = make_trt_calibrator(job.cache_method or "entropy", dummy, cache_path=job.cache)
        meta = build_engine(
            b.engine_path(job.source),
            job.out,
            job.plan,
            onnx_bytes=b.read_engine(job.source),
            batch=batch,
            workspace_mb=workspace_mb,
            calibrator=calibrator,
            cache_path=job.cache,
        )
        built.append(job.entry(meta))
        if on_built is not None:
            on_built(job)
    return add_engines(b.path, built, force=force)
