"""Per-identity parameters (who the face is, incl. its neutral rest pose) and per-sample scene nuisances."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

_SKIN = np.array(
    [[70, 95, 140], [95, 130, 185], [120, 160, 215], [150, 185, 235], [45, 65, 100], [105, 150, 190]], np.float32
)
_HAIR = np.array(
    [[20, 20, 25], [30, 45, 70], [40, 80, 130], [90, 150, 200], [40, 60, 160], [150, 150, 155]], np.float32
)
_IRIS = np.array([[30, 50, 80], [60, 90, 110], [120, 100, 60], [50, 110, 80]], np.float32)


Color = tuple[float, float, float]


def _color(v: np.ndarray) -> Color:
    r = np.clip(v, 0, 255).tolist()
    return (float(r[0]), float(r[1]), float(r[2]))


@dataclass(frozen=True)
class Identity:
    """Shape, colours and rest pose of one person (all lengths are fractions of the crop)."""

    skin: Color
    hair: Color
    iris: Color
    lip: Color
    face_w: float  # half-width of the face oval
    face_h: float  # half-height of the upper face oval
    jaw_h: float  # half-height of the lower face oval
    jaw_square: float  # 2 = ellipse, larger = squarer jaw
    hairline: float  # y of the hair fringe
    long_hair: bool
    eye_dx: float  # half distance between eye centres
    eye_dy: float  # offset of the eye line from 0.38
    eye_w: float  # eye half-width
    eye_open: float  # rest opening (half-height of the upper lid above the centre)
    iris_r: float
    brow_h: float  # rest height of the brow above the eye centre
    brow_tilt: float  # rest slant (+ = inner ends higher)
    brow_thick: float
    brow_dark: float  # 0 = brow colour like skin, 1 = like hair
    nose_y: float
    nose_w: float
    mouth_dy: float
    mouth_w: float  # half-width of the mouth
    lip_up: float  # upper lip thickness
    lip_low: float  # lower lip thickness
    corner_rest: float  # rest lip-corner height (+ = lower, a resting frown)
    fold: float  # baseline nasolabial fold strength (age)
    glasses: bool

    @cached_property
    def row(self) -> np.ndarray:
        """All fields as one float64 vector (colours as three numbers, flags as 0/1; ~0.4 kB, cached on the
        instance); see :func:`identity_columns`."""
        out: list[float] = []
        for name in _FIELD_NAMES:
            v = getattr(self, name)
            out.extend(v) if isinstance(v, tuple) else out.append(float(v))
        return np.array(out)


_FIELD_NAMES = tuple(f.name for f in fields(Identity))
_COLORS = ("skin", "hair", "iris", "lip")


def identity_columns(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Stacked :attr:`Identity.row` (N, 40) -> one array per field: (N, 3) colours, (N,) the rest."""
    cols, j = {}, 0
    for name in _FIELD_NAMES:
        w = 3 if name in _COLORS else 1
        cols[name] = rows[:, j : j + w] if w == 3 else rows[:, j]
        j += w
    return cols


@dataclass(frozen=True)
class Scene:
    """Per-sample nuisances: pose, lighting, background, blur and sensor noise."""

    angle: float  # degrees
    scale: float
    shift: tuple[float, float]
    yaw: float  # -1..1, shifts inner features sideways
    gaze: tuple[float, float]
    light_dir: float  # radians
    light_amp: float
    brightness: float
    blur: float  # Gaussian sigma in pixels at 64 px
    noise: float  # sensor noise sigma (grey levels)
    bg_seed: int
    noise_seed: int

    @classmethod
    def from_values(cls, v: list[float]) -> Scene:
        """The scene from the 14 numbers of :func:`scene_values` (seeds last)."""
        return cls(
            angle=v[0],
            scale=v[1],
            shift=(v[2], v[3]),
            yaw=v[4],
            gaze=(v[5], v[6]),
            light_dir=v[7],
            light_amp=v[8],
            brightness=v[9],
            blur=v[10],
            noise=v[11],
            bg_seed=int(v[12]),
            noise_seed=int(v[13]),
        )


#: The scalar identity fields drawn after the colours, in draw order: (name, low, high); ``long_hair`` and
#: ``glasses`` are Bernoulli draws (uniform below ``high``).
_SHAPE = (
    ("face_w", 0.34, 0.43),
    ("face_h", 0.44, 0.5),
    ("jaw_h", 0.4, 0.47),
    ("jaw_square", 2.0, 3.2),
    ("hairline", 0.07, 0.19),
    ("long_hair", 0.0, 0.45),
    ("eye_dx", 0.165, 0.205),
    ("eye_dy", -0.02, 0.02),
    ("eye_w", 0.045, 0.062),
    ("eye_open", 0.017, 0.028),
    ("iris_r", 0.019, 0.025),
    ("brow_h", 0.075, 0.11),
    ("brow_tilt", -0.012, 0.012),
    ("brow_thick", 0.014, 0.03),
    ("brow_dark", 0.45, 1.0),
    ("nose_y", 0.55, 0.6),
    ("nose_w", 0.075, 0.11),
    ("mouth_dy", -0.015, 0.015),
    ("mouth_w", 0.115, 0.155),
    ("lip_up", 0.011, 0.02),
    ("lip_low", 0.014, 0.026),
    ("corner_rest", -0.008, 0.014),
    ("fold", 0.0, 0.25),
    ("glasses", 0.0, 0.2),
)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draws one identity (the shape fields from one ``rng.random`` call: the numbers ``rng.uniform`` would give)."""
    u = rng.uniform
    skin = _SKIN[rng.integers(len(_SKIN))] * u(0.94, 1.05, 3).astype(np.float32) * np.float32(u(0.85, 1.1))
    hair = _HAIR[rng.integers(len(_HAIR))] * np.float32(u(0.75, 1.2))
    lip = np.clip(skin * np.array([0.75, 0.7, 1.05], np.float32) * u(0.85, 1.0), 0, 255)
    iris = _IRIS[rng.integers(len(_IRIS))]
    shape = {
        name: (d < hi if name in ("long_hair", "glasses") else lo + (hi - lo) * d)
        for (name, lo, hi), d in zip(_SHAPE, rng.random(len(_SHAPE)).tolist())
    }
    return Identity(skin=_color(skin), hair=_color(hair), iris=_color(iris), lip=_color(lip), **shape)


_SCENE_LO = np.array([-9, 0.93, -0.035, -0.03, -1, -0.4, -0.25, 0, 0.0, 0.75, 0.0, 1.0])
_SCENE_HI = np.array([9, 1.06, 0.035, 0.03, 1, 0.4, 0.25, 2 * np.pi, 0.5, 1.15, 0.9, 7.0])
_SCENE_RANGE = _SCENE_HI - _SCENE_LO


def scene_values(rng: np.random.Generator) -> list[float]:
    """Draws the nuisances of one sample as 14 numbers (the fields of :class:`Scene`, shifts and gaze flattened)."""
    v = (_SCENE_LO + rng.random(len(_SCENE_LO)) * _SCENE_RANGE).tolist()
    return v + [int(rng.integers(2**31)), int(rng.integers(2**31))]  # two scalar draws: same numbers as size=2


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draws the nuisances of one sample (one vectorised draw)."""
    return Scene.from_values(scene_values(rng))
