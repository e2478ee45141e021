"""Strict JSON for bundle manifests: one meaning per file, or a :class:`~runtime.errors.BundleError`.

Python's ``json`` accepts things that let two readers see two different manifests: a key given twice (the last one
wins here, the first in other parsers), ``NaN`` / ``Infinity`` (not JSON), numbers such as ``1e999`` that become
infinity, and nesting deep enough to raise ``RecursionError``. :func:`loads_strict` refuses all of them; a UTF-8
byte-order mark (written by some Windows editors) is accepted. :func:`dump_manifest` writes what it reads back.

The typed field checks shared by the manifest parser live here too: booleans are not numbers (``true == 1`` in
Python), names have no control characters and at most 255 bytes, a sha256 is 64 hex digits in any case.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

from .errors import BundleError

MAX_MANIFEST_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_NAME_BYTES = 255  # a label, engine or bundle name, or one component of a file path (UTF-8)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _Refused(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key!r} appears twice in one object; keep one")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number; write a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} overflows to infinity; write a finite number")
    return value


def _depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d > limit:
                raise _Refused(f"values are nested deeper than {limit} levels")
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))


def loads_strict(data: bytes, what: str) -> Any:
    """Parse manifest bytes strictly (see the module doc).

    Raises:
        BundleError: Too large, not UTF-8, not JSON, duplicate keys, NaN/Infinity, or nested too deep; the message
            names ``what`` and the problem.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"{what} is {len(data)} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES}); "
            "the bundle is corrupt — restore or re-export it"
        )
    try:
        text = data.decode("utf-8-sig")
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float)
        _depth(value, MAX_DEPTH)
    except _Refused as exc:
        raise BundleError(f"{what} is refused: {exc}") from None
    except RecursionError:
        raise BundleError(f"{what} is refused: values are nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(
            f"{what} is not valid JSON ({exc}); the bundle is corrupt — restore or re-export it"
        ) from None
    return value


def need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise BundleError(f"invalid bundle manifest ({where}): {what}")


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_name(value: Any, where: str, what: str) -> str:
    """A name (label, engine, bundle, attachment key): a non-empty string, no control characters, <= 255 bytes."""
    need(
        isinstance(value, str) and value.strip() != "", where, f"{what} must be a non-empty string, got {value!r}"[:300]
    )
    need(
        not any(ord(c) < 32 or ord(c) == 127 for c in value),
        where,
        f"{what} {value[:60]!r} contains a control character (NUL, newline, ...); rename it",
    )
    size = len(value.encode("utf-8", errors="replace"))
    need(size <= MAX_NAME_BYTES, where, f"{what} {value[:40]!r}... is {size} bytes long, at most {MAX_NAME_BYTES}")
    return value


def check_sha256(value: Any, where: str) -> str:
    """A sha256 as 64 hex digits (upper or lower case); returned in lower case."""
    need(
        isinstance(value, str) and _SHA256.fullmatch(value) is not None,
        where,
        f"'sha256' must be 64 hex digits, got {str(value)[:80]!r}",
    )
    return value.lower()


def check_built_with(value: Any, where: str) -> dict[str, Any]:
    """``built_with``: an object; its tool versions and TensorRT record fields, when present, are strings."""
    need(isinstance(value, dict), where, f"'built_with' must be an object of tool versions, got {value!r}"[:300])
    for key in (
        "onnx",
        "onnxruntime",
        "torch",
        "numpy",
        "tensorrt",
        "gpu",
        "compute_capability",
        "precision",
        "source_onnx",
        "source_onnx_sha256",
    ):
        if key in value:
            need(isinstance(value[key], str), where, f"'built_with.{key}' must be a string, got {value[key]!r}"[:300])
    return dict(value)


def finite(value: Any) -> Any:
    """``value`` with NaN/Infinity floats as ``None`` (not measured): JSON has no NaN and loading refuses it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dump_manifest(manifest: Mapping[str, Any]) -> str:
    """The manifest as the JSON text a bundle stores (no NaN/Infinity: those become ``null``)."""
    return json.dumps(finite(dict(manifest)), indent=2, allow_nan=False) + "\n"
