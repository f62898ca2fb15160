"""The running-IMU simulator: timing, kinematics of each fault, sensor physics, I/O."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from companion.errors import SourceError
from companion.source.recording import labels_path, read_labels, read_recording
from companion.source.simulator import (
    DEMO_FAULTS,
    FaultSegment,
    RunnerParams,
    demo_run,
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
