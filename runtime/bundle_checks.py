"""Does each engine do what the manifest says? Checks run on the very bytes whose sha256 was checked.

ONNX engines (at :func:`runtime.bundle.load_bundle`, from :mod:`runtime.onnx_info`, no ONNX Runtime session):

* no external data: the manifest's sha256 covers one file, so an engine must be one self-contained ``.onnx``;
* the image input (classifier, inpainter, occlusion estimator) has rank 4 and, where its dims are fixed, the
  ``input.size`` / ``input.channels`` / ``input.layout`` of the manifest (the batch dim may be anything);
* a classifier's first output has ``len(labels)`` scores when that dim is fixed;
* a classifier's ``output`` kind agrees with its graph: ``probabilities`` exactly when the output is produced by a
  ``Softmax`` (looking through Identity/Cast/Reshape/Flatten/Squeeze/Unsqueeze/Q/DQ, so FP16 and INT8 Q/DQ
  variants keep their answer). A structural rule, not a probe: it needs no session and does not depend on an
  input (a probe row of logits can sum to ~1 by chance; a ``Softmax`` node cannot be missed).

TensorRT plans (at open time, :func:`check_plan_record`; TensorRT cannot read a plan without a GPU): the plan's
``built_with.precision`` must equal the engine's ``precision`` and ``built_with.source_onnx_sha256`` must be the sha256
of one of the bundle's ONNX engines of the same role, else the plan is stale. ``load_bundle`` accepts such a bundle
so that ``ofer build-engines BUNDLE --force`` can replace the plan; opening the plan is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .errors import BundleError, EngineError
from .onnx_info import OnnxInfo, TensorInfo

if TYPE_CHECKING:
    from .bundle import Bundle, EngineSpec, InputSpec

IMAGE_ROLES = ("classifier", "inpainter", "occlusion_estimator")


def _shape(dims: Sequence[int | str | None] | None) -> str:
    return "[?]" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def image_input(info: OnnxInfo, role: str) -> TensorInfo | None:
    """The input that gets the normalised crops (an inpainter's other input is its mask), as the pipelines pick."""
    if not info.inputs:
        return None
    if role == "inpainter" and len(info.inputs) == 2:
        mask = next((i for i in info.inputs if "mask" in i.name.lower()), info.inputs[1])
        return next(i for i in info.inputs if i is not mask)
    return info.inputs[0]


def _check_input(spec: EngineSpec, info: OnnxInfo, inp: InputSpec, what: str) -> None:
    check_image_input(info, spec.role, inp, what)


def check_image_input(info: OnnxInfo, role: str, inp: InputSpec, what: str) -> None:
    """Check that a model of ``role`` takes the crops ``inp`` describes (rank 4; fixed dims match layout, channels
    and size).

    Raises:
        BundleError: naming the mismatch and the ``input`` field to set.
    """
    tensor = image_input(info, role)
    if tensor is None:
        raise BundleError(f"{what} has no inputs; re-export the model")
    dims = tensor.dims
    if dims is None:
        return  # rank unknown: nothing to compare
    if len(dims) != 4:
        raise BundleError(
            f"{what} takes input {tensor.name!r} of shape {_shape(dims)}, but bundles feed 4-D "
            f"{inp.layout} image batches; re-export the model with a (batch, ...) image input"
        )
    h, w = inp.size
    want = {"NCHW": (inp.channels, h, w), "NHWC": (h, w, inp.channels)}
    if all(not isinstance(d, int) or d == e for d, e in zip(dims[1:], want[inp.layout])):
        return
    other = "NHWC" if inp.layout == "NCHW" else "NCHW"
    if all(not isinstance(d, int) or d == e for d, e in zip(dims[1:], want[other])):
        raise BundleError(
            f"{what} takes {other} input {_shape(dims)}, the manifest's 'input.layout' is "
            f'{inp.layout!r}; set "layout": "{other}"'
        )
    c, hh, ww = (dims[1], dims[2], dims[3]) if inp.layout == "NCHW" else (dims[3], dims[1], dims[2])
    if isinstance(c, int) and c != inp.channels:
        raise BundleError(
            f"{what} takes {c}-channel input {_shape(dims)}, the manifest's 'input.channels' is "
            f"{inp.channels} (color {inp.color!r}); set input.channels/color to match the model "
            "(1: gray, 3: bgr or rgb), or re-export the model"
        )
    size = [hh if isinstance(hh, int) else h, ww if isinstance(ww, int) else w]
    raise BundleError(
        f"{what} takes input of shape {_shape(dims)}, the manifest's 'input.size' is [{h}, {w}]; set "
        f'"size": {size}, or re-export the model for {h}x{w}'
    )


def _check_classifier_output(spec: EngineSpec, info: OnnxInfo, labels: Sequence[str], what: str) -> None:
    if not info.outputs:
        raise BundleError(f"{what} has no outputs; re-export the model")
    out = info.outputs[0]
    width = out.dims[-1] if out.dims else None
    if isinstance(width, int) and width != len(labels):
        raise BundleError(
            f"{what} gives {width} scores per face (output {out.name!r} {_shape(out.dims)}), the "
            f"manifest's 'labels' has {len(labels)} names; list one label per score, in the model's "
            "output order"
        )
    last = info.last_op(out.name)
    if spec.output == "image":
        raise BundleError(
            f"{what} is a classifier with 'output': 'image'; set \"output\": \"logits\" (or "
            '"probabilities" when the model ends in Softmax)'
        )
    if spec.output == "logits" and last == "Softmax":
        raise BundleError(
            f"{what} ends in a Softmax (output {out.name!r}): it gives probabilities, the manifest's "
            "'output' says 'logits' (the softmax would be applied twice and flatten every score); set "
            '"output": "probabilities"'
        )
    if spec.output == "probabilities" and last != "Softmax":
        raise BundleError(
            f"{what} has 'output': 'probabilities' but its output {out.name!r} comes from "
            f"{last or 'a graph input'}, not a Softmax, so its rows are not probabilities; set "
            '"output": "logits" (ofer applies the softmax)'
        )


def check_onnx_engine(spec: EngineSpec, info: OnnxInfo, labels: Sequence[str], inp: InputSpec, where: str) -> None:
    """Refuse an ONNX engine that disagrees with its manifest (see the module doc).

    Raises:
        BundleError: Names the engine, the manifest field and the fix.
    """
    what = f"bundle {where}: engine {spec.name!r} ({spec.file})"
    if info.external:
        names = ", ".join(info.external[:3]) + (" ..." if len(info.external) > 3 else "")
        raise BundleError(
            f"{what} keeps tensors ({names}) in external data files, which its sha256 does not cover; "
            'ofer bundles hold self-contained ONNX files only: inline the data (python -c "import '
            "onnx; onnx.save(onnx.load('IN.onnx'), 'OUT.onnx')\") and re-export with `ofer export`"
        )
    if spec.role in IMAGE_ROLES:
        _check_input(spec, info, inp, what)
    if spec.role == "classifier":
        _check_classifier_output(spec, info, labels, what)


def check_plan_record(bundle: Bundle, spec: EngineSpec) -> None:
    """Refuse a TensorRT plan whose build record disagrees with the manifest or with the bundle's ONNX (stale).

    Raises:
        EngineError: What differs, and ``ofer build-engines BUNDLE --force`` to rebuild it.
    """
    rebuild = f"rebuild it on the device: `ofer build-engines {bundle.path} --precision {spec.precision} --force`"
    what = f"TensorRT engine {spec.name!r} ({spec.file})"
    built = spec.built_with
    precision = built.get("precision")
    if precision != spec.precision:
        said = f"was built as {precision!r}" if precision is not None else "has no built_with.precision record"
        raise EngineError(f"{what} is listed as {spec.precision} but {said}; {rebuild}")
    source = built.get("source_onnx_sha256")
    if not isinstance(source, str) or not source:
        raise EngineError(
            f"{what} has no built_with.source_onnx_sha256 record, so which model it runs cannot be checked; {rebuild}"
        )
    onnx = [e for e in bundle.engines.values() if e.format == "onnx" and e.role == spec.role]
    if source.lower() not in {e.sha256 for e in onnx}:
        have = ", ".join(f"{e.name} {e.sha256[:12]}..." for e in onnx) or "none"
        raise EngineError(
            f"{what} is stale: it was built from an ONNX model with sha256 {source[:12]}..., which is "
            f"not in this bundle (its {spec.role} ONNX engines: {have}); the model changed after the "
            f"plan was built — {rebuild}"
        )
