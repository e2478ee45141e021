"""Finding faces in a video: the detector acquires faces, tracked faces are followed in the region predicted for them.

Per frame (:meth:`FaceTracker.step`):

1. every track's motion model (:class:`runtime.tracking.BoxKalman`) predicts where its face is now;
2. the full-frame detector runs every ``detect_every`` frames (default: every frame) and on every frame while no
   face is tracked;
3. each tracked face that the full-frame pass did not find (or that was not looked for) is searched for in a square
   region around its
   predicted box (``roi_scale`` face sizes wide). There the face fills a large part of the detector's input, so the
   near-range model sees it as a close-up even when a headset or a hand covers part of it; the detection nearest
   the prediction continues the track. A detector with a ``follow(region, predicted_box)`` method (the two-stage
   detector) searches there its own cheaper way: a confident candidate on the prediction skips the verifier;
4. detections are associated with tracks (Hungarian on IoU + centre distance against the predicted boxes); new
   tracks start only from full-frame detections, so a stray candidate in a search region never becomes a face.

A face the detector loses keeps its id for ``max_missed`` frames while its region is still searched, so a headset
going on in the middle of a video does not change the face's track id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .detection.base import Detection, FaceDetector, shifted
from .detection.merge import suppress_overlaps
from .errors import ConfigError
from .tracking import Tracker, centre_distance, iou_matrix

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackedFace:
    """A face found in one frame of a stream: its detection and its track id."""

    detection: Detection
    track_id: int


class FaceTracker:
    """Follows faces through a stream with one detector, running it on the whole frame only to acquire faces.

    Args:
        detector: The face detector (any :class:`~runtime.detection.base.FaceDetector`).
        detect_every: Run the full-frame detector every this many frames (and on every frame while no face is
            tracked); 1 runs it on every frame.
        max_missed: Frames a face may go unfound and keep its track id.
        roi_scale: Side of a tracked face's search region, in face sizes (the larger side of the predicted box).
        max_faces: Follow at most this many faces (largest first); ``None``: all.
        follow: Search for tracked faces in their predicted regions. ``False`` runs only the full-frame detector
            (give ``detect_every=1``) and gives ids by association, e.g. for a folder of unrelated photos.

    Example:
        >>> tracker = FaceTracker(create_detector("auto"), detect_every=10)
        >>> for frame in frames:
        ...     for face in tracker.step(frame):
        ...         print(face.track_id, face.detection.box)
    """

    def __init__(
        self,
        detector: FaceDetector,
        *,
        detect_every: int = 1,
        max_missed: int = 15,
        roi_scale: float = 2.0,
        max_faces: int | None = None,
        follow: bool = True,
    ) -> None:
        if not isinstance(detect_every, int) or detect_every < 1:
            raise ConfigError(f"detect_every must be an integer >= 1 (frames), got {detect_every!r}")
        if not roi_scale >= 1.0:
            raise ConfigError(f"roi_scale must be >= 1 (face sizes), got {roi_scale!r}")
        self.detector = detector
        self.detect_every = detect_every
        self.roi_scale = float(roi_scale)
        self.max_faces = max_faces
        self.follow = follow
        self.tracker = Tracker(max_missed=max_missed)
        self.frame_index = -1
        self.timings_ms: dict[str, float] = {}

    @property
    def removed(self) -> list[int]:
        """Track ids dropped by the last :meth:`step`."""
        return self.tracker.removed

    def search_region(self, frame: np.ndarray, box: Box) -> tuple[np.ndarray, int, int]:
        """The square search region around ``box`` clipped to the frame: ``(pixels, x0, y0)``."""
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = box
        half = self.roi_scale * max(x2 - x1, y2 - y1) / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
        xe, ye = int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half)))
        return frame[y0:ye, x0:xe], x0, y0

    def find_near(self, frame: np.ndarray, box: Box) -> Detection | None:
        """The detection in ``box``'s search region that best continues it (IoU + centre distance), or ``None``."""
        region, x0, y0 = self.search_region(frame, box)
        if region.shape[0] < 8 or region.shape[1] < 8:
            return None
        follow = getattr(self.detector, "follow", None)  # a detector's cheaper path for a tracked face
        if follow is not None:
            found = follow(region, (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0))
        else:
            found = self.detector.detect(region)
        dets = [shifted(d, x0, y0) for d in found]
        if not dets:
            return None
        boxes = np.array([d.box for d in dets], np.float64)
        iou = iou_matrix(np.array([box]), boxes)[0]
        dist = centre_distance(np.array([box]), boxes)[0]
        ok = (iou >= self.tracker.iou_threshold) | (dist <= self.tracker.max_distance)
        if not ok.any():
            return None
        cost = np.where(ok, (1.0 - iou) + dist, np.inf)
        return dets[int(np.argmin(cost))]

    def step(self, frame: np.ndarray, detections: Sequence[Detection] | None = None) -> list[TrackedFace]:
        """Find and follow the faces of the next frame (a validated BGR frame), largest first.

        ``detections``: the full-frame detector's result on this frame when it already ran (e.g. in another thread;
        only with ``detect_every=1``, where every frame gets a full-frame pass).

        ``timings_ms`` then holds ``detect`` (full-frame and region searches) and ``track`` (association) ms.

        Raises:
            ConfigError: ``detections`` given with ``detect_every`` > 1.
        """
        if detections is not None and self.detect_every != 1:
            raise ConfigError("detections computed ahead need detect_every=1 (a full-frame pass on every frame)")
        self.frame_index += 1
        t0 = time.perf_counter()
        predicted = self.tracker.predict()
        acquire = not predicted or self.frame_index % self.detect_every == 0
        if not acquire:
            dets: list[Detection] = []
        else:
            dets = list(self.detector.detect(frame) if detections is None else detections)
        found: set[int] = set()
        if dets and predicted:
            live = list(self.tracker.tracks.values())
            found = {live[r].id for r, _ in self.tracker.match([d.box for d in dets], live)}
        for tid, box in predicted.items() if self.follow else ():
            if tid not in found:
                near = self.find_near(frame, box)
                if near is not None:
                    dets.append(near)
        dets = suppress_overlaps(dets, 0.5)  # a face found by the full-frame pass and its region search
        t1 = time.perf_counter()
        ids = self.tracker.update([d.box for d in dets], new_tracks=acquire)
        faces = [TrackedFace(d, i) for d, i in zip(dets, ids) if i != -1]
        faces.sort(key=lambda f: -f.detection.width * f.detection.height)
        if self.max_faces is not None:
            faces = faces[: self.max_faces]
        self.timings_ms = {"detect": (t1 - t0) * 1e3, "track": (time.perf_counter() - t1) * 1e3}
        return faces
