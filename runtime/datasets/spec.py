"""Open a dataset from a one-line spec: ``format:path,key=value,...``.

Specs:

* ``fer2013:/data/fer2013.csv``
* ``ferplus:/data/fer2013new.csv,pixels=/data/fer2013.csv`` (``pixels`` defaults to ``fer2013.csv`` next
  to ``fer2013new.csv``); options ``ties=first|drop``, ``min_votes_fraction=0.5``
* ``rafdb:/data/RAF-DB/basic`` (options ``aligned=false``, ``verify=true``)
* ``ckplus:/data/CK+`` (options ``peak_frames=3``, ``neutral_first=true``, ``seed=0``, ``val_fraction``,
  ``test_fraction``, ``folds``, ``fold``)
* ``affectnet:/data/AffectNet/training.csv,root=/data/AffectNet/Manually_Annotated_Images``
  (``path`` may also be the folder of training.csv/validation.csv; option ``margin=0.1``)
* ``folder:/data/faces`` (``root/<class>/`` or ``root/<split>/<class>/``)
* ``procedural:n=20000,size=64,seed=0`` (:class:`runtime.datasets.procedural.ProceduralFaces`)
* ``faces:/videos/a.mp4,/photos/,glob=*.jpg,stride=5`` unlabelled faces found by ofer's detector in videos and
  images, split by person (:mod:`runtime.datasets.faces`; several paths before the options)

The path is everything between the colon and the first comma (paths with commas are not supported).
Values ``true``/``false``/``none`` and numbers are converted; the rest stay strings. Keyword arguments
of :func:`open_dataset` override options of the same name in the spec. Every format also takes
``labels=<label set>`` (and ``unmapped=drop|error|<class>``) to see the dataset through another label
set (see :class:`runtime.datasets.base.Remapped`); the split is always the ``split`` argument.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from runtime.errors import ConfigError, DatasetError

from .base import FaceDatasetLike, Remapped


def _procedural(**kw: Any) -> FaceDatasetLike:
    from .procedural import ProceduralFaces  # lazy: its own module, with its own dependencies

    return ProceduralFaces(**kw)


def _reader(name: str) -> Callable[..., Any]:
    from . import formats

    return getattr(formats, name)


FORMATS: dict[str, tuple[str | None, str]] = {
    # format -> (reader class in formats/ or None for procedural, name of the path argument)
    "fer2013": ("FER2013", "path"),
    "ferplus": ("FERPlus", "path"),
    "rafdb": ("RAFDB", "root"),
    "ckplus": ("CKPlus", "root"),
    "affectnet": ("AffectNet", "path"),
    "folder": ("ImageFolder", "root"),
    "procedural": (None, ""),
    "faces": (None, "path"),
}
MULTI_PATH_FORMATS = ("faces",)
LABELLED_FORMATS = tuple(f for f, (reader, _) in FORMATS.items() if reader is not None)  # readers of labelled files


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a spec into ``(format, path or None, options)``; ConfigError on a malformed spec."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(
            f"dataset spec {spec!r} has no 'format:' prefix; use one of "
            f"{', '.join(f + ':' for f in FORMATS)} (e.g. fer2013:/data/fer2013.csv)"
        )
    fmt, _, rest = spec.partition(":")
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r} in {spec!r}; known formats: {', '.join(FORMATS)}")
    path: str | None = None
    options: dict[str, Any] = {}
    for k, item in enumerate(p for p in rest.split(",") if p.strip()):
        if "=" not in item:
            if path is not None and fmt in MULTI_PATH_FORMATS and not options:
                path = f"{path},{item.strip()}"
                continue
            if k > 0:
                raise ConfigError(f"dataset spec {spec!r}: {item!r} is not key=value (only the first item is a path)")
            path = item.strip()
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        if key in options:
            raise ConfigError(f"dataset spec {spec!r} sets {key!r} twice")
        options[key] = _value(value)
    return fmt, path, options


def open_dataset(spec: str, split: str = "train", **kw: Any) -> FaceDatasetLike:
    """Open the dataset a spec names (see the module docstring for the formats).

    Args:
        spec: ``format:path,key=value,...``.
        split: ``train``, ``val``, ``test`` or ``all`` (what a format holds varies; it refuses the others).
        **kw: Reader options; override the spec's options of the same name.

    Raises:
        ConfigError: unknown format or option, malformed spec.
        DatasetError: missing or malformed files.
    """
    fmt, path, options = parse_spec(spec)
    options.update(kw)
    if "split" in options:
        raise ConfigError(f"dataset spec {spec!r} sets split; pass split= to open_dataset instead")
    reader_name, path_arg = FORMATS[fmt]
    if fmt == "faces":
        from .faces import open_faces

        if path is None:
            raise ConfigError(f"faces spec {spec!r} has no path; use faces:/videos/a.mp4,/photos/")
        try:
            inspect.signature(open_faces).bind(path, split, **options)
        except TypeError as e:
            raise ConfigError(f"faces spec {spec!r}: {e}") from None
        return open_faces(path, split, **options)
    if reader_name is None:
        if path is not None:
            raise ConfigError(f"procedural spec {spec!r} takes only key=value options, e.g. procedural:n=20000,size=64")
        try:
            return _procedural(split=split, **options)
        except TypeError as e:
            raise ConfigError(f"procedural spec {spec!r}: {e}") from None
    if path is None:
        raise ConfigError(f"dataset spec {spec!r} has no path; use {fmt}:/path/to/data")
    if not Path(path).expanduser().exists():
        raise DatasetError(f"{fmt} dataset path {path} does not exist; check the spec {spec!r}")
    reader = _reader(reader_name)
    accepted = [p for p in inspect.signature(reader).parameters if p not in (path_arg, "split")]
    labels = options.pop("labels", None) if "labels" not in accepted else None
    unmapped = options.pop("unmapped", "drop")
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted + ["labels", "unmapped"])
        raise ConfigError(f"{fmt} does not take option(s) {unknown}; it takes {takes}")
    dataset = reader(**{path_arg: path}, split=split, **options)
    return dataset if labels is None else Remapped(dataset, labels, unmapped)
