"""Samples at a sensor's full scale: its range, learned from the stream.

A sensor that clips repeats its full-scale value *exactly* (``±32767`` counts times its
sensitivity), sample after sample, whatever its range: 8 g and 16 g accelerometers and
1000 and 2000 deg/s gyroscopes are all common on running sensors. A sensor that does not
clip almost never repeats its largest value exactly. So the largest value seen, once it
has come :data:`PLATEAU_HITS` times, is the full scale; before that, the common top
ranges are assumed.
"""

from __future__ import annotations

import numpy as np

from companion.types import G_MPS2

DEFAULT_ACC_MPS2 = 15.9 * G_MPS2
"""Accelerometer samples at or beyond this count as clipped before a plateau is seen."""
DEFAULT_GYR_DPS = 1990.0
"""Gyroscope samples at or beyond this count as clipped before a plateau is seen."""
PLATEAU_HITS = 3
"""Times the largest value must come, exactly, to be taken as full scale."""
NEAR = 0.998
"""An axis within this fraction of full scale is at full scale (in a clipped run)."""


class FullScale:
    """The full scale of one kind of channel (the largest absolute axis value), learned.

    :meth:`update` takes each sample's largest absolute axis value in stream order and
    flags the clipped ones; a flag depends only on the samples up to it, so chunking
    cannot change it.
    """

    def __init__(self, default: float) -> None:
        self.default = default
        self.top = 0.0
        """The largest value seen."""
        self.hits = 0
        """How often exactly ``top`` has come."""

    @property
    def level(self) -> float:
        """Full scale as known now (the default until a plateau was seen)."""
        return self.top if self.hits >= PLATEAU_HITS else self.default

    def update(self, peaks: np.ndarray) -> np.ndarray:
        """Clipped flags of these samples."""
        out = peaks >= self.default
        if len(peaks) == 0:
            return out
        # only a sample at or above the running largest value can change the state
        running = np.maximum.accumulate(np.concatenate(([self.top], peaks)))[:-1]
        for i in np.flatnonzero(peaks >= running):
            v = float(peaks[i])
            if v > self.top:
                self.top, self.hits = v, 1
            else:
                self.hits += 1
            if self.hits >= PLATEAU_HITS:
                out[i] = True
        return out


def unclip(x: np.ndarray, clipped: np.ndarray, lo: int, hi: int, max_run: int) -> int:
    """Rebuild, in place, the clipped runs of ``x`` (rows, 3 axes) that start in
    ``[lo, hi)`` and have ended before ``hi`` (the sample after the run is in).

    A run is consecutive rows flagged in ``clipped`` (:class:`FullScale` flags, each
    decided on the samples up to it); in it, every axis that stays at the run's full-scale
    value is put on the parabola through the two samples before the run and the one after
    it, never below full scale and at most twice it. A clipped swing peak or landing loses
    area, and with it degrees of angle and the velocity that the cycle closure needs; the
    parabola gives most of it back. A run longer than ``max_run`` samples is left as it is
    (a sensor knocked to full scale is not a peak). Returns the row from which a run may
    still be open (to look at again when more samples are in).
    """
    flags = clipped[lo:hi]
    if not flags.any():
        return hi
    d = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    open_from = hi
    for a, b in zip(np.flatnonzero(d == 1) + lo, np.flatnonzero(d == -1) + lo, strict=True):
        if b - a > max_run:
            continue
        if b >= hi:  # still at full scale at the newest sample
            open_from = min(open_from, a)
            continue
        p0, p1, q = a - 2, a - 1, b
        if p0 < 0 or clipped[p0] or clipped[p1]:
            continue
        level = float(np.abs(x[a:b]).max())
        ta, tb, tc = -1.0, 0.0, float(q - p1)
        tt = np.arange(1, b - a + 1, dtype=float)
        for ax in range(x.shape[1]):
            run = x[a:b, ax]
            if np.abs(run).min() < NEAR * level:
                continue  # this axis was not at full scale
            ya, yb, yc = x[p0, ax], x[p1, ax], x[q, ax]
            y = (
                ya * (tt - tb) * (tt - tc) / ((ta - tb) * (ta - tc))
                + yb * (tt - ta) * (tt - tc) / ((tb - ta) * (tb - tc))
                + yc * (tt - ta) * (tt - tb) / ((tc - ta) * (tc - tb))
            )
            sign = 1.0 if run[0] > 0 else -1.0
            x[a:b, ax] = sign * np.clip(sign * y, level, 2.0 * level)
    return open_from
