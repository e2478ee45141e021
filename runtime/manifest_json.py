"""Strict JSON for bundle manifests: one meaning per file, or a :class:`~runtime.errors.BundleError`.

Python's ``json`` accepts things that let two readers see two different manifests: a key given twice (the last one
wins here, the first in other parsers), ``NaN`` / ``Infinity`` (not JSON), numbers such as ``1e999`` that become
infinity, and nesting deep enough to raise ``RecursionError``. :func:`loads_strict` refuses all of them; a UTF-8
byte-order mark (written by some Windows editors) is accepted.
"""
from __future__ import annotations

import json
import math
from typing import Any

from .errors import BundleError

MAX_MANIFEST_BYTES = 16 << 20
MAX_DEPTH = 64


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
        raise BundleError(f"{what} is {len(data)} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES}); "
                          "the bundle is corrupt — restore or re-export it")
    try:
        text = data.decode("utf-8-sig")
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float)
        _depth(value, MAX_DEPTH)
    except _Refused as exc:
        raise BundleError(f"{what} is refused: {exc}") from None
    except RecursionError:
        raise BundleError(f"{what} is refused: values are nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(f"{what} is not valid JSON ({exc}); the bundle is corrupt — restore or re-export it") \
            from None
    return value
