"""ONNX Runtime engine: CPU by default, CUDA or TensorRT execution providers when onnxruntime-gpu loads them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EngineError, InputError

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build lists (listed is not the same as loadable)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


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
        path: The ``.onnx`` file.
        threads: Intra-op threads (``None``: ONNX Runtime's default). Inter-op is pinned to 1.
        providers: ``"auto"`` (TensorRT, CUDA, then CPU: whichever actually load), ``"cpu"``, ``"cuda"``,
            ``"tensorrt"`` or a list of provider names.
        trt_cache_dir: Where the TensorRT execution provider keeps its engine cache.

    ``providers_loaded`` says what actually loaded (from ``session.get_providers()``), which can differ from what
    was asked for: onnxruntime-gpu lists CUDA even on machines without a GPU and silently falls back to CPU.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None,
                 providers: str | Sequence[str] = "auto", trt_cache_dir: str | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise EngineError(f"ONNX model not found: {self.path}")
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
        provider_args: list = []
        for p in requested:
            if p == "TensorrtExecutionProvider":
                cache = trt_cache_dir or str(self.path.parent / ".trt_cache")
                provider_args.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}))
            else:
                provider_args.append(p)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=provider_args)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt/unsupported models
            raise EngineError(f"ONNX Runtime could not load {self.path.name}: {str(exc).splitlines()[0]}; "
                              "the file may be corrupt or need a newer onnxruntime — re-export the model") from None
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
        """Run one batch. Inputs are checked for names, rank and fixed dimensions first."""
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
        outs = self.session.run(None, feed)
        return dict(zip(self.output_names, outs))

    def describe(self) -> dict[str, object]:
        """What actually loaded."""
        return {"backend": self.backend, "file": self.path.name, "device": self.device,
                "providers_loaded": self.providers_loaded, "threads": self.threads,
                "inputs": {n: self.input_shape(n) for n in self.input_names}}
