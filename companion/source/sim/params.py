"""What a simulated run is made of: the runner, the sensors and link, the course, the faults.

Two worlds draw them. ``classic`` is the simulator's first, narrow world (the draws of
:meth:`RunnerParams.random` before the wide world existed, seed for seed). ``wide`` varies
everything a real runner, a real sensor and a real radio link vary: fault sizes from just
over the estimator's default thresholds to large, every strike style, easy to fast running,
late-swing braking, sensor ranges that clip, 50-406 Hz, BLE packets of 10-200 ms with loss
and long dropouts, clock drift, host-side timestamps, no standing start, turns. The ranges
and where each comes from: docs/simulator.md.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from companion.errors import SourceError
from companion.types import FAULT_LABELS, Label

STRIKES = ("rearfoot", "midfoot", "forefoot")
SIDES = ("left", "right")
SENSOR_NAMES = ("foot", "shank", "left_foot", "right_foot", "left_shank", "right_shank")
WORLDS = ("classic", "wide")
FAULT_BANDS = ("near", "moderate", "large")
"""Fault sizes of the wide world: just over the estimator's default thresholds, moderate,
large (see :data:`FAULT_SIZE_RANGES`)."""

TYPICAL_STRIKE_DEG = {"rearfoot": 16.0, "midfoot": 3.0, "forefoot": -8.0}
"""Foot strike angle of a typical runner of each style (Altman & Davis 2012 cut-offs
+8 / -1.6 deg; rearfoot strikers are commonly +10..+25 deg)."""

SOFT_JOLT_SCALE = (0.15, 0.5)
"""The share of a typical landing's jolt a soft lander's foot sensor sees (wide world)."""
WIDE_STRIKE_DEG = {"rearfoot": (8.5, 28.0), "midfoot": (-1.5, 7.5), "forefoot": (-15.0, -2.0)}
"""Strike angle ranges of the wide world: steep heel strikes up to 28 deg, forefoot down
to -15 deg, on the two sides of the Altman & Davis (2012) cut-offs."""

FAULT_SIZE_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    # degrees the strike angle rises (forced dorsiflexion) or falls (plantarflexion):
    # the estimator's default threshold is 8 deg
    "dorsi_deg": ((8.5, 10.5), (10.5, 13.5), (13.5, 18.0)),
    "plantar_deg": ((8.5, 10.5), (10.5, 13.5), (13.5, 18.0)),
    # share of the relaxed ankle motion a rigid ankle keeps (the estimator's range
    # threshold is a 35 % drop: 0.65; above it only the foot's own rigid features see it)
    "rigid_keep": ((0.60, 0.75), (0.45, 0.60), (0.30, 0.45)),
    # degrees the heel stays up (foot below flat) through a plantarflexed stance
    "heel_up_deg": ((3.0, 5.5), (5.5, 8.0), (8.0, 12.0)),
}
"""Per fault size and band (near, moderate, large): the range a wide-world runner's size
is drawn from."""

WIDE_RATES_HZ = (50.0, 52.0, 100.0, 104.0, 200.0, 208.0, 400.0, 406.0)
"""Sampling rates of the wide world: the usual ones and the odd ones real IMUs give."""


# ----------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class RunnerParams:
    """One runner and how the sensors sit on them.

    ``cadence_spm`` counts steps of both feet per minute; a stride (one foot,
    IC to IC) lasts ``120 / cadence_spm`` s. ``strike_angle_deg`` is the foot
    angle at initial contact, toes up positive (None: typical for ``strike``).
    ``mount_rpy_deg`` is the sensor-on-segment rotation: a vector in sensor axes
    ``v_s`` is ``Rz(yaw) Ry(pitch) Rx(roll) v_s`` in the segment frame
    (x forward, y right, z down); it applies to every simulated sensor unless
    ``shank_mount_rpy_deg`` gives the shank sensors their own.

    The fields after ``speed_mps`` are the wide world's; their defaults give the classic
    behaviour. Fault sizes (None: this run's classic draw): ``dorsi_deg`` / ``plantar_deg``
    raise / lower the strike angle by that much, ``rigid_keep`` is the share of the relaxed
    ankle motion a rigid ankle keeps, ``heel_up_deg`` how far below flat the foot stays
    through a plantarflexed stance (the heel kept off the ground). ``brake_g`` is the peak
    of the extra deceleration the hamstrings give the foot and shank in the last
    ``brake_ms`` of swing. ``foot_sensor_m`` is the foot sensor's position from the heel's
    sole point, ``shank_sensor_m`` the shank sensor's from the ankle joint (segment frames,
    m; None: on the instep, 14 cm above the ankle). ``foot_jolt_scale`` is how firm this
    runner's flat or forefoot landing is (1: typical): the foot's touchdown is slowed by
    that factor and the jolt its sensor sees scaled by it (a soft landing, a cushioned shoe,
    a strap that gives); a landing on the heel (10 deg and more) is as firm as anyone's.
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
    dorsi_deg: float | None = None
    plantar_deg: float | None = None
    rigid_keep: float | None = None
    heel_up_deg: float | None = None
    brake_g: float = 0.0
    brake_ms: float = 100.0
    foot_sensor_m: tuple[float, float, float] | None = None
    shank_sensor_m: tuple[float, float, float] | None = None
    shank_mount_rpy_deg: tuple[float, float, float] | None = None
    foot_jolt_scale: float = 1.0

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        world: str = "classic",
        *,
        bands: dict[str, str] | None = None,
    ) -> RunnerParams:
        """A plausible, varied runner: any strike style, either side, and a
        uniformly random 3-D mounting rotation.

        ``world="classic"`` gives the first simulator's draws exactly; ``"wide"`` draws
        everything the wide world varies (see the module docstring). ``bands`` (wide only)
        picks the band of each fault size (``{"dorsi_deg": "near", ...}``, see
        :data:`FAULT_SIZE_RANGES`); a size without a band is drawn over all three.
        """
        if world == "wide":
            return _random_wide(cls, rng, bands or {})
        if world != "classic":
            raise SourceError(f"simulator: world must be one of {', '.join(WORLDS)}, not {world!r}")
        strike = str(rng.choice(STRIKES, p=[0.5, 0.3, 0.2]))
        lo, hi = {"rearfoot": (9.0, 24.0), "midfoot": (-1.0, 7.0), "forefoot": (-14.0, -3.0)}[
            strike
        ]
        rpy = random_mount(rng)
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

    def described(self) -> dict[str, object]:
        """The fields for a recording's metadata: the classic ones always, the wide
        world's only where they differ from the classic behaviour (so a classic run's
        file is the same as before the wide world existed)."""
        out = asdict(self)
        out.pop("mount_rpy_deg")
        for f in fields(self)[_N_CLASSIC_FIELDS:]:
            if out[f.name] == f.default:
                out.pop(f.name)
        return out


_N_CLASSIC_FIELDS = [f.name for f in fields(RunnerParams)].index("speed_mps") + 1
"""RunnerParams' fields up to ``speed_mps`` are the classic world's."""


def random_mount(rng: np.random.Generator) -> tuple[float, float, float]:
    """A uniformly random 3-D rotation as (roll, pitch, yaw) in degrees."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return _rpy_from_matrix(_quat_matrix(q))


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def fault_size(rng: np.random.Generator, name: str, band: str | None) -> float:
    """A fault size drawn from its band (None: over all three bands)."""
    ranges = FAULT_SIZE_RANGES[name]
    if band is None:
        return _uniform(rng, (min(r[0] for r in ranges), max(r[1] for r in ranges)))
    if band not in FAULT_BANDS:
        raise SourceError(
            f"simulator: fault size band must be one of {', '.join(FAULT_BANDS)}, not {band!r}"
        )
    return _uniform(rng, ranges[FAULT_BANDS.index(band)])


def _random_wide(
    cls: type[RunnerParams], rng: np.random.Generator, bands: dict[str, str]
) -> RunnerParams:
    strike = str(rng.choice(STRIKES, p=[0.5, 0.3, 0.2]))
    # pace: easy, moderate or fast (15-21 km/h, as the real fast recordings)
    pace = rng.uniform()
    speed = float(
        rng.uniform(2.3, 3.2) if pace < 0.3 else rng.uniform(3.2, 4.2) if pace < 0.7
        else rng.uniform(4.2, 5.8)
    )  # fmt: skip
    # cadence rises with speed (about 165 at 2.5 m/s, 195 at 5.5 m/s), contact time
    # falls about in inverse proportion (0.15-0.20 s at 15-20 km/h)
    cadence = float(np.clip(140.0 + 10.0 * speed + rng.normal(0.0, 6.0), 150.0, 205.0))
    contact = 0.25 * (3.2 / speed) ** 0.8 * (1.0 + 0.07 * rng.normal())
    sizes = {name: fault_size(rng, name, bands.get(name)) for name in FAULT_SIZE_RANGES}
    strong_brake = rng.uniform() < 0.5
    # soft landers (a third of the midfoot and forefoot strikers): their foot sensor sees a
    # fraction of a landing's jolt, too little to time the relaxed landings at some rates.
    # Drawn from a stream of their own, so every other draw is the one it was before.
    soft_rng = np.random.Generator(rng.bit_generator.jumped())
    soft = strike != "rearfoot" and soft_rng.uniform() < 1.0 / 3.0
    jolt_scale = float(soft_rng.uniform(SOFT_JOLT_SCALE[0], SOFT_JOLT_SCALE[1])) if soft else 1.0
    return cls(
        cadence_spm=cadence,
        strike=strike,
        strike_angle_deg=_uniform(rng, WIDE_STRIKE_DEG[strike]),
        contact_time_s=float(np.clip(contact, 0.15, 0.34)),
        ankle_rom_scale=float(rng.uniform(0.7, 1.3)),
        frontal_amp_deg=float(rng.uniform(3.0, 16.0)),
        noise_acc_mps2=float(rng.uniform(0.02, 0.3)),
        noise_gyr_dps=float(rng.uniform(0.2, 3.0)),
        bias_acc_mps2=float(rng.uniform(0.0, 0.8)),
        bias_gyr_dps=float(rng.uniform(0.0, 10.0)),
        mount_rpy_deg=random_mount(rng),
        side=str(rng.choice(SIDES)),
        stride_cv=float(rng.uniform(0.01, 0.05)),
        speed_mps=speed,
        dorsi_deg=sizes["dorsi_deg"],
        plantar_deg=sizes["plantar_deg"],
        rigid_keep=sizes["rigid_keep"],
        heel_up_deg=sizes["heel_up_deg"],
        brake_g=float(rng.uniform(1.5, 6.0) if strong_brake else rng.uniform(0.0, 1.5)),
        brake_ms=float(rng.uniform(50.0, 150.0)),
        foot_sensor_m=(
            float(rng.uniform(-0.02, 0.15)),
            float(rng.uniform(-0.02, 0.02)),
            float(rng.uniform(-0.08, -0.03)),
        ),
        shank_sensor_m=(
            float(rng.uniform(0.01, 0.05)),
            float(rng.uniform(-0.02, 0.02)),
            float(rng.uniform(-0.30, -0.08)),
        ),
        shank_mount_rpy_deg=random_mount(rng),
        foot_jolt_scale=jolt_scale,
    )


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Turns:
    """A course of straights and turns (short loops): a turn of ``angle_deg`` on a
    ``radius_m`` curve starts every ``every_m`` metres, all to one side (``left`` or
    ``right``). On the curve the runner leans into it (``atan(v^2 / (g r))``)."""

    every_m: float = 100.0
    angle_deg: float = 180.0
    radius_m: float = 10.0
    direction: str = "left"


@dataclass(frozen=True)
class RunConditions:
    """Everything :func:`~companion.source.sim.run.simulate` takes besides the runner,
    the faults, the sensors and the seed: the sensors' hardware, the radio link, the
    clock, the start and the course. The defaults are simulate's."""

    rate_hz: float = 200.0
    packet_loss: float = 0.0
    packet_size: int = 0
    jitter_s: float = 0.0
    standing_s: float = 3.0
    acc_range_g: float = 16.0
    gyr_range_dps: float = 2000.0
    shank_acc_range_g: float | None = None
    shank_gyr_range_dps: float | None = None
    adc_bits: int = 16
    dropouts_per_min: float = 0.0
    dropout_max_s: float = 2.0
    clock_ppm: float = 0.0
    clock_offset_s: float = 0.0
    host_timestamps: bool = False
    ble_interval_ms: float = 15.0
    running_start: bool = False
    turns: Turns | None = None

    def kwargs(self) -> dict[str, object]:
        """As keyword arguments of ``simulate``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def random(cls, rng: np.random.Generator, rate_hz: float | None = None) -> RunConditions:
        """The wide world's sensors, link and course (``rate_hz``: None draws one of
        :data:`WIDE_RATES_HZ`)."""
        rate = float(rng.choice(WIDE_RATES_HZ)) if rate_hz is None else float(rate_hz)
        host = bool(rng.uniform() < 0.25)
        # host-stamped packets carry several samples (a host that stamps every sample on
        # its own arrival sees steps of 0 to 2 connection intervals: not a usable sensor)
        lo, hi = (15.0, 60.0) if host else (10.0, 200.0)
        packet_ms = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
        packet_size = max(4 if host else 1, round(packet_ms * rate / 1000.0))
        dropouts = bool(rng.uniform() < 0.4)
        turns = None
        if rng.uniform() < 0.3:
            turns = Turns(
                every_m=float(rng.uniform(50.0, 200.0)),
                angle_deg=float(rng.choice([90.0, 180.0])),
                radius_m=float(rng.uniform(5.0, 18.0)),
                direction=str(rng.choice(["left", "right"])),
            )
        return cls(
            rate_hz=rate,
            packet_loss=float(rng.uniform(0.0, 0.05)),
            packet_size=packet_size,
            jitter_s=0.0 if host else float(rng.uniform(0.0, 0.1)) / rate,
            standing_s=float(rng.uniform(1.0, 6.0)),
            acc_range_g=float(rng.choice([8.0, 16.0])),
            gyr_range_dps=float(rng.choice([1000.0, 2000.0])),
            shank_acc_range_g=float(rng.choice([8.0, 16.0])),
            shank_gyr_range_dps=float(rng.choice([1000.0, 2000.0])),
            adc_bits=int(rng.choice([12, 13, 14, 16])),
            dropouts_per_min=float(rng.uniform(0.1, 0.6)) if dropouts else 0.0,
            dropout_max_s=float(rng.uniform(0.5, 3.0)),
            clock_ppm=float(rng.uniform(-80.0, 80.0)),
            clock_offset_s=float(rng.uniform(0.0, 3600.0)) if rng.uniform() < 0.6 else 0.0,
            host_timestamps=host,
            ble_interval_ms=float(rng.choice([7.5, 15.0] if host else [7.5, 15.0, 30.0])),
            running_start=bool(rng.uniform() < 0.3),
            turns=turns,
        )


def draw_world(
    seed: int, world: str = "wide", *, bands: dict[str, str] | None = None
) -> tuple[RunnerParams, RunConditions]:
    """A runner and the run's conditions, drawn from ``world`` by ``seed`` (classic: the
    classic runner and simulate's default conditions)."""
    rng = np.random.default_rng([seed, 4242])
    if world == "classic":
        return RunnerParams.random(rng), RunConditions()
    runner = RunnerParams.random(rng, world, bands=bands)
    return runner, RunConditions.random(rng)


# ----------------------------------------------------------------------------- faults


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
    "labels: " + ", ".join(lab.value for lab in FAULT_LABELS)
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
    check_faults(out)
    return out


def format_faults(faults: Sequence[FaultSegment]) -> str:
    """The inverse of :func:`parse_faults`."""
    return ",".join(f"{f.label.value}@{f.start_s:g}-{f.end_s:g}" for f in faults)


def check_faults(faults: Sequence[FaultSegment]) -> None:
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


def random_faults(
    rng: np.random.Generator, duration_s: float, world: str = "classic", start_s: float = 70.0
) -> list[FaultSegment]:
    """A fault schedule after a relaxed warm-up of ``start_s`` (alignment, baseline).

    classic: each fault once, in random order, in equal blocks with 15 s relaxed between.
    wide: spells of 12-30 s with 10-25 s of relaxed running between, the faults in a
    random order repeated until the run ends (each fault at least once when there is room).
    """
    order = list(FAULT_LABELS)
    rng.shuffle(order)  # type: ignore[arg-type]
    t = start_s
    out: list[FaultSegment] = []
    if world == "classic":
        block = max(20.0, (duration_s - t) / len(order) - 15.0)
        for lab in order:
            if t + block > duration_s - 5.0:
                break
            out.append(FaultSegment(t, t + block, lab))
            t += block + 15.0
        return out
    end = duration_s - 5.0
    n = len(order)
    for cycle in itertools.count():
        draws = [(float(rng.uniform(12.0, 30.0)), float(rng.uniform(10.0, 25.0))) for _ in order]
        if cycle == 0:  # squeeze the first round towards the shortest so each fault fits
            need = sum(s for s, _ in draws) + sum(g for _, g in draws[:-1])
            floor = 12.0 * n + 10.0 * (n - 1)
            room = end - t - 0.5  # (times are rounded to 0.1 s)
            if need > room > floor:
                f = (room - floor) / (need - floor)
                draws = [(12.0 + (s - 12.0) * f, 10.0 + (g - 10.0) * f) for s, g in draws]
        for lab, (spell, gap) in zip(order, draws, strict=True):
            if t + spell > end + 1e-9:
                return out
            out.append(FaultSegment(t, round(t + spell, 1), lab))
            t = round(t + spell + gap, 1)
    return out  # pragma: no cover - the loop returns


# ----------------------------------------------------------------------------- rotations


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
