"""Calibration: TensorRT cache format, occluded calibration/held-out sets, sources, the ONNX Runtime reader."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from calibration.reader import ArrayCalibrationReader
from calibration.trt_cache import (
    format_trt_cache,
    hex_scale,
    parse_trt_cache,
    read_trt_cache,
    scale_hex,
    trt_version_number,
    write_trt_cache,
)
from runtime.bundle import load_bundle
from runtime.errors import ConfigError, ExportError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "version,number",
    [("8.6.1", 8601), ("8.4.0", 8400), ("10.3.0", 100300), ("10.14.1.48", 101401), ((10, 0, 1), 100001)],
)
def test_trt_version_number_matches_tensorrt_headers(version, number):
    assert trt_version_number(version) == number


def test_scale_hex_is_the_float32_bit_pattern():
    assert scale_hex(1.0) == "3f800000"
    assert scale_hex(2.0) == "40000000"
    # A line TensorRT wrote ("data_0: 4000889d", quoted in ONNX Runtime's TensorRT provider) decodes to 2.0083...
    assert hex_scale("4000889d") == pytest.approx(struct.unpack(">f", bytes.fromhex("4000889d"))[0])
    assert hex_scale("4000889d") == pytest.approx(2.00833, rel=1e-5)


def test_trt_cache_round_trip_keeps_every_scale(tmp_path):
    rng = np.random.default_rng(0)
    amax = {f"/blocks.{i}/Relu_output_0": float(v) for i, v in enumerate(rng.uniform(0.01, 40, 50))}
    amax["input"] = 1.0
    amax["onnx::Conv_380"] = 3.5  # PyTorch names tensors like this
    path = write_trt_cache(tmp_path / "c.cache", amax, trt_version="10.3.0", method="entropy")
    text = path.read_text()
    assert text.splitlines()[0] == "TRT-100300-EntropyCalibration2"
    cache = read_trt_cache(path)
    assert cache.version == 100300 and cache.algorithm == "EntropyCalibration2"
    assert set(cache.scales) == set(amax)
    for name, value in amax.items():
        assert cache.scales[name] == np.float32(np.float32(value) / np.float32(127.0)) or cache.scales[
            name
        ] == pytest.approx(value / 127.0, rel=1e-6)
        assert cache.amax()[name] == pytest.approx(value, rel=1e-6)
    minmax = parse_trt_cache(format_trt_cache(amax, trt_version="8.6.1", method="minmax"))
    assert (minmax.version, minmax.algorithm) == (8601, "MinMaxCalibration")


def test_trt_cache_refuses_bad_input():
    with pytest.raises(ConfigError, match="TRT-"):
        parse_trt_cache("not a cache\nx: 3f800000\n")
    with pytest.raises(ConfigError, match="line 2"):
        parse_trt_cache("TRT-100300-EntropyCalibration2\nx: zz\n")
    with pytest.raises(ConfigError, match="percentile"):
        format_trt_cache({"x": 1.0}, trt_version="10.3.0", method="percentile")
    with pytest.raises(ExportError, match="invalid range"):
        format_trt_cache({"x": float("nan")}, trt_version="10.3.0")
    with pytest.raises(ExportError, match="newline"):
        format_trt_cache({"a\nb": 1.0}, trt_version="10.3.0")


def test_reader_batches_and_rewinds():
    x = np.arange(10 * 4, dtype=np.float32).reshape(10, 1, 2, 2)
    reader = ArrayCalibrationReader(x, "input", batch_size=4)
    first = [reader.get_next() for _ in range(4)]
    # equal batches (ONNX Runtime's histogram calibrators fail on a short one): the last overlaps the one before
    assert [b["input"].shape[0] for b in first[:3]] == [4, 4, 4] and first[3] is None
    np.testing.assert_array_equal(first[2]["input"], x[6:10])
    reader.rewind()
    again = reader.get_next()["input"]
    np.testing.assert_array_equal(again, x[:4])
    with pytest.raises(ConfigError):
        ArrayCalibrationReader(x[:0], "input")


@pytest.fixture(scope="module")
def spec():
    return load_bundle(ROOT / "sdk" / "default_bundle").input


def test_sources_kinds_and_errors(tmp_path, media_dir):
    from calibration.sources import source_kind

    assert source_kind("procedural") == "procedural"
    assert source_kind("fer2013:/nowhere.csv") == "dataset"
    assert source_kind(str(media_dir / "single_face.mp4")) == "video"
    assert source_kind(str(media_dir / "single_face.jpg")) == "image"
    assert source_kind(str(media_dir)) == "folder"
    with pytest.raises(ConfigError, match="does not exist"):
        source_kind(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="neither an image"):
        source_kind(str(tmp_path / "notes.txt"))


def test_video_parts_are_disjoint_real_faces(spec, media_dir):
    from calibration.sources import load_faces

    video = str(media_dir / "single_face.mp4")
    calib = load_faces(video, spec, count=12, part="calib")
    held = load_faces(video, spec, count=6, part="heldout")
    assert calib.crops.shape[1:] == tuple(spec.size) and calib.crops.dtype == np.uint8
    frames = lambda faces: {int(o.split()[1].split("#")[0]) for o in faces.origin}  # noqa: E731
    assert max(frames(calib)) < min(frames(held))  # calibration never sees the held-out end of the video
    assert (calib.labels == -1).all()


def test_folder_whole_images_split_by_file(tmp_path, spec):
    import cv2

    from calibration.sources import load_faces

    rng = np.random.default_rng(0)
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"face_{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    calib = load_faces(str(tmp_path), spec, count=50, part="calib", faces="whole")
    held = load_faces(str(tmp_path), spec, count=50, part="heldout", faces="whole")
    assert len(calib.crops) + len(held.crops) == 10 and len(held.crops) == 3
    assert not {o.split("#")[0] for o in calib.origin} & {o.split("#")[0] for o in held.origin}


def test_calibration_set_is_stratified_deterministic_and_cached(tmp_path, spec, media_dir):
    pytest.importorskip("runtime.occlusion")
    from calibration.sets import build_calibration_set, build_heldout_set
    from runtime.occlusion import stratified_assignment

    video = str(media_dir / "single_face.mp4")
    mix = [("clean", 0.5), ("upper_half", 0.25), ("lower_half", 0.25)]
    a = build_calibration_set(video, spec, count=16, mix=mix, seed=3, cache_dir=tmp_path)
    assert a.inputs.shape == (16, 1, *spec.size) and a.inputs.dtype == np.float32
    assert sorted(a.protocols.tolist()) == sorted(stratified_assignment(16, mix, 3))
    assert a.describe()["per_protocol"] == {"clean": 8, "lower_half": 4, "upper_half": 4}
    cached = list(tmp_path.glob("*.npz"))
    assert [p.stem for p in cached] == [a.key]
    b = build_calibration_set(video, spec, count=16, mix=mix, seed=3, cache_dir=tmp_path)  # served from the cache
    np.testing.assert_array_equal(a.inputs, b.inputs)
    c = build_calibration_set(video, spec, count=16, mix=mix, seed=3, cache_dir=None)  # rebuilt: identical
    np.testing.assert_array_equal(a.inputs, c.inputs)
    upper = a.inputs[a.protocols == "upper_half"]
    h = spec.size[0]
    assert np.allclose(upper[:, :, : h // 4], upper.min())  # the top of the face is covered (black)
    other = build_calibration_set(video, spec, count=16, mix=mix, seed=4, cache_dir=tmp_path)
    assert other.key != a.key and len(list(tmp_path.glob("*.npz"))) == 2
    held = build_heldout_set(video, spec, count=4, protocols=["clean", "mouth"], cache_dir=tmp_path)
    assert len(held) == 8 and held.describe()["per_protocol"] == {"clean": 4, "mouth": 4}
