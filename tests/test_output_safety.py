"""No output destroys the user's files: inputs are never outputs, every output is checked before the first frame,
eval and the samples follow --force, SIGTERM/Ctrl-C leave complete outputs, NaN never reaches JSON. Real CLI
subprocesses, real files, real signals."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import LABELS7, TINY_INPUT, frame_count, make_tiny_classifier
from tests.test_input_sources import ofer_in

ROOT = Path(__file__).resolve().parents[1]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _one_line_error(res: subprocess.CompletedProcess, needle: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_out_naming_the_input_is_refused(tmp_path: Path, media_dir: Path) -> None:
    img = tmp_path / "in.jpg"
    img.write_bytes((media_dir / "single_face.jpg").read_bytes())
    before = _sha(img)
    (tmp_path / "link.jpg").symlink_to(img)
    os.link(img, tmp_path / "hard.jpg")
    for args in (
        ["--out", "link.jpg"],
        ["--out", "hard.jpg"],
        ["--out", "in.jpg"],
        ["--jsonl", "link.jpg"],
        ["--csv", "./in.jpg"],
    ):
        _one_line_error(ofer_in(tmp_path, "run", "in.jpg", *args, "--force"), "is the input")
    assert _sha(img) == before
    video = tmp_path / "clip.avi"
    video.write_bytes((media_dir / "single_face.mp4").read_bytes())
    _one_line_error(ofer_in(tmp_path, "run", "clip.avi", "--out", "clip.avi", "--force"), "is the input")
    assert _sha(video) == _sha(media_dir / "single_face.mp4")


def test_folder_out_into_the_input_folder_is_refused(tmp_path: Path, media_dir: Path) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    (d / "a.jpg").write_bytes((media_dir / "single_face.jpg").read_bytes())
    before = _sha(d / "a.jpg")
    _one_line_error(ofer_in(tmp_path, "run", "photos", "--out", "photos/../photos", "--force"), "is the input")
    assert _sha(d / "a.jpg") == before
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.jpg").write_bytes(b"an earlier annotation")
    (tmp_path / "ann" / "keep.txt").write_text("not ours")
    _one_line_error(
        ofer_in(tmp_path, "run", "photos", "--out", "ann", "--jsonl", "r.jsonl"),
        "already has 1 of the annotated files (e.g. a.jpg)",
    )
    assert not (tmp_path / "r.jsonl").exists()  # refused before the first frame
    assert ofer_in(tmp_path, "run", "photos", "--out", "ann", "--force").returncode == 0
    assert cv2.imread(str(tmp_path / "ann" / "a.jpg")) is not None and (tmp_path / "ann" / "keep.txt").exists()


def test_two_outputs_naming_one_file_are_refused(tmp_path: Path, media_dir: Path) -> None:
    img = str(media_dir / "single_face.jpg")
    _one_line_error(ofer_in(tmp_path, "run", img, "--jsonl", "x.txt", "--csv", "x.txt"), "name the same file")
    (tmp_path / "y.txt").symlink_to(tmp_path / "x.txt")
    _one_line_error(ofer_in(tmp_path, "run", img, "--jsonl", "x.txt", "--csv", "y.txt"), "name the same file")
    assert not (tmp_path / "x.txt").exists()


CHECKED_EARLY = [  # (arguments, what the one-line error says); `afile` is a file, so afile/... cannot be created
    (["run", "{video}", "--jsonl", "r.jsonl", "--out", "r.mkv"], "use one of the extensions .avi, .mp4"),
    (["run", "{image}", "--jsonl", "r.jsonl", "--out", "r.txt"], "use an image extension"),
    (["run", "{video}", "--jsonl", "afile/r.jsonl"], "is a file, not a folder"),
    (["run", "{video}", "--jsonl", "r.jsonl", "--csv", "afile/sub/r.csv"], "is a file, not a folder"),
    (["run", "{video}", "--jsonl", "r.jsonl", "--out", "afile/r.avi"], "is a file, not a folder"),
    (["run", "{video}", "--jsonl", "r.jsonl", "--csv", "/proc/ofer/r.csv"], "cannot write in /proc"),
    (["profile", "--json", "afile/p.json", "--iters", "1"], "is a file, not a folder"),
    (["profile", "--json", "r.jsonl", "--png", "p.jpg", "--iters", "1"], "use one of the extensions .png"),
    (["profile", "--json", "p.png", "--png", "./p.png", "--iters", "1"], "name the same file"),
    (["export", "{bundle}", "--out", "afile/b"], "is a file, not a folder"),
    (["export", "{bundle}", "--out", "{bundle}", "--force"], "is the input"),
    (["eval", "{bundle}", "--data", "procedural:n=8,size=64", "--out", "afile/e"], "is a file, not a folder"),
    (["train", "cbam", "--data", "procedural:n=8,size=32", "--out", "afile/t"], "is a file, not a folder"),
    (["train", "cbam", "--data", "procedural:n=8,size=32", "--out", "/proc/ofer-t"], "cannot write in /proc"),
]


@pytest.mark.parametrize("args, message", CHECKED_EARLY, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(CHECKED_EARLY)])
def test_outputs_are_checked_before_any_work(
    tmp_path: Path, media_dir: Path, tiny_bundle: Path, args: list[str], message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("a file, not a folder")
    fill = {
        "video": str(media_dir / "single_face.mp4"),
        "image": str(media_dir / "single_face.jpg"),
        "bundle": str(tiny_bundle),
    }
    res = ofer_in(work, *(a.format(**fill) for a in args), timeout=120)
    _one_line_error(res, message)
    assert sorted(p.name for p in work.iterdir()) == ["afile"]  # nothing was written, not even a partial JSONL


def test_eval_out_follows_the_force_rule(tmp_path: Path, tiny_bundle: Path) -> None:
    common = [str(tiny_bundle), "--data", "procedural:n=12,size=64", "--limit", "12"]
    first = ofer_in(tmp_path, "eval", *common, "--protocols", "clean,upper_half", "--out", "ev")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "ev" / "confusion_upper_half.png").is_file()
    metrics = _sha(tmp_path / "ev" / "metrics.json")
    again = ofer_in(tmp_path, "eval", *common, "--protocols", "clean", "--out", "ev")
    _one_line_error(again, "not empty; pass --force")
    assert _sha(tmp_path / "ev" / "metrics.json") == metrics
    forced = ofer_in(tmp_path, "eval", *common, "--protocols", "clean", "--out", "ev", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == [
        "confusion_clean.png",
        "metrics.json",
        "metrics.md",
        "summary.png",
    ]  # no stale PNG
    assert list(json.loads((tmp_path / "ev" / "metrics.json").read_text())["protocols"]) == ["clean"]


def _start_run(tmp_path: Path, media_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sdk.cli.main",
            "run",
            str(media_dir / "WolfgangLanger_Pexels.mp4"),
            "--out",
            "v.avi",
            "--jsonl",
            "r.jsonl",
            "--csv",
            "r.csv",
            "--threads",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_frames(proc: subprocess.Popen, video: Path, timeout: float = 120) -> None:
    t0 = time.perf_counter()
    while not (video.exists() and video.stat().st_size > 50_000):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.perf_counter() - t0 < timeout
        time.sleep(0.1)


def test_sigterm_leaves_complete_outputs(tmp_path: Path, media_dir: Path) -> None:
    proc = _start_run(tmp_path, media_dir)
    _wait_for_frames(proc, tmp_path / "v.avi")
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    n_video = frame_count(tmp_path / "v.avi")  # the container was finalised: OpenCV decodes it
    assert 0 < n_video < 472
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is complete JSON
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == len(records) > 0  # every buffered row reached both files
    assert max(r["frame"] for r in records) < n_video + 1


def test_second_interrupt_exits_130_at_once(tmp_path: Path, media_dir: Path) -> None:
    proc = _start_run(tmp_path, media_dir)
    _wait_for_frames(proc, tmp_path / "v.avi")
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


@pytest.fixture()
def nan_bundle(tmp_path: Path) -> Path:
    """A real ONNX classifier whose dense layer weights are NaN, written as a valid bundle."""
    import onnx
    from onnx import numpy_helper

    from runtime.bundle import write_bundle

    path = make_tiny_classifier(tmp_path / "nan.onnx")
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "w_fc":
            init.CopyFrom(
                numpy_helper.from_array(np.full(numpy_helper.to_array(init).shape, np.nan, np.float32), "w_fc")
            )
    onnx.save(model, str(path))
    write_bundle(
        tmp_path / "nanb",
        labels=LABELS7,
        input_spec=TINY_INPUT,
        engines=[
            {
                "name": "classifier",
                "path": path,
                "file": "classifier.onnx",
                "format": "onnx",
                "precision": "fp32",
                "role": "classifier",
            }
        ],
        provenance={"method": "test"},
    )
    return tmp_path / "nanb"


def test_nan_outputs_never_become_labels_or_json(nan_bundle: Path, media_dir: Path, tmp_path: Path) -> None:
    import sdk
    from runtime.errors import EngineError

    rec = sdk.Recognizer(nan_bundle, detector="none")
    with pytest.raises(EngineError, match="NaN or infinite outputs for 1 of 1 faces"):
        rec.predict(np.full((64, 64, 3), 100, np.uint8))
    res = ofer_in(
        tmp_path,
        "run",
        str(media_dir / "single_face.jpg"),
        "--bundle",
        str(nan_bundle),
        "--detector",
        "none",
        "--jsonl",
        "r.jsonl",
    )
    _one_line_error(res, "NaN or infinite")
    text = (tmp_path / "r.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text


def _sample(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [sys.executable, str(ROOT / "samples" / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
        env=env,
    )


def test_samples_follow_the_output_rules(tmp_path: Path, media_dir: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((media_dir / "single_face.mp4").read_bytes())
    before = _sha(clip)
    res = _sample("annotate_video.py", "clip.mp4", "--out", "a.mp4", "--jsonl", "clip.mp4", "--force", cwd=tmp_path)
    _one_line_error(res, "is the input")
    assert _sha(clip) == before
    (tmp_path / "demo.avi").write_bytes(b"an earlier result")
    res = _sample("webcam_demo.py", "clip.mp4", "--headless", "--out", "demo.avi", "--limit", "2", cwd=tmp_path)
    _one_line_error(res, "already exists")
    assert (tmp_path / "demo.avi").read_bytes() == b"an earlier result"
    res = _sample("profile_engines.py", "--json", "p.json", "--png", "p.json", cwd=tmp_path)
    assert res.returncode != 0 and not (tmp_path / "p.json").exists()


def _pred(box, tid):
    from runtime.prediction import Prediction

    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    scores = dict(zip(labels, np.random.default_rng(tid).dirichlet(np.ones(7))))
    label = max(scores, key=scores.get)
    return Prediction(
        box=box,
        label=label,
        confidence=float(scores[label]),
        scores={k: float(v) for k, v in scores.items()},
        pipeline="inpaint",
        occlusion=0.4,
        track_id=tid,
    )


@pytest.mark.parametrize(
    "boxes",
    [
        [(250, 120, 390, 280)],
        [(0, 300, 110, 470), (540, 0, 640, 110)],  # at the frame edges
        [(20, 40, 120, 150), (130, 40, 230, 150), (240, 40, 340, 150), (350, 300, 450, 410), (560, 380, 640, 480)],
    ],
)
def test_annotation_panels_stay_in_frame_and_apart(boxes):
    """Each face's panel (id, label, pipeline, occlusion, bars) is drawn inside the frame, clear of the others."""
    from runtime import draw

    placed = []
    real_place = draw._place
    draw._place = lambda *a: placed.append(real_place(*a)) or placed[-1]
    try:
        frame = np.full((480, 640, 3), 200, np.uint8)
        out = draw.draw_predictions(frame, [_pred(b, i + 1) for i, b in enumerate(boxes)])
    finally:
        draw._place = real_place
    assert len(placed) == len(boxes) and out.shape == frame.shape
    for i, a in enumerate(placed):
        assert 0 <= a[0] < a[2] <= 640 and 0 <= a[1] < a[3] <= 480
        assert (out[a[1] : a[3], a[0] : a[2]] != 200).any()  # something was drawn there
        for b in placed[i + 1 :]:
            assert draw._overlap(a, b) == 0, (a, b)


def test_mp4_is_written_in_a_codec_browsers_play_when_available(tmp_path):
    """.mp4 comes out as H.264 ('avc1') when PyAV or OpenCV can encode it (else mp4v), and it decodes."""
    import cv2

    from runtime.video_writer import VideoWriter

    w = VideoWriter(tmp_path / "a.mp4", 25)
    for i in range(6):
        w.write(np.full((61, 81, 3), 40 * i, np.uint8))
    w.close()
    try:
        import av  # noqa: F401

        has_h264 = "libx264" in av.codecs_available or "h264" in av.codecs_available
    except ImportError:
        has_h264 = False
    assert w.codec == ("avc1" if has_h264 else w.codec) and w.codec in ("avc1", "mp4v")
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] in ((61, 81), (62, 82)) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()
    w = VideoWriter(tmp_path / "b.avi", 25)
    w.write(np.zeros((32, 32, 3), np.uint8))
    w.close()
    assert w.codec == "MJPG"
