"""The shared training loop, the five methods (+ baseline), checkpoints, resumption, determinism, DSD, CLI."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from runtime.errors import ConfigError, DatasetError, InputError, OferError
from sdk.training.checkpoint import load_checkpoint, save_checkpoint
from runtime.input_spec import InputSpec
from sdk.training.config import TrainConfig
from sdk.training.loop import Trainer
from sdk.training.methods import build_method, open_data
from sdk.training.methods.lower_half import measured_sparsity, prune_masks

ROOT = Path(__file__).resolve().parents[1]
DATA = "procedural:n=32,size=32"
TINY_MODELS: dict[str, dict[str, Any]] = {
    "classifier": {"width": 4, "stem": "3x3s2"},
    "generator": {"width": 4, "depth": 2},
    "discriminator": {"width": 4, "depth": 2},
    "feature_disc": {"width": 8},
    "decoder": {"hidden": [8, 8]},
}


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread: on a shared 2-core box, thread contention makes tiny models many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(method: str, **kw: Any) -> TrainConfig:
    """A config that trains in about a second: 32 px grey faces, tiny widths (of the modules the method has),
    2 steps per stage."""
    base: dict[str, Any] = dict(
        method=method,
        data=DATA,
        input=InputSpec.square(32, 1),
        epochs=1,
        max_steps=2,
        batch_size=8,
        model_kwargs=TINY_MODELS,
        eval_protocols=("clean", "upper_half"),
    )
    base.update(kw)
    roles = build_method(TrainConfig(**base)).used_roles()
    base["model_kwargs"] = {r: v for r, v in base["model_kwargs"].items() if r in roles}
    return TrainConfig(**base)


def make_trainer(cfg: TrainConfig, out: Path | None = None) -> Trainer:
    return Trainer(build_method(cfg), open_data(cfg.data, "train"), out_dir=out, progress=False)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}  # checkpoints load on the CPU


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def read_log(out: Path) -> list[dict[str, str]]:
    with (out / "train_log.csv").open() as f:
        return list(csv.DictReader(f))


# (method, options, module frozen in the last stage, modules trained in the last stage)
CASES = [
    ("gan-inpaint", {}, "generator", ["discriminator"]),
    ("deocclusion", {}, "classifier", ["generator", "discriminator"]),
    ("privileged", {}, "teacher", ["student", "feature_disc", "decoder"]),
    ("lower-half", {}, None, ["classifier"]),
    ("cbam", {}, None, ["classifier"]),
    ("baseline", {}, None, ["classifier"]),
]


@pytest.mark.parametrize("method,options,frozen,trained", CASES, ids=[c[0] for c in CASES])
def test_each_method_trains_its_modules_and_freezes_the_others(
    tmp_path: Path, method: str, options: dict, frozen: str | None, trained: list[str]
) -> None:
    cfg = tiny_config(method, options=options)
    trainer = make_trainer(cfg, tmp_path)
    n_stages = len(trainer.stage_list)
    if n_stages > 1:  # run all but the last stage, then resume the checkpoint for the last one
        trainer.fit(stop_after_epochs=n_stages - 1)
        before = {n: snapshot(m) for n, m in load_checkpoint(tmp_path / "checkpoint").models.items()}
        trainer = make_trainer(cfg, tmp_path)
        result = trainer.fit(resume_from=tmp_path / "checkpoint")
    else:
        before = {n: snapshot(m) for n, m in trainer.models.items()}
        result = trainer.fit()
    assert result["position"]["stage"] == n_stages
    rows = read_log(tmp_path)
    assert rows, "no log rows"
    last_stage = trainer.stage_list[-1].name
    for row in rows:
        for key, value in row.items():
            if key not in ("stage", "epoch", "step") and value != "":
                assert math.isfinite(float(value)), (key, value)
    assert any(r["stage"] == last_stage for r in rows)
    for name in trained:
        assert not same(before[name], snapshot(trainer.models[name])), f"{name} did not change"
    if frozen is not None:
        assert same(before[frozen], snapshot(trainer.models[frozen])), f"frozen {frozen} changed"
    ck = load_checkpoint(tmp_path / "checkpoint")
    assert ck.config["method"] == method and ck.labels == trainer.labels
    plan = ck.config["export"]
    assert plan["pipeline"] in ("direct", "inpaint") and plan["classifier"] in ck.models


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    # dropout + noise + random occlusions: resuming must restore the RNG streams, not just the weights
    kw = dict(
        epochs=2,
        max_steps=None,
        model_kwargs={**TINY_MODELS, "classifier": {**TINY_MODELS["classifier"], "dropout": 0.5}},
        options={"protocols": ["clean", "upper_half", "eyes"], "noise_prob": 0.5},
    )
    full = make_trainer(tiny_config("baseline", **kw), tmp_path / "full")
    full.fit()
    part = make_trainer(tiny_config("baseline", **kw), tmp_path / "part")
    part.fit(stop_after_epochs=1)
    assert load_checkpoint(tmp_path / "part" / "checkpoint").position["epoch"] == 1
    resumed = make_trainer(tiny_config("baseline", **kw), tmp_path / "part")
    resumed.fit(resume_from=tmp_path / "part" / "checkpoint")
    assert same(snapshot(full.models["classifier"]), snapshot(resumed.models["classifier"]))
    assert read_log(tmp_path / "full") == read_log(tmp_path / "part")
    assert len(read_log(tmp_path / "full")) == 8  # 2 epochs x 32 samples / batch 8


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    runs = []
    for seed in (3, 3, 4):
        t = make_trainer(tiny_config("cbam", seed=seed, max_steps=3))
        t.fit()
        runs.append(snapshot(t.models["classifier"]))
    assert same(runs[0], runs[1])
    assert not same(runs[0], runs[2])


def test_loss_decreases_when_fitting_a_small_set() -> None:
    t = make_trainer(
        tiny_config(
            "baseline",
            data="procedural:n=16,size=32",
            batch_size=16,
            epochs=12,
            max_steps=None,
            lr=3e-3,
            options={"flip": False},
        )
    )
    t.fit()
    ce = [r["ce"] for r in t.rows]
    assert sum(ce[-3:]) / 3 < 0.8 * sum(ce[:3]) / 3, ce


def test_checkpoint_round_trip_and_clear_errors(tmp_path: Path) -> None:
    t = make_trainer(tiny_config("privileged"), tmp_path)
    t.fit()
    ck = load_checkpoint(tmp_path)  # the --out folder is accepted too
    for name, module in t.models.items():
        assert same(snapshot(module), snapshot(ck.models[name])), name
    cfg = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert cfg["input"] == {
        "size": [32, 32],
        "channels": 1,
        "color": "gray",
        "layout": "NCHW",
        "scale": 1 / 255,
        "mean": [0.5],
        "std": [0.5],
        "crop_margin": 0.075,
        "crop_offset": [0.0, -0.09],
    }
    assert ck.input == InputSpec.square(32, 1)
    assert cfg["models"]["student"]["registry"] == "resnet18" and cfg["seed"] == 0 and cfg["data"] == DATA
    assert cfg["export"] == {
        "pipeline": "direct",
        "classifier": "student",
        "inpainter": None,
        "classifier_output": None,
    }
    assert not list((tmp_path / "checkpoint").glob("*.pt")) and not list((tmp_path / "checkpoint").glob("*.pkl"))
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not an ofer checkpoint"):
        load_checkpoint(tmp_path / "empty")
    bad = tmp_path / "bad"
    save_checkpoint(bad, config={k: cfg[k] for k in ("models", "labels", "input")}, models=t.models)
    (bad / "model.student.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(bad)
    swapped = tmp_path / "swapped"
    save_checkpoint(swapped, config={k: cfg[k] for k in ("models", "labels", "input")}, models=t.models)
    os.replace(swapped / "model.decoder.safetensors", swapped / "model.student.safetensors")
    with pytest.raises(InputError, match="does not fit"):
        load_checkpoint(swapped)


def test_dsd_prunes_each_layer_to_its_sparsity_then_redenses(tmp_path: Path) -> None:
    from sdk.training.models import create_model

    model = create_model("resnet18", num_classes=7, in_channels=1, width=4)
    masks = prune_masks(model, {"head*": 0.1, "*": 0.5})
    assert masks and all(
        abs(float((~m).float().mean()) - (0.1 if n.startswith("head") else 0.5)) < 0.02 for n, m in masks.items()
    )
    cfg = tiny_config("lower-half", options={"dsd": True, "dsd_sparsity": 0.4})
    t = make_trainer(cfg, tmp_path)
    assert [s.name for s in t.stage_list] == ["full", "occluded-dense", "occluded-sparse", "occluded-redense"]
    t.fit(stop_after_epochs=3)  # full, dense, sparse (with 2 optimiser steps under the mask)
    sparse = measured_sparsity(t.models["classifier"])
    assert sparse and all(abs(v - 0.4) < 0.02 for v in sparse.values()), sparse
    t = make_trainer(cfg, tmp_path)
    t.fit(resume_from=tmp_path / "checkpoint")
    assert all(v < 0.05 for v in measured_sparsity(t.models["classifier"]).values())


def test_deocclusion_expression_loss_ablation_changes_the_loss_terms(tmp_path: Path) -> None:
    gens = {}
    for flag in (True, False):
        out = tmp_path / str(flag)
        t = make_trainer(tiny_config("deocclusion", options={"use_expr_loss": flag}), out)
        t.fit()
        rows = [r for r in read_log(out) if r["stage"] == "deocclude"]
        assert rows and all(("expr" in r and r["expr"] != "") == flag for r in rows)
        assert all(r["pixel"] and r["adv"] and r["d_adv"] for r in rows)
        gens[flag] = snapshot(t.models["generator"])
    assert not same(gens[True], gens[False])


def test_privileged_terms_switch_off_with_their_modules() -> None:
    plain = build_method(tiny_config("privileged", options={"w_out": 0, "w_lir": 0, "w_adv": 0, "w_rec": 0}))
    assert list(plain.model_specs(7)) == ["student"] and [s.name for s in plain.stages()] == ["student"]
    full = build_method(tiny_config("privileged"))
    assert set(full.model_specs(7)) == {"student", "teacher", "feature_disc", "decoder"}
    assert full.export_plan().classifier == "student"


def test_config_and_method_errors() -> None:
    with pytest.raises(ConfigError, match="unknown training method"):
        build_method(tiny_config("nope"))
    with pytest.raises(ConfigError, match="no option"):
        build_method(tiny_config("cbam", options={"use_expr_loss": False}))
    with pytest.raises(ConfigError):
        tiny_config("cbam", batch_size=0)
    with pytest.raises(OferError, match="no-such-kind"):
        open_data("no-such-kind:/x", "train")
    with pytest.raises(DatasetError):
        open_data("fer2013:/no/such/file.csv", "train")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_train_then_eval_and_one_line_errors(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    common = [
        "--data",
        DATA,
        "--size",
        "32",
        "--width",
        "4",
        "--epochs",
        "1",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    r = _cli(
        "sdk.cli.train",
        "cbam",
        *common,
        "--protocols",
        "clean,mouth",
        "--threads",
        "1",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "| clean |" in r.stdout and "| mouth |" in r.stdout
    assert (out / "checkpoint" / "config.json").exists() and (out / "eval" / "confusion_mouth.png").exists()
    metrics = json.loads((out / "checkpoint" / "config.json").read_text())["metrics"]
    assert set(metrics) == {"clean", "mouth"}
    from sdk.cli import eval as eval_cli
    from sdk.cli import train as train_cli

    capfd.readouterr()
    # the error paths run in-process through the same main(): exit 2 and one line on stderr each
    assert train_cli.main(["cbam", *common, "--out", str(out)]) == 2
    assert train_cli.main(["gan-inpaint-x", *common, "--out", str(tmp_path / "x")]) == 2
    assert eval_cli.main([str(tmp_path / "nothing"), "--data", DATA, "--out", str(tmp_path / "e2")]) == 2
    assert train_cli.main(["baseline", *common, "--data", "nope:/x", "--out", str(tmp_path / "y")]) == 2
    assert train_cli.main(["baseline", *common, "--threads", "0", "--out", str(tmp_path / "z")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 5, err
    assert "not empty" in err[0] and "--force" in err[0]
    assert "unknown training method" in err[1] and "does not exist" in err[2] and "nope:/x" in err[3]
    assert "--threads must be >= 1" in err[4]
    assert not (tmp_path / "x").exists()
    assert (
        eval_cli.main([str(out), "--data", DATA, "--protocols", "clean,upper_half", "--out", str(tmp_path / "ev")]) == 0
    )
    assert "| upper_half |" in capfd.readouterr().out
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(report["protocols"]) == {"clean", "upper_half"}


def test_pretrained_classifier_is_loaded_frozen_and_label_checked(tmp_path: Path) -> None:
    make_trainer(tiny_config("baseline"), tmp_path / "base").fit()
    pre = load_checkpoint(tmp_path / "base").models["classifier"]
    cfg = tiny_config("deocclusion", options={"classifier_checkpoint": str(tmp_path / "base")})
    t = make_trainer(cfg)
    assert [s.name for s in t.stage_list] == ["deocclude"]
    t.fit()
    assert same(snapshot(pre), snapshot(t.models["classifier"]))
    other = tiny_config(
        "deocclusion",
        data="procedural:n=32,size=32,labels=fer7+contempt",
        options={"classifier_checkpoint": str(tmp_path / "base")},
    )
    with pytest.raises(ConfigError, match="label sets differ"):
        make_trainer(other).fit()


def test_batched_items_equal_single_items() -> None:
    from sdk.training.augment import OcclusionMix, PairedOcclusionDataset

    ds = PairedOcclusionDataset(open_data(DATA, "train"), InputSpec.square(32, 1), OcclusionMix(), seed=3)
    ds.set_epoch(2)
    indices = [7, 0, 19, 7, 31]
    batch = ds.__getitems__(indices)
    for i, item in zip(indices, batch):
        single = ds[i]
        assert all(torch.equal(item[k], single[k]) for k in single)


def test_gan_inpaint_classify_stage_sees_clean_faces_at_a_higher_lr(tmp_path: Path) -> None:
    method = build_method(tiny_config("gan-inpaint"))
    inpaint, classify = method.stages()
    assert "clean" not in inpaint.occlusion.protocols and "clean" in classify.occlusion.protocols
    assert inpaint.lr_scale == 1.0 and classify.lr_scale == 5.0
    trainer = make_trainer(tiny_config("gan-inpaint", lr=1e-4), tmp_path / "run")
    trainer.fit()
    disc = trainer.models["discriminator"]
    # the expression head reads the whole last map (32 px, depth 2 -> 8x8), not a global average
    assert disc.expression[-1].in_features == disc.real_fake.in_features * 8 * 8
