"""Shared bundles: stale or mislabelled TensorRT plans, the TensorRT EP cache outside the bundle, `ofer info` on a bad
bundle, and re-exporting a bundle with its licence files and provenance."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.backends import open_engine, open_for_role
from runtime.bundle import add_engines, load_bundle
from runtime.bundle_checks import check_plan_record
from runtime.engines.onnxruntime_engine import OnnxRuntimeEngine, provider_args, trt_ep_cache_dir
from runtime.errors import BundleError, EngineError

BUILT = {"tensorrt": "10.3.0.26", "gpu": "Orin (nvgpu)", "compute_capability": "8.7"}


def _add_plan(bundle: Path, **record) -> Path:
    """A file listed as a TensorRT plan (not a real plan: every check here must refuse it before TensorRT)."""
    plan = bundle.parent / "classifier.trt-fp16.engine"
    plan.write_bytes(b"not a real TensorRT plan")
    built = {
        **BUILT,
        "precision": "fp16",
        "source_onnx_sha256": load_bundle(bundle).engines["classifier"].sha256,
        **record,
    }
    add_engines(
        bundle,
        [
            {
                "name": "classifier-trt-fp16",
                "path": plan,
                "file": plan.name,
                "format": "trt",
                "precision": "fp16",
                "role": "classifier",
                "built_with": built,
            }
        ],
    )
    return bundle


@pytest.mark.parametrize(
    "record, message",
    [
        (
            {"source_onnx_sha256": "ab" * 32},
            r"is stale: it was built from an ONNX model with sha256 abababababab\.\.\., "
            r"which is not in this bundle \(its classifier ONNX engines: classifier ",
        ),
        ({"source_onnx_sha256": None}, "no built_with.source_onnx_sha256 record"),
        ({"precision": "int8"}, "is listed as fp16 but was built as 'int8'"),
        ({"precision": None}, "has no built_with.precision record"),
    ],
)
def test_stale_or_mislabelled_plan_is_refused(tiny_bundle: Path, record: dict, message: str) -> None:
    bundle = load_bundle(_add_plan(tiny_bundle, **{k: v for k, v in record.items() if v is not None}))
    if None in record.values():  # drop the field entirely
        m = json.loads((tiny_bundle / "manifest.json").read_text())
        for k, v in record.items():
            m["engines"]["classifier-trt-fp16"]["built_with"].pop(k)
        (tiny_bundle / "manifest.json").write_text(json.dumps(m))
        bundle = load_bundle(tiny_bundle)  # load accepts it, so `ofer build-engines --force` can replace the plan
    spec = bundle.engines["classifier-trt-fp16"]
    with pytest.raises(EngineError, match=message) as info:
        check_plan_record(bundle, spec)
    assert "ofer build-engines" in str(info.value) and "--precision fp16 --force" in str(info.value)
    # opening refuses it before TensorRT is even imported (this machine has no TensorRT: the message proves order)
    with pytest.raises(EngineError, match=message):
        open_engine(bundle, spec, backend="tensorrt")
    log: list[dict] = []
    engine, chosen = open_for_role(bundle, "classifier", backend="auto", log=log)
    assert chosen.name == "classifier" and engine.backend == "onnxruntime"
    assert log[0]["engine"] == "classifier-trt-fp16" and not log[0]["loaded"]


def test_fresh_plan_passes_and_is_read_once_checked(tiny_bundle: Path) -> None:
    bundle = load_bundle(_add_plan(tiny_bundle))
    spec = bundle.engines["classifier-trt-fp16"]
    check_plan_record(bundle, spec)  # precision and source agree with the bundle
    assert bundle.read_engine(spec.name) == b"not a real TensorRT plan"
    (tiny_bundle / spec.file).write_bytes(b"another plan, swapped in after loading")
    with pytest.raises(BundleError, match="integrity check.*classifier.trt-fp16.engine"):
        open_engine(bundle, spec, backend="tensorrt")  # its bytes are checked before TensorRT deserializes them


def test_tensorrt_ep_cache_goes_to_the_user_cache(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFER_CACHE", str(tmp_path / "cache"))
    bundle = load_bundle(tiny_bundle)
    sha = bundle.engines["classifier"].sha256
    assert trt_ep_cache_dir(sha, "NVIDIA-H200-sm90") == tmp_path / "cache" / "trt-ep" / sha[:16] / "NVIDIA-H200-sm90"
    args = provider_args(["TensorrtExecutionProvider", "CPUExecutionProvider"], trt_ep_cache_dir(sha, "g"))
    assert args[0][1]["trt_engine_cache_path"] == str(tmp_path / "cache" / "trt-ep" / sha[:16] / "g")
    assert args[1] == "CPUExecutionProvider"
    # a real engine asking for the TensorRT EP (absent here, so ONNX Runtime falls back to the CPU) gets the cache
    # folder keyed by its model's sha256 and the GPU, never a folder inside the (shared, maybe read-only) bundle
    with pytest.warns(UserWarning, match="TensorrtExecutionProvider"):
        eng = OnnxRuntimeEngine(
            bundle.engine_path("classifier"), model_bytes=bundle.read_engine("classifier"), providers="tensorrt"
        )
    assert eng.trt_cache_dir.parent == tmp_path / "cache" / "trt-ep" / sha[:16]
    assert sorted(p.name for p in tiny_bundle.iterdir()) == ["classifier.onnx", "manifest.json"]


@pytest.mark.parametrize(
    "damage, message",
    [
        ("tamper", "integrity check"),
        ("stale", "is stale"),
        ("labels", "gives 7 scores per face"),
        ("nested", "nested deeper than 64"),
    ],
)
def test_info_on_a_bad_bundle_is_one_line_exit_2(
    tiny_bundle: Path, ofer_cmd: list[str], damage: str, message: str
) -> None:
    if damage == "tamper":
        with open(tiny_bundle / "classifier.onnx", "ab") as f:
            f.write(b"\0")
    elif damage == "stale":
        _add_plan(tiny_bundle, source_onnx_sha256="cd" * 32)
    elif damage == "labels":
        m = json.loads((tiny_bundle / "manifest.json").read_text())
        m["labels"].append("contempt")
        (tiny_bundle / "manifest.json").write_text(json.dumps(m))
    else:  # deep enough for Python's own json to raise RecursionError
        text = (tiny_bundle / "manifest.json").read_text()
        deep = '"provenance": {"x": ' + "[" * 3000 + "]" * 3000 + ", "
        (tiny_bundle / "manifest.json").write_text(text.replace('"provenance": {', deep))
    out = subprocess.run([*ofer_cmd, "info", str(tiny_bundle)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ofer info: error:") and message in lines[0], out.stderr
    assert out.stdout == ""


def test_info_on_a_good_bundle(tiny_bundle: Path, ofer_cmd: list[str]) -> None:
    out = subprocess.run(
        [*ofer_cmd, "info", str(_add_plan(tiny_bundle)), "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["engines"]["classifier"]["loads_with"][-1] == "CPUExecutionProvider"
    assert info["engines"]["classifier-trt-fp16"]["size_kb"] == round(len(b"not a real TensorRT plan") / 1024, 1)


def test_reexport_keeps_licence_files_and_provenance(tmp_path: Path, ofer_cmd: list[str]) -> None:
    import sdk

    src = tmp_path / "src"
    shutil.copytree(Path(sdk.__file__).parent / "default_bundle", src)
    before = load_bundle(src)
    out = subprocess.run(
        [*ofer_cmd, "export", str(src), "--out", str(tmp_path / "new"), "--precision", "fp32"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    new = load_bundle(tmp_path / "new")
    assert new.licence_files() == ["LICENSE-fer.txt"]
    assert (new.path / "LICENSE-fer.txt").read_bytes() == (src / "LICENSE-fer.txt").read_bytes()
    for key in ("method", "source", "data", "licence", "licence_file"):
        assert new.provenance[key] == before.provenance[key]
    assert new.provenance["exported_from"] == {
        "bundle": before.name,
        "classifier_sha256": before.engines["classifier"].sha256,
    }
    assert new.engines["classifier"].sha256 == before.engines["classifier"].sha256  # the same model, re-bundled
