"""The running-IMU simulator: timing, kinematics of each fault, sensor physics, I/O."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from companion.errors import SourceError
from companion.source.recording import labels_path, read_labels, read_recording, truth_path
from companion.source.simulator import (
    DEMO_FAULTS,
    FAULT_BANDS,
    FAULT_SIZE_RANGES,
    SIDES,
    SOFT_JOLT_SCALE,
    STRIKES,
    TYPICAL_STRIKE_DEG,
    WIDE_RATES_HZ,
    FaultSegment,
    RunConditions,
    RunnerParams,
    Turns,
    demo_run,
    draw_world,
    mount_matrix,
    parse_faults,
    simulate,
    write_simulation,
)
from companion.types import G_MPS2, Label

QUIET = RunnerParams(noise_acc_mps2=0.0, noise_gyr_dps=0.0, bias_acc_mps2=0.0, bias_gyr_dps=0.0)


def _by_label(ev: dict[str, np.ndarray], key: str, label: Label) -> np.ndarray:
    vals = ev[key][ev["label"] == label.value]
    return vals[np.isfinite(vals)]


@pytest.mark.parametrize("cadence", [155.0, 172.0, 190.0])
def test_cadence_and_stride_count_match_the_request(cadence: float) -> None:
    run = simulate(60.0, 100.0, runner=RunnerParams(cadence_spm=cadence), seed=2)
    t_ic = run.events["foot"]["t_ic_s"]
    stride_s = 120.0 / cadence
    spacing = np.diff(t_ic)
    assert np.mean(spacing) == pytest.approx(stride_s, rel=0.01)
    assert np.std(spacing) / np.mean(spacing) < 0.05
    running_s = 60.0 - 3.0  # after the standing start
    assert abs(len(t_ic) - running_s / stride_s) <= 2
    assert t_ic[0] > 3.0 and t_ic[-1] < 60.0
    assert len(run.truth) == len(t_ic)
    # toe-off inside each stride, mid-swing between toe-off and the next contact
    ev = run.events["foot"]
    ok = np.isfinite(ev["t_msw_s"])
    assert np.all(ev["t_to_s"][ok] > t_ic[ok])
    assert np.all(ev["t_msw_s"][ok] > ev["t_to_s"][ok])
    k = np.flatnonzero(ok)
    k = k[k + 1 < len(t_ic)]
    assert np.all(ev["t_msw_s"][k] < t_ic[k + 1])
    contact = ev["t_to_s"] - t_ic
    assert 0.15 < np.nanmean(contact) < 0.35


def test_relaxed_kinematics_are_in_published_ranges() -> None:
    for strike, lo, hi in (
        ("rearfoot", 8.0, 25.0),
        ("midfoot", -1.6, 8.0),
        ("forefoot", -20, -1.6),
    ):
        ev = simulate(30.0, 100.0, runner=RunnerParams(strike=strike), seed=4).events["foot"]
        sa = ev["strike_angle_deg"][3:]  # after the ramp-up strides
        assert lo < np.mean(sa) < hi, strike
        rom = ev["ankle_rom_deg"][3:]
        rom = rom[np.isfinite(rom)]
        assert 30.0 < np.mean(rom) < 55.0, strike


def _fault_run(label: str, seed: int = 3, **kw: object) -> dict[str, np.ndarray]:
    runner = RunnerParams(**kw)  # type: ignore[arg-type]
    faults = parse_faults(f"{label}@30-60")
    return simulate(90.0, 100.0, runner=runner, faults=faults, seed=seed).events["foot"]


@pytest.mark.parametrize("strike", ["rearfoot", "forefoot"])
def test_rigid_strides_have_a_smaller_ankle_range(strike: str) -> None:
    ev = _fault_run("rigid", strike=strike)
    rel = _by_label(ev, "ankle_rom_deg", Label.RELAXED)
    rig = _by_label(ev, "ankle_rom_deg", Label.RIGID)
    assert len(rig) > 30
    assert np.mean(rig) < 0.6 * np.mean(rel)
    # the heel cannot come down as far: the foot is not flat at mid-stance
    ms_rel = _by_label(ev, "midstance_foot_deg", Label.RELAXED)
    ms_rig = _by_label(ev, "midstance_foot_deg", Label.RIGID)
    assert np.mean(ms_rig) < np.mean(ms_rel) - 2.0


@pytest.mark.parametrize("seed", [3, 11])
def test_forced_dorsiflexion_lands_with_toes_higher_and_longer_contact(seed: int) -> None:
    ev = _fault_run("forced_dorsiflexion", seed=seed)
    rel = _by_label(ev, "strike_angle_deg", Label.RELAXED)
    fdf = _by_label(ev, "strike_angle_deg", Label.FORCED_DORSIFLEXION)
    assert np.mean(fdf) > np.mean(rel) + 6.0
    c_rel = _by_label(ev, "contact_time_s", Label.RELAXED)
    c_fdf = _by_label(ev, "contact_time_s", Label.FORCED_DORSIFLEXION)
    assert np.mean(c_fdf) > 1.04 * np.mean(c_rel)
    # severity varies stride to stride: not one memorisable shape
    assert np.std(fdf) > 0.5


@pytest.mark.parametrize("strike", ["rearfoot", "midfoot", "forefoot"])
def test_forced_plantarflexion_lands_lower_and_keeps_the_heel_up(strike: str) -> None:
    ev = _fault_run("forced_plantarflexion", strike=strike)
    rel = _by_label(ev, "strike_angle_deg", Label.RELAXED)
    fpf = _by_label(ev, "strike_angle_deg", Label.FORCED_PLANTARFLEXION)
    assert np.mean(fpf) < np.mean(rel) - 6.0
    ms_rel = _by_label(ev, "midstance_foot_deg", Label.RELAXED)
    ms_fpf = _by_label(ev, "midstance_foot_deg", Label.FORCED_PLANTARFLEXION)
    assert abs(np.mean(ms_rel)) < 1.0  # relaxed: the foot lies flat at mid-stance
    assert np.mean(ms_fpf) < -4.0  # heel held off the ground


def test_labels_follow_the_fault_of_each_initial_contact() -> None:
    faults = [
        FaultSegment(10.0, 20.0, Label.RIGID),
        FaultSegment(25.0, 30.0, Label.FORCED_DORSIFLEXION),
    ]
    run = simulate(35.0, 100.0, faults=faults, seed=1)
    for s in run.truth:
        want = Label.RELAXED
        for f in faults:
            if f.start_s <= s.t_ic_s < f.end_s:
                want = f.label
        assert s.label == want


def test_standing_start_reads_gravity_only() -> None:
    run = simulate(6.0, 200.0, sensors=("foot", "shank"), seed=5, standing_s=3.0)
    for name, batch in run.recording.data.items():
        still = batch.t_s < 2.5
        norm = np.linalg.norm(batch.acc[still], axis=1)
        assert np.mean(norm) == pytest.approx(G_MPS2, abs=0.35), name
        assert np.max(np.abs(batch.gyr[still])) < 6.0, name
    assert run.events["foot"]["t_ic_s"][0] > 3.0


@pytest.mark.parametrize("segment", ["foot", "shank"])
def test_gyro_integral_matches_the_true_angle_change(segment: str) -> None:
    rng = np.random.default_rng(0)
    runner = dataclasses.replace(
        QUIET, frontal_amp_deg=0.0, mount_rpy_deg=RunnerParams.random(rng).mount_rpy_deg
    )
    run = simulate(12.0, 400.0, runner=runner, sensors=(segment,), seed=8)
    b = run.recording.data[segment]
    # back into the segment frame with the known mount; sagittal rate = gyr_ml
    gyr_seg = b.gyr @ mount_matrix(runner.mount_rpy_deg).T
    angle = np.concatenate([[0.0], np.cumsum(0.5 * (gyr_seg[1:, 1] + gyr_seg[:-1, 1]))]) / 400.0
    truth = run.angles[f"{segment}_deg"]
    ev = run.events[segment]
    for k in range(4, 10):  # several whole strides, IC to IC
        i, j = np.searchsorted(b.t_s, [ev["t_ic_s"][k] + 0.1, ev["t_ic_s"][k + 1] + 0.1])
        assert angle[j] - angle[i] == pytest.approx(truth[j] - truth[i], abs=1.5)
        mid = (i + j) // 2  # and a part-stride change, tens of degrees
        assert angle[mid] - angle[i] == pytest.approx(truth[mid] - truth[i], abs=1.5)
    assert np.ptp(truth) > 40.0


def test_mounting_changes_axes_but_not_norms() -> None:
    a = simulate(10.0, 100.0, runner=QUIET, seed=9).recording.data["foot"]
    rotated = dataclasses.replace(QUIET, mount_rpy_deg=(40.0, -70.0, 130.0))
    b = simulate(10.0, 100.0, runner=rotated, seed=9).recording.data["foot"]
    assert np.array_equal(a.t_s, b.t_s)
    na, nb = np.linalg.norm(a.acc, axis=1), np.linalg.norm(b.acc, axis=1)
    ga, gb = np.linalg.norm(a.gyr, axis=1), np.linalg.norm(b.gyr, axis=1)
    unsat = (np.abs(a.acc).max(1) < 150) & (np.abs(b.acc).max(1) < 150)
    assert np.allclose(na[unsat], nb[unsat], atol=0.02)
    assert np.allclose(ga, gb, atol=0.2)
    assert np.mean(np.abs(a.acc - b.acc)) > 3.0
    assert np.mean(np.abs(a.gyr - b.gyr)) > 30.0
    # and the known rotation maps one onto the other
    m = mount_matrix(rotated.mount_rpy_deg)
    assert np.allclose(b.gyr @ m.T, a.gyr, atol=0.2)


def test_packet_loss_leaves_gaps_and_invents_nothing() -> None:
    full = simulate(20.0, 200.0, seed=6).recording.data["foot"]
    lossy = simulate(20.0, 200.0, seed=6, packet_loss=0.2, packet_size=4).recording.data["foot"]
    assert len(lossy) == pytest.approx(0.8 * len(full), rel=0.02)
    idx = np.searchsorted(full.t_s, lossy.t_s)
    assert np.array_equal(full.t_s[idx], lossy.t_s)  # every kept sample is a real one
    assert np.array_equal(full.acc[idx], lossy.acc)
    assert np.array_equal(full.gyr[idx], lossy.gyr)
    gaps = np.diff(lossy.t_s) * 200.0
    assert np.all(np.diff(lossy.t_s) > 0)
    big = np.round(gaps[gaps > 1.5])
    assert len(big) > 10 and np.all(big % 4 == 1)  # whole 4-sample packets missing


def test_jitter_keeps_time_strictly_increasing() -> None:
    b = simulate(10.0, 400.0, seed=1, jitter_s=0.001).recording.data["foot"]
    dt = np.diff(b.t_s)
    assert np.all(dt > 0)
    assert np.std(dt) > 1e-4


def test_saturation_at_the_sensor_ranges() -> None:
    run = simulate(20.0, 1000.0, sensors=("foot", "shank"), seed=2)
    foot = run.recording.data["foot"]
    assert np.max(np.abs(foot.acc)) <= 16 * G_MPS2
    assert np.max(np.abs(foot.gyr)) <= 2000.0
    assert np.max(np.abs(foot.acc)) > 8 * G_MPS2  # heel-strike impacts are large
    assert np.max(np.abs(foot.gyr)) > 500.0  # swing
    tight = simulate(20.0, 1000.0, seed=2, acc_range_g=4.0, gyr_range_dps=250.0)
    t = tight.recording.data["foot"]
    assert np.max(np.abs(t.acc)) == pytest.approx(4 * G_MPS2)
    assert np.max(np.abs(t.gyr)) == pytest.approx(250.0)
    assert np.mean(np.abs(t.gyr) >= 250.0 - 1e-9) > 0.05


def test_same_seed_same_run_other_seed_other_run() -> None:
    kw = dict(sensors=("left_foot", "right_foot"), packet_loss=0.05, faults=DEMO_FAULTS[:1])
    a = simulate(70.0, 100.0, seed=4, **kw)  # type: ignore[arg-type]
    b = simulate(70.0, 100.0, seed=4, **kw)  # type: ignore[arg-type]
    c = simulate(70.0, 100.0, seed=5, **kw)  # type: ignore[arg-type]
    for name in a.recording.data:
        assert np.array_equal(a.recording.data[name].acc, b.recording.data[name].acc)
        assert np.array_equal(a.recording.data[name].t_s, b.recording.data[name].t_s)
        assert not np.array_equal(
            a.recording.data[name].gyr[:500], c.recording.data[name].gyr[:500]
        )
    assert a.truth == b.truth


def test_two_feet_run_half_a_stride_apart() -> None:
    run = simulate(30.0, 100.0, sensors=("left_foot", "right_foot"), seed=3)
    left, right = run.events["left_foot"]["t_ic_s"], run.events["right_foot"]["t_ic_s"]
    n = min(len(left), len(right)) - 1
    stride = 120.0 / 170.0
    lag = (left[:n] - right[:n]) % stride
    assert np.mean(lag) == pytest.approx(stride / 2, abs=0.05)
    assert run.recording.sensors["left_foot"].side == "left"
    assert "left_foot_deg" in run.angles and "right_foot_deg" in run.angles


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate_hz": 10.0}, "25-2000 Hz"),
        ({"rate_hz": 5000.0}, "25-2000 Hz"),
        ({"duration_s": -1.0}, "positive"),
        ({"sensors": ("wrist",)}, "unknown sensor"),
        ({"sensors": "foot"}, "list of names"),
        ({"sensors": ()}, "at least one"),
        ({"packet_loss": 0.7}, "0-0.5"),
        ({"packet_loss": -0.1}, "0-0.5"),
        ({"packet_size": -2}, "packet_size"),
        ({"jitter_s": 0.1}, "jitter"),
        ({"runner": RunnerParams(cadence_spm=20.0)}, "cadence"),
        ({"runner": RunnerParams(strike="toes")}, "strike"),
        ({"runner": RunnerParams(side="middle")}, "side"),
        ({"faults": [FaultSegment(10, 5, Label.RIGID)]}, "END after START"),
        ({"duration_s": float("nan")}, "finite"),
        ({"runner": RunnerParams(rigid_keep=1.5)}, "rigid_keep"),
        ({"runner": RunnerParams(brake_g=-1.0)}, "brake_g"),
        ({"runner": RunnerParams(foot_sensor_m=(2.0, 0.0, 0.0))}, "0.5 m"),
        ({"adc_bits": 4}, "adc_bits"),
        ({"clock_ppm": 5000.0}, "clock drift"),
        ({"ble_interval_ms": 1.0}, "connection interval"),
        ({"turns": Turns(every_m=20.0, angle_deg=180.0, radius_m=10.0)}, "no straight"),
        ({"turns": Turns(direction="up")}, "left or right"),
        ({"duration_s": 0.03, "packet_loss": 0.5, "packet_size": 1}, "lost all but"),
    ],
)
def test_bad_arguments_raise_source_error(kwargs: dict[str, object], match: str) -> None:
    args = {"duration_s": 10.0, "rate_hz": 100.0, **kwargs}
    with pytest.raises(SourceError, match=match):
        simulate(**args)  # type: ignore[arg-type]


def test_parse_faults() -> None:
    spec = "rigid@60-90,forced_dorsiflexion@100-130,forced_plantarflexion@140-170"
    assert parse_faults(spec) == DEMO_FAULTS
    assert parse_faults(" rigid @ 1.5-2 ") == [FaultSegment(1.5, 2.0, Label.RIGID)]
    for bad in ("stiff@1-2", "rigid@5-1", "rigid 1-2", "rigid@1-2,rigid@1.5-3", "", "relaxed@1-2"):
        with pytest.raises(SourceError, match=r"LABEL@START-END|overlap"):
            parse_faults(bad)


def test_write_simulation_round_trips_exactly(tmp_path: Path) -> None:
    run = simulate(8.0, 200.0, sensors=("foot", "shank"), seed=2, packet_loss=0.1, jitter_s=1e-4)
    out = tmp_path / "sim.csv"
    write_simulation(run, out)
    back = read_recording(out)
    assert set(back.data) == {"foot", "shank"}
    for name, batch in run.recording.data.items():
        got = back.data[name]
        assert np.array_equal(got.t_s, batch.t_s)
        assert np.array_equal(got.acc, batch.acc)
        assert np.array_equal(got.gyr, batch.gyr)
        assert back.sensors[name] == run.recording.sensors[name]
    assert back.sensors["foot"].mount == "auto"
    assert back.metadata["source"] == "simulator"
    assert back.metadata["seed"] == "2"
    assert back.metadata["sim.mount_foot"] == "0,0,0"
    assert read_labels(labels_path(out)) == run.truth


RATES = (25.0, 50.0, 100.0, 400.0, 2000.0, 200.0)


def test_random_runners_simulate_at_every_rate() -> None:
    rng = np.random.default_rng(12)
    runners = [RunnerParams.random(rng) for _ in range(12)]
    assert {r.side for r in runners} == {"left", "right"}
    assert {r.strike for r in runners} == {"rearfoot", "midfoot", "forefoot"}
    assert len({r.mount_rpy_deg for r in runners}) == 12
    for i, (runner, rate) in enumerate(zip(runners[:6], RATES, strict=True)):
        run = simulate(12.0, rate, runner=runner, sensors=("foot", "shank"), seed=i)
        for b in run.recording.data.values():
            assert len(b) == int(12.0 * rate)
            assert np.all(np.isfinite(b.acc)) and np.all(np.isfinite(b.gyr))
        assert run.recording.sensors["foot"].side == runner.side
        assert len(run.events["foot"]["t_ic_s"]) > 8


def test_demo_run_has_every_fault_in_its_window() -> None:
    run = demo_run()
    ev = run.events["foot"]
    assert run.recording.sensors["foot"].rate_hz == 200.0
    assert len(run.recording.data["foot"]) == 180 * 200
    for f in DEMO_FAULTS:
        inside = (ev["t_ic_s"] >= f.start_s) & (ev["t_ic_s"] < f.end_s)
        assert np.all(ev["label"][inside] == f.label.value)
        assert inside.sum() > 35
    assert np.all(ev["label"][ev["t_ic_s"] < 60.0] == Label.RELAXED.value)


@pytest.mark.parametrize("strike", ["rearfoot", "midfoot", "forefoot"])
def test_flat_foot_in_mid_stance_reads_gravity_at_the_true_tilt(strike: str) -> None:
    runner = dataclasses.replace(QUIET, strike=strike, mount_rpy_deg=(25.0, -35.0, 110.0))
    run = simulate(12.0, 400.0, runner=runner, seed=3)
    b = run.recording.data["foot"]
    rpy = [float(v) for v in run.recording.metadata["sim.mount_foot"].split(",")]
    f_seg = b.acc @ mount_matrix(rpy).T  # back into the foot frame with the known mount
    norm_g = np.linalg.norm(f_seg, axis=1) / G_MPS2
    # at rest the accelerometer reads "up": f_x = g sin(foot angle), toes up positive
    pitch = np.degrees(np.arcsin(np.clip(f_seg[:, 0] / np.linalg.norm(f_seg, axis=1), -1, 1)))
    truth = run.angles["foot_deg"]
    ev = run.events["foot"]
    checked = 0
    for k in range(3, len(ev["t_ic_s"]) - 1):
        t0, contact = ev["t_ic_s"][k], ev["contact_time_s"][k]
        mid = (b.t_s >= t0 + 0.38 * contact) & (b.t_s <= t0 + 0.42 * contact)
        mid &= np.abs(truth) < 1.0
        assert mid.sum() >= 3, k  # the foot lies flat in mid-stance
        assert np.all(np.abs(b.gyr[mid] @ mount_matrix(rpy).T)[:, 1] < 50.0), k
        assert np.all(np.abs(norm_g[mid] - 1.0) < 0.15), (k, norm_g[mid])
        assert np.all(np.abs(pitch[mid] - truth[mid]) < 3.0), (k, pitch[mid] - truth[mid])
        checked += 1
    assert checked >= 8


# ----------------------------------------------------------------------------- the wide world


def test_classic_world_is_the_first_simulators_seed_for_seed() -> None:
    """Numbers from the simulator before the wide world existed: the classic draws and
    runs must stay the same, so figures measured on them stay comparable."""
    r = RunnerParams.random(np.random.default_rng(12))
    assert r.cadence_spm == pytest.approx(161.22164986359624, rel=1e-12)
    assert r.strike_angle_deg == pytest.approx(19.05668614159177, rel=1e-12)
    assert r.mount_rpy_deg == (55.866, -10.664, 108.588)
    runner = RunnerParams.random(np.random.default_rng(5))
    run = simulate(20.0, 100.0, seed=3, sensors=("foot", "shank"), packet_loss=0.05, runner=runner)
    foot, shank = run.recording.data["foot"], run.recording.data["shank"]
    assert len(foot) == len(shank) == 1900
    assert foot.t_s[700] == 7.54
    assert foot.acc[700] == pytest.approx(
        [-18.516755639648437, -23.348254589843748, -47.41476967773437]
    )
    assert shank.gyr[700] == pytest.approx([287.90283203125, -58.41064453125, -19.22607421875])
    assert run.events["foot"]["t_ic_s"][5] == pytest.approx(7.176416252271826, abs=1e-9)
    assert run.events["foot"]["strike_angle_deg"][5] == pytest.approx(-9.395903447967084, abs=1e-6)
    # a classic run's metadata names no wide-world condition
    assert not any(k.startswith(("sim.clock", "sim.turns")) for k in run.recording.metadata)


def test_run_conditions_defaults_are_simulates() -> None:
    import inspect

    params = inspect.signature(simulate).parameters
    for name, value in RunConditions().kwargs().items():
        assert params[name].default == value, name


def test_wide_world_draws_cover_what_real_runs_vary() -> None:
    rng = np.random.default_rng(3)
    runners = [RunnerParams.random(rng, "wide") for _ in range(300)]
    conds = [RunConditions.random(rng) for _ in range(300)]
    assert {r.strike for r in runners} == set(STRIKES) and {r.side for r in runners} == set(SIDES)
    fsa = np.array([r.strike_angle_deg for r in runners])
    assert fsa.max() > 25.0 and fsa.min() < -12.0  # steep heel strikes, forefoot
    fast = [r for r in runners if r.speed_mps >= 4.5]  # type: ignore[operator]
    assert len(fast) > 30
    assert np.mean([r.cadence_spm for r in fast]) > 185.0
    assert np.mean([r.contact_time_s for r in fast]) <= 0.2  # 0.15-0.20 s at 15-20 km/h
    assert max(r.brake_g for r in runners) > 5.0 and min(r.brake_g for r in runners) < 0.5
    for name, ranges in FAULT_SIZE_RANGES.items():
        vals = [getattr(r, name) for r in runners]
        lo, hi = min(a for a, _ in ranges), max(b for _, b in ranges)
        assert lo <= min(vals) and max(vals) <= hi, name
        assert min(vals) < lo + 0.1 * (hi - lo) and max(vals) > hi - 0.1 * (hi - lo), name
    soft = [r for r in runners if r.foot_jolt_scale != 1.0]
    assert all(r.strike != "rearfoot" for r in soft)  # soft landers land flat or forefoot
    assert 0.2 < len(soft) / sum(r.strike != "rearfoot" for r in runners) < 0.5
    assert all(SOFT_JOLT_SCALE[0] <= r.foot_jolt_scale <= SOFT_JOLT_SCALE[1] for r in soft)
    near = RunnerParams.random(rng, "wide", bands=dict.fromkeys(FAULT_SIZE_RANGES, "near"))
    assert 8.0 < near.dorsi_deg < 10.6 and 0.6 <= near.rigid_keep <= 0.75  # type: ignore[operator]
    assert {c.rate_hz for c in conds} == set(WIDE_RATES_HZ)
    packet_ms = np.array([1000 * c.packet_size / c.rate_hz for c in conds])
    assert packet_ms.min() < 15.0 and 150.0 < packet_ms.max() <= 200.0 + 1000 / 50
    assert max(c.packet_loss for c in conds) <= 0.05
    for flag in ("host_timestamps", "running_start"):
        assert 0.1 < np.mean([getattr(c, flag) for c in conds]) < 0.5, flag
    assert any(c.turns for c in conds) and any(c.dropouts_per_min > 0 for c in conds)
    assert {c.acc_range_g for c in conds} == {8.0, 16.0}
    assert {c.gyr_range_dps for c in conds} == {1000.0, 2000.0}
    assert max(abs(c.clock_ppm) for c in conds) > 70.0


def _wide_run(seed: int = 5, duration_s: float = 60.0, **changes: object) -> object:
    runner, cond = draw_world(seed)
    cond = dataclasses.replace(cond, **changes)  # type: ignore[arg-type]
    t = duration_s - 40.0
    faults = parse_faults(f"rigid@{t}-{t + 10},forced_plantarflexion@{t + 20}-{t + 35}")
    return simulate(duration_s, runner=runner, faults=faults, sensors=("foot", "shank"),
                    seed=seed, **cond.kwargs())  # fmt: skip


def _files(path: Path) -> list[bytes]:
    rec = [ln for ln in path.read_bytes().splitlines() if not ln.startswith(b"# start_wall")]
    return [b"\n".join(rec), labels_path(path).read_bytes(), truth_path(path).read_bytes()]


def test_wide_world_same_seed_same_files(tmp_path: Path) -> None:
    every = dict(
        host_timestamps=True,
        running_start=True,
        turns=Turns(every_m=40.0, radius_m=5.0),
        dropouts_per_min=3.0,
        clock_ppm=60.0,
        clock_offset_s=100.0,
        packet_loss=0.05,
    )
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_simulation(_wide_run(seed, **every), tmp_path / f"{name}.csv")  # type: ignore[arg-type]
    a, b, c = (_files(tmp_path / f"{n}.csv") for n in "abc")
    assert a == b
    assert all(x != y for x, y in zip(a, c, strict=True))


def test_fault_sizes_are_the_runners() -> None:
    runner = dataclasses.replace(
        QUIET, dorsi_deg=9.0, plantar_deg=15.0, rigid_keep=0.7, heel_up_deg=6.0
    )
    faults = parse_faults("forced_dorsiflexion@20-50,forced_plantarflexion@60-90,rigid@100-130")
    run = simulate(140.0, 100.0, runner=runner, faults=faults, seed=4)
    ev = run.events["foot"]
    fsa_rel = np.mean(_by_label(ev, "strike_angle_deg", Label.RELAXED)[3:])
    assert np.mean(_by_label(ev, "strike_angle_deg", Label.FORCED_DORSIFLEXION)) - fsa_rel == (
        pytest.approx(9.0, abs=1.2)
    )
    assert fsa_rel - np.mean(_by_label(ev, "strike_angle_deg", Label.FORCED_PLANTARFLEXION)) == (
        pytest.approx(15.0, abs=1.5)
    )
    rom_rel = np.mean(_by_label(ev, "ankle_rom_deg", Label.RELAXED)[3:])
    rom_rig = np.mean(_by_label(ev, "ankle_rom_deg", Label.RIGID))
    assert rom_rig / rom_rel == pytest.approx(0.7, abs=0.05)
    assert (run.info["d_dorsi"], run.info["d_plantar"], run.info["k_rom"]) == (9.0, 15.0, 0.7)
    # the heel stays up through a plantarflexed stance, by the runner's amount: the truth
    # says so, and so do the dense angles over the middle of each stance
    heel = _by_label(ev, "heel_up_deg", Label.FORCED_PLANTARFLEXION)
    assert np.mean(heel) == pytest.approx(6.0, abs=0.6) and heel.min() > 4.0
    assert np.max(_by_label(ev, "heel_up_deg", Label.RELAXED)) < 0.5
    t, foot = run.angles["t_s"], run.angles["foot_deg"]
    fpf = ev["label"] == Label.FORCED_PLANTARFLEXION.value
    for t0, c, h in zip(
        ev["t_ic_s"][fpf], ev["contact_time_s"][fpf], ev["heel_up_deg"][fpf], strict=True
    ):
        mid = (t >= t0 + 0.3 * c) & (t <= t0 + 0.6 * c)
        assert np.all(foot[mid] < -0.7 * h)


@pytest.mark.parametrize("keep", [0.3, 0.75])
def test_rigid_keeps_its_share_of_the_motion(keep: float) -> None:
    runner = dataclasses.replace(QUIET, rigid_keep=keep)
    ev = simulate(70.0, 100.0, runner=runner, faults=parse_faults("rigid@25-60"), seed=2).events[
        "foot"
    ]
    ratio = np.mean(_by_label(ev, "ankle_rom_deg", Label.RIGID)) / np.mean(
        _by_label(ev, "ankle_rom_deg", Label.RELAXED)[3:]
    )
    assert ratio == pytest.approx(keep, abs=0.05)


def test_clipping_at_8_g_and_1000_dps_and_fast_swings_pass_1000() -> None:
    fast = dataclasses.replace(QUIET, cadence_spm=195.0, speed_mps=5.5, strike_angle_deg=26.0)
    wide = simulate(20.0, 400.0, runner=fast, seed=1).recording.data["foot"]
    assert np.abs(wide.gyr).max() > 1100.0  # a fast swing turns the foot past 1000 deg/s
    assert np.abs(wide.acc).max() > 10 * G_MPS2  # a steep heel strike: well over 8 g
    tight = simulate(20.0, 400.0, runner=fast, seed=1, acc_range_g=8.0, gyr_range_dps=1000.0)
    b = tight.recording.data["foot"]
    assert np.abs(b.acc).max() == pytest.approx(8 * G_MPS2)
    assert np.abs(b.gyr).max() == pytest.approx(1000.0)
    # every impact and swing peak saturates: flat tops at the rail, not a scaled signal
    assert np.sum(np.abs(b.acc) >= 8 * G_MPS2 - 1e-9) > len(tight.events["foot"]["t_ic_s"])
    assert np.sum(np.abs(b.gyr) >= 1000.0 - 1e-9) > len(tight.events["foot"]["t_ic_s"])
    unclipped = np.abs(wide.acc).max(axis=1) < 7.5 * G_MPS2  # (to one step of 16 g)
    assert b.acc[unclipped] == pytest.approx(wide.acc[unclipped], abs=16 * G_MPS2 / 2**15)


def test_late_swing_braking_is_a_jerk_well_before_the_impact() -> None:
    braking = dataclasses.replace(QUIET, brake_g=5.0, brake_ms=120.0)
    for segment, share in (("foot", 1.0), ("shank", 0.6)):
        plain = simulate(20.0, 400.0, runner=QUIET, sensors=(segment,), seed=3)
        run = simulate(20.0, 400.0, runner=braking, sensors=(segment,), seed=3)
        t = run.recording.data[segment].t_s
        # the same run but for the braking: the difference is the braking alone
        diff = np.linalg.norm(
            run.recording.data[segment].acc - plain.recording.data[segment].acc, axis=1
        )
        ic = run.events[segment]["t_ic_s"]
        assert np.array_equal(ic, plain.events[segment]["t_ic_s"])
        peaks = []
        for k in range(4, len(ic) - 1):
            swing = (t > ic[k - 1] + 0.3) & (t < ic[k])
            i = int(np.argmax(np.where(swing, diff, 0.0)))
            peaks.append(diff[i] / G_MPS2)
            assert -0.13 < t[i] - ic[k] < -0.06, (segment, k)  # 60-130 ms before contact
            stance = (t >= ic[k]) & (t < ic[k] + 0.2)
            assert diff[stance].max() < 0.05 * G_MPS2  # the stance is untouched
        # 5 g at the foot (varied 15 % stride to stride), a little less at the shank
        assert np.median(peaks) == pytest.approx(5.0 * share, rel=0.2), segment
        assert min(peaks) > 0.4 * 5.0 * share, segment


def test_host_timestamps_step_unevenly_and_the_truth_follows_them() -> None:
    kw = dict(runner=QUIET, seed=2, packet_size=8, packet_loss=0.03)
    dev = simulate(30.0, 406.0, **kw)  # type: ignore[arg-type]
    host = simulate(30.0, 406.0, host_timestamps=True, ble_interval_ms=7.5, **kw)  # type: ignore[arg-type]
    t = host.recording.data["foot"].t_s
    steps_ms = 1000.0 * np.diff(t)
    steps_ms = steps_ms[steps_ms < 5.0]  # not across a lost packet
    assert np.all(np.diff(t) > 0)
    assert np.median(steps_ms) == pytest.approx(1000 / 406, rel=0.2)
    assert np.percentile(steps_ms, 5) < 2.0 and np.percentile(steps_ms, 95) > 2.9  # 1.5-3.4 ms
    assert np.array_equal(host.recording.data["foot"].acc, dev.recording.data["foot"].acc)
    # the truth is on the host's clock: each impact (|acc| peak) sits as far after its
    # true contact in both runs
    lag = []
    for run in (dev, host):
        b, ic = run.recording.data["foot"], run.events["foot"]["t_ic_s"]
        norm = np.linalg.norm(b.acc, axis=1)
        peaks = [
            b.t_s[(b.t_s >= x) & (b.t_s < x + 0.05)][
                np.argmax(norm[(b.t_s >= x) & (b.t_s < x + 0.05)])
            ]
            - x
            for x in ic[3:-1]
            if np.sum((b.t_s >= x) & (b.t_s < x + 0.05)) > 5
        ]
        lag.append(np.median(peaks))
    assert lag[1] == pytest.approx(lag[0], abs=0.003)
    assert host.events["foot"]["t_ic_s"][5] > dev.events["foot"]["t_ic_s"][5] + 0.002  # latency


def test_packets_of_200_ms_and_long_dropouts() -> None:
    run = simulate(
        120.0, 100.0, seed=4, packet_size=20, packet_loss=0.05, dropouts_per_min=3.0,
        dropout_max_s=2.5,
    )  # fmt: skip
    t = run.recording.data["foot"].t_s
    lost = np.round(np.diff(t) * 100.0).astype(int) - 1
    gaps = lost[lost > 0]
    assert len(gaps) >= 6 and np.all(gaps % 20 == 0)  # whole 200 ms packets
    assert gaps.max() >= 60  # a dropout of 0.6 s or more
    assert run.info["sensors"]["foot"]["dropped"] > 0.05


def test_clock_drift_and_offset_move_samples_and_truth_alike() -> None:
    plain = simulate(60.0, 200.0, runner=QUIET, seed=1)
    run = simulate(60.0, 200.0, runner=QUIET, seed=1, clock_ppm=80.0, clock_offset_s=1000.0)
    a, b = plain.recording.data["foot"], run.recording.data["foot"]
    assert np.array_equal(a.acc, b.acc)
    assert b.t_s == pytest.approx(1000.0 + a.t_s * (1 + 80e-6), abs=1e-9)
    ic_a, ic_b = plain.events["foot"]["t_ic_s"], run.events["foot"]["t_ic_s"]
    assert ic_b == pytest.approx(1000.0 + ic_a * (1 + 80e-6), abs=1e-9)
    assert [s.t_ic_s for s in run.truth] == pytest.approx(list(ic_b))
    assert float(run.to_clock(30.0)) == pytest.approx(1000.0 + 30.0 * (1 + 80e-6))


def test_running_start_has_no_standing_and_full_strides_from_the_first() -> None:
    run = simulate(20.0, 200.0, runner=QUIET, seed=3, running_start=True)
    b, ev = run.recording.data["foot"], run.events["foot"]
    first_s = b.t_s < 1.0
    assert np.abs(b.gyr[first_s]).max() > 300.0  # running from the first sample
    assert ev["t_ic_s"][0] < 120.0 / 170.0 + 0.05 and bool(np.all(ev["ok"]))
    rear = TYPICAL_STRIKE_DEG["rearfoot"]
    assert np.all(np.abs(ev["strike_angle_deg"] - rear) < 6.0)  # no ramp-up strides
    assert run.info["t_run0_s"] == b.t_s[0]
    standing = simulate(20.0, 200.0, runner=QUIET, seed=3)
    assert not standing.events["foot"]["ok"][0] and standing.info["t_run0_s"] > 3.0


def _yaw_between_flat_feet(run: object, rate_hz: float) -> float:
    """Heading change (deg) from the gyro, summed between consecutive mid-stances (the
    foot lies flat there, so each stride's rotation is a yaw)."""
    b = run.recording.data["foot"]  # type: ignore[attr-defined]
    ev = run.events["foot"]  # type: ignore[attr-defined]
    mid = np.searchsorted(b.t_s, ev["t_ic_s"] + 0.4 * ev["contact_time_s"])
    w = np.radians(b.gyr) / rate_hz
    total = 0.0
    for i, j in itertools.pairwise(mid[3:-1]):
        q = np.array([1.0, 0.0, 0.0, 0.0])
        for v in w[i:j]:
            a = np.linalg.norm(v)
            h = np.concatenate([[np.cos(a / 2)], np.sin(a / 2) * v / max(a, 1e-12)])
            q = np.array([
                q[0] * h[0] - q[1] * h[1] - q[2] * h[2] - q[3] * h[3],
                q[0] * h[1] + q[1] * h[0] + q[2] * h[3] - q[3] * h[2],
                q[0] * h[2] - q[1] * h[3] + q[2] * h[0] + q[3] * h[1],
                q[0] * h[3] + q[1] * h[2] - q[2] * h[1] + q[3] * h[0],
            ])  # fmt: skip
        total += np.degrees(2 * np.arctan2(q[3], q[0]))
    return total


def test_turns_add_yaw_and_the_flat_foot_stays_still() -> None:
    runner = dataclasses.replace(QUIET, frontal_amp_deg=0.0)
    turns = Turns(every_m=40.0, angle_deg=90.0, radius_m=6.0, direction="left")
    run = simulate(60.0, 400.0, runner=runner, seed=2, turns=turns)
    # four left turns of 90 deg in about 190 m of running (the run ends on a straight)
    assert _yaw_between_flat_feet(run, 400.0) == pytest.approx(-360.0, abs=10.0)
    straight = simulate(60.0, 400.0, runner=runner, seed=2)
    assert abs(_yaw_between_flat_feet(straight, 400.0)) < 3.0
    # on a curve, too, the flat foot in mid-stance is still: gravity at its tilt, no rate
    b, ev = run.recording.data["foot"], run.events["foot"]
    for t0, c in zip(ev["t_ic_s"][3:-1], ev["contact_time_s"][3:-1], strict=True):
        mid = (b.t_s >= t0 + 0.38 * c) & (b.t_s <= t0 + 0.42 * c)
        assert np.all(np.abs(np.linalg.norm(b.acc[mid], axis=1) / G_MPS2 - 1.0) < 0.15)


def test_truth_file_round_trips_through_scoring(tmp_path: Path) -> None:
    from companion.scoring import load_truth, truth_spells

    run = _wide_run(7, 110.0, clock_offset_s=500.0, clock_ppm=-40.0)
    out = tmp_path / "w.csv"
    write_simulation(run, out)  # type: ignore[arg-type]
    truth = load_truth(labels_path(out), truth_path(out))
    doc = json.loads(truth_path(out).read_text())
    ev = run.events["foot"]  # type: ignore[attr-defined]
    foot = truth.strides["foot"]
    assert len(foot) == len(ev["t_ic_s"]) == len(doc["strides"])
    assert [s.t_ic_s for s in foot] == pytest.approx(list(ev["t_ic_s"]))
    done = np.isfinite(ev["t_to_s"])
    assert np.array([s.t_to_s for s in foot])[done] == pytest.approx(ev["t_to_s"][done], abs=1e-6)
    assert [s.fsa_deg for s in foot] == pytest.approx(list(ev["strike_angle_deg"]), abs=0.01)
    assert truth.has_score_flags and [s.score for s in foot] == list(ev["score"])
    assert 0 < sum(s.score for s in foot) < len(foot)
    first_scored = next(s for s in foot if s.score)
    assert first_scored.t_ic_s >= doc["t_score0_s"] >= doc["t_run0_s"] + 60.0 - 1e-6
    assert doc["setup"] == "both" and doc["rate_hz"] == run.recording.sensors["foot"].rate_hz  # type: ignore[attr-defined]
    assert not truth.relaxed_only
    # the fault spells on the recording's clock, from their first stride to the next one
    spells = truth_spells(truth, "foot")
    assert [lab for lab, _, _ in spells] == ["rigid", "forced_plantarflexion"]
    for (_, a, b), (start, end) in zip(spells, [(70.0, 80.0), (90.0, 105.0)], strict=True):
        assert run.to_clock(start) <= a < run.to_clock(start) + 0.8  # type: ignore[attr-defined]
        assert run.to_clock(end) <= b < run.to_clock(end) + 0.8  # type: ignore[attr-defined]
    # the shank's strides are the same leg's: the truth file's strides apply to them too
    assert [s.score for s in truth.strides["shank"]] == [s.score for s in foot]


def test_wide_evaluation_cases_cover_rates_sides_and_size_bands() -> None:
    from companion.estimator.evaluate import WIDE_RATES_HZ as EVAL_RATES
    from companion.estimator.evaluate import make_cases

    cases = make_cases(8, 3.0, seed=1, world="wide")
    assert {c.rate_hz for c in cases} == set(EVAL_RATES) and set(EVAL_RATES) <= set(WIDE_RATES_HZ)
    assert {c.runner.side for c in cases} == set(SIDES)  # type: ignore[union-attr]
    for name in FAULT_SIZE_RANGES:
        assert {c.bands[name] for c in cases} == set(FAULT_BANDS), name
    for c in cases:
        assert c.packet_loss <= 0.05 and c.conditions is not None
        assert 1 <= c.conditions.packet_size <= max(1, round(0.2 * c.rate_hz))
        labels = {lab for _, _, lab in c.faults}
        assert labels == {lab.value for lab in Label if lab is not Label.RELAXED}
        assert c.faults[0][0] == 70.0 and c.faults[-1][1] <= 175.0
    assert make_cases(8, 3.0, seed=1, world="wide") == cases  # the same seed, the same cases


def test_simulate_wide_then_score(tmp_path: Path) -> None:
    from tests.test_cli import companion

    out = tmp_path / "w.csv"
    res = companion(
        "simulate", "--world", "wide", "--seed", "11", "--minutes", "2", "--sensors",
        "foot,shank", "--rate", "100", "--packet-ms", "50", "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "wide world, seed 11" in res.stdout and truth_path(out).exists()
    doc = json.loads(truth_path(out).read_text())
    assert doc["rate_hz"] == 100.0 and doc["packet_ms"] == 50.0 and doc["segments"]
    scored = companion("score", str(out), "--json")
    assert scored.returncode == 0, scored.stderr
    rec = json.loads(scored.stdout)["recordings"][0]
    assert rec["setup"] == "foot+shank" and rec["sensors"]["foot"]["true_strides"] > 40
    assert rec["fault_spells"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--packet-ms", "0"], "--packet-ms: 0: must be between 1.0 and 1000.0 ms"),
        (["--world", "wide", "--rate", "5"], "--rate: 5: must be between 25.0 and 2000.0 Hz"),
        (["--world", "wide", "--loss", "0.9"], "--loss: 0.9: must be between 0.0 and 0.5"),
    ],
)
def test_simulate_options_a_user_gets_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from companion.cli import main

    # refused as the command line is read (a usage error), before anything is simulated
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(tmp_path / "x.csv"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_a_soft_landers_foot_sees_less_of_a_flat_landing_but_all_of_a_heel_strike() -> None:
    def landing_jolt_g(scale: float, faults: str = "") -> float:
        runner = RunnerParams(strike="midfoot", strike_angle_deg=2.0, foot_jolt_scale=scale)
        run = simulate(
            30.0, 400.0, runner=runner, faults=parse_faults(faults) if faults else [], seed=3
        )
        foot = run.recording.data["foot"]
        t_ic = np.asarray(run.events["foot"]["t_ic_s"])
        t_ic = t_ic[(t_ic > 12.0) & (t_ic < 28.0)]
        # the jolt: the largest change of specific force per sample just after contact
        jerk = np.concatenate(([0.0], np.linalg.norm(np.diff(foot.acc, axis=0), axis=1)))
        peaks = [jerk[(foot.t_s >= t) & (foot.t_s < t + 0.03)].max() for t in t_ic]
        return float(np.median(peaks)) / G_MPS2

    firm, soft = landing_jolt_g(1.0), landing_jolt_g(0.3)
    assert soft < 0.7 * firm
    # pulling the toes up lands on the heel: its extra jolt is a soft lander's too
    heel = landing_jolt_g(0.3, "forced_dorsiflexion@10-30")
    assert heel > 1.3 * soft
