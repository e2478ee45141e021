"""MediaPipe's face landmark model converted to ONNX: parity with the TFLite interpreter, ROI math, real faces,
rolled faces, face-free crops, the Face Mesh region sets, and bad input."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.detection import BlazeFaceDetector, face_mesh
from runtime.detection.landmarks import (
    INPUT_SIZE,
    ROI_SCALE,
    FaceLandmarker,
    FaceRoi,
    LandmarkResult,
    roi_from_detection,
    roi_from_landmarks,
)
from runtime.detection.ssd import iou_matrix
from runtime.errors import EngineError, InputError

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "fixtures" / "face_landmark_reference.json").read_text())
GT = json.loads((ROOT / "tests" / "fixtures" / "face_boxes.json").read_text())


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(threads=1)


@pytest.fixture(scope="module")
def single(media_dir: Path, landmarker: FaceLandmarker) -> tuple[np.ndarray, object, LandmarkResult]:
    """single_face.jpg, its BlazeFace detection and the landmarks on the detection's ROI."""
    frame = cv2.imread(str(media_dir / "single_face.jpg"))
    det = BlazeFaceDetector("blazeface-full", threads=1).detect(frame)[0]
    return frame, det, landmarker.run(frame, roi_from_detection(det.box, det.keypoints))


def _iod(res: LandmarkResult) -> float:
    k = res.keypoints6()
    return float(np.linalg.norm(k[0] - k[1]))


@pytest.mark.parametrize("entry", REF["crops"], ids=[e["name"] for e in REF["crops"]])
def test_onnx_matches_tflite_reference(entry: dict, media_dir: Path, landmarker: FaceLandmarker) -> None:
    frame = cv2.imread(str(media_dir / entry["image"]))
    crop = landmarker.crop(frame, FaceRoi(*entry["roi"]))
    same_crop = hashlib.sha256(crop.tobytes()).hexdigest() == entry["crop_sha256"]
    pts, presence = landmarker.infer(crop[None])
    want = np.asarray(entry["landmarks"])
    # Same crop: conversion error (<= 1.7e-4 input px measured) + fixture rounding (5e-4). Another OpenCV may
    # interpolate the crop differently; the model must then still agree to a fraction of a pixel.
    tol, ptol = (2e-3, 1e-4) if same_crop else (0.5, 0.02)
    assert np.abs(pts[0] * INPUT_SIZE - want).max() < tol
    assert abs(presence[0] - entry["presence"]) < ptol


def test_landmarks_on_a_real_face(single: tuple) -> None:
    _, det, res = single
    gt = GT["images"]["single_face.jpg"]["faces"][0]
    assert res.points.shape == (468, 3) and res.points.dtype == np.float32
    assert res.presence > 0.99
    x1, y1, x2, y2 = gt
    inside = (
        (res.points[:, 0] >= x1)
        & (res.points[:, 0] <= x2)
        & (res.points[:, 1] >= y1 - 10)
        & (res.points[:, 1] <= y2 + 10)
    )
    assert inside.mean() > 0.97
    assert iou_matrix(np.array([res.box]), np.array([gt], float))[0, 0] > 0.8
    iod = _iod(res)
    assert np.linalg.norm(res.keypoints6()[:2] - det.keypoints[:2], axis=1).max() < 0.15 * iod
    p = res.points
    # regions where they belong on an upright face: eyes above the nose tip, mouth below, brows above the eyes
    assert p[list(face_mesh.EYES), 1].max() < p[face_mesh.NOSE_TIP, 1] < p[list(face_mesh.MOUTH), 1].min()
    assert p[list(face_mesh.BROWS), 1].mean() < p[list(face_mesh.EYES), 1].mean()
    assert p[list(face_mesh.RIGHT_EYE), 0].mean() < p[list(face_mesh.LEFT_EYE), 0].mean()
    assert p[152, 1] == pytest.approx(p[list(face_mesh.JAW), 1].max(), abs=3)  # the chin is the jaw's lowest point
    assert abs(math.degrees(res.roll)) < 10
    assert res.region("mouth").shape == (40, 3)


def test_presence_is_low_off_the_face(media_dir: Path, landmarker: FaceLandmarker) -> None:
    frame = cv2.imread(str(media_dir / "single_face.jpg"))
    background = [FaceRoi(90, 90, 160, 0.0), FaceRoi(480, 120, 150, 0.0), FaceRoi(470, 470, 160, 0.4)]
    assert all(r.presence < 0.05 for r in landmarker.run_batch(frame, background))
    mountain = cv2.imread(str(media_dir / "free-mountain-vector-01.jpg"))
    assert landmarker.run(mountain, FaceRoi(960, 540, 400, 0.0)).presence < 0.05


def test_roi_from_detection_follows_mediapipe() -> None:
    kps = np.array([[40, 50], [60, 50], [50, 60], [50, 70], [30, 55], [70, 55]], float)
    roi = roi_from_detection((30, 35, 70, 85), kps)
    assert (roi.cx, roi.cy, roi.size, roi.angle) == (50, 60, ROI_SCALE * 50, 0.0)
    turned = kps.copy()
    turned[1] = [60, 70]  # the person's left eye (image right) lower: a clockwise roll on screen, +45 degrees
    assert roi_from_detection((30, 35, 70, 85), turned).angle == pytest.approx(math.pi / 4)
    turned[1] = [20, 50]  # upside down
    assert abs(roi_from_detection((30, 35, 70, 85), turned).angle) == pytest.approx(math.pi)


def test_roi_maps_round_trip() -> None:
    roi = FaceRoi(210.5, 130.25, 97.0, 0.7)
    rng = np.random.default_rng(0)
    norm = rng.uniform(0, 1, (50, 3))
    frame_pts = roi.to_frame(norm)
    a = roi.affine()
    back = (frame_pts[:, :2] @ a[:, :2].T + a[:, 2]) / INPUT_SIZE
    np.testing.assert_allclose(back, norm[:, :2], atol=1e-9)
    np.testing.assert_allclose(frame_pts[:, 2], norm[:, 2] * roi.size)  # z scaled like x
    corners = roi.to_frame(np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(roi.size)
    assert math.atan2(*(corners[1] - corners[0])[::-1]) == pytest.approx(roi.angle)


def test_roi_from_landmarks_tracks_the_face(single: tuple, landmarker: FaceLandmarker) -> None:
    frame, _, res = single
    nxt = roi_from_landmarks(res.points)
    x1, y1, x2, y2 = res.box
    assert (nxt.cx, nxt.cy) == pytest.approx(((x1 + x2) / 2, (y1 + y2) / 2))
    assert nxt.size == pytest.approx(ROI_SCALE * max(x2 - x1, y2 - y1))
    assert nxt.angle == pytest.approx(res.roll)
    again = landmarker.run(frame, res.next_roi())  # one tracking step on the same frame: the face stays put
    drift = np.linalg.norm(again.points[:, :2] - res.points[:, :2], axis=1).mean()
    assert drift < 0.05 * _iod(res) and again.presence > 0.99


def _rotate(frame: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a frame about its centre onto a canvas large enough to hold it; returns the frame and the 2x3 map."""
    h, w = frame.shape[:2]
    a = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    nw = int(h * abs(a[0, 1]) + w * abs(a[0, 0]))
    nh = int(h * abs(a[0, 0]) + w * abs(a[0, 1]))
    a[0, 2] += nw / 2 - w / 2
    a[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(frame, a, (nw, nh)), a


@pytest.mark.parametrize("deg", [30, 60, 90])
def test_landmarks_rotate_with_the_frame(deg: float, single: tuple, landmarker: FaceLandmarker) -> None:
    frame, det, upright = single
    rotated, a = _rotate(frame, deg)
    kps = det.keypoints @ a[:2, :2].T + a[:, 2]
    box = np.asarray(det.box, float).reshape(2, 2).mean(0) @ a[:2, :2].T + a[:, 2]
    roi0 = roi_from_detection(det.box, det.keypoints)
    roi = FaceRoi(float(box[0]), float(box[1]), roi0.size, roi_from_detection(det.box, kps).angle)
    res = landmarker.run(rotated, roi)
    assert res.presence > 0.99
    turn = math.degrees(res.roll - upright.roll)
    assert (turn + 180) % 360 - 180 == pytest.approx(-deg, abs=3)  # cv2 turns anticlockwise on screen
    want = upright.points[:, :2] @ a[:2, :2].T + a[:, 2]
    assert np.linalg.norm(res.points[:, :2] - want, axis=1).mean() < 0.05 * _iod(upright)


@pytest.mark.parametrize("off_deg", [-25, 25])
def test_roll_is_measured_not_copied_from_the_roi(off_deg: float, single: tuple, landmarker: FaceLandmarker) -> None:
    """A ROI turned 25 degrees off the face: the landmarks still find the face's roll, and one tracking step
    (``next_roi``) brings the ROI back to within a degree or two."""
    frame, _, upright = single
    roi = upright.roi
    res = landmarker.run(frame, FaceRoi(roi.cx, roi.cy, roi.size, roi.angle + math.radians(off_deg)))
    first = abs(math.degrees(res.roll - upright.roll))
    assert first < 0.6 * abs(off_deg)
    assert abs(math.degrees(landmarker.run(frame, res.next_roi()).roll - upright.roll)) < 2.5


def test_batch_equals_single_runs(single: tuple, landmarker: FaceLandmarker) -> None:
    frame, det, res = single
    rois = [res.roi, res.next_roi(), FaceRoi(90, 90, 160, 0.0)]
    batch = landmarker.run_batch(frame, rois)
    assert [r.roi for r in batch] == rois
    for r, b in zip(rois, batch):
        one = landmarker.run(frame, r)
        np.testing.assert_allclose(b.points, one.points, atol=1e-3)
        assert b.presence == pytest.approx(one.presence, abs=1e-5)
    assert landmarker.run_batch(frame, []) == []


def test_region_sets_are_mediapipe_topology() -> None:
    sizes = {
        "right_eye": 16,
        "left_eye": 16,
        "right_eyebrow": 10,
        "left_eyebrow": 10,
        "mouth": 40,
        "face_oval": 36,
        "jaw": 19,
        "nose": 24,
    }
    for name, n in sizes.items():
        idx = face_mesh.REGIONS[name]
        assert len(set(idx)) == n and all(0 <= i < face_mesh.NUM_LANDMARKS for i in idx)
    assert not set(face_mesh.UPPER_FACE) & set(face_mesh.LOWER_FACE)
    assert face_mesh.JAW[0] == 323 and face_mesh.JAW[-1] == 93 and 152 in face_mesh.JAW
    assert face_mesh.keypoints6(np.zeros((468, 3))).shape == (6, 2)


def test_bad_input_gives_ofer_errors(single: tuple, landmarker: FaceLandmarker, tmp_path: Path) -> None:
    frame, det, res = single
    with pytest.raises(InputError, match="None"):
        landmarker.run(None, res.roi)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="uint8"):
        landmarker.run(frame.astype(np.float32), res.roi)
    with pytest.raises(InputError, match="FaceRoi"):
        landmarker.run(frame, (1, 2, 3, 4))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="finite"):
        FaceRoi(float("nan"), 1, 100, 0)
    with pytest.raises(InputError, match="size"):
        FaceRoi(10, 10, 0, 0)
    with pytest.raises(InputError, match=r"\(6, 2\)"):
        roi_from_detection(det.box, det.keypoints[:2])
    with pytest.raises(InputError, match="four numbers"):
        roi_from_detection((1, 2, 3), det.keypoints)
    with pytest.raises(InputError, match="too small"):
        roi_from_detection((5, 5, 5, 5), det.keypoints)
    with pytest.raises(InputError, match=r"\(468, 2\)"):
        roi_from_landmarks(res.points[:100])
    with pytest.raises(InputError, match="region"):
        res.region("ears")
    with pytest.raises(EngineError, match="not found"):
        FaceLandmarker(model_path=tmp_path / "missing.onnx")
