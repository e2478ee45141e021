"""Unlabelled faces from the user's own videos and photos (``faces:`` specs), found and aligned by ofer's detector.

Spec: ``faces:/videos/a.mp4,/photos/,glob=*.jpg,stride=5`` — any number of videos, image files and folders
(searched recursively for ``glob``), then options:

* ``stride`` (5): in a video, keep a face every ``stride`` frames (the tracker still sees every frame).
* ``dedupe`` (3.0): skip a video crop whose mean absolute difference to the last kept crop of its track is below
  this many grey levels (a still scene); 0 keeps all.
* ``person`` (``image``): how stills are grouped into people: ``image`` (each image its own person), ``folder``
  (every image in one folder is one person) or ``source`` (each path of the spec is one person).
  In a video each track is one person; ``person=source`` makes the whole video one person.
* ``detect`` (true): find faces with the detector; ``false`` takes every image whole as a ready face crop.
* ``val`` (0.15) / ``test`` (0.0): fractions of people held out as the ``val`` / ``test`` split.
* ``seed`` (0): seed of the split.
* ``bundle``: the bundle whose input spec (size, colour, crop margin) the crops take (default: ofer's default
  bundle); its labels become the dataset's labels. Every sample's label is ``-1`` (unlabelled).
* ``max_faces`` (none): at most this many faces per frame, largest first.
* ``missing`` (``error``): a file named in the spec without any face is an error; ``skip`` skips it (faceless files
  found in a folder are always skipped).

Splits never put one person on both sides: the split unit is the person, and every track of one video shares one
unit (a track that breaks and restarts is the same person, so it must not land on the other side).
Crops are cached per source file as ``.npz`` under ``$OFER_CACHE/faces``, keyed by the file's sha256 and the settings.
This module is torch-free.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtime.errors import ConfigError, DatasetError
from runtime.frames import IMAGE_SUFFIXES
from runtime.sources import VIDEO_SUFFIXES

from .base import FaceDataset, check_split

CACHE_VERSION = 3  # 2: whole-image faces are resampled by runtime.preprocess.fit_face; 3: gray before the area filter
UNLABELLED = -1


@dataclass(frozen=True)
class FaceSettings:
    """How faces are extracted (every field is part of the cache key)."""

    stride: int = 5
    dedupe: float = 3.0
    person: str = "image"
    detect: bool = True
    glob: str = "*"
    max_faces: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stride, int) or self.stride < 1:
            raise ConfigError(f"faces: stride must be an integer >= 1 (frames), got {self.stride!r}")
        if self.person not in ("image", "folder", "source"):
            raise ConfigError(f"faces: person must be image, folder or source, got {self.person!r}")
        if not self.dedupe >= 0:
            raise ConfigError(f"faces: dedupe must be >= 0 grey levels, got {self.dedupe!r}")


@dataclass
class FaceCrops:
    """Extracted crops and their tags (arrays of length N).

    Attributes:
        images: ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 crops in the bundle's input spec.
        person: Person id of each crop (``file#face`` for stills, ``video#track`` for video tracks).
        group: Split unit (the person; the video for every track of one video).
        source: Source file of each crop.
        frame: Video frame index (-1 for stills).
    """

    images: np.ndarray
    person: np.ndarray
    group: np.ndarray
    source: np.ndarray
    frame: np.ndarray


def _files(paths: Sequence[str], glob: str) -> list[tuple[Path, str]]:
    """``(file, root path of the spec it came from)`` for every video/image the paths name."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise DatasetError(f"faces: {raw} does not exist; check the spec's paths")
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES
                and fnmatch.fnmatch(f.name, glob)
            )
            if not found:
                raise DatasetError(
                    f"faces: folder {raw} holds no video or image matching glob={glob!r} "
                    f"(suffixes {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})"
                )
            out.extend((f, raw) for f in found)
        elif p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
            out.append((p, raw))
        else:
            raise DatasetError(
                f"faces: {raw} is neither a video ({', '.join(VIDEO_SUFFIXES)}) nor an image "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(file: Path, root: str, settings: FaceSettings, input_spec: dict[str, Any]) -> str:
    """sha256 over one source's content, its spec root, the settings and the crop spec."""
    h = hashlib.sha256(
        json.dumps(
            {"v": CACHE_VERSION, "settings": asdict(settings), "input": input_spec, "file": file.name, "root": root},
            sort_keys=True,
        ).encode()
    )
    h.update(_sha256(file).encode())
    return h.hexdigest()[:24]


def _cache_dir() -> Path:
    from runtime.engines.onnxruntime_engine import cache_root

    return cache_root() / "faces"


class _Extractor:
    """Finds, follows and crops faces with the SDK's own detector, tracker and crop geometry."""

    def __init__(self, bundle: Any, settings: FaceSettings) -> None:
        self.bundle, self.settings = bundle, settings
        self.crops: list[np.ndarray] = []
        self.tags: list[tuple[str, str, str, int]] = []  # person, group, source, frame
        if settings.detect:
            from runtime.detection import create_detector
            from runtime.processor import FrameProcessor

            self.detector = create_detector("auto", threads=1)
            self.processor = FrameProcessor(bundle, self.detector, None, max_faces=settings.max_faces)

    def _person(self, f: Path, root: str, k: int) -> str:
        mode = self.settings.person
        return {"image": f"{f}#{k}", "folder": str(f.parent), "source": root}[mode]

    def still(self, f: Path, root: str) -> int:
        from runtime.frames import read_image

        frame = read_image(f)
        if not self.settings.detect:
            self._add(self._whole(frame), self._person(f, root, 0), str(f), -1)
            return 1
        faces, _ = self.processor.find_faces(frame)
        for k, crop in enumerate(self.processor.crop(frame, faces)):
            self._add(crop, self._person(f, root, k), str(f), -1)
        return len(faces)

    def _whole(self, frame: np.ndarray) -> np.ndarray:
        from runtime.preprocess import fit_face

        return fit_face(frame, self.bundle.input)

    def _add(self, crop: np.ndarray, person: str, source: str, frame: int, group: str | None = None) -> None:
        self.crops.append(np.ascontiguousarray(crop, dtype=np.uint8))
        self.tags.append((person, group or person, source, frame))

    def video(self, f: Path, root: str) -> int:
        import cv2

        from runtime.face_tracking import FaceTracker

        cap = cv2.VideoCapture(str(f))
        if not cap.isOpened():
            raise DatasetError(f"faces: OpenCV cannot open video {f}; check the file or convert it to .mp4 (H.264)")
        tracker = FaceTracker(self.detector, detect_every=5, max_faces=self.settings.max_faces)
        last: dict[int, np.ndarray] = {}
        kept, i = 0, -1
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                i += 1
                faces, _ = self.processor.find_faces(frame, tracker)
                if i % self.settings.stride:
                    continue
                for face, crop in zip(faces, self.processor.crop(frame, faces)):
                    tid = int(face.track_id if face.track_id is not None else -1)
                    small = cv2.resize(crop, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
                    if tid in last and np.abs(small - last[tid]).mean() < self.settings.dedupe:
                        continue
                    last[tid] = small
                    person = str(f) if self.settings.person == "source" else f"{f}#track{tid}"
                    group = root if self.settings.person == "source" else str(f)
                    self._add(crop, person, str(f), i, group=group)
                    kept += 1
        finally:
            cap.release()
        if i < 0:
            raise DatasetError(f"faces: video {f} has no readable frame; check the file")
        return kept

    def result(self) -> FaceCrops:
        if not self.crops:
            h, w = self.bundle.input.size
            shape = (0, h, w) if self.bundle.input.channels == 1 else (0, h, w, 3)
            images = np.zeros(shape, np.uint8)
        else:
            images = np.stack(self.crops)
        cols = list(zip(*self.tags)) if self.tags else [(), (), (), ()]
        return FaceCrops(
            images,
            np.asarray(cols[0], dtype=str),
            np.asarray(cols[1], dtype=str),
            np.asarray(cols[2], dtype=str),
            np.asarray(cols[3], dtype=np.int64),
        )


def _load_cached(path: Path) -> FaceCrops | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return FaceCrops(*(z[k] for k in ("images", "person", "group", "source", "frame")))
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged: rebuilt


def _concat(parts: list[FaceCrops]) -> FaceCrops:
    return FaceCrops(
        *(np.concatenate([getattr(p, k) for p in parts]) for k in ("images", "person", "group", "source", "frame"))
    )


def extract_faces(
    paths: Sequence[str],
    settings: FaceSettings,
    bundle: Any,
    *,
    use_cache: bool = True,
    missing: str = "error",
    log: Any = None,
) -> FaceCrops:
    """Every face of the sources as crops in ``bundle``'s input spec (each file cached on its own).

    Args:
        missing: ``error``: a file named explicitly in ``paths`` without a face is an error; ``skip``: it is
            skipped (files found in a folder are always skipped when faceless).

    Raises:
        DatasetError: a path is missing or unreadable, an explicitly named file has no face, or no face at all.
    """
    files = _files(paths, settings.glob)
    parts: list[FaceCrops] = []
    ex: _Extractor | None = None
    for f, root in files:
        cache = _cache_dir() / f"{cache_key(f, root, settings, bundle.input.to_dict())}.npz"
        part = _load_cached(cache) if use_cache else None
        if part is None:
            is_video = f.suffix.lower() in VIDEO_SUFFIXES
            if is_video and not settings.detect:
                raise ConfigError(f"faces: detect=false takes ready face crops (images), not videos ({f})")
            ex = ex or _Extractor(bundle, settings)
            ex.crops, ex.tags = [], []
            if is_video:
                ex.video(f, root)
            else:
                ex.still(f, root)
            part = ex.result()
            if use_cache:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, **asdict(part))
                tmp.replace(cache)
        if log is not None:
            log(f"faces: {f}: {len(part.images)} face(s)")
        if len(part.images) == 0 and missing == "error" and Path(root).expanduser().resolve() == f.resolve():
            raise DatasetError(
                f"faces: no face found in {f}; the detector needs a visible face of at least "
                f"~30 px (or pass ready face crops with detect=false, or missing=skip)"
            )
        parts.append(part)
    crops = _concat(parts)
    if len(crops.images) == 0:
        raise DatasetError(
            f"faces: no face found in any of {len(files)} file(s) of {', '.join(paths)}; the "
            f"detector needs visible faces of at least ~30 px (or pass crops with detect=false)"
        )
    return crops


def split_groups(groups: Sequence[str], split: str, val: float, test: float, seed: int = 0) -> np.ndarray:
    """Indices of the samples whose group falls in ``split`` (``train``/``val``/``test``/``all``).

    Groups are ordered by a seeded hash and cut by the fractions (at least one group in a non-empty held-out split
    when there are >= 3 groups), so no group is on two sides.
    """
    groups = np.asarray(groups, dtype=str)
    if split == "all":
        return np.arange(len(groups))
    unique = sorted(set(groups.tolist()), key=lambda g: hashlib.sha256(f"{seed}|{g}".encode()).hexdigest())
    n = len(unique)
    n_test = int(round(test * n)) if test > 0 else 0
    n_val = int(round(val * n)) if val > 0 else 0
    if n >= 3:
        n_test = max(n_test, 1) if test > 0 else 0
        n_val = max(n_val, 1) if val > 0 else 0
    parts = {"test": unique[:n_test], "val": unique[n_test : n_test + n_val], "train": unique[n_test + n_val :]}
    chosen = set(parts[split])
    return np.flatnonzero(np.isin(groups, list(chosen)))


class UnlabelledFaces(FaceDataset):
    """A split of extracted faces: ``ds[i] -> (crop, -1)``; ``subject(i)`` is the person, ``source(i)`` the file."""

    def __init__(self, crops: FaceCrops, labels: Sequence[str], split: str, indices: np.ndarray) -> None:
        self.crops, self.labels, self.split = crops, tuple(labels), split
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int) -> np.ndarray:
        return self.crops.images[self.indices[self.index(i)]]

    def label(self, i: int) -> int:
        return UNLABELLED

    def targets(self) -> np.ndarray:
        return np.full(len(self), UNLABELLED, np.int64)

    def subject(self, i: int) -> str | None:
        return str(self.crops.person[self.indices[self.index(i)]])

    def group(self, i: int) -> str:
        """The split unit of sample ``i`` (its person, or its video)."""
        return str(self.crops.group[self.indices[self.index(i)]])

    def source(self, i: int) -> str:
        j = self.indices[self.index(i)]
        fr = int(self.crops.frame[j])
        return str(self.crops.source[j]) + (f"#{fr}" if fr >= 0 else "")

    def images(self) -> np.ndarray:
        """Every crop of this split, ``(N, H, W[, C])`` uint8."""
        return self.crops.images[self.indices]

    def people(self) -> np.ndarray:
        """Person id of every sample."""
        return self.crops.person[self.indices]


def default_bundle_dir() -> Path:
    """The SDK's default bundle folder (``sdk/default_bundle``, ``sdk.recognizer.DEFAULT_BUNDLE``).

    Found as package data without importing ``sdk`` (runtime sits below it). ConfigError when the sdk package
    is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("sdk")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("faces: no default bundle (the sdk package is not installed); pass bundle=/path/to/bundle")
    return Path(list(spec.submodule_search_locations)[0]) / "default_bundle"


def open_faces(
    path: str,
    split: str = "train",
    *,
    stride: int = 5,
    dedupe: float = 3.0,
    person: str = "image",
    detect: bool = True,
    glob: str = "*",
    max_faces: int | None = None,
    val: float = 0.15,
    test: float = 0.0,
    seed: int = 0,
    bundle: Any = None,
    cache: bool = True,
    missing: str = "error",
) -> UnlabelledFaces:
    """The ``faces:`` reader (``path`` is the spec's comma-joined paths; see the module docstring)."""
    from runtime.bundle import Bundle, load_bundle

    check_split(split, dataset="faces")
    for name, frac in (("val", val), ("test", test)):
        if not 0 <= float(frac) < 1:
            raise ConfigError(f"faces: {name} must be a fraction in [0, 1), got {frac!r}")
    if float(val) + float(test) >= 1:
        raise ConfigError(f"faces: val + test = {val + test} leaves no people to train on; lower them")
    if bundle is None:
        bundle = default_bundle_dir()
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    settings = FaceSettings(
        stride=stride,
        dedupe=float(dedupe),
        person=str(person),
        detect=bool(detect),
        glob=str(glob),
        max_faces=max_faces,
    )
    paths = [p.strip() for p in str(path).split(",") if p.strip()]
    if not paths:
        raise ConfigError("faces: spec names no path; use faces:/videos/a.mp4,/photos/")
    if missing not in ("error", "skip"):
        raise ConfigError(f"faces: missing must be error or skip, got {missing!r}")
    crops = extract_faces(paths, settings, b, use_cache=bool(cache), missing=missing)
    idx = split_groups(crops.group, split, float(val), float(test), int(seed))
    if len(idx) == 0:
        n = len(set(crops.group.tolist()))
        raise DatasetError(
            f"faces: split {split!r} is empty ({n} people/videos in all); add sources with more "
            f"people or change val=/test="
        )
    return UnlabelledFaces(crops, b.labels, split, idx)
