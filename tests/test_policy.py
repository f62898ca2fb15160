"""The cue policy: persistence, cooldown, priorities, positive cue and link cues."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from companion.coach.policy import CuePolicy
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
