"""The export format table drives export: every entry knows how to make and check its variant; calibration settings
travel as one checked CalibrationConfig; a checkpoint's deployable modules come from one export_modules."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from calibration.config import CalibrationConfig
from export.formats import EXPORT_FORMATS, parse_precisions
from runtime.errors import ConfigError, ExportError


def test_every_onnx_variant_in_the_table_has_a_maker_and_int8_a_scheme():
    for fmt in EXPORT_FORMATS.values():
        if fmt.format == "trt" or fmt.key == "fp32":
            assert fmt.make is None, fmt.key  # the reference is copied; engines are built on the device
            continue
        assert fmt.make is not None and (fmt.int8 is not None) == fmt.calibrated, fmt.key
        assert fmt.record == ("quantization" if fmt.calibrated else "conversion")
    cpu, trt = EXPORT_FORMATS["int8-cpu"].int8, EXPORT_FORMATS["int8-trt"].int8
    assert (cpu.activations, cpu.symmetric, cpu.ops, cpu.reduce_range) == ("QUInt8", False, None, True)
    assert (trt.activations, trt.symmetric, trt.reduce_range) == ("QInt8", True, False)
    assert set(trt.ops) == {"Conv", "ConvTranspose", "Gemm", "MatMul"} and EXPORT_FORMATS["int8-trt"].simulate


def test_engine_entries_are_built_in_one_place():
    fp16 = EXPORT_FORMATS["fp16"]
    assert fp16.entry("classifier", "/w/x.onnx", conversion={"casts": 2}, agreement=1.0) == {
        "name": "classifier-fp16",
        "path": Path("/w/x.onnx"),
        "file": "classifier.fp16.onnx",
        "format": "onnx",
        "precision": "fp16",
        "role": "classifier",
        "conversion": {"casts": 2},
        "agreement": 1.0,
    }
    inp = EXPORT_FORMATS["int8-trt"].entry("inpainter", "/w/i.onnx")
    assert (inp["name"], inp["file"], inp["output"]) == ("inpainter-int8-trt", "inpainter.int8-trt.onnx", "image")
    ref = EXPORT_FORMATS["fp32"].entry("classifier_headset", "/w/h.onnx")
    assert (ref["name"], ref["file"], "output" in ref) == ("classifier_headset", "classifier_headset.onnx", False)


def test_quantize_settings_come_from_the_format_object():
    pytest.importorskip("onnxruntime.quantization")
    from export.quantize import quantize_settings

    trt = quantize_settings(EXPORT_FORMATS["int8-trt"], "minmax")
    assert trt["op_types_to_quantize"] == ["Conv", "ConvTranspose", "Gemm", "MatMul"]
    assert trt["extra_options"]["ActivationSymmetric"] is True and trt["activation_type"].name == "QInt8"
    cpu = quantize_settings(EXPORT_FORMATS["int8-cpu"], "entropy")
    assert "op_types_to_quantize" not in cpu and cpu["activation_type"].name == "QUInt8"
    with pytest.raises(ExportError, match="fp16 is not an INT8 format"):
        quantize_settings(EXPORT_FORMATS["fp16"], "minmax")


def test_calibration_config_is_checked_once():
    cfg = CalibrationConfig(source="procedural", method=" Entropy ", count=8, cache_dir="/tmp/x")
    assert cfg.method == "entropy" and cfg.cache_dir == Path("/tmp/x")
    assert cfg.with_source("a.mp4").source == "a.mp4" and cfg.with_source("a.mp4").count == 8
    with pytest.raises(ConfigError, match="choose from entropy, minmax, percentile"):
        CalibrationConfig(method="kl")
    with pytest.raises(ConfigError, match="detect, whole"):
        CalibrationConfig(faces="crop")
    with pytest.raises(ConfigError, match="heldout_count must be at least 1"):
        CalibrationConfig(heldout_count=0)
    with pytest.raises(AttributeError):
        cfg.count = 3  # frozen: passed whole, never changed on the way


class _TwoHeads(torch.nn.Module):
    """A classifier returning (real/fake, expression logits), as the GAN discriminator does."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 7)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x), self.b(x)


def test_export_modules_follows_the_export_plan():
    from export import export_modules

    disc, gen = _TwoHeads().train(), torch.nn.Identity()
    ck = SimpleNamespace(
        models={"discriminator": disc, "generator": gen},
        config={
            "export": {
                "pipeline": "inpaint",
                "classifier": "discriminator",
                "inpainter": "generator",
                "classifier_output": 1,
            }
        },
    )
    mods = export_modules(ck)
    assert set(mods) == {"classifier", "inpainter"} and mods["inpainter"] is gen
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    assert torch.equal(mods["classifier"](x), disc(x)[1]) and not disc.training  # logits only, eval mode
    direct = export_modules(SimpleNamespace(models={"m": disc}, config={}))  # no plan: the first module, direct
    assert set(direct) == {"classifier"}
    with pytest.raises(ExportError, match="names 'student' as its classifier"):
        export_modules(SimpleNamespace(models={"m": disc}, config={"export": {"classifier": "student"}}))


def test_parse_precisions_keeps_table_order_and_the_reference():
    assert [f.key for f in parse_precisions("int8-trt,fp16")] == ["fp32", "fp16", "int8-trt"]
