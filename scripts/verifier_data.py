"""Build the verifier's training crops from real images: the candidate stage's own proposals on occluded,
rolled and rescaled copies of each image, labelled against the ground truth, plus jittered crops of the
ground-truth faces and random background crops.

Every crop is cut by :func:`runtime.detection.geometry.aligned_crops`, the function the runtime uses, so the
verifier trains on exactly what it will see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import cv2
import numpy as np

from runtime.detection.geometry import aligned_crops, eye_roll
from runtime.detection.ssd import iou_matrix
from runtime.detection.two_stage import FEATURES, CandidateDetector, candidate_features
from scripts.detection_data import (
    OCCLUDER_KINDS,
    REALISTIC_KINDS,
    Sample,
    label_candidates,
    occlude,
    random_faces,
    resize,
    rotate,
)

ORIGINS = ("candidate", "gt", "random")


@dataclass
class CropSet:
    """Crops and what is known about them (all arrays have one row per crop).

    ``face`` is a unique id of the (image variant, face) a positive candidate found (-1 otherwise), so that
    recall can be counted per face; ``faces_per_kind`` counts the faces of every variant by occluder kind.
    """

    crops: list[np.ndarray] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    face: list[int] = field(default_factory=list)
    features: list[dict[str, float]] = field(default_factory=list)
    faces_per_kind: dict[str, int] = field(default_factory=dict)
    variants_per_kind: dict[str, int] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as numpy arrays (``crops (N, S, S, 3)`` uint8, features as ``feat_<name>``)."""
        out = {
            "crops": np.stack(self.crops),
            "label": np.array(self.label),
            "group": np.array(self.group),
            "kind": np.array(self.kind),
            "origin": np.array(self.origin),
            "face": np.array(self.face),
        }
        for k in FEATURES:
            out[f"feat_{k}"] = np.array([f.get(k, np.nan) for f in self.features])
        return out


def _group(sample: Sample) -> str:
    return "+".join(sorted(sample.people))


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera and codec degradations, each with some probability: Gaussian blur, JPEG at quality 20-90, and
    downscale-upscale (a face seen at lower resolution)."""
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.6, 2.0)))
    if rng.random() < 0.2:
        h, w = image.shape[:2]
        f = rng.uniform(0.3, 0.7)
        small = cv2.resize(image, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 91))])
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image
    return image


def variants(
    sample: Sample,
    rng: np.random.Generator,
    per_kind: int,
    kinds: Sequence[str] = ("clean", *OCCLUDER_KINDS),
    extra: Mapping[str, int] | None = None,
    degraded: bool = False,
) -> list[tuple[str, Sample]]:
    """``per_kind`` copies of ``sample`` for each occluder kind (plus ``extra[kind]`` more): occluded from the GT
    keypoints (face-free images get the occluder at random places: it must not create a face), then rolled by a
    random angle (half upright-ish, half up to +-90 degrees), rescaled to a longer side of 480-1280 px and, with
    ``degraded``, blurred / JPEG-compressed / resampled (:func:`degrade`)."""
    out = []
    for kind in kinds:
        for _ in range(per_kind + (extra or {}).get(kind, 0)):
            seed = int(rng.integers(1 << 30))
            if sample.faces or kind not in REALISTIC_KINDS:
                image = occlude(sample.image, sample.faces, kind, seed)
            else:  # an occluder alone must not make a face
                h, w = sample.image.shape[:2]
                image = occlude(sample.image, random_faces(rng, h, w, int(rng.integers(1, 3))), kind, seed)
            v = Sample(
                sample.name,
                sample.source,
                image,
                sample.faces,
                sample.ignore,
                sample.split,
                sample.research_only,
                sample.licence,
            )
            roll = rng.uniform(-15, 15) if rng.random() < 0.5 else rng.uniform(-90, 90)
            v = resize(rotate(v, float(roll)), int(rng.integers(480, 1281)))
            if degraded:
                v = Sample(
                    v.name, v.source, degrade(v.image, rng), v.faces, v.ignore, v.split, v.research_only, v.licence
                )
            out.append((kind, v))
    return out


def build_crops(
    samples: Sequence[Sample],
    candidates: CandidateDetector,
    *,
    size: int,
    expand: float,
    per_kind: int = 2,
    gt_jitter: int = 2,
    random_per_image: int = 4,
    seed: int = 0,
    extra: Mapping[str, int] | None = None,
    degraded: bool = False,
    negatives: Sequence[Sample] = (),
    log: bool = True,
) -> CropSet:
    """The verifier's crops from ``samples`` (see the module docstring).

    Args:
        samples: Real images with GT keypoints filled in (:func:`scripts.detection_data.fill_keypoints`).
        candidates: The candidate stage whose proposals are labelled.
        size, expand: The verifier's crop side (px) and box expansion.
        per_kind: Variants per occluder kind per image.
        extra: More variants for some kinds (e.g. ``{"hand": 4}``: the kind with the most varied occluder).
        degraded: Blur, JPEG and resample the variants (:func:`degrade`).
        negatives: Extra face-free frames (e.g. procedural text cards); one variant each, with a random kind.
        gt_jitter: Extra jittered ground-truth crops per face per variant.
        random_per_image: Random background crops per variant (IoU < 0.1 with every face).
        seed: Seeds every random choice.
    """
    rng = np.random.default_rng(seed)
    cs = CropSet()
    face_id = 0
    kinds = ("clean", *OCCLUDER_KINDS)
    jobs = [(s, per_kind, kinds, extra) for s in samples]
    jobs += [(s, 1, (kinds[int(rng.integers(len(kinds)))],), None) for s in negatives]
    for si, (sample, n, ks, ex) in enumerate(jobs):
        for kind, v in variants(sample, rng, n, kinds=ks, extra=ex, degraded=degraded):
            cs.faces_per_kind[kind] = cs.faces_per_kind.get(kind, 0) + len(v.faces)
            cs.variants_per_kind[kind] = cs.variants_per_kind.get(kind, 0) + 1
            group = _group(sample)
            dets = candidates.detect(v.image)
            boxes = np.array([d.box for d in dets]).reshape(-1, 4)
            labels = label_candidates(boxes, v.faces, v.ignore)
            gt = np.array([f.box for f in v.faces]).reshape(-1, 4)
            ious = iou_matrix(boxes, gt) if len(gt) and len(boxes) else np.zeros((len(boxes), len(gt)))
            feats = candidate_features(dets, np.zeros(len(dets)))
            keep = np.flatnonzero(labels >= 0)
            crops = aligned_crops(v.image, boxes[keep], [dets[i].roll for i in keep], size, expand)
            for c, i in zip(crops, keep):
                cs.crops.append(c)
                cs.label.append(int(labels[i]))
                cs.face.append(face_id + int(ious[i].argmax()) if labels[i] == 1 and len(gt) else -1)
                cs.features.append({k: float(feats[k][i]) for k in FEATURES if k != "verifier"})
            cs.group += [group] * len(keep)
            cs.kind += [kind] * len(keep)
            cs.origin += ["candidate"] * len(keep)
            _add_gt_and_random(cs, v, rng, size, expand, gt_jitter, random_per_image, group, kind)
            face_id += len(v.faces)
        if log and ((si + 1) % 10 == 0 or si + 1 == len(jobs)):
            print(
                f"  crops: {si + 1}/{len(jobs)} images, {len(cs.crops)} crops ({int(np.sum(cs.label))} positive)",
                flush=True,
            )
    return cs


def _add_gt_and_random(
    cs: CropSet,
    v: Sample,
    rng: np.random.Generator,
    size: int,
    expand: float,
    gt_jitter: int,
    random_per_image: int,
    group: str,
    kind: str,
) -> None:
    """Jittered GT crops (positives: scale +-20 %, shift +-10 %, roll +-8 deg) and random background crops."""
    boxes, rolls, labels = [], [], []
    for f in v.faces:
        w = f.box[2] - f.box[0]
        for _ in range(gt_jitter):
            s = w * rng.uniform(0.8, 1.2) / 2
            c = (f.box[:2] + f.box[2:]) / 2 + rng.uniform(-0.1, 0.1, 2) * w
            boxes.append(np.concatenate([c - s, c + s]))
            rolls.append(eye_roll(f.keypoints) + np.radians(rng.uniform(-8, 8)))
            labels.append(1)
    h, w_img = v.image.shape[:2]
    gt = np.array([f.box for f in v.faces]).reshape(-1, 4)
    tries = 0
    while sum(1 for x in labels if x == 0) < random_per_image and tries < 50:
        tries += 1
        side = rng.uniform(0.05, 0.6) * min(h, w_img)
        x, y = rng.uniform(-0.1 * side, w_img - 0.9 * side), rng.uniform(-0.1 * side, h - 0.9 * side)
        b = np.array([x, y, x + side, y + side])
        if len(gt) and iou_matrix(b[None], gt).max() >= 0.1:
            continue
        boxes.append(b)
        rolls.append(np.radians(rng.uniform(-90, 90)))
        labels.append(0)
    if not boxes:
        return
    crops = aligned_crops(v.image, boxes, rolls, size, expand)
    for c, lab in zip(crops, labels):
        cs.crops.append(c)
        cs.label.append(lab)
        cs.group.append(group)
        cs.kind.append(kind)
        cs.origin.append("gt" if lab else "random")
        cs.face.append(-1)
        cs.features.append({})
