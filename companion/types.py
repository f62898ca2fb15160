"""Plain data passed between the pipeline's stages.

Sensor axes, units and angle conventions (the one place they are defined)
-------------------------------------------------------------------------
* Raw samples are in the **sensor's own axes** (``acc_x``, ``gyr_x`` ...), as the
  device reports them: accelerometer in m/s² *including gravity* (a sensor lying
  still reads +9.81 m/s² along the axis pointing **up**, i.e. the specific force),
  gyroscope in deg/s, right-handed.
* After alignment the estimator works in the **segment frame** (foot or shank):
  ``ap`` = anterior (forward, the running direction), ``ml`` = the runner's right,
  ``si`` = inferior (down); right-handed (x forward, y right, z down, as in
  aerospace body axes). Names that carry a segment axis use these suffixes
  (``gyr_ml_dps``); names with ``_x/_y/_z`` are sensor axes.
* **Sagittal angles** are rotations about ``ml``: positive = toes up (the
  dorsiflexion sense; "pitch up"). Foot angle is the foot's sole relative to the
  ground; shank angle is the shank's long axis relative to vertical, positive when
  the knee is *behind* the ankle. The chain is ``foot = shank + ankle`` with the
  ankle angle positive in dorsiflexion and 0 when standing relaxed.
* **Frontal angle**: rotation about ``ap``, positive = inversion (sole turning
  toward the midline), whatever the side.
* Times are seconds on the sensor's clock (``t_s``) unless named ``_mono`` (host
  ``time.monotonic()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from companion.errors import ConfigError

G_MPS2 = 9.80665
"""Standard gravity, m/s²."""

CURVE_POINTS = 101
"""Samples of a stride's angle curves (0, 1, ... 100 % of the stride)."""

RATE_RANGE_HZ = (25.0, 2000.0)
"""Sampling rates the estimator works at (a sensor's own rate, Hz)."""

_AXES = {"ap": 0, "ml": 1, "si": 2}


def mount_problem(spec: str) -> str | None:
    """Why a ``mount`` setting cannot be used (``None`` when it can): ``auto``, empty, or a
    mounting :func:`parse_mount` understands."""
    if spec.strip().lower() in ("", "auto"):
        return None
    try:
        parse_mount(spec)
    except ConfigError as exc:
        return str(exc)
    return None


def parse_mount(spec: str) -> np.ndarray:
    """An explicit mounting -> rotation matrix ``R`` with ``v_segment = R @ v_sensor``.

    ``spec`` names, for the sensor's x, y and z axes in turn, the segment axis each
    points along: ``"ap,ml,si"`` (sensor x forward, y to the runner's right, z down),
    ``"-si,ap,-ml"`` ... (``x=``/``y=``/``z=`` prefixes are allowed).
    """
    parts = [p.strip().lower() for p in spec.replace(" ", "").split(",") if p.strip()]
    problem = (
        f"sensor mount {spec!r} is not understood: give 'auto' or the segment axis "
        "(ap, ml, si, each optionally with a '-') that the sensor's x, y and z axes point "
        'along, e.g. mount = "ap,ml,si" or mount = "x=-si,y=ap,z=-ml"'
    )
    if len(parts) != 3:
        raise ConfigError(problem)
    rot = np.zeros((3, 3))
    for i, part in enumerate(parts):
        if "=" in part:
            key, part = part.split("=", 1)
            if key != "xyz"[i]:
                raise ConfigError(problem)
        sign = -1.0 if part.startswith("-") else 1.0
        name = part.lstrip("+-")
        if name not in _AXES:
            raise ConfigError(problem)
        rot[_AXES[name], i] = sign
    if abs(abs(np.linalg.det(rot)) - 1.0) > 1e-9:
        raise ConfigError(problem + " (each segment axis must appear exactly once)")
    if np.linalg.det(rot) < 0:
        raise ConfigError(
            f"sensor mount {spec!r} describes a left-handed frame; flip the sign of one axis"
        )
    return rot


class Label(StrEnum):
    """What a stride is judged to be, against the runner's own relaxed baseline."""

    RELAXED = "relaxed"
    RIGID = "rigid"
    FORCED_DORSIFLEXION = "forced_dorsiflexion"
    FORCED_PLANTARFLEXION = "forced_plantarflexion"


FAULT_LABELS: tuple[Label, ...] = (
    Label.RIGID,
    Label.FORCED_DORSIFLEXION,
    Label.FORCED_PLANTARFLEXION,
)


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """A run of consecutive samples from one sensor.

    ``t_s`` (n,) float64, strictly increasing, seconds on the sensor's clock;
    ``acc`` (n, 3) float64 m/s² incl. gravity; ``gyr`` (n, 3) float64 deg/s; both in
    the sensor's own axes. A batch may hold one sample or many; gaps from lost
    packets show as jumps in ``t_s`` (never as invented samples).
    """

    sensor: str
    t_s: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if self.acc.shape != (n, 3) or self.gyr.shape != (n, 3):
            raise ValueError(
                f"SampleBatch for {self.sensor!r}: t_s has {n} samples but acc is "
                f"{self.acc.shape} and gyr is {self.gyr.shape}; both must be ({n}, 3)"
            )

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def empty(cls, sensor: str) -> SampleBatch:
        return cls(sensor, np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))

    def slice(self, start: int, stop: int) -> SampleBatch:
        return SampleBatch(
            self.sensor, self.t_s[start:stop], self.acc[start:stop], self.gyr[start:stop]
        )


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What is known about one sensor before its samples arrive."""

    name: str
    """Short label used in recordings: ``foot``, ``shank``, ``left_foot`` ..."""
    rate_hz: float
    """Nominal sampling rate."""
    segment: str = "foot"
    """``foot`` or ``shank``: the body segment it is strapped to."""
    side: str = "unknown"
    """``left``, ``right`` or ``unknown``."""
    mount: str = "auto"
    """``auto`` (found from the data) or an explicit mounting, see the estimator."""
    model: str = "unknown"
    """Device model, e.g. ``simulator``, ``Polar Verity Sense``."""


@dataclass(frozen=True, slots=True)
class StrideReport:
    """One stride of one sensor, from an initial contact (IC) to the next.

    Emitted by the estimator as soon as the stride's closing IC is detected.
    """

    sensor: str
    stride: int
    """0-based count of strides reported for this sensor."""
    t_ic_s: float
    """Initial contact that starts the stride (sensor clock)."""
    t_to_s: float
    """Toe-off inside the stride."""
    t_end_s: float
    """The next initial contact, which ends the stride."""
    t_decided_s: float
    """Stream time of the last sample seen when the label was emitted."""
    label: Label
    confidence: float
    """0..1: how sure the classifier is of ``label``."""
    baseline_ready: bool
    """False while the relaxed baseline is still being learned (label is then relaxed)."""
    features: dict[str, float] = field(default_factory=dict)
    """Per-stride features, names with units (``strike_angle_deg``, ``contact_ms``...)."""
    carried: bool = False
    """The stride could not be judged (its landing was lost in a gap): ``label`` is the
    previous stride's, kept so that a lost packet does not make a held ankle relaxed; it
    is no new evidence either way (the cue policy does not count it)."""
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    """Only when asked for (``keep_curves``, for reports and plots): angle curves over the
    stride, :data:`CURVE_POINTS` samples from this IC (0 %) to the next (100 %), in deg:
    ``foot_sagittal_deg`` or ``shank_sagittal_deg`` (the sensor's own segment), and on a
    foot's report with a shank partner ``ankle_deg`` (dorsiflexion positive)."""


@dataclass(frozen=True, slots=True)
class Cue:
    """A decision of the cue policy: say cue ``id`` now."""

    id: str
    """Cue id in the cue library (``relax_ankle``, ``good_ankle``...)."""
    t_s: float
    """Stream time of the decision (sensor clock)."""
    priority: int
    """Higher preempts lower."""
    reason: str = ""
    """What triggered it (a label, ``sensor_lost``...)."""
    text: str = ""
    """The phrase chosen for it (filled by the voice's library when known)."""
    decided_mono: float = 0.0
    """Host ``time.monotonic()`` at the decision, for latency figures."""
    stale_after_s: float = 1.0
    """Drop the cue if it cannot start within this long of ``decided_mono``."""


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A sensor's link went down or came back (live sources only).

    Sources may yield these between sample batches; the pipeline turns them into
    ``sensor_lost`` / ``sensor_back`` cues and status, and the estimator keeps the
    runner's baseline across them.
    """

    sensor: str
    up: bool
    t_s: float
    """Sensor-clock time of the last sample before the drop (or the first after)."""
    reason: str = ""
