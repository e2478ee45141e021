"""FP16 and INT8 Q/DQ export of the REAL default model (FER2013 mini-Xception), run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.formats import EXPORT_FORMATS, parse_precisions
from runtime.bundle import load_bundle
from runtime.errors import ConfigError, ExportError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "sdk" / "default_bundle"


def test_precision_names_come_from_one_table():
    assert [f.key for f in parse_precisions("fp16,int8")] == ["fp32", "fp16", "int8-cpu", "int8-trt"]
    assert [f.key for f in parse_precisions("int8-trt")] == ["fp32", "int8-trt"]
    assert [f.key for f in parse_precisions("fp16,int8", target="trt")] == ["trt-fp16", "trt-int8"]
    assert EXPORT_FORMATS["int8-cpu"].file_name("classifier") == "classifier.int8-cpu.onnx"
    assert EXPORT_FORMATS["fp32"].engine_name("classifier") == "classifier"
    with pytest.raises(ConfigError, match="int8-cpu"):
        parse_precisions("int4")


@pytest.fixture(scope="module")
def default_model():
    bundle = load_bundle(DEFAULT)
    return bundle, bundle.engine_path("classifier")


def _types(path: Path) -> tuple[list[int], list[int]]:
    import onnx

    m = onnx.load(str(path))
    return (
        [i.type.tensor_type.elem_type for i in m.graph.input],
        [o.type.tensor_type.elem_type for o in m.graph.output],
    )


def test_fp16_keeps_float32_io_and_agrees(tmp_path, default_model):
    import onnx

    from export.agreement import run_onnx
    from export.fp16 import convert_fp16

    _, src = default_model
    dst = tmp_path / "c16.onnx"
    convert_fp16(src, dst)
    assert _types(dst) == ([onnx.TensorProto.FLOAT], [onnx.TensorProto.FLOAT])
    inits = onnx.load(str(dst)).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in inits)
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    x = np.random.default_rng(0).normal(0, 0.5, (16, 1, 64, 64)).astype(np.float32)
    ref, got = run_onnx(src, x), run_onnx(dst, x)
    assert np.abs(ref - got).max() < 0.05 and (ref.argmax(1) == got.argmax(1)).mean() >= 0.9


@pytest.fixture(scope="module")
def real_sets(default_model, media_dir, tmp_path_factory):
    """Occluded calibration and held-out faces from a real video (disjoint parts of it)."""
    pytest.importorskip("runtime.occlusion")
    from calibration.sets import build_calibration_set, build_heldout_set

    bundle, _ = default_model
    cache = tmp_path_factory.mktemp("calib")
    video = str(media_dir / "WolfgangLanger_Pexels.mp4")
    calib = build_calibration_set(video, bundle.input, count=96, cache_dir=cache)
    held = build_heldout_set(
        video,
        bundle.input,
        count=24,
        protocols=["clean", "upper_half", "lower_half", "mouth", "random_box:0.3"],
        cache_dir=cache,
    )
    return calib, held


@pytest.fixture(scope="module")
def quantized(default_model, real_sets, tmp_path_factory):
    from calibration.ranges import compute_ranges
    from calibration.reader import ArrayCalibrationReader
    from export.quantize import quantize_int8

    _, src = default_model
    calib, _ = real_sets
    ranges = compute_ranges(src, ArrayCalibrationReader(calib.inputs, "input"), "minmax")
    out = tmp_path_factory.mktemp("q")
    paths = {}
    for flavour in ("int8-cpu", "int8-trt"):
        paths[flavour] = out / f"{flavour}.onnx"
        quantize_int8(src, paths[flavour], ranges, EXPORT_FORMATS[flavour], method="minmax")
    return ranges, paths


def test_int8_flavours_have_the_promised_qdq_layout(quantized):
    import onnx
    from onnx import numpy_helper

    _, paths = quantized
    for flavour, path in paths.items():
        assert path.stat().st_size < 0.6 * DEFAULT.joinpath("classifier.onnx").stat().st_size  # int8 weights
        m = onnx.load(str(path))
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
        assert qs, flavour
        zps = [inits[n.input[2]] for n in qs if len(n.input) > 2 and n.input[2] in inits]
        if flavour == "int8-trt":
            assert all(z.dtype == np.int8 and not z.any() for z in zps)  # symmetric int8 activations
            # Q/DQ only where a weighted layer reads the tensor (other readers share the DQ output).
            weighted = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
            for d in (n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in inits):
                readers = {n.op_type for n in m.graph.node if d.output[0] in n.input}
                assert readers & weighted, readers
        else:
            assert all(z.dtype == np.uint8 for z in zps)
            assert any(z.any() for z in zps)  # asymmetric: non-zero zero points


def test_int8_agrees_with_fp32_on_held_out_occluded_real_faces(default_model, real_sets, quantized):
    from export.agreement import check_agreement, compare, run_onnx

    bundle, src = default_model
    _, held = real_sets
    _, paths = quantized
    ref = run_onnx(src, held.inputs)
    for flavour, path in paths.items():
        result = compare(
            ref,
            run_onnx(path, held.inputs, simulate=flavour == "int8-trt"),
            held.protocols,
            held.labels,
            held.label_names,
            bundle.labels,
        )
        # Measured 0.95-0.99 on this video; a broken quantisation (wrong ranges/zero points) lands near chance.
        assert result["top1_agreement"] >= 0.9, (flavour, result["per_protocol"])
        assert set(result["per_protocol"]) == {"clean", "upper_half", "lower_half", "mouth", "random_box:0.3"}
        assert result["per_protocol"]["clean"]["agreement"] >= 0.9
        with pytest.raises(ExportError, match="below --agreement 0.97"):
            check_agreement({**result, "top1_agreement": 0.5}, 0.97, what=flavour)
        check_agreement(result, 0.5, what=flavour)


def test_trt_cache_from_cpu_ranges_names_real_onnx_tensors(default_model, quantized, tmp_path):
    import onnx

    from calibration.ranges import amax_table
    from calibration.trt_cache import read_trt_cache, write_trt_cache

    _, src = default_model
    ranges, _ = quantized
    amax = amax_table(ranges)
    cache = read_trt_cache(write_trt_cache(tmp_path / "c.cache", amax, trt_version="10.3.0", method="minmax"))
    m = onnx.load(str(src))
    tensors = {o for n in m.graph.node for o in n.output} | {i.name for i in m.graph.input}
    assert "input" in cache.scales and set(cache.scales) <= tensors
    assert cache.amax()["input"] == pytest.approx(1.0, abs=0.02)  # (x/255 - 0.5)/0.5 spans [-1, 1]
    assert all(v > 0 for v in cache.scales.values())


def test_older_onnxruntime_path_calibrates_with_the_reader(default_model, real_sets, tmp_path, monkeypatch):
    """Before quantize_static(calibration_cache_path=) existed, the reader drives ONNX Runtime's own calibration."""
    import export.quantize as quantize
    from calibration.reader import ArrayCalibrationReader
    from export.agreement import compare, run_onnx

    bundle, src = default_model
    calib, held = real_sets
    monkeypatch.setattr(quantize, "_has_range_cache", lambda: False)
    with pytest.raises(ExportError, match="pass the calibration reader"):
        quantize.quantize_int8(src, tmp_path / "x.onnx", None, EXPORT_FORMATS["int8-cpu"], method="minmax")
    reader = ArrayCalibrationReader(calib.inputs, "input")
    quantize.quantize_int8(src, tmp_path / "q.onnx", None, EXPORT_FORMATS["int8-cpu"], method="minmax", reader=reader)
    result = compare(
        run_onnx(src, held.inputs),
        run_onnx(tmp_path / "q.onnx", held.inputs),
        held.protocols,
        held.labels,
        held.label_names,
        bundle.labels,
    )
    assert result["top1_agreement"] >= 0.9
