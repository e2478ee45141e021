"""Tests of the realistic occluders placed from keypoints: determinism, variety, where they cover, roll, exact masks,
gray/BGR, crops/frames/several faces, protocol names and errors."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import ConfigError, InputError
from runtime.occlusion import (
    REALISTIC_KINDS,
    REALISTIC_PROTOCOLS,
    apply_batch,
    apply_occlusion,
    canonical_keypoints,
    draw_occluder,
    list_protocols,
    occlude_faces,
    parse_protocol,
)
from runtime.occlusion.face_frame import CANONICAL_UV

SEEDS = range(8)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    # values 1..254: any drawn colour is very unlikely to equal the pixel it covers
    return np.random.default_rng(seed).integers(1, 255, shape, dtype=np.uint8)


def _keypoints(cx: float, cy: float, iod: float, roll_deg: float = 0.0) -> np.ndarray:
    """Frontal BlazeFace keypoints around (cx, cy) (the eye midpoint), rotated by ``roll_deg``."""
    a = np.deg2rad(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (CANONICAL_UV * iod) @ rot.T + (cx, cy)


def _covered(mask: np.ndarray, pt: np.ndarray) -> bool:
    return bool(mask[int(round(pt[1])), int(round(pt[0]))])


FRAME = (360, 640, 3)
KP = _keypoints(320, 150, 60)  # a frontal face with 60 px between the eyes, well inside the frame


@pytest.mark.parametrize("kind", REALISTIC_KINDS)
def test_same_seed_same_pixels_and_seeds_give_variants(kind: str) -> None:
    img = _image(FRAME)
    a, b = draw_occluder(img, kind, KP, seed=5), draw_occluder(img, kind, KP, seed=5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    outs = [draw_occluder(img, kind, KP, seed=s) for s in SEEDS]
    assert len({o.mask.tobytes() for o in outs}) >= 6, "seeds should change the shape"
    colours = {tuple(np.round(o.image[o.mask == 1].mean(axis=0) / 8)) for o in outs}
    assert len(colours) >= 4, "seeds should change the colours"


@pytest.mark.parametrize("kind", REALISTIC_KINDS)
@pytest.mark.parametrize("shape", [FRAME, FRAME[:2]])
def test_mask_is_exactly_the_changed_pixels(kind: str, shape: tuple[int, ...]) -> None:
    img = _image(shape)
    before = img.copy()
    for seed in range(3):
        out = draw_occluder(img, kind, KP, seed=seed)
        assert np.array_equal(img, before), "input must not be modified"
        assert out.image.shape == img.shape and out.image.dtype == np.uint8 and out.mask.dtype == np.uint8
        diff = out.image != img
        changed = diff.any(axis=-1) if diff.ndim == 3 else diff
        assert not changed[out.mask == 0].any(), "pixels outside the mask changed"
        assert changed[out.mask == 1].mean() > 0.97


def test_gray_and_bgr_give_the_same_mask() -> None:
    bgr = _image(FRAME)
    gray = bgr[..., 1].copy()
    for kind in REALISTIC_KINDS:
        a, b = draw_occluder(bgr, kind, KP, seed=2), draw_occluder(gray, kind, KP, seed=2)
        assert b.image.shape == gray.shape and np.array_equal(a.mask, b.mask)


def _face_points() -> dict[str, np.ndarray]:
    return {"eyes": KP[:2], "nose": KP[2:3], "mouth": KP[3:4]}


def test_headset_covers_both_eyes_not_the_mouth_and_is_wider_than_the_face() -> None:
    img = _image(FRAME)
    ear_span = KP[5, 0] - KP[4, 0]
    for seed in SEEDS:
        mask = draw_occluder(img, "headset", KP, seed=seed).mask
        assert all(_covered(mask, p) for p in KP[:2]) and not _covered(mask, KP[3])
        row = mask[int(KP[0, 1])]
        assert np.ptp(np.nonzero(row)[0]) > 1.2 * ear_span, "the visor must be wider than the face"
        # the brows (0.35 IOD above the eye line) are under the visor too
        assert _covered(mask, KP[0] - (0, 0.35 * 60)) and _covered(mask, KP[1] - (0, 0.35 * 60))


def test_sunglasses_cover_the_eyes_only() -> None:
    img = _image(FRAME)
    for seed in SEEDS:
        mask = draw_occluder(img, "sunglasses", KP, seed=seed).mask
        assert all(_covered(mask, p) for p in KP[:2])
        assert not _covered(mask, KP[2]) and not _covered(mask, KP[3])
        assert mask[int(KP[3, 1]) - 10 :].sum() == 0, "nothing below the nose"


def test_face_mask_covers_nose_and_mouth_not_the_eyes() -> None:
    img = _image(FRAME)
    for seed in SEEDS:
        mask = draw_occluder(img, "mask", KP, seed=seed).mask
        assert _covered(mask, KP[2]) and _covered(mask, KP[3])
        assert not any(_covered(mask, p) for p in KP[:2])
        chin = KP[3] + (0, 0.5 * 60)
        assert _covered(mask, chin)


@pytest.mark.parametrize("kind", ["cup", "phone"])
def test_cup_and_phone_cover_the_mouth_not_the_eyes(kind: str) -> None:
    img = _image(FRAME)
    masks = [draw_occluder(img, kind, KP, seed=s).mask for s in range(12)]
    assert sum(_covered(m, KP[3]) for m in masks) >= 10
    assert sum(any(_covered(m, p) for p in KP[:2]) for m in masks) <= 1


def test_hand_covers_part_of_the_face_in_each_pose() -> None:
    img = _image(FRAME)
    x0, y0, x1, y1 = 320 - 75, 150 - 50, 320 + 75, 150 + 100  # the face region around the keypoints
    regions = {"eyes": 0, "mouth": 0, "cheek": 0}
    for seed in range(16):
        mask = draw_occluder(img, "hand", KP, seed=seed).mask
        assert 0.1 < mask[y0:y1, x0:x1].mean() < 0.9
        regions["eyes"] += any(_covered(mask, p) for p in KP[:2])
        regions["mouth"] += _covered(mask, KP[3])
        regions["cheek"] += _covered(mask, KP[3] + (45, -15)) or _covered(mask, KP[3] + (-45, -15))
    assert all(v >= 2 for v in regions.values()), regions


@pytest.mark.parametrize("kind", REALISTIC_KINDS)
def test_occluder_follows_roll(kind: str) -> None:
    """Keypoints rotated by 90 degrees with the image give the same occluder rotated (IoU > 0.9)."""
    h = w = 320
    img = _image((h, w, 3))
    kp = _keypoints(160, 130, 50)
    upright = draw_occluder(img, kind, kp, seed=4).mask
    # np.rot90 (counter-clockwise) maps pixel (x, y) to (y, w - 1 - x)
    kp_rot = np.stack([kp[:, 1], w - 1 - kp[:, 0]], axis=1)
    rolled = draw_occluder(np.rot90(img).copy(), kind, kp_rot, seed=4).mask
    expected = np.rot90(upright)
    inter, union = (rolled & expected).sum(), (rolled | expected).sum()
    assert inter / union > 0.9
    if kind in ("headset", "sunglasses"):
        assert all(_covered(rolled, p) for p in kp_rot[:2]) and not _covered(rolled, kp_rot[3])


@pytest.mark.parametrize("roll", [30, 60, 90, -45, 180])
def test_headset_covers_the_eyes_at_any_roll(roll: float) -> None:
    img = _image(FRAME)
    kp = _keypoints(320, 180, 50, roll)
    for seed in range(4):
        mask = draw_occluder(img, "headset", kp, seed=seed).mask
        assert all(_covered(mask, p) for p in kp[:2]) and not _covered(mask, kp[3])


def test_faces_cut_by_the_frame_edge_and_boxes_only() -> None:
    img = _image(FRAME)
    edge = _keypoints(15, 150, 60)  # the right half of the face is outside the frame
    out = draw_occluder(img, "headset", edge, seed=0)
    assert out.mask[:, :60].any() and not out.mask[:, 200:].any()
    box = (320 - 75, 150 - 0.32 * 150 / 0.68, 320 + 75, 150 + 150)  # a BlazeFace-like box around KP
    by_box = draw_occluder(img, "headset", None, box=box, seed=1).mask
    assert all(_covered(by_box, p) for p in KP[:2]) and not _covered(by_box, KP[3])


def test_several_faces_in_one_frame() -> None:
    img = _image(FRAME)
    kp2 = _keypoints(480, 200, 40, 20)
    faces = [(None, KP), ((440, 170, 540, 270), kp2)]
    both = occlude_faces(img, faces, "headset", seed=3)
    first = draw_occluder(img, "headset", KP, seed=3)
    assert np.array_equal(both.mask | first.mask, both.mask), "face 0 uses draw_occluder's variant for the seed"
    assert all(_covered(both.mask, p) for p in (*KP[:2], *kp2[:2]))
    assert both.mask.sum() > first.mask.sum()
    diff = (both.image != img).any(axis=-1)
    assert not diff[both.mask == 0].any()
    assert np.array_equal(occlude_faces(img, faces, "headset", seed=3).image, both.image)
    assert np.array_equal(occlude_faces(img, [], "mask", seed=0).image, img)


@pytest.mark.parametrize("shape", [(48, 48), (64, 64, 3), (112, 96, 3), (40, 40, 1), (256, 256, 3)])
def test_protocol_names_on_aligned_crops(shape: tuple[int, ...]) -> None:
    img = _image(shape)
    h, w = shape[:2]
    kp = canonical_keypoints(h, w)
    for kind in REALISTIC_KINDS:
        out = apply_occlusion(img, kind, seed=3)
        same = draw_occluder(img, kind, kp, seed=3)
        assert np.array_equal(out.image, same.image) and np.array_equal(out.mask, same.mask)
        assert out.image.shape == img.shape and 0.02 < out.mask.mean() < 0.9
    up = apply_occlusion(img, "headset", seed=0).mask
    assert up[int(0.38 * h), int(0.31 * w)] and up[int(0.38 * h), int(0.69 * w)] and not up[int(0.75 * h), w // 2]
    low = apply_occlusion(img, "mask", seed=0).mask
    assert low[int(0.75 * h), w // 2] and not low[int(0.38 * h), int(0.31 * w)]


def test_batch_matches_single_items_and_takes_keypoints_per_item() -> None:
    batch = _image((5, 64, 64, 3))
    res = apply_batch(batch, "headset", seed=9)
    assert res.image.shape == batch.shape and res.mask.shape == (5, 64, 64)
    single = apply_occlusion(batch[0], "headset", seed=9)
    assert np.array_equal(res.image[0], single.image) and np.array_equal(res.mask[0], single.mask)
    assert len({m.tobytes() for m in res.mask}) > 1
    kps = np.stack([canonical_keypoints(64, 64) + (dx, 0) for dx in (-6, -3, 0, 3, 6)])
    shifted = apply_batch(batch, "sunglasses", seed=1, keypoints=kps)
    assert np.array_equal(shifted.mask[2], apply_batch(batch, "sunglasses", seed=1).mask[2])
    plain = apply_batch(batch, "sunglasses", seed=1).mask
    for i, dx in ((0, -6), (4, 6)):  # item i keeps its variant, moved with its keypoints
        moved = np.nonzero(shifted.mask[i])[1].mean() - np.nonzero(plain[i])[1].mean()
        assert abs(moved - dx) < 1.0
    with pytest.raises(InputError, match="keypoints"):
        apply_batch(batch, "headset", seed=0, keypoints=np.zeros((4, 6, 2)))


def test_specs_and_lists() -> None:
    assert REALISTIC_PROTOCOLS == REALISTIC_KINDS
    forms = list_protocols()
    for kind in REALISTIC_KINDS:
        p = parse_protocol(kind)
        assert p.kind == kind and p.spec == kind and parse_protocol(p.spec) == p and kind in forms
        for bad in (f"{kind}@noise", f"{kind}:1"):
            with pytest.raises(ConfigError, match="Valid specs"):
                parse_protocol(bad)


@pytest.mark.parametrize(
    "keypoints,match",
    [
        (np.zeros((5, 2)), "shape"),
        (np.full((6, 2), np.nan), "NaN"),
        (_keypoints(100, 100, 3), "too small"),
        (_keypoints(5000, 100, 60), "outside"),
        ("eyes", "keypoints"),
    ],
)
def test_bad_keypoints_raise_input_error(keypoints: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        draw_occluder(_image(FRAME), "headset", keypoints, seed=0)  # type: ignore[arg-type]


def test_bad_arguments_raise_ofer_errors() -> None:
    img = _image(FRAME)
    with pytest.raises(ConfigError, match="valid kinds"):
        draw_occluder(img, "scarf", KP)
    with pytest.raises(ConfigError, match="seed"):
        draw_occluder(img, "mask", KP, seed=-1)
    with pytest.raises(InputError):
        draw_occluder(img.astype(np.float32), "mask", KP)
    with pytest.raises(InputError):
        draw_occluder(img, "mask", None)
    with pytest.raises(InputError, match="box"):
        draw_occluder(img, "mask", None, box=(10, 10, 5, 20))
    with pytest.raises(InputError, match=r"faces\[1\]"):
        occlude_faces(img, [(None, KP), (None, np.zeros((6, 2)))], "cup")
    with pytest.raises(InputError, match="keypoints"):
        apply_occlusion(_image((64, 64)), "headset", seed=0, keypoints=np.zeros((3, 2)))


def test_real_faces_from_detector_keypoints(media_dir) -> None:
    """On real photos, placed from blazeface-full's keypoints: each kind covers what it should on every face."""
    import cv2

    from runtime.detection import create_detector

    det = create_detector("blazeface-full")
    for name in ("single_face.jpg", "multi_face.jpg", "45-m7-di-ph.jpg"):
        image = cv2.imread(str(media_dir / name), cv2.IMREAD_COLOR)
        found = det.detect(image)
        assert found, name
        faces = [(d.box, d.keypoints) for d in found]
        for kind, covered, free in (("headset", (0, 1), (3,)), ("sunglasses", (0, 1), (3,)), ("mask", (3,), (0, 1))):
            out = occlude_faces(image, faces, kind, seed=1)
            for _, kp in faces:
                assert all(_covered(out.mask, kp[i]) for i in covered), (name, kind)
                assert not any(_covered(out.mask, kp[i]) for i in free), (name, kind)
