"""INT8 of the training methods' models: the benchmark's logic, a trained gan-inpaint checkpoint's INT8 record per
flavour (classifier and whole pipeline), and quantisation-aware fine-tuning (sdk.training.qat)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.int8_methods import (
    FLAVOURS,
    METHODS,
    export_checkpoint,
    flavour_rows,
    model_kwargs,
    parse_methods,
    pixel_noise_agreement,
    summary_lines,
    train_config,
)
from calibration.config import CalibrationConfig
from runtime.bundle import load_bundle
from runtime.errors import ConfigError
from tests.test_training import DATA, make_trainer, one_thread, tiny_config  # noqa: F401  (one_thread: autouse)


def test_method_lists_parse_and_unknown_names_are_refused() -> None:
    assert parse_methods("all") == list(METHODS)
    assert parse_methods("privileged, baseline") == ["baseline", "privileged"]  # training order
    with pytest.raises(ConfigError, match="resnet"):
        parse_methods("baseline,resnet")
    with pytest.raises(ConfigError):
        parse_methods(" , ")


def test_model_sizes_follow_the_side_by_side_benchmark() -> None:
    gan = model_kwargs("gan-inpaint", ("generator", "discriminator"), 8)
    assert set(gan) == {"generator", "discriminator"} and gan["discriminator"]["depth"] == 4
    deocc = model_kwargs("deocclusion", ("classifier", "generator", "discriminator"), 8)
    assert deocc["discriminator"]["depth"] == 3 and deocc["classifier"] == {"width": 8, "stem": "3x3s2", "dropout": 0.2}
    assert train_config("baseline", DATA, 32, 4).model == "resnet18"
    cbam = train_config("cbam", DATA, 32, 4)  # its own classifier: CBAM's sigmoid/mul attention gets quantised too
    assert cbam.model is None and cbam.model_kwargs["classifier"]["width"] == 4
    assert set(train_config("gan-inpaint", DATA, 32, 4).model_kwargs) == {"generator", "discriminator"}


def _record(cpu: float, trt: float, floats: int) -> dict:
    def one(a: float, n: int, passed: bool) -> dict:
        return {
            "top1_agreement": a,
            "n": 21,
            "accuracy_fp32": 0.5,
            "excluded_nodes": [f"n{i}" for i in range(n)],
            "quantizable_nodes": 30,
            "all_int8_agreement": a - 0.05,
            "passed": passed,
            "per_protocol": {"clean": {"agreement": a}},
            "pipeline": {"top1_agreement": a},
        }

    return {
        "int8-cpu": one(cpu, floats, cpu >= 0.98),
        "int8-trt": one(trt, 0, trt >= 0.98),
        "outcome": {
            "int8-cpu": "passed" if cpu >= 0.98 else "failed",
            "int8-trt": "passed" if trt >= 0.98 else "failed",
        },
    }


def test_rows_and_targets_come_from_the_export_record() -> None:
    rows = flavour_rows("gan-inpaint", _record(0.99, 0.97, 3))
    assert [r["flavour"] for r in rows] == list(FLAVOURS)
    cpu, trt = rows
    assert cpu["float nodes"] == 3 and cpu["candidates"] == 30 and cpu["pipeline"] == "inpaint"
    assert cpu["all-int8"] == pytest.approx(0.94) and cpu["pipeline agreement"] == 0.99
    assert trt["outcome"] == "failed"
    (line,) = summary_lines(rows, 0.98)
    assert "NOT MET" in line and "int8-cpu 0.9900 with 3/30 float" in line
    (line,) = summary_lines(flavour_rows("cbam", _record(0.99, 0.985, 0)), 0.98)
    assert ": MET" in line


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gan-inpaint checkpoint (inpainter + discriminator-classifier, the inpaint pipeline), trained a few steps."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("gan") / "run"
    make_trainer(tiny_config("gan-inpaint", max_steps=4), out).fit()
    return out / "checkpoint"


def test_gan_inpaint_checkpoint_int8_records_agreement_per_flavour_and_pipeline(
    gan_checkpoint: Path, tmp_path: Path
) -> None:
    calib = CalibrationConfig(source=DATA, count=32, heldout_count=4, cache_dir=None)
    report = export_checkpoint(gan_checkpoint, tmp_path / "bundle", calib, agreement=0.98, max_float_nodes=2)
    manifest = load_bundle(tmp_path / "bundle").provenance["metrics"]["export"]
    assert manifest["calibration"]["source"] == DATA and manifest["heldout"]["source"] == DATA
    for key in FLAVOURS:
        rec = manifest[key]
        assert 0.0 <= rec["top1_agreement"] <= 1.0 and rec["n"] == 4 * 21
        assert rec["passed"] == (manifest["outcome"][key] == "passed")
        assert rec["all_int8_agreement"] <= 1.0 and len(rec["excluded_nodes"]) <= 2
        if "pipeline" in rec:  # the classifier passed: the INT8 inpainter was made and the pipeline judged
            pipe = rec["pipeline"]
            assert len(pipe["inpainter_excluded_nodes"]) <= 2 and pipe["passed"] == rec["passed"]
        if rec["passed"]:  # an inpaint bundle's variant is judged on the whole pipeline too
            assert rec["pipeline"]["top1_agreement"] >= 0.98
        else:
            assert "below --agreement" in rec["failure"]
    floor = pixel_noise_agreement(tmp_path / "bundle", calib)  # FP32 vs itself under +-0.5 grey level
    assert 0.5 < floor <= 1.0 and floor == pixel_noise_agreement(tmp_path / "bundle", calib)
    rows = flavour_rows("gan-inpaint", report)
    assert {r["flavour"] for r in rows} == {"fp16", *FLAVOURS} and all(r["pipeline"] == "inpaint" for r in rows)


def test_qat_brings_the_fake_quantised_model_closer_to_its_float_self(tmp_path: Path) -> None:
    from sdk.training.checkpoint import load_checkpoint, save_checkpoint
    from sdk.training.qat import fake_quant_outputs, qat_finetune, training_faces

    torch.manual_seed(0)
    make_trainer(tiny_config("baseline", max_steps=6), tmp_path / "run").fit()
    ck = load_checkpoint(tmp_path / "run" / "checkpoint")
    with torch.no_grad():  # sharper logits: a few steps leave them nearly flat, and rounding would not matter
        ck.models["classifier"].head.net[2].weight.mul_(30.0)
    save_checkpoint(
        tmp_path / "sharp",
        config={k: v for k, v in ck.config.items() if k not in ("format", "version")},
        models=ck.models,
    )
    x, _, _ = training_faces(ck, 64, seed=5)  # other faces than the fine-tuning's (seed 0)
    xt = torch.from_numpy(x)

    def gap(model: torch.nn.Module) -> float:
        """KL of the simulated INT8 model from the float one: what the export's agreement gate sees."""
        with torch.no_grad():
            ref = model(xt).log_softmax(1)
        sim = fake_quant_outputs(model, xt, "int8-cpu").log_softmax(1)
        return float(torch.nn.functional.kl_div(sim, ref, log_target=True, reduction="batchmean"))

    record = qat_finetune(
        tmp_path / "sharp",
        tmp_path / "qat",
        flavour="int8-cpu",
        steps=40,
        count=64,
        batch_size=32,
        lr=1e-3,
        labels=0.0,
        log=None,
    )
    after = load_checkpoint(tmp_path / "qat")
    assert after.config["qat"] == record and record["loss_last"] < record["loss_first"]
    assert set(after.models) == set(ck.models)  # an ordinary checkpoint: same modules, no fake quantisation left
    assert gap(after.models["classifier"]) < gap(ck.models["classifier"]) > 1e-5
    with pytest.raises(ConfigError, match="flavour"):
        qat_finetune(tmp_path / "sharp", tmp_path / "x", flavour="fp16", steps=1, count=64, log=None)


def test_cpu_flavour_below_the_gate_retries_with_qdq_on_weighted_layers_only(tmp_path: Path) -> None:
    """int8-cpu quantises every op; when keeping nodes in float does not pass, Q/DQ on Conv/Gemm only is tried
    (CBAM's Sigmoid/Mul attention and the residual Adds stay float), and what was chosen is on record."""
    from export.formats import EXPORT_FORMATS
    from export.modules import checkpoint_to_onnx
    from export.variants import ExportRun, export_variant
    from sdk.training.checkpoint import load_checkpoint

    make_trainer(tiny_config("cbam", max_steps=4), tmp_path / "run").fit()
    ck = load_checkpoint(tmp_path / "run" / "checkpoint")
    source = checkpoint_to_onnx(ck, ck.input, tmp_path)
    calib = CalibrationConfig(source=DATA, count=32, heldout_count=4, cache_dir=None)
    run = ExportRun(source, calib, agreement=1.01, max_float_nodes=1, work=tmp_path)  # a gate nothing passes
    variant = export_variant(EXPORT_FORMATS["int8-cpu"], run)
    assert not variant.passed and not variant.entries
    sens = variant.record["sensitivity"]  # in the manifest even for a flavour left out
    if variant.record.get("weighted_ops_only"):  # the weighted-only scheme came closer: it is the one on record
        assert sens["full_scheme"]["excluded"] == 1 and sens["weighted_ops_only"]
    else:
        assert set(sens["weighted_ops_tried"]) == {"excluded", "agreement"}
