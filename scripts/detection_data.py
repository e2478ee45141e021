"""Real images with face ground truth for training and measuring the two-stage detector: loading (tuning or
reporting split), occluders placed from each face's keypoints, whole-image rotation, and the matching rules.

Used by ``scripts/train_verifier.py`` and ``benchmarks/detector_occlusion.py``, so both see the same data.
The images come from ``scripts/real_faces.py`` (registry packages, fetched into a cache, never committed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.detection.ssd import iou_matrix  # noqa: E402

from runtime.errors import InputError  # noqa: E402
from runtime.occlusion.placed import keypoints_from_box  # noqa: E402
from runtime.occlusion.realistic import REALISTIC_KINDS, draw_occluder  # noqa: E402

BLOCK = "upper_half"  # the benchmark's original headset-like block over the upper half of the box
OCCLUDER_KINDS: tuple[str, ...] = (*REALISTIC_KINDS, BLOCK)


@dataclass
class Face:
    """One ground-truth face: box ``(x1, y1, x2, y2)`` px, BlazeFace-order keypoints ``(6, 2)`` px or None."""

    box: np.ndarray
    keypoints: np.ndarray | None
    person: str


@dataclass
class Sample:
    """One real image and its faces (``faces == []``: a face-free image)."""

    name: str
    source: str
    image: np.ndarray
    faces: list[Face]
    ignore: list[np.ndarray] = field(default_factory=list)
    split: str = "tune"
    research_only: bool = False
    licence: str = ""

    @property
    def people(self) -> set[str]:
        """The people in the image (or the image's own name for face-free images)."""
        return {f.person for f in self.faces} or {f"noface:{self.name}"}


def load_samples(split: str | None, *, shippable_only: bool = False) -> list[Sample]:
    """Real images of one split (``"tune"``, ``"report"`` or ``None``: both) from ``scripts/real_faces.py``.

    Args:
        split: Which part of the person split.
        shippable_only: Drop research-only media (their faces must never train shipped weights).
    """
    from scripts.real_faces import load_real_images

    return to_samples(load_real_images(split=split, include_research_only=not shippable_only))


def to_samples(images: Sequence[object]) -> list[Sample]:
    """``scripts.real_faces.RealImage`` objects as :class:`Sample` (numpy boxes, ``(6, 2)`` keypoints or None)."""
    out = []
    for im in images:
        faces = [
            Face(
                np.asarray(f.box, np.float64),
                None if f.keypoints is None else np.asarray(f.keypoints, np.float64).reshape(6, 2),
                str(f.person),
            )
            for f in im.faces
        ]
        out.append(
            Sample(
                im.name,
                im.source,
                im.image,
                faces,
                [np.asarray(b, np.float64) for b in im.ignore],
                im.split,
                bool(im.research_only),
                str(im.licence),
            )
        )
    return out


def fill_keypoints(samples: Sequence[Sample]) -> None:
    """Give every face without keypoints the six keypoints of the best-overlapping BlazeFace candidate on the
    clean image (IoU >= 0.3), else the occluder library's layout for the box. In place."""
    from runtime.detection.two_stage import CandidateDetector

    det = None
    for s in samples:
        missing = [f for f in s.faces if f.keypoints is None]
        if not missing:
            continue
        det = det or CandidateDetector(score_threshold=0.1, threads=1)
        cands = det.detect(s.image)
        boxes = np.array([c.box for c in cands]).reshape(-1, 4)
        for f in missing:
            ious = iou_matrix(f.box[None], boxes)[0] if len(boxes) else np.zeros(0)
            if len(ious) and ious.max() >= 0.3:
                f.keypoints = cands[int(ious.argmax())].keypoints.astype(np.float64)
            else:
                f.keypoints = keypoints_from_box(f.box)


def cover_upper_half(
    frame: np.ndarray, boxes: Sequence[Sequence[float]], *, widen: float = 0.12, cover: float = 0.5
) -> np.ndarray:
    """Draw a headset-like block (dark rounded rectangle with a strap) over the top ``cover`` of each face box.

    The block is ``widen`` wider than the face on each side and starts a little above the box.
    """
    out = frame.copy()
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        bx1, bx2 = x1 - widen * w, x2 + widen * w
        by1, by2 = y1 - 0.1 * h, y1 + cover * h
        r = int(max(2, 0.18 * min(bx2 - bx1, by2 - by1)))
        pts = [int(round(v)) for v in (bx1, by1, bx2, by2)]
        strap_y = int(round((by1 + by2) / 2))
        cv2.line(out, (int(bx1 - 0.3 * w), strap_y), (int(bx2 + 0.3 * w), strap_y), (45, 45, 48), max(2, int(0.06 * h)))
        _rounded_rect(out, pts, r, (28, 28, 30))
        cv2.line(out, (pts[0] + r, pts[3] - 2), (pts[2] - r, pts[3] - 2), (70, 70, 75), max(1, int(0.02 * h)))
    return out


def _rounded_rect(img: np.ndarray, box: list[int], r: int, colour: tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = box
    cv2.rectangle(img, (x1 + r, y1), (x2 - r, y2), colour, -1)
    cv2.rectangle(img, (x1, y1 + r), (x2, y2 - r), colour, -1)
    for cx, cy in ((x1 + r, y1 + r), (x2 - r, y1 + r), (x1 + r, y2 - r), (x2 - r, y2 - r)):
        cv2.circle(img, (cx, cy), r, colour, -1)


def occlude(image: np.ndarray, faces: Sequence[Face], kind: str, seed: int = 0) -> np.ndarray:
    """``image`` with occluder ``kind`` (``"clean"``, a realistic kind, or ``"upper_half"``) on every face.

    Realistic occluders are placed from the face's keypoints (so they follow roll and scale); each face gets
    its own seed derived from ``seed``.
    """
    if kind == "clean" or not faces:
        return image
    if kind == BLOCK:
        return cover_upper_half(image, [f.box for f in faces])
    if kind not in REALISTIC_KINDS:
        raise ValueError(f"unknown occluder kind {kind!r}; use clean, {', '.join(OCCLUDER_KINDS)}")
    out = image
    for i, f in enumerate(faces):
        try:
            out = draw_occluder(out, kind, f.keypoints, box=f.box, seed=seed * 1009 + i).image
        except InputError:  # keypoints collapsed (eyes < 4 px apart): place it from the box instead
            out = draw_occluder(out, kind, None, box=f.box, seed=seed * 1009 + i).image
    return out


def random_faces(rng: np.random.Generator, h: int, w: int, n: int) -> list[Face]:
    """Face-sized boxes at random places with frontal keypoints: where occluders go on face-free images."""
    out = []
    for _ in range(n):
        side = rng.uniform(0.1, 0.45) * min(h, w)
        x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
        box = np.array([x, y, x + side, y + side])
        out.append(Face(box, keypoints_from_box(box), "none"))
    return out


def occlude_sample(sample: Sample, kind: str, seed: int = 0) -> np.ndarray:
    """The sample's image with occluder ``kind`` on every face; a face-free image gets one or two realistic
    occluders at random places instead (an occluder on its own must not make a face)."""
    if sample.faces or kind not in REALISTIC_KINDS:
        return occlude(sample.image, sample.faces, kind, seed)
    rng = np.random.default_rng(seed)
    h, w = sample.image.shape[:2]
    return occlude(sample.image, random_faces(rng, h, w, int(rng.integers(1, 3))), kind, seed)


def rotate(sample: Sample, degrees: float) -> Sample:
    """The sample rotated by ``degrees`` (counter-clockwise on screen) about its centre, on a canvas grown to
    hold the whole image (black corners). Face boxes keep their size around the rotated centre (a face's box
    turns with the face); keypoints and ignore regions move with the image."""
    if degrees == 0:
        return sample
    h, w = sample.image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(h * s + w * c)), int(np.ceil(h * c + w * s))
    m[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    image = cv2.warpAffine(sample.image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))

    def move(pts: np.ndarray) -> np.ndarray:
        return pts @ m[:, :2].T + m[:, 2]

    def move_box(b: np.ndarray) -> np.ndarray:
        half = (b[2:] - b[:2]) / 2
        cen = move(((b[:2] + b[2:]) / 2)[None])[0]
        return np.concatenate([cen - half, cen + half])

    faces = [Face(move_box(f.box), None if f.keypoints is None else move(f.keypoints), f.person) for f in sample.faces]
    return replace(sample, image=image, faces=faces, ignore=[move_box(b) for b in sample.ignore])


def resize(sample: Sample, long_side: int) -> Sample:
    """The sample scaled so that its longer side is ``long_side`` pixels (GT scaled with it)."""
    h, w = sample.image.shape[:2]
    f = long_side / max(h, w)
    if abs(f - 1) < 1e-6:
        return sample
    image = cv2.resize(
        sample.image,
        (max(1, round(w * f)), max(1, round(h * f))),
        interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
    )
    faces = [Face(fc.box * f, None if fc.keypoints is None else fc.keypoints * f, fc.person) for fc in sample.faces]
    return replace(sample, image=image, faces=faces, ignore=[b * f for b in sample.ignore])


def label_candidates(boxes: np.ndarray, faces: Sequence[Face], ignore: Sequence[np.ndarray]) -> np.ndarray:
    """Per candidate box ``(N, 4)``: 1 if it finds a face (IoU >= 0.4, or centre inside the face box and
    IoU >= 0.25), 0 if it is a false face away from every face, -1 if neither can be said: centre in an ``ignore``
    region, or a box on part of a face (centre inside it or IoU >= 0.1) that is not a match. Such part-boxes show
    mostly face; the detector suppresses them next to the face's own box instead (see ``TwoStageDetector``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.zeros(len(boxes), np.int64)
    if not len(boxes):
        return labels
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    if faces:
        g = np.array([f.box for f in faces])
        ious = iou_matrix(boxes, g)
        inside = (
            (centres[:, None, 0] >= g[None, :, 0])
            & (centres[:, None, 0] <= g[None, :, 2])
            & (centres[:, None, 1] >= g[None, :, 1])
            & (centres[:, None, 1] <= g[None, :, 3])
        )
        pos = ((ious >= 0.4) | (inside & (ious >= 0.25))).any(1)
        unsure = (inside | (ious >= 0.1)).any(1) & ~pos
        labels[pos] = 1
        labels[unsure] = -1
    for b in ignore:
        in_ig = (centres[:, 0] >= b[0]) & (centres[:, 0] <= b[2]) & (centres[:, 1] >= b[1]) & (centres[:, 1] <= b[3])
        labels[in_ig & (labels == 0)] = -1
    return labels


def match(
    boxes: np.ndarray, scores: np.ndarray, faces: Sequence[Face], ignore: Sequence[np.ndarray], occluded: bool
) -> tuple[int, int]:
    """``(true positives, false positives)`` of one frame's detections (greedy by score, one per face).

    Clean: IoU >= 0.4 (box conventions differ between detectors and annotators: brow vs hairline, chin margin).
    Occluded: centre inside the face box and IoU >= 0.25 (a detector may return a box shifted to the visible
    part; what the pipeline needs is the right face at roughly the right scale). A detection matching no face is
    a false positive unless its centre lies in an ``ignore`` region.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return 0, 0
    g = np.array([f.box for f in faces]).reshape(-1, 4)
    ious = iou_matrix(boxes, g) if len(g) else np.zeros((len(boxes), 0))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    used: set[int] = set()
    tp = fp = 0
    for i in np.argsort(-np.asarray(scores)):
        ok = ious[i] >= (0.25 if occluded else 0.4)
        if occluded and len(g):
            ok &= (
                (centres[i, 0] >= g[:, 0])
                & (centres[i, 0] <= g[:, 2])
                & (centres[i, 1] >= g[:, 1])
                & (centres[i, 1] <= g[:, 3])
            )
        cands = [j for j in np.flatnonzero(ok) if j not in used]
        if cands:
            used.add(max(cands, key=lambda j: ious[i, j]))
            tp += 1
        elif not any(b[0] <= centres[i, 0] <= b[2] and b[1] <= centres[i, 1] <= b[3] for b in ignore):
            fp += 1
    return tp, fp
