"""Face crops for calibration and held-out checks, from a dataset, a folder of images, a video or procedural faces.

A *source* is one string:

* ``procedural`` or ``procedural:n=...,seed=...`` -- the procedural benchmark (calibration from its ``train``
  split, held-out faces from ``test``: disjoint identities);
* a dataset spec ``fer2013:/data/fer2013.csv``, ``rafdb:/data/RAF-DB/basic``, ... (see
  :mod:`runtime.datasets.spec`; ``train`` split for calibration, ``test`` or ``val`` for held-out);
* a folder of images (searched recursively) or one image: faces are detected and cropped with
  :mod:`runtime.detection`, or used whole with ``faces="whole"`` (for folders of ready face crops);
* a video file: frames sampled evenly (calibration from the first 70 % of the video, held-out from the rest).

Every crop comes out at the bundle's input size and colour (uint8, :func:`runtime.preprocess.fit_face` for ready
crops, :func:`~runtime.preprocess.crop_face` for detected faces), ready for occlusion and ``to_tensor``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtime.input_spec import InputSpec
from runtime.datasets.spec import LABELLED_FORMATS, open_dataset
from runtime.errors import ConfigError, DatasetError
from runtime.frames import IMAGE_SUFFIXES
from runtime.preprocess import fit_face
from runtime.sources import VIDEO_SUFFIXES

from .config import FACE_MODES

PARTS = ("calib", "heldout", "all")  # "all": a held-out source of its own (other people), used whole
HELDOUT_SHARE = 0.3  # share of a folder's files / a video's duration kept apart for the held-out check


@dataclass(frozen=True)
class Faces:
    """Face crops of one source part.

    Attributes:
        crops: ``(N, H, W)`` (gray) or ``(N, H, W, 3)`` uint8 at the input spec's size and colour.
        labels: ``(N,)`` int64 indices into ``label_names``; ``-1`` where the source has no label.
        label_names: Class names of the source (empty when unlabelled).
        origin: Where each crop came from (file, frame, index), for messages.
    """

    crops: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    origin: tuple[str, ...]


def source_kind(source: str) -> str:
    """``procedural``, ``dataset``, ``video``, ``image``, ``folder``; ConfigError when it names nothing usable."""
    text = str(source).strip()
    head = text.split(":", 1)[0].lower()
    if head == "procedural":
        return "procedural"
    if ":" in text and head in LABELLED_FORMATS:
        return "dataset"
    p = Path(text).expanduser()
    if p.is_dir():
        return "folder"
    if p.is_file():
        if p.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return "image"
        raise ConfigError(
            f"calibration source {p} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
            f"({', '.join(VIDEO_SUFFIXES)}); pass a folder of images, a video, a dataset spec or "
            "'procedural'"
        )
    raise ConfigError(
        f"calibration source {text!r} does not exist; pass a folder of face images, a video, a dataset "
        "spec (e.g. fer2013:/data/fer2013.csv) or 'procedural'"
    )


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def source_identity(source: str) -> dict[str, Any]:
    """What identifies a source's content for the cache key, without decoding it (paths, sizes, mtimes)."""
    kind = source_kind(source)
    if kind in ("procedural", "dataset"):
        ident: dict[str, Any] = {"kind": kind, "spec": str(source).strip()}
        if kind == "dataset":
            path = Path(str(source).split(":", 1)[1].split(",", 1)[0]).expanduser()
            if path.exists():
                st = path.stat()
                ident["stat"] = [st.st_size, st.st_mtime_ns]
        return ident
    p = Path(source).expanduser().resolve()
    files = _image_files(p) if kind == "folder" else [p]
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(
            json.dumps([str(f.relative_to(p) if kind == "folder" else f.name), st.st_size, st.st_mtime_ns]).encode()
        )
    return {"kind": kind, "path": str(p), "files": len(files), "content": digest.hexdigest()}


def _face_cropper(faces: str, spec: InputSpec) -> Callable[[np.ndarray], list[np.ndarray]]:
    """frame (BGR) -> face crops, by detection or taking the whole frame."""
    if faces not in FACE_MODES:
        raise ConfigError(f"faces must be one of {FACE_MODES}, got {faces!r}")
    if faces == "whole":
        return lambda frame: [fit_face(frame, spec)]
    try:
        from runtime.detection import create_detector
    except ImportError:
        raise ConfigError(
            "face detection (runtime.detection) is not available in this install, so faces cannot be "
            "cropped from images/videos; pass faces='whole' (--calib-faces whole) if every image is "
            "already a face crop"
        ) from None
    from runtime.preprocess import crop_face

    detector = create_detector("auto")
    return lambda frame: [crop_face(frame, d.box, spec) for d in detector.detect(frame)]


def _stack(
    crops: list[np.ndarray], labels: list[int], names: tuple[str, ...], origin: list[str], spec: InputSpec, source: str
) -> Faces:
    if not crops:
        raise DatasetError(
            f"no faces found in calibration source {source!r}; check the files, or pass "
            "--calib-faces whole if they are face crops the detector misses"
        )
    return Faces(np.stack(crops).astype(np.uint8), np.asarray(labels, np.int64), names, tuple(origin))


def _dataset_faces(source: str, spec: InputSpec, count: int, part: str, seed: int) -> Faces:
    kind = source_kind(source)
    text = str(source).strip()
    if kind == "procedural" and ":" not in text:
        text = f"procedural:n={max(count, 1)},size={max(spec.size)}"
    splits = {"calib": ("train",), "heldout": ("test", "val"), "all": ("test", "val", "train")}[part]
    dataset, last_error = None, None
    for split in splits:
        try:
            dataset = open_dataset(text, split=split)
            break
        except ConfigError as exc:  # the format has no such split: try the next
            last_error = exc
    if dataset is None:
        raise ConfigError(f"{source!r} has no {'/'.join(splits)} split for the {part} set ({last_error})")
    order = np.random.default_rng([seed, 7]).permutation(len(dataset))[:count]
    crops, labels, origin = [], [], []
    for i in sorted(int(j) for j in order):
        image, label = dataset[i]
        crops.append(fit_face(np.asarray(image), spec))
        labels.append(int(label))
        origin.append(f"{text}[{i}]")
    return _stack(crops, labels, tuple(dataset.labels), origin, spec, source)


def _split_files(files: list[Path], part: str) -> list[Path]:
    """Deterministic file-level split (independent of the calibration seed, so the parts never overlap)."""
    if part == "all" or len(files) < 2:
        return files if part in ("calib", "all") else []
    order = np.random.default_rng(0).permutation(len(files))
    n_held = max(1, int(round(len(files) * HELDOUT_SHARE)))
    keep = order[:n_held] if part == "heldout" else order[n_held:]
    return [files[i] for i in sorted(keep)]


def _image_faces(source: str, spec: InputSpec, count: int, part: str, faces: str) -> Faces:
    import cv2

    p = Path(source).expanduser()
    files = _split_files(_image_files(p) if p.is_dir() else [p], part)
    crop = _face_cropper(faces, spec)
    crops, origin = [], []
    for f in files:
        frame = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"cannot decode image {f}; remove it from the calibration folder")
        for k, c in enumerate(crop(frame)):
            crops.append(c)
            origin.append(f"{f.name}#{k}")
    crops, origin = crops[:count], origin[:count]
    return _stack(crops, [-1] * len(crops), (), origin, spec, source)


def _video_faces(source: str, spec: InputSpec, count: int, part: str, faces: str) -> Faces:
    import cv2

    cap = cv2.VideoCapture(str(Path(source).expanduser()))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or total <= 0:
        cap.release()
        raise DatasetError(f"cannot read video {source}; check the file or convert it to mp4 (H.264)")
    cut = int(total * (1 - HELDOUT_SHARE))
    lo, hi = {"calib": (0, cut), "heldout": (cut, total), "all": (0, total)}[part]
    wanted = set(np.unique(np.linspace(lo, hi - 1, num=min(count, max(hi - lo, 0))).round().astype(int)).tolist())
    crop = _face_cropper(faces, spec)
    crops, origin, index = [], [], 0
    try:
        while index < hi and len(crops) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                for k, c in enumerate(crop(frame)):
                    crops.append(c)
                    origin.append(f"frame {index}#{k}")
            index += 1
    finally:
        cap.release()
    return _stack(crops[:count], [-1] * min(len(crops), count), (), origin[:count], spec, source)


def load_faces(
    source: str, spec: InputSpec, *, count: int, part: str = "calib", seed: int = 0, faces: str = "detect"
) -> Faces:
    """Up to ``count`` face crops of one part (``calib``, ``heldout`` or ``all``) of a source (module docstring).

    Raises:
        ConfigError: unknown source or option. DatasetError: nothing usable in it.
    """
    if part not in PARTS:
        raise ConfigError(f"part must be one of {PARTS}, got {part!r}")
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"count must be a positive integer, got {count!r}")
    kind = source_kind(source)
    if kind in ("procedural", "dataset"):
        return _dataset_faces(source, spec, count, part, seed)
    if kind == "video":
        return _video_faces(source, spec, count, part, faces)
    return _image_faces(source, spec, count, part, faces)
