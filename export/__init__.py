"""Export (layer 3): checkpoint to ONNX (parity-checked), FP16, INT8 (QDQ, calibrated by ``calibration``), TensorRT
engines, and bundle writing. Imports ``calibration`` and ``runtime``; torch and tensorrt lazily; never
``sdk.training`` (checked by ``.importlinter``).
"""
