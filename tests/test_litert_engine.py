"""The LiteRT engine (BlazeFace's shipped TFLite models): parity with the ONNX detector on real faces, the choice of
engine, errors, and the fallback to ONNX Runtime where ai-edge-litert is not installed."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.detection import create_detector
from runtime.detection.blazeface import ASSETS, SPECS, BlazeFaceDetector, detector_engine
from runtime.errors import ConfigError, EngineError, InputError

ROOT = Path(__file__).resolve().parents[1]
litert = pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (extra 'litert') is not installed")

from runtime.engines.litert_engine import LiteRTEngine  # noqa: E402

STILLS = (
    "single_face.jpg",
    "multi_face.jpg",
    "0-f1-su-ph.jpg",
    "45-m7-di-ph.jpg",
    "BWPictureHuman.jpg",
    "free-mountain-vector-01.jpg",
)


def _frames(media: Path) -> list[np.ndarray]:
    frames = [cv2.imread(str(media / name)) for name in STILLS]
    cap = cv2.VideoCapture(str(media / "WolfgangLanger_Pexels.mp4"))
    for _ in range(3):
        ok, frame = cap.read()
        assert ok
        frames.append(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


@pytest.mark.parametrize("variant", sorted(SPECS))
def test_litert_detector_matches_onnx_on_real_faces(media_dir: Path, variant: str) -> None:
    a = BlazeFaceDetector(variant, engine="litert", threads=1, score_threshold=0.2, check_geometry=False)
    b = BlazeFaceDetector(variant, engine="onnxruntime", threads=1, score_threshold=0.2, check_geometry=False)
    assert a.engine.backend == "litert" and b.engine.backend == "onnxruntime"
    found = 0
    for frame in _frames(media_dir):
        ra, la, _ = a.raw_outputs(frame)
        rb, lb, _ = b.raw_outputs(frame)
        confident = lb[:, 0] > np.log(0.05 / 0.95)  # where a candidate can come from (score > 0.05)
        assert np.abs(ra - rb)[confident].max(initial=0) < 0.05  # input pixels (values up to ~100)
        assert np.abs(la - lb)[confident].max(initial=0) < 0.01  # logits
        da, db = a.detect(frame), b.detect(frame)
        assert len(da) == len(db)
        for x, y in zip(da, db):
            assert np.allclose(x.box, y.box, atol=0.5) and abs(x.score - y.score) < 1e-3
            assert np.allclose(x.keypoints, y.keypoints, atol=0.5)
        found += len(da)
    assert found >= 8  # the comparison covered real faces, not only empty frames


def test_two_stage_detector_gives_the_same_faces_on_either_engine(media_dir: Path) -> None:
    a, b = create_detector("auto", engine="litert", threads=1), create_detector("auto", engine="onnxruntime", threads=1)
    assert [d.engine.backend for d in a.candidates.detectors] == ["litert", "litert"]
    for frame in _frames(media_dir):
        da, db = a.detect(frame), b.detect(frame)
        assert len(da) == len(db)
        for x, y in zip(da, db):
            assert np.allclose(x.box, y.box, atol=0.5) and abs(x.score - y.score) < 1e-3


def test_engine_choice() -> None:
    assert detector_engine("auto") == "litert"  # installed here
    assert detector_engine("onnxruntime") == "onnxruntime"
    assert detector_engine("auto", providers="cuda") == "onnxruntime"  # LiteRT runs on the CPU only
    assert detector_engine("auto", model_path="other.onnx") == "onnxruntime"
    with pytest.raises(ConfigError, match="unknown detector engine"):
        detector_engine("tflite")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        detector_engine("litert", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="does not take"):
        create_detector("none", engine="litert")


def test_engine_interface_and_errors(tmp_path: Path) -> None:
    eng = LiteRTEngine(ASSETS / SPECS["blazeface-short"].tflite, threads=1)
    assert eng.input_names == ("input",) and set(eng.output_names) == {"regressors", "classificators"}
    assert eng.describe()["backend"] == "litert" and eng.describe()["inputs"] == {"input": [1, 128, 128, 3]}
    out = eng.run({"input": np.zeros((1, 128, 128, 3), np.float32)})
    assert out["regressors"].shape == (1, 896, 16) and out["classificators"].shape == (1, 896, 1)
    with pytest.raises(InputError, match="expects shape"):
        eng.run({"input": np.zeros((1, 64, 64, 3), np.float32)})
    with pytest.raises(InputError, match="missing"):
        eng.run({"x": np.zeros((1, 128, 128, 3), np.float32)})
    eng.close()
    eng.close()
    with pytest.raises(EngineError, match="closed"):
        eng.run({"input": np.zeros((1, 128, 128, 3), np.float32)})
    with pytest.raises(EngineError, match="not found"):
        LiteRTEngine(tmp_path / "missing.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(EngineError, match="could not load"):
        LiteRTEngine(tmp_path / "bad.tflite")
    with pytest.raises(InputError, match="threads"):
        LiteRTEngine(ASSETS / SPECS["blazeface-short"].tflite, threads=0)


def test_without_litert_the_detector_runs_on_onnxruntime() -> None:
    code = (
        "import sys; sys.modules['ai_edge_litert'] = None\n"  # as if the package were not installed
        "from runtime.detection import create_detector\n"
        "from runtime.errors import EngineError\n"
        "d = create_detector('auto', threads=1)\n"
        "print(sorted({p.engine.backend for p in d.candidates.detectors}))\n"
        "try:\n    create_detector('blazeface-short', engine='litert')\n"
        "except EngineError as e:\n    print('EngineError', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "['onnxruntime']" in out
    assert "EngineError" in out and "pip install 'ofer[litert]'" in out


def test_tflite_assets_are_documented() -> None:
    readme = (ROOT / "runtime" / "assets" / "README.md").read_text()
    notice = (ROOT / "NOTICE").read_text()
    for spec in SPECS.values():
        sha = hashlib.sha256((ASSETS / spec.tflite).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(spec.tflite)}`.*`{sha}`", readme), f"{spec.tflite}: sha256 not in README"
        assert spec.tflite in notice


def test_litert_prints_nothing_on_stderr() -> None:
    code = (
        "from runtime.detection import create_detector\n"
        "import numpy as np\n"
        "create_detector('auto', threads=1).detect(np.zeros((90, 160, 3), np.uint8))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert res.stderr == ""
