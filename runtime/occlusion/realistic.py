"""Realistic occluders placed from a face's keypoints: they follow the face's roll, scale and (roughly) yaw.

Kinds (:data:`REALISTIC_KINDS`): ``headset`` (VR visor wider than the face with straps), ``sunglasses``,
``mask`` (surgical or cloth), ``hand``, ``cup`` and ``phone``. Each is drawn in a face-aligned frame computed from
BlazeFace's six keypoints (see :mod:`runtime.occlusion.face_frame`) and warped into the image; shapes, colours,
gloss and textures vary with the seed, and the same seed gives the same pixels.

Example:
    >>> det = runtime.detection.create_detector("blazeface-full").detect(frame)[0]
    >>> occ = draw_occluder(frame, "headset", det.keypoints, seed=3)
    >>> occ.image, occ.mask          # occluded copy, uint8 0/1 mask of the covered pixels

The same kinds are occlusion protocols: ``apply_occlusion(crop, "headset", seed=3)`` draws on an aligned face crop
using :func:`canonical_keypoints` (or ``keypoints=``). Masks are exact: a pixel is covered where the occluder's
anti-aliased coverage is at least 0.5, and no other pixel changes.

Errors and degradation: bad images or keypoints (wrong shape, NaN, eyes closer than 4 px, eyes far outside the
image) raise :class:`~runtime.errors.InputError`; unknown kinds and bad seeds :class:`~runtime.errors.ConfigError`.
Keypoints partly outside the image are fine: the occluder is clipped at the frame edge. Implausible keypoint
geometry (mouth above the eyes, ears collapsed in profile) is clamped to a plausible face rather than rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runtime.errors import ConfigError, InputError
from runtime.occlusion.apply import Occluded, _check, _item_rngs
from runtime.occlusion.face_frame import canonical_keypoints
from runtime.occlusion.placed import check_kind, keypoints_from_box, render
from runtime.occlusion.protocols import REALISTIC_KINDS

__all__ = ["REALISTIC_KINDS", "canonical_keypoints", "draw_occluder", "occlude_faces"]

Box = Sequence[float]


def _seed(seed: object) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}.")
    return int(seed)


def _face_keypoints(keypoints: object, box: object) -> object:
    if keypoints is None:
        if box is None:
            raise InputError("give the face's keypoints (6, 2) or at least its box (x1, y1, x2, y2).")
        return keypoints_from_box(box)
    return keypoints


def draw_occluder(
    image: np.ndarray, kind: str, keypoints: np.ndarray | None, *, box: Box | None = None, seed: int = 0
) -> Occluded:
    """Draws one realistic occluder on the face given by ``keypoints``.

    Args:
        image: (H, W) gray or (H, W, 3) BGR uint8, a whole frame or a crop (not modified).
        kind: one of :data:`REALISTIC_KINDS`.
        keypoints: (6, 2) float image pixels in BlazeFace order (right eye, left eye, nose tip, mouth centre,
            right ear tragion, left ear tragion; the person's right/left). ``None``: estimated from ``box``.
        box: the face box ``(x1, y1, x2, y2)``; used only when ``keypoints`` is ``None``.
        seed: non-negative int; equals ``apply_occlusion(image, kind, seed=seed, keypoints=keypoints)``.

    Returns:
        ``Occluded(image, mask)``: a copy with the occluder drawn and the uint8 0/1 (H, W) mask of covered pixels.

    Raises:
        InputError: bad image, keypoints or box. ConfigError: unknown kind or bad seed.
    """
    kind = check_kind(kind)
    image = _check(image, batch=False)
    rng = _item_rngs(_seed(seed), 1)[0]
    out = image[..., None].copy() if image.ndim == 2 else image.copy()
    mask = np.zeros(image.shape[:2], bool)
    render(out, mask, kind, _face_keypoints(keypoints, box), rng)
    return Occluded(out[..., 0] if image.ndim == 2 else out, mask.astype(np.uint8))


def occlude_faces(
    image: np.ndarray, faces: Sequence[tuple[Box | None, np.ndarray | None]], kind: str, *, seed: int = 0
) -> Occluded:
    """Draws ``kind`` on every face of a frame; face ``i`` gets its own variant (deterministic in ``seed``).

    Args:
        image: (H, W) gray or (H, W, 3) BGR uint8 frame (not modified).
        faces: ``(box, keypoints)`` per face, e.g. ``[(d.box, d.keypoints) for d in detector.detect(frame)]``;
            either may be ``None`` but not both.
        kind: one of :data:`REALISTIC_KINDS`.
        seed: non-negative int.

    Returns:
        ``Occluded(image, mask)`` with the union of the faces' masks. Faces drawn later cover earlier ones.

    Raises:
        InputError: bad image, or a face whose keypoints/box are invalid (the message names its index).
        ConfigError: unknown kind or bad seed.
    """
    kind = check_kind(kind)
    image = _check(image, batch=False)
    out = image[..., None].copy() if image.ndim == 2 else image.copy()
    mask = np.zeros(image.shape[:2], bool)
    faces = list(faces)
    for i, (face, rng) in enumerate(zip(faces, _item_rngs(_seed(seed), len(faces)))):
        try:
            box, keypoints = face
        except (TypeError, ValueError):
            raise InputError(f"faces[{i}] must be a (box, keypoints) pair, got {face!r}.") from None
        try:
            render(out, mask, kind, _face_keypoints(keypoints, box), rng)
        except InputError as e:
            raise InputError(f"faces[{i}]: {e}") from None
    return Occluded(out[..., 0] if image.ndim == 2 else out, mask.astype(np.uint8))
