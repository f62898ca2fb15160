"""``simulate()``: one run of one runner through the leg model, the sensors and the link."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from companion.errors import SourceError
from companion.source.recording import GroundTruthStride, Recording
from companion.source.sim import sensor as sens
from companion.source.sim.kinematics import (
    _R_ANKLE_M,
    Course,
    _ar1,
    _Leg,
    _leg_motion,
    _LegMotion,
    _make_leg,
    mount_matrix,
)
from companion.source.sim.params import (
    DEMO_FAULTS,
    SENSOR_NAMES,
    SIDES,
    STRIKES,
    FaultSegment,
    RunConditions,
    RunnerParams,
    Turns,
    check_faults,
    format_faults,
)
from companion.source.sim.truth import (
    SCORE_AFTER_S,
    SimulatedRun,
    dense_angles,
    on_clock,
    score_flags,
    segments,
    stride_events,
)
from companion.types import G_MPS2, Label, SampleBatch, SensorInfo

_N_RAMP = 3  # strides from standing to full running (the ramp in kinematics._make_leg)
_STRIKE_NAMES = {"rearfoot": "rear", "midfoot": "mid", "forefoot": "fore"}


def _num(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SourceError(f"simulator: {name} must be a finite number, not {v!r}")
    return float(v)


def _check_range(name: str, v: object, lo: float, hi: float, what: str = "") -> None:
    if not lo <= _num(name, v) <= hi:
        raise SourceError(f"simulator: {what or name} must be {lo:g}-{hi:g} (got {v})")


def _validate(
    duration_s: float,
    runner: RunnerParams,
    sensors: Sequence[str],
    c: RunConditions,
) -> None:
    if _num("duration_s", duration_s) <= 0:
        raise SourceError(f"simulator: duration must be positive (got {duration_s} s)")
    if duration_s > 6 * 3600:
        raise SourceError(f"simulator: duration {duration_s} s is over the 6 h limit")
    if not 25.0 <= _num("rate_hz", c.rate_hz) <= 2000.0:
        raise SourceError(f"simulator: rate must be 25-2000 Hz (got {c.rate_hz} Hz)")
    _check_range("packet_loss", c.packet_loss, 0.0, 0.5, "packet loss")
    if isinstance(c.packet_size, bool) or not isinstance(c.packet_size, int) or c.packet_size < 0:
        raise SourceError(
            f"simulator: packet_size must be a whole number >= 0, not {c.packet_size!r}"
        )
    if not 0.0 <= _num("jitter_s", c.jitter_s) <= 0.5 / c.rate_hz:
        raise SourceError(
            f"simulator: timestamp jitter must be 0 to half a sample period "
            f"({0.5 / c.rate_hz:g} s at {c.rate_hz:g} Hz), got {c.jitter_s}"
        )
    _check_range("standing_s", c.standing_s, 0.0, 600.0, "standing time (s)")
    for name in ("acc_range_g", "shank_acc_range_g"):
        if getattr(c, name) is not None:
            _check_range(name, getattr(c, name), 2.0, 400.0, "accelerometer range (g)")
    for name in ("gyr_range_dps", "shank_gyr_range_dps"):
        if getattr(c, name) is not None:
            _check_range(name, getattr(c, name), 125.0, 10000.0, "gyroscope range (deg/s)")
    if isinstance(c.adc_bits, bool) or not isinstance(c.adc_bits, int) or not 8 <= c.adc_bits <= 24:
        raise SourceError(f"simulator: adc_bits must be a whole number 8-24, not {c.adc_bits!r}")
    _check_range("dropouts_per_min", c.dropouts_per_min, 0.0, 10.0, "dropouts per minute")
    _check_range("dropout_max_s", c.dropout_max_s, 0.2, 60.0, "longest dropout (s)")
    _check_range("clock_ppm", c.clock_ppm, -1000.0, 1000.0, "clock drift (ppm)")
    _check_range("clock_offset_s", c.clock_offset_s, 0.0, 1e7, "clock offset (s)")
    _check_range("ble_interval_ms", c.ble_interval_ms, 7.5, 4000.0, "BLE connection interval (ms)")
    for name in ("host_timestamps", "running_start"):
        if not isinstance(getattr(c, name), bool):
            raise SourceError(f"simulator: {name} must be True or False")
    if c.turns is not None:
        _validate_turns(c.turns)
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
    _validate_runner(runner)


def _validate_turns(t: Turns) -> None:
    if not isinstance(t, Turns):
        raise SourceError(f"simulator: turns must be Turns or None, not {type(t).__name__}")
    _check_range("turns.angle_deg", t.angle_deg, 1.0, 360.0, "turn angle (deg)")
    _check_range("turns.radius_m", t.radius_m, 1.0, 1000.0, "turn radius (m)")
    arc = t.radius_m * math.radians(t.angle_deg)
    if not arc + 5.0 <= _num("turns.every_m", t.every_m) <= 100_000.0:
        raise SourceError(
            f"simulator: turns every {t.every_m} m leaves no straight after a "
            f"{arc:.0f} m curve; give at least {arc + 5.0:.0f} m"
        )
    if t.direction not in ("left", "right"):
        raise SourceError(f"simulator: turn direction must be left or right, not {t.direction!r}")


def _validate_runner(r: RunnerParams) -> None:
    if not 120.0 <= _num("cadence_spm", r.cadence_spm) <= 240.0:
        raise SourceError(f"simulator: cadence must be 120-240 steps/min (got {r.cadence_spm})")
    if r.strike not in STRIKES:
        raise SourceError(
            f"simulator: strike must be one of {', '.join(STRIKES)} (got {r.strike!r})"
        )
    if r.side not in SIDES:
        raise SourceError(f"simulator: side must be left or right (got {r.side!r})")
    for name, lo, hi, what in (
        ("strike_angle_deg", -30.0, 35.0, "strike angle (deg)"),
        ("contact_time_s", 0.12, 0.45, "contact time (s)"),
        ("speed_mps", 1.0, 10.0, "speed (m/s)"),
        ("dorsi_deg", 0.5, 30.0, "dorsi_deg"),
        ("plantar_deg", 0.5, 30.0, "plantar_deg"),
        ("rigid_keep", 0.1, 0.95, "rigid_keep"),
        ("heel_up_deg", 0.0, 25.0, "heel_up_deg"),
    ):
        if getattr(r, name) is not None:
            _check_range(name, getattr(r, name), lo, hi, what)
    _check_range("ankle_rom_scale", r.ankle_rom_scale, 0.2, 2.0)
    _check_range("frontal_amp_deg", r.frontal_amp_deg, 0.0, 30.0)
    _check_range("stride_cv", r.stride_cv, 0.0, 0.15)
    for name in ("noise_acc_mps2", "noise_gyr_dps", "bias_acc_mps2", "bias_gyr_dps"):
        if _num(name, getattr(r, name)) < 0:
            raise SourceError(f"simulator: {name} must be >= 0 (got {getattr(r, name)})")
    _check_range("brake_g", r.brake_g, 0.0, 30.0)
    _check_range("brake_ms", r.brake_ms, 20.0, 300.0)
    for name in ("mount_rpy_deg", "shank_mount_rpy_deg", "foot_sensor_m", "shank_sensor_m"):
        v = getattr(r, name)
        if v is None:
            continue
        if len(v) != 3:
            raise SourceError(f"simulator: {name} needs 3 numbers (got {v})")
        for x in v:
            _num(name, x)
        if name.endswith("_m") and max(abs(x) for x in v) > 0.5:
            raise SourceError(f"simulator: {name} {v} is more than 0.5 m from its segment")


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
    shank_acc_range_g: float | None = None,
    shank_gyr_range_dps: float | None = None,
    adc_bits: int = 16,
    dropouts_per_min: float = 0.0,
    dropout_max_s: float = 2.0,
    clock_ppm: float = 0.0,
    clock_offset_s: float = 0.0,
    host_timestamps: bool = False,
    ble_interval_ms: float = 15.0,
    running_start: bool = False,
    turns: Turns | None = None,
) -> SimulatedRun:
    """Simulate a run; see :mod:`companion.source.simulator` for the model.

    ``sensors``: any of ``foot``, ``shank`` (the runner's ``side``), ``left_foot``,
    ``right_foot``, ``left_shank``, ``right_shank``; the two legs run half a stride
    apart. ``packet_loss`` (0-0.5) drops that fraction of whole BLE packets of
    ``packet_size`` samples (0: about 20 ms worth); dropped samples leave gaps in
    ``t_s``, nothing is invented. ``jitter_s`` is timestamp noise (std, clipped so
    ``t_s`` strictly increases). ``standing_s`` of quiet standing come first.

    The wide world's conditions (their defaults leave a run as it always was):
    ``shank_acc_range_g`` / ``shank_gyr_range_dps`` the shank sensors' own ranges;
    ``adc_bits`` the resolution over the range; ``dropouts_per_min`` long dropouts of up
    to ``dropout_max_s``; ``clock_ppm`` / ``clock_offset_s`` the sensors' clock (drift and
    its reading at the start); ``host_timestamps`` stamps samples on the host as their
    packet arrives (at BLE connection events every ``ble_interval_ms``) instead of on the
    sensor; ``running_start`` begins the recording in full running (no standing, no first
    strides); ``turns`` runs a course of straights and curves.
    """
    cond = RunConditions(
        rate_hz=rate_hz, packet_loss=packet_loss, packet_size=packet_size, jitter_s=jitter_s,
        standing_s=standing_s, acc_range_g=acc_range_g, gyr_range_dps=gyr_range_dps,
        shank_acc_range_g=shank_acc_range_g, shank_gyr_range_dps=shank_gyr_range_dps,
        adc_bits=adc_bits, dropouts_per_min=dropouts_per_min, dropout_max_s=dropout_max_s,
        clock_ppm=clock_ppm, clock_offset_s=clock_offset_s, host_timestamps=host_timestamps,
        ble_interval_ms=ble_interval_ms, running_start=running_start, turns=turns,
    )  # fmt: skip
    runner = runner or RunnerParams()
    if not isinstance(runner, RunnerParams):
        raise SourceError(f"simulator: runner must be RunnerParams, not {type(runner).__name__}")
    _validate(duration_s, runner, sensors, cond)
    faults = list(faults)
    check_faults(faults)
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
    # a running start simulates a short standing start and the first strides before the
    # recording begins (``lead`` s of the leg's own time)
    first_swing = (stride_mean - runner.resolved_contact_s()) * 1.1
    standing = 0.5 if running_start else standing_s
    lead = standing + first_swing + (_N_RAMP + 1) * stride_mean if running_start else 0.0
    t_fine = (np.arange(n_out * m) - (m - 1) / 2.0) / fs
    if lead:
        t_fine = t_fine + lead
        faults = [FaultSegment(f.start_s + lead, f.end_s + lead, f.label) for f in faults]
    t_end = lead + n_out / rate_hz

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
    for key, given in (
        ("rigid_scale", runner.rigid_keep),
        ("df_offset", runner.dorsi_deg),
        ("pf_offset", runner.plantar_deg),
    ):
        if given is not None:
            style[key] = float(given)
    n_str = int((t_end + 3.0 - standing) / stride_mean) + 4
    t0 = standing + first_swing
    stride_t = stride_mean * (1 + np.clip(runner.stride_cv * _ar1(rng, n_str), -0.15, 0.15))
    ic_main = t0 + np.concatenate([[0.0], np.cumsum(stride_t[:-1])])
    half = stride_t / 2 * (1 + 0.01 * rng.normal(size=n_str))
    ic_other = ic_main + half
    legs_needed = {_sensor_leg(s, runner.side)[0] for s in sensors}
    legs: dict[str, _Leg] = {}
    motions: dict[str, _LegMotion] = {}
    other = "left" if runner.side == "right" else "right"
    speed = runner.resolved_speed_mps()
    course = Course.of(turns, speed * (t_end + 10.0)) if turns is not None else None
    for side in (runner.side, other):  # fixed order: same draws whatever is asked
        t_ic = ic_main if side == runner.side else ic_other
        first_to = standing if side == runner.side else standing + float(half[0])
        xrng = np.random.default_rng([seed, 7000 + SIDES.index(side)])
        legs[side] = _make_leg(rng, runner, side, t_ic, first_to, faults, style, xrng)
    for side in sorted(legs_needed):
        motions[side] = _leg_motion(legs[side], t_fine, t_end, course, speed)

    t_s = np.arange(n_out) / rate_hz
    infos: dict[str, SensorInfo] = {}
    data: dict[str, SampleBatch] = {}
    events: dict[str, dict[str, np.ndarray]] = {}
    truth: list[GroundTruthStride] = []
    clocks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    imu: dict[str, dict[str, Any]] = {}
    mounts: dict[str, tuple[float, float, float]] = {}
    psize = sens.packet_samples(packet_size, rate_hz)
    for sensor in SENSOR_NAMES:  # fixed order for determinism
        if sensor not in sensors:
            continue
        srng = np.random.default_rng([seed, SENSOR_NAMES.index(sensor)])
        xrng = np.random.default_rng([seed, 8000 + SENSOR_NAMES.index(sensor)])
        side, segment = _sensor_leg(sensor, runner.side)
        leg, mo = legs[side], motions[side]
        rpy = runner.mount_rpy_deg
        if segment == "shank" and runner.shank_mount_rpy_deg is not None:
            rpy = runner.shank_mount_rpy_deg
        mounts[sensor] = tuple(float(v) for v in rpy)  # type: ignore[assignment]
        acc, gyr = sens.specific_force_and_rate(
            leg, mo, segment, t_fine, n_out, mount_matrix(rpy), srng
        )
        hw = _hardware(runner, cond, segment)
        acc, gyr = sens.measured(acc, gyr, hw, srng)
        clock = sens.device_clock(t_s, clock_ppm, clock_offset_s)
        ts = sens.device_times(clock, rate_hz, jitter_s, srng)
        keep = sens.kept(
            n_out, rate_hz, psize, packet_loss, dropouts_per_min, dropout_max_s, srng, xrng
        )
        if keep.sum() < 2:
            raise SourceError(
                f"simulator: the link lost all but {int(keep.sum())} of {sensor}'s samples "
                "(packet loss and dropouts); make them rarer or the run longer"
            )
        if host_timestamps:
            ts = sens.host_times(t_s, keep, psize, rate_hz, ble_interval_ms, clock_offset_s, xrng)
            clocks[sensor] = (t_s[keep], ts[keep])
        elif clock_ppm or clock_offset_s:
            clocks[sensor] = (t_s, clock)
        data[sensor] = SampleBatch(
            sensor,
            np.ascontiguousarray(ts[keep]),
            np.ascontiguousarray(acc[keep]),
            np.ascontiguousarray(gyr[keep]),
        )
        infos[sensor] = SensorInfo(sensor, float(rate_hz), segment, side, "auto", "simulator")
        ev = stride_events(leg, mo, t_fine, lead, t_end)
        if sensor in clocks:
            for key in ("t_ic_s", "t_to_s", "t_msw_s"):
                ev[key] = on_clock(ev[key], *clocks[sensor])
        events[sensor] = ev
        for i, (tic, lab) in enumerate(zip(ev["t_ic_s"], ev["label"], strict=True)):
            truth.append(GroundTruthStride(sensor, i, float(tic), Label(str(lab))))
        lever = leg.foot_sensor - _R_ANKLE_M if segment == "foot" else leg.shank_sensor
        imu[sensor] = {
            "segment": segment,
            "side": side,
            "mount_rpy_deg": list(mounts[sensor]),
            "mount_quat": [round(float(v), 6) for v in _quat(rpy)],
            "offset_m": [round(float(v), 4) for v in lever],
            "acc_range": hw.acc_range_g * G_MPS2,
            "gyr_range": hw.gyr_range_dps,
            "adc_bits": hw.adc_bits,
            "dropped": 1.0 - float(keep.mean()),
        }

    first_side = _sensor_leg(sensors[0], runner.side)[0]
    angles = dense_angles(motions[first_side], t_s + lead, t_s)
    if len(motions) > 1:
        for side, mo in motions.items():
            for k, v in dense_angles(mo, t_s + lead, t_s).items():
                if k != "t_s":
                    angles[f"{side}_{k}"] = v
    metadata = _metadata(duration_s, runner, faults, seed, cond, psize, lead)
    for sensor in infos:
        metadata[f"sim.mount_{sensor}"] = ",".join(f"{v:g}" for v in mounts[sensor])
    rec = Recording(infos, metadata, data)
    run = SimulatedRun(rec, truth, events, angles, mounts, {}, clocks)
    run.info = _run_info(run, runner, cond, style, seed, duration_s, psize, imu)
    for ev in events.values():
        ev["score"] = score_flags(ev, run.info["t_score0_s"])
    return run


def _hardware(runner: RunnerParams, c: RunConditions, segment: str) -> sens.Hardware:
    acc, gyr = c.acc_range_g, c.gyr_range_dps
    if segment == "shank":
        acc = c.shank_acc_range_g if c.shank_acc_range_g is not None else acc
        gyr = c.shank_gyr_range_dps if c.shank_gyr_range_dps is not None else gyr
    return sens.Hardware(
        runner.noise_acc_mps2,
        runner.noise_gyr_dps,
        runner.bias_acc_mps2,
        runner.bias_gyr_dps,
        float(acc),
        float(gyr),
        c.adc_bits,
    )


def _quat(rpy_deg: Sequence[float]) -> np.ndarray:
    """The sensor-to-segment rotation as a quaternion (x, y, z, w)."""
    return Rotation.from_matrix(mount_matrix(rpy_deg)).as_quat()


def _metadata(
    duration_s: float,
    runner: RunnerParams,
    faults: Sequence[FaultSegment],
    seed: int,
    c: RunConditions,
    psize: int,
    lead: float,
) -> dict[str, str]:
    """The recording's ``sim.*`` metadata: what made it (a classic run's as it always was;
    the wide world's conditions only where they are not the defaults)."""
    if lead:
        faults = [FaultSegment(f.start_s - lead, f.end_s - lead, f.label) for f in faults]
    metadata = {
        "source": "simulator",
        "seed": str(seed),
        "sim.duration_s": repr(float(duration_s)),
        "sim.rate_hz": repr(float(c.rate_hz)),
        "sim.runner": json.dumps(runner.described(), sort_keys=True),
        "sim.faults": format_faults(faults) or "none",
        "sim.packet_loss": repr(float(c.packet_loss)),
        "sim.packet_size": str(psize),
        "sim.jitter_s": repr(float(c.jitter_s)),
        "sim.standing_s": repr(float(c.standing_s)),
        "sim.acc_range_g": repr(float(c.acc_range_g)),
        "sim.gyr_range_dps": repr(float(c.gyr_range_dps)),
    }
    default = RunConditions()
    for name, value in c.kwargs().items():
        if f"sim.{name}" in metadata or value == getattr(default, name):
            continue
        metadata[f"sim.{name}"] = json.dumps(value.__dict__ if isinstance(value, Turns) else value)
    return metadata


def _run_info(
    run: SimulatedRun,
    runner: RunnerParams,
    c: RunConditions,
    style: dict[str, float],
    seed: int,
    duration_s: float,
    psize: int,
    imu: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The run's fields of ``NAME.truth.json`` (the validation set's, and the simulator's
    own conditions)."""
    first = next(iter(run.recording.sensors))
    ev = run.events[first]
    segs = {info["segment"] for info in imu.values()}
    setup = "both" if segs == {"foot", "shank"} else segs.pop()
    ok = np.flatnonzero(ev["ok"])
    if c.running_start or not len(ok):
        t_run0 = float(run.recording.data[first].t_s[0])
    else:
        t_run0 = float(ev["t_ic_s"][ok[0]])
    stride = np.diff(ev["t_ic_s"])
    duty = ev["contact_time_s"][:-1][ev["ok"][:-1]] / stride[ev["ok"][:-1]]
    heel_up = runner.heel_up_deg
    if heel_up is None:  # classic: the landing offset held, about 0.8 of it on the foot
        heel_up = 0.8 * style["pf_offset"]
    return {
        "source": "simulator",
        "seed": seed,
        "setup": setup,
        "sensor_names": list(run.recording.sensors),
        "rate_hz": float(c.rate_hz),
        "side": runner.side,
        "minutes": round(duration_s / 60.0, 4),
        "relaxed_only": not any(lab != Label.RELAXED.value for lab in ev["label"]),
        "strike": _STRIKE_NAMES[runner.strike],
        "cadence_spm": round(runner.cadence_spm, 2),
        "speed_mps": round(runner.resolved_speed_mps(), 3),
        "fsa_deg": round(runner.resolved_strike_deg(), 2),
        "duty": round(float(np.mean(duty)), 3) if len(duty) else None,
        "loss": c.packet_loss,
        "packet_ms": round(1000.0 * psize / c.rate_hz, 2),
        "dropouts_per_min": c.dropouts_per_min,
        "jitter_s": c.jitter_s,
        "clock_ppm": c.clock_ppm,
        "clock_offset_s": c.clock_offset_s,
        "host_timestamps": c.host_timestamps,
        "running_start": c.running_start,
        "turns": None if c.turns is None else dict(c.turns.__dict__),
        "t_run0_s": round(t_run0, 6),
        "t_score0_s": round(t_run0 + SCORE_AFTER_S, 6),
        "k_rom": round(style["rigid_scale"], 3),
        "d_dorsi": round(style["df_offset"], 2),
        "d_plantar": round(style["pf_offset"], 2),
        "heel_up": round(float(heel_up), 2),
        "brake_g": runner.brake_g,
        "brake_ms": runner.brake_ms,
        "segments": segments(ev["label"]),
        "sensors": imu,
    }


def demo_run(seed: int = 7) -> SimulatedRun:
    """The 3-minute demo run: a typical relaxed rearfoot runner, foot sensor at
    200 Hz, with :data:`DEMO_FAULTS`."""
    return simulate(180.0, 200.0, runner=RunnerParams(), faults=DEMO_FAULTS, seed=seed)
