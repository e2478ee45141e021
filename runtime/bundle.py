"""The bundle: the unit of deployment (a folder with ``manifest.json`` and engine files).

Schema (version 1)::

    {
      "schema_version": 1,
      "name": "fer-mini-xception",
      "labels": ["angry", "disgust", ...],                 # output order of every classifier
      "input": {                                            # runtime.input_spec: how a face crop becomes a tensor
        "size": [64, 64],                                   # [height, width]
        "channels": 1, "color": "gray",                     # gray | bgr | rgb
        "layout": "NCHW",
        "scale": 0.00392156862745098,                       # x = (pixel * scale - mean) / std
        "mean": [0.5], "std": [0.5],
        "crop_margin": 0.1,                                 # fraction of the face box added on each side
        "crop_offset": [0.0, -0.09]                         # crop centre shift, fractions of box width/height
      },
      "engines": {
        "classifier": {"file": "classifier.onnx", "format": "onnx", "precision": "fp32",
                       "role": "classifier", "output": "logits", "sha256": "...",
                       "built_with": {...}}                 # tool versions; GPU arch for TensorRT
      },
      "pipelines": ["direct"],                              # direct | inpaint | auto
      "provenance": {"method": ..., "data": ..., "metrics": {...}, "licence": ..., "source": ...,
                     "licence_file": "LICENSE-fer.txt"}             # optional: licence texts in the bundle folder
    }

TensorRT engines (``format: trt``) also record ``built_with.precision`` and ``built_with.source_onnx_sha256`` (see
:func:`runtime.bundle_checks.check_plan_record`). All of these are additive to version 1.

Loading reads the manifest strictly (:mod:`runtime.manifest_json`: no duplicate keys, NaN/Infinity or deep
nesting; a UTF-8 BOM is fine) from a regular file inside the folder, checks the schema version (an integer, not
``true``), every field's type (booleans are not numbers), names (no control characters, at most 255 bytes; paths at
most 1024), that each engine file lies inside the bundle folder (no absolute paths, no ``..``, no symlink out) and
that its sha256 (64 hex digits, any case) matches; so are attached files (top-level objects with ``file``, which
must have a ``sha256``, e.g. ``"trt_calibration_cache"``, written by :func:`attach_file`) and the licence files
named by ``provenance.licence_file`` must be present. Each ONNX engine is then compared with the manifest from the
bytes that were hashed (:mod:`runtime.bundle_checks`: no external data, input shape, label count, logits vs
probabilities). Anything else is refused with a :class:`~runtime.errors.BundleError` that says why and what to do.
Engines are opened from :meth:`Bundle.read_engine`: read once, hashed, and those same bytes handed to the backend.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .bundle_files import read_regular, read_verified, safe_file
from .errors import BundleError
from .input_spec import InputSpec
from .manifest_json import check_built_with, check_name, check_sha256, dump_manifest, is_int, loads_strict, need

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
FORMATS = ("onnx", "trt")
PRECISIONS = ("fp32", "fp16", "int8")
ROLES = ("classifier", "inpainter", "occlusion_estimator", "classifier_headset")
PIPELINES = ("direct", "inpaint", "auto")
OUTPUT_KINDS = ("logits", "probabilities", "image")
#: Top-level manifest keys of the schema; any other top-level object with a ``file`` is an attached file.
SCHEMA_KEYS = ("schema_version", "name", "labels", "input", "engines", "pipelines", "provenance", "created")


@dataclass(frozen=True)
class EngineSpec:
    """One engine file of a bundle."""

    name: str
    file: str
    format: str
    precision: str
    role: str
    sha256: str
    output: str = "logits"
    built_with: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "file": self.file,
            "format": self.format,
            "precision": self.precision,
            "role": self.role,
            "output": self.output,
            "sha256": self.sha256,
            "built_with": dict(self.built_with),
        }
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    name: str
    labels: tuple[str, ...]
    input: InputSpec
    engines: dict[str, EngineSpec]
    pipelines: tuple[str, ...]
    provenance: dict[str, Any]
    manifest: dict[str, Any]

    def engine_path(self, name: str) -> Path:
        """Absolute path of engine ``name``'s file."""
        return self.path / self.engines[name].file

    def read_engine(self, name: str) -> bytes:
        """Engine ``name``'s bytes, read once and checked against the manifest's sha256: hand these to the backend
        (never re-open the file by path, it may have changed since).

        Raises:
            BundleError: The file escapes the bundle, is missing or not a regular file, or fails its sha256.
        """
        e = self.engines[name]
        return read_verified(self.path, e.file, e.sha256, f"engine {name!r}", str(self.path / MANIFEST))

    def licence_files(self) -> list[str]:
        """Files named by ``provenance.licence_file`` (a name or a list), relative to the bundle folder."""
        value = self.provenance.get("licence_file", [])
        return [value] if isinstance(value, str) else list(value)

    def find_engines(self, role: str, *, format: str | None = None, precision: str | None = None) -> list[EngineSpec]:
        """Engines of a role, optionally filtered by format and precision (in manifest order)."""
        return [
            e
            for e in self.engines.values()
            if e.role == role
            and (format is None or e.format == format)
            and (precision is None or e.precision == precision)
        ]


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _check_file(root: Path, entry: Mapping[str, Any], what: str, where: str, verify: bool) -> bytes | None:
    """Refuse a listed file that escapes the bundle, is missing, or (``verify``) fails its sha256; its bytes."""
    if verify:
        return read_verified(root, entry["file"], entry["sha256"], what, where)
    full = safe_file(root, entry["file"], where)
    if not full.is_file():
        raise BundleError(
            f"bundle {root} is incomplete: {what} file {entry['file']!r} is missing; "
            "copy the whole bundle folder, or re-export it"
        )
    return None


def _check_attachments(manifest: Mapping[str, Any], root: Path, where: str, verify: bool) -> None:
    """Top-level objects with ``file`` (see :func:`attach_file`) must have a sha256, and are checked like engines."""
    for key, entry in manifest.items():
        if key in SCHEMA_KEYS or not isinstance(entry, dict) or "file" not in entry:
            continue
        w = f"{where}, {key!r}"
        check_name(key, w, "an attached file's key")
        need(
            "sha256" in entry,
            w,
            f"attached file {entry['file']!r} has no 'sha256'; every file a bundle lists "
            "is verified — attach it with runtime.bundle.attach_file, or remove the entry"[:400],
        )
        checked = {**entry, "sha256": check_sha256(entry["sha256"], w)}
        _check_file(root, checked, f"attached {key!r}", w, verify)


def _check_licences(provenance: Mapping[str, Any], root: Path, where: str) -> None:
    """``provenance.licence_file`` (a name or a list) names files that must be in the bundle."""
    value = provenance.get("licence_file")
    if value is None:
        return
    names = [value] if isinstance(value, str) else value
    need(
        isinstance(names, list) and all(isinstance(n, str) for n in names),
        where,
        "'provenance.licence_file' must be a file name or a list of file names",
    )
    for name in names:
        full = safe_file(root, name, f"{where}, provenance.licence_file")
        if not full.is_file():
            raise BundleError(
                f"bundle {root} is incomplete: its licence file {name!r} (provenance.licence_file) is "
                "missing; the weights may not be shared without it — copy the whole bundle folder"
            )


def _parse_engines(
    d: Any, root: Path, where: str, verify: bool, labels: list[str], spec: InputSpec
) -> dict[str, EngineSpec]:
    from .bundle_checks import check_onnx_engine
    from .onnx_info import read_onnx_info

    need(isinstance(d, dict) and d, where, "'engines' must be a non-empty object of name -> engine")
    engines: dict[str, EngineSpec] = {}
    for name, e in d.items():
        check_name(name, where, "an engine name")
        w = f"{where}, engine {name!r}"
        need(isinstance(e, dict), w, "must be an object")
        for key in ("file", "format", "precision", "role", "sha256"):
            need(key in e, w, f"is missing '{key}'")
        for key in ("format", "precision", "role"):
            need(isinstance(e[key], str), w, f"'{key}' must be a string, got {e[key]!r}"[:300])
        need(e["format"] in FORMATS, w, f"'format' must be one of {FORMATS}, got {e['format']!r}")
        need(e["precision"] in PRECISIONS, w, f"'precision' must be one of {PRECISIONS}, got {e['precision']!r}")
        need(e["role"] in ROLES, w, f"'role' must be one of {ROLES}, got {e['role']!r}")
        output = e.get("output", "logits")
        need(
            isinstance(output, str) and output in OUTPUT_KINDS,
            w,
            f"'output' must be one of {OUTPUT_KINDS}, got {output!r}"[:300],
        )
        sha = check_sha256(e["sha256"], w)
        built_with = check_built_with(e.get("built_with", {}), w)
        known = {"file", "format", "precision", "role", "output", "sha256", "built_with"}
        engines[name] = EngineSpec(
            name,
            e["file"],
            e["format"],
            e["precision"],
            e["role"],
            sha,
            output,
            built_with,
            {k: v for k, v in e.items() if k not in known},
        )
        data = _check_file(root, {**e, "sha256": sha}, f"engine {name!r}", w, verify)
        if data is not None and e["format"] == "onnx":
            check_onnx_engine(
                engines[name], read_onnx_info(data, f"engine {name!r} ({e['file']})"), labels, spec, where
            )
    return engines


def parse_manifest(manifest: Mapping[str, Any], root: Path, *, verify: bool = True) -> Bundle:
    """Validate a manifest dict against the schema and the files in ``root`` (``verify``: sha256 and models)."""
    where = str(root / MANIFEST)
    need(isinstance(manifest, dict), where, "the manifest must be a JSON object")
    version = manifest.get("schema_version")
    if not is_int(version) or version != SCHEMA_VERSION:
        raise BundleError(
            f"bundle {root} has schema_version {version!r}, this ofer reads version {SCHEMA_VERSION} "
            f"(an integer); upgrade ofer (pip install -U ofer) or re-export the bundle with this version"[:400]
        )
    name = manifest.get("name", root.name)
    check_name(name, where, "'name'")
    labels = manifest.get("labels")
    need(isinstance(labels, list) and len(labels) >= 2, where, "'labels' must be a list of at least 2 names")
    for label in labels:
        check_name(label, where, "a label in 'labels'")
    need(len(set(labels)) == len(labels), where, "'labels' has duplicate names")
    spec = InputSpec.from_json(manifest.get("input"), where)
    engines = _parse_engines(manifest.get("engines"), root, where, verify, labels, spec)
    pipelines = manifest.get("pipelines", ["direct"])
    need(
        isinstance(pipelines, list) and pipelines and all(isinstance(p, str) and p in PIPELINES for p in pipelines),
        where,
        f"'pipelines' must be a non-empty list drawn from {PIPELINES}, got {pipelines!r}"[:300],
    )
    need(any(e.role == "classifier" for e in engines.values()), where, "the bundle has no classifier engine")
    if "inpaint" in pipelines or "auto" in pipelines:
        need(
            any(e.role == "inpainter" for e in engines.values()),
            where,
            "'pipelines' lists inpaint/auto but there is no inpainter engine",
        )
    provenance = manifest.get("provenance", {})
    need(isinstance(provenance, dict), where, "'provenance' must be an object")
    _check_attachments(manifest, root, where, verify)
    _check_licences(provenance, root, where)
    return Bundle(root, name, tuple(labels), spec, engines, tuple(pipelines), dict(provenance), dict(manifest))


def load_bundle(path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Load and verify a bundle folder (or its ``manifest.json``).

    Args:
        path: The bundle folder or its manifest.
        verify: Check every listed file's sha256 and each ONNX engine against the manifest (``False``: only that
            the files exist, e.g. to inspect a damaged bundle).

    Raises:
        BundleError: What is wrong and how to fix it (never another exception for a bad bundle).
    """
    root = Path(path)
    try:
        if root.name == MANIFEST and root.is_file():
            root = root.parent
        exists, is_dir = root.exists(), root.is_dir()
    except (OSError, ValueError) as exc:  # ValueError: NUL in the path
        raise BundleError(f"cannot open bundle {str(root)[:200]!r}: {exc}") from None
    if not exists:
        raise BundleError(
            f"bundle not found: {root} does not exist; pass the folder that holds manifest.json "
            "(or omit the bundle to use the default one)"
        )
    if not is_dir:
        raise BundleError(
            f"{root} is a file, not a bundle folder; a bundle is a folder with manifest.json and "
            "engine files (create one with `ofer export`)"
        )
    mpath = safe_file(root, MANIFEST, str(root / MANIFEST))
    if not mpath.exists():
        raise BundleError(f"{root} is not a bundle: it has no {MANIFEST}; create one with `ofer export`")
    manifest = loads_strict(read_regular(mpath, "manifest", root), str(mpath))
    return parse_manifest(manifest, root, verify=verify)


def _tool_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for mod in ("onnx", "onnxruntime", "torch", "numpy"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # not installed: nothing to record
            continue
    return versions


def _engine_entry(root: Path, e: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    src = Path(e["path"])
    if not src.is_file():
        raise BundleError(f"cannot add engine {e.get('name')!r}: source file {src} does not exist")
    file = e.get("file", src.name)
    dest = safe_file(root, file, f"engine {e.get('name')!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    entry = {
        "file": file,
        "format": e.get("format", "onnx"),
        "precision": e.get("precision", "fp32"),
        "role": e.get("role", "classifier"),
        "output": e.get("output", "logits"),
        "sha256": sha256_file(dest),
        "built_with": dict(e.get("built_with") or _tool_versions()),
    }
    entry.update({k: v for k, v in e.items() if k not in {"name", "path", *entry}})
    return str(e["name"]), entry


def write_bundle(
    folder: str | os.PathLike[str],
    *,
    labels: Iterable[str],
    input_spec: Mapping[str, Any] | InputSpec,
    engines: Iterable[Mapping[str, Any]],
    pipelines: Iterable[str] = ("direct",),
    provenance: Mapping[str, Any] | None = None,
    name: str | None = None,
    files: Iterable[str | os.PathLike[str]] = (),
    force: bool = False,
) -> Bundle:
    """Write a bundle folder and return it loaded and verified.

    Args:
        folder: Destination folder. Refused if it exists and is not empty, unless ``force``.
        labels: Class names in the classifier's output order.
        input_spec: The :class:`InputSpec` or its dict form (see the module docstring).
        engines: Dicts with ``name``, ``path`` (source file), ``format``, ``precision``, ``role`` and optionally
            ``file`` (name inside the bundle), ``output`` and ``built_with``; any other keys are kept.
        pipelines: Pipelines the bundle supports.
        provenance: Method, data, metrics, licence and source of the weights.
        name: Bundle name (defaults to the folder name).
        files: Other files copied into the bundle folder under their own names, e.g. the licence texts that
            ``provenance.licence_file`` names (loading refuses a bundle whose licence file is missing).
        force: Replace an existing non-empty folder.
    """
    dest = Path(folder)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise BundleError(
            f"{dest} already exists and is not empty; choose another folder or pass force=True (--force) to replace it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        spec = input_spec.to_json() if isinstance(input_spec, InputSpec) else dict(input_spec)
        entries = dict(_engine_entry(tmp, e) for e in engines)
        for extra in files:
            src = Path(extra)
            if not src.is_file():
                raise BundleError(f"cannot add {src} to the bundle: it is not a file")
            shutil.copyfile(src, safe_file(tmp, src.name, f"file {src.name!r}"))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "name": name or dest.name,
            "labels": list(labels),
            "input": spec,
            "engines": entries,
            "pipelines": list(pipelines),
            "provenance": dict(provenance or {}),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        parse_manifest(manifest, tmp)  # validate before anything replaces the destination
        (tmp / MANIFEST).write_text(dump_manifest(manifest), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a bundle is meant to be shared
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            if old.exists():
                shutil.rmtree(old)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old)
        else:
            tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load_bundle(dest)


def add_engines(folder: str | os.PathLike[str], engines: Iterable[Mapping[str, Any]], *, force: bool = False) -> Bundle:
    """Add engines (e.g. TensorRT engines built on the target) to an existing bundle, keeping the rest.

    An engine whose name already exists is refused unless ``force``.
    """
    bundle = load_bundle(folder)
    manifest = dict(bundle.manifest)
    new = dict(manifest["engines"])
    for e in engines:
        if e["name"] in new and not force:
            raise BundleError(
                f"bundle {bundle.path} already has an engine named {e['name']!r}; pass force=True "
                "(--force) to replace it"
            )
        name, entry = _engine_entry(bundle.path, e)
        new[name] = entry
    manifest["engines"] = new
    return _replace_manifest(bundle.path, manifest)


def annotate_engine(folder: str | os.PathLike[str], name: str, info: Mapping[str, Any]) -> Bundle:
    """Add or replace informational fields of one engine's entry (e.g. ``measured``, see :mod:`runtime.routing`).

    Raises:
        BundleError: no such engine, or ``info`` names a field of the schema (file, format, sha256, ...).
    """
    bundle = load_bundle(folder)
    manifest = dict(bundle.manifest)
    if name not in manifest["engines"]:
        raise BundleError(f"bundle {bundle.path} has no engine {name!r} (it has {sorted(manifest['engines'])})")
    schema = {"file", "format", "precision", "role", "output", "sha256", "built_with"} & set(info)
    if schema:
        raise BundleError(f"annotate_engine cannot change schema fields {sorted(schema)}; re-add the engine")
    manifest["engines"] = {**manifest["engines"], name: {**manifest["engines"][name], **dict(info)}}
    return _replace_manifest(bundle.path, manifest)


def attach_file(
    folder: str | os.PathLike[str], src: str | os.PathLike[str], key: str, info: Mapping[str, Any] | None = None
) -> Bundle:
    """Copy a non-engine file (e.g. a TensorRT calibration cache) into a bundle and record it, with its sha256,
    under a top-level manifest key."""
    bundle = load_bundle(folder)
    src = Path(src)
    dest = safe_file(bundle.path, src.name, f"attached file {key!r}")
    shutil.copyfile(src, dest)
    manifest = dict(bundle.manifest)
    manifest[key] = {"file": src.name, "sha256": sha256_file(dest), **dict(info or {})}
    return _replace_manifest(bundle.path, manifest)


def _replace_manifest(root: Path, manifest: dict[str, Any]) -> Bundle:
    """Validate a changed manifest, then swap it in atomically."""
    parse_manifest(manifest, root)
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(dump_manifest(manifest), encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
    return load_bundle(root)
