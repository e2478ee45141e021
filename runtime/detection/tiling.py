"""Small faces in large frames: run a detector on overlapping tiles as well as on the whole frame.

BlazeFace sees a frame letterboxed to 128 or 192 pixels, so a face narrower than about 4 % of the frame's longer
side is lost (measured: on a 1920x1080 frame the full-range model finds a face 80 px wide at three places out of
three, 68 px at one out of three, 64 px nowhere). :class:`TiledDetector` guarantees a smallest face size in
pixels by also running the detector on square tiles small enough that such a face fills ``SMALLEST_FRACTION`` of a
tile; tiles overlap by half, so every face up to half a tile lies wholly inside one, and larger faces are found by
the whole-frame pass. The cost grows with the number of tiles: opt in with ``Recognizer(min_face=PIXELS)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .base import Detection, FaceDetector, shifted
from .merge import suppress_overlaps

SMALLEST_FRACTION = 0.045  # a face this wide relative to the detector's input side is found reliably (see above)


def tile_grid(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Square tiles ``(x0, y0, x1, y1)`` of side ``tile`` (clipped to the frame) overlapping by half a tile."""
    step = max(1, tile // 2)

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        k = math.ceil((n - tile) / step)
        return sorted({min(i * step, n - tile) for i in range(k + 1)})

    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in starts(height) for x in starts(width)]


class TiledDetector(FaceDetector):
    """Finds faces down to ``min_face`` pixels wide in frames of any size.

    Args:
        detector: The detector run on the whole frame and on each tile.
        min_face: The smallest face width to find, in frame pixels (>= 8).
        nms_iou: IoU above which detections from overlapping tiles are the same face.

    ``tiles_for(width, height)`` says how many extra detector passes a frame size costs (0 when the whole-frame
    pass already finds faces of ``min_face``).
    """

    def __init__(self, detector: FaceDetector, min_face: float, *, nms_iou: float = 0.3) -> None:
        if not isinstance(min_face, (int, float)) or not min_face >= 8:
            raise ConfigError(f"min_face must be a face width in pixels >= 8, got {min_face!r}")
        self.detector = detector
        self.min_face = float(min_face)
        self.nms_iou = nms_iou
        self.name = f"{detector.name}+tiles"
        self.tile = int(math.ceil(self.min_face / SMALLEST_FRACTION))

    @property
    def detectors(self) -> list[FaceDetector]:
        """The wrapped detector (for profiling, like :class:`~runtime.detection.merge.MergedDetector`)."""
        return [self.detector]

    def tiles_for(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The tiles searched besides the whole frame (none when the frame is small enough)."""
        if self.min_face >= SMALLEST_FRACTION * max(width, height):
            return []
        return tile_grid(width, height, self.tile)

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        dets = list(self.detector._detect(frame))
        for x0, y0, x1, y1 in self.tiles_for(w, h):
            dets.extend(shifted(d, x0, y0) for d in self.detector._detect(frame[y0:y1, x0:x1]))
        return suppress_overlaps(dets, self.nms_iou)
