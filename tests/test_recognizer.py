"""sdk.Recognizer on real faces with the default bundle, and every documented bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdk
from runtime.errors import BundleError, ConfigError, EngineError, InputError
from sdk.recognizer import DEFAULT_BUNDLE


@pytest.fixture(scope="module")
def rec() -> sdk.Recognizer:
    return sdk.Recognizer(threads=1)


@pytest.mark.parametrize("image, expected", [("0-f1-su-ph.jpg", "surprise"), ("0-f15-hao-ph.jpg", "happy")])
def test_default_bundle_on_posed_faces(rec: sdk.Recognizer, media_dir: Path, image: str, expected: str) -> None:
    preds = rec.predict(str(media_dir / image))
    assert len(preds) == 1
    p = preds[0]
    assert p.label == expected, p.scores
    assert p.label == max(p.scores, key=p.scores.get) and p.confidence == p.scores[p.label]
    assert abs(sum(p.scores.values()) - 1.0) < 1e-4
    assert list(p.scores) == list(rec.labels)
    assert p.pipeline == "direct"
    assert {"decode", "detect", "crop", "classify", "total"} <= set(p.timings_ms)
    assert all(v >= 0 for v in p.timings_ms.values())


def test_multi_face_and_batch(rec: sdk.Recognizer, media_dir: Path) -> None:
    import cv2

    multi = cv2.imread(str(media_dir / "multi_face.jpg"))
    single = cv2.imread(str(media_dir / "single_face.jpg"))
    preds = rec.predict(multi)
    assert len(preds) >= 4
    areas = [(p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) for p in preds]
    assert areas == sorted(areas, reverse=True)
    batch = rec.predict_batch([multi, single, np.zeros((50, 60, 3), np.uint8)])
    assert [len(b) for b in batch] == [len(preds), 1, 0]
    for a, b in zip(batch[0], preds):
        assert a.box == b.box and a.label == b.label
        assert np.allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-5)


def test_grayscale_frame(rec: sdk.Recognizer, media_dir: Path) -> None:
    import cv2

    gray = cv2.imread(str(media_dir / "0-f1-su-ph.jpg"), cv2.IMREAD_GRAYSCALE)
    assert rec.predict(gray)[0].label == "surprise"


def test_detector_none_and_roi(media_dir: Path) -> None:
    import cv2

    frame = cv2.imread(str(media_dir / "0-f15-hao-ph.jpg"))
    auto = sdk.Recognizer(threads=1).predict(frame)[0]
    x1, y1, x2, y2 = (int(v) for v in auto.box)
    crop = frame[y1:y2, x1:x2]
    none = sdk.Recognizer(detector="none", threads=1).predict(crop)
    assert len(none) == 1 and none[0].box == (0.0, 0.0, float(crop.shape[1]), float(crop.shape[0]))
    assert none[0].label == "happy"
    roi = sdk.Recognizer(detector="roi", roi=auto.box, threads=1).predict(frame)
    assert len(roi) == 1 and roi[0].label == auto.label
    assert np.allclose(list(roi[0].scores.values()), list(auto.scores.values()), atol=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "is None"),
        (np.full((64, 64, 3), 2000.0), "float64 with values in"),
        (np.zeros((64, 64, 5), np.uint8), "5 channels"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        ("/no/such/image.jpg", "not found"),
        (np.zeros((2, 64, 64, 3), np.uint8), "predict_batch"),
    ],
)
def test_bad_frames(rec: sdk.Recognizer, bad, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rec.predict(bad)


def test_bad_batches(rec: sdk.Recognizer) -> None:
    with pytest.raises(InputError, match="list of frames"):
        rec.predict_batch("image.jpg")
    with pytest.raises(InputError, match="frame 1 is None"):
        rec.predict_batch([np.zeros((64, 64, 3), np.uint8), None])
    assert rec.predict_batch([]) == []


def test_bad_configuration(tmp_path: Path, tiny_bundle: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        sdk.Recognizer(tmp_path / "missing")
    with pytest.raises(ConfigError, match="unknown backend"):
        sdk.Recognizer(tiny_bundle, backend="tpu")
    with pytest.raises(ConfigError, match="unknown pipeline"):
        sdk.Recognizer(tiny_bundle, pipeline="magic")
    with pytest.raises(ConfigError, match="inpainter"):
        sdk.Recognizer(tiny_bundle, pipeline="inpaint")
    with pytest.raises(ConfigError, match="needs roi"):
        sdk.Recognizer(tiny_bundle, detector="roi")
    with pytest.raises(ConfigError, match="only used with detector='roi'"):
        sdk.Recognizer(tiny_bundle, roi=(0, 0, 10, 10))
    with pytest.raises(ConfigError, match="empty"):
        sdk.Recognizer(tiny_bundle, detector="roi", roi=(10, 10, 5, 20))
    with pytest.raises(ConfigError, match="unknown detector|valid"):
        sdk.Recognizer(tiny_bundle, detector="haar")
    with pytest.raises(EngineError, match="no int8"):
        sdk.Recognizer(tiny_bundle, precision="int8")
    with pytest.raises(ConfigError, match="max_faces"):
        sdk.Recognizer(tiny_bundle, max_faces=0)


def test_tampered_default_bundle_copy(tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    onnx = next(copy.glob("*.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="integrity check"):
        sdk.Recognizer(copy)


def test_default_bundle_records_source_and_licence() -> None:
    m = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())
    prov = m["provenance"]
    assert "fer" in json.dumps(prov["source"]).lower() and "MIT" in json.dumps(prov["licence"])


@pytest.mark.parametrize(
    "code", ["import sdk", "import sdk; sdk.Recognizer().predict(__import__('numpy').zeros((64,64,3),'uint8'))"]
)
def test_never_imports_torch(code: str) -> None:
    probe = f"{code}\nimport sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_import_sdk_is_light() -> None:
    probe = "import sys; import sdk; print(sorted(m for m in ('onnxruntime', 'cv2', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_close_releases_every_engine(media_dir: Path) -> None:
    import cv2

    frame = cv2.imread(str(media_dir / "single_face.jpg"))
    with sdk.Recognizer(threads=1) as rec:
        assert len(rec.predict(frame)) == 1
    with pytest.raises(sdk.EngineError, match="closed"):
        rec.predict(frame)
    rec.close()  # idempotent
    assert rec.classifier.session is None


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_threads_is_one_clear_error(threads) -> None:
    with pytest.raises(sdk.ConfigError, match="threads"):
        sdk.Recognizer(threads=threads)


def test_default_threads_is_one_per_engine() -> None:
    rec = sdk.Recognizer()
    assert rec.classifier.describe()["threads"] == 1
