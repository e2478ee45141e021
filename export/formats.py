"""The one table of export formats: what each ``--precision`` name produces, how it is made and how it is checked.

``ofer export --precision`` and ``ofer build-engines --precision`` take names from :data:`EXPORT_FORMATS`
(or the aliases in :data:`ALIASES`); everything else (file names, manifest entries, which converter runs and with
which settings, how the agreement gate runs it, whether calibration data are needed) is looked up here, never
spelled out again elsewhere. :func:`export.bundle_writer.export_bundle` loops over the requested entries and calls
each one's ``make``; TensorRT entries (``make`` is ``None``) are built on the device by
:func:`export.tensorrt.build_engines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from calibration.config import CALIBRATION_METHODS, check_method
from runtime.errors import ConfigError

from . import variants

__all__ = [
    "ALIASES",
    "CALIBRATION_METHODS",
    "EXPORT_FORMATS",
    "ExportFormat",
    "Int8Scheme",
    "check_method",
    "parse_precisions",
]

#: Ops that get Q/DQ for TensorRT explicit quantisation (weighted layers; TensorRT fuses the rest).
TRT_QDQ_OPS: tuple[str, ...] = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: Nodes the INT8 sensitivity fallback may keep in float on ONNX Runtime CPU: every op ONNX Runtime's QDQ quantiser
#: quantises that computes (data movement such as Reshape/Flatten shares its input's scale and loses nothing).
CPU_FALLBACK_OPS: tuple[str, ...] = (
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Concat",
    "Resize",
    "Relu",
    "Sigmoid",
    "LeakyRelu",
    "Clip",
    "Softmax",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
)
#: Engine output kind by role, where it is not ``logits``.
ROLE_OUTPUTS: dict[str, str] = {"inpainter": "image"}


@dataclass(frozen=True)
class Int8Scheme:
    """How ONNX Runtime's static quantisation writes an INT8 Q/DQ flavour (:func:`export.quantize.quantize_int8`).

    Attributes:
        activations: ``QuantType`` name of the activations (``QUInt8`` or ``QInt8``; weights are always
            per-channel symmetric ``QInt8``).
        symmetric: Symmetric activations (zero points 0), as TensorRT requires.
        ops: Q/DQ only in front of these op types (TensorRT explicit quantisation); ``None``: every op.
        reduce_range: 7-bit weights by default: x86 CPUs without VNNI compute U8S8 with 16-bit intermediate sums
            that saturate on full-range weights (measured: top-1 agreement of the FER model 0.91 -> 0.95 on an AVX2
            machine); GPUs do not saturate.
        fallback_ops: Op types of the nodes the sensitivity fallback may keep in float (:mod:`export.sensitivity`).
    """

    activations: str
    symmetric: bool
    ops: tuple[str, ...] | None
    reduce_range: bool
    fallback_ops: tuple[str, ...]


#: ``make(fmt, run, role, dst, exclude) -> record``: writes the ``role`` model of a format (see :mod:`export.variants`).
Maker = Callable[["ExportFormat", Any, str, Path, "tuple[str, ...] | list[str]"], dict]


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
        make: How the variant of one model is written (:mod:`export.variants`); ``None`` for FP32 (the reference,
            copied) and TensorRT engines (built on the device by :func:`export.tensorrt.build_engines`).
        record: Manifest key of ``make``'s record in an engine entry (``conversion`` or ``quantization``).
        int8: The quantisation settings of an INT8 flavour.
        simulate: The agreement gate runs the model with graph optimisations off, so Q/DQ nodes compute exactly as
            written: the numbers TensorRT's explicit quantisation computes (:func:`export.agreement.run_onnx`).
    """

    key: str
    format: str
    precision: str
    suffix: str
    calibrated: bool
    source: str | None
    description: str
    make: Maker | None = None
    record: str = "conversion"
    int8: Int8Scheme | None = None
    simulate: bool = False

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

    def entry(self, role: str, path: str | Path, **extra: Any) -> dict[str, Any]:
        """The engine entry of ``role`` in this format for :func:`runtime.bundle.write_bundle` / ``add_engines``:
        name, source ``path``, file name, format, precision, role, output kind, then ``extra`` (the conversion or
        quantisation record, agreement, ``built_with``) in the order given."""
        head = {
            "name": self.engine_name(role),
            "path": Path(path),
            "file": self.file_name(role),
            "format": self.format,
            "precision": self.precision,
            "role": role,
        }
        if role in ROLE_OUTPUTS:
            head["output"] = ROLE_OUTPUTS[role]
        return {**head, **extra}


_TABLE: tuple[ExportFormat, ...] = (
    ExportFormat(
        "fp32", "onnx", "fp32", "", False, None, "FP32 ONNX (the reference every other format is checked against)"
    ),
    ExportFormat(
        "fp16",
        "onnx",
        "fp16",
        "fp16",
        False,
        None,
        "FP16 weights and activations, FP32 inputs/outputs (GPU ONNX Runtime, TensorRT 11 strongly typed)",
        make=variants.make_fp16,
    ),
    ExportFormat(
        "int8-cpu",
        "onnx",
        "int8",
        "int8-cpu",
        True,
        None,
        "INT8 Q/DQ: asymmetric QUInt8 activations, per-channel QInt8 weights (fast on ONNX Runtime CPU)",
        make=variants.make_int8,
        record="quantization",
        int8=Int8Scheme("QUInt8", False, None, True, CPU_FALLBACK_OPS),
    ),
    ExportFormat(
        "int8-trt",
        "onnx",
        "int8",
        "int8-trt",
        True,
        None,
        "INT8 Q/DQ: symmetric QInt8 activations and per-channel weights on Conv/Gemm/MatMul only "
        "(TensorRT explicit quantisation)",
        make=variants.make_int8,
        record="quantization",
        int8=Int8Scheme("QInt8", True, TRT_QDQ_OPS, False, TRT_QDQ_OPS),
        simulate=True,
    ),
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
