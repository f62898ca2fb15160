"""A physically honest simulator of a running IMU on the foot and/or the shank.

What it models
--------------
A sagittal kinematic chain per leg (shank angle, ankle angle, foot angle =
shank + ankle, conventions of :mod:`companion.types`), a small frontal-plane
rotation (inversion/eversion) and a constant toe-out, plus the foot's path over
the ground: in stance the foot pivots on its heel (toes up), lies flat, then
pivots on its forefoot (heel up); in swing it travels forward and up to the next
contact. The accelerometer is the **specific force** at the sensor's location
(acceleration minus gravity, numerically differentiated on a fine time grid, so
tangential and centripetal terms of the lever arm are in it), the gyroscope the
body angular rate; both are rotated into the segment frame and then into the
sensor's axes by the mounting rotation. An impact transient (a zero-net-impulse
damped oscillation) follows each initial contact; a sensor anti-alias average,
16-bit quantisation, saturation at the ranges, white noise, a constant bias,
timestamp jitter and whole-packet loss complete the chain.

Where the figures come from
---------------------------
* Cadence 150-190 steps/min, contact 0.20-0.30 s at easy to moderate pace and
  shorter when faster: Novacheck (1998), "The biomechanics of running", Gait &
  Posture 7:77-95; Heiderscheit et al. (2011), Med Sci Sports Exerc 43:296-302.
* Ankle sagittal curve: slightly dorsiflexed (rearfoot) or plantarflexed
  (forefoot) at contact, peak dorsiflexion of about 20 deg near mid-stance,
  plantarflexion of about 15-25 deg at toe-off, return in swing; sagittal range
  of motion about 30-50 deg (Novacheck 1998, Fig. 7; Dugan & Bhat 2005, Phys Med
  Rehabil Clin N Am 16:603-621).
* Foot strike angle: rearfoot clearly positive (about +10..+25 deg), midfoot
  near 0, forefoot negative, with the classification cut-offs near +8 and -1.6
  deg of Altman & Davis (2012), "A kinematic method for footstrike pattern
  detection in barefoot and shod runners", Gait & Posture 35:298-300.
* Shank (tibia) inclination about +5..+12 deg at contact, rotating forward
  through stance; knee flexion in swing of about 90-110 deg puts the shank near
  horizontal at its most flexed (Novacheck 1998).
* Eversion after contact 5-15 deg (Dugan & Bhat 2005).
* Impacts: foot-mounted sensors see tens of g at a heel strike and swing
  angular rates past 1000 deg/s at speed; peak tibial acceleration is typically
  several g (Milner et al. 2006, Med Sci Sports Exerc 38:323-328; Mercer et al.
  2003 for the frequency content of 10-20 Hz active and higher passive peaks).

The ankle faults follow the technique's definitions (``/shared`` reference):
``rigid`` shrinks the ankle's motion around a held angle, ``forced_dorsiflexion``
holds the toes up into landing (higher strike angle, longer braking contact),
``forced_plantarflexion`` points the toes and keeps the heel off the ground
through stance. Severity varies by runner and by stride.

Everything is vectorised with numpy; 3 minutes at 200 Hz with two sensors takes
a fraction of a second. A given seed always gives the same run.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import PPoly
from scipy.linalg import solve_banded
from scipy.ndimage import gaussian_filter1d

from companion.errors import SourceError
from companion.source.recording import (
    GroundTruthStride,
    Recording,
    labels_path,
    write_labels,
    write_recording,
)
from companion.types import G_MPS2, Label, SampleBatch, SensorInfo

STRIKES = ("rearfoot", "midfoot", "forefoot")
SIDES = ("left", "right")
SENSOR_NAMES = ("foot", "shank", "left_foot", "right_foot", "left_shank", "right_shank")

TYPICAL_STRIKE_DEG = {"rearfoot": 16.0, "midfoot": 3.0, "forefoot": -8.0}
"""Foot strike angle of a typical runner of each style (Altman & Davis 2012 cut-offs
+8 / -1.6 deg; rearfoot strikers are commonly +10..+25 deg)."""

_TOE_M = 0.18  # heel to the forefoot pivot (metatarsal heads), foot frame x
_R_ANKLE_M = np.array([0.06, 0.0, -0.08])  # ankle joint from the heel's sole point, foot frame
_R_FOOT_SENSOR_M = np.array([0.10, 0.0, -0.06])  # sensor on the instep / laces
_R_SHANK_SENSOR_M = np.array([0.03, 0.0, -0.14])  # sensor on the distal shank, above the ankle
_ROLL_BAND_RAD = math.radians(1.5)  # the pivot rolls heel -> forefoot over +-1.5 deg of foot angle


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class RunnerParams:
    """One runner and one sensor set-up.

    ``cadence_spm`` counts steps of both feet per minute; a stride (one foot,
    IC to IC) lasts ``120 / cadence_spm`` s. ``strike_angle_deg`` is the foot
    angle at initial contact, toes up positive (None: typical for ``strike``).
    ``mount_rpy_deg`` is the sensor-on-segment rotation: a vector in sensor axes
    ``v_s`` is ``Rz(yaw) Ry(pitch) Rx(roll) v_s`` in the segment frame
    (x forward, y right, z down); it applies to every simulated sensor.
    """

    cadence_spm: float = 170.0
    strike: str = "rearfoot"
    strike_angle_deg: float | None = None
    contact_time_s: float | None = None
    ankle_rom_scale: float = 1.0
    frontal_amp_deg: float = 8.0
    noise_acc_mps2: float = 0.05
    noise_gyr_dps: float = 0.5
    bias_acc_mps2: float = 0.1
    bias_gyr_dps: float = 1.0
    mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    side: str = "right"
    stride_cv: float = 0.02
    speed_mps: float | None = None

    @classmethod
    def random(cls, rng: np.random.Generator) -> RunnerParams:
        """A plausible, varied runner: any strike style, either side, and a
        uniformly random 3-D mounting rotation."""
        strike = str(rng.choice(STRIKES, p=[0.5, 0.3, 0.2]))
        lo, hi = {"rearfoot": (9.0, 24.0), "midfoot": (-1.0, 7.0), "forefoot": (-14.0, -3.0)}[
            strike
        ]
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        rpy = _rpy_from_matrix(_quat_matrix(q))
        return cls(
            cadence_spm=float(rng.uniform(152.0, 192.0)),
            strike=strike,
            strike_angle_deg=float(rng.uniform(lo, hi)),
            contact_time_s=None,
            ankle_rom_scale=float(rng.uniform(0.75, 1.25)),
            frontal_amp_deg=float(rng.uniform(4.0, 14.0)),
            noise_acc_mps2=float(rng.uniform(0.02, 0.12)),
            noise_gyr_dps=float(rng.uniform(0.2, 1.2)),
            bias_acc_mps2=float(rng.uniform(0.0, 0.3)),
            bias_gyr_dps=float(rng.uniform(0.0, 3.0)),
            mount_rpy_deg=rpy,
            side=str(rng.choice(SIDES)),
            stride_cv=float(rng.uniform(0.01, 0.04)),
            speed_mps=None,
        )

    def resolved_speed_mps(self) -> float:
        """Running speed: given, or from cadence (cadence rises slowly with speed;
        about 3.2 m/s at 170 steps/min, 2.2 m/s at 155, 4.4 m/s at 190)."""
        if self.speed_mps is not None:
            return float(self.speed_mps)
        return float(np.clip(3.2 + 0.06 * (self.cadence_spm - 170.0), 1.8, 6.5))

    def resolved_contact_s(self) -> float:
        """Ground contact time: given, or about 0.25 s at 3.2 m/s, shorter when
        faster (Novacheck 1998; 0.20-0.30 s at easy to moderate pace)."""
        if self.contact_time_s is not None:
            return float(self.contact_time_s)
        return float(np.clip(0.25 * (3.2 / self.resolved_speed_mps()) ** 0.6, 0.17, 0.34))

    def resolved_strike_deg(self) -> float:
        if self.strike_angle_deg is not None:
            return float(self.strike_angle_deg)
        return TYPICAL_STRIKE_DEG[self.strike]


@dataclass(frozen=True)
class FaultSegment:
    """Strides whose initial contact falls in ``[start_s, end_s)`` get ``label``."""

    start_s: float
    end_s: float
    label: Label


DEMO_FAULTS: list[FaultSegment] = [
    FaultSegment(60.0, 90.0, Label.RIGID),
    FaultSegment(100.0, 130.0, Label.FORCED_DORSIFLEXION),
    FaultSegment(140.0, 170.0, Label.FORCED_PLANTARFLEXION),
]
"""The 3-minute demo: relaxed warm-up 0-60 s, rigid 60-90, relaxed 90-100,
forced dorsiflexion 100-130, relaxed 130-140, forced plantarflexion 140-170,
relaxed to 180 s."""

_FAULT_FORMAT = (
    "faults are given as LABEL@START-END[,LABEL@START-END...] in seconds, e.g. "
    "'rigid@60-90,forced_dorsiflexion@100-130,forced_plantarflexion@140-170'; "
    "labels: " + ", ".join(lab.value for lab in Label if lab is not Label.RELAXED)
)


def parse_faults(spec: str) -> list[FaultSegment]:
    """Parse ``"rigid@60-90,forced_dorsiflexion@100-130"`` into fault segments.

    Raises :class:`SourceError` stating the format on any mistake (unknown label,
    end before start, negative time, overlapping segments).
    """
    out: list[FaultSegment] = []
    pat = re.compile(r"^\s*([A-Za-z_]+)\s*@\s*([0-9.eE+]+)\s*-\s*([0-9.eE+]+)\s*$")
    for part in spec.split(","):
        if not part.strip():
            continue
        m = pat.match(part)
        if not m:
            raise SourceError(f"bad fault {part.strip()!r}: {_FAULT_FORMAT}")
        name = m.group(1).lower()
        try:
            label = Label(name)
        except ValueError:
            raise SourceError(f"unknown fault label {name!r}: {_FAULT_FORMAT}") from None
        if label is Label.RELAXED:
            raise SourceError(f"'relaxed' is not a fault (it is the default): {_FAULT_FORMAT}")
        try:
            a, b = float(m.group(2)), float(m.group(3))
        except ValueError:
            raise SourceError(f"bad time in fault {part.strip()!r}: {_FAULT_FORMAT}") from None
        if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
            raise SourceError(f"fault {part.strip()!r}: END must be after START: {_FAULT_FORMAT}")
        out.append(FaultSegment(a, b, label))
    if not out:
        raise SourceError(f"no fault in {spec!r}: {_FAULT_FORMAT}")
    _check_faults(out)
    return out


def format_faults(faults: Sequence[FaultSegment]) -> str:
    """The inverse of :func:`parse_faults`."""
    return ",".join(f"{f.label.value}@{f.start_s:g}-{f.end_s:g}" for f in faults)


def _check_faults(faults: Sequence[FaultSegment]) -> None:
    ordered = sorted(faults, key=lambda f: f.start_s)
    for f in ordered:
        if not isinstance(f.label, Label) or f.label is Label.RELAXED:
            raise SourceError(
                f"fault label must be one of rigid, forced_dorsiflexion, "
                f"forced_plantarflexion, not {f.label!r}"
            )
        if f.start_s < 0 or f.end_s <= f.start_s:
            raise SourceError(
                f"fault {f.label.value}@{f.start_s:g}-{f.end_s:g}: times must be >= 0 "
                "and END after START"
            )
    for a, b in itertools.pairwise(ordered):
        if b.start_s < a.end_s:
            raise SourceError(
                f"faults {a.label.value}@{a.start_s:g}-{a.end_s:g} and "
                f"{b.label.value}@{b.start_s:g}-{b.end_s:g} overlap; give each time once"
            )


# ----------------------------------------------------------------------------- results


@dataclass
class SimulatedRun:
    """A simulated run: the recording plus its ground truth.

    ``events[sensor]`` holds per-stride arrays: ``t_ic_s``, ``t_to_s``,
    ``t_msw_s`` (mid-swing: the peak toes-up foot angular rate in swing; NaN past
    the end), ``label`` (str), ``strike_angle_deg`` (foot angle at IC),
    ``ankle_rom_deg`` / ``foot_rom_deg`` (max - min over IC to next IC),
    ``contact_time_s`` and ``midstance_foot_deg`` (foot angle at 45 % of
    contact: 0 = foot flat, negative = heel held off the ground).
    ``angles`` is the dense truth of the first sensor's leg on the nominal sample
    grid (before loss): ``t_s``, ``foot_deg``, ``shank_deg``, ``ankle_deg``,
    ``frontal_deg``; with two legs also ``<side>_foot_deg`` etc. for each leg.
    """

    recording: Recording
    truth: list[GroundTruthStride]
    events: dict[str, dict[str, np.ndarray]]
    angles: dict[str, np.ndarray]
    mounts_rpy_deg: dict[str, tuple[float, float, float]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- rotations


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2
    )


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2
    )


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2
    )


def _rot_zyx(yaw: np.ndarray | float, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``Rz(yaw) Ry(pitch) Rx(roll)`` for arrays of angles (rad), shape (n, 3, 3)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rows = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    shape = np.shape(pitch)
    out = np.empty((3, 3, *shape))
    for i in range(3):
        for j in range(3):
            out[i, j] = rows[i][j]
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (-2, -1)))


def mount_matrix(rpy_deg: Sequence[float]) -> np.ndarray:
    """Sensor-to-segment rotation ``Rz(yaw) Ry(pitch) Rx(roll)`` (v_seg = M @ v_sensor)."""
    r, p, y = (np.asarray(math.radians(v)) for v in rpy_deg)
    return _rz(y) @ _ry(p) @ _rx(r)


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _rpy_from_matrix(m: np.ndarray) -> tuple[float, float, float]:
    pitch = math.asin(float(np.clip(-m[2, 0], -1.0, 1.0)))
    roll = math.atan2(float(m[2, 1]), float(m[2, 2]))
    yaw = math.atan2(float(m[1, 0]), float(m[0, 0]))
    return (
        round(math.degrees(roll), 3),
        round(math.degrees(pitch), 3),
        round(math.degrees(yaw), 3),
    )


# ----------------------------------------------------------------------------- strides


@dataclass
class _Leg:
    """Per-stride parameters of one leg (arrays of length n strides)."""

    side: str
    t_ic: np.ndarray
    contact: np.ndarray
    label: list[Label]
    strike: np.ndarray  # relaxed strike angle (before the fault)
    sigma: np.ndarray  # shank angle at IC
    peak_df: np.ndarray  # peak ankle dorsiflexion in stance
    to_pf: np.ndarray  # ankle plantarflexion at toe-off
    foot_to: np.ndarray  # foot angle at toe-off
    shank_min: np.ndarray  # most flexed shank in swing
    ramp: np.ndarray  # 0..1 amplitude ramp of the first strides
    rigid_scale: np.ndarray  # ankle motion kept (1 = relaxed)
    rigid_hold: np.ndarray  # held ankle angle for rigid strides
    offset: np.ndarray  # ankle offset of forced dorsi-/plantarflexion (deg, signed)
    w_stance: np.ndarray  # share of an ankle change taken by the foot in stance
    frontal_amp: np.ndarray
    stride_len: np.ndarray
    v_ic_x: np.ndarray  # horizontal foot speed at touchdown
    v_ic_z: np.ndarray  # downward foot speed at touchdown
    impact_g: np.ndarray
    first_to: float
    toe_out: float
    clearance: float


def _ar1(rng: np.random.Generator, n: int, rho: float = 0.5) -> np.ndarray:
    """Unit-variance AR(1) noise: stride-to-stride variability with some memory."""
    e = rng.normal(size=n)
    out = np.empty(n)
    prev = 0.0
    s = math.sqrt(1 - rho * rho)
    for i in range(n):
        prev = rho * prev + s * e[i]
        out[i] = prev
    return out


def _labels_at(t: np.ndarray, faults: Sequence[FaultSegment]) -> list[Label]:
    lab = [Label.RELAXED] * len(t)
    for f in faults:
        for i in np.flatnonzero((t >= f.start_s) & (t < f.end_s)):
            lab[int(i)] = f.label
    return lab


def _make_leg(
    rng: np.random.Generator,
    runner: RunnerParams,
    side: str,
    t_ic: np.ndarray,
    first_to: float,
    faults: Sequence[FaultSegment],
    style: dict[str, float],
) -> _Leg:
    n = len(t_ic)
    cv = runner.stride_cv
    speed = runner.resolved_speed_mps()
    stride_t = np.diff(t_ic, append=t_ic[-1] + (t_ic[-1] - t_ic[-2]))
    labels = _labels_at(t_ic, faults)
    lab = np.array([lab.value for lab in labels])
    rig = lab == Label.RIGID.value
    fdf = lab == Label.FORCED_DORSIFLEXION.value
    fpf = lab == Label.FORCED_PLANTARFLEXION.value

    rom = runner.ankle_rom_scale
    strike = runner.resolved_strike_deg() + 1.5 * _ar1(rng, n)
    sigma = 4.0 + 0.35 * strike + 1.0 * rng.normal(size=n)
    peak_df = style["peak_df"] * rom * (1 + 0.05 * rng.normal(size=n))
    to_pf = style["to_pf"] * rom * (1 + 0.06 * rng.normal(size=n))
    foot_to = -(45.0 + 4.0 * speed) * (1 + 0.04 * rng.normal(size=n))
    shank_min = -(45.0 + 9.0 * speed) * (1 + 0.03 * rng.normal(size=n))
    contact = runner.resolved_contact_s() * (1 + cv * _ar1(rng, n))

    n_ramp = 3
    k = np.arange(n)
    ramp = np.minimum(1.0, 0.45 + 0.55 * k / n_ramp)

    rigid_scale = np.ones(n)
    rigid_hold = np.zeros(n)
    offset = np.zeros(n)
    w_stance = np.full(n, 0.7) + 0.03 * rng.normal(size=n)
    # rigid: 30-50 % of the relaxed ankle motion, around a held angle
    rigid_scale[rig] = np.clip(style["rigid_scale"] + 0.04 * rng.normal(size=rig.sum()), 0.25, 0.55)
    rigid_hold[rig] = style["rigid_hold"] + 1.0 * rng.normal(size=rig.sum())
    w_stance[rig] = 0.6 + 0.05 * rng.normal(size=rig.sum())
    # forced dorsiflexion: toes held up into landing (+8..+16 deg), longer braking contact
    offset[fdf] = np.clip(style["df_offset"] + 1.5 * rng.normal(size=fdf.sum()), 7.0, 17.0)
    contact[fdf] *= np.clip(style["df_contact"] + 0.03 * rng.normal(size=fdf.sum()), 1.04, 1.3)
    # forced plantarflexion: toes pointed and held, heel kept off the ground
    offset[fpf] = -np.clip(style["pf_offset"] + 1.5 * rng.normal(size=fpf.sum()), 9.0, 20.0)
    contact[fpf] *= np.clip(0.96 + 0.03 * rng.normal(size=fpf.sum()), 0.88, 1.02)
    w_stance[fpf] = 0.8 + 0.04 * rng.normal(size=fpf.sum())
    contact = np.minimum(contact, 0.6 * stride_t)

    eff_strike = strike + offset  # the foot takes all of the change in the air
    impact_g = (6.0 + 0.8 * np.maximum(eff_strike, 0.0)) * rng.uniform(0.75, 1.25, n)
    v_ic_x = 0.5 + 0.1 * speed + 0.1 * rng.normal(size=n) + 0.04 * np.maximum(offset, 0)
    v_ic_z = 0.7 + 0.15 * rng.normal(size=n)
    stride_len = speed * stride_t * np.minimum(1.0, 0.3 + 0.7 * k / n_ramp)
    return _Leg(
        side=side,
        t_ic=t_ic,
        contact=contact,
        label=labels,
        strike=strike,
        sigma=sigma,
        peak_df=peak_df,
        to_pf=to_pf,
        foot_to=foot_to,
        shank_min=shank_min,
        ramp=ramp,
        rigid_scale=rigid_scale,
        rigid_hold=rigid_hold,
        offset=offset,
        w_stance=w_stance,
        frontal_amp=runner.frontal_amp_deg * (1 + 0.08 * rng.normal(size=n)),
        stride_len=stride_len,
        v_ic_x=v_ic_x,
        v_ic_z=v_ic_z,
        impact_g=impact_g,
        first_to=first_to,
        toe_out=float(rng.uniform(2.0, 10.0)),
        clearance=0.10 + 0.07 * speed,
    )


# Key points of one stride. Stance keys are fractions u of the contact time, swing
# keys fractions v of the swing time. "approach" swing keys (v >= 0.75) prepare the
# NEXT contact and take that stride's fault, so a stride's label describes its landing.
_U = np.array([0.0, 0.06, -1.0, 0.30, 0.45, 0.60, 0.80])  # -1: foot flat, set per stride
_V_OWN = np.array([0.0, 0.12, 0.30, 0.55])  # v = 0 is toe-off
_V_APP = np.array([0.75, 0.90])
_DF_PROFILE_U = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # forced DF: gone at foot flat
_PF_PROFILE_U = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9])  # forced PF held through stance
_PF_PROFILE_V = np.array([0.6, 0.2, 0.0, 0.0])
_FRONTAL_U = np.array([0.0, 0.06, 0.18, 0.30, 0.45, 0.60, 0.80])
_FRONTAL_SHAPE = np.array([0.3, 0.0, -0.75, -0.95, -1.0, -0.8, -0.4])  # x frontal amplitude
_W_U = np.array([1.0, 0.85, -1.0, -1.0, -1.0, -1.0, -1.0])  # -1: the stride's w_stance


def _u_flat(strike_deg: np.ndarray, offset_deg: np.ndarray) -> np.ndarray:
    """Fraction of contact at which the foot lies flat: about 15-20 % of stance,
    later the further the foot was from flat at contact, and later still when the
    toes were held up into the landing (``offset_deg`` > 0: a longer braking phase
    before the forefoot comes down)."""
    u = 0.16 + 0.003 * np.abs(strike_deg) + 0.006 * np.maximum(offset_deg, 0.0)
    return np.minimum(u, 0.27)


def _keys(leg: _Leg, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Key times and (foot, shank, frontal) angles of the whole leg, in time order."""
    n = len(leg.t_ic)
    t_to = leg.t_ic + leg.contact
    t_next = np.append(leg.t_ic[1:], leg.t_ic[-1] + (leg.t_ic[-1] - leg.t_ic[-2]))
    swing = t_next - t_to
    r = leg.ramp[:, None]

    # --- stance (n, 7)
    s = leg.strike[:, None]
    u = np.broadcast_to(_U, (n, len(_U))).copy()
    u[:, 2] = _u_flat(leg.strike, leg.offset)
    u[:, 1] = 0.4 * u[:, 2]
    sig = leg.sigma[:, None]
    d = leg.peak_df[:, None]
    sh_to = (leg.foot_to + leg.to_pf)[:, None]
    foot_u = np.zeros((n, len(_U)))
    foot_u[:, 0] = s[:, 0]
    foot_u[:, 1] = 0.6 * s[:, 0]
    foot_u[:, 5] = -6.0
    foot_u[:, 6] = 0.45 * leg.foot_to
    shank_u = np.where(
        u <= 0.45, sig + (-d - sig) * (u / 0.45), -(d + 4.0) + (sh_to + d + 4.0) * (u - 0.6) / 0.4
    )
    foot_u *= r
    shank_u *= r
    ankle_u = foot_u - shank_u
    t_u = leg.t_ic[:, None] + u * leg.contact[:, None]

    # --- own swing (n, 4): toe-off and early/mid swing
    ankle_v = np.stack([-leg.to_pf, -(leg.to_pf + 4.0), -0.3 * leg.to_pf, np.full(n, 2.0)], -1) * r
    shank_v = np.stack([sh_to[:, 0], sh_to[:, 0] - 12.0, leg.shank_min, np.full(n, -25.0)], -1) * r
    t_v = t_to[:, None] + _V_OWN * swing[:, None]

    # --- approach keys (n, 2) of stride k: in the swing BEFORE its IC
    a_ic = (leg.strike - leg.sigma)[:, None]
    ankle_a = np.concatenate([np.full((n, 1), 4.0), 0.3 * 4.0 + 0.7 * a_ic], -1) * r
    shank_a = np.concatenate([sig + 6.0, sig + 4.0], -1) * r
    t_prev_to = np.concatenate([[leg.first_to], t_to[:-1]])
    t_prev_ic = np.concatenate([[leg.first_to - 0.01], leg.t_ic[:-1]])
    prev_swing = leg.t_ic - t_prev_to
    t_a = t_prev_to[:, None] + _V_APP * prev_swing[:, None]
    del t_prev_ic

    # --- faults, as changes of the ANKLE angle
    rs = leg.rigid_scale[:, None]
    hold = leg.rigid_hold[:, None]
    dank_u = hold + rs * (ankle_u - hold) - ankle_u
    dank_v = hold + rs * (ankle_v - hold) - ankle_v
    dank_a = hold + rs * (ankle_a - hold) - ankle_a
    off = leg.offset[:, None]
    is_df = off > 0
    dank_u += off * np.where(is_df, _DF_PROFILE_U, _PF_PROFILE_U)
    dank_v += np.where(is_df, 0.0, off * _PF_PROFILE_V)
    dank_a += off
    # who takes the change: in the air the foot; in stance mostly the foot
    w_u = np.where(_W_U < 0, leg.w_stance[:, None], _W_U)
    w_v = np.array([0.85, 1.0, 1.0, 1.0])
    foot_u = foot_u + w_u * dank_u
    shank_u = shank_u - (1 - w_u) * dank_u
    foot_v = shank_v + ankle_v + w_v * dank_v
    shank_v = shank_v - (1 - w_v) * dank_v
    foot_a = shank_a + ankle_a + dank_a

    # frontal: slight inversion at contact, fast eversion while the foot comes down (most
    # of it by foot flat), its maximum near 45 % of stance, where the flat foot lies
    # nearly still under the body (the quasi-static instant foot-mounted IMUs rely on)
    amp = leg.frontal_amp[:, None] * r
    # (a profile over the fraction of contact, so a later foot flat does not squeeze it)
    fr_u = amp * np.interp(u, _FRONTAL_U, _FRONTAL_SHAPE)
    fr_v = np.concatenate([-0.2 * amp, 0.1 * amp, 0.25 * amp, 0.25 * amp], -1)
    fr_a = np.concatenate([0.3 * amp, 0.3 * amp], -1)

    # assemble: approach keys of k, stance of k, own swing of k
    t_all = np.concatenate([t_a, t_u, t_v], -1).ravel()
    f_all = np.concatenate([foot_a, foot_u, foot_v], -1).ravel()
    s_all = np.concatenate([shank_a, shank_u, shank_v], -1).ravel()
    r_all = np.concatenate([fr_a, fr_u, fr_v], -1).ravel()
    # standing before the first toe-off, and a tail after the last stride
    head_t = np.array([-1.0, leg.first_to])
    keep = t_all > leg.first_to + 1e-4
    t_all, f_all, s_all, r_all = t_all[keep], f_all[keep], s_all[keep], r_all[keep]
    t = np.concatenate([head_t, t_all, [max(t_end, t_all[-1]) + 1.0]])
    f = np.concatenate([[0.0, 0.0], f_all, [f_all[-1]]])
    sh = np.concatenate([[0.0, 0.0], s_all, [s_all[-1]]])
    fr = np.concatenate([[0.0, 0.0], r_all, [r_all[-1]]])
    order = np.argsort(t, kind="stable")
    t, f, sh, fr = t[order], f[order], sh[order], fr[order]
    ok = np.concatenate([[True], np.diff(t) > 1e-5])
    return t[ok], f[ok], sh[ok], fr[ok]


# ----------------------------------------------------------------------------- leg motion


def _piecewise_spline(
    kt: np.ndarray,
    kv: np.ndarray,
    breaks: np.ndarray,
    clamped: np.ndarray | None = None,
    clamped_end: np.ndarray | None = None,
) -> PPoly:
    """Natural cubic splines through the keys, one per stretch between ``breaks``.

    C2 (smooth angular acceleration) inside a stride; at each initial contact
    (and at the start of running) only the angle is continuous: the ground
    stopping the foot is an abrupt change of angular rate, and a spline across
    it would overshoot. Pieces starting at a time in ``clamped`` start with zero
    rate (the heel leaving a flat foot); pieces ending at a time in
    ``clamped_end`` end with zero rate (a controlled landing of the foot).
    """
    cut = np.searchsorted(kt, breaks - 1e-9)
    cut = np.unique(np.concatenate([[0], cut[(cut > 0) & (cut < len(kt) - 1)], [len(kt) - 1]]))
    clamp_at = set()
    if clamped is not None:
        clamp_at = set(np.searchsorted(kt, clamped - 1e-9).tolist())
    # every piece's knots, stacked (shared break knots appear twice)
    idx = np.concatenate([np.arange(a, b + 1) for a, b in itertools.pairwise(cut)])
    first = np.concatenate([[True], np.diff(idx) <= 0])  # first knot of a piece
    last = np.concatenate([first[1:], [True]])
    x, y = kt[idx], kv[idx]
    n = len(x)
    h = np.diff(x, append=x[-1])
    h[last] = 1.0  # not used: no interval after a piece's last knot
    d = np.diff(y, append=y[-1]) / h
    h_prev = np.concatenate([[1.0], h[:-1]])
    d_prev = np.concatenate([[0.0], d[:-1]])
    # tridiagonal system in the second derivatives m of each piece
    lower, diag, upper = h_prev.copy(), 2 * (h_prev + h), h.copy()
    rhs = 6 * (d - d_prev)
    is_clamped = first & np.isin(idx, list(clamp_at))
    natural_first = first & ~is_clamped
    diag[natural_first], upper[natural_first], rhs[natural_first] = 1.0, 0.0, 0.0
    lower[natural_first] = 0.0  # a new piece does not see the previous piece's last knot
    lower[is_clamped] = 0.0
    diag[is_clamped] = 2 * h[is_clamped]
    rhs[is_clamped] = 6 * d[is_clamped]
    lower[last], diag[last], upper[last], rhs[last] = 0.0, 1.0, 0.0, 0.0
    if clamped_end is not None:
        end_at = np.searchsorted(kt, clamped_end - 1e-9)
        ce = last & np.isin(idx, end_at) & ~first
        lower[ce] = h_prev[ce]
        diag[ce] = 2 * h_prev[ce]
        rhs[ce] = -6 * d_prev[ce]
    ab = np.zeros((3, n))
    ab[0, 1:] = upper[:-1]
    ab[1] = diag
    ab[2, :-1] = lower[1:]
    m = solve_banded((1, 1), ab, rhs)
    seg = np.flatnonzero(~last)
    m0, m1, hs = m[seg], m[seg + 1], h[seg]
    c = np.stack([(m1 - m0) / (6 * hs), m0 / 2, d[seg] - hs * (2 * m0 + m1) / 6, y[seg]], axis=0)
    return PPoly(c, np.append(x[seg], kt[-1]), extrapolate=True)


def _quintic(tau: np.ndarray) -> tuple[np.ndarray, ...]:
    t2, t3 = tau * tau, tau**3
    t4, t5 = t3 * tau, t3 * t2
    h0 = 1 - 10 * t3 + 15 * t4 - 6 * t5
    h1 = tau - 6 * t3 + 8 * t4 - 3 * t5
    h2 = 0.5 * t2 - 1.5 * t3 + 1.5 * t4 - 0.5 * t5
    h3 = 0.5 * t3 - t4 + 0.5 * t5
    h4 = -4 * t3 + 7 * t4 - 3 * t5
    h5 = 10 * t3 - 15 * t4 + 6 * t5
    return h0, h1, h2, h3, h4, h5


@dataclass
class _LegMotion:
    foot_deg: np.ndarray
    shank_deg: np.ndarray
    frontal_deg: np.ndarray
    foot_rate_dps: np.ndarray
    splines: tuple[PPoly, PPoly, PPoly]
    foot_pos: np.ndarray  # (n, 3) sensor positions, world NED
    shank_pos: np.ndarray
    r_foot: np.ndarray  # (n, 3, 3) segment-to-world
    r_shank: np.ndarray
    w_foot: np.ndarray  # (n, 3) body rate, segment frame, rad/s
    w_shank: np.ndarray


def _leg_motion(leg: _Leg, t: np.ndarray, t_end: float) -> _LegMotion:
    kt, kf, ks, kr = _keys(leg, t_end)
    breaks = np.concatenate([[leg.first_to], leg.t_ic])
    # the foot also breaks where the forefoot (or heel) lands flat and where the heel
    # starts to rise: a flat foot stays still (its gyro reads ~0), as on a real runner
    u_flat = _u_flat(leg.strike, leg.offset)
    t_flat = leg.t_ic + u_flat * leg.contact
    t_heel = leg.t_ic + 0.45 * leg.contact
    foot_breaks = np.sort(np.concatenate([breaks, t_flat, t_heel]))
    pf = _piecewise_spline(kt, kf, foot_breaks, clamped=t_heel, clamped_end=t_flat)
    ps, pr = (_piecewise_spline(kt, v, breaks) for v in (ks, kr))
    foot = pf(t)
    shank = ps(t)
    frontal = pr(t)
    # a little postural sway of the shank while standing
    stand = np.clip((leg.first_to - t) / 0.5, 0.0, 1.0)
    sway = 0.6 * np.sin(2 * np.pi * 0.3 * t) * stand
    shank = shank + sway
    dfoot = pf.derivative()(t)
    dshank = ps.derivative()(t) + 0.6 * 2 * np.pi * 0.3 * np.cos(2 * np.pi * 0.3 * t) * stand
    dfront = pr.derivative()(t)

    sgn = 1.0 if leg.side == "right" else -1.0
    th, ph = np.radians(foot), np.radians(frontal) * sgn
    psi = math.radians(leg.toe_out) * sgn
    r_foot = _rot_zyx(psi, th, ph)
    ths, phs = np.radians(shank), 0.3 * ph
    r_shank = _rot_zyx(0.0, ths, phs)
    dth, dph = np.radians(dfoot), np.radians(dfront) * sgn
    w_foot = np.stack([dph, dth * np.cos(ph), -dth * np.sin(ph)], -1)
    dths = np.radians(dshank)
    w_shank = np.stack([0.3 * dph, dths * np.cos(phs), -dths * np.sin(phs)], -1)

    # ---- heel (foot origin) path in the world, NED
    n = len(leg.t_ic)
    x_flat = np.cumsum(np.concatenate([[0.0], leg.stride_len[:-1]]))
    x_stand = -leg.stride_len[0] * 0.5
    idx = np.searchsorted(leg.t_ic, t, side="right") - 1  # stride of each sample (-1 before)
    t_to = leg.t_ic + leg.contact
    o = np.zeros((len(t), 3))
    rz_toe = _rz(np.asarray(psi)) @ np.array([_TOE_M, 0.0, 0.0])

    def stance_origin(xf: np.ndarray, rf: np.ndarray, thv: np.ndarray) -> np.ndarray:
        # rolling contact: the pivot moves along the sole from the heel (toes up) to
        # the forefoot (heel up) while the foot passes flat, C2-smooth in the angle,
        # so the sensor's velocity never jumps when the foot angle crosses zero
        base = np.stack([xf, np.zeros_like(xf), np.zeros_like(xf)], -1)
        x = np.clip((_ROLL_BAND_RAD - thv) / (2 * _ROLL_BAND_RAD), 0.0, 1.0)
        share = x**3 * (10 - 15 * x + 6 * x * x)  # 0 heel pivot .. 1 forefoot pivot
        toe_term = rz_toe[None, :] - rf @ np.array([_TOE_M, 0.0, 0.0])
        return base + share[:, None] * toe_term

    in_stance = (idx >= 0) & (t < t_to[np.maximum(idx, 0)])
    si = np.flatnonzero(in_stance)
    o[si] = stance_origin(x_flat[idx[si]], r_foot[si], th[si])
    standing = idx < 0
    standing &= t < leg.first_to
    o[standing] = [x_stand, 0.0, 0.0]

    # swing segments: from the previous toe-off (or standing) to the next IC
    seg_start = np.concatenate([[leg.first_to], t_to])  # (n+1)
    seg_end = np.concatenate([leg.t_ic, [np.inf]])
    # boundary states at toe-off from the analytic stance path (toe pivot)
    th_to = np.radians(pf(t_to))
    dth_to = np.radians(pf.derivative()(t_to))
    ddth_to = np.radians(pf.derivative(2)(t_to))
    th_to_c = np.minimum(th_to, 0.0)
    r_to = _rot_zyx(psi, th_to_c, np.radians(pr(t_to)) * sgn)
    p_to = stance_origin(x_flat, r_to, th_to_c - 1e-12)
    # velocity/acc of the toe-pivot origin in the sagittal plane (roll ignored here)
    c, s_ = np.cos(th_to_c), np.sin(th_to_c)
    cy, sy = math.cos(psi), math.sin(psi)
    vx = _TOE_M * s_ * dth_to
    vz = _TOE_M * c * dth_to
    ax = _TOE_M * (c * dth_to**2 + s_ * ddth_to)
    az = _TOE_M * (-s_ * dth_to**2 + c * ddth_to)
    v_to = np.stack([vx * cy, vx * sy, vz], -1)
    a_to = np.stack([ax * cy, ax * sy, az], -1)
    p0 = np.concatenate([[[x_stand, 0.0, 0.0]], p_to])
    v0 = np.concatenate([np.zeros((1, 3)), v_to])
    a0 = np.concatenate([np.zeros((1, 3)), a_to])
    # state at the next IC
    th_ic = np.radians(pf(leg.t_ic))
    r_ic = _rot_zyx(psi, th_ic, np.radians(pr(leg.t_ic)) * sgn)
    p_ic = stance_origin(x_flat, r_ic, th_ic)
    v_ic = np.stack([leg.v_ic_x, np.zeros(n), leg.v_ic_z], -1)

    sw = ~in_stance & ~standing
    swi = np.flatnonzero(sw)
    seg = idx[swi] + 1  # swing segment number (0 = from standing to IC 0)
    seg = np.minimum(seg, n - 1)
    dur = np.minimum(seg_end[seg], leg.t_ic[seg]) - seg_start[seg]
    tau = np.clip((t[swi] - seg_start[seg]) / dur, 0.0, 1.0)
    h = _quintic(tau)
    d = dur[:, None]
    pos = (
        h[0][:, None] * p0[seg]
        + h[1][:, None] * v0[seg] * d
        + h[2][:, None] * a0[seg] * d * d
        + h[4][:, None] * v_ic[seg] * d
        + h[5][:, None] * p_ic[seg]
    )
    # clearance: a C2 bump peaking early in swing (heel lifted behind)
    bump = tau**3 * (1 - tau) ** 4.5
    bump /= (3 / 7.5) ** 3 * (4.5 / 7.5) ** 4.5
    ramp_seg = leg.ramp[seg]
    pos[:, 2] -= leg.clearance * ramp_seg * bump
    o[swi] = pos

    # impact: blend the touchdown velocity into the stance path over ~12 ms
    tau_imp = 0.012
    since = t - leg.t_ic[np.maximum(idx, 0)]
    blend = (idx >= 0) & (since < tau_imp) & in_stance
    bi = np.flatnonzero(blend)
    if len(bi):
        kk = idx[bi]
        w = since[bi] / tau_imp
        w = w * w * (3 - 2 * w)
        ext = p_ic[kk] + v_ic[kk] * since[bi][:, None]
        o[bi] = (1 - w)[:, None] * ext + w[:, None] * o[bi]

    foot_pos = o + r_foot @ _R_FOOT_SENSOR_M
    ankle = o + r_foot @ _R_ANKLE_M
    shank_pos = ankle + r_shank @ _R_SHANK_SENSOR_M
    return _LegMotion(
        foot_deg=foot,
        shank_deg=shank,
        frontal_deg=frontal,
        foot_rate_dps=dfoot,
        splines=(pf, ps, pr),
        foot_pos=foot_pos,
        shank_pos=shank_pos,
        r_foot=r_foot,
        r_shank=r_shank,
        w_foot=w_foot,
        w_shank=w_shank,
    )


def _impacts(
    t: np.ndarray, t_ic: np.ndarray, amp_mps2: np.ndarray, freq_hz: float, tau_s: float
) -> np.ndarray:
    """Zero-net-impulse damped oscillation after each IC (amplitude at onset).

    ``a(t) = A e^{-t/tau} (cos wt - sin wt / (w tau))`` is the derivative of
    ``e^{-t/tau} sin wt`` scaled, so it integrates to zero: it shakes the sensor
    without adding a velocity an estimator would have to explain.
    """
    out = np.zeros_like(t)
    idx = np.searchsorted(t_ic, t, side="right") - 1
    since = t - t_ic[np.maximum(idx, 0)]
    m = (idx >= 0) & (since < 6 * tau_s)
    w = 2 * np.pi * freq_hz
    s = since[m]
    out[m] = amp_mps2[idx[m]] * np.exp(-s / tau_s) * (np.cos(w * s) - np.sin(w * s) / (w * tau_s))
    return out


# ----------------------------------------------------------------------------- public API


def _validate(
    duration_s: float,
    rate_hz: float,
    runner: RunnerParams,
    sensors: Sequence[str],
    packet_loss: float,
    packet_size: int,
    jitter_s: float,
    standing_s: float,
    acc_range_g: float,
    gyr_range_dps: float,
) -> None:
    def num(name: str, v: object) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise SourceError(f"simulator: {name} must be a finite number, not {v!r}")
        return float(v)

    if num("duration_s", duration_s) <= 0:
        raise SourceError(f"simulator: duration must be positive (got {duration_s} s)")
    if num("duration_s", duration_s) > 6 * 3600:
        raise SourceError(f"simulator: duration {duration_s} s is over the 6 h limit")
    if not 25.0 <= num("rate_hz", rate_hz) <= 2000.0:
        raise SourceError(f"simulator: rate must be 25-2000 Hz (got {rate_hz} Hz)")
    if not 0.0 <= num("packet_loss", packet_loss) <= 0.5:
        raise SourceError(f"simulator: packet loss must be 0-0.5 (got {packet_loss})")
    if isinstance(packet_size, bool) or not isinstance(packet_size, int) or packet_size < 0:
        raise SourceError(
            f"simulator: packet_size must be a whole number >= 0, not {packet_size!r}"
        )
    if not 0.0 <= num("jitter_s", jitter_s) <= 0.5 / rate_hz:
        raise SourceError(
            f"simulator: timestamp jitter must be 0 to half a sample period "
            f"({0.5 / rate_hz:g} s at {rate_hz:g} Hz), got {jitter_s}"
        )
    if not 0.0 <= num("standing_s", standing_s) <= 600.0:
        raise SourceError(f"simulator: standing time must be 0-600 s (got {standing_s})")
    if not 2.0 <= num("acc_range_g", acc_range_g) <= 400.0:
        raise SourceError(f"simulator: accelerometer range must be 2-400 g (got {acc_range_g})")
    if not 125.0 <= num("gyr_range_dps", gyr_range_dps) <= 10000.0:
        raise SourceError(
            f"simulator: gyroscope range must be 125-10000 deg/s (got {gyr_range_dps})"
        )
    if isinstance(sensors, str):
        raise SourceError(
            f"simulator: sensors must be a list of names such as ('foot', 'shank'), "
            f"not the string {sensors!r}"
        )
    if not sensors:
        raise SourceError("simulator: give at least one sensor (" + ", ".join(SENSOR_NAMES) + ")")
    for s in sensors:
        if s not in SENSOR_NAMES:
            raise SourceError(
                f"simulator: unknown sensor {s!r}; choose from " + ", ".join(SENSOR_NAMES)
            )
    if len(set(sensors)) != len(sensors):
        raise SourceError(f"simulator: sensor names repeat in {list(sensors)}")
    r = runner
    if not 120.0 <= num("cadence_spm", r.cadence_spm) <= 240.0:
        raise SourceError(f"simulator: cadence must be 120-240 steps/min (got {r.cadence_spm})")
    if r.strike not in STRIKES:
        raise SourceError(
            f"simulator: strike must be one of {', '.join(STRIKES)} (got {r.strike!r})"
        )
    if r.side not in SIDES:
        raise SourceError(f"simulator: side must be left or right (got {r.side!r})")
    if (
        r.strike_angle_deg is not None
        and not -30 <= num("strike_angle_deg", r.strike_angle_deg) <= 35
    ):
        raise SourceError(f"simulator: strike angle must be -30..35 deg (got {r.strike_angle_deg})")
    if r.contact_time_s is not None and not 0.12 <= num("contact_time_s", r.contact_time_s) <= 0.45:
        raise SourceError(f"simulator: contact time must be 0.12-0.45 s (got {r.contact_time_s})")
    if r.speed_mps is not None and not 1.0 <= num("speed_mps", r.speed_mps) <= 10.0:
        raise SourceError(f"simulator: speed must be 1-10 m/s (got {r.speed_mps})")
    if not 0.2 <= num("ankle_rom_scale", r.ankle_rom_scale) <= 2.0:
        raise SourceError(f"simulator: ankle_rom_scale must be 0.2-2 (got {r.ankle_rom_scale})")
    if not 0.0 <= num("frontal_amp_deg", r.frontal_amp_deg) <= 30.0:
        raise SourceError(f"simulator: frontal_amp_deg must be 0-30 (got {r.frontal_amp_deg})")
    if not 0.0 <= num("stride_cv", r.stride_cv) <= 0.15:
        raise SourceError(f"simulator: stride_cv must be 0-0.15 (got {r.stride_cv})")
    for name in ("noise_acc_mps2", "noise_gyr_dps", "bias_acc_mps2", "bias_gyr_dps"):
        if num(name, getattr(r, name)) < 0:
            raise SourceError(f"simulator: {name} must be >= 0 (got {getattr(r, name)})")
    if len(r.mount_rpy_deg) != 3:
        raise SourceError(f"simulator: mount_rpy_deg needs 3 angles (got {r.mount_rpy_deg})")
    for v in r.mount_rpy_deg:
        num("mount_rpy_deg", v)


def _sensor_leg(name: str, side: str) -> tuple[str, str]:
    """(side, segment) of a sensor name."""
    if name in ("foot", "shank"):
        return side, name
    sd, seg = name.split("_")
    return sd, seg


def simulate(
    duration_s: float = 180.0,
    rate_hz: float = 200.0,
    *,
    runner: RunnerParams | None = None,
    faults: Sequence[FaultSegment] = (),
    sensors: Sequence[str] = ("foot",),
    seed: int = 0,
    packet_loss: float = 0.0,
    packet_size: int = 0,
    jitter_s: float = 0.0,
    standing_s: float = 3.0,
    acc_range_g: float = 16.0,
    gyr_range_dps: float = 2000.0,
) -> SimulatedRun:
    """Simulate a run; see the module docstring for the model.

    ``sensors``: any of ``foot``, ``shank`` (the runner's ``side``), ``left_foot``,
    ``right_foot``, ``left_shank``, ``right_shank``; the two legs run half a stride
    apart. ``packet_loss`` (0-0.5) drops that fraction of whole BLE packets of
    ``packet_size`` samples (0: about 20 ms worth); dropped samples leave gaps in
    ``t_s``, nothing is invented. ``jitter_s`` is timestamp noise (std, clipped so
    ``t_s`` strictly increases). ``standing_s`` of quiet standing come first.
    """
    runner = runner or RunnerParams()
    if not isinstance(runner, RunnerParams):
        raise SourceError(f"simulator: runner must be RunnerParams, not {type(runner).__name__}")
    _validate(
        duration_s, rate_hz, runner, sensors, packet_loss, packet_size, jitter_s, standing_s,
        acc_range_g, gyr_range_dps,
    )  # fmt: skip
    faults = list(faults)
    _check_faults(faults)
    late = [f for f in faults if f.start_s >= duration_s]
    if late:
        raise SourceError(
            f"simulator: fault {format_faults(late)} starts after the run ends"
            f" ({duration_s:g} s); make the run longer or the fault earlier"
        )
    rng = np.random.default_rng(seed)
    stride_mean = 120.0 / runner.cadence_spm
    n_out = math.floor(duration_s * rate_hz + 1e-9)
    if n_out < 2:
        raise SourceError(f"simulator: {duration_s} s at {rate_hz} Hz is fewer than 2 samples")
    m = max(1, math.ceil(1000.0 / rate_hz))  # fine grid >= 1 kHz, averaged down
    fs = m * rate_hz
    t_fine = (np.arange(n_out * m) - (m - 1) / 2.0) / fs
    t_end = n_out / rate_hz

    # this run's fault style (how this runner does each fault), then stride times
    style = {
        "peak_df": float(rng.uniform(17.0, 23.0)),
        "to_pf": float(rng.uniform(15.0, 22.0)),
        "rigid_scale": float(rng.uniform(0.3, 0.5)),
        "rigid_hold": float(rng.uniform(-2.0, 6.0)),
        "df_offset": float(rng.uniform(9.0, 14.0)),
        "df_contact": float(rng.uniform(1.08, 1.2)),
        "pf_offset": float(rng.uniform(11.0, 17.0)),
    }
    n_str = int((t_end + 3.0 - standing_s) / stride_mean) + 4
    first_swing = (stride_mean - runner.resolved_contact_s()) * 1.1
    t0 = standing_s + first_swing
    stride_t = stride_mean * (1 + np.clip(runner.stride_cv * _ar1(rng, n_str), -0.15, 0.15))
    ic_main = t0 + np.concatenate([[0.0], np.cumsum(stride_t[:-1])])
    half = stride_t / 2 * (1 + 0.01 * rng.normal(size=n_str))
    ic_other = ic_main + half
    legs_needed = {_sensor_leg(s, runner.side)[0] for s in sensors}
    legs: dict[str, _Leg] = {}
    motions: dict[str, _LegMotion] = {}
    other = "left" if runner.side == "right" else "right"
    for side in (runner.side, other):  # fixed order: same draws whatever is asked
        t_ic = ic_main if side == runner.side else ic_other
        first_to = standing_s if side == runner.side else standing_s + float(half[0])
        legs[side] = _make_leg(rng, runner, side, t_ic, first_to, faults, style)
    for side in sorted(legs_needed):
        motions[side] = _leg_motion(legs[side], t_fine, t_end)

    t_s = np.arange(n_out) / rate_hz
    acc_range = acc_range_g * G_MPS2
    lsb_acc = 2 * acc_range / 65536
    lsb_gyr = 2 * gyr_range_dps / 65536
    mount = mount_matrix(runner.mount_rpy_deg)
    infos: dict[str, SensorInfo] = {}
    data: dict[str, SampleBatch] = {}
    events: dict[str, dict[str, np.ndarray]] = {}
    truth: list[GroundTruthStride] = []
    dt = 1.0 / fs
    g_world = np.array([0.0, 0.0, G_MPS2])
    psize = packet_size or max(1, round(0.02 * rate_hz))
    for sensor in SENSOR_NAMES:  # fixed order for determinism
        if sensor not in sensors:
            continue
        srng = np.random.default_rng([seed, SENSOR_NAMES.index(sensor)])
        side, segment = _sensor_leg(sensor, runner.side)
        leg, mo = legs[side], motions[side]
        pos = mo.foot_pos if segment == "foot" else mo.shank_pos
        rot = mo.r_foot if segment == "foot" else mo.r_shank
        w_seg = mo.w_foot if segment == "foot" else mo.w_shank
        acc_world = np.gradient(np.gradient(pos, dt, axis=0), dt, axis=0)
        # tissue and strap compliance: the path's corners (touchdown, forefoot landing)
        # reach the sensor spread over a few ms (shank: the leg's soft tissue, more)
        sigma_s = 0.003 if segment == "foot" else 0.010
        acc_world = gaussian_filter1d(acc_world, sigma_s * fs, axis=0, mode="nearest")
        f_world = acc_world - g_world
        # impact transient, mostly vertical (up = -z) with a posterior part
        if segment == "foot":
            amp = leg.impact_g * G_MPS2
            imp = _impacts(t_fine, leg.t_ic, amp, float(srng.uniform(45, 75)), 0.010)
            f_world[:, 2] -= imp
            f_world[:, 0] -= 0.4 * imp
        else:
            amp = 0.25 * leg.impact_g * G_MPS2  # peak tibial acceleration: several g
            imp = _impacts(t_fine, leg.t_ic, amp, float(srng.uniform(18, 30)), 0.018)
            f_world -= imp[:, None] * (rot @ np.array([0.0, 0.0, 1.0]))  # along the shank, up
        f_seg = np.einsum("nji,nj->ni", rot, f_world)
        acc_s = f_seg @ mount  # (M^T f)^T = f^T M
        gyr_s = np.degrees(w_seg) @ mount
        # sensor anti-alias: average the fine grid down to the output rate
        acc = acc_s.reshape(n_out, m, 3).mean(axis=1)
        gyr = gyr_s.reshape(n_out, m, 3).mean(axis=1)
        ba = srng.normal(size=3)
        ba *= runner.bias_acc_mps2 / max(np.linalg.norm(ba), 1e-12)
        bg = srng.normal(size=3)
        bg *= runner.bias_gyr_dps / max(np.linalg.norm(bg), 1e-12)
        acc = acc + ba + runner.noise_acc_mps2 * srng.normal(size=acc.shape)
        gyr = gyr + bg + runner.noise_gyr_dps * srng.normal(size=gyr.shape)
        acc = np.clip(np.round(acc / lsb_acc) * lsb_acc, -acc_range, acc_range)
        gyr = np.clip(np.round(gyr / lsb_gyr) * lsb_gyr, -gyr_range_dps, gyr_range_dps)
        ts = t_s.copy()
        if jitter_s > 0:
            ts = ts + np.clip(srng.normal(0.0, jitter_s, n_out), -0.45 / rate_hz, 0.45 / rate_hz)
        keep = np.ones(n_out, dtype=bool)
        if packet_loss > 0:
            n_pk = -(-n_out // psize)
            n_drop = round(packet_loss * n_pk)
            drop = srng.choice(n_pk, size=n_drop, replace=False)
            pk_keep = np.ones(n_pk, dtype=bool)
            pk_keep[drop] = False
            keep = np.repeat(pk_keep, psize)[:n_out]
        data[sensor] = SampleBatch(
            sensor,
            np.ascontiguousarray(ts[keep]),
            np.ascontiguousarray(acc[keep]),
            np.ascontiguousarray(gyr[keep]),
        )
        infos[sensor] = SensorInfo(sensor, float(rate_hz), segment, side, "auto", "simulator")
        ev = _stride_events(leg, mo, t_fine, t_end)
        events[sensor] = ev
        for i, (tic, lab) in enumerate(zip(ev["t_ic_s"], ev["label"], strict=True)):
            truth.append(GroundTruthStride(sensor, i, float(tic), Label(str(lab))))

    first = motions[_sensor_leg(sensors[0], runner.side)[0]]
    angles = _dense_angles(first, t_s)
    if len(motions) > 1:
        for side, mo in motions.items():
            for k, v in _dense_angles(mo, t_s).items():
                if k != "t_s":
                    angles[f"{side}_{k}"] = v
    runner_meta = {k: v for k, v in asdict(runner).items() if k != "mount_rpy_deg"}
    metadata = {
        "source": "simulator",
        "seed": str(seed),
        "sim.duration_s": repr(float(duration_s)),
        "sim.rate_hz": repr(float(rate_hz)),
        "sim.runner": json.dumps(runner_meta, sort_keys=True),
        "sim.faults": format_faults(faults) or "none",
        "sim.packet_loss": repr(float(packet_loss)),
        "sim.packet_size": str(psize),
        "sim.jitter_s": repr(float(jitter_s)),
        "sim.standing_s": repr(float(standing_s)),
        "sim.acc_range_g": repr(float(acc_range_g)),
        "sim.gyr_range_dps": repr(float(gyr_range_dps)),
    }
    mounts = {}
    for sensor in infos:
        metadata[f"sim.mount_{sensor}"] = ",".join(f"{v:g}" for v in runner.mount_rpy_deg)
        mounts[sensor] = tuple(float(v) for v in runner.mount_rpy_deg)
    rec = Recording(infos, metadata, data)
    return SimulatedRun(rec, truth, events, angles, mounts)  # type: ignore[arg-type]


def _dense_angles(mo: _LegMotion, t_s: np.ndarray) -> dict[str, np.ndarray]:
    pf, ps, pr = mo.splines
    foot, shank = pf(t_s), ps(t_s)
    return {
        "t_s": t_s.copy(),
        "foot_deg": foot,
        "shank_deg": shank,
        "ankle_deg": foot - shank,
        "frontal_deg": pr(t_s),
    }


def _stride_events(leg: _Leg, mo: _LegMotion, t: np.ndarray, t_end: float) -> dict[str, np.ndarray]:
    inside = leg.t_ic < t_end
    n = int(inside.sum())
    t_ic = leg.t_ic[:n]
    t_to = leg.t_ic + leg.contact
    t_next = np.append(leg.t_ic[1:], np.inf)
    pf = mo.splines[0]
    ankle = mo.foot_deg - mo.shank_deg
    i0 = np.searchsorted(t, leg.t_ic[: n + 1])
    i0 = np.minimum(i0, len(t) - 1)
    rom_a = np.full(n, np.nan)
    rom_f = np.full(n, np.nan)
    msw = np.full(n, np.nan)
    i_to = np.searchsorted(t, t_to[:n])
    for k in range(n):
        a, b = int(i0[k]), int(i0[k + 1]) if k + 1 < len(i0) else len(t)
        if t_next[k] > t[-1] or b - a < 3:
            continue  # stride runs past the end
        rom_a[k] = float(np.ptp(ankle[a:b]))
        rom_f[k] = float(np.ptp(mo.foot_deg[a:b]))
        c = int(i_to[k])
        if c < b:
            msw[k] = float(t[c + int(np.argmax(mo.foot_rate_dps[c:b]))])
    t_to_out = t_to[:n].copy()
    t_to_out[t_to_out > t_end] = np.nan
    return {
        "t_ic_s": t_ic.copy(),
        "t_to_s": t_to_out,
        "t_msw_s": msw,
        "label": np.array([lab.value for lab in leg.label[:n]]),
        "strike_angle_deg": pf(t_ic),
        "ankle_rom_deg": rom_a,
        "foot_rom_deg": rom_f,
        "contact_time_s": leg.contact[:n].copy(),
        "midstance_foot_deg": pf(t_ic + 0.45 * leg.contact[:n]),
    }


def write_simulation(run: SimulatedRun, out_path: str | Path) -> None:
    """Write the recording to ``out_path`` and its ground truth to ``<stem>.labels.csv``."""
    out = Path(out_path)
    write_recording(out, run.recording)
    write_labels(labels_path(out), run.truth)


def demo_run(seed: int = 7) -> SimulatedRun:
    """The 3-minute demo run: a typical relaxed rearfoot runner, foot sensor at
    200 Hz, with :data:`DEMO_FAULTS`."""
    return simulate(180.0, 200.0, runner=RunnerParams(), faults=DEMO_FAULTS, seed=seed)
