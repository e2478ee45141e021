"""The runtime (layer 1, the bottom): numpy, OpenCV and ONNX Runtime; TensorRT lazily; never torch or a higher layer.

What lives here: the bundle format (``bundle``, ``bundle_files``, ``bundle_checks``, ``manifest_json``), inference
engines (``engines``), face detection and tracking (``detection``, ``face_tracking``, ``tracking``), the model input
spec and its one preprocessing, which training uses too (``input_spec``, ``preprocess``), frames (``frames``), the
occlusion library and estimate (``occlusion``, ``occlusion_estimate``), occlusion-aware pipelines and the frame
processor (``pipelines``, ``processor``), predictions, smoothing, streaming and profiling, video sources and writers,
and the numpy datasets with their spec parser (``datasets``). Errors for every layer: ``runtime.errors``.
"""
