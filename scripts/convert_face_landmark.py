"""Convert MediaPipe's face landmark model (Face Mesh, TFLite) to ONNX, once, offline.

Takes ``mediapipe/modules/face_landmark/face_landmark.tflite`` out of the ``mediapipe==0.10.21`` wheel
(``pip download --no-deps``) and rebuilds it as ONNX with ``scripts/tflite_to_onnx.py`` (opset 13; FP16 weights
stored as FP32). Model I/O, as in MediaPipe's ``FaceLandmarkCpu`` graph:

- ``input``: float32 ``[batch, 192, 192, 3]``, RGB in [0, 1], the rotated face ROI warped to 192x192.
- ``landmarks``: float32 ``[batch, 1, 1, 1404]``: 468 x (x, y, z) in input pixels (z in the same scale as x).
- ``face_flag``: float32 ``[batch, 1, 1, 1]``: face-presence **logit** (MediaPipe applies a sigmoid, threshold
  0.5).

The batch dimension is dynamic in the ONNX file (the TFLite model has batch 1), so several faces run in one call.

If ``ai-edge-litert`` is installed it prints the max abs difference to the TFLite interpreter on random, smooth
and constant inputs; ``scripts/record_face_landmark_reference.py`` checks real face crops.

Run it in a throwaway venv (not a runtime dependency)::

    python3 -m venv /tmp/conv && /tmp/conv/bin/pip install tflite onnx onnxruntime numpy ai-edge-litert
    /tmp/conv/bin/python scripts/convert_face_landmark.py --out runtime/assets
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx

from tflite_to_onnx import convert, max_abs_diff, mediapipe_wheel

MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
ONNX_NAME = "face_landmark.onnx"
OUTPUT_NAMES = ("landmarks", "face_flag")  # TFLite: conv2d_21 [1,1,1,1404], conv2d_31 [1,1,1,1]
PRODUCER = "ofer/scripts/convert_face_landmark.py"
SIZE = 192


def parity_inputs(n_random: int = 8) -> list[np.ndarray]:
    """Uniform-random, smooth (real-looking) and constant grey inputs in [0, 1], ``(1, 192, 192, 3)``."""
    rng = np.random.default_rng(0)
    shape = (1, SIZE, SIZE, 3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    smooth = 0.5 + 0.5 * np.stack([np.sin(6 * xx), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1)[None]
    return [rng.uniform(0, 1, shape).astype(np.float32) for _ in range(n_random)] + [
        smooth.astype(np.float32),
        np.full(shape, 0.5, np.float32),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runtime/assets"))
    ap.add_argument("--wheel", type=Path, help="an already downloaded mediapipe wheel (else pip download)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = mediapipe_wheel(args.wheel, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MEMBER)
    args.out.mkdir(parents=True, exist_ok=True)
    model = convert(data, Path(MEMBER).stem, OUTPUT_NAMES, PRODUCER, dynamic_batch=True)
    dst = args.out / ONNX_NAME
    onnx.save(model, dst)
    print(f"{MEMBER} (sha256 {hashlib.sha256(data).hexdigest()})")
    print(f"  -> {dst} (sha256 {hashlib.sha256(dst.read_bytes()).hexdigest()})")
    for name, diff in (max_abs_diff(data, dst, parity_inputs(), OUTPUT_NAMES) or {}).items():
        print(f"  parity vs TFLite interpreter (random/smooth/grey inputs): {name} max |diff| = {diff:.3g}")


if __name__ == "__main__":
    main()
