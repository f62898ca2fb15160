"""Contact detection's parts alone: the learning strides' decision (on plain timings), the
gate (its window, its slow adaptation, the impact bar), the landing probe, and the
scanner that runs them over a synthetic stream.

Timings are in samples at 200 Hz unless said otherwise: :data:`AGREE_S` is 3 samples,
:data:`UNSTEADY_S` 4, the gate's half width 12 (``GATE_S``), the fewest samples from
mid-swing to contact 6.
"""

from __future__ import annotations

import numpy as np
import pytest

import companion.estimator.learning as learning_module
import tests._estimator_synth as synth
from companion.estimator.contacts import ContactScanner
from companion.estimator.gate import HEEL_MIN_RATE_HZ, ContactGate
from companion.estimator.landing import IMPACT_SHARE, LandingProbe
from companion.estimator.learning import (
    LEARN_IMPACTS,
    LandingLearner,
    LandingTiming,
    impacts_land,
    steadiest,
)
from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings
from companion.types import G_MPS2, SampleBatch
from tests._estimator_synth import make_stream

FS = 200.0
MAX_GAP_S = 0.1


def _probe(segment: str = "foot", rate_hz: float = FS) -> LandingProbe:
    """A probe on an empty ring (for the parts that never read the stream)."""
    return LandingProbe(SampleRing(rate_hz, 1.0), segment, EstimatorSettings())


def _ring(
    batch: SampleBatch, rate_hz: float, keep_s: float = 30.0, max_gap_s: float = MAX_GAP_S
) -> SampleRing:
    """``batch`` (segment axes) in a ring, its sagittal rate and jerk derived."""
    ring = SampleRing(rate_hz, keep_s)
    ring.set_rotation(np.eye(3), 0)
    for piece in ring.place(batch.t_s, batch.acc, batch.gyr, max_gap_s):
        ring.append(piece.t_s, piece.acc, piece.gyr, piece.filled)
    ring.derive_gml()
    ring.derive_jerk()
    return ring


# --------------------------------------------------------------------------- learning
STEADY = [30, 31, 30, 29, 30, 31]


def test_impacts_time_the_landing_when_the_rate_landed_later() -> None:
    # a heel strike: the foot slaps flat 6 samples (30 ms) after its impact
    assert impacts_land(STEADY, [t + 6 for t in STEADY], "foot", FS)
    # ... not when it is within AGREE_S and as steady (a tie goes to the rate)
    assert not impacts_land(STEADY, [t + 3 for t in STEADY], "foot", FS)


def test_the_rate_times_the_landing_when_the_impacts_came_later() -> None:
    # the jerk came after the rate's landing: not the landing's (a push-off, a slap)
    assert not impacts_land([t + 6 for t in STEADY], STEADY, "foot", FS)
    # however steady the impacts were
    assert not impacts_land([36] * 6, STEADY, "foot", FS)


def test_at_the_same_time_the_steadier_kind_times_the_landing() -> None:
    spread = [26, 34, 30, 25, 35, 30]  # the same median, 4-5 samples either way
    assert impacts_land(STEADY, spread, "foot", FS)
    assert not impacts_land(spread, STEADY, "foot", FS)
    # a tie, or impacts steadier by less than a sample: the rate
    assert not impacts_land(STEADY, STEADY, "foot", FS)
    assert not impacts_land(STEADY, [30, 32, 30, 28, 30, 32], "foot", FS)
    # steadier by more than a sample: the impacts
    assert not impacts_land([30] * 6, [30, 32, 30, 28, 30, 32], "foot", FS)
    assert impacts_land([30] * 6, [30, 33, 30, 27, 30, 33], "foot", FS)


def test_impacts_must_show_in_most_learning_strides() -> None:
    assert LEARN_IMPACTS // 2 + 1 == 4
    assert impacts_land(STEADY[:4], [t + 6 for t in STEADY], "foot", FS)
    assert not impacts_land(STEADY[:3], [t + 6 for t in STEADY], "foot", FS)
    # a foot whose rate showed no landing in most strides: its impacts (a sharp heel strike)
    assert impacts_land(STEADY, [40, 41, 40], "foot", FS)


def test_a_shank_takes_its_impacts() -> None:
    # a shank's rate turns several times in late swing: where its landing seems to be does
    # not count against the impacts
    assert impacts_land(STEADY, [t - 10 for t in STEADY], "shank", FS)
    assert impacts_land(STEADY, [26, 34, 30, 25, 35, 30], "shank", FS)
    assert not impacts_land(STEADY[:3], STEADY, "shank", FS)


def test_the_steadiest_kind_so_far_times_a_learning_stride() -> None:
    learned = {"impact": [30, 40, 22], "rate": [35, 36, 35]}
    assert steadiest(("impact", "rate"), learned) == "rate"
    assert steadiest(("impact",), learned) == "impact"  # only what this stride showed
    # impacts win a tie within a sample: they time the contact more sharply
    assert steadiest(("impact", "rate"), {"impact": [30, 32, 31], "rate": [35, 36, 35]}) == "impact"
    # a kind seen once has no spread yet
    assert steadiest(("rate", "impact"), {"impact": [30], "rate": [35, 45]}) == "rate"
    assert steadiest(("rate", "impact"), {"impact": [30], "rate": [35]}) == "impact"


def test_the_learner_decides_after_the_learning_strides() -> None:
    learner = LandingLearner(_probe())
    kinds = []
    for t in STEADY:
        assert not learner.done
        kinds.append(learner.add({"impact": t, "rate": t + 6}))
    assert learner.done and kinds == ["impact"] * LEARN_IMPACTS
    assert learner.learned == {"impact": STEADY, "rate": [t + 6 for t in STEADY]}
    assert learner.timing_learned() == LandingTiming(True, 30.0, False)


def test_the_learner_keeps_the_timing_of_the_kind_it_keeps() -> None:
    learner = LandingLearner(_probe())
    # a jolt after the landing, erratic; the rate's landing steady
    for imp, rate in zip([50, 41, 58, 44, 53, 47], STEADY, strict=True):
        learner.add({"impact": imp, "rate": rate})
    # the first stride's contact is the jolt (no kind has a spread yet), then the rate
    assert list(learner.timing) == [50, *STEADY[1:]]
    assert learner.timing_learned() == LandingTiming(False, 30.0, False)


def test_unsteady_learned_timings_are_flagged() -> None:
    learner = LandingLearner(_probe())
    for t in [22, 30, 38, 25, 35, 30]:  # 5 samples either way: 25 ms
        learner.add({"rate": t})
    timing = learner.timing_learned()
    assert timing == LandingTiming(False, 30.0, True)


# --------------------------------------------------------------------------- gate
def _gate(typ: float = 40.0, unsteady: bool = False) -> ContactGate:
    gate = ContactGate(_probe())
    gate.learned(LandingTiming(True, typ, unsteady))
    return gate


def test_the_gate_is_centred_on_the_learned_time() -> None:
    # +-12 samples (GATE_S), at least a quarter of the time
    assert _gate(40.0).window(1000, None, []) == (1028, 1052)
    assert _gate(80.0).window(1000, None, []) == (1060, 1100)
    # never before the fewest samples from mid-swing to contact
    assert _gate(10.0).window(1000, None, []) == (1006, 1022)


def test_the_stride_time_joins_the_gate_only_when_the_learned_timing_was_unsteady() -> None:
    strides = [160, 161, 159]
    # the previous contact plus the stride time: 1060 +- 13 (8 %), overlapping 1028..1052
    assert _gate(40.0).window(1000, 900, strides) == (1028, 1052)
    assert _gate(40.0, unsteady=True).window(1000, 900, strides) == (1028, 1073)
    # not when the windows do not overlap, nor without a previous contact or 3 strides
    assert _gate(40.0, unsteady=True).window(1000, 960, strides) == (1028, 1052)
    assert _gate(40.0, unsteady=True).window(1000, None, strides) == (1028, 1052)
    assert _gate(40.0, unsteady=True).window(1000, 900, strides[:2]) == (1028, 1052)


def test_the_gate_follows_a_change_of_pace_a_little_at_a_time() -> None:
    gate = _gate(40.0)
    gate.adapt(41)
    assert gate.typ == pytest.approx(40.2)  # a fifth of the difference
    gate.adapt(100)  # a wrong event far off moves it by at most 0.6 samples
    assert gate.typ == pytest.approx(40.8)
    gate.adapt(0)
    assert gate.typ == pytest.approx(40.2)
    for _ in range(10):
        gate.adapt(100)
    # ... and never further than DRIFT_S (6 samples) from what the learning strides taught:
    # a gate that keeps catching an early or late event cannot walk off after it
    assert gate.typ == pytest.approx(46.0)
    for _ in range(50):
        gate.adapt(100)
    assert gate.typ == pytest.approx(46.0)
    assert gate.window(1000, None, []) == (1034, 1058)
    for _ in range(50):
        gate.adapt(0)
    assert gate.typ == pytest.approx(34.0)


def test_a_rate_timed_gate_follows_the_contacts_further() -> None:
    # the sagittal rate's landing may have been learned off the landing (a slow swing's
    # late turn): the gate walks as far as the contacts lead it
    gate = ContactGate(_probe())
    gate.learned(LandingTiming(False, 40.0, False))
    for _ in range(100):
        gate.adapt(70)
    assert gate.typ == pytest.approx(70, abs=0.5)
    # impact-timed, at 50 Hz too, it stays within DRIFT_S (30 ms: 1.5 samples at 50 Hz)
    shank_50 = ContactGate(_probe("shank", 50.0))
    shank_50.learned(LandingTiming(True, 20.0, False))
    for _ in range(100):
        shank_50.adapt(10)
    assert shank_50.typ == pytest.approx(18.5)


def test_the_impact_bar_is_a_share_of_the_runners_recent_impacts() -> None:
    gate = _gate()
    floor = 0.5 * gate.probe.impact_min
    assert gate.impact_bar() == floor
    for g_per_s in (2000.0, 1000.0, 3000.0):
        gate.remember(g_per_s * G_MPS2)
    assert gate.impact_bar() == pytest.approx(IMPACT_SHARE * 2000.0 * G_MPS2)
    for _ in range(7):  # a memory of the last seven
        gate.remember(100.0 * G_MPS2)
    assert gate.impact_bar() == floor


# --------------------------------------------------------------------------- probe
def test_the_probe_takes_the_impact_followed_by_rest_not_a_larger_swing_jolt() -> None:
    batch, ics = make_stream(6.0, FS)
    acc = batch.acc.copy()
    ic = int(np.rint((ics[4] - batch.t_s[0]) * FS))
    acc[ic - 44 : ic - 42, 2] -= 20.0 * G_MPS2  # a jolt in swing 0.22 s before, larger
    ring = _ring(SampleBatch("foot", batch.t_s, acc, batch.gyr), FS)
    probe = LandingProbe(ring, "foot", EstimatorSettings())
    peak = float(ring.g_ml[ic - 100 : ic].max())
    assert probe.quiet_after(ic, peak) and not probe.quiet_after(ic - 42, peak)
    onset, size = probe.impact_near(ic - 50, ic + 10, peak, quiet=True)
    assert onset == ic and size >= probe.impact_min
    onset, _ = probe.impact_near(ic - 50, ic + 10, peak)
    assert ic - 44 <= onset <= ic - 42


# --------------------------------------------------------------------------- scanner
def _scan(
    batch: SampleBatch, rate_hz: float, max_gap_s: float = MAX_GAP_S
) -> tuple[ContactScanner, list]:
    scanner = ContactScanner(
        _ring(batch, rate_hz, max_gap_s=max_gap_s), "foot", EstimatorSettings()
    )
    return scanner, scanner.scan()


def _scan_chunked(
    batch: SampleBatch, rate_hz: float, size: int, max_gap_s: float = MAX_GAP_S
) -> list:
    """What a live track's scanner finds when ``batch`` comes ``size`` samples at a time
    (its ring keeps 8 s: old samples leave as it goes)."""
    ring = SampleRing(rate_hz, 8.0)
    ring.set_rotation(np.eye(3), 0)
    scanner = ContactScanner(ring, "foot", EstimatorSettings())
    found = []
    for i in range(0, len(batch), size):
        part = batch.slice(i, i + size)
        for piece in ring.place(part.t_s, part.acc, part.gyr, max_gap_s):
            ring.append(piece.t_s, piece.acc, piece.gyr, piece.filled)
        ring.derive_gml()
        found += scanner.scan()
    return found


def _heel_strikes_from_10_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner whose landings the sagittal rate times (as if the learning strides decided
    so; in the synthetic stride the rate lands a little after the jolt), whose heel lands
    40 ms earlier still from 10 s on (toes pulled up: the forefoot slaps down after it)."""
    monkeypatch.setattr(learning_module, "impacts_land", lambda *args: False)
    landing = synth._impact
    monkeypatch.setattr(
        synth,
        "_impact",
        lambda t, ic, amp_g=10.0: landing(t, ic if ic < 10.0 else ic - 0.04, amp_g),
    )


def _lose_packet(
    batch: SampleBatch, t_s: float, rate_hz: float, before: int, after: int
) -> tuple[SampleBatch, int]:
    """``batch`` without the samples from ``before`` samples before the one at ``t_s`` to
    ``after`` samples after it (a lost packet), and that sample's stream index."""
    ic = int(np.rint((t_s - batch.t_s[0]) * rate_hz))
    keep = np.ones(len(batch), dtype=bool)
    keep[ic - before : ic + after] = False
    return SampleBatch("foot", batch.t_s[keep], batch.acc[keep], batch.gyr[keep]), ic


@pytest.mark.parametrize("rate_hz", [200.0, 100.0, 50.0])
def test_the_scanner_finds_every_contact_within_a_sample(rate_hz: float) -> None:
    batch, ics = make_stream(20.0, rate_hz)
    scanner, found = _scan(batch, rate_hz)
    ring = scanner.ring
    assert all(ic >= 0 for ic, _, _, _ in found)  # no chain breaks
    assert len(found) >= len(ics) - 1
    for ic, decided, ms, kind in found:
        assert kind == "impact"  # the synthetic landing's impact starts at the contact
        assert ms < ic < decided < ring.n
        assert np.min(np.abs(ics - ring.time_at(ic))) <= 1.0 / rate_hz
    assert scanner.learner.done and scanner.use_impacts
    # the gate is centred on the impacts' learned timing
    learned = np.median(scanner.learner.learned["impact"])
    assert abs(scanner.gate.typ - learned) <= 0.06 * rate_hz


def test_a_foot_without_impacts_is_timed_by_its_sagittal_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(synth, "_impact", lambda t, ic, amp_g=10.0: np.zeros_like(t))
    batch, ics = make_stream(20.0, 50.0)
    scanner, found = _scan(batch, 50.0)
    assert not scanner.use_impacts
    assert "impact" not in scanner.learner.learned
    contacts = [(ic, kind) for ic, _, _, kind in found if ic >= 0]
    assert len(contacts) >= len(ics) - 2
    for ic, kind in contacts:
        # (a learning stride whose rate showed no landing but whose foot came to rest is
        # placed at the runner's timing)
        assert kind == "rate" or (kind == "guess" and ic < found[LEARN_IMPACTS][0])
        assert np.min(np.abs(ics - scanner.ring.time_at(ic))) <= 3.0 / 50.0


def test_a_jolt_in_the_gate_smaller_than_the_runners_impacts_is_not_the_contact() -> None:
    # 3 g, 30 ms before each landing: inside the gate, above the sensor's floor, below
    # IMPACT_SHARE of the runner's impacts (which the learning strides already showed)
    batch, ics = make_stream(20.0, FS)
    acc = batch.acc.copy()
    for ic in np.rint((ics - batch.t_s[0]) * FS).astype(int)[1:-1]:
        acc[ic - 6, 2] -= 3.0 * G_MPS2
    scanner, found = _scan(SampleBatch("foot", batch.t_s, acc, batch.gyr), FS)
    gated = found[LEARN_IMPACTS:]
    assert len(gated) >= len(ics) - LEARN_IMPACTS - 1
    for ic, _, _, kind in gated:
        assert kind == "impact" and np.min(np.abs(ics - scanner.ring.time_at(ic))) <= 1.0 / FS


def test_the_gate_learns_a_softer_landing_within_a_few_strides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the landings soften to 3 g from 9 s on (10 g before): the impact memory (the median
    # of the last seven strides' landing windows) lowers the bar after four strides
    landing = synth._impact
    monkeypatch.setattr(
        synth, "_impact", lambda t, ic, amp_g=10.0: landing(t, ic, 10.0 if ic < 8.0 else 3.0)
    )
    batch, ics = make_stream(20.0, FS)
    scanner, found = _scan(batch, FS)
    late = [(ic, kind) for ic, _, _, kind in found if scanner.ring.time_at(ic) > 12.5]
    assert len(late) >= 10
    for ic, kind in late:
        assert kind == "impact" and np.min(np.abs(ics - scanner.ring.time_at(ic))) <= 1.0 / FS


def test_a_spell_of_harder_landings_does_not_hide_the_relaxed_heel_strike_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an impact-timed runner lands four times harder from 6 to 12 s (a fault spell), then
    # relaxed again, on the heel 40 ms before the foot slaps flat: for a few strides the
    # recent impacts still set the bar above the relaxed jolt, and the jolt the runner's
    # learning strides showed times the landing, not the slap
    landing = synth._impact

    def impact(t: np.ndarray, ic: float, amp_g: float = 10.0) -> np.ndarray:
        if ic < 6.0:
            return landing(t, ic, amp_g)
        return landing(t, ic, 4 * amp_g) if ic < 12.0 else landing(t, ic - 0.04, amp_g)

    monkeypatch.setattr(synth, "_impact", impact)
    batch, ics = make_stream(20.0, FS)
    scanner, found = _scan(batch, FS)
    assert scanner.use_impacts
    ring = scanner.ring
    after = [(ring.time_at(ic), kind) for ic, _, _, kind in found if ic >= 0]
    # the stream starts at 1 s: the relaxed heel strikes are the contacts from 13 s on
    after = [(t, kind) for t, kind in after if 13.0 < t < 15.5]
    assert len(after) >= 3
    for t, kind in after:
        assert kind == "impact" and np.min(np.abs(ics - 0.04 - t)) <= 1.0 / FS


def test_a_50_hz_shanks_landing_is_the_first_jolt_of_its_size_not_the_largest() -> None:
    # jerk (g/s) of a 50 Hz shank from where its swing came down (as the wide and classic
    # worlds show it): the landing's jolt (157, sample 5), then the toe-off's, larger (232)
    jerk_g_s = [0, 59, 78, 67, 85, 157, 95, 107, 45, 62, 78, 99, 90, 9, 68, 187, 160, 232, 146]
    t = np.arange(len(jerk_g_s)) / 50.0
    acc = np.zeros((len(t), 3))
    acc[:, 2] = G_MPS2 + np.cumsum(np.array(jerk_g_s) * G_MPS2 / 50.0)
    ring = _ring(SampleBatch("shank", t, acc, np.zeros_like(acc)), 50.0, max_gap_s=0.4)
    probe = LandingProbe(ring, "shank", EstimatorSettings())
    onset, size = probe.first_jolt(0, len(t) - 1, IMPACT_SHARE)
    # its rising edge starts a sample before (85 g/s is over half of 157); sized by the largest
    assert onset == 4 and size == pytest.approx(232 * G_MPS2)
    # the largest jolt is the toe-off's
    largest = probe.impact_near(0, len(t) - 1, 400.0)
    assert largest is not None and largest[0] >= 15


@pytest.mark.parametrize("size", [1, 37, 400])
def test_the_scanner_finds_the_same_contacts_whatever_the_chunking(size: int) -> None:
    batch, _ = make_stream(20.0, FS)
    _, whole = _scan(batch, FS)
    assert _scan_chunked(batch, FS, size) == whole


@pytest.mark.parametrize("size", [1, 23, 400])
def test_a_heel_strike_and_a_lost_learning_landing_do_not_depend_on_the_chunking(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # a rate-timed runner at 100 Hz landing on the heel from 10 s on, and the 160 ms packet
    # holding the fourth contact (a learning stride's) lost
    _heel_strikes_from_10_s(monkeypatch)
    rate_hz = 100.0
    batch, ics = make_stream(20.0, rate_hz)
    batch, _ = _lose_packet(batch, ics[3], rate_hz, 8, 8)
    _, whole = _scan(batch, rate_hz, max_gap_s=0.4)
    assert {"guess", "impact"} <= {kind for _, _, _, kind in whole}  # both paths taken
    assert _scan_chunked(batch, rate_hz, size, max_gap_s=0.4) == whole


def test_a_restart_keeps_what_was_learned_and_looks_at_nothing_before_it() -> None:
    batch, ics = make_stream(20.0, FS)
    scanner = ContactScanner(_ring(batch, FS), "foot", EstimatorSettings())
    scanner.restart(int(8.0 * FS))
    found = scanner.scan()
    assert scanner.run_start == int(8.0 * FS)
    assert all(ms >= scanner.run_start for _, _, ms, _ in found)
    late = ics[ics > batch.t_s[0] + 8.5]
    assert len(found) >= len(late) - 1
    # the learning strides are the first after the restart; learned once, kept on a restart
    learned = {k: list(v) for k, v in scanner.learner.learned.items()}
    scanner.restart(int(15.0 * FS))
    assert scanner.learner.done and scanner.learner.learned == learned


@pytest.mark.parametrize("which", [3, 5])
def test_a_learning_strides_landing_lost_with_its_packet_is_placed_not_a_chain_break(
    which: int,
) -> None:
    # 50 Hz, the 160 ms packet holding a learning stride's landing lost (and bridged): the
    # contact is placed at the runner's timing so far ("guess"); the chain goes on
    rate_hz = 50.0
    batch, ics = make_stream(20.0, rate_hz)
    batch, ic = _lose_packet(batch, ics[which], rate_hz, 3, 5)
    scanner, found = _scan(batch, rate_hz, max_gap_s=0.4)
    assert all(c >= 0 for c, _, _, _ in found)  # no chain breaks
    guesses = [c for c, _, _, kind in found if kind == "guess"]
    assert len(guesses) == 1 and abs(guesses[0] - ic) <= 2
    assert scanner.learner.done  # the guess is not learned from: one more stride taught
    assert len(scanner.learner.learned["impact"]) == LEARN_IMPACTS


def _learning_ring(g_force: float) -> SampleRing:
    """2 s of a foot whose specific force is ``g_force`` g throughout, turning at 10 deg/s
    (swing peak 400 deg/s: below 1 g off gravity it rests, as a stance's foot does)."""
    t = np.arange(0, 2.0, 1 / FS)
    acc = np.tile([0.0, 0.0, g_force * G_MPS2], (len(t), 1))
    gyr = np.tile([0.0, 10.0, 0.0], (len(t), 1))
    return _ring(SampleBatch("foot", t, acc, gyr), FS, max_gap_s=0.4)


def test_a_learning_stride_without_a_landing_a_gap_or_a_rest_breaks_the_chain() -> None:
    ring = _learning_ring(3.0)  # a foot never still: no stance
    learner = LandingLearner(LandingProbe(ring, "foot", EstimatorSettings()))
    assert learner.lost_landing(40, 200, 400.0) is None  # nothing learned yet
    learner.add({"rate": 30})
    learner.add({"rate": 32})
    assert learner.lost_landing(40, 200, 400.0) is None  # learned, but nothing was lost there
    ring.filled[ring.row(72)] = True
    assert learner.lost_landing(40, 200, 400.0) == 40 + 31  # lost with its packet


def test_a_learning_stride_whose_foot_came_to_rest_is_placed_not_a_chain_break() -> None:
    # a landing too faint for either kind (at 50 Hz a heel's first jolt under the floor, a
    # slap turning the rate over more than the look-ahead), but the foot lay still after it
    learner = LandingLearner(LandingProbe(_learning_ring(1.0), "foot", EstimatorSettings()))
    assert learner.lost_landing(40, 200, 400.0) is None  # nothing learned yet
    learner.add({"impact": 30})
    assert learner.lost_landing(40, 200, 400.0) == 40 + 30
    # a shank never rests in stance: its stride is placed only when a packet was lost
    shank = LandingLearner(LandingProbe(_learning_ring(1.0), "shank", EstimatorSettings()))
    shank.add({"impact": 30})
    shank.add({"impact": 30})
    assert shank.lost_landing(40, 200, 400.0) is None


@pytest.mark.parametrize("rate_hz", [200.0, 100.0, 50.0])
def test_a_rate_timed_runner_landing_on_the_heel_is_timed_by_the_heels_jolt(
    monkeypatch: pytest.MonkeyPatch, rate_hz: float
) -> None:
    _heel_strikes_from_10_s(monkeypatch)
    batch, ics = make_stream(20.0, rate_hz)
    scanner, found = _scan(batch, rate_hz)
    assert not scanner.use_impacts
    ring = scanner.ring
    gated = [(ring.time_at(ic), kind) for ic, _, _, kind in found[LEARN_IMPACTS:] if ic >= 0]
    assert len(gated) >= len(ics) - LEARN_IMPACTS - 2
    jolts = np.where(ics < 10.0, ics, ics - 0.04)
    for t, kind in gated:
        if 10.0 < t < 11.0:
            continue  # the first heel strike: the gate, on the old timing, may cut its jolt
        if rate_hz >= HEEL_MIN_RATE_HZ:
            assert kind == "impact" and np.min(np.abs(jolts - t)) <= 1.0 / rate_hz
        else:  # a 50 Hz sample is as long as the heel's lead: the rate keeps timing them
            assert kind == "rate"
