"""ofer: facial expression recognition on occluded faces.

The public face of the SDK::

    import sdk
    rec = sdk.Recognizer()             # the default bundle, CPU, default face detector
    predictions = rec.predict(frame)   # frame: BGR uint8 H x W x 3

Importing ``sdk`` is light: it never imports torch, and ONNX Runtime/OpenCV load when a Recognizer is made.
"""

from __future__ import annotations

from runtime.errors import BundleError, ConfigError, DatasetError, EngineError, ExportError, InputError, OferError

__version__ = "0.1.0"
__all__ = [
    "Recognizer",
    "Prediction",
    "OferError",
    "InputError",
    "BundleError",
    "EngineError",
    "DatasetError",
    "ConfigError",
    "ExportError",
    "__version__",
]


def __getattr__(name: str):  # lazy: keep `import sdk` fast
    if name in ("Recognizer", "Prediction"):
        from . import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'sdk' has no attribute {name!r}")
