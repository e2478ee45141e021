"""The verifier's procedural face-free frames and image degradations (scripts/verifier_negatives.py,
scripts/verifier_data.degrade): deterministic by seed, face-free, varied."""

from __future__ import annotations

import numpy as np

from scripts.verifier_data import degrade
from scripts.verifier_negatives import negative_samples, text_frame


def test_negative_frames_are_seeded_face_free_and_varied() -> None:
    a, b = negative_samples(6, seed=11), negative_samples(6, seed=11)
    assert [s.name for s in a] == [s.name for s in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    c = negative_samples(6, seed=12)
    assert not all(x.image.shape == y.image.shape and np.array_equal(x.image, y.image) for x, y in zip(a, c))
    for s in a:
        assert s.faces == [] and s.source == "procedural" and not s.research_only
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        assert s.image.std() > 5  # not a blank frame
    assert {s.name.split("-")[0] for s in negative_samples(40, seed=3)} == {"procedural/text", "procedural/clutter"}


def test_text_frame_draws_text_on_the_given_background() -> None:
    bg = np.full((90, 160, 3), 200, np.uint8)
    rng = np.random.default_rng(0)
    frames = [text_frame(rng, 180, 320, [bg]) for _ in range(8)]
    assert all(f.shape == (180, 320, 3) for f in frames)
    # every frame has text: a good share of pixels differs from the most common (background) value
    assert all((np.abs(f.astype(int) - np.median(f, axis=(0, 1))).sum(-1) > 60).mean() > 0.005 for f in frames)


def test_degrade_keeps_shape_and_changes_pixels_sometimes() -> None:
    img = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    rng = np.random.default_rng(2)
    out = [degrade(img, rng) for _ in range(20)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in out)
    changed = sum(not np.array_equal(o, img) for o in out)
    assert 3 <= changed <= 19  # each degradation has a probability < 1
