"""The calibration settings of one INT8 export, checked once and passed whole (``ofer export``'s "calibration" group).

:class:`CalibrationConfig` says where calibration and held-out faces come from and how many, how activation ranges
are computed and which TensorRT version the native calibration cache names. ``ofer export`` builds it from its
flags; :func:`export.bundle_writer.export_bundle` hands it to :func:`calibration.sets.calibration_set` and
:func:`calibration.sets.heldout_set`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ConfigError

#: Activation-range methods (:func:`calibration.ranges.compute_ranges`).
CALIBRATION_METHODS: tuple[str, ...] = ("entropy", "minmax", "percentile")
#: How faces are taken from images and videos: detected and cropped, or each image whole (ready face crops).
FACE_MODES: tuple[str, ...] = ("detect", "whole")
#: TensorRT version written into the cache header unless told otherwise (JetPack 6.x ships 10.3).
DEFAULT_TRT_VERSION = "10.3.0"
DEFAULT_CACHE = Path(os.environ.get("OFER_CACHE", Path.home() / ".cache" / "ofer")) / "calibration"


def check_method(method: str) -> str:
    """Validate a calibration method name (``entropy``, ``minmax``, ``percentile``); returns it lower-cased.

    Raises:
        ConfigError: an unknown name, naming the valid ones.
    """
    m = str(method).strip().lower()
    if m not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    return m


@dataclass(frozen=True)
class CalibrationConfig:
    """Calibration and held-out faces for INT8 and the agreement gate.

    Attributes:
        source: Calibration face source (see :mod:`calibration.sources`), from the model's own domain; ``None``:
            ``procedural`` for a model trained on procedural faces (checked by
            :func:`export.int8.check_calibration_domain`).
        method: ``minmax`` (default), ``entropy`` or ``percentile`` (no TensorRT cache for percentile).
        count: Calibration samples.
        heldout: Where the held-out faces come from (default: the part of ``source`` calibration does not use).
        heldout_count: Held-out faces (each under every held-out protocol).
        faces: ``detect`` or ``whole`` (images are face crops).
        seed: Seeds face choice, protocol assignment and occluders.
        note: Free text recorded with the calibration source (e.g. "research-use-only media").
        allow_domain_mismatch: Calibrate a model of real faces on procedural faces anyway.
        trt_version: TensorRT version named in the native calibration cache header (must match the device's).
        cache_dir: Calibration-set cache folder (``None``: no cache).

    Raises:
        ConfigError: an unknown method or face mode, or a count below 1.
    """

    source: str | None = None
    method: str = "minmax"
    count: int = 256
    heldout: str | None = None
    heldout_count: int = 64
    faces: str = "detect"
    seed: int = 0
    note: str | None = None
    allow_domain_mismatch: bool = False
    trt_version: str = DEFAULT_TRT_VERSION
    cache_dir: Path | None = DEFAULT_CACHE

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_method(self.method))
        if self.faces not in FACE_MODES:
            raise ConfigError(f"faces must be one of {', '.join(FACE_MODES)}, got {self.faces!r}")
        for name in ("count", "heldout_count"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"calibration {name} must be at least 1, got {getattr(self, name)}")
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def with_source(self, source: str) -> CalibrationConfig:
        """The same settings with another calibration source (e.g. the one the domain check settled on)."""
        return dataclasses.replace(self, source=source)
