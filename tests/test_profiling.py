"""Profiler: statistics against real sleeps, sub-timings via timed_run, real ONNX engines, Recognizer.profile and
`ofer profile` as a subprocess."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

from runtime.errors import InputError
from runtime.profiling import LatencyStats, profile_engine, profile_stages, random_inputs


def _sleep_ms(ms: float) -> float:
    t0 = time.perf_counter()
    time.sleep(ms / 1e3)
    return (time.perf_counter() - t0) * 1e3


class SleepEngine:
    """A real engine-like object whose work is sleeping: 1 ms upload, 3 ms compute, 1 ms download."""

    backend = "sleep"
    input_names = ("x",)
    output_names = ("y",)

    def input_shape(self, name: str) -> list:
        return ["batch", 4]

    def timed_run(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        h2d = _sleep_ms(1)
        compute = _sleep_ms(3)
        d2h = _sleep_ms(1)
        return {"y": inputs["x"].sum(axis=1)}, {"h2d": h2d, "compute": compute, "d2h": d2h}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.timed_run(inputs)[0]

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "device": "cpu"}


def test_stats_math():
    s = LatencyStats.from_samples(np.arange(1, 101, dtype=float), items=4)
    assert s.n == 100 and s.mean == pytest.approx(50.5) and s.p50 == pytest.approx(50.5)
    assert s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01) and s.min == 1 and s.max == 100
    assert s.per_s == pytest.approx(4 * 1000 / 50.5)


def test_stage_stats_against_known_sleeps():
    stages = profile_stages({"five": lambda: time.sleep(0.005), "two": lambda: time.sleep(0.002)}, iters=40, warmup=2)
    five, two = stages[0].latency, stages[1].latency
    assert 4.9 <= five.p50 <= 7.5, five
    assert two.p50 >= 1.9 and two.p50 <= 4.0, two
    assert five.p50 > two.p50 + 2
    assert five.p99 >= five.p95 >= five.p90 >= five.p50 >= five.min
    assert five.per_s == pytest.approx(1000 / five.mean)


def test_interleaved_stages_expand_self_timed_parts_in_order():
    from runtime.profiling import interleaved_stages

    calls = []
    stages = [
        ("sleep", lambda: calls.append("s") or _sleep_ms(2)),
        (None, lambda: calls.append("p") or {"occlusion": 0.5, "classify": 1.5}),
        ("total", lambda: calls.append("t")),
    ]
    res = interleaved_stages(stages, iters=4, warmup=1)
    assert [r.name for r in res] == ["sleep", "occlusion", "classify", "total"]
    assert calls == ["s", "p", "t"] * 5  # round-robin, warmup round first
    assert res[0].latency.p50 >= 2.0 and res[1].latency.p50 == 0.5 and res[2].latency.n == 4


def test_engine_sub_timings_from_timed_run():
    (b1, b4) = profile_engine("sleepy", SleepEngine(), batch_sizes=(1, 4), iters=30, warmup=2)
    assert (b1.batch, b4.batch) == (1, 4)
    assert 4.9 <= b1.latency.p50 <= 8.5
    assert 0.95 <= b1.sub_ms["h2d"].p50 <= 2.5 and 2.9 <= b1.sub_ms["compute"].p50 <= 4.8
    assert 0.95 <= b1.sub_ms["d2h"].p50 <= 2.5
    assert b4.latency.per_s == pytest.approx(4 * 1000 / b4.latency.mean)  # items/s counts the batch


def test_real_onnx_engine_random_inputs(tiny_bundle):
    from runtime.engines import OnnxRuntimeEngine

    eng = OnnxRuntimeEngine(tiny_bundle / "classifier.onnx", threads=1, providers="cpu")
    feed = random_inputs(eng, 3)
    assert feed["input"].shape == (3, 1, 64, 64) and feed["input"].dtype == np.float32
    res = profile_engine("tiny", eng, batch_sizes=(1, 8), iters=10, warmup=1)
    assert [r.batch for r in res] == [1, 8] and all(r.latency.p50 > 0 and not r.sub_ms for r in res)
    assert res[0].info["backend"] == "onnxruntime"


def test_fixed_batch_engine_reports_the_batch_it_cannot_run(tmp_path):
    import onnx

    from runtime.engines import OnnxRuntimeEngine
    from tests.conftest import make_tiny_classifier

    model = onnx.load(str(make_tiny_classifier(tmp_path / "m.onnx")))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2  # a fixed-batch build, as TRT engines often are
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    eng = OnnxRuntimeEngine(tmp_path / "fixed.onnx", threads=1, providers="cpu")
    with pytest.raises(InputError, match="fixed batch of 2"):
        random_inputs(eng, 1)
    res = profile_engine("fixed", eng, batch_sizes=(1, 2), iters=3, warmup=0)
    assert res[0].latency is None and "fixed batch" in res[0].error and res[1].latency is not None


def test_recognizer_profile_on_a_real_frame(tiny_bundle, media_dir, tmp_path):
    import cv2

    import sdk

    rec = sdk.Recognizer(tiny_bundle, threads=1)
    report = rec.profile(media_dir / "single_face.jpg", iters=5, warmup=1, batch_sizes=(1, 4))
    assert report.meta["faces_detected"] == 1
    assert [s.name for s in report.stages] == [
        "detect",
        "crop",
        "occlusion",
        "normalize",
        "classify",
        "frame check + predictions",
        "total (predict)",
    ]
    names = {(e.name.split()[0], e.batch) for e in report.engines}
    assert {("classifier", 1), ("classifier", 4), ("detector", 1)} <= names
    json.dumps(report.to_dict())
    table = report.table()
    assert "classify" in table and "p99" in table and "items/s" in table
    png = report.save_png(tmp_path / "chart.png")
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > 500 and (img < 250).any()


def test_cli_profile(tiny_bundle, media_dir, tmp_path, ofer_cmd):
    import cv2

    out_json, out_png = tmp_path / "p.json", tmp_path / "p.png"
    cmd = [
        *ofer_cmd,
        "profile",
        str(tiny_bundle),
        "--detector",
        "none",
        "--frame",
        str(media_dir / "single_face.jpg"),
        "--batch",
        "1,2",
        "--iters",
        "5",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
        str(out_json),
        "--png",
        str(out_png),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "classify" in res.stdout and "p50" in res.stdout
    data = json.loads(out_json.read_text())
    assert [e["batch"] for e in data["engines"]] == [1, 2]
    assert all(e["latency"]["p50"] > 0 and e["latency"]["n"] == 5 for e in data["engines"])
    assert {s["name"] for s in data["stages"]} >= {"detect", "crop", "normalize", "classify"}
    assert cv2.imread(str(out_png)) is not None
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr
    bad = subprocess.run(
        [*ofer_cmd, "profile", str(tiny_bundle), "--detector", "none", "--batch", "1,x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--batch" in bad.stderr and "Traceback" not in bad.stderr


def test_profile_covers_every_engine_and_stage_of_the_inpaint_pipeline_and_adds_up(tmp_path, media_dir, capsys):
    """An inpaint bundle on a real frame: the inpainter is profiled with the classifier and the detector, the
    inpaint and occlusion stages are there, the stages' means add up to predict()'s, and print() shows the table."""
    import sdk
    from tests._bundles import export_models, write_test_bundle

    bundle = write_test_bundle(tmp_path / "inpaint", export_models(tmp_path))
    rec = sdk.Recognizer(bundle, pipeline="inpaint", threads=1)
    report = rec.profile(media_dir / "single_face.jpg", iters=40, warmup=5, batch_sizes=(1, 2))
    assert report.meta["faces_detected"] == 1 and report.meta["routes"] == ["inpaint"]
    stages = [s.name for s in report.stages]
    assert stages == [
        "detect",
        "crop",
        "occlusion",
        "normalize",
        "inpaint",
        "classify",
        "frame check + predictions",
        "total (predict)",
    ]
    roles = {(e.name.split()[0], e.batch) for e in report.engines if e.latency is not None}
    assert {("classifier", 1), ("classifier", 2), ("inpainter", 1), ("inpainter", 2), ("detector", 1)} <= roles
    total, parts = report.stage_sum()
    assert abs(parts - total) <= 0.25 * total + 0.5, (parts, total)
    print(report)
    out = capsys.readouterr().out
    assert "inpainter inpainter onnx/fp32" in out and "stages add up to" in out and "p99" in out
    assert str(report) == out.rstrip("\n")
