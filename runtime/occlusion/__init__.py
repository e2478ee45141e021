"""Occlusion synthesis shared by training, calibration, evaluation and the runtime (numpy + OpenCV only).

Example:
    >>> from runtime.occlusion import apply_occlusion
    >>> occ = apply_occlusion(face_crop, "upper_half@noise", seed=0)
    >>> occ.image, occ.mask    # occluded copy, uint8 0/1 mask of what was covered
    >>> occ = draw_occluder(frame, "headset", detection.keypoints, seed=0)   # realistic, from keypoints

The assumed aligned-crop geometry is documented in :mod:`runtime.occlusion.geometry`; spec syntax in
:mod:`runtime.occlusion.protocols`.
"""

from __future__ import annotations

from runtime.occlusion.apply import Occluded, apply_batch, apply_occlusion, stratified_assignment
from runtime.occlusion.protocols import (
    CALIBRATION_MIX,
    EVAL_PROTOCOLS,
    FILLS,
    REALISTIC_KINDS,
    REALISTIC_PROTOCOLS,
    Protocol,
    list_protocols,
    parse_protocol,
)
from runtime.occlusion.realistic import canonical_keypoints, draw_occluder, occlude_faces

__all__ = [
    "CALIBRATION_MIX",
    "EVAL_PROTOCOLS",
    "FILLS",
    "REALISTIC_KINDS",
    "REALISTIC_PROTOCOLS",
    "Occluded",
    "Protocol",
    "apply_batch",
    "apply_occlusion",
    "canonical_keypoints",
    "draw_occluder",
    "list_protocols",
    "occlude_faces",
    "parse_protocol",
    "stratified_assignment",
]
