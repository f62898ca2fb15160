"""The streaming estimator on small synthetic signals (independent of the simulator)."""

from __future__ import annotations

import gc
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from companion.errors import ConfigError
from companion.estimator import clipping, events, gaps, orientation
from companion.estimator.classify import Baseline, FeatureStats, classify
from companion.estimator.profile import RunnerProfile
from companion.estimator.settings import EstimatorSettings
from companion.estimator.streaming import StreamingEstimator
from companion.types import G_MPS2, Label, SampleBatch, SensorInfo, parse_mount
from tests._estimator_synth import make_stream

SETTINGS = EstimatorSettings(baseline_strides=8)
MOUNT = Rotation.from_euler("xyz", [25.0, 110.0, -60.0], degrees=True)


def _estimator(rate_hz: float = 200.0, **info: str) -> StreamingEstimator:
    return StreamingEstimator({"foot": SensorInfo("foot", rate_hz, **info)}, SETTINGS)


def _feed(est: StreamingEstimator, batch: SampleBatch, sizes: list[int]) -> list:
    out = []
    i = k = 0
    while i < len(batch):
        n = sizes[k % len(sizes)]
        k += 1
        out += est.push(batch.slice(i, i + n))
        i += n
    return out + est.finish()


def _drop_packets(batch: SampleBatch, seed: int, frac: float, size: int) -> SampleBatch:
    rng = np.random.default_rng(seed)
    keep = np.ones(len(batch), dtype=bool)
    n_packets = len(batch) // size
    for p in rng.choice(n_packets, int(frac * n_packets), replace=False):
        keep[p * size : (p + 1) * size] = False
    return SampleBatch(batch.sensor, batch.t_s[keep], batch.acc[keep], batch.gyr[keep])


@pytest.fixture(scope="module")
def stream() -> tuple[SampleBatch, np.ndarray]:
    batch, ics = make_stream(36.0, 200.0, mount=MOUNT, segment_angles=[(24.0, 32.0, 26.0)])
    return _drop_packets(batch, 3, 0.03, 8), ics


# --------------------------------------------------------------------------- chunking
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=12))
def test_same_reports_whatever_the_chunking(stream, sizes: list[int]) -> None:
    batch, _ = stream
    whole = _feed(_estimator(), batch, [len(batch)])
    assert len(whole) > 20
    assert _feed(_estimator(), batch, sizes) == whole


def test_one_sample_at_a_time_matches_one_big_batch(stream) -> None:
    batch, _ = stream
    short = batch.slice(0, 3000)
    assert _feed(_estimator(), short, [1]) == _feed(_estimator(), short, [len(short)])


# --------------------------------------------------------------------------- events
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 200.0, 400.0, 1000.0])
def test_contacts_found_at_every_rate(rate_hz: float) -> None:
    batch, ics = make_stream(30.0, rate_hz, mount=MOUNT, seed=int(rate_hz))
    reps = _estimator(rate_hz).push(batch)
    # a few strides go to alignment and the first anchored cycle; the rest are all found
    assert len(reps) >= len(ics) - 12
    err = np.array([np.min(np.abs(ics - r.t_ic_s)) for r in reps])
    # within a sample or so at 100 Hz and above; at 50 Hz, where a landing's impact falls in
    # one sample, the sagittal rate may time it, a sample or two late
    assert np.median(err) <= (max(0.012, 1.5 / rate_hz) if rate_hz >= 100 else 2.5 / rate_hz)
    stride = np.array([r.features["stride_s"] for r in reps])
    assert np.allclose(stride, 0.72, atol=max(0.015, 2.5 / rate_hz))


def test_mounting_found_from_the_data() -> None:
    batch, _ = make_stream(20.0, 200.0, mount=MOUNT)
    est = _estimator()
    est.push(batch)
    rot = est.tracks["foot"].rotation
    assert rot is not None
    # v_segment = R v_sensor and v_sensor = M^T v_segment, so R should be M
    assert np.allclose(rot, MOUNT.as_matrix(), atol=0.05)


def test_explicit_mount_is_used_and_checked() -> None:
    batch, _ = make_stream(20.0, 200.0)  # sensor axes = segment axes
    est = _estimator(mount="ap,ml,si")
    assert np.allclose(est.tracks["foot"].rotation, np.eye(3))
    assert len(est.push(batch)) > 15
    with pytest.raises(ConfigError, match="mount"):
        _estimator(mount="ap,ap,si")
    with pytest.raises(ConfigError, match="left-handed"):
        _estimator(mount="ap,ml,-si")
    assert np.allclose(parse_mount("x=-si,y=ap,z=-ml") @ [1.0, 0.0, 0.0], [0, 0, -1])


def test_long_gap_never_invents_or_spans_a_stride() -> None:
    batch, _ = make_stream(40.0, 200.0, mount=MOUNT)
    t = batch.t_s
    keep = (t < 20.0) | (t > 21.5)  # 1.5 s of lost link
    cut = SampleBatch("foot", t[keep], batch.acc[keep], batch.gyr[keep])
    est = _estimator()
    reps = est.push(cut)
    assert reps
    for r in reps:
        assert not (r.t_ic_s < 21.5 and r.t_end_s > 20.0)
    assert est.tracks["foot"].drops["gap"] == 1
    # a stride with only a short gap (one lost BLE packet) is bridged and kept
    keep = (t < 10.0) | (t > 10.04)
    short = SampleBatch("foot", t[keep], batch.acc[keep], batch.gyr[keep])
    est = _estimator()
    reps = est.push(short)
    assert any(r.t_ic_s < 10.0 < r.t_end_s and r.features["filled_ms"] > 0 for r in reps)


@pytest.mark.parametrize("sizes", [[1], [7, 1, 300], [2000]])
def test_a_long_gap_gives_the_same_reports_whatever_the_chunking(sizes: list[int]) -> None:
    batch, _ = make_stream(24.0, 200.0, mount=MOUNT)
    t = batch.t_s
    keep = (t < 12.0) | (t > 13.2)
    cut = SampleBatch("foot", t[keep], batch.acc[keep], batch.gyr[keep])
    whole = _feed(_estimator(), cut, [len(cut)])
    assert any(r.t_ic_s > 13.2 for r in whole)
    assert _feed(_estimator(), cut, sizes) == whole


@pytest.mark.parametrize("rate_hz", [50.0, 200.0])
def test_timestamp_jitter_neither_splits_nor_moves_strides(rate_hz: float) -> None:
    batch, _ = make_stream(30.0, rate_hz, mount=MOUNT)
    rng = np.random.default_rng(5)
    period = 1.0 / rate_hz
    jitter = np.clip(rng.normal(0.0, 0.1 * period, len(batch)), -0.45 * period, 0.45 * period)
    shaky = SampleBatch("foot", batch.t_s + jitter, batch.acc, batch.gyr)
    est_steady, est_shaky = _estimator(rate_hz), _estimator(rate_hz)
    steady = _feed(est_steady, batch, [len(batch)])
    whole = _feed(est_shaky, shaky, [len(shaky)])
    assert len(steady) > 20
    assert [r.stride for r in whole] == [r.stride for r in steady]  # no stride split or lost
    err = np.abs([a.t_ic_s - b.t_ic_s for a, b in zip(whole, steady, strict=True)])
    assert np.median(err) <= 0.1 * period and err.max() <= 0.45 * period  # the jitter itself
    assert est_shaky.tracks["foot"].drops["gap"] == est_steady.tracks["foot"].drops["gap"]
    assert _feed(_estimator(rate_hz), shaky, [1, 9, 50]) == whole


@pytest.fixture(scope="module")
def shaky_lossy() -> SampleBatch:
    """50 Hz, timestamp jitter of 0.3 periods (std) and 3 % of 4-sample packets lost:
    many steps between neighbours look like gaps and are recounted on the grid."""
    batch, _ = make_stream(40.0, 50.0, mount=MOUNT)
    rng = np.random.default_rng(8)
    p = 1.0 / 50.0
    jitter = np.clip(rng.normal(0.0, 0.3 * p, len(batch)), -0.45 * p, 0.45 * p)
    return _drop_packets(SampleBatch("foot", batch.t_s + jitter, batch.acc, batch.gyr), 8, 0.03, 4)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8))
def test_jitter_and_loss_give_the_same_reports_whatever_the_chunking(
    shaky_lossy: SampleBatch, sizes: list[int]
) -> None:
    whole = _feed(_estimator(50.0), shaky_lossy, [len(shaky_lossy)])
    assert len(whole) > 20
    assert _feed(_estimator(50.0), shaky_lossy, sizes) == whole


def test_jittered_neighbours_are_not_taken_for_a_lost_sample() -> None:
    rate = 50.0
    p = 1.0 / rate
    rng = np.random.default_rng(2)
    n = 3000
    t = np.arange(n) * p + np.clip(rng.normal(0.0, 0.2 * p, n), -0.45 * p, 0.45 * p)
    z = np.zeros((n, 3))
    pairwise = int(np.sum(np.rint(np.diff(t) * rate) > 1))
    assert pairwise > 50  # neighbours 1.5 periods apart: a lost sample by their own count
    reg = gaps.regularise(t, z, z, rate, 0.12, None)
    assert reg.filled.sum() <= pairwise / 3
    # a real loss in the same jitter is still bridged, with the right number of samples
    keep = np.ones(n, dtype=bool)
    keep[1000:1003] = False
    reg = gaps.regularise(t[keep], z[keep], z[keep], rate, 0.12, None)
    around = (reg.t_s > t[999]) & (reg.t_s < t[1003])
    assert reg.filled[around].sum() == 3


def test_standing_still_gives_no_strides() -> None:
    n = 200 * 30
    rng = np.random.default_rng(0)
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) + rng.normal(0, 0.05, (n, 3))
    gyr = rng.normal(0, 1.0, (n, 3))
    batch = SampleBatch("foot", np.arange(n) / 200.0, acc, gyr)
    assert _estimator().push(batch) == []


def test_saturated_signals_still_segment() -> None:
    batch, ics = make_stream(30.0, 200.0, mount=MOUNT)
    gyr = np.clip(batch.gyr * 4.0, -2000.0, 2000.0)  # a very fast swing, clipped
    clipped = SampleBatch("foot", batch.t_s, batch.acc, gyr)
    reps = _estimator().push(clipped)
    assert len(reps) >= len(ics) - 12
    assert any(r.features["clipped_ms"] > 0 for r in reps)


def test_time_going_backwards_is_refused() -> None:
    est = _estimator()
    batch, _ = make_stream(2.0, 200.0)
    est.push(batch.slice(10, 20))
    with pytest.raises(ValueError, match="does not follow"):
        est.push(batch.slice(0, 5))


# --------------------------------------------------------------------------- labels
def test_baseline_period_then_forced_dorsiflexion(stream) -> None:
    batch, _ = stream
    reps = _estimator().push(batch)
    learning = [r for r in reps if not r.baseline_ready]
    # the first strides of a run are passed over, then baseline_strides are learned from
    # (strides whose landing or cycle a lost packet broke are not learned from)
    assert SETTINGS.baseline_strides <= len(learning) <= 3 * SETTINGS.baseline_strides + 8
    assert all(r.label is Label.RELAXED for r in learning)
    ready = [r for r in reps if r.baseline_ready]
    inside = [r for r in ready if 24.5 < r.t_ic_s < 31.0]
    outside = [r for r in ready if r.t_ic_s < 23.5 or r.t_ic_s > 33.0]
    assert inside and outside
    assert sum(r.label is Label.FORCED_DORSIFLEXION for r in inside) >= 0.8 * len(inside)
    assert sum(r.label is Label.RELAXED for r in outside) >= 0.9 * len(outside)
    for r in reps:
        assert 0.0 <= r.confidence <= 1.0
        assert r.t_ic_s < r.t_to_s < r.t_end_s <= r.t_decided_s
        # a stride is decided within 0.1 s of its closing contact, once the first strides
        # (which teach the estimator this runner's landings, in the baseline period) are past
        if r.stride >= 8:
            assert r.t_decided_s - r.t_end_s <= 0.1


def test_supported_labels_follow_the_segments() -> None:
    est = StreamingEstimator(
        {
            "foot": SensorInfo("foot", 200.0, segment="foot"),
            "shank": SensorInfo("shank", 200.0, segment="shank"),
        },
        SETTINGS,
    )
    assert est.supported_labels("foot") == set(Label)
    assert est.supported_labels("shank") == {Label.RELAXED}
    assert est.supported_labels("nope") == set()


# --------------------------------------------------------------------------- profile
def test_profile_round_trip_gives_a_ready_baseline(stream, tmp_path) -> None:
    batch, _ = stream
    est = _estimator()
    est.push(batch)
    prof = est.profile()
    assert prof is not None and "strike_angle_deg" in prof.segments["foot"]
    path = tmp_path / "ana.json"
    prof.save(path)
    loaded = RunnerProfile.load(path)
    assert loaded.to_json() == prof.to_json()
    est2 = StreamingEstimator({"foot": SensorInfo("foot", 200.0)}, SETTINGS, loaded)
    reps = est2.push(batch)
    assert reps and all(r.baseline_ready for r in reps)


def test_no_profile_before_the_baseline_is_learned() -> None:
    assert _estimator().profile() is None


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "cannot be read"),
        (json.dumps({"format": "other"}), "damaged"),
        (
            json.dumps(
                {
                    "format": "companion-profile/1",
                    "segments": {"foot": {"x": {"median": 1, "mad": -1}}},
                }
            ),
            "damaged",
        ),
    ],
)
def test_bad_profile_file_says_what_to_do(tmp_path, content: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ConfigError, match=match) as exc:
        RunnerProfile.load(p)
    assert "delete it" in str(exc.value)
    with pytest.raises(ConfigError, match="does not exist"):
        RunnerProfile.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------- memory
def test_memory_does_not_grow_with_run_length() -> None:
    batch, _ = make_stream(20.0, 200.0, mount=MOUNT)
    est = _estimator()
    period = batch.t_s[-1] - batch.t_s[0] + 1.0 / 200.0

    def feed(times: int, offset: int) -> None:
        for k in range(times):
            shift = (offset + k) * period
            b = SampleBatch("foot", batch.t_s + shift, batch.acc, batch.gyr)
            for i in range(0, len(b), 500):
                est.push(b.slice(i, i + 500))

    feed(2, 0)
    tracemalloc.start()
    feed(2, 2)
    gc.collect()  # numpy's window views leave small cycles: what is kept counts, not those
    first, _ = tracemalloc.get_traced_memory()
    feed(6, 4)
    gc.collect()
    second, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert second - first < 50_000


# --------------------------------------------------------------------------- foot + shank
def test_foot_and_shank_measure_the_ankle_and_see_a_rigid_one() -> None:
    from companion.estimator.evaluate import packets
    from tests._estimator_synth import make_leg

    mounts = {
        "foot": Rotation.from_euler("xyz", [20.0, 100.0, 5.0], degrees=True),
        "shank": Rotation.from_euler("xyz", [80.0, -30.0, 40.0], degrees=True),
    }
    data, _ = make_leg(50.0, 200.0, ankle_scale=[(30.0, 40.0, 0.3)], mounts=mounts)
    sensors = {
        "foot": SensorInfo("foot", 200.0, segment="foot"),
        "shank": SensorInfo("shank", 200.0, segment="shank"),
    }

    def run(packet_s: float) -> list:
        est = StreamingEstimator(sensors, EstimatorSettings(baseline_strides=10))
        out = []
        for b in packets(data, packet_s):
            out += est.push(b)
        return out + est.finish()

    reps = run(0.05)
    foot = [r for r in reps if r.sensor == "foot" and r.baseline_ready]
    assert foot and all("ankle_rom_deg" in r.features for r in foot)
    relaxed = [r for r in foot if r.t_ic_s < 30.0 or r.t_ic_s > 41.0]
    rigid = [r for r in foot if 31.5 < r.t_ic_s < 39.5]
    assert np.median([r.features["ankle_rom_deg"] for r in relaxed]) == pytest.approx(37, abs=4)
    assert all(r.label is Label.RIGID for r in rigid)
    assert sum(r.label is Label.RELAXED for r in relaxed) >= 0.9 * len(relaxed)
    # the ankle features do not depend on how the two streams were packetised
    assert run(0.013) == reps


def _cycle(tilt_deg: float, rate_hz: float = 200.0, bias_dps: float = 0.0, push_deg: float = 0.0):
    """One planar stride cycle between two still instants: the foot pitched by ``tilt_deg``
    at both ends, a toes-up/toes-down swing, and a strong forward acceleration and
    braking (whose velocity change over the cycle is zero), as specific force and rate in
    the segment frame. The gyro reads ``bias_dps`` too."""
    n = round(0.7 * rate_hz)
    t = np.arange(n + 1) / rate_hz
    u = t / t[-1]
    swing = 60.0 * np.sin(2 * np.pi * u) * np.sin(np.pi * u)  # deg, back to 0 at the end
    swing -= push_deg * np.sin(np.pi * u) ** 2  # toes down through push-off and early swing
    theta = np.radians(tilt_deg + swing)
    rate = np.gradient(np.degrees(theta), t)
    a_fwd = 40.0 * np.sin(2 * np.pi * u)  # m/s², integrates to zero velocity change
    # specific force in the world (x forward, z down), turned into the tilted segment frame
    f_world = np.column_stack([a_fwd, np.zeros_like(u), np.full_like(u, -9.80665)])
    c, s_ = np.cos(theta), np.sin(theta)
    acc = np.column_stack(
        [
            c * f_world[:, 0] - s_ * f_world[:, 2],
            f_world[:, 1],
            s_ * f_world[:, 0] + c * f_world[:, 2],
        ]
    )
    gyr = np.column_stack([np.zeros_like(u), rate + bias_dps, np.zeros_like(u)])
    return acc, gyr


def test_cycle_closure_finds_the_tilt_where_no_sample_is_still() -> None:
    # the foot never holds still at the ends of this cycle in the accelerometer's eyes
    # (40 m/s² of forward acceleration), yet the closure gives the tilt to a fraction of
    # a degree; a gravity reading at the end sample is off by tens of degrees
    acc, gyr = _cycle(7.0)
    c = orientation.cycle_closure(acc, orientation.gyro_path(gyr, 200.0), 200.0)
    assert c is not None and abs(c.ratio - 1.0) < 0.02
    assert orientation.tilt_deg(c.up_start)[0] == pytest.approx(7.0, abs=0.3)
    assert orientation.tilt_deg(c.up_end)[0] == pytest.approx(7.0, abs=0.3)
    grav = orientation.gravity_up(acc[-2:])
    assert grav is not None and abs(orientation.tilt_deg(grav)[0] - 7.0) > 5.0


def test_tilt_anchor_learns_the_gyro_bias_from_consecutive_cycles() -> None:
    # a gyro reading 3 deg/s too high: each cycle carries up a little wrong; consecutive
    # closures disagree by the bias x time, and the estimate converges on it
    anchor = orientation.TiltAnchor()
    for _ in range(40):
        acc, gyr = _cycle(3.0, bias_dps=3.0)
        path = orientation.gyro_path(gyr - anchor.bias_dps, 200.0)
        anchor.clean(orientation.cycle_closure(acc, path, 200.0), None)
    assert anchor.bias_dps[1] == pytest.approx(3.0, abs=0.3)


def test_gyro_bias_on_every_axis_is_corrected_and_never_wanders_off() -> None:
    # a bias on all three axes: the tilt each cycle carries to its end comes right (what
    # the cycles show of the bias is learned; a rotation about the vertical shows as no
    # tilt and stays at the prior); with the bias gone the estimate returns to zero
    # instead of drifting on (it once grew by 2 deg/s a minute)
    true_bias = np.array([2.0, 3.0, -2.5])
    anchor = orientation.TiltAnchor()

    def cycle(bias: np.ndarray) -> orientation.Closure:
        acc, gyr = _cycle(3.0, push_deg=50.0)
        path = orientation.gyro_path(gyr + bias - anchor.bias_dps, 200.0)
        c = orientation.cycle_closure(acc, path, 200.0)
        assert c is not None
        return c

    first = cycle(true_bias)
    assert max(abs(d) for d in np.subtract(orientation.tilt_deg(first.up_end), (3.0, 0.0))) > 0.8
    for _ in range(80):
        anchor.clean(cycle(true_bias), None)
    assert anchor.bias_dps[1] == pytest.approx(3.0, abs=0.3)
    pitch, roll = orientation.tilt_deg(cycle(true_bias).up_end)
    # the vertical axis's bias shows only faintly in this planar swing: the standing prior
    # keeps most of it, half a degree of roll by the cycle's end
    assert pitch == pytest.approx(3.0, abs=0.3) and roll == pytest.approx(0.0, abs=0.6)
    for _ in range(120):
        anchor.clean(cycle(np.zeros(3)), None)
    assert np.allclose(anchor.bias_dps, 0.0, atol=0.4)


def test_gravity_fallback_is_corrected_by_the_offset_clean_cycles_showed() -> None:
    anchor = orientation.TiltAnchor()
    truth = orientation.up_from_tilt(2.0, 0.0)
    for _ in range(10):  # the foot's gravity reading at the anchor is 4 deg high
        closure = orientation.Closure(truth, truth, 1.0, 0.7 * np.eye(3))
        anchor.clean(closure, orientation.up_from_tilt(6.0, 0.0))
    up = anchor.fallback(orientation.up_from_tilt(6.0, 0.0))
    assert up is not None and orientation.tilt_deg(up)[0] == pytest.approx(2.0, abs=0.05)
    # with the last stance's closure at hand it leans on that (one stride on, little moves)
    up = anchor.fallback(orientation.up_from_tilt(16.0, 0.0), orientation.up_from_tilt(2.0, 0.0))
    assert up is not None and orientation.tilt_deg(up)[0] < 3.5


# --------------------------------------------------------------------------- input parts
def test_a_lost_swing_peak_comes_back_as_a_bump() -> None:
    x = np.zeros((12, 3))
    x[:, 1] = 700.0 * np.sin(np.linspace(0.3, 2.8, 12))  # a swing peak
    truth = x[:, 1].copy()
    x[4:8, 1] = np.linspace(x[3, 1], x[8, 1], 6)[1:5]  # bridged by a straight line
    gaps.refill_quadratic(x, 4, 7)
    assert x[4:8, 1].max() > 600.0  # the straight line stays near 520
    assert np.abs(x[4:8, 1] - truth[4:8]).max() < 80.0


def test_full_scale_is_learned_from_repeated_exact_values_and_rebuilt() -> None:
    fs = clipping.FullScale(clipping.DEFAULT_GYR_DPS)
    peaks = np.array([100.0, 700.0, 1000.0, 1000.0, 1000.0, 1000.0, 600.0, 999.0])
    flags = fs.update(peaks)
    # an 1000 deg/s sensor clips: from the third exact repeat on it is flagged
    assert flags.tolist() == [False, False, False, False, True, True, False, False]
    assert fs.level == 1000.0
    g = np.zeros((9, 3))
    g[:, 1] = [200.0, 500.0, 800.0, 1000.0, 1000.0, 1000.0, 800.0, 500.0, 200.0]
    clipped = np.abs(g[:, 1]) >= 1000.0
    assert clipping.unclip(g, clipped, 0, 9, max_run=5) == 9
    # the peak comes back above full scale (the parabola of its flanks), never below it
    assert g[4, 1] > 1030.0 and (g[3:6, 1] >= 1000.0).all()


def test_landing_rise_and_kink_find_where_the_rate_turns() -> None:
    # a foot swinging down into contact at sample 20, then stopped and turned by the ground
    g = np.concatenate((np.linspace(100.0, -400.0, 21), np.linspace(-300.0, 0.0, 10)))
    found = events.landing_rise(g, 5, 3, 150.0)
    assert found is not None and found[0] == 20 and found[1] < len(g)
    # a shank pushed forward: its rate bends, downwards here
    g = np.concatenate((np.full(20, -80.0), np.full(12, -220.0)))
    found = events.landing_kink(g, 5, 3, 60.0)
    assert found is not None and abs(found[0] - 20) <= 1


def test_an_impact_onset_is_where_a_jolt_begins_not_an_earlier_jolts_tail() -> None:
    # jerk (m/s³), one sample of context before the span: a braking jolt that peaked before
    # the span falls through its first samples; the landing's edge rises at sample 6
    jerk = np.array([1500.0, 1300.0, 1100.0, 100.0, 50.0, 40.0, 600.0, 1200.0, 800.0, 200.0])
    assert events.impact_onset(jerk, 1, 1000.0, 100.0, lead=1) == 6
    # without the context the tail's first sample passes for an onset
    assert events.impact_onset(jerk[1:], 1, 1000.0, 100.0) == 0
    # a search resumed where the last ended, the sample before as context, finds what one
    # search finds (the gate scans as samples come), in the tail or after it
    whole = events.impact_onset(jerk, 1, 1000.0, 100.0, lead=1)
    for cut in (2, 3, 4, 5):
        assert events.impact_onset(jerk[: cut + 1], 1, 1000.0, 100.0, lead=1) is None
        resumed = events.impact_onset(jerk[cut - 1 :], 1, 1000.0, 100.0, lead=1)
        assert resumed is not None and cut - 1 + resumed == whole
    # a landing whose edge began a sample before the span (still rising) is taken there
    rising = np.array([400.0, 800.0, 1500.0, 700.0, 100.0, 50.0])
    assert events.impact_onset(rising, 1, 1000.0, 100.0, lead=1) == 1


def test_a_late_swing_bump_is_not_taken_for_the_landing() -> None:
    # a braking bump 0.1 s before each contact, a third of the landing's jerk
    batch, ics = make_stream(30.0, 200.0, mount=MOUNT)
    acc = batch.acc.copy()
    for ic in ics:
        i = round((ic - 0.1 - batch.t_s[0]) * 200.0)
        if 0 <= i < len(acc) - 3:
            acc[i : i + 2] += 3.0 * G_MPS2 * (MOUNT.as_matrix().T @ np.array([0.0, 0.0, -1.0]))
    reps = _estimator().push(SampleBatch("foot", batch.t_s, acc, batch.gyr))
    err = np.array([np.min(np.abs(ics - r.t_ic_s)) for r in reps])
    assert len(reps) > 25 and np.median(err) <= 0.005 and np.percentile(err, 90) <= 0.02


def test_a_heel_strike_lands_at_the_heel_not_the_forefoot_slap() -> None:
    # the forefoot slapping down 40 ms after the heel is the larger jolt at the instep
    batch, ics = make_stream(30.0, 200.0, mount=MOUNT)
    acc = batch.acc.copy()
    down = MOUNT.as_matrix().T @ np.array([0.0, 0.0, -1.0])
    for ic in ics:
        i = round((ic + 0.04 - batch.t_s[0]) * 200.0)
        if 0 <= i < len(acc) - 3:
            acc[i : i + 2] += 12.0 * G_MPS2 * down
    reps = _estimator().push(SampleBatch("foot", batch.t_s, acc, batch.gyr))
    err = np.array([np.min(np.abs(ics - r.t_ic_s)) for r in reps])
    assert len(reps) > 25 and np.median(err) <= 0.005 and np.percentile(err, 90) <= 0.02


# --------------------------------------------------------------------------- label rules
def _baseline(**medians: float) -> Baseline:
    base = Baseline("foot", 5)
    for _ in range(5):
        base.add(dict(medians))
    # a small, realistic relaxed spread: the coach's thresholds, not the noise guard, decide
    base.stats = {k: FeatureStats(v.median, 0.3) for k, v in base.stats.items()}
    return base


RELAXED = {
    "landing_deg": 15.0,
    "strike_angle_deg": 14.0,
    "landing_peak_deg": 16.0,
    "stance_still_dps": 20.0,
    "zupt": 1.0,
}
WITH_ANKLE = {**RELAXED, "ankle_rom_deg": 40.0}


def _label(base_features: dict[str, float] = RELAXED, **changes: float) -> Label:
    base = _baseline(**base_features)
    return classify({**base_features, **changes}, base, EstimatorSettings()).label


def test_forced_angles_are_judged_on_the_landing_angle() -> None:
    assert _label() is Label.RELAXED
    assert _label(landing_deg=22.0) is Label.FORCED_DORSIFLEXION
    assert _label(landing_deg=8.0) is Label.FORCED_PLANTARFLEXION
    assert _label(landing_deg=19.0) is Label.RELAXED  # under the 6 deg threshold


def test_toes_held_up_show_in_the_approach_whatever_the_contacts_timing() -> None:
    # at 50 Hz a heel strike's contact comes late (the forefoot's slap), more so with the
    # toes held up: the strike angle hardly moves, the approach's highest does
    assert _label(landing_peak_deg=23.0) is Label.FORCED_DORSIFLEXION
    assert _label(landing_peak_deg=21.0) is Label.RELAXED  # under the 6 deg threshold
    # a pointed foot is judged on the landing angle: a low approach alone is not one
    assert _label(landing_peak_deg=9.0) is Label.RELAXED


def test_a_forced_landing_wins_over_a_foot_that_turns_in_stance() -> None:
    # a pointed foot pivots on its forefoot: it turns in mid-stance too
    assert _label(stance_still_dps=80.0) is Label.RIGID
    assert _label(stance_still_dps=80.0, landing_deg=7.0) is Label.FORCED_PLANTARFLEXION
    assert _label(stance_still_dps=80.0, landing_deg=19.0) is Label.RIGID


def test_adding_a_shank_never_hides_the_rigid_ankle_the_foot_showed() -> None:
    # the ankle keeps 85 % of its range (not rigid by range), the foot turns with the shank
    assert _label(WITH_ANKLE, ankle_rom_deg=34.0) is Label.RELAXED
    assert _label(WITH_ANKLE, ankle_rom_deg=34.0, stance_still_dps=80.0) is Label.RIGID
    # and the ankle's own range alone shows a rigid ankle the foot did not
    assert _label(WITH_ANKLE, ankle_rom_deg=28.0) is Label.RIGID


def test_the_published_rules_are_what_the_classifier_applies() -> None:
    from companion.estimator.classify import CRITERIA

    settings = EstimatorSettings()
    for label, feature, direction, setting, scale, needs in CRITERIA:
        base_features = WITH_ANKLE if needs == "ankle" else RELAXED
        need = float(getattr(settings, setting))
        if scale == "pct":
            need = need / 100.0 * base_features[feature]
        just_past = base_features[feature] + direction * (need + 0.2)
        just_short = base_features[feature] + direction * (need - 0.2)
        assert _label(base_features, **{feature: just_past}).value == label
        assert _label(base_features, **{feature: just_short}) is Label.RELAXED


def test_a_sharp_turn_is_not_judged_nor_learned_from() -> None:
    # how far a stride turned about the vertical: a quarter turn over a 0.7 s stride
    n = 141
    ups = np.tile(orientation.up_from_tilt(5.0, 0.0), (n, 1))
    gyr = 90.0 / 0.7 * ups  # rotating about up only
    assert orientation.heading_change_deg(gyr, ups, 200.0) == pytest.approx(90.0, abs=1.0)
    # a stride that turned 60 deg lands differently: it teaches the baseline nothing ...
    base = Baseline("foot", 2, max_turn_deg=45.0)
    base.add({**RELAXED, "landing_deg": 30.0, "turn_deg": 60.0})
    base.add({**RELAXED, "turn_deg": 5.0})
    assert not base.ready
    base.add({**RELAXED, "turn_deg": 3.0})
    assert base.ready and base.stats["landing_deg"].median == 15.0
    # ... and is not judged: no fault, no evidence for the cue policy
    from companion.estimator.track import SensorTrack
    from companion.types import StrideReport

    track = SensorTrack(
        SensorInfo("foot", 200.0), EstimatorSettings(), baseline=_baseline(**RELAXED)
    )

    def rep(t: float, **f: float) -> StrideReport:
        return StrideReport("foot", 0, t, t + 0.2, t + 0.7, t + 0.76, Label.RELAXED, 1.0, False, f)

    turning = track.finalize(rep(10.0, **{**RELAXED, "landing_deg": 30.0, "turn_deg": 60.0}))
    assert turning.label is Label.RELAXED and turning.carried
    straight = track.finalize(rep(10.7, **{**RELAXED, "landing_deg": 30.0, "turn_deg": 4.0}))
    assert straight.label is Label.FORCED_DORSIFLEXION and not straight.carried
