"""A live source that fell behind hands over what is queued in fewer, larger batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from companion.source.base import merge_queued
from companion.types import LinkEvent, SampleBatch

# a queue: ("A", n) / ("B", n) sample batches of n samples, "lost" / "back" link events
ITEMS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["A", "B"]), st.integers(1, 5)),
        st.sampled_from(["lost", "back"]),
    ),
    max_size=30,
)


def _queue(spec: list) -> list:
    t = {"A": 0.0, "B": 0.0}
    out: list = []
    for item in spec:
        if isinstance(item, str):
            out.append(LinkEvent("A", item == "back", t["A"]))
            continue
        sensor, n = item
        ts = t[sensor] + 0.005 * np.arange(1, n + 1)
        t[sensor] = float(ts[-1])
        vals = np.column_stack([ts, -ts, 2 * ts])
        out.append(SampleBatch(sensor, ts, vals, vals + 1.0))
    return out


def _samples_before_each_event(items: list) -> list[tuple[int, int]]:
    seen = {"A": 0, "B": 0}
    marks = []
    for item in items:
        if isinstance(item, SampleBatch):
            seen[item.sensor] += len(item)
        else:
            marks.append((seen["A"], seen["B"]))
    return marks


@given(ITEMS)
def test_merging_keeps_every_sample_in_order_and_every_event_in_place(spec: list) -> None:
    queued = _queue(spec)
    merged = merge_queued(queued)
    for sensor in ("A", "B"):
        before = [b for b in queued if isinstance(b, SampleBatch) and b.sensor == sensor]
        after = [b for b in merged if isinstance(b, SampleBatch) and b.sensor == sensor]
        for field in ("t_s", "acc", "gyr"):
            want = np.concatenate([getattr(b, field) for b in before]) if before else None
            got = np.concatenate([getattr(b, field) for b in after]) if after else None
            assert (want is None and got is None) or np.array_equal(want, got)
    assert [e for e in merged if isinstance(e, LinkEvent)] == [
        e for e in queued if isinstance(e, LinkEvent)
    ]
    assert _samples_before_each_event(merged) == _samples_before_each_event(queued)
    # between two events, one batch per sensor at most
    names: list[str] = []
    for item in [*merged, None]:
        if isinstance(item, SampleBatch):
            assert item.sensor not in names
            names.append(item.sensor)
        else:
            names = []


def test_a_consumer_that_keeps_up_sees_the_batches_as_they_came() -> None:
    (one,) = _queue([("A", 3)])
    (out,) = merge_queued([one])
    assert out is one
    assert len(merge_queued(_queue([("A", 1)] * 50))) == 1
