"""Gait events from a segment's sagittal rate and its jerk: mid-swing, initial contact,
toe-off.

Pure functions on arrays (rates in deg/s, jerk in m/s³, indices into the arrays given).
The parts that run them over a sensor's stream, so that every decision uses a fixed
look-ahead after its sample and never depends on how the stream was chunked:

* :mod:`~companion.estimator.landing` — a landing's evidence (the impact, the sagittal
  rate's landing, the rest after it) in a span of the stream;
* :mod:`~companion.estimator.learning` — the first strides, searched whole, teach which
  kind of landing times this runner's contacts, and when;
* :mod:`~companion.estimator.gate` — after them, the contact is looked for in a gate
  around the learned time, which follows slow changes of pace;
* :mod:`~companion.estimator.contacts` — :class:`~companion.estimator.contacts.ContactScanner`,
  the state machine over the stream (mid-swing, then its contact; chain breaks; the
  stride time).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from companion.estimator.windows import centred_max, window_max

LOBE_SHARE = 0.8
"""Samples above this share of the swing peak make its lobe's centre (the mid-swing)."""


def first_swing_peak(
    g_ml: np.ndarray, half_window: int, threshold_dps: float, first: int
) -> int | None:
    """Index of the first mid-swing in ``g_ml[first:len-half_window]``.

    A mid-swing is the largest sagittal angular rate within ±``half_window``
    samples that exceeds ``threshold_dps`` (the swing peak of Mariani et al. 2013
    and Falbriard et al. 2018; the maximum of gaitmap's ``gyr_ml`` in swing).
    """
    last = len(g_ml) - half_window
    if last <= first:
        return None
    lo = max(0, first - half_window)
    seg = g_ml[lo:]
    mx = centred_max(seg, 2 * half_window + 1)
    cand = seg[first - lo : last - lo]
    hits = np.flatnonzero((cand >= mx[first - lo : last - lo]) & (cand >= threshold_dps))
    return int(hits[0]) + first if len(hits) else None


def swing_centre(g_ml: np.ndarray, peak: int, half_window: int) -> int:
    """The centre of the swing lobe around its peak ``g_ml[peak]``: the mean position of
    the samples within ``half_window`` of it that are above :data:`LOBE_SHARE` of the peak,
    weighted by how far above. The same as the peak for a peaked swing; for a flat-topped
    one, steady where the peak sample would jump around the top."""
    a, b = max(0, peak - half_window), min(len(g_ml), peak + half_window + 1)
    w = g_ml[a:b] - LOBE_SHARE * g_ml[peak]
    w = np.where(w > 0.0, w, 0.0)
    if w.sum() <= 0.0:
        return peak
    return a + round(float(np.dot(w, np.arange(b - a)) / w.sum()))


def landing_rise(
    g_ml: np.ndarray, first: int, look: int, rise_dps: float
) -> tuple[int, int] | None:
    """Index of the first foot landing in ``g_ml[first:]``: where the sagittal rate
    starts to rise steeply (by ``rise_dps`` within ``look`` samples: the ground stopping a
    foot that swung down, or a forefoot landing turning the heel down), taken at the
    sample before the steepest step of that rise. Returns it and the index of the sample
    that confirmed it (the rise's last)."""
    n = len(g_ml)
    last = n - look
    if last <= first:
        return None
    up = g_ml[first + look : last + look] - g_ml[first:last]
    hits = np.flatnonzero(up >= rise_dps)
    if len(hits) == 0:
        return None
    k = first + int(hits[0])
    # the contact: the sample before the steepest step of that rise
    return k + int(np.argmax(np.diff(g_ml[k : k + look + 1]))), k + look


def landing_kink(
    g_ml: np.ndarray, first: int, look: int, kink_dps: float
) -> tuple[int, int] | None:
    """Index of the first landing in ``g_ml[first:]``: where the sagittal rate's trend
    breaks (the ground stops or turns the segment's late-swing rotation: a foot slapped
    flat, a heel turned down, a shank pushed forward), i.e. the first sample whose rate
    differs from the straight line through the rates ``look`` samples before and after it
    by at least ``kink_dps``, taken at the sample before the steepest step of the next
    ``look`` samples. Needs ``look`` samples before ``first``; returns it and the index of
    the sample that confirmed it."""
    n = len(g_ml)
    lo = max(first, look)
    last = n - 2 * look
    if last <= lo:
        return None
    bend = np.abs(
        g_ml[lo + look : last + 2 * look] + g_ml[lo - look : last] - 2.0 * g_ml[lo : last + look]
    )
    hits = np.flatnonzero(bend[: last - lo] >= 2.0 * kink_dps)
    if len(hits) == 0:
        return None
    k = lo + int(hits[0])
    # the contact: the sample before the steepest single step of that bend
    return k + int(np.argmax(np.abs(np.diff(g_ml[k : k + look + 1])))), k + 2 * look


def impact_onset(
    jerk: np.ndarray, confirm: int, min_peak: float, min_onset: float, lead: int = 0
) -> int | None:
    """Index of the first impact onset in ``jerk[lead : len - confirm]``.

    An onset is a sample whose jerk (``|d acc / dt|``) is at least ``min_onset`` and at
    least half the largest jerk of the ``confirm`` samples after it, that largest jerk
    being at least ``min_peak``: the first steep edge of the landing transient (an
    impact rings for a few cycles after contact, and a later edge may be steeper).
    Clipped (saturated) accelerations keep a steep rising edge. The ``lead`` samples
    before the span are context: the falling tail of a jolt that peaked before the span
    (an earlier event's) is not an onset. (A search resumed where the last one ended, the
    sample before as context, skips exactly what one search over both spans would.)
    """
    n = len(jerk) - confirm
    if n <= lead:
        return None
    # max over [k, k + confirm]
    ahead = window_max(jerk, 0, confirm)
    ok = (ahead[:n] >= min_peak) & (jerk[:n] >= min_onset) & (jerk[:n] >= 0.5 * ahead[:n])
    start = lead
    while 0 < start < n and ok[start - 1] and ok[start] and jerk[start] < jerk[start - 1]:
        start += 1
    hits = np.flatnonzero(ok[start:])
    return start + int(hits[0]) if len(hits) else None


def median(values: Iterable[float]) -> float:
    """The median of a few values (a handful of recent strides: cheaper than numpy's)."""
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])
