"""`ofer train` as a user meets it: epoch lines without a terminal, results.csv, best/last, curves, the summary,
Ctrl-C and --resume, defaults by input size, options a method would ignore, the near-chance warning."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.errors import ConfigError
from runtime.input_spec import InputSpec
from sdk.training.config import TrainConfig
from sdk.training.evaluation import EvalReport, ProtocolResult
from sdk.training.methods import build_method, chance_warning
from tests.test_training import one_thread  # noqa: F401 - autouse fixture: one torch thread

ROOT = Path(__file__).resolve().parents[1]
DATA = "procedural:n=48,size=32"
TINY = ["--data", DATA, "--size", "32", "--batch-size", "8", "--threads", "1", "--protocols", "clean,upper_half"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
OFER = [sys.executable, "-m", "sdk.cli.main"]


def ofer(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*OFER, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, **kw)


def test_epoch_lines_results_csv_best_and_summary_without_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = ofer("train", "cbam", *TINY, "--width", "4", "--epochs", "3", "--val-limit", "14", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("cbam: plan: train 3 epoch(s) x 6 steps = 18 steps of batch 8")
    assert "resnet18_cbam(stem=3x3s2, width=4)" in lines[0]
    assert any("s/step over the first 5 steps -> about" in ln for ln in lines)
    epochs = [ln for ln in lines if ln.startswith("cbam train epoch ")]
    assert [ln.split()[3] for ln in epochs] == ["1/3", "2/3", "3/3"]
    assert all(" ce " in ln and "val_occluded" in ln and "items/s" in ln for ln in epochs)
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [6, 12, 18] and {"ce", "val_clean", "seconds"} <= set(rows[0])
    best = max(range(3), key=lambda i: (float(rows[i]["val_occluded"]), -i))
    assert (out / "best" / "config.json").is_file() and (out / "checkpoint" / "config.json").is_file()
    assert f"at train epoch {best + 1} (step {rows[best]['step']})" in r.stdout
    assert "| train | 3 | 18 |" in r.stdout and "| occluded mean |" in r.stdout
    assert lines[-1] == f"results saved to {out}"
    assert "\r" not in r.stdout + r.stderr  # no progress bar redrawn (or erased) when not a terminal


def test_curves_png_or_one_line_without_matplotlib(tmp_path: Path) -> None:
    from sdk.training.reporting import draw_curves

    rows = [
        {
            "stage": "s",
            "epoch": i,
            "epochs": 2,
            "step": 4 * i,
            "ce": 2.0 - i / 4,
            "val_clean": 0.2 * i,
            "seconds": 1.0,
            "items_per_s": 10.0,
        }
        for i in (1, 2)
    ]
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from sdk.training.reporting import draw_curves\n"
        f"print(draw_curves({rows!r}, {str(tmp_path / 'no.png')!r}))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "matplotlib is not installed" in r.stdout and len(r.stdout.splitlines()) == 1
    assert not (tmp_path / "no.png").exists()
    pytest.importorskip("matplotlib")
    import cv2

    png = draw_curves(rows, tmp_path / "curves.png")
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > 400


def test_ctrl_c_names_the_checkpoint_and_the_exact_resume_command(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*OFER, "train", "baseline", *TINY, "--width", "4", "--epochs", "40", "--val-limit", "0", "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint" / "config.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "the checkpoint of the last finished epoch" in stderr and str(out / "checkpoint") in stderr
    cmd = shlex.split(stderr.split("Resume with:\n", 1)[1].splitlines()[0])
    assert cmd[0] == "ofer" and cmd[-1] == "--resume" and "--out" in cmd
    from sdk.training.checkpoint import read_config

    done = read_config(out / "checkpoint")["position"]["step"] // 6  # epochs in the checkpoint (6 steps each)
    assert 0 < done < 40 and len(list(csv.DictReader((out / "results.csv").open()))) == done
    # the printed command resumes this --out (no path after --resume); cap the rest at a few steps
    r = ofer(*cmd[1:-1], "--steps", str(6 * done + 12), "--resume")
    assert r.returncode == 0, r.stderr
    assert "already done (resumed)" in r.stdout and "results saved to" in r.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == done + 2 and [int(x["epoch"]) for x in rows] == list(range(1, done + 3))


def test_resume_without_a_checkpoint_and_ignored_options_are_refused(tmp_path: Path, capfd) -> None:
    from sdk.cli import train as train_cli

    capfd.readouterr()
    assert train_cli.main(["cbam", *TINY, "--resume", "--out", str(tmp_path / "none")]) == 2
    assert train_cli.main(["gan-inpaint", *TINY, "--width", "8", "--out", str(tmp_path / "g")]) == 2
    assert train_cli.main(["gan-inpaint", *TINY, "--model", "resnet18", "--out", str(tmp_path / "g")]) == 2
    assert train_cli.main(["cbam", *TINY, "--gen-width", "8", "--out", str(tmp_path / "c")]) == 2
    assert train_cli.main(["cbam", *TINY, "--model-arg", "classifier.depthx=3", "--out", str(tmp_path / "c")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 5, err
    assert "has no checkpoint/ to resume from" in err[0]
    assert "no classifier module" in err[1] and "--disc-width" in err[1]
    assert "--model 'resnet18' would be ignored" in err[2]
    assert "no generator module" in err[3]
    assert "no option(s) ['depthx']" in err[4]
    assert not (tmp_path / "g").exists() and not (tmp_path / "c").exists()


def test_every_benchmark_setting_is_reachable_from_ofer_train() -> None:
    import argparse

    from sdk.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "gan-inpaint",
            "--data",
            DATA,
            "--out",
            "x",
            "--gen-width",
            "8",
            "--gen-depth",
            "2",
            "--disc-width",
            "8",
            "--disc-depth",
            "4",
            "--stage-minutes",
            "1",
        ]
    )
    cfg = train_cli.build_config(args)
    assert cfg.model_kwargs == {"generator": {"width": 8, "depth": 2}, "discriminator": {"width": 8, "depth": 4}}
    specs = build_method(cfg).checked_specs(7)
    assert specs["generator"].kwargs["width"] == 8 and specs["discriminator"].kwargs["depth"] == 4
    args = parser.parse_args(
        [
            "train",
            "privileged",
            "--data",
            DATA,
            "--out",
            "x",
            "--width",
            "16",
            "--stem",
            "3x3s2",
            "--dropout",
            "0.2",
            "--model-arg",
            "feature_disc.width=32",
            "--model-arg",
            "decoder.hidden=32,16",
        ]
    )
    specs = build_method(train_cli.build_config(args)).checked_specs(7)
    assert specs["student"].kwargs["dropout"] == 0.2 and specs["feature_disc"].kwargs["width"] == 32
    assert specs["decoder"].kwargs["hidden"] == [32, 16]


@pytest.mark.parametrize(
    "size,stem,width", [(48, "3x3s2", 32), (64, "3x3s2", 32), (112, "3x3s2", 64), (160, "7x7", 64)]
)
def test_default_classifier_fits_the_input_size(size: int, stem: str, width: int) -> None:
    cfg = TrainConfig(method="cbam", data=DATA, input=InputSpec.square(size))
    kw = build_method(cfg).checked_specs(7)["classifier"].kwargs
    assert (kw["stem"], kw["width"]) == (stem, width)
    explicit = TrainConfig(
        method="cbam", data=DATA, input=InputSpec.square(size), model_kwargs={"classifier": {"width": 8, "stem": "3x3"}}
    )
    assert build_method(explicit).checked_specs(7)["classifier"].kwargs["width"] == 8


def test_near_chance_warning() -> None:
    def report(acc: float) -> EvalReport:
        return EvalReport(labels=tuple("abcdefg"), results={"clean": ProtocolResult("clean", 100, acc, acc, [], [])})

    warning = chance_warning(report(0.14), 7, 300)
    assert warning is not None and "near chance" in warning and "300 steps" in warning and "--lr" in warning
    assert chance_warning(report(0.214), 7, 300) is not None  # 1.5 / 7 = 0.2143
    assert chance_warning(report(0.22), 7, 300) is None
    with pytest.raises(ConfigError, match="val_limit"):
        TrainConfig(method="cbam", data=DATA, val_limit=-1)


def test_resume_with_other_model_options_is_refused(tmp_path: Path) -> None:
    from sdk.training.loop import Trainer
    from sdk.training.methods import open_data
    from tests.test_training import tiny_config

    cfg = tiny_config("baseline")
    Trainer(build_method(cfg), open_data(cfg.data, "train"), out_dir=tmp_path, progress=False).fit()
    other = tiny_config("baseline", model_kwargs={"classifier": {"width": 8, "stem": "3x3s2"}})
    with pytest.raises(ConfigError, match="resume with the options it was trained with"):
        Trainer(build_method(other), open_data(cfg.data, "train"), progress=False).fit(resume_from=tmp_path)


def test_help_texts_show_the_defaults() -> None:
    from sdk.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    train_help = " ".join(sub.choices["train"].format_help().split())
    assert "input size in pixels (default: 48)" in train_help and "(default: 64)" in train_help
    assert "(default: None)" not in train_help and "(default: False)" not in train_help
    eval_help = " ".join(sub.choices["eval"].format_help().split())
    assert "(default: protocol)" in eval_help and "--pipeline" in eval_help
    assert "(default: 1,8)" in " ".join(sub.choices["profile"].format_help().split())
    run_help = " ".join(sub.choices["run"].format_help().split())
    assert "upright" in run_help and "(default: True)" not in run_help  # --no-align is off unless given
    assert "CPU threads per engine (default: 1)" in run_help
