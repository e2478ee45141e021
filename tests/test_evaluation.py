"""Evaluation: metrics on a constructed case with known accuracy/F1, label alignment, determinism, reports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.input_spec import InputSpec
from sdk.training.evaluation import align_labels, confusion_matrix, evaluate, f1_scores, side_by_side, write_report

LABELS = ("a", "b", "c", "d")
TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
SHOWN = [0, 0, 1, 1, 1, 2, 2, 0, 3, 3]  # what each image encodes: samples 2 and 7 are "mislabelled"
SPEC = InputSpec.square(32, 1)
from tests.test_training import one_thread  # noqa: E402,F401 - autouse fixture: one torch thread


class CodedFaces:
    """A real (tiny) face dataset: each 32x32 grey image is one flat grey level that encodes a class."""

    labels = LABELS

    def __len__(self) -> int:
        return len(TRUE)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.full((32, 32), 40 + 50 * SHOWN[i], np.uint8), TRUE[i]


def decode_visible(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Predict the class from the median of the pixels the occlusion left visible (one-hot probabilities)."""
    out = np.zeros((len(images), len(LABELS)), np.float32)
    for k, (img, m) in enumerate(zip(images, masks)):
        visible = img[m < 0.5]
        out[k, int(round((np.median(visible) - 40) / 50))] = 1.0
    return out


def test_known_accuracy_f1_and_confusion_on_every_protocol() -> None:
    protocols = ["clean", "upper_half", "lower_half", "eyes", "r16"]
    report = evaluate(decode_visible, CodedFaces(), protocols, SPEC, batch_size=3)
    # worked by hand: class a: tp 2, support 3, predicted 3 -> F1 2/3; b: 2, 2, 3 -> 0.8; c: 2, 3, 2 -> 0.8; d: 1.0
    for p in protocols:
        r = report.results[p]
        assert r.n == 10 and r.accuracy == pytest.approx(0.8)
        assert r.per_class_f1 == pytest.approx([2 / 3, 0.8, 0.8, 1.0], abs=1e-6)
        assert r.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0.8 + 1.0) / 4)
        assert r.confusion == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 2]]


def test_model_label_order_is_mapped_and_mismatches_are_refused() -> None:
    reordered = ("d", "c", "b", "a")

    def predict(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return decode_visible(images, masks)[:, ::-1]  # the same answers, in the model's label order

    report = evaluate(predict, CodedFaces(), ["clean"], SPEC, labels=reordered)
    assert report.results["clean"].accuracy == pytest.approx(0.8)
    assert report.labels == reordered
    assert align_labels(reordered, LABELS).tolist() == [3, 2, 1, 0]
    with pytest.raises(ConfigError, match="label sets differ"):
        evaluate(decode_visible, CodedFaces(), ["clean"], SPEC, labels=("a", "b", "c", "x"))
    with pytest.raises(ConfigError, match="expected"):
        evaluate(lambda im, m: np.zeros((len(im), 3)), CodedFaces(), ["clean"], SPEC)


def test_occlusions_are_deterministic_per_sample_and_seed() -> None:
    seen: list[np.ndarray] = []

    def record(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        seen.append(masks.copy())
        return decode_visible(images, masks)

    for seed in (0, 0, 1):
        evaluate(record, CodedFaces(), ["random_box:0.3"], SPEC, batch_size=4, seed=seed)
    first, again, other = (np.concatenate(seen[i * 3 : (i + 1) * 3]) for i in range(3))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert 0 < first.mean() < 1


def test_metric_helpers_match_a_direct_count() -> None:
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    cm = confusion_matrix(t, p, 5)
    assert cm.sum() == 200 and all(cm[i, j] == np.sum((t == i) & (p == j)) for i in range(5) for j in range(5))
    f1, macro = f1_scores(cm)
    for c in range(5):
        tp, fp, fn = np.sum((t == c) & (p == c)), np.sum((t != c) & (p == c)), np.sum((t == c) & (p != c))
        assert f1[c] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert macro == pytest.approx(f1.mean())
    # a class that never occurs and is never predicted does not count towards macro-F1
    assert f1_scores(np.array([[3, 0, 0], [0, 1, 0], [0, 0, 0]]))[1] == pytest.approx(1.0)


def test_report_files(tmp_path: Path) -> None:
    report = evaluate(decode_visible, CodedFaces(), ["clean", "random_box:0.3"], SPEC)
    paths = write_report(report, tmp_path, title="coded")
    data = json.loads(paths["json"].read_text())
    assert data["labels"] == list(LABELS) and data["protocols"]["clean"]["accuracy"] == pytest.approx(0.8)
    md = paths["markdown"].read_text()
    assert "| clean | 10 | 0.8000 | 0.8167 |" in md and "| random_box:0.3 |" in md
    png = cv2.imread(str(tmp_path / "confusion_random_box_0.3.png"))
    assert png is not None and png.shape[0] > 200 and png.shape[2] == 3
    table = side_by_side({"m1": report, "m2": report}, "macro_f1")
    assert table.splitlines()[0] == "| protocol | m1 | m2 |" and "| clean | 0.8167 | 0.8167 |" in table


def test_an_onnx_pipeline_plugs_into_evaluate_like_the_checkpoint(tmp_path: Path) -> None:
    """gan-inpaint checkpoint -> export_modules -> ONNX (inpainter + classifier) -> same table as in torch."""
    import onnxruntime as ort

    from export.onnx import export_onnx
    from runtime.preprocess import to_tensor
    from sdk.training.checkpoint import load_checkpoint
    from sdk.training.evaluation import torch_predictor
    from export import export_modules
    from sdk.training.methods import open_data
    from tests.test_training import make_trainer, tiny_config

    cfg = tiny_config("gan-inpaint")
    make_trainer(cfg, tmp_path).fit()
    ck = load_checkpoint(tmp_path)
    plan = ck.config["export"]
    assert plan["pipeline"] == "inpaint"
    mods = export_modules(ck)
    spec = ck.input
    test = open_data(cfg.data, "test")
    x = np.random.default_rng(0).normal(0, 0.5, (2, 1, 32, 32)).astype(np.float32)
    m = np.zeros((2, 1, 32, 32), np.float32)
    m[:, :, :16] = 1
    export_onnx(mods["inpainter"], {"image": x, "mask": m}, tmp_path / "inpainter.onnx", output_names=("inpainted",))
    export_onnx(mods["classifier"], x, tmp_path / "classifier.onnx")
    inp = ort.InferenceSession(str(tmp_path / "inpainter.onnx"), providers=["CPUExecutionProvider"])
    clf = ort.InferenceSession(str(tmp_path / "classifier.onnx"), providers=["CPUExecutionProvider"])

    image_in, mask_in = (i.name for i in inp.get_inputs())
    clf_in = clf.get_inputs()[0].name

    def onnx_predict(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        filled = inp.run(None, {image_in: to_tensor(images, spec), mask_in: masks[:, None].astype(np.float32)})[0]
        logits = clf.run(None, {clf_in: filled})[0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    protocols = ["clean", "upper_half"]
    a = evaluate(onnx_predict, test, protocols, spec, labels=ck.labels, limit=24)
    b = evaluate(torch_predictor(ck.models, plan, spec), test, protocols, spec, labels=ck.labels, limit=24)
    for p in protocols:
        assert a.results[p].confusion == b.results[p].confusion


def test_ofer_eval_on_a_bundle_matches_the_checkpoint(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from export.onnx import export_onnx
    from runtime.bundle import write_bundle
    from sdk.cli import eval as eval_cli
    from sdk.training.checkpoint import load_checkpoint
    from export import export_modules
    from tests.test_training import DATA, make_trainer, tiny_config

    make_trainer(tiny_config("cbam"), tmp_path / "run").fit()
    ck = load_checkpoint(tmp_path / "run")
    spec = ck.input
    x = np.random.default_rng(0).normal(0, 0.5, (2, 1, 32, 32)).astype(np.float32)
    export_onnx(export_modules(ck)["classifier"], x, tmp_path / "clf.onnx")
    write_bundle(
        tmp_path / "bundle",
        labels=ck.labels,
        input_spec=spec,
        engines=[
            {
                "name": "classifier",
                "path": tmp_path / "clf.onnx",
                "format": "onnx",
                "precision": "fp32",
                "role": "classifier",
            }
        ],
        provenance={"method": "cbam"},
    )
    common = ["--data", DATA, "--protocols", "clean,upper_half,r16", "--limit", "24"]
    assert eval_cli.main([str(tmp_path / "bundle"), *common, "--out", str(tmp_path / "eb")]) == 0
    assert eval_cli.main([str(tmp_path / "run"), *common, "--out", str(tmp_path / "ec")]) == 0
    from_bundle = json.loads((tmp_path / "eb" / "metrics.json").read_text())["protocols"]
    from_ckpt = json.loads((tmp_path / "ec" / "metrics.json").read_text())["protocols"]
    assert {p: r["confusion"] for p, r in from_bundle.items()} == {p: r["confusion"] for p, r in from_ckpt.items()}


def test_report_has_an_occluded_mean_row_and_a_summary_chart(tmp_path: Path) -> None:
    report = evaluate(decode_visible, CodedFaces(), ["clean", "upper_half", "lower_half"], SPEC)
    occ = report.occluded_mean()
    want = (report.results["upper_half"].accuracy + report.results["lower_half"].accuracy) / 2
    assert occ is not None and occ["accuracy"] == pytest.approx(want) and occ["protocols"] == 2
    assert report.markdown().splitlines()[-1].startswith(f"| occluded mean | 2 protocols | {want:.4f} |")
    seen: list[tuple[int, int, str]] = []
    evaluate(decode_visible, CodedFaces(), ["clean", "mouth"], SPEC, progress=lambda d, t, p, r: seen.append((d, t, p)))
    assert seen == [(1, 2, "clean"), (2, 2, "mouth")]
    paths = write_report(report, tmp_path, title="coded", meta={"pipeline": "pipeline direct"})
    chart = cv2.imread(str(paths["summary"]))
    assert chart is not None and chart.shape[0] > 100
    assert json.loads(paths["json"].read_text())["pipeline"] == "pipeline direct"
    assert evaluate(decode_visible, CodedFaces(), ["clean"], SPEC).occluded_mean() is None


# Runs ``ofer eval`` with torch made unimportable, and checks afterwards that nothing imported it.
NO_TORCH = (
    "import sys; sys.modules['torch'] = None\n"
    "from sdk.cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "assert sys.modules.get('torch') is None, 'torch was imported'\n"
    "print('NO-TORCH-OK', flush=True); sys.exit(rc)"
)


def test_inpaint_bundle_evaluates_its_pipeline_like_its_checkpoint_without_torch(tmp_path: Path) -> None:
    """gan-inpaint checkpoint -> `ofer export` -> `ofer eval BUNDLE` (inpainter + classifier, no torch) gives the
    checkpoint's table; `--pipeline direct` (the classifier alone) is another, and says so."""
    import os
    import subprocess
    import sys

    from sdk.cli import eval as eval_cli
    from tests.test_checkpoint_to_bundle import _export
    from tests.test_training import DATA, ROOT, make_trainer, tiny_config

    make_trainer(tiny_config("gan-inpaint", max_steps=3), tmp_path / "run").fit()
    res = _export([sys.executable, "-m", "sdk.cli.main"], tmp_path / "run", tmp_path / "bundle", "--precision", "fp32")
    assert res.returncode == 0, res.stderr
    common = ["--data", DATA, "--protocols", "clean,upper_half,r16", "--limit", "24"]
    assert eval_cli.main([str(tmp_path / "run"), *common, "--out", str(tmp_path / "ec")]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def eval_bundle(out: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                NO_TORCH,
                "eval",
                str(tmp_path / "bundle"),
                *common,
                *extra,
                "--out",
                str(tmp_path / out),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    r = eval_bundle("eb")
    assert r.returncode == 0 and "NO-TORCH-OK" in r.stdout, r.stdout + r.stderr
    assert "pipeline inpaint: inpainter" in r.stdout and "masks from the protocol" in r.stdout
    assert "[3/3] r16" in r.stderr and "| occluded mean |" in r.stdout
    assert (tmp_path / "eb" / "summary.png").is_file()
    from_bundle = json.loads((tmp_path / "eb" / "metrics.json").read_text())["protocols"]
    from_ckpt = json.loads((tmp_path / "ec" / "metrics.json").read_text())["protocols"]
    for p in from_ckpt:  # ONNX vs PyTorch float differences may flip a near-tie, nothing more
        assert abs(from_bundle[p]["accuracy"] - from_ckpt[p]["accuracy"]) <= 1 / 24 + 1e-9, p
    direct = eval_bundle("ed", "--pipeline", "direct")
    assert direct.returncode == 0 and "pipeline direct: classifier" in direct.stdout, direct.stderr
    # auto routes by the protocol's mask: clean and r16 faces (covered < 0.25) direct, upper_half ones inpainted
    auto = eval_bundle("ea", "--pipeline", "auto")
    assert auto.returncode == 0 and "(routed: direct 48 faces, inpaint 24 faces)" in auto.stdout, auto.stdout


def test_bundle_consistency_against_a_bundle_teacher_runs_without_torch(tmp_path: Path) -> None:
    """`ofer eval BUNDLE --teacher BUNDLE` is bundle evaluation too: no torch imported."""
    import os
    import subprocess
    import sys

    from tests.test_training import ROOT

    default = str(ROOT / "sdk" / "default_bundle")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "eval",
            default,
            "--teacher",
            default,
            "--data",
            "procedural:n=12,size=64",
            "--protocols",
            "clean,mask",
            "--limit",
            "6",
            "--out",
            str(tmp_path / "c"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "NO-TORCH-OK" in r.stdout, r.stdout + r.stderr
    (report,) = json.loads((tmp_path / "c" / "consistency.json").read_text())
    assert report["protocols"]["clean"]["faces"] == 6 and set(report["protocols"]) == {"clean", "mask"}
    # the teacher is the model itself: on clean faces it agrees with itself exactly
    assert report["protocols"]["clean"]["agreement"] == 1.0 and report["protocols"]["clean"]["tv"] == 0.0
