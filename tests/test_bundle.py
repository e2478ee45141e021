"""The bundle format: writing, loading, schema validation, integrity and path safety."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from runtime.bundle import SCHEMA_VERSION, add_engines, load_bundle, sha256_file, write_bundle
from runtime.errors import BundleError
from tests.conftest import LABELS7, TINY_INPUT, make_tiny_classifier


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _rewrite(bundle: Path, **changes) -> None:
    m = _manifest(bundle)
    m.update(changes)
    (bundle / "manifest.json").write_text(json.dumps(m))


def test_round_trip(tiny_bundle: Path) -> None:
    b = load_bundle(tiny_bundle)
    assert b.labels == tuple(LABELS7)
    assert b.input.size == (64, 64) and b.input.channels == 1 and b.input.crop_margin == 0.1
    e = b.engines["classifier"]
    assert e.sha256 == sha256_file(tiny_bundle / "classifier.onnx")
    assert e.format == "onnx" and e.role == "classifier" and "onnxruntime" in e.built_with
    assert b.pipelines == ("direct",)
    assert load_bundle(tiny_bundle / "manifest.json").path == tiny_bundle


def test_refuses_to_overwrite_without_force(tiny_bundle: Path, tmp_path: Path) -> None:
    src = make_tiny_classifier(tmp_path / "other.onnx", seed=3)
    kwargs = dict(
        labels=LABELS7,
        input_spec=TINY_INPUT,
        engines=[{"name": "classifier", "path": src, "format": "onnx", "precision": "fp32", "role": "classifier"}],
    )
    before = sha256_file(tiny_bundle / "classifier.onnx")
    with pytest.raises(BundleError, match="already exists.*force"):
        write_bundle(tiny_bundle, **kwargs)
    assert sha256_file(tiny_bundle / "classifier.onnx") == before
    b = write_bundle(tiny_bundle, force=True, **kwargs)
    assert "other.onnx" in {e.file for e in b.engines.values()}
    assert not (tiny_bundle / "classifier.onnx").exists()  # replaced whole, nothing stale left behind


def test_tampered_file_is_refused(tiny_bundle: Path) -> None:
    with open(tiny_bundle / "classifier.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="integrity check.*classifier.onnx"):
        load_bundle(tiny_bundle)


def test_missing_engine_file(tiny_bundle: Path) -> None:
    (tiny_bundle / "classifier.onnx").unlink()
    with pytest.raises(BundleError, match="incomplete.*classifier.onnx"):
        load_bundle(tiny_bundle)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.onnx", "sub/../../x.onnx"])
def test_paths_outside_the_bundle_are_refused(tiny_bundle: Path, bad: str) -> None:
    m = _manifest(tiny_bundle)
    m["engines"]["classifier"]["file"] = bad
    (tiny_bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="unsafe bundle.*outside the bundle"):
        load_bundle(tiny_bundle)


def test_symlink_out_of_the_bundle_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.onnx"
    shutil.copyfile(tiny_bundle / "classifier.onnx", outside)
    (tiny_bundle / "classifier.onnx").unlink()
    os.symlink(outside, tiny_bundle / "classifier.onnx")
    with pytest.raises(BundleError, match="unsafe bundle.*link"):
        load_bundle(tiny_bundle)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "schema_version"),
        ({"labels": ["only"]}, "labels"),
        ({"labels": ["a", "a", "b"]}, "duplicate"),
        ({"input": {**TINY_INPUT, "channels": 3}}, "channels"),
        ({"input": {**TINY_INPUT, "size": [64]}}, "size"),
        ({"input": {**TINY_INPUT, "std": [0.0]}}, "std"),
        ({"pipelines": ["inpaint"]}, "no inpainter"),
        ({"pipelines": ["teleport"]}, "pipelines"),
    ],
)
def test_schema_violations(tiny_bundle: Path, changes: dict, message: str) -> None:
    _rewrite(tiny_bundle, **changes)
    with pytest.raises(BundleError, match=message):
        load_bundle(tiny_bundle)


def test_engine_field_violations(tiny_bundle: Path) -> None:
    m = _manifest(tiny_bundle)
    m["engines"]["classifier"]["precision"] = "int4"
    (tiny_bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="precision"):
        load_bundle(tiny_bundle)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)


def test_add_engines(tiny_bundle: Path, tmp_path: Path) -> None:
    src = make_tiny_classifier(tmp_path / "c2.onnx", seed=1)
    entry = {"name": "classifier_fp16", "path": src, "format": "onnx", "precision": "fp16", "role": "classifier"}
    b = add_engines(tiny_bundle, [entry])
    assert set(b.engines) == {"classifier", "classifier_fp16"}
    with pytest.raises(BundleError, match="already has an engine"):
        add_engines(tiny_bundle, [entry])


def test_attach_file_records_sha256_and_keeps_engines(tiny_bundle: Path, tmp_path: Path) -> None:
    from runtime.bundle import attach_file

    cache = tmp_path / "calib.cache"
    cache.write_text("TRT-100300-MinMaxCalibration\ninput: 3c010a14\n")
    b = attach_file(tiny_bundle, cache, "trt_calibration_cache", {"method": "minmax"})
    entry = b.manifest["trt_calibration_cache"]
    assert entry == {"file": "calib.cache", "sha256": sha256_file(cache), "method": "minmax"}
    assert (tiny_bundle / "calib.cache").read_text() == cache.read_text()
    assert set(b.engines) == {"classifier"}
    (tiny_bundle / "calib.cache").write_text("TRT-100300-MinMaxCalibration\ninput: 00000000\n")
    with pytest.raises(BundleError, match="integrity check: 'calib.cache'"):
        load_bundle(tiny_bundle)
    assert load_bundle(tiny_bundle, verify=False).manifest["trt_calibration_cache"]["method"] == "minmax"
    (tiny_bundle / "calib.cache").unlink()
    with pytest.raises(BundleError, match="attached 'trt_calibration_cache' file 'calib.cache' is missing"):
        load_bundle(tiny_bundle)
