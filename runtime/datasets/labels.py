"""Label sets of the facial-expression datasets and mappings between them.

Every dataset stores labels as indices into a tuple of canonical class names. The canonical vocabulary is
``angry, disgust, fear, happy, sad, surprise, neutral, contempt``; the names datasets use for the same
classes (``anger``, ``happiness``, ``sadness``, ``Surprised`` ...) are aliases of these.

Label sets (index = position in the tuple):

* ``FER7``: FER2013 ``emotion`` column order.
* ``FERPLUS8``: FER+ vote-column order (``neutral, happiness, surprise, sadness, anger, disgust, fear,
  contempt``) written with canonical names.
* ``AFFECTNET8``: AffectNet ``expression`` codes 0..7.
* ``RAFDB7``: RAF-DB basic labels 1..7 (index = label - 1).
* ``CKPLUS8``: CK+ emotion codes 0..7 (0 = neutral).

Mapping policy (:func:`remap`): a class present in both sets maps exactly, whatever its position. A class
missing from the target set (``contempt`` when going from 8 to 7 classes) is dropped by default
(``unmapped="drop"``: its samples are left out); ``unmapped="error"`` refuses with a ConfigError, and
``unmapped="<class name>"`` sends it to that target class (e.g. ``"disgust"``).
"""

from __future__ import annotations

from typing import Sequence

from runtime.errors import ConfigError

CANONICAL: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")

FER7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS8: tuple[str, ...] = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
AFFECTNET8: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
RAFDB7: tuple[str, ...] = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
CKPLUS8: tuple[str, ...] = ("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "fer7": FER7,
    "ferplus8": FERPLUS8,
    "affectnet8": AFFECTNET8,
    "rafdb7": RAFDB7,
    "ckplus8": CKPLUS8,
    "canonical8": CANONICAL,
}

ALIASES: dict[str, str] = {
    "anger": "angry",
    "angered": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "happy_face": "happy",
    "sadness": "sad",
    "unhappy": "sad",
    "surprised": "surprise",
    "surprising": "surprise",
    "neutrality": "neutral",
    "calm": "neutral",
    "contemptuous": "contempt",
}


def canonical_name(name: str) -> str:
    """Canonical class name of ``name`` (case and surrounding spaces ignored).

    Raises:
        ConfigError: ``name`` is neither a canonical name nor a known alias.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key in CANONICAL:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise ConfigError(
        f"unknown expression class {name!r}; known names: {', '.join(CANONICAL)} "
        f"(aliases: {', '.join(sorted(ALIASES))})"
    )


def canonical_names(names: Sequence[str]) -> tuple[str, ...]:
    """Canonical names of a label set; refuses unknown and duplicate classes with one ConfigError."""
    unknown = []
    out = []
    for name in names:
        try:
            out.append(canonical_name(name))
        except ConfigError:
            unknown.append(str(name))
    if unknown:
        raise ConfigError(
            f"unknown expression class name(s) {unknown}; known names: {', '.join(CANONICAL)} "
            f"(aliases: {', '.join(sorted(ALIASES))}); rename the classes or pass an explicit label set"
        )
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ConfigError(f"label set {tuple(names)} names the class(es) {dupes} more than once")
    return tuple(out)


def label_set(spec: str | Sequence[str]) -> tuple[str, ...]:
    """A label set from its name (``"fer7"``, ``"ferplus8"``, ...) or from a sequence of class names."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in LABEL_SETS:
            raise ConfigError(
                f"unknown label set {spec!r}; use one of {', '.join(LABEL_SETS)} or a sequence of class names"
            )
        return LABEL_SETS[key]
    return canonical_names(spec)


def remap(labels_from: str | Sequence[str], labels_to: str | Sequence[str], unmapped: str = "drop") -> tuple[int, ...]:
    """Index mapping from one label set to another.

    Args:
        labels_from: Source label set (name or class names).
        labels_to: Target label set (name or class names).
        unmapped: What happens to a source class the target lacks: ``"drop"`` (default; mapped to -1,
            the sample is left out), ``"error"`` (ConfigError), or a target class name to send it to.

    Returns:
        ``mapping`` with ``mapping[i]`` = target index of source class ``i``, or -1 for a dropped class.

    Raises:
        ConfigError: unknown class names, ``unmapped="error"`` with a class missing from the target, an
            ``unmapped`` class that is not in the target, or a mapping that would drop every class.
    """
    src = label_set(labels_from)
    dst = label_set(labels_to)
    missing = [name for name in src if name not in dst]
    fallback = -1
    if unmapped == "error":
        if missing:
            raise ConfigError(
                f"cannot map label set {src} onto {dst}: {missing} not in the target; "
                f"pass unmapped='drop' to leave those samples out or unmapped='<class>' to merge them"
            )
    elif unmapped != "drop":
        target = canonical_name(unmapped)
        if target not in dst:
            raise ConfigError(f"unmapped={unmapped!r} is not a class of the target label set {dst}")
        fallback = dst.index(target)
    mapping = tuple(dst.index(name) if name in dst else fallback for name in src)
    if all(m < 0 for m in mapping):
        raise ConfigError(f"label sets {src} and {dst} share no class; nothing can be mapped")
    return mapping
