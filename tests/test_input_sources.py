"""Real-world sources: unreadable folder items, variable frame rate, cameras that stop, truncated videos, digit
paths, FFmpeg noise; real files, real OpenCV/FFmpeg, real CLI subprocesses."""

from __future__ import annotations

import fractions
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.errors import InputError
from runtime.sources import SourceWarning, open_source

ROOT = Path(__file__).resolve().parents[1]
VFR_TIMES = [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 2.5, 2.6]  # seconds: bursts and gaps, as in a phone clip


def ofer_in(cwd: Path, *args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `ofer` CLI run from ``cwd`` (relative paths resolve there)."""
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli.main", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout
    )


def write_video(path: Path, n: int = 40, size: int = 64, fps: float = 10.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    rng = np.random.default_rng(0)
    for _ in range(n):
        w.write(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    w.release()
    return path


def write_vfr_mp4(path: Path, times: list[float]) -> Path:
    """An MPEG-4 video whose frames carry the given presentation times (ms time base), written with PyAV."""
    av = pytest.importorskip("av")
    tb = fractions.Fraction(1, 1000)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = tb
        for i, t in enumerate(times):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 * i, np.uint8), format="bgr24")
            f.pts, f.time_base = int(round(t * 1000)), tb
            for p in s.encode(f):
                p.time_base = tb
                c.mux(p)
        for p in s.encode():
            p.time_base = tb
            c.mux(p)
    return path


@pytest.fixture()
def bad_folder(tmp_path: Path, media_dir: Path) -> Path:
    """Two real faces around a truncated JPEG, a 0-byte file, a text page and a FIFO, all named .jpg."""
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(media_dir / "single_face.jpg", d / "a.jpg")
    (d / "b.jpg").write_bytes((media_dir / "single_face.jpg").read_bytes()[:4000])
    (d / "c.jpg").write_bytes(b"")
    (d / "d.jpg").write_text("<html><body>404 not found</body></html>")
    os.mkfifo(d / "e.jpg")
    shutil.copy(media_dir / "multi_face.jpg", d / "f.jpg")
    return d


BAD = ["b.jpg", "c.jpg", "d.jpg", "e.jpg"]


def test_cli_folder_with_unreadable_images_goes_on(bad_folder: Path, tmp_path: Path) -> None:
    res = ofer_in(tmp_path, "run", str(bad_folder), "--jsonl", "out.jsonl", "--csv", "out.csv", timeout=120)
    assert res.returncode == 0, res.stderr
    skipped = [line for line in res.stderr.splitlines() if line.startswith("ofer run: skipped ")]
    assert [line.split()[3].rstrip(":") for line in skipped] == BAD
    assert "2 frames" in res.stderr and "4 skipped" in res.stderr
    recs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    errors = {r["name"]: r["error"] for r in recs if "error" in r}
    assert sorted(errors) == BAD
    assert "empty" in errors["c.jpg"] and "not a regular file" in errors["e.jpg"]
    faces = [r for r in recs if "label" in r]
    assert {r["name"] for r in faces} == {"a.jpg", "f.jpg"} and len(faces) >= 3
    import csv

    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert sum(1 for r in rows if r["error"]) == 4 and sum(1 for r in rows if r["label"]) == len(faces)


def test_stream_over_folder_reports_unreadable_items(bad_folder: Path, tiny_bundle: Path) -> None:
    import sdk

    rec = sdk.Recognizer(tiny_bundle, detector="none")
    with rec.stream(str(bad_folder)) as results:
        got = [(r.name, r.error is None, r.image is not None, len(r.predictions)) for r in results]
        assert [n for n, *_ in got] == ["a.jpg", *BAD, "f.jpg"]
        assert [ok for _, ok, *_ in got] == [True, False, False, False, False, True]
        assert all(img == ok for _, ok, img, _ in got)
        assert [n for n, _ in results.skipped] == BAD and results.source_error is None


def test_vfr_video_times_come_from_the_container(tmp_path: Path) -> None:
    video = write_vfr_mp4(tmp_path / "vfr.mp4", VFR_TIMES)
    with open_source(str(video)) as src:
        frames = list(src)
        fps = src.fps
    times = [f.time for f in frames]
    assert times == pytest.approx(VFR_TIMES, abs=2e-3)
    nominal = [i / fps for i in range(len(frames))]  # what index / fps would have said
    assert max(abs(a - b) for a, b in zip(times, nominal)) > 0.4


def test_vfr_times_reach_the_jsonl(tmp_path: Path, tiny_bundle: Path) -> None:
    write_vfr_mp4(tmp_path / "vfr.mp4", VFR_TIMES)
    res = ofer_in(tmp_path, "run", "vfr.mp4", "--bundle", str(tiny_bundle), "--detector", "none")
    assert res.returncode == 0, res.stderr
    times = [json.loads(line)["time"] for line in res.stdout.splitlines()]
    assert times == pytest.approx(VFR_TIMES, abs=2e-3)


@pytest.mark.parametrize("retries", [0, 2])
def test_camera_that_stops_delivering_fails_the_stream(tmp_path: Path, tiny_bundle: Path, retries: int) -> None:
    """A real capture that runs dry, read as camera 97 (which does not exist, so every reopen really fails)."""
    import sdk

    cap = cv2.VideoCapture(str(write_video(tmp_path / "cam.avi", n=5)))
    src = open_source(97, camera_retries=retries, live_capture=cap)
    rec = sdk.Recognizer(tiny_bundle, detector="none")
    t0 = time.perf_counter()
    with rec.stream(src, mode="offline") as results:
        out = list(results)
        assert results.source_error is not None
    assert sum(r.error is None for r in out) == 5
    last = out[-1]
    assert last.source_failed and "camera 97 stopped delivering frames after 5 frames" in last.error
    assert (f"reopened {retries} times" in last.error) == bool(retries)
    assert time.perf_counter() - t0 >= 0.5 * retries  # it really waited and retried


def test_finished_file_is_not_a_failure(tmp_path: Path, tiny_bundle: Path) -> None:
    import sdk

    rec = sdk.Recognizer(tiny_bundle, detector="none")
    with rec.stream(str(write_video(tmp_path / "v.avi", n=6))) as results:
        out = list(results)
        assert results.source_error is None
    assert len(out) == 6 and not any(r.source_failed or r.error for r in out)


def test_truncated_video_warns_frames_read_vs_announced(tmp_path: Path, tiny_bundle: Path) -> None:
    full = write_video(tmp_path / "full.avi", n=40)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.warns(SourceWarning, match=r"decoded (\d+) of the 40 frames"):
        with open_source(str(cut)) as src:
            n = len(list(src))
    assert 0 < n < 40
    with warnings.catch_warnings():
        warnings.simplefilter("error", SourceWarning)
        with open_source(str(full)) as src:
            assert len(list(src)) == 40  # a complete file does not warn
    res = ofer_in(tmp_path, "run", "cut.avi", "--bundle", str(tiny_bundle), "--detector", "none")
    assert res.returncode == 0
    assert f"ofer run: warning: video cut.avi: decoded {n} of the 40 frames" in res.stderr
    assert "[mjpeg" not in res.stderr and "overread" not in res.stderr  # FFmpeg's own decoder noise is off


def test_existing_digit_paths_win_over_camera_indices(tmp_path: Path, media_dir: Path, tiny_bundle: Path) -> None:
    (tmp_path / "2024").mkdir()
    shutil.copy(media_dir / "single_face.jpg", tmp_path / "2024" / "x.jpg")
    shutil.copy(write_video(tmp_path / "v.avi", n=3), tmp_path / "0")
    common = ["--bundle", str(tiny_bundle), "--detector", "none"]
    folder = ofer_in(tmp_path, "run", "2024", *common)
    assert folder.returncode == 0, folder.stderr
    assert json.loads(folder.stdout.splitlines()[0])["name"] == "x.jpg"
    video = ofer_in(tmp_path, "run", "0", *common)
    assert video.returncode == 0, video.stderr
    assert len(video.stdout.splitlines()) == 3
    missing = ofer_in(tmp_path, "run", "97", *common)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert "could not open camera 97" in missing.stderr and "./97" in missing.stderr


def test_ffmpeg_messages_do_not_leak_when_opening_fails(tmp_path: Path, media_dir: Path) -> None:
    (tmp_path / "cut.mp4").write_bytes((media_dir / "single_face.mp4").read_bytes()[:3000])  # no moov atom
    (tmp_path / "text.mp4").write_text("not a video")
    for name in ("cut.mp4", "text.mp4"):
        res = ofer_in(tmp_path, "run", name)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"ofer run: error: could not open video {name}; check that it is a "
            "complete video OpenCV can decode (.mp4, .avi, .mov, .mkv, .webm, "
            ".m4v, .mpg, .mpeg, .wmv)"
        ]


def test_fifo_named_jpg_is_refused_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    res = ofer_in(tmp_path, "run", "pipe.jpg", timeout=60)
    assert res.returncode == 2 and "not a regular file" in res.stderr
    with pytest.raises(InputError, match="not a regular file"):
        import sdk

        sdk.Recognizer(detector="none").predict(str(tmp_path / "pipe.jpg"))


def _png_bomb(path: Path, side: int) -> Path:
    """A real grayscale PNG of side x side zeros: a few hundred KB on disk, side**2 bytes decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = bytes(side + 1)
    body = b"".join(comp.compress(row * 1000) for _ in range(side // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_and_pixel_limit(tmp_path: Path, media_dir: Path) -> None:
    from runtime.frames import read_image

    bomb = _png_bomb(tmp_path / "bomb.png", 20000)  # 400 million pixels
    assert bomb.stat().st_size < 2_000_000
    t0 = time.perf_counter()
    res = ofer_in(tmp_path, "run", "bomb.png", timeout=60)
    assert res.returncode == 2 and "20000 x 20000" in res.stderr and "OFER_MAX_PIXELS" in res.stderr
    assert time.perf_counter() - t0 < 30
    small = ofer_in(tmp_path, "run", str(media_dir / "single_face.jpg"), env={"OFER_MAX_PIXELS": "10000"})
    assert small.returncode == 2 and "over the limit of 10,000" in small.stderr
    with pytest.raises(InputError, match="over the limit"):
        read_image(media_dir / "single_face.jpg", max_pixels=1000)
    assert read_image(media_dir / "single_face.jpg").shape == (562, 572, 3)


def test_one_pixel_strip_with_detector_none_is_handled(tiny_bundle: Path) -> None:
    import sdk

    rec = sdk.Recognizer(tiny_bundle, detector="none")
    t0 = time.perf_counter()
    ((pred,),) = rec.predict_batch([np.full((1, 100_000, 3), 90, np.uint8)])
    assert time.perf_counter() - t0 < 5 and np.isfinite(pred.confidence)
