"""From training to deployment: a real checkpoint -> `ofer export` -> a bundle the Recognizer loads and runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

import sdk
from export import export_modules
from runtime.bundle import load_bundle
from sdk.training.checkpoint import load_checkpoint
from tests.test_training import make_trainer, one_thread, tiny_config  # noqa: F401  (one_thread: autouse fixture)

ROOT = Path(__file__).resolve().parents[1]


def _export(ofer_cmd: list[str], ckpt: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ofer_cmd, "export", str(ckpt), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def _faces(n: int, size: int) -> np.ndarray:
    from runtime.datasets.procedural import ProceduralFaces

    ds = ProceduralFaces(n, size=size, seed=5, split="test")
    return np.stack([ds[i][0] for i in range(n)])


def test_classifier_checkpoint_exports_to_a_bundle_that_predicts_like_pytorch(ofer_cmd, tmp_path: Path) -> None:
    make_trainer(tiny_config("cbam", max_steps=3), tmp_path / "run").fit()
    res = _export(ofer_cmd, tmp_path / "run", tmp_path / "bundle", "--precision", "fp32")
    assert res.returncode == 0, res.stderr
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.pipelines == ("direct",) and bundle.input.size == (32, 32) and bundle.input.channels == 1
    assert bundle.provenance["method"] == "cbam"

    ck = load_checkpoint(tmp_path / "run")
    classifier = export_modules(ck)["classifier"]
    rec = sdk.Recognizer(tmp_path / "bundle", detector="none", threads=1)
    faces = _faces(4, 32)  # already face crops: detector "none" hands them to the classifier whole
    preds = rec.predict_batch(list(faces))
    from runtime.preprocess import crop_face, to_tensor

    x = to_tensor([crop_face(f, p[0].box, bundle.input) for f, p in zip(faces, preds)], bundle.input)
    with torch.no_grad():
        want = torch.softmax(classifier(torch.from_numpy(x)), 1).numpy()
    got = np.array([[p[0].scores[name] for name in bundle.labels] for p in preds])
    assert np.abs(got - want).max() < 1e-4


def test_inpainting_checkpoint_exports_an_inpaint_bundle(ofer_cmd, tmp_path: Path) -> None:
    make_trainer(tiny_config("deocclusion"), tmp_path / "run").fit()
    res = _export(ofer_cmd, tmp_path / "run", tmp_path / "bundle", "--precision", "fp32")
    assert res.returncode == 0, res.stderr
    bundle = load_bundle(tmp_path / "bundle")
    assert "inpaint" in bundle.pipelines and bundle.find_engines("inpainter")
    faces = _faces(2, 32)
    direct = sdk.Recognizer(tmp_path / "bundle", detector="none", pipeline="direct", threads=1).predict(faces[0])[0]
    inpaint = sdk.Recognizer(
        tmp_path / "bundle", detector="none", pipeline="inpaint", threads=1, occlusion="upper_half"
    ).predict(faces[0])[0]
    assert direct.pipeline == "direct" and inpaint.pipeline == "inpaint"
    assert inpaint.occlusion is not None and inpaint.occlusion > 0.3
    assert abs(sum(inpaint.scores.values()) - 1) < 1e-4
