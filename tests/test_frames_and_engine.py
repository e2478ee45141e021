"""Frame validation, face crops, normalisation and the ONNX Runtime engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.bundle import InputSpec
from runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
from runtime.errors import EngineError, InputError
from runtime.frames import as_bgr_frame, read_image
from runtime.preprocess import crop_face, expand_box, softmax, to_tensor
from tests.conftest import make_tiny_classifier

GRAY64 = InputSpec((64, 64), 1, "gray", 1 / 255, (0.5,), (0.5,), 0.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "is None"),
        ("missing.jpg", "not found"),
        ([[1, 2]], "numpy array"),
        (np.full((10, 10, 3), -0.5, np.float32), r"float32 with values in \[-0.5, -0.5\].*cv2.normalize"),
        (np.full((10, 10, 3), 300, np.int16), r"int16 with values in \[300, 300\]"),
        (np.zeros((10, 10, 3), np.complex64), "dtype complex64"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 5), np.uint8), "5 channels"),
        (np.zeros((2, 10, 10, 3), np.uint8), "predict_batch"),
        (np.zeros((10,), np.uint8), "shape"),
    ],
)
def test_bad_frames(bad, message: str) -> None:
    with pytest.raises(InputError, match=message):
        as_bgr_frame(bad)


def test_gray_and_single_channel_frames_become_bgr() -> None:
    g = np.arange(100, dtype=np.uint8).reshape(10, 10)
    for f in (g, g[..., None]):
        out = as_bgr_frame(f)
        assert out.shape == (10, 10, 3) and (out[..., 0] == g).all() and (out[..., 2] == g).all()


def test_read_image_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="could not decode"):
        read_image(bad)
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


def test_crop_takes_the_box_region() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[50:150, 100:200] = 255  # a white square "face"
    crop = crop_face(frame, (100, 50, 200, 150), GRAY64)
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop.min() >= 250  # exactly the white region, nothing from outside
    spec = InputSpec((64, 64), 3, "rgb", 1 / 255, (0.0,), (1.0,), 0.5)
    wide = crop_face(frame, (100, 50, 200, 150), spec)
    assert wide.shape == (64, 64, 3)
    assert wide[32, 32].min() == 255 and wide[2, 2].max() == 0  # margin brings in the black surround


def test_crop_at_the_frame_edge_keeps_scale() -> None:
    frame = np.full((100, 100, 3), 128, np.uint8)
    crop = crop_face(frame, (-20, -20, 40, 40), GRAY64)
    assert crop.shape == (64, 64) and abs(int(crop.mean()) - 128) <= 1


def test_expand_box() -> None:
    assert expand_box((0, 0, 10, 20), 0.0) == (-5.0, 0.0, 15.0, 20.0)
    assert expand_box((0, 0, 10, 10), 0.5) == (-5.0, -5.0, 15.0, 15.0)


def test_to_tensor_normalises() -> None:
    crops = np.array([np.full((64, 64), 255, np.uint8), np.zeros((64, 64), np.uint8)])
    t = to_tensor(crops, GRAY64)
    assert t.shape == (2, 1, 64, 64) and t.dtype == np.float32
    assert np.allclose(t[0], 1.0) and np.allclose(t[1], -1.0)


def test_softmax() -> None:
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert np.allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_engine_runs_and_reports_what_loaded(tmp_path: Path) -> None:
    eng = OnnxRuntimeEngine(make_tiny_classifier(tmp_path / "m.onnx"), threads=1, providers="auto")
    out = eng.run({"input": np.zeros((3, 1, 64, 64), np.float32)})
    assert out["logits"].shape == (3, 7)
    assert eng.providers_loaded == ["CPUExecutionProvider"] and eng.device == "cpu"
    assert eng.describe()["inputs"]["input"] == ["batch", 1, 64, 64]


def test_engine_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not found"):
        OnnxRuntimeEngine(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage")
    with pytest.raises(EngineError, match="could not load corrupt.onnx"):
        OnnxRuntimeEngine(corrupt)
    eng = OnnxRuntimeEngine(make_tiny_classifier(tmp_path / "m.onnx"), threads=1)
    with pytest.raises(InputError, match="expects shape"):
        eng.run({"input": np.zeros((1, 3, 64, 64), np.float32)})
    with pytest.raises(InputError, match="missing"):
        eng.run({"x": np.zeros((1, 1, 64, 64), np.float32)})
    with pytest.raises(EngineError, match="unknown execution provider"):
        OnnxRuntimeEngine(tmp_path / "m.onnx", providers="quantum")
    with pytest.raises(InputError, match="threads"):
        OnnxRuntimeEngine(tmp_path / "m.onnx", threads=0)


def test_labelled_grid_puts_a_label_cell_before_each_row() -> None:
    from runtime.draw import labelled_grid

    cells = [np.full((20, 20, 3), v, np.uint8) for v in (10, 200)]
    grid = labelled_grid([("a", cells), ("b", cells[::-1])], label_width=30)
    assert grid.shape == (40, 70, 3)
    assert (grid[:, :30] < 255).any() and (grid[:20, 30:50] == 10).all() and (grid[20:, 30:50] == 200).all()
