"""Property tests: whatever array a user passes to predict/predict_batch (any dtype, shape, values), the answer is
valid predictions or one of ofer's own errors, never a crash from deep inside or a NaN label."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import sdk  # noqa: E402
from runtime.errors import OferError  # noqa: E402
from tests.conftest import LABELS7, TINY_INPUT, make_tiny_classifier  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from(
    [
        np.uint8,
        np.uint16,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint32,
        np.float16,
        np.float32,
        np.float64,
        np.bool_,
        np.complex64,
    ]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=24)
FRAME_SHAPES = st.tuples(st.integers(0, 48), st.integers(0, 48), st.sampled_from([None, 1, 2, 3, 4, 5]))


@pytest.fixture(scope="module")
def recognizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, sdk.Recognizer]:
    from runtime.bundle import write_bundle

    tmp = tmp_path_factory.mktemp("prop")
    onnx_path = make_tiny_classifier(tmp / "src.onnx")
    write_bundle(
        tmp / "bundle",
        labels=LABELS7,
        input_spec=TINY_INPUT,
        engines=[
            {
                "name": "classifier",
                "path": onnx_path,
                "file": "classifier.onnx",
                "format": "onnx",
                "precision": "fp32",
                "role": "classifier",
            }
        ],
        provenance={"method": "test"},
    )
    return {
        "none": sdk.Recognizer(tmp / "bundle", detector="none", threads=1),
        "auto": sdk.Recognizer(tmp / "bundle", detector="auto", threads=1),
    }


def _valid(predictions: list, labels: tuple[str, ...]) -> None:
    for p in predictions:
        assert p.label in labels
        assert math.isfinite(p.confidence) and 0.0 <= p.confidence <= 1.0
        assert all(math.isfinite(v) for v in p.box) and p.box[2] > p.box[0] and p.box[3] > p.box[1]
        assert abs(sum(p.scores.values()) - 1.0) < 1e-3 and p.confidence == max(p.scores.values())
        assert p.scores[p.label] == p.confidence
        json.dumps(p.to_dict(), allow_nan=False)


def _frame(data: st.DataObject) -> np.ndarray:
    dtype = data.draw(DTYPES)
    h, w, c = data.draw(FRAME_SHAPES)
    shape = (h, w) if c is None else (h, w, c)
    if data.draw(st.booleans()):  # any values, NaN and infinities included
        return data.draw(hnp.arrays(dtype, shape))
    kind = np.dtype(dtype).kind
    if kind == "b":
        elements = st.booleans()
    elif kind in "iu":
        elements = st.integers(0, min(255, int(np.iinfo(dtype).max)))
    elif kind == "f":  # an image in [0, 1] or in [0, 255]
        elements = st.floats(0, 1.0 if data.draw(st.booleans()) else 255.0, width=16)
    else:
        elements = st.complex_numbers(max_magnitude=1, width=64)
    return data.draw(hnp.arrays(dtype, shape, elements=elements))


@pytest.mark.parametrize("detector", ["none", "auto"])
@SETTINGS
@given(data=st.data())
def test_predict_any_frame(recognizers: dict, detector: str, data: st.DataObject) -> None:
    rec = recognizers[detector]
    frame = _frame(data)
    try:
        out = rec.predict(frame)
    except OferError:
        return
    _valid(out, tuple(rec.labels))
    assert frame.ndim in (2, 3) and min(frame.shape[:2]) > 0
    if detector == "none":
        assert len(out) == 1


@SETTINGS
@given(arrays=st.lists(hnp.arrays(DTYPES, SHAPES), max_size=4))
def test_predict_batch_any_list(recognizers: dict, arrays: list) -> None:
    rec = recognizers["none"]
    try:
        out = rec.predict_batch(arrays)
    except OferError:
        return
    assert len(out) == len(arrays)
    for preds in out:
        _valid(preds, tuple(rec.labels))


@SETTINGS
@given(batch=hnp.arrays(st.sampled_from([np.uint8, np.float32, np.uint16]), SHAPES))
def test_predict_batch_any_array(recognizers: dict, batch: np.ndarray) -> None:
    rec = recognizers["none"]
    try:
        out = rec.predict_batch(batch)
    except OferError:
        return
    assert batch.ndim == 4 and len(out) == len(batch)
    for preds in out:
        _valid(preds, tuple(rec.labels))


@SETTINGS
@given(
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.lists(st.integers(0, 255), max_size=6),
        st.dictionaries(st.text(max_size=2), st.integers()),
    )
)
def test_predict_non_arrays(recognizers: dict, value: object, tmp_path_factory: pytest.TempPathFactory) -> None:
    rec = recognizers["none"]
    try:
        out = rec.predict(value) if not isinstance(value, str) else rec.predict(str(Path("/nonexistent") / value))
    except OferError:
        return
    _valid(out, tuple(rec.labels))
