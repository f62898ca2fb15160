"""The estimator's evaluation in CI size (a few simulated runners, ~15 s).

The full table is `companion evaluate` (docs/estimator.md). Everything is asserted a
little below the issue's bars (F1 >= 0.95 per label, IC median <= 10 ms at 200 Hz,
decision latency <= 100 ms, <= 1 false cue per 10 minutes), so that a regression fails
CI; four runners are few, so the margins allow for one or two unlucky strides.
"""

from __future__ import annotations

import pytest

from companion.estimator.evaluate import SetupResult, evaluate
from companion.types import Label


@pytest.fixture(scope="module")
def foot() -> SetupResult:
    res = evaluate(n_runners=4, minutes=3.0, relaxed_minutes=2.0, setups=("foot",), seed=11)
    return res["foot"]


@pytest.fixture(scope="module")
def others() -> dict[str, SetupResult]:
    return evaluate(
        n_runners=2, minutes=2.0, relaxed_minutes=0.0, setups=("shank", "foot+shank"), seed=11
    )


def test_foot_contacts_are_found_on_time(foot: SetupResult) -> None:
    med200, p95_200, n200 = foot.ic_stats(200.0)
    assert n200 > 100
    assert med200 <= 8.0  # bar: median <= 10 ms at 200 Hz
    assert p95_200 <= 25.0
    med400, _, _ = foot.ic_stats(400.0)
    assert med400 <= 5.0
    assert foot.found_strides >= 0.95 * foot.true_strides
    assert foot.extra_reports <= 0.03 * foot.true_strides


def test_foot_decision_latency(foot: SetupResult) -> None:
    med, p95, _ = foot.latency_stats()
    assert med <= 40.0
    assert p95 <= 80.0  # bar: <= 100 ms
    # the foot is the sensor the labels (and cues) come from: no timing-only reports
    assert foot.timing_latency_ms == []


def test_foot_labels_reach_the_bar(foot: SetupResult) -> None:
    assert foot.labels_scored() == list(Label)
    for lab in Label:
        p, r, f1, n = foot.prf(lab)
        assert n > 100, lab
        assert f1 >= 0.93, (lab, p, r, f1)  # bar: 0.95


def test_foot_false_cues_on_relaxed_runs(foot: SetupResult) -> None:
    assert foot.relaxed_minutes == pytest.approx(8.0)
    assert foot.false_cues <= 1  # bar: <= 1 per 10 minutes


def test_shank_segments_strides_and_claims_no_ankle_label(others) -> None:
    shank = others["shank"]
    assert shank.labels_scored() == []
    assert shank.found_strides >= 0.95 * shank.true_strides
    assert shank.extra_reports <= 0.03 * shank.true_strides


def test_foot_and_shank_see_a_rigid_ankle(others) -> None:
    both = others["foot+shank"]
    assert both.labels_scored() == list(Label)
    assert both.found_strides >= 0.95 * both.true_strides
    p, r, f1, n = both.prf(Label.RIGID)
    assert n >= 20
    assert f1 >= 0.9, (p, r, f1)
    # the foot's labels do not wait long for the shank's samples
    assert both.latency_stats()[1] <= 100.0


def test_foot_cues_each_fault_spell_and_praises_only_after_it(foot: SetupResult) -> None:
    assert foot.fault_segments == 12  # four runners, three faults each
    assert foot.segments_cued >= foot.fault_segments - 1
    assert foot.praise >= foot.segments_cued - 1  # the runner relaxes after every spell
    assert foot.praise_in_fault == 0  # "good, relaxed" while the ankle is still held: never
