"""Tests of runtime.occlusion: specs, determinism, masks that match the pixels, covered fractions, errors."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import ConfigError, InputError
from runtime.occlusion import (
    CALIBRATION_MIX,
    EVAL_PROTOCOLS,
    apply_batch,
    apply_occlusion,
    list_protocols,
    parse_protocol,
    stratified_assignment,
)
from runtime.occlusion import geometry as geo

EXTRA = (
    "random_shapes",
    "random_shapes@noise",
    "r16@color",
    "upper_half@gray",
    "eyes@noise",
    "textured:hand",
    "textured:cup",
    "textured:patch",
)
ALL = tuple(EVAL_PROTOCOLS) + EXTRA


def _face(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    # values 1..254 so that black (0) and white fills always change a covered pixel
    return np.random.default_rng(seed).integers(1, 255, shape, dtype=np.uint8)


def _face_area(h: int, w: int) -> int:
    x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
    return (x1 - x0) * (y1 - y0)


@pytest.mark.parametrize("spec", ALL)
def test_spec_round_trip(spec: str) -> None:
    p = parse_protocol(spec)
    assert parse_protocol(p.spec) == p
    assert parse_protocol(p) is p


@pytest.mark.parametrize(
    "bad",
    [
        "bogus",
        "random_box",
        "random_box:0.9",
        "random_box:0.05",
        "random_box:abc",
        "r8:3",
        "upper_half@purple",
        "textured:dog",
        "textured:hand@noise",
        "clean:1",
        "clean@noise",
        "",
        42,
    ],
)
def test_bad_specs_raise_config_error_listing_valid_specs(bad: object) -> None:
    with pytest.raises(ConfigError, match="Valid specs: clean, random_box:F"):
        parse_protocol(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        [[1, 2], [3, 4]],
        np.zeros((8, 8), np.float32),
        np.zeros((8, 8, 2), np.uint8),
        np.zeros((0, 0), np.uint8),
        np.zeros((2, 8, 8, 3), np.uint8),
        np.zeros(8, np.uint8),
    ],
)
def test_bad_inputs_raise_input_error(bad: object) -> None:
    with pytest.raises(InputError):
        apply_occlusion(bad, "r8", seed=0)  # type: ignore[arg-type]


def test_bad_batch_and_seed() -> None:
    with pytest.raises(InputError):
        apply_batch(np.zeros((8, 8), np.uint8), "r8", seed=0)
    with pytest.raises(ConfigError):
        apply_occlusion(_face((16, 16)), "r8", seed=-1)


@pytest.mark.parametrize("shape", [(48, 48), (64, 64, 3), (112, 96, 3), (40, 40, 1)])
@pytest.mark.parametrize("spec", ALL)
def test_mask_matches_changed_pixels(spec: str, shape: tuple[int, ...]) -> None:
    img = _face(shape)
    before = img.copy()
    out = apply_occlusion(img, spec, seed=3)
    assert np.array_equal(img, before), "input must not be modified"
    assert out.image.shape == img.shape and out.image.dtype == np.uint8
    assert out.mask.shape == shape[:2] and out.mask.dtype == np.uint8
    assert set(np.unique(out.mask)) <= {0, 1}
    diff = out.image != img
    changed = diff.any(axis=-1) if diff.ndim == 3 else diff
    assert not changed[out.mask == 0].any(), "pixels outside the mask changed"
    if spec != "clean":
        assert out.mask.sum() > 0
        if not spec.endswith(("@noise", "@color")):  # random fills may equal a pixel by chance
            assert changed[out.mask == 1].mean() > 0.9


@pytest.mark.parametrize("spec", ALL)
def test_deterministic_by_seed(spec: str) -> None:
    img = _face((64, 64, 3))
    a, b = apply_occlusion(img, spec, seed=7), apply_occlusion(img, spec, seed=7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    fixed = ("clean", "eyes", "mouth", "upper_half", "lower_half", "upper_half@gray")
    if spec not in fixed:
        outs = [apply_occlusion(img, spec, seed=s).image for s in range(4)]
        assert any(not np.array_equal(outs[0], o) for o in outs[1:]), "seed has no effect"


@pytest.mark.parametrize("size", [48, 64, 112])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7])
def test_random_box_covers_advertised_fraction(size: int, fraction: float) -> None:
    img = _face((size, size))
    x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, size, size)
    for seed in range(10):
        mask = apply_occlusion(img, f"random_box:{fraction}", seed=seed).mask
        assert abs(mask.sum() / _face_area(size, size) - fraction) < 0.035
        assert mask[y0:y1, x0:x1].sum() == mask.sum(), "box leaves the face region"
        ys, xs = np.nonzero(mask)
        assert mask.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1), "not a single box"


@pytest.mark.parametrize("name,side48", [("r8", 8), ("r16", 16), ("r24", 24)])
@pytest.mark.parametrize("size", [48, 96])
def test_fixed_boxes_scale_with_input(name: str, side48: int, size: int) -> None:
    mask = apply_occlusion(_face((size, size)), name, seed=1).mask
    ys, xs = np.nonzero(mask)
    side = round(side48 * size / 48)
    assert np.ptp(ys) + 1 == side and np.ptp(xs) + 1 == side and mask.sum() == side * side


def test_region_protocols_cover_the_named_parts() -> None:
    h = w = 100
    img = _face((h, w, 3))
    upper = apply_occlusion(img, "upper_half", seed=0).mask
    lower = apply_occlusion(img, "lower_half", seed=0).mask
    assert upper[:50].all() and not upper[50:].any()
    assert lower[50:].all() and not lower[:50].any()
    eye_row, mouth_row = int(geo.EYE_Y * h), int(geo.MOUTH_Y * h)
    eyes = apply_occlusion(img, "eyes", seed=0).mask
    mouth = apply_occlusion(img, "mouth", seed=0).mask
    for x in (int(geo.EYE_LEFT_X * w), int(geo.EYE_RIGHT_X * w)):
        assert eyes[eye_row, x] and not mouth[eye_row, x]
    assert mouth[mouth_row, 50] and not eyes[mouth_row, 50]
    assert not eyes[int(geo.BROW_Y * h) - 3, 50], "eyes band should leave the resting brows visible"


@pytest.mark.parametrize("spec", ["random_box:0.4", "r16@noise", "random_shapes", "textured:cup", "mouth@color"])
def test_batch_matches_single_and_varies_per_item(spec: str) -> None:
    batch = _face((6, 48, 48, 3))
    res = apply_batch(batch, spec, seed=11)
    assert res.image.shape == batch.shape and res.mask.shape == (6, 48, 48)
    single = apply_occlusion(batch[0], spec, seed=11)
    assert np.array_equal(res.image[0], single.image) and np.array_equal(res.mask[0], single.mask)
    if spec != "mouth@color":
        assert len({m.tobytes() for m in res.mask}) > 1, "every item got the same occluder"


def test_gray_batch_keeps_layout() -> None:
    batch = _face((4, 32, 32))
    res = apply_batch(batch, "eyes@noise", seed=0)
    assert res.image.shape == (4, 32, 32)


def test_patch_uses_caller_sources() -> None:
    src = np.full((50, 50, 3), (10, 200, 30), np.uint8)
    out = apply_occlusion(_face((64, 64, 3)), "textured:patch", seed=2, sources=[src])
    assert (out.image[out.mask == 1] == (10, 200, 30)).all()


def test_bad_patch_sources_raise_input_error() -> None:
    with pytest.raises(InputError, match="sources"):
        apply_occlusion(_face((32, 32, 3)), "textured:patch", seed=0, sources=[np.zeros((4, 4), np.float32)])


def test_lists_and_mixes() -> None:
    forms = list_protocols()
    for key in ("clean", "random_box:F", "r8", "eyes", "upper_half", "random_shapes", "textured:hand"):
        assert key in forms
    assert abs(sum(s for _, s in CALIBRATION_MIX) - 1.0) < 1e-9
    assignment = stratified_assignment(200, CALIBRATION_MIX, seed=0)
    assert len(assignment) == 200
    for spec, share in CALIBRATION_MIX:
        assert assignment.count(parse_protocol(spec).spec) == round(200 * share)
    assert assignment != stratified_assignment(200, CALIBRATION_MIX, seed=1)
    with pytest.raises(ConfigError):
        stratified_assignment(10, [("clean", -1.0)], seed=0)


def test_occlusion_and_procedural_faces_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, runtime.occlusion, runtime.datasets.procedural; sys.exit(1 if 'torch' in sys.modules else 0)"
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
