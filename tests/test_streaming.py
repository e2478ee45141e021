"""Streaming: ordering, realtime drop accounting, shutdown (break, exception, close, Ctrl-C), tracking and smoothing
through Recognizer.stream on real video frames, bounded memory, and `ofer run --mode/--smooth/--csv`."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.streaming import Packet, ParallelStage, Stream


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ofer-")]


def _frames(n: int | None, size: int = 32):
    """Distinct small frames (pixel value encodes the index), finite or endless."""
    counter = itertools.count() if n is None else range(n)
    for i in counter:
        yield np.full((size, size, 3), i % 256, np.uint8)


def _mean_stage(packet: Packet) -> None:
    packet.data = float(packet.frame.image.mean())


def _label_stage(packet: Packet) -> None:
    packet.predictions = [packet.data]


@pytest.fixture(autouse=True)
def _no_threads_left():
    yield
    deadline = time.monotonic() + 2
    while _stream_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _stream_threads() == [], "a stream left threads running"


# ------------------------------------------------------------------------------------------ the threaded core
def test_offline_keeps_every_frame_in_order():
    with Stream(_frames(300), [_mean_stage, _label_stage], mode="offline", queue_size=2) as s:
        results = list(s)
    assert [r.frame_index for r in results] == list(range(300))
    assert [r.predictions[0] for r in results] == [float(i % 256) for i in range(300)]
    assert s.dropped == 0 and s.produced == 300 and all(r.dropped_so_far == 0 for r in results)
    assert all(r.latency_ms >= 0 for r in results)


def test_realtime_drops_stale_frames_for_a_slow_consumer():
    s = Stream(_frames(400), [_mean_stage, _label_stage], mode="realtime", pace_fps=1000)
    seen, backlog = [], []
    for r in s:
        seen.append(r)
        backlog.append(s.backlog())
        time.sleep(0.01)  # the consumer is ~10x slower than capture
    assert s.produced == 400
    assert s.dropped + len(seen) == s.produced
    assert s.dropped > 200
    assert max(backlog) <= 3  # one newest item per queue at most: no backlog
    idx = [r.frame_index for r in seen]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert [r.dropped_so_far for r in seen] == sorted(r.dropped_so_far for r in seen)
    # results stay fresh: a result is never older than a few consumer periods
    assert np.median([r.latency_ms for r in seen]) < 50


def test_break_stops_all_threads():
    for r in Stream(_frames(None), [_mean_stage], mode="offline"):
        if r.frame_index == 5:
            break
    assert _stream_threads() == []


def test_close_while_stages_are_blocked_on_full_queues():
    s = Stream(_frames(None), [_mean_stage, _label_stage], mode="offline", queue_size=1)
    next(s)
    time.sleep(0.1)  # every stage now waits on a full queue
    assert s.backlog() >= 2
    s.close()
    assert _stream_threads() == []
    with pytest.raises(StopIteration):
        next(s)


def test_stage_exception_is_reraised_in_the_consumer():
    def fails_on_7(packet: Packet) -> None:
        if packet.frame.index == 7:
            raise ValueError("cannot handle frame 7")

    got = []
    with pytest.raises(ValueError, match="cannot handle frame 7"):
        for r in Stream(_frames(None), [fails_on_7, _label_stage], mode="offline"):
            got.append(r.frame_index)
    assert got == list(range(7))


def test_source_exception_is_reraised_in_the_consumer():
    def broken_camera():
        yield from _frames(3)
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="camera unplugged"):
        with Stream(broken_camera(), [_mean_stage], mode="realtime") as s:
            for _ in s:
                pass


def test_keyboard_interrupt_stops_the_stream():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT is delivered to the main thread only")
    s = Stream(_frames(None), [_mean_stage], mode="realtime", pace_fps=2)  # the consumer waits on a slow source
    next(s)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in s:
            pass
    timer.join()
    assert _stream_threads() == []


def test_bad_options():
    with pytest.raises(ConfigError, match="stream mode"):
        Stream(_frames(3), [_mean_stage], mode="fast")
    with pytest.raises(ConfigError, match="queue_size"):
        Stream(_frames(3), [_mean_stage], queue_size=0)
    with pytest.raises(ConfigError, match="at least one worker"):
        Stream(_frames(3), [ParallelStage(())])


def _uneven_worker(name: str, seen: list) -> object:
    """A stage worker that takes a frame-dependent time (so workers finish out of order) and records its name."""

    def work(packet: Packet) -> None:
        time.sleep(0.004 * ((packet.frame.index * 7) % 3))
        seen.append(name)
        _mean_stage(packet)

    return work


@pytest.mark.parametrize("mode", ["offline", "realtime"])
def test_parallel_stage_keeps_frame_order(mode: str):
    seen: list[str] = []
    stage = ParallelStage((_uneven_worker("a", seen), _uneven_worker("b", seen), _uneven_worker("c", seen)))
    pace = 400 if mode == "realtime" else None  # a camera faster than one worker, slower than three
    with Stream(_frames(120), [stage, _label_stage], mode=mode, queue_size=2, pace_fps=pace) as s:
        results = list(s)
    idx = [r.frame_index for r in results]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)  # in order, none twice
    assert [r.predictions[0] for r in results] == [float(i % 256) for i in idx]
    if mode == "offline":
        assert idx == list(range(120)) and s.dropped == 0
    assert len(set(seen)) >= 2  # the work really was shared
    assert _stream_threads() == []


def test_parallel_stage_failure_and_break_stop_every_worker():
    def fails_on_9(packet: Packet) -> None:
        if packet.frame.index == 9:
            raise ValueError("cannot handle frame 9")

    got = []
    with pytest.raises(ValueError, match="cannot handle frame 9"):
        for r in Stream(_frames(None), [ParallelStage((fails_on_9, fails_on_9)), _label_stage], mode="offline"):
            got.append(r.frame_index)
    assert got == list(range(len(got))) and len(got) <= 9
    for r in Stream(_frames(None), [ParallelStage((_mean_stage, _mean_stage))], mode="offline"):
        if r.frame_index == 5:
            break
    assert _stream_threads() == []


# ------------------------------------------------------------------------------- Recognizer.stream, real video
def _video_frames(media_dir: Path, n: int, size=(320, 180)) -> list[np.ndarray]:
    from benchmarks._common import read_frames

    frames = read_frames(media_dir / "single_face.mp4", n, size)
    assert len(frames) == n
    return frames


def test_roi_stream_tracks_and_smooths_like_predict(tiny_bundle, media_dir):
    import sdk

    frames = _video_frames(media_dir, 24)
    rec = sdk.Recognizer(tiny_bundle, detector="roi", roi=(100, 20, 220, 170), threads=1)
    raw = [np.array(list(rec.predict(f)[0].scores.values())) for f in frames]
    assert np.ptp(np.array(raw), axis=0).max() > 1e-4  # the real frames do change the scores
    with rec.stream(frames, mode="offline", smooth="ema:0.3") as s:
        results = list(s)
    assert [r.frame_index for r in results] == list(range(24))
    assert {p.track_id for r in results for p in r.predictions} == {1}
    expected = raw[0]
    for k, r in enumerate(results):
        if k:
            expected = 0.3 * raw[k] + 0.7 * expected
        got = np.array([r.predictions[0].scores[n] for n in rec.labels])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert r.predictions[0].label == rec.labels[int(np.argmax(expected))]


def test_detector_gap_keeps_the_track(tiny_bundle, media_dir):
    import sdk

    frames = _video_frames(media_dir, 20, size=(640, 360))
    for k in range(8, 12):  # the face disappears for 4 frames (e.g. a headset going on)
        frames[k] = np.full_like(frames[k], 128)
    rec = sdk.Recognizer(tiny_bundle, threads=1)  # the real default face detector
    results = list(rec.stream(frames, mode="offline", max_missed=5))
    faces = [len(r.predictions) for r in results]
    assert faces[8:12] == [0, 0, 0, 0] and all(n >= 1 for n in faces[:8] + faces[12:])
    ids = {r.predictions[0].track_id for r in results if r.predictions}
    assert ids == {1}


def test_parallel_detection_gives_the_same_results(tiny_bundle, media_dir):
    """Two detector threads give frame for frame what one gives (boxes, labels, track ids), through a face that
    vanishes and comes back; the extra detector is released when the stream ends."""
    import sdk

    frames = _video_frames(media_dir, 40, size=(640, 360))
    for k in range(15, 19):
        frames[k] = np.full_like(frames[k], 128)
    rec = sdk.Recognizer(tiny_bundle, threads=1)
    runs = {}
    for workers in (1, 2):
        with rec.stream(frames, mode="offline", detect_workers=workers, max_missed=5) as s:
            assert len([t for t in _stream_threads() if t.startswith("ofer-stage1")]) == workers
            runs[workers] = [[(p.box, p.label, p.track_id) for p in r.predictions] for r in s]
    assert runs[1] == runs[2]
    assert all(runs[2][k] == [] for k in range(15, 19)) and all(runs[2][k] for k in range(15))
    assert {t for faces in runs[2] for _, _, t in faces} == {1}
    with pytest.raises(ConfigError, match="detect_workers"):
        rec.stream(frames, detect_workers=0)
    with pytest.raises(ConfigError, match="CPU cores"):  # each worker builds a detector: refuse before building
        rec.stream(frames, detect_workers=(os.cpu_count() or 1) + 1)


def test_closing_the_recognizer_mid_stream_is_one_engine_error(tiny_bundle, media_dir):
    """``rec.close()`` while a stream with two detector threads runs: runs under way finish, the next one raises
    ofer's EngineError in the consumer (never an AttributeError from an engine cleared mid-run), no thread is left."""
    import sdk
    from runtime.errors import EngineError

    frames = _video_frames(media_dir, 10, size=(640, 360))
    for _ in range(6):  # the close lands at a different point of a run each time
        rec = sdk.Recognizer(tiny_bundle, threads=1)
        with pytest.raises(EngineError, match="was closed"):
            with rec.stream(itertools.cycle(frames), mode="offline", detect_workers=2) as s:
                for r in s:
                    if r.frame_index == 3:
                        rec.close()


def test_long_stream_memory_stays_flat(tiny_bundle):
    import sdk

    rec = sdk.Recognizer(tiny_bundle, detector="none", threads=1)
    s = rec.stream(_frames(1500, size=48), mode="offline", smooth="window:5")
    tracemalloc.start()
    try:
        for r in s:
            if r.frame_index == 300:
                base = tracemalloc.take_snapshot()
            assert len(s.tracker) <= 1 and len(s.smoother) <= 1
        grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(base, "filename"))
    finally:
        tracemalloc.stop()
    assert s.processed == 1500
    assert grown < 512 * 1024, f"memory grew by {grown} bytes over 1200 frames"


def test_stream_rejects_bad_smoothing(tiny_bundle):
    import sdk

    rec = sdk.Recognizer(tiny_bundle, detector="none")
    with pytest.raises(ConfigError, match="smoothing"):
        rec.stream(_frames(2), smooth="median:3")


# ---------------------------------------------------------------------------------------------------- CLI
def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def test_cli_run_mode_smooth_csv(tiny_bundle, media_dir, tmp_path, ofer_cmd):
    frames = _video_frames(media_dir, 12)
    video = _write_video(tmp_path / "clip.avi", frames)
    jsonl, table = tmp_path / "out.jsonl", tmp_path / "series.csv"
    cmd = [
        *ofer_cmd,
        "run",
        str(video),
        "--bundle",
        str(tiny_bundle),
        "--detector",
        "roi",
        "--roi",
        "100,20,220,170",
        "--mode",
        "offline",
        "--smooth",
        "ema:0.5",
        "--csv",
        str(table),
        "--jsonl",
        str(jsonl),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert {r["track_id"] for r in records} == {1}
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 12 and rows[0].keys() >= {
        "frame",
        "time",
        "track_id",
        "label",
        "pipeline",
        "occlusion",
        "angry",
        "neutral",
    }
    for row, rec in zip(rows, records):
        assert int(row["frame"]) == rec["frame"] and row["label"] == rec["label"]
        assert row["pipeline"] == rec["pipeline"] and int(row["track_id"]) == rec["track_id"]
        assert float(row["happy"]) == pytest.approx(rec["scores"]["happy"], abs=1e-5)
    assert "12 frames" in res.stderr
    bad = subprocess.run(
        [*ofer_cmd, "run", str(video), "--bundle", str(tiny_bundle), "--detector", "none", "--smooth", "avg"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "smoothing" in bad.stderr and "Traceback" not in bad.stderr
    for flag, value, words in (("--detect-workers", "0", "detect_workers"), ("--detect-every", "0", "detect_every")):
        bad = subprocess.run(
            [*ofer_cmd, "run", str(video), "--bundle", str(tiny_bundle), flag, value],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_cli_run_realtime_reports_drops(tiny_bundle, media_dir, tmp_path, ofer_cmd):
    video = _write_video(tmp_path / "clip.avi", _video_frames(media_dir, 30))
    cmd = [
        *ofer_cmd,
        "run",
        str(video),
        "--bundle",
        str(tiny_bundle),
        "--detector",
        "none",
        "--mode",
        "realtime",
        "--jsonl",
        str(tmp_path / "o.jsonl"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    n = len((tmp_path / "o.jsonl").read_text().splitlines())
    assert f"{n} frames" in res.stderr and "dropped" in res.stderr
    dropped = int(res.stderr.split("dropped")[0].split()[-1])
    assert n + dropped == 30
