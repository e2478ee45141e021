"""Convert MediaPipe's BlazeFace face detectors (TFLite) to ONNX, once, offline.

Reproducible: downloads ``mediapipe==0.10.21`` (``pip download --no-deps``), takes
``mediapipe/modules/face_detection/face_detection_{short_range,full_range_sparse}.tflite`` out of the
wheel and rebuilds each graph as ONNX with ``scripts/tflite_to_onnx.py`` (opset 13, NCHW inside, NHWC float input
in [-1, 1] like the original; FP16 weights stored as FP32, sparse weights densified). If ``ai-edge-litert`` is
installed the script runs both models on the same random and real-looking inputs and prints the max abs
difference of every output.

Run it in a throwaway venv (it is not a runtime dependency)::

    python3 -m venv /tmp/conv && /tmp/conv/bin/pip install tflite onnx onnxruntime numpy ai-edge-litert
    /tmp/conv/bin/python scripts/convert_blazeface_detector.py --out runtime/assets
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

MODELS = {
    "blazeface_short_range.onnx": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "blazeface_full_range.onnx": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
}
OUTPUT_NAMES = ("regressors", "classificators")  # same names for both models
PRODUCER = "ofer/scripts/convert_blazeface_detector.py"


def parity_inputs(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Random, smooth (real-looking) and zero inputs in [-1, 1] of the model's NHWC input shape."""
    rng = np.random.default_rng(0)
    h, w = shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    smooth = np.stack([np.sin(6 * xx), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1)[None].astype(np.float32)
    return [rng.uniform(-1, 1, shape).astype(np.float32), smooth, np.zeros(shape, np.float32)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runtime/assets"))
    ap.add_argument("--wheel", type=Path, help="an already downloaded mediapipe wheel (else pip download)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = mediapipe_wheel(args.wheel, Path(tmp))
        args.out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            licence = next(n for n in zf.namelist() if n.endswith(".dist-info/LICENSE"))
            (args.out / "LICENSE-mediapipe.txt").write_bytes(zf.read(licence))
            for onnx_name, member in MODELS.items():
                data = zf.read(member)
                model = convert(data, Path(member).stem, OUTPUT_NAMES, PRODUCER)
                dst = args.out / onnx_name
                onnx.save(model, dst)
                print(f"{member} (sha256 {hashlib.sha256(data).hexdigest()})")
                print(f"  -> {dst} (sha256 {hashlib.sha256(dst.read_bytes()).hexdigest()})")
                shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
                for name, diff in (max_abs_diff(data, dst, parity_inputs(shape), OUTPUT_NAMES) or {}).items():
                    print(f"  parity vs TFLite interpreter: {name} max |diff| = {diff:.3g}")


if __name__ == "__main__":
    main()
