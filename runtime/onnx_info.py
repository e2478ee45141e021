"""What a bundle needs to know about an ONNX model, read from its bytes without the ``onnx`` package.

The runtime layer has no ``onnx`` dependency (ONNX Runtime only), so this module walks the protobuf wire format of
``ModelProto`` just far enough to answer three questions at bundle-load time:

* does any tensor keep its data in an external file (``TensorProto.data_location == EXTERNAL`` or
  ``external_data`` entries), in the main graph, a subgraph (``If``/``Loop``/``Scan`` attributes), a function or a
  sparse initializer;
* the graph's inputs and outputs: name, element type and dims (``int`` for fixed, ``str`` for symbolic, ``None``
  for unknown), initializers excluded;
* which op produces each graph output, looking through shape-only and type-only ops (``Identity``, ``Cast``,
  ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``QuantizeLinear``, ``DequantizeLinear``): so a classifier
  that ends in ``Softmax`` is recognised even after FP16 or INT8 Q/DQ conversion.

Field numbers are those of ``onnx/onnx.proto`` (IR version 3 and later). Anything that is not a well-formed
protobuf raises :class:`~runtime.errors.BundleError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from .errors import BundleError

#: Ops that change neither the values' meaning nor their normalisation (looked through to find the last real op).
PASS_THROUGH_OPS = frozenset(
    {"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "QuantizeLinear", "DequantizeLinear"}
)
_MAX_DEPTH = 32  # nested subgraphs (If inside Loop inside ...): deeper is refused, never a RecursionError


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, ONNX element type number (1 = float, 10 = float16) and dims."""

    name: str
    elem_type: int
    dims: tuple[int | str | None, ...] | None  # None: rank unknown


@dataclass
class OnnxInfo:
    """What :func:`read_onnx_info` found."""

    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # tensors whose data live in another file
    producers: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # output -> (op_type, inputs)

    def last_op(self, output: str) -> str | None:
        """The op that produces ``output``, looking through :data:`PASS_THROUGH_OPS` (``None``: a graph input)."""
        seen = set()
        name = output
        while name in self.producers and name not in seen:
            seen.add(name)
            op, inputs = self.producers[name]
            if op not in PASS_THROUGH_OPS or not inputs:
                return op
            name = inputs[0]
        return None


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or over-long varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` of one message; length-delimited values as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end:
            raise ValueError("truncated message")
        yield num, wire, value


def _text(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise ValueError("expected a string field")
    return v.decode("utf-8", errors="replace")


def _msgs(buf: bytes, num: int) -> list[bytes]:
    return [v for n, w, v in _fields(buf) if n == num and w == 2 and isinstance(v, bytes)]


def _tensor_is_external(t: bytes) -> str | None:
    """The tensor's name when its data are external, else ``None``."""
    name, external = "", False
    for n, w, v in _fields(t):
        if n == 8 and w == 2:
            name = _text(v)
        elif (n == 14 and w == 0 and v == 1) or (n == 13 and w == 2):
            external = True
    return (name or "<unnamed>") if external else None


def _value_info(v: bytes) -> TensorInfo:
    name, elem, dims = "", 0, None
    for n, w, val in _fields(v):
        if n == 1 and w == 2:
            name = _text(val)
        elif n == 2 and w == 2:
            for tensor_type in _msgs(val, 1):  # TypeProto.tensor_type
                for n2, w2, val2 in _fields(tensor_type):
                    if n2 == 1 and w2 == 0:
                        elem = int(val2)
                    elif n2 == 2 and w2 == 2:
                        dims = tuple(_dim(d) for d in _msgs(val2, 1))
    return TensorInfo(name, elem, dims)


def _dim(d: bytes) -> int | str | None:
    for n, w, v in _fields(d):
        if n == 1 and w == 0:
            return int(v) if v < 1 << 63 else int(v) - (1 << 64)
        if n == 2 and w == 2:
            return _text(v)
    return None


class _Walker:
    def __init__(self, info: OnnxInfo) -> None:
        self.info = info

    def tensors(self, blobs: list[bytes]) -> None:
        for t in blobs:
            name = _tensor_is_external(t)
            if name is not None:
                self.info.external.append(name)

    def sparse(self, blobs: list[bytes]) -> None:
        for s in blobs:
            self.tensors(_msgs(s, 1) + _msgs(s, 2))

    def nodes(self, blobs: list[bytes], depth: int, main: bool) -> None:
        for node in blobs:
            op, inputs, outputs = "", [], []
            for n, w, v in _fields(node):
                if n == 1 and w == 2:
                    inputs.append(_text(v))
                elif n == 2 and w == 2:
                    outputs.append(_text(v))
                elif n == 4 and w == 2:
                    op = _text(v)
                elif n == 5 and w == 2:
                    self.attribute(v, depth)
            if main:
                for o in outputs:
                    self.info.producers[o] = (op, tuple(inputs))

    def attribute(self, a: bytes, depth: int) -> None:
        self.tensors(_msgs(a, 5) + _msgs(a, 10))
        self.sparse(_msgs(a, 22) + _msgs(a, 23))
        for g in _msgs(a, 6) + _msgs(a, 11):
            self.graph(g, depth + 1, main=False)

    def graph(self, g: bytes, depth: int, main: bool) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError(f"subgraphs nested deeper than {_MAX_DEPTH} levels")
        initializers = _msgs(g, 5)
        self.tensors(initializers)
        self.sparse(_msgs(g, 15))
        self.nodes(_msgs(g, 1), depth, main)
        if main:
            init_names = {_text(v) for t in initializers for n, w, v in _fields(t) if n == 8 and w == 2}
            self.info.inputs = [i for i in map(_value_info, _msgs(g, 11)) if i.name not in init_names]
            self.info.outputs = [_value_info(o) for o in _msgs(g, 12)]


def read_onnx_info(data: bytes, what: str = "model") -> OnnxInfo:
    """Inputs, outputs, external-data tensors and output producers of an ONNX model's bytes.

    Raises:
        BundleError: The bytes are not an ONNX model (``what`` names it in the message).
    """
    info = OnnxInfo()
    walker = _Walker(info)
    try:
        graphs = _msgs(data, 7)
        if not graphs:
            raise ValueError("no graph")
        walker.graph(graphs[-1], 0, main=True)
        for function in _msgs(data, 25):
            walker.nodes(_msgs(function, 7), 1, main=False)
        for training in _msgs(data, 20):
            for g in _msgs(training, 1) + _msgs(training, 2):
                walker.graph(g, 1, main=False)
    except ValueError as exc:
        raise BundleError(
            f"{what} is not a valid ONNX model ({exc}); the file is corrupt or not ONNX — restore it "
            "from the original bundle or re-export"
        ) from None
    return info
