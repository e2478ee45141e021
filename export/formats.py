"""The one table of export formats: what each ``--precision`` name produces and how.

``ofer export --precision`` and ``ofer build-engines --precision`` take names from :data:`EXPORT_FORMATS`
(or the aliases in :data:`ALIASES`); everything else (file names, manifest entries, which converter runs,
whether calibration data are needed) is looked up here, never spelled out again elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from runtime.errors import ConfigError


@dataclass(frozen=True)
class ExportFormat:
    """One export target.

    Attributes:
        key: Name used on the command line and as the engine-name suffix (``classifier-int8-cpu``).
        format: Bundle engine format (``onnx`` or ``trt``).
        precision: Bundle precision (``fp32``, ``fp16``, ``int8``).
        suffix: File-name suffix before the extension (``classifier.int8-cpu.onnx``).
        calibrated: Needs calibration data (INT8).
        source: For TensorRT engines, the ONNX format key they are built from on TensorRT 11+ (strongly typed);
            ``None`` for ONNX formats.
        description: One line for ``--help`` and the manifest.
    """

    key: str
    format: str
    precision: str
    suffix: str
    calibrated: bool
    source: str | None
    description: str

    @property
    def extension(self) -> str:
        """``.onnx`` or ``.engine``."""
        return ".onnx" if self.format == "onnx" else ".engine"

    def file_name(self, role: str) -> str:
        """File name inside the bundle, e.g. ``classifier.fp16.onnx`` (``classifier.onnx`` for FP32 ONNX)."""
        return f"{role}{'.' + self.suffix if self.suffix else ''}{self.extension}"

    def engine_name(self, role: str) -> str:
        """Manifest engine name, e.g. ``classifier-fp16`` (``classifier`` for FP32 ONNX)."""
        return f"{role}-{self.key}" if self.suffix else role


_TABLE: tuple[ExportFormat, ...] = (
    ExportFormat("fp32", "onnx", "fp32", "", False, None,
                 "FP32 ONNX (the reference every other format is checked against)"),
    ExportFormat("fp16", "onnx", "fp16", "fp16", False, None,
                 "FP16 weights and activations, FP32 inputs/outputs (GPU ONNX Runtime, TensorRT 11 strongly typed)"),
    ExportFormat("int8-cpu", "onnx", "int8", "int8-cpu", True, None,
                 "INT8 Q/DQ: asymmetric QUInt8 activations, per-channel QInt8 weights (fast on ONNX Runtime CPU)"),
    ExportFormat("int8-trt", "onnx", "int8", "int8-trt", True, None,
                 "INT8 Q/DQ: symmetric QInt8 activations and per-channel weights on Conv/Gemm/MatMul only "
                 "(TensorRT explicit quantisation)"),
    ExportFormat("trt-fp32", "trt", "fp32", "trt-fp32", False, "fp32", "TensorRT engine, FP32"),
    ExportFormat("trt-fp16", "trt", "fp16", "trt-fp16", False, "fp16", "TensorRT engine, FP16"),
    ExportFormat("trt-int8", "trt", "int8", "trt-int8", True, "int8-trt", "TensorRT engine, INT8 (+FP16 fallback)"),
)

#: key -> format, in the order engines are written to a manifest (the runtime takes the first of a precision).
EXPORT_FORMATS: dict[str, ExportFormat] = {f.key: f for f in _TABLE}

#: Short names accepted on the command line.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "onnx": {"int8": ("int8-cpu", "int8-trt")},
    "trt": {"fp32": ("trt-fp32",), "fp16": ("trt-fp16",), "int8": ("trt-int8",)},
}

CALIBRATION_METHODS: tuple[str, ...] = ("entropy", "minmax", "percentile")


def parse_precisions(text: str | Iterable[str], *, target: str = "onnx") -> list[ExportFormat]:
    """Parse ``"fp32,fp16,int8"`` into formats of ``target`` (``onnx`` or ``trt``), in table order.

    ``fp32`` is always included for ONNX (the reference the others are checked against).

    Raises:
        ConfigError: an unknown name, naming the valid ones.
    """
    names = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    valid = [k for k, f in EXPORT_FORMATS.items() if f.format == target] + list(ALIASES[target])
    keys: set[str] = {"fp32"} if target == "onnx" else set()
    for name in names:
        if name in ALIASES[target]:
            keys.update(ALIASES[target][name])
        elif name in EXPORT_FORMATS and EXPORT_FORMATS[name].format == target:
            keys.add(name)
        else:
            raise ConfigError(f"unknown precision {name!r} for {target}; choose from {', '.join(sorted(set(valid)))}")
    if not keys:
        raise ConfigError(f"no precision given; choose from {', '.join(sorted(set(valid)))}")
    return [f for f in _TABLE if f.key in keys]


def check_method(method: str) -> str:
    """Validate a calibration method name (``entropy``, ``minmax``, ``percentile``)."""
    m = str(method).strip().lower()
    if m not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    return m
