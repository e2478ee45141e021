"""Writes a gallery PNG of procedural faces: rows = expressions, columns = identities.

Usage:
    python scripts/procedural_gallery.py [--out out/procedural_gallery.png] [--size 96] [--cols 10]
        [--labels fer7+contempt] [--protocol upper_half]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.draw import labelled_grid  # noqa: E402
from runtime.occlusion import apply_occlusion  # noqa: E402
from runtime.datasets.procedural import ProceduralFaces  # noqa: E402


def gallery(ds: ProceduralFaces, cols: int, protocol: str) -> np.ndarray:
    """Grid with one row per expression and one column per identity (sample ``row + col * n_classes``)."""
    c = len(ds.labels)
    return labelled_grid(
        [
            (name, [apply_occlusion(ds[r + k * c][0], protocol, seed=k).image for k in range(cols)])
            for r, name in enumerate(ds.labels)
        ],
        label_width=90,
        font_scale=0.45,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/procedural_gallery.png"))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--cols", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train")
    parser.add_argument("--labels", default="fer7+contempt")
    parser.add_argument("--protocol", default="clean")
    args = parser.parse_args()
    ds = ProceduralFaces(
        len(ProceduralFaces(1, labels=args.labels).labels) * args.cols,
        size=args.size,
        seed=args.seed,
        split=args.split,
        labels=args.labels,
    )
    grid = gallery(ds, args.cols, args.protocol)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid)
    print(args.out)


if __name__ == "__main__":
    main()
