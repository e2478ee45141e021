"""The face verifier: a small CNN (ONNX) that scores roll-aligned candidate crops face / not face.

Trained by ``scripts/train_verifier.py`` on real faces with realistic occluders drawn on them (positives) and on
BlazeFace's own low-threshold false alarms (negatives); the model and its JSON config live in ``runtime/assets``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..engines.onnxruntime_engine import OnnxRuntimeEngine
from ..errors import ConfigError
from .base import Detection
from .geometry import aligned_crops

ASSETS = Path(__file__).resolve().parent.parent / "assets"
VERIFIER_ONNX = ASSETS / "face_verifier.onnx"
VERIFIER_CONFIG = ASSETS / "face_verifier.json"


def load_config(path: str | Path = VERIFIER_CONFIG) -> dict[str, Any]:
    """The verifier's JSON config (crop geometry, normalisation, score combination, thresholds, provenance).

    Raises:
        ConfigError: The file is missing or not valid JSON, or lacks a required key.
    """
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"verifier config not found: {path}; rebuild it with scripts/train_verifier.py --out runtime/assets"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"verifier config {path} is not valid JSON ({exc}); rebuild it with scripts/train_verifier.py"
        ) from None
    missing = {"input", "combination", "candidates"} - set(cfg)
    if missing:
        raise ConfigError(f"verifier config {path} lacks {sorted(missing)}; rebuild it with scripts/train_verifier.py")
    return cfg


def preprocess_crops(crops: np.ndarray, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """BGR uint8 crops ``(N, S, S, 3)`` -> RGB float32 ``(N, 3, S, S)`` normalised as ``(x / 255 - mean) / std``."""
    rgb = crops[..., ::-1].astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(((rgb - mean) / std).transpose(0, 3, 1, 2))


class FaceVerifier:
    """Scores candidate faces: roll-aligned crop (one warp each) -> one batched ONNX run -> logits.

    Args:
        model_path: The verifier ONNX (default: the shipped ``runtime/assets/face_verifier.onnx``).
        config: Its config dict or JSON path (default: the shipped ``face_verifier.json``).
        threads: ONNX Runtime intra-op threads (``None``: its default).
        providers: ONNX Runtime providers; the model is tiny, so CPU.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        config: dict[str, Any] | str | Path | None = None,
        *,
        threads: int | None = None,
        providers: str | Sequence[str] = "cpu",
    ) -> None:
        self.config = config if isinstance(config, dict) else load_config(config or VERIFIER_CONFIG)
        spec = self.config["input"]
        self.size = int(spec["size"])
        self.expand = float(spec["expand"])
        self.mean, self.std = float(spec.get("mean", 0.5)), float(spec.get("std", 0.5))
        # BlazeFace's eye keypoints are guessed when the eyes are hidden (a visor, a hand, a block over the upper
        # half): an upright face then claims a roll of 40-60 degrees and its crop comes out tilted. A candidate
        # claiming more roll than this is also scored upright, and the better of the two views counts.
        upright = spec.get("upright_also_above_deg")
        self.upright_above = None if upright is None else float(np.radians(float(upright)))
        path = Path(model_path) if model_path is not None else VERIFIER_ONNX
        expected = self.config.get("onnx_sha256")
        if model_path is None and expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise ConfigError(
                f"{path} does not match the sha256 in its config; rebuild both with "
                "scripts/train_verifier.py --out runtime/assets"
            )
        self.engine = OnnxRuntimeEngine(path, threads=threads, providers=providers)
        self._input = self.engine.input_names[0]

    def crops(self, frame: np.ndarray, boxes: Sequence[Sequence[float]], rolls: Sequence[float]) -> np.ndarray:
        """The BGR uint8 crops ``(N, S, S, 3)`` the verifier sees for the given boxes and rolls (radians)."""
        return aligned_crops(frame, boxes, rolls, self.size, self.expand)

    def logits_of_crops(self, crops: np.ndarray) -> np.ndarray:
        """Face logits ``(N,)`` of BGR uint8 crops ``(N, S, S, 3)`` (any other size is resized)."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32)
        if crops.shape[1:3] != (self.size, self.size):
            crops = np.stack([cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_AREA) for c in crops])
        out = self.engine.run({self._input: preprocess_crops(crops, self.mean, self.std)})
        return np.asarray(next(iter(out.values())), dtype=np.float32).reshape(len(crops), -1)[:, 0]

    def logits(self, frame: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """Face logits ``(N,)`` of candidate detections in ``frame`` (BGR uint8), cropped upright from their roll.

        With ``input.upright_also_above_deg`` in the config, a candidate rolled by more than that is also cropped
        at roll 0 (in the same batch) and keeps the higher of its two logits; upright candidates cost nothing more.
        """
        if not detections:
            return np.zeros((0,), np.float32)
        boxes, rolls = [d.box for d in detections], [d.roll for d in detections]
        n = len(boxes)
        extra = [] if self.upright_above is None else [i for i in range(n) if abs(rolls[i]) > self.upright_above]
        out = self.logits_of_crops(self.crops(frame, boxes + [boxes[i] for i in extra], rolls + [0.0] * len(extra)))
        if extra:
            out[:n][extra] = np.maximum(out[:n][extra], out[n:])
        return out[:n]
