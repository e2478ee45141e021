"""Occlusion synthesis shared by training, calibration, evaluation and the runtime (numpy + OpenCV only).

Example:
    >>> from runtime.occlusion import apply_occlusion
    >>> occ = apply_occlusion(face_crop, "upper_half@noise", seed=0)
    >>> occ.image, occ.mask    # occluded copy, uint8 0/1 mask of what was covered

The assumed aligned-crop geometry is documented in :mod:`runtime.occlusion.geometry`; spec syntax in
:mod:`runtime.occlusion.protocols`.
"""
from __future__ import annotations

from runtime.occlusion.apply import Occluded, apply_batch, apply_occlusion, stratified_assignment
from runtime.occlusion.protocols import (
    CALIBRATION_MIX,
    EVAL_PROTOCOLS,
    FILLS,
    Protocol,
    list_protocols,
    parse_protocol,
)

__all__ = [
    "CALIBRATION_MIX", "EVAL_PROTOCOLS", "FILLS", "Occluded", "Protocol", "apply_batch", "apply_occlusion",
    "list_protocols", "parse_protocol", "stratified_assignment",
]
