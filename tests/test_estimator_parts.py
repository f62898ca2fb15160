"""The estimator's parts alone: the sample ring, contact scanning on it, stride measurement.

Each part is driven with plain arrays (no :class:`SensorTrack`), so a failing stride can
be traced to the part that failed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from companion.estimator.clipping import DEFAULT_GYR_DPS
from companion.estimator.contacts import ContactScanner
from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings
from companion.estimator.stride import Contact, Stride, StrideMeter, stance_anchor
from companion.types import G_MPS2, SampleBatch
from tests._estimator_synth import foot_angle, make_stream

MAX_GAP_S = 0.1
ROT = Rotation.from_euler("xyz", [25.0, 110.0, -60.0], degrees=True).as_matrix()


def _feed(ring: SampleRing, batch: SampleBatch, sizes: list[int]) -> SampleRing:
    """Push ``batch`` in chunks of ``sizes`` (cycled), as the track does."""
    i = k = 0
    while i < len(batch):
        n = sizes[k % len(sizes)]
        k += 1
        part = batch.slice(i, i + n)
        for piece in ring.place(part.t_s, part.acc, part.gyr, MAX_GAP_S):
            if piece.after_gap:
                ring.break_run()
            ring.append(piece.t_s, piece.acc, piece.gyr, piece.filled)
            if ring.rotation is not None:
                ring.derive_all()
        i += n
    ring.derive_jerk()
    return ring


def _still(n: int, rate_hz: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples of a sensor lying still (times, acc, gyr), with a little wobble (a
    value repeated exactly would be taken for the sensor's full scale)."""
    t = 1.0 + np.arange(n) / rate_hz
    wobble = np.sin(0.37 * np.arange(n)[:, None] + np.arange(3))
    return t, np.array([0.0, 0.0, -G_MPS2]) + 0.01 * wobble, 0.5 * wobble


# --------------------------------------------------------------------------- ring
def _gappy_stream() -> SampleBatch:
    """12 s at 100 Hz with two short gaps (bridged) and one long one (a restart)."""
    batch, _ = make_stream(12.0, 100.0)
    keep = np.ones(len(batch), dtype=bool)
    keep[300:303] = False  # 30 ms
    keep[700:704] = False  # 40 ms
    t = batch.t_s.copy()
    t[900:] += 0.4  # a gap far longer than MAX_GAP_S
    return SampleBatch("foot", t[keep], batch.acc[keep], batch.gyr[keep])


@pytest.mark.parametrize("sizes", [[1], [7, 13, 200], [5, 1, 333, 2]])
def test_ring_holds_the_same_arrays_whatever_the_chunking(sizes: list[int]) -> None:
    batch = _gappy_stream()

    def ring() -> SampleRing:
        r = SampleRing(100.0, 3.0)  # smaller than the stream: it wraps several times
        r.set_rotation(ROT, 0)
        return r

    whole = _feed(ring(), batch, [len(batch)])
    parts = _feed(ring(), batch, sizes)
    assert (parts.n, parts.n_in, parts.last_t_s) == (whole.n, whole.n_in, whole.last_t_s)
    assert whole.n_in == len(batch) + 7  # the short gaps bridged, the long one not
    first = max(whole.base, parts.base)
    assert whole.n - first >= whole.cap
    names = ("t_s", "acc", "gyr", "filled", "clip", "aclip", "g_ml", "g_seg", "a_seg", "g_norm")
    for name in (*names, "jerk"):
        a = getattr(whole, name)[whole.row(first) : whole.row(whole.n)]
        b = getattr(parts, name)[parts.row(first) : parts.row(parts.n)]
        assert np.array_equal(a, b), name


def test_ring_bridges_a_short_gap_on_the_grid_with_a_parabola() -> None:
    t, acc, gyr = _still(200)
    i = np.arange(200)
    gyr[:, 0] = 0.02 * (i - 40.0) ** 2  # a smooth rate: its parabola is itself
    keep = np.ones(200, dtype=bool)
    keep[50:55] = False  # 5 samples (50 ms) lost
    ring = SampleRing(100.0, 10.0)
    pieces = ring.place(t[keep], acc[keep], gyr[keep], MAX_GAP_S)
    assert [p.after_gap for p in pieces] == [False]
    for p in pieces:
        ring.append(p.t_s, p.acc, p.gyr, p.filled)
    assert ring.n == ring.n_in == 200  # every lost sample has its row back
    assert np.flatnonzero(ring.filled[: ring.row(200)]).tolist() == [50, 51, 52, 53, 54]
    assert np.allclose(ring.t_s[:200], t, rtol=0.0, atol=1e-9)
    # rebuilt on the neighbours' parabola (a straight line would be 0.18 deg/s off)
    assert np.allclose(ring.gyr[50:55, 0], gyr[50:55, 0], rtol=0.0, atol=1e-9)
    assert not ring.clip[:200].any()


def test_ring_does_not_bridge_a_long_gap_and_starts_a_new_run_after_it() -> None:
    t, acc, gyr = _still(200)
    acc[:, 0] = np.sin(np.arange(200) / 5.0)  # something for the jerk to see
    keep = np.ones(200, dtype=bool)
    keep[80:110] = False  # 300 ms lost, longer than MAX_GAP_S
    ring = SampleRing(100.0, 10.0)
    pieces = ring.place(t[keep], acc[keep], gyr[keep], MAX_GAP_S)
    assert [(p.after_gap, len(p.t_s)) for p in pieces] == [(False, 80), (True, 90)]
    ring.append(pieces[0].t_s, pieces[0].acc, pieces[0].gyr, pieces[0].filled)
    assert ring.break_run() == 80  # the new run starts at the first sample after the gap
    ring.append(pieces[1].t_s, pieces[1].acc, pieces[1].gyr, pieces[1].filled)
    ring.derive_jerk()
    assert ring.n_in == 170 and not ring.filled[:170].any()  # nothing invented
    assert ring.time_at(80) == pytest.approx(t[110])
    # no jerk across the gap; inside a run it is |d acc| times the rate
    assert ring.jerk[80] == 0.0
    assert ring.jerk[81] == pytest.approx(100.0 * float(np.linalg.norm(acc[111] - acc[110])))


def test_ring_wraps_and_keeps_the_last_seconds() -> None:
    batch, _ = make_stream(10.5, 100.0)
    ring = _feed(SampleRing(100.0, 1.0), batch, [7])
    n = len(batch)
    assert ring.cap == 100 and ring.n == ring.n_in == n
    assert ring.base > 0 and ring.cap <= n - ring.base <= 2 * ring.cap
    kept = slice(ring.base, n)
    assert np.array_equal(ring.t_s[: ring.row(n)], batch.t_s[kept])
    assert np.array_equal(ring.gyr[: ring.row(n)], batch.gyr[kept])
    assert ring.time_at(n - 1) == batch.t_s[-1]
    # the jerk of the oldest kept row was computed while the sample before it was there
    d = batch.acc[ring.base : n] - batch.acc[ring.base - 1 : n - 1]
    assert np.allclose(ring.jerk[: ring.row(n)], 100.0 * np.sqrt(np.sum(d * d, axis=1)))


def test_ring_waits_for_a_clipped_run_to_end_and_rebuilds_it() -> None:
    t, acc, gyr = _still(12)
    top = DEFAULT_GYR_DPS  # a sensor clipping at the default full scale
    gyr[:, 0] = [10.0, 20.0, 30.0, 1500.0, 1800.0, 1950.0, top, top, top, 1950.0, 1800.0, 1500.0]
    wobble = gyr[:, 1:].copy()
    ring = SampleRing(100.0, 10.0)
    for p in ring.place(t[:9], acc[:9], gyr[:9], MAX_GAP_S):
        ring.append(p.t_s, p.acc, p.gyr, p.filled)
    assert ring.clip[6:9].all() and not ring.clip[:6].any()
    assert (ring.n_in, ring.n) == (9, 6)  # the run is still at full scale: not final yet
    for p in ring.place(t[9:], acc[9:], gyr[9:], MAX_GAP_S):
        ring.append(p.t_s, p.acc, p.gyr, p.filled)
    assert ring.n == ring.n_in == 12
    # the parabola through 1800, 1950 before and 1950 after: the peak comes back
    assert np.allclose(ring.gyr[6:9, 0], [2040.0, 2070.0, 2040.0])
    assert np.array_equal(ring.gyr[:12, 1:], wobble)  # the axes below full scale stay


def test_ring_refuses_time_going_backwards() -> None:
    t, acc, gyr = _still(20)
    ring = SampleRing(100.0, 10.0, "left_foot")
    for p in ring.place(t[:10], acc[:10], gyr[:10], MAX_GAP_S):
        ring.append(p.t_s, p.acc, p.gyr, p.filled)
    with pytest.raises(ValueError, match="left_foot"):
        ring.place(t[5:10], acc[5:10], gyr[5:10], MAX_GAP_S)


# --------------------------------------------------------------------------- strides
FS = 200.0


def _run_ring(strike_late_deg: float = 24.0) -> tuple[SampleRing, np.ndarray]:
    """20 s of running in the segment frame (12 deg strikes, then ``strike_late_deg``
    from 10 s on) in a ring, and the true IC times."""
    batch, ics = make_stream(20.0, FS, segment_angles=[(10.0, 20.0, strike_late_deg)])
    ring = SampleRing(FS, 30.0)
    ring.set_rotation(np.eye(3), 0)
    return _feed(ring, batch, [len(batch)]), ics


def _contacts(ring: SampleRing, ics: np.ndarray) -> list[Contact]:
    """The true contacts as stream indices, each with the mid-swing before it."""
    idx = np.rint((ics - ring.t_s[0]) * FS).astype(int)
    idx = idx[(idx > 0) & (idx < ring.n - 20)]
    g = ring.g_ml
    return [Contact(int(b), int(a + np.argmax(g[a:b]))) for a, b in itertools.pairwise(idx)]


def _strike_truth(strike_deg: float) -> float:
    """The synthetic foot's angle at contact, as smoothed by the signal model."""
    fine = 2000.0
    tf = np.arange(0.0, 5.0, 1.0 / fine)
    ang, _ = foot_angle(tf, 0.72, strike_deg, -60.0, 0.24)
    return float(gaussian_filter1d(ang, 0.012 * fine)[round(4 * 0.72 * fine)])


def _measure_all(meter: StrideMeter, contacts: list[Contact]) -> list[Stride]:
    out = []
    for prev, cur in itertools.pairwise(contacts):
        s = meter.measure(prev, cur, meter.ring.time_at(cur.ic + 10))
        assert isinstance(s, Stride), s
        out.append(s)
    return out


def test_scanner_finds_the_contacts_in_a_ring() -> None:
    ring, ics = _run_ring()
    found = ContactScanner(ring, "foot", EstimatorSettings()).scan()
    t_ic = np.array([ring.time_at(ic) for ic, _, _, _ in found if ic >= 0])
    assert len(t_ic) >= len(ics) - 2
    err = np.array([np.min(np.abs(ics - t)) for t in t_ic])
    assert np.median(err) <= 1.0 / FS and err.max() < 0.02


def test_stride_meter_measures_the_strike_angle() -> None:
    ring, ics = _run_ring(24.0)
    strides = _measure_all(StrideMeter(ring, "foot"), _contacts(ring, ics))
    relaxed = [s for s in strides if 3.0 < s.t_ic_s < 9.5]
    forced = [s for s in strides if 11.5 < s.t_ic_s < 19.5]
    assert len(relaxed) >= 8 and len(forced) >= 8
    for group, strike in ((relaxed, 12.0), (forced, 24.0)):
        truth = _strike_truth(strike)
        for s in group:
            assert s.features["strike_angle_deg"] == pytest.approx(truth, abs=1.5)
            assert s.features["stride_s"] == pytest.approx(0.72, abs=1.5 / FS)
            assert s.features["zupt"] == 1.0  # clean cycles: anchored by their closure
            assert s.t_ic_s == pytest.approx(s.t_s[s.ev.ic])
            assert s.t_ic_s < s.t_to_s < s.t_end_s
    # the curve and the trace are the same angles
    s = forced[-1]
    curve, trace = s.curve(101), s.trace()
    assert curve[0] == pytest.approx(trace[1][trace[2]])
    assert curve[0] == pytest.approx(s.features["strike_angle_deg"])


def test_stride_meter_drops_a_landing_lost_in_a_gap() -> None:
    ring, ics = _run_ring()
    contacts = _contacts(ring, ics)
    meter = StrideMeter(ring, "foot")
    _measure_all(meter, contacts[:6])
    prev, cur = contacts[5], contacts[6]
    ring.filled[ring.row(prev.ic - 20) : ring.row(prev.ic + 10)] = True  # 150 ms bridged
    s = meter.measure(prev, cur, ring.time_at(cur.ic))
    assert isinstance(s, Stride)
    assert s.features["lost_ms"] == pytest.approx(150.0)
    assert "landing_deg" not in s.features and "strike_angle_deg" not in s.features
    assert s.features["stride_s"] == pytest.approx(0.72, abs=1.5 / FS)
    assert s.features["zupt"] == 0.0  # the cycle had too much bridged: the gravity fallback


def test_stride_meter_does_not_measure_a_landing_placed_by_a_guess() -> None:
    ring, ics = _run_ring()
    contacts = _contacts(ring, ics)
    meter = StrideMeter(ring, "foot")
    _measure_all(meter, contacts[:6])
    prev, cur = contacts[5]._replace(guess=True), contacts[6]
    s = meter.measure(prev, cur, ring.time_at(cur.ic))
    assert isinstance(s, Stride)
    assert "landing_deg" not in s.features and "strike_angle_deg" not in s.features
    assert s.features["stride_s"] == pytest.approx(0.72, abs=1.5 / FS)


def test_stride_meter_says_why_it_cannot_measure() -> None:
    ring, ics = _run_ring()
    contacts = _contacts(ring, ics)
    meter = StrideMeter(ring, "foot")
    prev, cur = contacts[2], contacts[3]
    # a mid-swing right after the contact leaves no room for a toe-off
    assert meter.measure(prev, cur._replace(ms=prev.ic + 10), 0.0) == "no_toe_off"
    assert len(meter.anchors) == 0


def test_a_left_foot_mirrors_the_roll() -> None:
    ring, ics = _run_ring()
    contacts = _contacts(ring, ics)[:8]
    right = _measure_all(StrideMeter(ring, "foot"), contacts)
    left = _measure_all(StrideMeter(ring, "foot", side_sign=-1.0), contacts)
    for r, lf in zip(right, left, strict=True):
        assert lf.features["frontal_ic_deg"] == -r.features["frontal_ic_deg"]
        assert lf.features["strike_angle_deg"] == r.features["strike_angle_deg"]


def test_stance_anchor_is_the_stillest_instant_of_a_foot_and_a_phase_of_a_shank() -> None:
    g = np.abs(np.linspace(-300.0, 300.0, 61)) + 5.0
    calm = np.zeros(61)
    g[40] = 0.0  # one still sample: not enough alone, the 20 ms mean decides
    assert stance_anchor(g, calm, "foot", FS) == 30
    g[38:43] = 0.0  # a still stretch
    assert stance_anchor(g, calm, "foot", FS) == 40
    assert stance_anchor(g, calm, "shank", FS) == 27  # 45 % of the 60-sample contact
    assert stance_anchor(g[:3], calm[:3], "foot", FS) == 1  # too short to look for stillness


def test_a_foot_is_not_anchored_where_its_landing_rate_passes_through_zero() -> None:
    # 50 Hz heel strike: the rate crosses zero at the contact (sample 1), the impact
    # follows (sample 2), then the foot lies flat (samples 5-7) and pushes off
    g = np.array([150.0, 3.0, 320.0, 200.0, 80.0, 12.0, 8.0, 10.0, 120.0, 400.0, 600.0])
    jolt = np.array([2.0, 2.5, 30.0, 8.0, 3.0, 1.0, 0.5, 1.0, 3.0, 6.0, 9.0])
    assert stance_anchor(g, jolt, "foot", 50.0) == 6
    assert stance_anchor(g, np.zeros_like(g), "foot", 50.0) == 1  # what it did before


def test_sagittal_at_follows_the_measured_angle() -> None:
    ring, ics = _run_ring()
    contacts = _contacts(ring, ics)
    meter = StrideMeter(ring, "foot")
    strides = _measure_all(meter, contacts[:10])
    last = strides[-1]
    t_from, t_to = float(last.t_s[last.ev.anchor]), float(last.t_s[last.ev.ic_next])
    t_query = np.linspace(t_from, t_to, 25)
    ang = meter.sagittal_at(t_from, t_to, t_to + 1.0, t_query)
    assert ang is not None
    own = np.interp(t_query, last.t_s, last.tilt[:, 0])
    assert np.abs(ang - own).max() < 1e-6  # integrated from the same anchor
    # an anchor not yet known by t_limit is not used
    assert meter.sagittal_at(t_from, t_to, last.t_s[last.ev.anchor] - 1.0, t_query) is None
