"""The run's summary keeps what it needs in tables that do not grow with the run."""

from __future__ import annotations

import statistics
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from companion.pipeline import _median


@given(st.lists(st.integers(min_value=250, max_value=2500), min_size=1, max_size=60))
def test_the_cadence_median_from_counted_strides_is_the_median_of_the_strides(
    stride_ms: list[int],
) -> None:
    assert _median(Counter(stride_ms)) == statistics.median(stride_ms)
