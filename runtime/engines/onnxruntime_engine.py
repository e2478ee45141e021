"""ONNX Runtime engine: CPU by default, CUDA or TensorRT execution providers when onnxruntime-gpu loads them."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EngineError, InputError

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_NP_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build lists (listed is not the same as loadable)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def cache_root() -> Path:
    """ofer's user cache folder: ``$OFER_CACHE``, else ``$XDG_CACHE_HOME/ofer``, else ``~/.cache/ofer``."""
    if os.environ.get("OFER_CACHE"):
        return Path(os.environ["OFER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ofer"


def gpu_key() -> str:
    """A folder-safe name of GPU 0 and its compute capability (``NVIDIA-H200-sm90``), best effort.

    Asks the CUDA binding when one is installed, else ``nvidia-smi``; ``unknown-gpu`` when neither answers.
    """
    name = cc = ""
    try:
        from .cuda_memory import gpu_identity

        ident = gpu_identity()
        name, cc = ident["name"], ident["compute_capability"]
    except Exception:  # no binding / no GPU: try nvidia-smi
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            name, _, cc = out.partition(",")
        except (OSError, subprocess.SubprocessError):
            return "unknown-gpu"
    key = re.sub(r"[^A-Za-z0-9.]+", "-", f"{name.strip()}-sm{cc.strip().replace('.', '')}").strip("-")
    return key[:100] or "unknown-gpu"


def trt_ep_cache_dir(model_sha256: str, gpu: str | None = None) -> Path:
    """Where ONNX Runtime's TensorRT execution provider caches engines for one model on one GPU:
    ``<cache>/trt-ep/<model sha256[:16]>/<gpu>`` (never inside a bundle: bundles are shared and may be read-only)."""
    return cache_root() / "trt-ep" / model_sha256[:16] / (gpu or gpu_key())


def provider_args(requested: Sequence[str], trt_cache_dir: str | os.PathLike[str] | None) -> list:
    """ONNX Runtime ``providers`` entries: the TensorRT EP gets its engine cache enabled in ``trt_cache_dir``."""
    out: list = []
    for p in requested:
        if p == "TensorrtExecutionProvider":
            out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache_dir)}))
        else:
            out.append(p)
    return out


def _resolve_providers(providers: str | Sequence[str]) -> list[str]:
    if isinstance(providers, str):
        if providers == "auto":
            listed = available_providers()
            order = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
            return [p for p in order if p in listed] or ["CPUExecutionProvider"]
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    out = []
    for p in providers:
        full = PROVIDER_ALIASES.get(p.lower(), p)
        if full not in PROVIDER_ALIASES.values():
            raise EngineError(f"unknown execution provider {p!r}; use one of: auto, cpu, cuda, tensorrt")
        out.append(full)
    if "CPUExecutionProvider" not in out:
        out.append("CPUExecutionProvider")
    return out


class OnnxRuntimeEngine:
    """An ONNX model run by ONNX Runtime.

    Args:
        path: The ``.onnx`` file (names the engine in messages; read once when ``model_bytes`` is not given).
        model_bytes: The model's bytes, already checked (a bundle's :meth:`~runtime.bundle.Bundle.read_engine`);
            the session is built from them and the file is not read again. Models load from bytes only, so external
            data files are never read (bundles refuse them).
        threads: Intra-op threads (``None``: ONNX Runtime's default). Inter-op is pinned to 1.
        providers: ``"auto"`` (TensorRT, CUDA, then CPU: whichever actually load), ``"cpu"``, ``"cuda"``,
            ``"tensorrt"`` or a list of provider names.
        trt_cache_dir: Where the TensorRT execution provider keeps its engine cache (default:
            :func:`trt_ep_cache_dir` of the model's sha256 and this GPU, in the user's cache folder).

    ``providers_loaded`` says what actually loaded (from ``session.get_providers()``), which can differ from what
    was asked for: onnxruntime-gpu lists CUDA even on machines without a GPU and silently falls back to CPU.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model_bytes: bytes | None = None,
        threads: int | None = None,
        providers: str | Sequence[str] = "auto",
        trt_cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if model_bytes is None:
            try:
                model_bytes = self.path.read_bytes()
            except OSError:
                raise EngineError(f"ONNX model not found or not readable: {self.path}") from None
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Worker threads that spin after a run keep the cores busy while the next engine of the pipeline (detector,
        # then classifier) wants them: with several small engines back to back, spinning costs more than it saves.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        requested = _resolve_providers(providers)
        self.trt_cache_dir = None
        if "TensorrtExecutionProvider" in requested:
            self.trt_cache_dir = Path(trt_cache_dir or trt_ep_cache_dir(hashlib.sha256(model_bytes).hexdigest()))
            self.trt_cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.session = ort.InferenceSession(
                model_bytes, sess_options=opts, providers=provider_args(requested, self.trt_cache_dir)
            )
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt/unsupported models
            raise EngineError(
                f"ONNX Runtime could not load {self.path.name}: {str(exc).splitlines()[0]}; "
                "the file may be corrupt or need a newer onnxruntime — re-export the model"
            ) from None
        self.providers_requested = requested
        self.providers_loaded = list(self.session.get_providers())
        self.threads = threads
        self._inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_names = tuple(self._inputs)
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    @property
    def device(self) -> str:
        """``tensorrt``, ``cuda`` or ``cpu``: the best provider that actually loaded."""
        for full, short in (("TensorrtExecutionProvider", "tensorrt"), ("CUDAExecutionProvider", "cuda")):
            if full in self.providers_loaded:
                return short
        return "cpu"

    def input_shape(self, name: str) -> list[int | str | None]:
        """Declared shape of an input (symbolic dims as strings)."""
        return list(self._inputs[name].shape)

    def input_dtype(self, name: str) -> np.dtype:
        """numpy dtype the model expects for an input."""
        return np.dtype(_NP_TYPES.get(self._inputs[name].type, np.float32))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Inputs are checked for names, rank and fixed dimensions first.

        A :meth:`close` from another thread lets a run already under way finish; the next one raises
        :class:`EngineError`.
        """
        session = self.session  # one reference for the whole run: close() may clear the attribute meanwhile
        if session is None:
            raise EngineError(f"engine {self.path.name} was closed; make a new Recognizer (or engine) to run again")
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputError(f"{self.path.name} needs inputs {list(self.input_names)}; missing {missing}")
        feed = {}
        for name in self.input_names:
            arr = np.asarray(inputs[name])
            want = self._inputs[name].shape
            if arr.ndim != len(want) or any(isinstance(w, int) and w != a for w, a in zip(want, arr.shape)):
                raise InputError(f"{self.path.name} input {name!r} expects shape {want}, got {list(arr.shape)}")
            feed[name] = np.ascontiguousarray(arr, dtype=self.input_dtype(name))
        outs = session.run(None, feed)
        return dict(zip(self.output_names, outs))

    def close(self) -> None:
        """Release the ONNX Runtime session (idempotent); a closed engine raises :class:`EngineError` on use."""
        self.session = None

    def describe(self) -> dict[str, object]:
        """What actually loaded."""
        return {
            "backend": self.backend,
            "file": self.path.name,
            "device": self.device,
            "providers_loaded": self.providers_loaded,
            "threads": self.threads,
            "inputs": {n: self.input_shape(n) for n in self.input_names},
        }
