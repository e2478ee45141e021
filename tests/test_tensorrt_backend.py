"""TensorRT backend: compatibility decisions, dtype table, profile/batch checks and auto-selection (pure Python and
the real ONNX Runtime engine, run everywhere); real TensorRT runs only where tensorrt and a CUDA GPU are present."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import sdk
from runtime.backends import BACKENDS, auto_candidates, open_engine, open_for_role, select_engine
from runtime.bundle import add_engines, load_bundle
from runtime.engines.tensorrt_engine import (
    TRT_DTYPES,
    check_built_with,
    check_input,
    numpy_dtype,
    split_batch,
    trt_version_tuple,
)
from runtime.errors import EngineError, InputError

BUILT = {"tensorrt": "10.3.0.26", "gpu": "Orin (nvgpu)", "compute_capability": "8.7"}
ORIN = {"name": "Orin (nvgpu)", "compute_capability": "8.7"}


def test_registered_as_tensorrt_backend() -> None:
    assert BACKENDS["tensorrt"][0] == "trt"


def test_compatible_engine_is_accepted() -> None:
    check_built_with(BUILT, trt_version="10.3.0.30", gpu=ORIN)  # same major.minor.patch, build number differs
    check_built_with(BUILT, trt_version="10.3.0", gpu={"name": "Jetson AGX Orin", "compute_capability": "8.7"})


@pytest.mark.parametrize(
    "version, gpu, message",
    [
        ("10.4.0", ORIN, r"built with TensorRT 10\.3\.0\.26, this device has TensorRT 10\.4\.0"),
        ("10.3.1", ORIN, "TensorRT 10.3.0.26"),
        (
            "10.3.0",
            {"name": "NVIDIA H100", "compute_capability": "9.0"},
            r"compute capability 8\.7 \(Orin.*H100 \(9\.0\)",
        ),
    ],
)
def test_incompatible_engine_is_refused(version: str, gpu: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message) as info:
        check_built_with(BUILT, trt_version=version, gpu=gpu, engine="classifier_fp16.engine")
    assert "ofer build-engines BUNDLE" in str(info.value)


def test_engine_without_build_record_is_refused() -> None:
    with pytest.raises(EngineError, match="no TensorRT build record.*ofer build-engines"):
        check_built_with({"onnx": "1.17"}, trt_version="10.3.0", gpu=ORIN)


def test_version_tuple() -> None:
    assert trt_version_tuple("10.3.0.26") == (10, 3, 0)
    assert trt_version_tuple("11") == (11, 0, 0)
    with pytest.raises(EngineError):
        trt_version_tuple("unknown")


def test_dtype_table() -> None:
    assert numpy_dtype("FLOAT") == np.float32 and numpy_dtype("HALF") == np.float16
    assert numpy_dtype("DataType.INT8") == np.int8  # str(trt.DataType.INT8)

    class Named:  # what a trt.DataType member exposes
        name = "INT32"

    assert numpy_dtype(Named()) == np.int32
    assert set(TRT_DTYPES) >= {"FLOAT", "HALF", "INT8", "INT32", "BOOL"}
    with pytest.raises(EngineError, match="BF16 has no numpy"):
        numpy_dtype("BF16")


def test_profile_checks_and_batch_split() -> None:
    profile = ((1, 1, 64, 64), (8, 1, 64, 64), (32, 1, 64, 64))
    check_input("input", (5, 1, 64, 64), profile)
    check_input("input", (100, 1, 64, 64), profile)  # larger than max: split, not refused
    with pytest.raises(InputError, match=r"dimension 2 must be 64"):
        check_input("input", (2, 1, 48, 64), profile)
    with pytest.raises(InputError, match="expects 4 dimensions"):
        check_input("input", (2, 64, 64), profile)
    with pytest.raises(InputError, match="empty batch"):
        check_input("input", (0, 1, 64, 64), profile)
    check_input("input", (2, 1, 100, 64), ((1, 1, 32, 64), (1, 1, 64, 64), (4, 1, 128, 64)))
    assert split_batch(70, 32) == [(0, 32), (32, 64), (64, 70)]
    assert split_batch(3, 32) == [(0, 3)]
    with pytest.raises(EngineError):
        split_batch(3, 0)


def _with_fake_build(bundle: Path, built_with: dict) -> Path:
    """Add a file named as a TensorRT engine (not a real plan: it must never get as far as deserializing)."""
    plan = bundle.parent / "classifier_fp16.engine"
    plan.write_bytes(b"not a real TensorRT plan")
    record = {
        "precision": "fp16",
        "source_onnx_sha256": load_bundle(bundle).engines["classifier"].sha256,
        **built_with,
    }  # what export.tensorrt.engine_metadata records
    add_engines(
        bundle,
        [
            {
                "name": "classifier_trt_fp16",
                "path": plan,
                "file": plan.name,
                "format": "trt",
                "precision": "fp16",
                "role": "classifier",
                "built_with": record,
            }
        ],
    )
    return bundle


def test_auto_order_and_fallback_to_onnxruntime(tiny_bundle: Path) -> None:
    bundle = load_bundle(_with_fake_build(tiny_bundle, BUILT))
    assert [(b, e.name) for b, e in auto_candidates(bundle, "classifier")] == [
        ("tensorrt", "classifier_trt_fp16"),
        ("onnxruntime", "classifier"),
    ]
    log: list[dict] = []
    engine, spec = open_for_role(bundle, "classifier", backend="auto", log=log)
    assert spec.name == "classifier" and engine.backend == "onnxruntime"  # the real ORT engine loaded
    assert [(a["backend"], a["loaded"]) for a in log] == [("tensorrt", False), ("onnxruntime", True)]
    assert log[0]["error"]  # why TensorRT was skipped (not installed, no GPU, or built for another device)
    rec = sdk.Recognizer(bundle, detector="none")
    d = rec.describe()
    assert d["classifier"]["backend"] == "onnxruntime" and d["backend_attempts"][0]["backend"] == "tensorrt"


def test_explicit_backends(tiny_bundle: Path) -> None:
    bundle = load_bundle(_with_fake_build(tiny_bundle, BUILT))
    assert select_engine(bundle, "classifier", backend="tensorrt").format == "trt"
    with pytest.raises(EngineError, match="backend 'tensorrt' runs TensorRT engines"):
        open_engine(bundle, bundle.engines["classifier"], backend="tensorrt")
    with pytest.raises(EngineError, match="open it with backend 'tensorrt'"):
        open_engine(bundle, bundle.engines["classifier_trt_fp16"], backend="onnxruntime")
    with pytest.raises(EngineError):  # TensorRT missing, no GPU, or (with both) the device/record check refuses it
        sdk.Recognizer(bundle, detector="none", backend="tensorrt")


def test_tensorrt_missing_names_the_fix(tiny_bundle: Path) -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed: the missing-TensorRT message cannot be observed here")
    except ImportError:
        pass
    bundle = load_bundle(_with_fake_build(tiny_bundle, BUILT))
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        open_engine(bundle, bundle.engines["classifier_trt_fp16"], backend="tensorrt")


def _gpu_or_skip() -> dict:
    pytest.importorskip("tensorrt")
    from runtime.engines.cuda_memory import gpu_identity

    try:
        return gpu_identity()
    except EngineError as exc:
        pytest.skip(f"no CUDA GPU usable here: {exc}")


def test_real_tensorrt_engine_matches_onnxruntime(tiny_bundle: Path, tmp_path: Path) -> None:
    """Build a real engine from the bundle's ONNX with TensorRT and compare it with ONNX Runtime."""
    gpu = _gpu_or_skip()
    import tensorrt as trt

    from runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
    from runtime.engines.tensorrt_engine import TensorRTEngine

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(tiny_bundle / "classifier.onnx"))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 64, 64), (4, 1, 64, 64), (8, 1, 64, 64))
    config.add_optimization_profile(profile)
    plan = tmp_path / "classifier.engine"
    plan.write_bytes(bytes(builder.build_serialized_network(network, config)))
    built = {"tensorrt": trt.__version__, "compute_capability": gpu["compute_capability"], "gpu": gpu["name"]}
    engine = TensorRTEngine(plan, built_with=built)
    x = np.random.default_rng(0).normal(size=(11, 1, 64, 64)).astype(np.float32)  # 11 > max 8: split in two
    ref = OnnxRuntimeEngine(tiny_bundle / "classifier.onnx", providers="cpu").run({"input": x})["logits"]
    out = engine.run({"input": x})["logits"]
    np.testing.assert_allclose(out, ref, atol=1e-3)
    # from checked bytes, as open_engine does: the path only names the engine and is never read
    from_bytes = TensorRTEngine(tmp_path / "not-there.engine", data=plan.read_bytes(), built_with=built)
    np.testing.assert_allclose(from_bytes.run({"input": x})["logits"], ref, atol=1e-3)
    outs, subs = engine.timed_run({"input": x[:3]})
    assert set(subs) == {"h2d", "compute", "d2h"} and all(v >= 0 for v in subs.values())
    with pytest.raises(EngineError, match="ofer build-engines"):
        TensorRTEngine(plan, built_with={**built, "compute_capability": "1.0"})
    copy = tmp_path / "b2"
    shutil.copytree(tiny_bundle, copy)
    add_engines(
        copy,
        [
            {
                "name": "classifier_trt",
                "path": plan,
                "file": "classifier.engine",
                "format": "trt",
                "precision": "fp32",
                "role": "classifier",
                "built_with": built,
            }
        ],
    )
    rec = sdk.Recognizer(copy, detector="none")
    assert rec.describe()["classifier"]["backend"] == "tensorrt"
    engine.close()
