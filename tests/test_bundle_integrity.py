"""Bundles are shared, so they must not lie: strict manifests, engines checked once and loaded as checked, and
each ONNX engine compared with what its manifest says."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from runtime.backends import open_engine
from runtime.bundle import load_bundle, sha256_file, write_bundle
from runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
from runtime.errors import BundleError
from tests.conftest import LABELS7, TINY_INPUT, make_tiny_classifier


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _save(bundle: Path, m: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(m))


def _engine(bundle: Path, **changes) -> None:
    m = _manifest(bundle)
    m["engines"]["classifier"].update(changes)
    _save(bundle, m)


def _replace_model(bundle: Path, model_path: Path, **changes) -> None:
    """Put another model in place of the classifier and record its sha256 (a consistent-looking manifest)."""
    data = model_path.read_bytes()
    (bundle / "classifier.onnx").write_bytes(data)
    _engine(bundle, sha256=hashlib.sha256(data).hexdigest(), **changes)


# --- strict manifest ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('"name": ', '"name": "x", "name": ', 1), "key 'name' appears twice"),
        (lambda t: t.replace('"crop_margin": 0.1', '"crop_margin": NaN'), "NaN is not a JSON number"),
        (lambda t: t.replace('"crop_margin": 0.1', '"crop_margin": -Infinity'), "-Infinity is not a JSON number"),
        (lambda t: t.replace('"crop_margin": 0.1', '"crop_margin": 1e999'), "overflows to infinity"),
        (lambda t: t.replace('"schema_version": 1', '"schema_version": true'), "schema_version True"),
        (
            lambda t: t.replace('"provenance": {', '"provenance": {"deep": ' + "[" * 5000 + "]" * 5000 + ", "),
            "nested deeper than 64",
        ),
        (
            lambda t: t.replace('"provenance": {', '"provenance": {"deep": ' + "[" * 80 + "]" * 80 + ", "),
            "nested deeper than 64",
        ),
    ],
)
def test_manifest_text_refused(tiny_bundle: Path, edit, message: str) -> None:
    path = tiny_bundle / "manifest.json"
    text = json.dumps(_manifest(tiny_bundle))
    changed = edit(text)
    assert changed != text
    path.write_text(changed)
    with pytest.raises(BundleError, match=message):
        load_bundle(tiny_bundle)


def test_bom_and_upper_case_hex_are_accepted(tiny_bundle: Path) -> None:
    m = _manifest(tiny_bundle)
    sha = m["engines"]["classifier"]["sha256"]
    m["engines"]["classifier"]["sha256"] = sha.upper()
    (tiny_bundle / "manifest.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(m).encode())
    b = load_bundle(tiny_bundle)
    assert b.engines["classifier"].sha256 == sha  # kept in one canonical (lower) case
    assert len(b.read_engine("classifier")) == (tiny_bundle / "classifier.onnx").stat().st_size


def test_manifest_symlink_out_of_the_folder_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_text((tiny_bundle / "manifest.json").read_text())
    (tiny_bundle / "manifest.json").unlink()
    os.symlink(outside, tiny_bundle / "manifest.json")
    with pytest.raises(BundleError, match="unsafe bundle.*'manifest.json' is a link.*outside the bundle"):
        load_bundle(tiny_bundle)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("input", "channels"), True, "channels"),
        (("input", "size"), [True, 64], "input.size"),
        (("input", "size"), [64, 10**9], "input.size"),
        (("input", "scale"), False, "scale"),
        (("input", "mean"), [True], "input.mean"),
        (("engines", "classifier", "built_with"), "onnx 1.17", "'built_with' must be an object"),
        (("engines", "classifier", "built_with"), ["onnx"], "'built_with' must be an object"),
        (("engines", "classifier", "built_with"), {"tensorrt": 10}, "'built_with.tensorrt' must be a string"),
        (("engines", "classifier", "sha256"), "abc", "64 hex digits"),
        (("engines", "classifier", "sha256"), 12, "64 hex digits"),
        (("engines", "classifier", "format"), ["onnx"], "'format' must be a string"),
        (("labels",), ["angry", "dis\x00gust", "fear", "happy", "sad", "surprise", "neutral"], "control character"),
        (("labels",), ["a" * 300, "disgust", "fear", "happy", "sad", "surprise", "neutral"], "at most 255"),
        (("name",), "fer\x00", "control character"),
        (("name",), 7, "'name' must be a non-empty string"),
        (("engines", "classifier", "file"), "classifier\x00.onnx", "control character"),
        (("engines", "classifier", "file"), "d/" * 600 + "c.onnx", "at most 1024"),
        (("engines", "classifier", "file"), "c" * 300 + ".onnx", "longer than 255 bytes"),
        (("trt_calibration_cache",), {"file": "classifier.onnx"}, "attached file 'classifier.onnx' has no 'sha256'"),
        (("pipelines",), [["direct"]], "pipelines"),
    ],
)
def test_field_violations(tiny_bundle: Path, path: tuple, value, message: str) -> None:
    m = _manifest(tiny_bundle)
    node = m
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _save(tiny_bundle, m)
    with pytest.raises(BundleError, match=message):
        load_bundle(tiny_bundle)


def test_engine_name_with_nul_is_refused(tiny_bundle: Path) -> None:
    m = _manifest(tiny_bundle)
    m["engines"] = {"classi\x00fier": m["engines"]["classifier"]}
    _save(tiny_bundle, m)
    with pytest.raises(BundleError, match="an engine name.*control character"):
        load_bundle(tiny_bundle)


def test_engine_file_that_is_a_folder_or_fifo(tiny_bundle: Path) -> None:
    (tiny_bundle / "classifier.onnx").unlink()
    os.mkfifo(tiny_bundle / "classifier.onnx")  # reading it would block forever
    with pytest.raises(BundleError, match="'classifier.onnx' is not a regular file"):
        load_bundle(tiny_bundle)
    (tiny_bundle / "classifier.onnx").unlink()
    (tiny_bundle / "classifier.onnx").mkdir()
    with pytest.raises(BundleError, match="'classifier.onnx' is not a regular file"):
        load_bundle(tiny_bundle)


# --- check once, load what was checked -------------------------------------------------------------------------


def test_engine_is_built_from_the_checked_bytes_not_the_path(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    spec = bundle.engines["classifier"]
    data = bundle.read_engine("classifier")
    assert hashlib.sha256(data).hexdigest() == spec.sha256
    # the session comes from the bytes: a path that does not exist is only the engine's name
    eng = OnnxRuntimeEngine(tmp_path / "not-there.onnx", model_bytes=data, providers="cpu")
    x = np.zeros((2, 1, 64, 64), np.float32)
    ref = OnnxRuntimeEngine(tiny_bundle / "classifier.onnx", providers="cpu").run({"input": x})["logits"]
    np.testing.assert_array_equal(eng.run({"input": x})["logits"], ref)
    # the file changes after load_bundle: opening re-reads once, hashes, and refuses what no longer matches
    make_tiny_classifier(tiny_bundle / "classifier.onnx", seed=9)
    with pytest.raises(BundleError, match="integrity check.*classifier.onnx"):
        open_engine(bundle, spec, backend="onnxruntime-cpu")


# --- ONNX engines against their manifest ---------------------------------------------------------------------------


def test_external_data_is_refused_even_when_the_onnx_file_hashes_right(tiny_bundle: Path, tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(tiny_bundle / "classifier.onnx"))
    onnx.save(
        model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="classifier.data", size_threshold=0
    )
    (tiny_bundle / "classifier.data").write_bytes((tmp_path / "classifier.data").read_bytes())
    _replace_model(tiny_bundle, tmp_path / "ext.onnx")
    with pytest.raises(
        BundleError,
        match=r"keeps tensors \(w_conv.*in external data files, which its sha256 does "
        r"not cover.*onnx.save",
    ):
        load_bundle(tiny_bundle)
    # write_bundle (what export calls) refuses it too: it never writes what load refuses
    with pytest.raises(BundleError, match="external data"):
        write_bundle(
            tmp_path / "out",
            labels=LABELS7,
            input_spec=TINY_INPUT,
            engines=[{"name": "classifier", "path": tmp_path / "ext.onnx", "role": "classifier"}],
        )


def test_export_inlines_external_data(tiny_bundle: Path, tmp_path: Path) -> None:
    import onnx

    from calibration.config import CalibrationConfig
    from export.bundle_writer import export_bundle
    from export.formats import parse_precisions
    from export.source import ExportSource
    from runtime.bundle import InputSpec
    from runtime.onnx_info import read_onnx_info

    onnx.save(
        onnx.load(str(tiny_bundle / "classifier.onnx")),
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        location="ext.data",
        size_threshold=0,
    )
    spec = load_bundle(tiny_bundle).input
    assert isinstance(spec, InputSpec)
    b = export_bundle(
        ExportSource(tmp_path / "ext.onnx", tuple(LABELS7), spec),
        tmp_path / "out",
        formats=parse_precisions("fp32"),
        calibration=CalibrationConfig(cache_dir=None),
    )
    data = b.read_engine("classifier")
    assert read_onnx_info(data).external == []
    assert sorted(p.name for p in b.path.iterdir()) == ["classifier.onnx", "manifest.json"]


@pytest.mark.parametrize(
    "model_kwargs, spec_changes, message",
    [
        ({"classes": 8}, {}, r"gives 8 scores per face.*'labels' has 7 names"),
        ({"size": 48}, {}, r"shape \[batch, 1, 48, 48\].*'input.size' is \[64, 64\]; set \"size\": \[48, 48\]"),
        ({"channels": 3}, {}, r"3-channel input.*'input.channels' is 1"),
        (
            {},
            {"output": "probabilities"},
            r"'output': 'probabilities' but its output 'logits' comes from Gemm, not a "
            r"Softmax.*set \"output\": \"logits\"",
        ),
    ],
)
def test_model_disagrees_with_manifest(
    tiny_bundle: Path, tmp_path: Path, model_kwargs: dict, spec_changes: dict, message: str
) -> None:
    _replace_model(tiny_bundle, make_tiny_classifier(tmp_path / "m.onnx", **model_kwargs), **spec_changes)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(tiny_bundle)
    assert "engine 'classifier' (classifier.onnx)" in str(info.value)


def _with_head(src: Path, dest: Path, *, softmax: bool, nhwc: bool = False, symbolic: bool = False) -> Path:
    """The tiny classifier with a Softmax (then a Cast, as FP16 conversion leaves it) and/or an NHWC input."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    g = model.graph
    if softmax:
        g.output[0].name = "probs"
        g.node.extend(
            [
                helper.make_node("Softmax", ["logits"], ["p"], axis=1),
                helper.make_node("Cast", ["p"], ["probs"], to=TensorProto.FLOAT),
            ]
        )
    if nhwc or symbolic:
        dims = ["batch", 64, 64, 1] if nhwc else ["batch", 1, "h", "w"]
        name = "image" if nhwc else "input"
        if nhwc:
            g.node.insert(0, helper.make_node("Transpose", ["image"], ["input"], perm=[0, 3, 1, 2]))
        del g.input[:]
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return dest


def test_softmax_model_must_say_probabilities(tiny_bundle: Path, tmp_path: Path) -> None:
    src = make_tiny_classifier(tmp_path / "m.onnx")
    _replace_model(tiny_bundle, _with_head(src, tmp_path / "p.onnx", softmax=True))
    with pytest.raises(BundleError, match=r"ends in a Softmax.*set \"output\": \"probabilities\""):
        load_bundle(tiny_bundle)
    _engine(tiny_bundle, output="probabilities")
    b = load_bundle(tiny_bundle)
    eng = open_engine(b, b.engines["classifier"], backend="onnxruntime-cpu")
    p = eng.run({"input": np.random.default_rng(0).uniform(-1, 1, (3, 1, 64, 64)).astype(np.float32)})["probs"]
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)  # the rule agrees with what the model computes


def test_layout_and_symbolic_size(tiny_bundle: Path, tmp_path: Path) -> None:
    src = make_tiny_classifier(tmp_path / "m.onnx")
    _replace_model(tiny_bundle, _with_head(src, tmp_path / "nhwc.onnx", softmax=False, nhwc=True))
    with pytest.raises(BundleError, match=r"takes NHWC input \[batch, 64, 64, 1\].*set \"layout\": \"NHWC\""):
        load_bundle(tiny_bundle)
    m = _manifest(tiny_bundle)
    m["input"]["layout"] = "NHWC"
    _save(tiny_bundle, m)
    assert load_bundle(tiny_bundle).input.layout == "NHWC"
    _replace_model(tiny_bundle, _with_head(src, tmp_path / "sym.onnx", softmax=False, symbolic=True))
    m = _manifest(tiny_bundle)
    m["input"]["layout"] = "NCHW"
    _save(tiny_bundle, m)
    assert load_bundle(tiny_bundle).input.size == (64, 64)  # symbolic H, W: any size is the model's to take


def test_missing_licence_file_is_refused(tiny_bundle: Path) -> None:
    m = _manifest(tiny_bundle)
    m["provenance"]["licence_file"] = "LICENSE-weights.txt"
    _save(tiny_bundle, m)
    with pytest.raises(BundleError, match="licence file 'LICENSE-weights.txt'.*missing"):
        load_bundle(tiny_bundle)
    (tiny_bundle / "LICENSE-weights.txt").write_text("MIT\n")
    assert load_bundle(tiny_bundle).licence_files() == ["LICENSE-weights.txt"]


def test_default_bundle_passes_every_check() -> None:
    import sdk

    b = load_bundle(Path(sdk.__file__).parent / "default_bundle")
    assert b.licence_files() == ["LICENSE-fer.txt"]
    assert sha256_file(b.engine_path("classifier")) == b.engines["classifier"].sha256
