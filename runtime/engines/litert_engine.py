"""LiteRT (TensorFlow Lite) engine: runs ``.tflite`` models with the XNNPACK CPU delegate.

Used for the small MediaPipe models that ship as TFLite (BlazeFace): on a 2-core x86 CPU, XNNPACK runs BlazeFace
short-range in about half the time ONNX Runtime takes on the converted ONNX (``benchmarks/runtime_latency.py``).
``ai-edge-litert`` is optional (the ``litert`` extra); :func:`litert_available` says whether it imports here.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import EngineError, InputError

_AVAILABLE: bool | None = None
_FIRST = threading.Lock()
_first_done = False


def _allocate_quietly(interpreter: object) -> None:
    """``allocate_tensors()``; the first time in a process with stderr (fd 2) sent to /dev/null.

    LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to stderr once per process, with no
    setting to turn it off; ofer's command-line tools promise one line on stderr per error.
    """
    global _first_done
    with _FIRST:
        if _first_done:
            interpreter.allocate_tensors()  # type: ignore[attr-defined]
            return
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            interpreter.allocate_tensors()  # type: ignore[attr-defined]
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        _first_done = True


def litert_available() -> bool:
    """Whether ``ai_edge_litert`` imports here (checked once per process)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            from ai_edge_litert.interpreter import Interpreter  # noqa: F401

            _AVAILABLE = True
        except Exception:  # not installed, or a wheel that does not load on this platform
            _AVAILABLE = False
    return _AVAILABLE


class LiteRTEngine:
    """A ``.tflite`` model run by the LiteRT interpreter (XNNPACK on the CPU).

    Args:
        path: The ``.tflite`` file.
        threads: Interpreter threads (``None``: 1; more threads were measured slower for these small models on
            2 cores, where the other engines of the pipeline want the second core).

    Inputs and outputs are named as in the model. One engine serves one thread at a time (the interpreter keeps
    its tensors between calls); every output is copied out, so results stay valid after the next :meth:`run`.

    Raises:
        EngineError: ``ai-edge-litert`` is not installed, or the model does not load.
    """

    backend = "litert"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        if not litert_available():
            raise EngineError(
                "the LiteRT engine needs ai-edge-litert: pip install 'ofer[litert]' (or use engine='onnxruntime')"
            )
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.threads = 1 if threads is None else threads
        try:
            content = self.path.read_bytes()
        except OSError:
            raise EngineError(f"TFLite model not found or not readable: {self.path}") from None
        try:
            self.interpreter = Interpreter(model_content=content, num_threads=self.threads)
            _allocate_quietly(self.interpreter)
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for corrupt or unsupported models
            raise EngineError(
                f"LiteRT could not load {self.path.name}: {str(exc).splitlines()[0]}; the file may "
                "be corrupt — restore it, or use engine='onnxruntime'"
            ) from None
        ins = self.interpreter.get_input_details()
        outs = self.interpreter.get_output_details()
        self._inputs = {d["name"]: d for d in ins}
        self._outputs = [(d["name"], d["index"]) for d in outs]
        self.input_names = tuple(self._inputs)
        self.output_names = tuple(n for n, _ in self._outputs)

    def input_shape(self, name: str) -> list[int]:
        """Declared shape of an input."""
        return [int(v) for v in self._inputs[name]["shape"]]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch (the batch the model was built for); inputs are checked for names and shape first.

        A :meth:`close` from another thread (``Recognizer.close()`` while a stream runs) lets a run already under
        way finish; the next one raises :class:`EngineError`.
        """
        interpreter = self.interpreter  # one reference for the whole run: close() may clear the attribute meanwhile
        if interpreter is None:
            raise EngineError(f"engine {self.path.name} was closed; make a new Recognizer (or detector) to run again")
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputError(f"{self.path.name} needs inputs {list(self.input_names)}; missing {missing}")
        for name, d in self._inputs.items():
            arr = np.asarray(inputs[name])
            if arr.shape != tuple(d["shape"]):
                raise InputError(
                    f"{self.path.name} input {name!r} expects shape {list(d['shape'])}, got {list(arr.shape)}"
                )
            interpreter.set_tensor(d["index"], np.ascontiguousarray(arr, dtype=d["dtype"]))
        interpreter.invoke()
        return {n: interpreter.get_tensor(i) for n, i in self._outputs}

    def close(self) -> None:
        """Release the interpreter (idempotent); a closed engine raises :class:`EngineError` on use."""
        self.interpreter = None

    def describe(self) -> dict[str, object]:
        """What actually loaded."""
        return {
            "backend": self.backend,
            "file": self.path.name,
            "device": "cpu",
            "delegate": "xnnpack",
            "threads": self.threads,
            "inputs": {n: self.input_shape(n) for n in self.input_names},
        }
