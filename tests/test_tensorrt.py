"""TensorRT: build plans, profiles, metadata and compatibility decisions (pure Python); real builds on a GPU."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from export.tensorrt import (
    BuildPlan,
    check_engine_compatible,
    engine_metadata,
    plan_build,
    profile_shapes,
    trt_version_tuple,
)
from runtime.errors import BundleError, ConfigError, EngineError, ExportError

ROOT = Path(__file__).resolve().parents[1]
ALL = ["fp32", "fp16", "int8-cpu", "int8-trt"]


def test_profile_shapes_vary_only_the_batch():
    shapes = profile_shapes(["batch", 1, 64, 64], (1, 8, 32))
    assert shapes == {"min": (1, 1, 64, 64), "opt": (8, 1, 64, 64), "max": (32, 1, 64, 64)}
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        profile_shapes([-1, 1, 64, 64], (8, 1, 32))
    with pytest.raises(ConfigError, match="fixed input size"):
        profile_shapes([-1, 1, "h", 64], (1, 1, 1))


def test_version_parsing():
    assert trt_version_tuple("10.3.0.26") == (10, 3, 0)
    assert trt_version_tuple("11.0") == (11, 0, 0)
    with pytest.raises(EngineError):
        trt_version_tuple("unknown")


def test_tensorrt10_uses_flags_and_prefers_explicit_qdq():
    assert plan_build("fp16", "10.3.0", ALL) == BuildPlan("fp16", "fp32", False, ("FP16",), None)
    qdq = plan_build("int8", "10.3.0", ALL)
    assert (qdq.onnx_key, qdq.flags, qdq.calibration, qdq.strongly_typed) == (
        "int8-trt",
        ("INT8", "FP16"),
        "qdq",
        False,
    )
    implicit = plan_build("int8", "10.3.0", ["fp32", "int8-cpu"], has_cache=True)
    assert (implicit.onnx_key, implicit.calibration) == ("fp32", "cache")
    assert plan_build("int8", "10.3.0", ["fp32"]).calibration == "calibrator"


def test_tensorrt11_is_strongly_typed_and_needs_typed_onnx():
    fp16 = plan_build("fp16", "11.0.0", ALL)
    assert (fp16.onnx_key, fp16.strongly_typed, fp16.flags) == ("fp16", True, ())
    int8 = plan_build("int8", "11.0.0", ALL)
    assert (int8.onnx_key, int8.strongly_typed, int8.flags, int8.calibration) == ("int8-trt", True, (), "qdq")
    with pytest.raises(ExportError, match="--precision int8"):
        plan_build("int8", "11.0.0", ["fp32", "int8-cpu"], has_cache=True)  # no calibrators in TensorRT 11
    with pytest.raises(ExportError, match="fp16 ONNX"):
        plan_build("fp16", "11.1.0", ["fp32"])
    with pytest.raises(ExportError, match="too old"):
        plan_build("fp32", "8.6.1", ALL)


def _meta(trt="10.3.0", cc="8.7"):
    return engine_metadata(
        trt_version=trt,
        gpu_name="Orin",
        compute_capability=cc,
        precision="int8",
        onnx_sha256="ab" * 32,
        plan=plan_build("int8", trt, ALL),
        batch=(1, 8, 32),
        workspace_mb=256,
    )


def test_metadata_records_what_the_runtime_checks():
    meta = _meta()
    assert meta["tensorrt"] == "10.3.0" and meta["compute_capability"] == "8.7" and meta["gpu"] == "Orin"
    assert meta["source_onnx_sha256"] == "ab" * 32 and meta["source_onnx"] == "int8-trt"
    assert meta["batch"] == {"min": 1, "opt": 8, "max": 32} and meta["workspace_mb"] == 256


def test_metadata_passes_the_runtime_check_only_on_the_same_gpu_and_tensorrt():
    meta = _meta()
    check_engine_compatible(meta, trt_version="10.3.0.26", gpu={"name": "Orin NX", "compute_capability": "8.7"})
    with pytest.raises(EngineError, match="TensorRT 10.3.0, this device has TensorRT 10.4.0.*ofer build-engines"):
        check_engine_compatible(meta, trt_version="10.4.0", gpu={"name": "Orin", "compute_capability": "8.7"})
    with pytest.raises(EngineError, match="compute capability 8.7 .*H100 \\(9.0\\).*ofer build-engines"):
        check_engine_compatible(meta, trt_version="10.3.0", gpu={"name": "H100", "compute_capability": "9.0"})


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_engines_without_tensorrt_says_how_to_install(ofer_cmd):
    res = subprocess.run(
        [*ofer_cmd, "build-engines", str(ROOT / "sdk" / "default_bundle")], capture_output=True, text=True, cwd=ROOT
    )
    assert res.returncode == 2
    assert "pip install ofer[tensorrt]" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _gpu() -> None:
    pytest.importorskip("tensorrt")
    from runtime.engines.cuda_memory import gpu_identity

    try:
        gpu_identity()
    except EngineError as exc:
        pytest.skip(f"no CUDA GPU: {exc}")


@pytest.mark.gpu
def test_build_fp16_and_int8_engines_on_gpu(tmp_path):
    _gpu()
    import shutil

    import tensorrt as trt

    from export.tensorrt import build_engine

    src = ROOT / "sdk" / "default_bundle" / "classifier.onnx"
    shutil.copy(src, tmp_path / "c.onnx")
    plan = plan_build("fp16", trt.__version__, ["fp32", "fp16"])
    onnx = tmp_path / "c.onnx"
    if plan.onnx_key == "fp16":
        from export.fp16 import convert_fp16

        convert_fp16(src, onnx)
    meta = build_engine(onnx, tmp_path / "c.engine", plan, batch=(1, 4, 8), workspace_mb=256)
    assert (tmp_path / "c.engine").stat().st_size > 0
    check_engine_compatible(
        meta, trt_version=trt.__version__, gpu={"name": meta["gpu"], "compute_capability": meta["compute_capability"]}
    )


@pytest.mark.gpu
def test_build_engines_adds_a_checked_engine_to_a_bundle(tmp_path):
    _gpu()
    import shutil

    from export.formats import parse_precisions
    from export.tensorrt import build_engines
    from runtime.bundle import load_bundle

    shutil.copytree(ROOT / "sdk" / "default_bundle", tmp_path / "b")
    built = []
    bundle = build_engines(
        tmp_path / "b", parse_precisions("fp32", target="trt"), batch=(1, 2, 4), workspace_mb=256, on_built=built.append
    )
    assert [j.fmt.key for j in built] == ["trt-fp32"]
    engine = load_bundle(tmp_path / "b").engines["classifier-trt-fp32"]  # sha256 checked
    assert engine.format == "trt" and engine.file == "classifier.trt-fp32.engine"
    assert bundle.engines["classifier-trt-fp32"].built_with["source_onnx"] == "fp32"
    with pytest.raises(BundleError, match="already has an engine named 'classifier-trt-fp32'"):
        build_engines(tmp_path / "b", parse_precisions("fp32", target="trt"))


def test_calibrator_feeder_reads_and_writes_the_cache_file(tmp_path):
    """The TensorRT-independent half of the calibrators: TensorRT hands back the cache bytes it wants stored."""
    import numpy as np

    from calibration.trt_cache import format_trt_cache
    from calibration.trt_calibrators import _Feeder

    cache = tmp_path / "sub" / "c.cache"
    feeder = _Feeder(np.zeros((5, 1, 8, 8), np.float32), batch_size=16, cache_path=cache)
    assert feeder.batch_size == 5 and feeder.read_cache() is None
    text = format_trt_cache({"input": 1.0}, trt_version="10.3.0").encode()
    feeder.write_cache(memoryview(text))  # TensorRT passes a buffer object
    assert feeder.read_cache() == text == cache.read_bytes()
    with pytest.raises(ConfigError):
        _Feeder(np.zeros((0, 1, 8, 8), np.float32), 4, None)


def test_make_calibrator_errors_are_one_line_hints():
    import numpy as np

    from calibration.trt_calibrators import make_trt_calibrator

    with pytest.raises(ConfigError, match="entropy or minmax"):
        make_trt_calibrator("percentile", np.zeros((2, 1, 8, 8), np.float32))
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(EngineError, match=r"pip install ofer\[tensorrt\]"):
            make_trt_calibrator("entropy", np.zeros((2, 1, 8, 8), np.float32))


def test_plan_engines_reads_the_bundle_and_names_what_to_export():
    """Which engines `ofer build-engines` would build from the default bundle (FP32 ONNX only), without TensorRT."""
    from export.formats import parse_precisions
    from export.tensorrt import plan_engines
    from runtime.bundle import load_bundle

    bundle = load_bundle(ROOT / "sdk" / "default_bundle")
    jobs = plan_engines(bundle, parse_precisions("fp16,fp32", target="trt"), "10.3.0")
    assert [j.fmt.key for j in jobs] == ["trt-fp32", "trt-fp16"]  # table order
    assert {j.source for j in jobs} == {"classifier"} and jobs[1].plan.flags == ("FP16",)
    assert jobs[1].out == bundle.path / "classifier.trt-fp16.engine" and jobs[1].cache is None
    entry = jobs[1].entry({"tensorrt": "10.3.0"})
    assert entry == {
        "name": "classifier-trt-fp16",
        "path": jobs[1].out,
        "file": "classifier.trt-fp16.engine",
        "format": "trt",
        "precision": "fp16",
        "role": "classifier",
        "built_with": {"tensorrt": "10.3.0"},
    }
    with pytest.raises(ExportError, match="neither an int8-trt Q/DQ model nor a TensorRT calibration cache"):
        plan_engines(bundle, parse_precisions("int8", target="trt"), "10.3.0")
    with pytest.raises(ExportError, match="needs the bundle's fp16 ONNX"):
        plan_engines(bundle, parse_precisions("fp16", target="trt"), "11.0.0")
    with pytest.raises(ConfigError, match="not a TensorRT format"):
        plan_engines(bundle, parse_precisions("fp16"), "10.3.0")


@pytest.fixture(scope="module")
def int8_bundles(tmp_path_factory):
    """The tiny classifier exported with int8-cpu only (minmax: a TensorRT calibration cache) and with int8-trt."""
    from calibration.config import CalibrationConfig
    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions
    from export.source import source_from_bundle
    from runtime.bundle import write_bundle

    from .conftest import LABELS7, TINY_INPUT, make_tiny_classifier

    tmp = tmp_path_factory.mktemp("trtplan")
    write_bundle(
        tmp / "src",
        labels=LABELS7,
        input_spec=TINY_INPUT,
        provenance={"data": "procedural"},
        engines=[
            {
                "name": "classifier",
                "path": make_tiny_classifier(tmp / "c.onnx"),
                "format": "onnx",
                "precision": "fp32",
                "role": "classifier",
            }
        ],
    )
    calibration = CalibrationConfig(count=16, heldout_count=2, cache_dir=tmp / "cache")
    return {
        key: export_bundle(
            source_from_bundle(tmp / "src", tmp),
            tmp / key,
            formats=parse_precisions(key),
            calibration=calibration,
            agreement=0.0,
        )
        for key in ("int8-cpu", "int8-trt")
    }


def test_plan_engines_takes_int8_from_qdq_or_the_calibration_cache(int8_bundles):
    from export.formats import parse_precisions
    from export.tensorrt import plan_engines

    trt_int8 = parse_precisions("int8", target="trt")
    cpu, trt = int8_bundles["int8-cpu"], int8_bundles["int8-trt"]
    (implicit,) = plan_engines(cpu, trt_int8, "10.3.0")
    assert (implicit.source, implicit.plan.calibration) == ("classifier", "cache")
    assert implicit.cache == cpu.path / "classifier.trt-calib.cache" and implicit.cache_method == "minmax"
    (explicit,) = plan_engines(trt, trt_int8, "11.0.0")
    assert (explicit.source, explicit.plan.calibration, explicit.cache) == ("classifier-int8-trt", "qdq", None)
    with pytest.raises(ExportError, match="needs the bundle's int8-trt ONNX"):
        plan_engines(cpu, trt_int8, "11.0.0")  # TensorRT 11 has no calibrators
