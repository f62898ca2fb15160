"""Samples onto the sensor's nominal-rate grid: lost samples bridged, long gaps reported.

Pure functions on arrays (times in s on the sensor's clock, accelerations in m/s²,
rates in deg/s); the sensor's :class:`~companion.estimator.ring.SampleRing` calls
:func:`regularise` on each batch and :func:`refill_quadratic` on the runs it bridged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Regularised:
    """Samples put on the sensor's nominal-rate grid.

    ``t_s``/``acc``/``gyr`` hold one row per grid step after the previous sample;
    ``filled`` marks rows interpolated across a short gap; ``breaks`` are row
    positions before which a gap was too long to bridge (the stream restarts there).
    """

    t_s: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    filled: np.ndarray
    breaks: np.ndarray


_NO_BREAKS = np.zeros(0, dtype=np.int64)
_NOT_FILLED = np.zeros(4096, dtype=bool)
_NOT_FILLED.flags.writeable = False


def _not_filled(n: int) -> np.ndarray:
    """``filled`` for ``n`` samples that all came in (a shared read-only view when short)."""
    return _NOT_FILLED[:n] if n <= len(_NOT_FILLED) else np.zeros(n, dtype=bool)


GRID_FIT_SAMPLES = 16
"""Samples before a suspected gap whose grid line places it (see :func:`regularise`)."""
_GRID_FIT_MIN = 6


def _grid_time(t: np.ndarray, pos: np.ndarray, rate_hz: float) -> float:
    """Where the last of these samples sits on their grid: a straight line fitted to
    their offsets from it (least squares: timestamp jitter averages out, and a sensor
    running a little off its nominal rate does not make the line lag)."""
    off = t - pos / rate_hz
    x = pos - pos.mean()
    slope = float(x @ (off - off.mean())) / float(x @ x)
    return float(pos[-1] / rate_hz + off.mean() + slope * x[-1])


def _refine_steps(
    t_all: np.ndarray,
    steps: np.ndarray,
    suspects: np.ndarray,
    breaks: np.ndarray,
    rate_hz: float,
    history: Callable[[], tuple[np.ndarray, np.ndarray]] | None,
    origin: int,
) -> None:
    """Recount, in place, the grid steps before each suspected gap (a step of two or more
    between neighbours) from the grid time of the sample before it, fitted over the
    samples before it in the same stretch (no long gap between): two neighbours whose
    timestamps jitter apart by more than half a period no longer look like a lost sample.
    ``history()`` gives the stretch's samples before this batch (raw times, stream
    positions), its last one being ``t_all[0]`` (``origin`` is 1 then)."""
    w = GRID_FIT_SAMPLES
    before = history() if (history is not None and origin) else None
    for j in suspects:
        start = int(breaks[breaks <= j].max()) if (breaks <= j).any() else 0
        pos = np.concatenate(([0.0], np.cumsum(steps[start:j])))
        t_fit = t_all[start : j + 1]
        if start == 0 and before is not None and len(before[0]) > 1:
            t_hist, p_hist = before
            t_fit = np.concatenate((t_hist[:-1], t_fit))
            pos = np.concatenate((p_hist[:-1], p_hist[-1] + pos))
        t_fit, pos = t_fit[-w:], pos[-w:]
        if len(t_fit) < _GRID_FIT_MIN:
            continue
        g = _grid_time(t_fit, pos, rate_hz)
        steps[j] = max(1, round((float(t_all[j + 1]) - g) * rate_hz))


def regularise(
    t_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray,
    rate_hz: float,
    max_gap_s: float,
    prev: tuple[float, np.ndarray, np.ndarray] | None,
    history: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Regularised:
    """Bridge short gaps (lost packets) by linear interpolation on the nominal grid.

    Each step between consecutive timestamps counts ``rint(dt * rate_hz)`` grid
    samples (at least one). A step of two or more (a suspected lost sample) is
    recounted from where the sample before it sits on the grid, fitted over the
    ``GRID_FIT_SAMPLES`` before it (``history()`` gives those that came in earlier
    batches: raw times and stream positions of the stretch since the last long gap,
    ending with ``prev``): so timestamp jitter, even when two neighbours jitter
    apart by more than half a period, does not invent samples. A gap whose missing
    part exceeds ``max_gap_s`` is not bridged: it is reported in ``breaks`` and no
    sample is invented for it. The result depends only on the samples, never on how
    they were chunked.
    """
    n = len(t_s)
    if n == 0:
        z = np.zeros(0)
        return Regularised(z, np.zeros((0, 3)), np.zeros((0, 3)), z.astype(bool), z.astype(int))
    # fast path, the common case: every step rounds to one grid sample (no gap)
    step_max = float((t_s[1:] - t_s[:-1]).max()) if n > 1 else 0.0
    if prev is not None:
        step_max = max(step_max, float(t_s[0]) - prev[0])
    if step_max * rate_hz < 1.5:
        return Regularised(t_s, acc, gyr, _not_filled(n), _NO_BREAKS)
    t_all = t_s if prev is None else np.concatenate(([prev[0]], t_s))
    origin = 0 if prev is None else 1
    steps = np.maximum(np.rint(np.diff(t_all) * rate_hz).astype(np.int64), 1)
    long_gap = (steps - 1) / rate_hz > max_gap_s
    if long_gap.any():
        steps[long_gap] = 1
    suspects = np.flatnonzero(steps > 1)
    if len(suspects):
        _refine_steps(
            t_all, steps, suspects, np.flatnonzero(long_gap) + 1, rate_hz, history, origin
        )
    if not (steps > 1).any():  # fast path: nothing to fill
        breaks = np.flatnonzero(long_gap) + 1 - origin
        return Regularised(t_s, acc, gyr, _not_filled(n), breaks)
    if prev is None:
        acc_all, gyr_all = acc, gyr
    else:
        acc_all = np.vstack((prev[1][None, :], acc))
        gyr_all = np.vstack((prev[2][None, :], gyr))
    pos = np.concatenate(([0], np.cumsum(steps)))
    grid = np.arange(pos[-1] + 1)
    t_out = np.interp(grid, pos, t_all)
    acc_out = np.column_stack([np.interp(grid, pos, acc_all[:, c]) for c in range(3)])
    gyr_out = np.column_stack([np.interp(grid, pos, gyr_all[:, c]) for c in range(3)])
    filled = np.ones(len(grid), dtype=bool)
    filled[pos] = False
    breaks = pos[1:][long_gap]
    start = 1 if origin else 0
    return Regularised(
        t_out[start:], acc_out[start:], gyr_out[start:], filled[start:], breaks - start
    )


def refill_quadratic(x: np.ndarray, first: int, last: int) -> None:
    """Re-fill rows ``first..last`` (a bridged run, in place) on the parabola through the
    two real samples before it and the real one after it (``x[first - 2]``,
    ``x[first - 1]``, ``x[last + 1]``), per column.

    A swing peak lost in a packet comes back as a bump instead of the straight line of
    linear interpolation, which would cut tens of degrees off the swing. Only samples
    before and the first after the run are used, so the result does not depend on what
    comes later. The parabola is kept within the three samples' range widened by half of
    it (no wild overshoot on a long gap).
    """
    a, b, c = first - 2, first - 1, last + 1
    if a < 0 or c >= len(x):
        return
    ta, tb, tc = -1.0, 0.0, float(c - b)
    tt = np.arange(1, last - first + 2, dtype=float)[:, None]
    ya, yb, yc = x[a], x[b], x[c]
    # Lagrange form through (ta, ya), (tb, yb), (tc, yc)
    la = (tt - tb) * (tt - tc) / ((ta - tb) * (ta - tc))
    lb = (tt - ta) * (tt - tc) / ((tb - ta) * (tb - tc))
    lc = (tt - ta) * (tt - tb) / ((tc - ta) * (tc - tb))
    y = la * ya + lb * yb + lc * yc
    lo = np.minimum(np.minimum(ya, yb), yc)
    hi = np.maximum(np.maximum(ya, yb), yc)
    pad = 0.5 * (hi - lo)
    x[first : last + 1] = np.clip(y, lo - pad, hi + pad)
