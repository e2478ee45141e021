"""Tests of the procedural FER benchmark: determinism, disjoint splits, shapes, balance, and that AUs matter where
the occlusion geometry says they are."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.occlusion import apply_occlusion
from runtime.datasets.procedural import FER7, PROTOTYPES, ProceduralFaces, render_face, set_au, zero_aus
from runtime.datasets.procedural.seeding import generators, pcg64_states


def test_deterministic_and_pure_function_of_seed_split_index() -> None:
    a = ProceduralFaces(50, size=48, seed=3)
    img_a, lab_a = a[17]
    img_a2, _ = a[17]
    assert np.array_equal(img_a, img_a2)
    assert np.array_equal(img_a, ProceduralFaces(50, size=48, seed=3)[17][0]) and lab_a == 17 % 7
    assert not np.array_equal(img_a, ProceduralFaces(50, size=48, seed=4)[17][0])
    assert not np.array_equal(img_a, ProceduralFaces(50, size=48, seed=3, split="val")[17][0])


@pytest.mark.parametrize("size,color", [(48, True), (64, False)])
def test_a_sample_is_the_same_alone_or_in_any_batch(size: int, color: bool) -> None:
    ds = ProceduralFaces(120, size=size, seed=5, split="test", labels="fer7+contempt", color=color)
    order = np.random.default_rng(0).permutation(120)
    batch, labels = ds.render_batch(order)
    alone = [ds[int(i)] for i in order]
    assert np.array_equal(batch, np.stack([im for im, _ in alone]))
    assert labels.tolist() == [lab for _, lab in alone]
    assert np.array_equal(ds.render_batch(order[:7])[0], batch[:7])  # a smaller batch, other neighbours


def test_reading_in_order_renders_ahead_and_gives_the_same_samples() -> None:
    ds = ProceduralFaces(80, size=32, seed=4, label_noise=0.3)
    expected, labels = ds.render_batch(range(80))
    order = [*range(0, 40), 70, 3, 71, *range(72, 80), 41, -1]
    for i in order:
        img, lab = ds[i]
        img[:] = 0  # callers may write into what they get
        assert np.array_equal(ds[i][0], expected[i]) and lab == labels[i], i
    assert ds._ahead is not None and ds._ahead[0] == 72  # the last in-order run was rendered ahead


def test_batch_larger_than_one_rendering_pass_matches_single_items() -> None:
    from runtime.datasets.procedural import _CHUNK

    ds = ProceduralFaces(_CHUNK + 9, size=32, seed=1)
    images, _ = ds.render_batch(range(len(ds)))
    for i in (0, _CHUNK - 1, _CHUNK, _CHUNK + 8):
        assert np.array_equal(images[i], ds[i][0]), i


def test_batched_seeding_is_numpys_default_rng() -> None:
    rng = np.random.default_rng(0)
    words = np.concatenate([rng.integers(0, 2**32, (200, 4)), [[0, 2, 0, 0], [2**32 - 1] * 4]])
    for w, (state, inc) in zip(words.tolist(), pcg64_states(words)):
        assert np.random.default_rng(w).bit_generator.state["state"] == {"state": state, "inc": inc}, w
    idx = [0, 5, 2**31, 7, 7]
    for i, gen in zip(idx, generators((3, 2, 1), idx)):
        ref = np.random.default_rng([3, 2, 1, i])
        assert np.array_equal(gen.random(5), ref.random(5)) and gen.integers(1000) == ref.integers(1000)


def test_splits_have_disjoint_identities() -> None:
    ids = {s: {ProceduralFaces(700, split=s).identity_of(i) for i in range(700)} for s in ("train", "val", "test")}
    assert all(len(v) == 100 for v in ids.values())
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    train = ProceduralFaces(70, split="train")
    test = ProceduralFaces(70, split="test")
    assert train.sample_params(0)[0] != test.sample_params(0)[0]


@pytest.mark.parametrize("size", [32, 48, 64, 96])
@pytest.mark.parametrize("color", [True, False])
def test_shapes_and_dtypes(size: int, color: bool) -> None:
    ds = ProceduralFaces(14, size=size, color=color)
    images, labels = ds.render_batch(range(14))
    shape = (size, size, 3) if color else (size, size)
    assert images.shape == (14, *shape) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [i % 7 for i in range(14)]
    assert images.std() > 20, "images look blank"


def test_label_sets_and_balance() -> None:
    ds = ProceduralFaces(700)
    assert ds.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral") == FER7
    labels = np.array([ds.sample_params(i)[3] for i in range(700)])
    assert np.bincount(labels, minlength=7).tolist() == [100] * 7
    ds8 = ProceduralFaces(80, labels="fer7+contempt")
    assert ds8.labels[-1] == "contempt" and len(ds8.labels) == 8 and ds8[7][1] == 7


def test_label_noise_changes_labels_not_faces() -> None:
    clean = ProceduralFaces(700, size=32, label_noise=0.0)
    noisy = ProceduralFaces(700, size=32, label_noise=0.3)
    flipped = [i for i in range(700) if noisy.sample_params(i)[3] != noisy.true_label(i)]
    assert 0.22 < len(flipped) / 700 < 0.38
    i = flipped[0]
    assert np.array_equal(clean[i][0], noisy[i][0])


@pytest.mark.parametrize("kwargs", [{"split": "dev"}, {"labels": "fer8"}, {"n": 0}, {"size": 8}, {"label_noise": 1.0}])
def test_bad_config_raises(kwargs: dict) -> None:
    args = {"n": 10} | kwargs
    with pytest.raises(ConfigError):
        ProceduralFaces(**args)


def test_index_out_of_range_and_dataset_extras() -> None:
    ds = ProceduralFaces(14, size=32, label_noise=0.5)
    with pytest.raises(IndexError):
        ds[14]
    assert np.array_equal(ds[-1][0], ds[13][0])
    assert ds.targets().tolist() == [ds[i][1] for i in range(14)] == [ds.label(i) for i in range(14)]
    assert ds.subject(0) == ds.subject(6) != ds.subject(7)


def _fixed_pose(ds: ProceduralFaces, i: int):
    idn, _, scene, _ = ds.sample_params(i)
    return idn, dataclasses.replace(scene, angle=0.0, scale=1.0, shift=(0.0, 0.0), blur=0.0)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a.astype(int) - b.astype(int)) > 6).any(axis=-1)


@pytest.mark.parametrize("i", range(6))
def test_mouth_aus_change_only_the_lower_face_and_brow_aus_only_the_upper(i: int) -> None:
    size = 64
    idn, scene = _fixed_pose(ProceduralFaces(60, size=size, seed=1), i * 7)
    neutral = render_face(idn, zero_aus(), scene, size)
    smile = render_face(idn, set_au(set_au(zero_aus(), 12, 1.0), 26, 0.5), scene, size)
    brows = render_face(idn, set_au(set_au(set_au(zero_aus(), 4, 1.0), 1, 0.6), 5, 1.0), scene, size)
    d_smile, d_brows = _changed(neutral, smile), _changed(neutral, brows)
    half = size // 2
    assert d_smile[int(0.65 * size) : int(0.9 * size)].sum() > 30, "AU12/26 barely change the mouth"
    assert not d_smile[:half].any(), "mouth AUs changed the upper half"
    assert d_brows[:half].sum() > 20, "AU1/4/5 barely change brows and eyes"
    assert not d_brows[half:].any(), "brow/lid AUs changed the lower half"
    # so the occlusion protocols hide exactly these cues
    assert np.array_equal(
        apply_occlusion(neutral, "lower_half", seed=0).image, apply_occlusion(smile, "lower_half", seed=0).image
    )
    assert np.array_equal(
        apply_occlusion(neutral, "upper_half", seed=0).image, apply_occlusion(brows, "upper_half", seed=0).image
    )


def test_expressions_differ_from_neutral_of_same_identity() -> None:
    ds = ProceduralFaces(70, size=64, seed=2)
    idn, scene = _fixed_pose(ds, 6)
    neutral = render_face(idn, zero_aus(), scene, 64)
    for name in FER7[:-1]:
        state = zero_aus()
        for au in PROTOTYPES[name][0]:
            set_au(state, au, 1.0)
        assert _changed(neutral, render_face(idn, state, scene, 64)).sum() > 40, name
