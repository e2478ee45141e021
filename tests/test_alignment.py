"""Rolled faces: found, cropped upright from the eye keypoints, and classified like the upright face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.bundle import load_bundle
from runtime.detection.geometry import eye_roll
from runtime.preprocess import crop_face

FACES = ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "45-m7-di-ph.jpg")
PROFILE = "45-m7-di-ph.jpg"  # a 3/4 profile: found at every roll, its eye line is not measured reliably at 90 deg
ANGLES = (-90, -60, -45, -30, 30, 45, 60, 90)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """The whole image turned ``degrees`` clockwise on screen, on a canvas large enough to keep every pixel."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)


def test_eye_roll_sign_and_degenerate_cases() -> None:
    upright = np.array([[10, 10], [30, 10]], np.float32)
    assert eye_roll(upright) == 0.0
    clockwise = np.array([[10, 10], [20, 20]], np.float32)  # the left eye lower on screen
    assert eye_roll(clockwise) == pytest.approx(np.pi / 4)
    assert eye_roll(None) == 0.0 and eye_roll(np.zeros((2, 2))) == 0.0


@pytest.mark.parametrize("degrees", [30, 60, 90])
def test_rotated_crop_of_a_rotated_image_equals_the_upright_crop(media_dir: Path, degrees: int) -> None:
    spec = load_bundle(Path(__file__).resolve().parents[1] / "sdk" / "default_bundle").input
    img = cv2.imread(str(media_dir / "single_face.jpg"))
    box = (180.0, 180.0, 382.0, 395.0)
    upright = crop_face(img, box, spec).astype(np.float32)
    turned = rotate(img, degrees)
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    m[0, 2] += turned.shape[1] / 2 - w / 2
    m[1, 2] += turned.shape[0] / 2 - h / 2
    cx, cy = m @ np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 1.0])
    bw, bh = box[2] - box[0], box[3] - box[1]
    crop = crop_face(turned, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), spec, roll=np.radians(degrees))
    assert np.abs(crop.astype(np.float32) - upright).mean() < 8  # resampling differences only
    assert (
        np.abs(
            crop_face(turned, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), spec).astype(np.float32) - upright
        ).mean()
        > 20
    )  # without the roll the crop is a different picture


@pytest.mark.parametrize("degrees", ANGLES)
def test_rolled_faces_are_found_and_classified_like_upright(media_dir: Path, degrees: int) -> None:
    import sdk

    rec = sdk.Recognizer(threads=1)
    agree = 0
    for name in FACES:
        img = cv2.imread(str(media_dir / name))
        (upright,) = rec.predict(img)
        found = rec.predict(rotate(img, degrees))
        assert len(found) == 1, f"{name} rolled {degrees} deg: {len(found)} faces"
        if name != PROFILE:
            assert found[0].roll == pytest.approx(degrees + upright.roll, abs=12)
        agree += found[0].label == upright.label
    assert agree >= len(FACES) - 1
