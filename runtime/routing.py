"""Which route ``auto`` takes for a face: its occlusion kind, and the routes a bundle measured best per kind.

Kinds, from the occlusion mask of a face crop (1 = covered):

* ``upper``: at least ``HEADSET_UPPER_THRESHOLD`` of the upper half of the face region is covered (headset,
  sunglasses, an eyes band);
* ``lower``: otherwise, at least ``LOWER_THRESHOLD`` of the lower half is covered (mask, hand, cup, phone);
* ``other``: otherwise, the covered fraction of the face region reaches the pipeline's threshold;
* ``clean``: the rest (always the direct classifier).

A bundle's extra engines (the ``inpainter``, the ``classifier_headset`` student) may record what they measured on
held-out people, per kind, beside the direct classifier on the same faces (engine field ``measured``, written by
``ofer export`` from the training run's metrics)::

    "measured": {"upper": {"agreement": 0.62, "direct": 0.50}, "lower": {"agreement": 0.41, "direct": 0.47},
                 "protocols": {...}, "on": "held-out people: agreement with the teacher's clean answer"}

For each kind ``auto`` then takes the route with the largest measured gain over ``direct`` (``direct`` when none
gains more than the measurement resolves: with ``people`` recorded, one person's share, 1/people of the
person-weighted agreement, since a smaller gain is one person's answer flipping; else any gain). An engine
without a record keeps its fixed claim: the headset student takes ``upper`` faces, an inpainter
every occluded face (the covered-fraction threshold rule).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .errors import BundleError

#: Covered fraction of the upper half of the face region from which a face is of kind ``upper``.
HEADSET_UPPER_THRESHOLD = 0.5
#: Covered fraction of the lower half of the face region from which a face is of kind ``lower``.
LOWER_THRESHOLD = 0.4
KINDS = ("upper", "lower", "other")
ROUTE_CODES = {"direct": 0, "inpaint": 1, "headset": 2}
#: The occlusion protocols (``runtime.occlusion``) whose measurements stand for each kind.
KIND_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "upper": ("headset", "sunglasses", "upper_half", "eyes"),
    "lower": ("mask", "hand", "cup", "phone", "lower_half", "mouth"),
}


def protocol_kind(protocol: str) -> str:
    """The kind a protocol's occluder makes (``other`` for boxes, textures, ...)."""
    name = protocol.split(":")[0]
    return next((k for k, ps in KIND_PROTOCOLS.items() if name in ps), "other")


def _half_fractions(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .occlusion import geometry as geo

    m = np.asarray(masks)
    h, w = m.shape[1:3]
    x0, y0, x1, y1 = geo.box_to_pixels(geo.FACE_BOX, h, w)
    mid = y0 + max(1, (y1 - y0) // 2)
    n = len(m)
    upper = m[:, y0:mid, x0:x1].reshape(n, -1).mean(axis=1) if n else np.zeros(0)
    lower = m[:, mid:y1, x0:x1].reshape(n, -1).mean(axis=1) if n else np.zeros(0)
    return upper.astype(np.float32), lower.astype(np.float32)


def upper_face_fraction(masks: np.ndarray) -> np.ndarray:
    """Covered fraction of the upper half of the face region of ``(N, H, W)`` 0/1 masks (what a headset hides)."""
    return _half_fractions(masks)[0]


def face_kinds(masks: np.ndarray, fraction: np.ndarray, threshold: float) -> np.ndarray:
    """Per face the index into ``("clean",) + KINDS`` (0 clean, 1 upper, 2 lower, 3 other)."""
    upper, lower = _half_fractions(masks)
    kinds = np.where(np.asarray(fraction) >= threshold, 3, 0).astype(np.int8)
    kinds[lower >= LOWER_THRESHOLD] = 2
    kinds[upper >= HEADSET_UPPER_THRESHOLD] = 1
    return kinds


def measured_record(
    per_protocol: Mapping[str, Mapping[str, float]], on: str, people: int | None = None
) -> dict[str, Any]:
    """The engine field ``measured`` from ``{protocol: {"agreement": route, "direct": direct}}`` (mean per kind);
    ``people``: how many held-out people the agreements weigh equally (sets the smallest gain that counts)."""
    rec: dict[str, Any] = {} if not people else {"people": int(people)}
    for kind in KINDS:
        rows = [v for p, v in per_protocol.items() if p != "clean" and protocol_kind(p) == kind]
        if rows:
            rec[kind] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("agreement", "direct")}
    rec["protocols"] = {p: {k: round(float(v[k]), 4) for k in ("agreement", "direct")} for p, v in per_protocol.items()}
    rec["on"] = on
    return rec


def recorded(specs: list[Any]) -> Any:
    """The first of a role's engines (any precision) that carries a ``measured`` record, else the first, else None."""
    return next((e for e in specs if "measured" in e.extra), specs[0] if specs else None)


def bundle_routes(engines: Mapping[str, Any]) -> dict[str, str] | None:
    """Route per kind from the measured records of ``{"inpaint": EngineSpec|None, "headset": EngineSpec|None}``
    (pick each with :func:`recorded`).

    Returns None when no engine has a record (``auto`` then uses the fixed claims, see the module doc).

    Raises:
        BundleError: a malformed ``measured`` record.
    """
    records: dict[str, Mapping[str, Any]] = {}
    for route, spec in engines.items():
        rec = spec.extra.get("measured") if spec is not None else None
        if rec is None:
            continue
        ok = isinstance(rec, dict) and all(
            isinstance(rec.get(k), dict)
            and all(isinstance(rec[k].get(f), (int, float)) for f in ("agreement", "direct"))
            for k in KINDS
            if k in rec
        )
        if not ok:
            raise BundleError(
                f"engine {spec.name!r}: 'measured' must map kinds {KINDS} to {{agreement, direct}} "
                f"numbers; re-export the bundle with `ofer export`"
            )
        records[route] = rec
    if not records:
        return None
    routes: dict[str, str] = {}
    for kind in KINDS:
        best, gain = "direct", 0.0
        for route, rec in records.items():
            m = rec.get(kind)
            floor = 1.0 / rec["people"] if isinstance(rec.get("people"), int) and rec["people"] > 0 else 0.0
            if m is not None and float(m["agreement"]) - float(m["direct"]) > max(gain, floor):
                best, gain = route, float(m["agreement"]) - float(m["direct"])
        routes[kind] = best
    if engines.get("headset") is not None and "headset" not in records:
        routes["upper"] = "headset"  # an unmeasured headset student keeps its fixed claim
    if engines.get("inpaint") is not None and "inpaint" not in records:
        routes.update({k: "inpaint" for k, r in routes.items() if r == "direct"})
    return routes
