"""Occluded-face calibration for INT8 (layer 2: imports ``runtime`` only; onnxruntime.quantization, TensorRT and
CUDA bindings are imported by the modules that need them).

* :mod:`calibration.sources` -- face crops from a dataset, image folder, video or the procedural benchmark;
* :mod:`calibration.sets` -- stratified occluded calibration sets and held-out sets, cached as ``.npz``;
* :mod:`calibration.reader` -- ONNX Runtime ``CalibrationDataReader``;
* :mod:`calibration.ranges` -- activation ranges on CPU (MinMax, Entropy, Percentile);
* :mod:`calibration.trt_cache` -- native TensorRT calibration caches (write from CPU ranges, read);
* :mod:`calibration.trt_calibrators` -- TensorRT 10 calibrators on the device (CUDA via runtime.engines.cuda_memory).
"""
