"""TFLite flatbuffer -> ONNX, for the MediaPipe models ofer ships (one-time conversion, not a runtime dependency).

Parses a TFLite model with the ``tflite`` package and rebuilds its single subgraph as ONNX (opset 13). Activations
are NCHW inside; the graph input stays NHWC (a ``Transpose`` first) and 4-D outputs are transposed back to NHWC, so
the ONNX model has the TFLite model's input and output shapes. FP16 weights (``DEQUANTIZE``) are stored as FP32 and
sparse (CSR) weights (``DENSIFY``) densified at conversion time. Ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD,
MAX_POOL_2D, RESHAPE, CONCATENATION, RELU, PRELU, RESIZE_BILINEAR, DEPTH_TO_SPACE.

Used by ``scripts/convert_blazeface_detector.py`` and ``scripts/convert_face_landmark.py``; run in a throwaway
venv (``pip install tflite onnx onnxruntime numpy ai-edge-litert``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

MEDIAPIPE = "mediapipe==0.10.21"
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)

_OPNAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NP_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
}


def _densify(values: np.ndarray, shape: np.ndarray, sparsity: tflite.SparsityParameters) -> np.ndarray:
    """Expand a TFLite sparse tensor (dense/CSR dims, no blocks) into a dense array."""
    if sparsity.BlockMapLength() > 0:
        raise NotImplementedError("block-sparse tensors are not supported")
    order = sparsity.TraversalOrderAsNumpy()
    dims = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    tshape = [int(shape[o]) for o in order]
    out = np.zeros(tshape, dtype=values.dtype)

    def vec(dm: tflite.DimensionMetadata, which: str) -> np.ndarray:
        table = getattr(dm, f"Array{which}")()
        kind = getattr(dm, f"Array{which}Type")()
        cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
        v = cls()
        v.Init(table.Bytes, table.Pos)
        return v.ValuesAsNumpy()

    cursor = [0]

    def walk(level: int, prefix: tuple[int, ...], pos: int) -> None:
        if level == len(dims):
            out[prefix] = values[cursor[0]]
            cursor[0] += 1
            return
        dm = dims[level]
        if dm.Format() == tflite.DimensionType.DENSE:
            for i in range(dm.DenseSize()):
                walk(level + 1, prefix + (i,), pos * dm.DenseSize() + i)
        else:
            seg, idx = vec(dm, "Segments"), vec(dm, "Indices")
            for k in range(int(seg[pos]), int(seg[pos + 1])):
                walk(level + 1, prefix + (int(idx[k]),), k)

    walk(0, (), 0)
    if cursor[0] != values.size:
        raise ValueError(f"densify consumed {cursor[0]} of {values.size} values")
    return np.transpose(out, np.argsort(order))


class TfliteToOnnx:
    """Walks a TFLite subgraph and emits equivalent ONNX nodes (activations in NCHW)."""

    def __init__(self, model_bytes: bytes) -> None:
        self.model = tflite.Model.GetRootAsModel(model_bytes, 0)
        self.graph = self.model.Subgraphs(0)
        self.consts: dict[int, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._uid = 0

    # -- helpers -------------------------------------------------------------------------------
    def tensor(self, i: int) -> tflite.Tensor:
        return self.graph.Tensors(i)

    def shape(self, i: int) -> list[int]:
        return [int(s) for s in self.tensor(i).ShapeAsNumpy()]

    def buffer(self, i: int) -> np.ndarray | None:
        t = self.tensor(i)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        arr = np.frombuffer(data.tobytes(), dtype=_NP_TYPES[t.Type()])
        if t.Sparsity() is not None:
            return arr  # raw non-zero values, densified by the DENSIFY op
        return arr.reshape(self.shape(i))

    def const(self, i: int) -> np.ndarray:
        if i not in self.consts:
            arr = self.buffer(i)
            if arr is None:
                raise ValueError(f"tensor {self.tensor(i).Name()} is not constant")
            self.consts[i] = arr
        return self.consts[i]

    def init(self, arr: np.ndarray, hint: str) -> str:
        self._uid += 1
        name = f"{hint}_{self._uid}"
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def fresh(self, hint: str) -> str:
        self._uid += 1
        return f"{hint}_{self._uid}"

    def act(self, out: str, fused: int) -> str:
        """Apply a fused activation; returns the name holding the activated value."""
        if fused == tflite.ActivationFunctionType.NONE:
            return out
        if fused == tflite.ActivationFunctionType.RELU:
            res = self.fresh("relu")
            self.nodes.append(helper.make_node("Relu", [out], [res]))
            return res
        raise NotImplementedError(f"fused activation {fused}")

    @staticmethod
    def options(op: tflite.Operator, cls: type) -> object:
        table = op.BuiltinOptions()
        opt = cls()
        opt.Init(table.Bytes, table.Pos)
        return opt

    @staticmethod
    def same_pads(in_hw: list[int], k_hw: list[int], strides: list[int], dil: list[int]) -> list[int]:
        pads_begin, pads_end = [], []
        for size, k, s, d in zip(in_hw, k_hw, strides, dil):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)
        return pads_begin + pads_end

    # -- ops -------------------------------------------------------------------------------------
    def conv(self, op: tflite.Operator, depthwise: bool) -> None:
        x, w_i, b_i = (op.Inputs(j) for j in range(3))
        out_i = op.Outputs(0)
        w = self.const(w_i).astype(np.float32)  # TFLite: [O, kh, kw, I] or [1, kh, kw, C*m]
        b = self.const(b_i).astype(np.float32)
        opt = self.options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        in_shape = self.shape(x)
        if depthwise:
            group = in_shape[3]
            w_onnx = np.transpose(w, (3, 0, 1, 2))  # [C*m, 1, kh, kw]
        else:
            group = 1
            w_onnx = np.transpose(w, (0, 3, 1, 2))
        strides = [opt.StrideH(), opt.StrideW()]
        dil = [opt.DilationHFactor(), opt.DilationWFactor()]
        if opt.Padding() == tflite.Padding.SAME:
            pads = self.same_pads(in_shape[1:3], list(w_onnx.shape[2:]), strides, dil)
        else:
            pads = [0, 0, 0, 0]
        raw = self.fresh("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [self.names[x], self.init(w_onnx, "w"), self.init(b, "b")],
                [raw],
                strides=strides,
                dilations=dil,
                pads=pads,
                group=group,
            )
        )
        self.names[out_i] = self.act(raw, opt.FusedActivationFunction())

    def add(self, op: tflite.Operator) -> None:
        a, b = op.Inputs(0), op.Inputs(1)
        opt = self.options(op, tflite.AddOptions)
        raw = self.fresh("add")
        self.nodes.append(helper.make_node("Add", [self.names[a], self.names[b]], [raw]))
        self.names[op.Outputs(0)] = self.act(raw, opt.FusedActivationFunction())

    def pad(self, op: tflite.Operator) -> None:
        x = op.Inputs(0)
        p = self.const(op.Inputs(1)).astype(np.int64)  # NHWC [[b, a], ...]
        if len(self.shape(x)) != 4:
            raise NotImplementedError("PAD on non-4D tensor")
        p_nchw = p[list(NHWC_TO_NCHW)]
        pads = np.concatenate([p_nchw[:, 0], p_nchw[:, 1]]).astype(np.int64)
        out = self.fresh("pad")
        self.nodes.append(helper.make_node("Pad", [self.names[x], self.init(pads, "pads")], [out]))
        self.names[op.Outputs(0)] = out

    def maxpool(self, op: tflite.Operator) -> None:
        opt = self.options(op, tflite.Pool2DOptions)
        k = [opt.FilterHeight(), opt.FilterWidth()]
        s = [opt.StrideH(), opt.StrideW()]
        x = op.Inputs(0)
        pads = (
            self.same_pads(self.shape(x)[1:3], k, s, [1, 1]) if opt.Padding() == tflite.Padding.SAME else [0, 0, 0, 0]
        )
        raw = self.fresh("pool")
        self.nodes.append(helper.make_node("MaxPool", [self.names[x]], [raw], kernel_shape=k, strides=s, pads=pads))
        self.names[op.Outputs(0)] = self.act(raw, opt.FusedActivationFunction())

    def reshape(self, op: tflite.Operator) -> None:
        x, out_i = op.Inputs(0), op.Outputs(0)
        src = self.names[x]
        if len(self.shape(x)) == 4:  # back to NHWC so the flattening order matches TFLite
            nhwc = self.fresh("nhwc")
            self.nodes.append(helper.make_node("Transpose", [src], [nhwc], perm=list(NCHW_TO_NHWC)))
            src = nhwc
        if len(self.shape(out_i)) == 4:
            raise NotImplementedError("RESHAPE to 4D")
        out = self.fresh("reshape")
        shape = np.array(self.shape(out_i), dtype=np.int64)
        self.nodes.append(helper.make_node("Reshape", [src, self.init(shape, "shape")], [out]))
        self.names[out_i] = out

    def concat(self, op: tflite.Operator) -> None:
        opt = self.options(op, tflite.ConcatenationOptions)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        rank = len(self.shape(ins[0]))
        axis = opt.Axis() % rank
        if rank == 4:
            axis = NHWC_TO_NCHW.index(axis)
        raw = self.fresh("concat")
        self.nodes.append(helper.make_node("Concat", [self.names[i] for i in ins], [raw], axis=axis))
        self.names[op.Outputs(0)] = self.act(raw, opt.FusedActivationFunction())

    def relu(self, op: tflite.Operator) -> None:
        out = self.fresh("relu")
        self.nodes.append(helper.make_node("Relu", [self.names[op.Inputs(0)]], [out]))
        self.names[op.Outputs(0)] = out

    def prelu(self, op: tflite.Operator) -> None:
        alpha = self.const(op.Inputs(1)).astype(np.float32)  # NHWC-broadcast slope, e.g. [1, 1, C]
        if alpha.ndim > 3:
            alpha = alpha.reshape(alpha.shape[-3:])
        alpha = np.transpose(alpha.reshape((1,) * (3 - alpha.ndim) + alpha.shape), (2, 0, 1))  # [C, H, W]
        out = self.fresh("prelu")
        self.nodes.append(helper.make_node("PRelu", [self.names[op.Inputs(0)], self.init(alpha, "alpha")], [out]))
        self.names[op.Outputs(0)] = out

    def resize_bilinear(self, op: tflite.Operator) -> None:
        opt = self.options(op, tflite.ResizeBilinearOptions)
        size = self.const(op.Inputs(1)).astype(np.int64)
        x = op.Inputs(0)
        n, _, _, c = self.shape(x)
        sizes = np.array([n, c, size[0], size[1]], dtype=np.int64)
        if opt.AlignCorners():
            mode = "align_corners"
        elif opt.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        out = self.fresh("resize")
        self.nodes.append(
            helper.make_node(
                "Resize",
                [self.names[x], "", "", self.init(sizes, "sizes")],
                [out],
                mode="linear",
                coordinate_transformation_mode=mode,
            )
        )
        self.names[op.Outputs(0)] = out

    def depth_to_space(self, op: tflite.Operator) -> None:
        opt = self.options(op, tflite.DepthToSpaceOptions)
        out = self.fresh("d2s")
        self.nodes.append(
            helper.make_node("DepthToSpace", [self.names[op.Inputs(0)]], [out], blocksize=opt.BlockSize(), mode="DCR")
        )
        self.names[op.Outputs(0)] = out

    def fold(self, op: tflite.Operator, kind: str) -> None:
        """DEQUANTIZE (fp16 -> fp32) and DENSIFY of constants are evaluated now."""
        src = op.Inputs(0)
        if kind == "DENSIFY":
            t = self.tensor(src)
            self.consts[op.Outputs(0)] = _densify(self.const(src), t.ShapeAsNumpy(), t.Sparsity())
        else:
            self.consts[op.Outputs(0)] = self.const(src).astype(np.float32)

    # -- driver ----------------------------------------------------------------------------------
    def run(
        self, graph_name: str, output_names: Sequence[str], producer: str, dynamic_batch: bool = False
    ) -> onnx.ModelProto:
        """Convert the whole subgraph.

        Args:
            graph_name: Name of the ONNX graph.
            output_names: ONNX names for the TFLite outputs, in the TFLite output order.
            producer: ``producer_name`` written into the model (the script that made it).
            dynamic_batch: Declare the batch dimension of input and outputs as ``"batch"`` (only for graphs
                without RESHAPE, whose target shapes fix the batch).
        """
        g = self.graph
        if g.InputsLength() != 1 or g.OutputsLength() != len(output_names):
            raise ValueError(
                f"expected one input and {len(output_names)} outputs, got {g.InputsLength()} and {g.OutputsLength()}"
            )
        in_i = g.Inputs(0)
        in_shape: list[int | str] = list(self.shape(in_i))
        if dynamic_batch:
            in_shape[0] = "batch"
        self.nodes.append(helper.make_node("Transpose", ["input"], ["input_nchw"], perm=list(NHWC_TO_NCHW)))
        self.names[in_i] = "input_nchw"
        codes = [self.model.OperatorCodes(i) for i in range(self.model.OperatorCodesLength())]
        handlers = {
            "CONV_2D": lambda o: self.conv(o, False),
            "DEPTHWISE_CONV_2D": lambda o: self.conv(o, True),
            "ADD": self.add,
            "PAD": self.pad,
            "MAX_POOL_2D": self.maxpool,
            "RESHAPE": self.reshape,
            "CONCATENATION": self.concat,
            "RELU": self.relu,
            "PRELU": self.prelu,
            "RESIZE_BILINEAR": self.resize_bilinear,
            "DEPTH_TO_SPACE": self.depth_to_space,
        }
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            oc = codes[op.OpcodeIndex()]
            kind = _OPNAMES[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
            if kind in ("DEQUANTIZE", "DENSIFY"):
                self.fold(op, kind)
            elif kind == "RESHAPE" and dynamic_batch:
                raise NotImplementedError("RESHAPE with a dynamic batch")
            elif kind in handlers:
                handlers[kind](op)
            else:
                raise NotImplementedError(f"TFLite op {kind}")
        outputs = []
        for j, name in enumerate(output_names):
            t_i = g.Outputs(j)
            shape: list[int | str] = list(self.shape(t_i))
            if dynamic_batch:
                shape[0] = "batch"
            if len(shape) == 4:  # NCHW inside -> the TFLite (NHWC) layout outside
                self.nodes.append(helper.make_node("Transpose", [self.names[t_i]], [name], perm=list(NCHW_TO_NHWC)))
            else:
                self.nodes.append(helper.make_node("Identity", [self.names[t_i]], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
            outputs,
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=producer)
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def convert(
    tflite_bytes: bytes, graph_name: str, output_names: Sequence[str], producer: str, dynamic_batch: bool = False
) -> onnx.ModelProto:
    """One TFLite model (bytes) -> a checked ONNX model; see :meth:`TfliteToOnnx.run`."""
    return TfliteToOnnx(tflite_bytes).run(graph_name, output_names, producer, dynamic_batch)


def max_abs_diff(
    tflite_bytes: bytes, onnx_path: Path, inputs: Sequence[np.ndarray], output_names: Sequence[str]
) -> dict[str, float] | None:
    """Max |TFLite interpreter - ONNX Runtime| per output over ``inputs`` (``None`` without ai-edge-litert)."""
    outs = run_both(tflite_bytes, onnx_path, inputs, output_names)
    if outs is None:
        return None
    ref, got = outs
    return {name: max(float(np.abs(r[name] - g[name]).max()) for r, g in zip(ref, got)) for name in output_names}


def run_both(
    tflite_bytes: bytes, onnx_path: Path, inputs: Sequence[np.ndarray], output_names: Sequence[str]
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]] | None:
    """Outputs of the TFLite interpreter and of ONNX Runtime on each input (``None`` without ai-edge-litert)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        print("ai-edge-litert not installed: parity check skipped", file=sys.stderr)
        return None
    import onnxruntime as ort

    interp = Interpreter(model_content=tflite_bytes)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref, got = [], []
    for x in inputs:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref.append({name: interp.get_tensor(o["index"]).copy() for name, o in zip(output_names, outs)})
        got.append(dict(zip(output_names, sess.run(list(output_names), {"input": x}))))
    return ref, got


def mediapipe_wheel(wheel: Path | None, tmp: Path) -> Path:
    """The MediaPipe wheel: ``wheel`` if given, else ``pip download`` it (no deps) into ``tmp``; prints its sha256."""
    if wheel is None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                MEDIAPIPE,
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux_2_28_x86_64",
                "-d",
                str(tmp),
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
    print(f"wheel {wheel.name} sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    return wheel
