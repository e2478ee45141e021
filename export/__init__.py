"""Export (layer 3): checkpoint to ONNX (parity-checked), FP16, INT8 (QDQ, calibrated by ``calibration``), TensorRT
engines, and bundle writing. Imports ``calibration`` and ``runtime``; torch and tensorrt lazily; never
``sdk.training`` (checked by ``.importlinter``).

* :mod:`export.formats` -- the format table (each ``--precision`` entry: file names, how it is made and checked);
* :mod:`export.source` -- what a bundle is exported from (:class:`ExportSource`: a bundle, ONNX + spec);
* :mod:`export.modules` -- a loaded checkpoint's deployable modules (:func:`export_modules`) and their ONNX;
* :mod:`export.onnx` -- torch module to single-file ONNX with parity; :mod:`export.fp16`, :mod:`export.quantize`;
* :mod:`export.variants` -- one format's variant, made and judged; :mod:`export.int8`, :mod:`export.sensitivity`;
* :mod:`export.bundle_writer` -- :func:`export_bundle`, the loop over the requested formats;
* :mod:`export.tensorrt` -- TensorRT engines on the device (:func:`export.tensorrt.build_engines`).
"""

from __future__ import annotations

from .modules import export_modules

__all__ = ["export_modules"]
