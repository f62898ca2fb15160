"""The cue policy: persistence, cooldown, priorities, positive cue and link cues."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from companion.coach.policy import LANDING_STALE_S, CuePolicy
from companion.coach.settings import CoachSettings
from companion.types import Label, LinkEvent, StrideReport

STRIDE_S = 0.7
PRIO = {
    "relax_ankle": 5,
    "soft_landing": 6,
    "heel_down": 6,
    "good_ankle": 2,
    "sensor_lost": 9,
    "sensor_back": 9,
}


def reports(
    labels: Iterable[Label | str],
    *,
    sensor: str = "foot",
    t0: float = 0.0,
    conf: float = 0.9,
    ready: bool = True,
) -> list[StrideReport]:
    out = []
    for i, lab in enumerate(labels):
        t = t0 + i * STRIDE_S
        out.append(
            StrideReport(
                sensor, i, t, t + 0.25, t + STRIDE_S, t + STRIDE_S + 0.05, Label(lab), conf, ready
            )
        )
    return out


def run(policy: CuePolicy, reps: list[StrideReport]) -> list[tuple[float, str]]:
    cues = []
    for r in reps:
        cues += [(c.t_s, c.id) for c in policy.on_stride(r)]
    return cues


R, RG, FD, FP = Label.RELAXED, Label.RIGID, Label.FORCED_DORSIFLEXION, Label.FORCED_PLANTARFLEXION


def test_single_odd_strides_never_cue() -> None:
    pol = CuePolicy(CoachSettings(), PRIO)
    labels = [R, R, RG, R, R, FD, R, R, RG, R, R, R, FP, R] * 5
    assert run(pol, reports(labels)) == []


def test_persistent_fault_cues_after_k_of_n() -> None:
    pol = CuePolicy(CoachSettings(persist_k=3, persist_n=4), PRIO)
    cues = run(pol, reports([R] * 5 + [RG] * 6))
    assert [c[1] for c in cues] == ["relax_ankle"]
    # the 3rd rigid stride (index 7) is where k of n is first met
    assert cues[0][0] == reports([R] * 8)[7].t_decided_s


def test_no_cues_while_baseline_is_learned() -> None:
    pol = CuePolicy(CoachSettings(), PRIO)
    assert run(pol, reports([RG] * 20, ready=False)) == []


def test_low_confidence_faults_count_as_relaxed() -> None:
    pol = CuePolicy(CoachSettings(min_confidence=0.6), PRIO)
    assert run(pol, reports([RG] * 10, conf=0.55)) == []


def test_cooldown_and_repeat() -> None:
    s = CoachSettings(cooldown_s=10.0, repeat_s=20.0)
    pol = CuePolicy(s, PRIO)
    cues = run(pol, reports([RG] * 60))  # 42 s of rigid strides
    times = [t for t, _ in cues]
    assert len(times) >= 2
    assert all(b - a >= s.repeat_s for a, b in itertools.pairwise(times))
    # a different fault right after a cue waits for the cooldown
    pol = CuePolicy(s, PRIO)
    cues = run(pol, reports([RG] * 4 + [FP] * 30))
    assert [c[1] for c in cues][:2] == ["relax_ankle", "heel_down"]
    assert cues[1][0] - cues[0][0] >= s.cooldown_s


def test_priorities_pick_the_higher_cue() -> None:
    pol = CuePolicy(CoachSettings(persist_k=2, persist_n=4), PRIO)
    # rigid and forced plantarflexion both active in the window: heel_down (6) beats relax_ankle (5)
    cues = run(pol, reports([R, R, RG, FP, RG, FP]))
    assert cues[0][1] == "relax_ankle"  # rigid alone was active first (k=2 at stride 4)
    pol = CuePolicy(CoachSettings(persist_k=2, persist_n=4), {**PRIO, "relax_ankle": 1})
    cues = run(pol, reports([R, R, FP, RG, FP, RG]))
    assert cues[0][1] == "heel_down"


def test_positive_cue_once_after_relaxing() -> None:
    pol = CuePolicy(CoachSettings(), PRIO)
    cues = run(pol, reports([R] * 3 + [FD] * 5 + [R] * 10))
    assert [c[1] for c in cues] == ["soft_landing", "good_ankle"]
    pol = CuePolicy(CoachSettings(positive_cue=False), PRIO)
    assert [c[1] for c in run(pol, reports([R] * 3 + [FD] * 5 + [R] * 10))] == ["soft_landing"]


def test_no_praise_for_strides_just_under_the_fault_threshold() -> None:
    pol = CuePolicy(CoachSettings(), PRIO)
    fault = reports([R] * 3 + [FP] * 5)
    # the toes still pointed, just less: relaxed by a hair (fault score 0.8 of its threshold)
    weak = reports([R] * 4, t0=len(fault) * STRIDE_S, conf=0.6)
    clear = reports([R] * 4, t0=(len(fault) + 4) * STRIDE_S, conf=0.9)
    cues = run(pol, fault + weak)
    assert [c[1] for c in cues] == ["heel_down"]
    (praise,) = run(pol, clear)
    assert praise[1] == "good_ankle"
    assert praise[0] == clear[2].t_decided_s  # after persist_k clearly relaxed strides
    # the coach can ask for less (0.5: any relaxed stride counts)
    pol = CuePolicy(CoachSettings(positive_min_confidence=0.5), PRIO)
    assert [c[1] for c in run(pol, fault + weak)] == ["heel_down", "good_ankle"]


def test_disabled_cues_are_not_emitted() -> None:
    pol = CuePolicy(CoachSettings(), PRIO, enabled=["heel_down"])
    assert run(pol, reports([RG] * 10)) == []


def test_link_cues_once_per_change_and_bypass_cooldown() -> None:
    pol = CuePolicy(CoachSettings(), PRIO)
    run(pol, reports([RG] * 5))
    down = pol.on_link(LinkEvent("foot", False, 4.0))
    assert [c.id for c in down] == ["sensor_lost"] and down[0].priority == 9
    assert pol.on_link(LinkEvent("foot", False, 4.5)) == []
    assert [c.id for c in pol.on_link(LinkEvent("foot", True, 9.0))] == ["sensor_back"]


def test_sensors_keep_separate_windows() -> None:
    pol = CuePolicy(CoachSettings(persist_k=3, persist_n=4), PRIO)
    a = reports([RG, R, RG, R, RG, R], sensor="left_foot")
    b = reports([R, RG, R, RG, R, RG], sensor="right_foot")
    merged = sorted(a + b, key=lambda r: (r.t_decided_s, r.sensor))
    assert run(pol, merged) == []


def test_carried_strides_are_no_evidence_either_way() -> None:
    from dataclasses import replace

    pol = CuePolicy(CoachSettings(persist_k=3, persist_n=4), PRIO)
    # one judged fault, then two strides whose landings were lost (the label carried)
    reps = reports([R] * 5 + [FD, FD, FD] + [R] * 4)
    reps[6] = replace(reps[6], carried=True)
    reps[7] = replace(reps[7], carried=True)
    assert run(pol, reps) == []
    # a held fault whose strides are carried now and then is still cued once judged again
    pol = CuePolicy(CoachSettings(persist_k=3, persist_n=4), PRIO)
    reps = reports([R] * 5 + [RG] * 6)
    reps[6] = replace(reps[6], carried=True)
    assert [c for _, c in run(pol, reps)] == ["relax_ankle"]
    # nor does a carried stride get the landing earcon: its landing was not seen
    pol = CuePolicy(CoachSettings(), {**PRIO, "landing_tone": 1}, landing_earcon=True)
    reps = reports([R] * 5 + [FD])
    reps[5] = replace(reps[5], carried=True)
    assert run(pol, reps) == []


# ----------------------------------------------------------------------------- landing earcon
TONE_PRIO = {**PRIO, "landing_tone": 1}


def tones(cues: list[tuple[float, str]]) -> list[float]:
    return [t for t, cid in cues if cid == "landing_tone"]


def test_the_landing_earcon_is_off_unless_asked_for() -> None:
    pol = CuePolicy(CoachSettings(), TONE_PRIO)
    assert tones(run(pol, reports([R] * 3 + [RG] * 10))) == []


def test_every_faulty_landing_gets_its_tone_from_the_first_faulty_stride() -> None:
    """Per-stride feedback: no persistence, one tone per stride judged faulty (after the
    baseline, above min_confidence), decided at the stride's closing contact."""
    pol = CuePolicy(CoachSettings(), TONE_PRIO, landing_earcon=True)
    reps = reports([R] * 3 + [RG, R, FD, FD, FD, FD, R, R, FP, R])
    cues = run(pol, reps)
    spoken = [(t, cid) for t, cid in cues if cid != "landing_tone"]
    assert spoken == [(reps[7].t_decided_s, "soft_landing")]  # k of n met at the 3rd FD
    faulty = [r.t_decided_s for r in reps if r.label is not R]
    # every faulty stride has its tone, but the one whose spoken cue (with its own earcon)
    # went out at the same landing
    assert tones(cues) == [t for t in faulty if t != reps[7].t_decided_s]
    pol = CuePolicy(CoachSettings(), TONE_PRIO, landing_earcon=True)
    (tone,) = pol.on_stride(reports([RG])[0])
    assert tone.id == "landing_tone" and tone.priority == 1 and tone.reason == "rigid"
    assert tone.stale_after_s == LANDING_STALE_S  # it belongs to its landing: never late
    assert tone.t_s == reports([RG])[0].t_decided_s
    # not while the baseline is learned, not for a fault below min_confidence
    pol = CuePolicy(CoachSettings(min_confidence=0.6), TONE_PRIO, landing_earcon=True)
    assert run(pol, reports([RG] * 5, ready=False) + reports([RG] * 5, conf=0.55)) == []


def test_the_landing_earcon_keeps_its_own_cooldown() -> None:
    """Two feet (or two sensors judging nearly the same landing): at most one tone per
    landing_cooldown_s; the fault cues' cooldown does not hold it back."""
    left = reports([FP] * 8, sensor="left_foot")
    right = reports([FP] * 8, sensor="right_foot", t0=0.1)  # 0.1 s after each left landing
    both = sorted(left + right, key=lambda r: r.t_decided_s)
    pol = CuePolicy(CoachSettings(landing_cooldown_s=0.3), TONE_PRIO, landing_earcon=True)
    got = tones(run(pol, both))
    assert got and all(b - a >= 0.3 for a, b in itertools.pairwise(got))
    assert len(got) >= len(left) - 1  # each left landing (one went to the spoken cue)
    pol = CuePolicy(CoachSettings(landing_cooldown_s=0.0), TONE_PRIO, landing_earcon=True)
    assert len(tones(run(pol, both))) == len(both) - 1  # every landing but the spoken one


def test_the_landing_earcon_instead_of_the_spoken_fault_cues() -> None:
    """spoken_faults = False: a tone at every faulty landing and no fault words; the fault
    is still tracked, so the runner hears the praise once relaxed again."""
    pol = CuePolicy(CoachSettings(), TONE_PRIO, landing_earcon=True, spoken_faults=False)
    reps = reports([R] * 3 + [FD] * 6 + [R] * 5)
    cues = run(pol, reps)
    assert [cid for _, cid in cues] == ["landing_tone"] * 6 + ["good_ankle"]
    assert tones(cues) == [r.t_decided_s for r in reps[3:9]]
    # the link cues are still spoken
    assert [c.id for c in pol.on_link(LinkEvent("foot", False, 20.0))] == ["sensor_lost"]
    # a switched-off tone is never emitted
    pol = CuePolicy(CoachSettings(), TONE_PRIO, enabled=["soft_landing"], landing_earcon=True)
    assert tones(run(pol, reps)) == []


def test_a_run_with_the_landing_earcon_tones_the_faulty_landings_only() -> None:
    """The demo through the real pipeline (voice.landing_earcon = true): tones only during
    the faults, about one per faulty stride, none in the relaxed warm-up, printed never."""
    import asyncio

    from companion.config import config_from_dict
    from companion.pipeline import Pipeline, load_checked_library, run_source
    from companion.source.simulator import DEMO_FAULTS, demo_run
    from companion.voice.sink import ConsoleSink

    cfg = config_from_dict({"voice": {"landing_earcon": True, "output": "console"}})
    lib = load_checked_library(cfg)
    events: list[dict] = []
    lines: list[str] = []
    rec = demo_run(seed=7).recording
    pipe = Pipeline(
        cfg, rec.sensors, ConsoleSink(lines.append), library=lib, on_event=events.append
    )
    summary = asyncio.run(run_source(rec.source(), pipe))
    strides = {e["t_decided_s"]: e for e in events if e["type"] == "stride"}
    tone_events = [e for e in events if e["type"] == "cue" and e["id"] == "landing_tone"]
    assert tone_events and all(e["text"] == "" and e["priority"] == 1 for e in tone_events)
    for e in tone_events:  # each answers the stride decided at the same moment, a faulty one
        assert strides[e["t_s"]]["label"] == e["reason"] != "relaxed"
    in_fault = [
        e for e in tone_events if any(f.start_s <= e["t_s"] <= f.end_s + 1.5 for f in DEMO_FAULTS)
    ]
    assert len(in_fault) >= 0.9 * len(tone_events)  # a stray misjudged stride at most
    faulty = sum(1 for e in strides.values() if e["label"] != "relaxed" and e["baseline_ready"])
    spoken = sum(v for k, v in summary.cues.items() if k not in ("landing_tone", "good_ankle"))
    assert len(tone_events) >= faulty - spoken  # cooldown 0.3 s < a stride: none held back
    assert summary.cues["landing_tone"] == len(tone_events)
    assert lines and not any("landing_tone" in line for line in lines)  # sound only
