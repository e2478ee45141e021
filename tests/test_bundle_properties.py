"""Property-based tests of ``load_bundle``: whatever is done to a valid bundle's manifest or engine bytes, loading gives
a bundle that really works (its classifier opens and gives one score per label) or one of ofer's own errors; never
another exception."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.backends import open_for_role
from runtime.bundle import Bundle, load_bundle
from runtime.errors import OferError

#: Modest by default (CI time); OFER_HYPOTHESIS_EXAMPLES=500 for a deeper search.
SETTINGS = settings(
    max_examples=int(os.environ.get("OFER_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "onnx",
            "trt",
            "fp32",
            "int8",
            "classifier",
            "inpainter",
            "logits",
            "probabilities",
            "image",
            "direct",
            "auto",
            "NHWC",
            "rgb",
            "classifier.onnx",
            "../x",
            "/etc/passwd",
            "a\x00b",
            "x" * 300,
        ]
    ),
)
JSON = st.recursive(
    _leaf,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from runtime.bundle import write_bundle
    from tests.conftest import LABELS7, TINY_INPUT, make_tiny_classifier

    work = tmp_path_factory.mktemp("template")
    src = make_tiny_classifier(work / "src.onnx")
    return write_bundle(
        work / "bundle",
        labels=LABELS7,
        input_spec=TINY_INPUT,
        engines=[{"name": "classifier", "path": src, "file": "classifier.onnx", "role": "classifier"}],
        provenance={"method": "test", "licence": "Apache-2.0"},
    ).path


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON value (the root is ``()``)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _check(folder: Path) -> None:
    """The property: a working bundle, or an ofer error."""
    try:
        bundle = load_bundle(folder)
    except OferError:
        return
    assert isinstance(bundle, Bundle)
    assert len(bundle.labels) >= 2 and all(isinstance(x, str) for x in bundle.labels)
    try:
        engine, spec = open_for_role(bundle, "classifier", backend="onnxruntime-cpu", threads=1)
    except OferError:
        return  # e.g. a corrupt model whose sha256 was re-recorded: ONNX Runtime refuses it, as an EngineError
    h, w = bundle.input.size
    shape = (2, bundle.input.channels, h, w) if bundle.input.layout == "NCHW" else (2, h, w, bundle.input.channels)
    try:
        out = engine.run({engine.input_names[0]: np.zeros(shape, np.float32)})
    except OferError:
        return
    assert out[engine.output_names[0]].shape == (2, len(bundle.labels))


def _copy(template: Path, tmp: str) -> Path:
    folder = Path(tmp) / "b"
    shutil.copytree(template, folder)
    return folder


def _mutate(data: st.DataObject, manifest: Any) -> Any:
    """1-3 random edits of a JSON value: replace a value, delete a key/item, or add one."""
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(manifest)), label="path")
        op = data.draw(st.sampled_from(["replace", "delete", "add"]), label="op")
        if path == ():
            if op == "replace":
                manifest = data.draw(JSON, label="root")
            continue
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        if op == "replace":
            parent[path[-1]] = data.draw(JSON, label="value")
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8), label="key")] = data.draw(JSON, label="value")
        else:
            parent.append(data.draw(JSON, label="value"))
        if not isinstance(manifest, (dict, list)):
            break
    return manifest


@SETTINGS
@given(data=st.data())
def test_manifest_mutations(template: Path, data: st.DataObject) -> None:
    manifest = _mutate(data, json.loads((template / "manifest.json").read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(template, tmp)
        (folder / "manifest.json").write_text(json.dumps(copy.deepcopy(manifest)))
        _check(folder)


@settings(SETTINGS, max_examples=max(10, SETTINGS.max_examples // 2))
@given(data=st.data())
def test_ofer_info_on_mutated_bundles(template: Path, data: st.DataObject) -> None:
    """`ofer info` either describes the bundle (exit 0) or says in one line what is wrong (exit 2)."""
    from sdk.cli.main import main

    manifest = _mutate(data, json.loads((template / "manifest.json").read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(template, tmp)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["info", str(folder)])
    assert code in (0, 2)
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1 and out.getvalue() == ""
    else:
        assert out.getvalue().startswith("bundle ")


@SETTINGS
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(max_size=6)), min_size=1, max_size=4))
def test_manifest_byte_mutations(template: Path, edits: list[tuple[float, int, bytes]]) -> None:
    text = bytearray((template / "manifest.json").read_bytes())
    for where, cut, insert in edits:
        i = int(where * len(text))
        text[i : i + cut] = insert
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(template, tmp)
        (folder / "manifest.json").write_bytes(bytes(text))
        _check(folder)


@SETTINGS
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), st.binary(max_size=8)), min_size=1, max_size=4))
def test_engine_byte_mutations_with_rerecorded_sha256(template: Path, edits: list[tuple[float, int, bytes]]) -> None:
    model = bytearray((template / "classifier.onnx").read_bytes())
    for where, cut, insert in edits:
        i = int(where * len(model))
        model[i : i + cut] = insert
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(template, tmp)
        (folder / "classifier.onnx").write_bytes(bytes(model))
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["engines"]["classifier"]["sha256"] = hashlib.sha256(bytes(model)).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(manifest))
        _check(folder)
