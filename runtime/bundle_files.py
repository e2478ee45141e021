"""Files a bundle names: kept inside the bundle folder, regular, read once and checked against their sha256."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from .errors import BundleError
from .manifest_json import MAX_NAME_BYTES, need

MAX_PATH_CHARS = 1024


def safe_file(root: Path, rel: Any, where: str) -> Path:
    """Resolve a file name of the manifest and refuse anything that escapes the bundle folder."""
    need(isinstance(rel, str) and rel.strip() != "", where, "a 'file' must be a non-empty string")
    need(
        len(rel) <= MAX_PATH_CHARS,
        where,
        f"file name {rel[:40]!r}... is {len(rel)} characters, at most {MAX_PATH_CHARS}",
    )
    need(
        not any(ord(c) < 32 or ord(c) == 127 for c in rel),
        where,
        f"file name {rel[:60]!r} contains a control character (NUL, newline, ...)",
    )
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or rel.startswith(("/", "\\")):
        raise BundleError(
            f"unsafe bundle ({where}): engine file {rel!r} points outside the bundle folder; "
            "a bundle may only name files inside its own folder — do not open bundles from untrusted "
            "sources, and re-export it with `ofer export`"
        )
    for part in p.parts:
        need(
            len(part.encode("utf-8", errors="replace")) <= MAX_NAME_BYTES,
            where,
            f"file name component {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes",
        )
    full = root / p
    real_root = root.resolve()
    real = full.resolve()
    if real_root not in real.parents:
        raise BundleError(
            f"unsafe bundle ({where}): file {rel!r} is a link to {real}, outside the bundle "
            "folder; replace the link with the real file"
        )
    return full


def read_regular(full: Path, what: str, root: Path) -> bytes:
    """A regular file's bytes (a missing file, a folder, a FIFO or an unreadable file is a BundleError)."""
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise BundleError(
            f"bundle {root} is incomplete: {what} file {full.name!r} is missing; copy the whole bundle "
            "folder, or re-export it"
        ) from None
    except OSError as exc:
        raise BundleError(f"bundle {root}: cannot read {what} file {full.name!r} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(
            f"bundle {root}: {what} file {full.name!r} is not a regular file; replace it with the "
            "file from the original bundle or re-export"
        )
    try:
        with open(full, "rb") as f:
            return f.read()
    except OSError as exc:
        raise BundleError(f"bundle {root}: cannot read {what} file {full.name!r} ({exc.strerror})") from None


def read_verified(root: Path, rel: str, sha256: str, what: str, where: str) -> bytes:
    """Read a bundle file once and check its sha256; return exactly the bytes that were hashed.

    Raises:
        BundleError: The file escapes the bundle, is missing or not a regular file, or its sha256 differs.
    """
    data = read_regular(safe_file(root, rel, where), what, root)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise BundleError(
            f"bundle {root} failed its integrity check: {rel!r} has sha256 {digest[:12]}..., the "
            f"manifest says {sha256[:12]}...; the file was modified or corrupted — restore it from "
            "the original bundle or re-export"
        )
    return data
