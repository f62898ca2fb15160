"""One sensor's samples as the estimator reads them: a fixed-size buffer on the grid.

A :class:`SampleRing` keeps the last seconds of a sensor's stream (memory does not grow
with the run) and turns raw batches into rows the rest of the estimator can index by
stream position:

* :meth:`~SampleRing.place` puts a batch on the sensor's nominal-rate grid
  (:func:`~companion.estimator.gaps.regularise`: short gaps bridged, long gaps reported)
  and cuts it into pieces of at most a quarter of the buffer;
* :meth:`~SampleRing.append` stores a piece: bridged runs rebuilt on their neighbours'
  parabola once they end, full-scale samples flagged
  (:class:`~companion.estimator.clipping.FullScale`) and clipped runs rebuilt once they
  end (:func:`~companion.estimator.clipping.unclip`), so that :attr:`~SampleRing.n`, the
  end of the samples ready for the estimator, may lag the newest sample a little;
* the derived arrays, once the sensor-to-segment rotation is known
  (:meth:`~SampleRing.set_rotation`): the sagittal rate that event detection scans, the
  jerk that impact detection reads, and the segment-frame rates and accelerations that a
  stride is measured on. Each derived value depends only on its sample (and, for the
  jerk, the one before), so it is the same whenever it is computed.

Stream index ``i`` (counted from the first sample, bridged ones included) is at buffer row
``i - base``; :meth:`~SampleRing.row` converts. Everything here depends only on the
samples, never on how they were chunked into batches.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from companion.estimator.clipping import DEFAULT_ACC_MPS2, DEFAULT_GYR_DPS, FullScale, unclip
from companion.estimator.gaps import GRID_FIT_SAMPLES, refill_quadratic, regularise

MAX_CLIP_RUN_S = 0.05
"""A clipped run longer than this is not rebuilt (a sensor knocked to full scale)."""


class Piece(NamedTuple):
    """Samples on the grid, ready for :meth:`SampleRing.append`."""

    after_gap: bool
    """A long gap comes before it: call :meth:`SampleRing.break_run` first."""
    t_s: np.ndarray
    """Sensor time (s)."""
    acc: np.ndarray
    """Specific force (m/s², sensor axes)."""
    gyr: np.ndarray
    """Angular rate (deg/s, sensor axes)."""
    filled: np.ndarray
    """Rows bridged across a short gap."""


class SampleRing:
    """The last ``keep_s`` seconds (at least) of one sensor's samples, on its grid.

    Parameters
    ----------
    rate_hz
        The sensor's nominal rate.
    keep_s
        Seconds of samples always kept (the buffer holds up to twice that).
    name
        The sensor's name, for messages.
    """

    def __init__(self, rate_hz: float, keep_s: float, name: str = "sensor") -> None:
        self.name = name
        self.rate_hz = fs = float(rate_hz)
        self.cap = math.ceil(keep_s * fs)
        """Rows always kept after a shift (the buffer has twice as many)."""
        size = 2 * self.cap
        self.t_s = np.zeros(size)
        """Sensor time (s) of each row."""
        self.acc = np.zeros((size, 3))
        """Specific force (m/s², sensor axes), bridged and clipped runs rebuilt."""
        self.gyr = np.zeros((size, 3))
        """Angular rate (deg/s, sensor axes), bridged and clipped runs rebuilt."""
        self.filled = np.zeros(size, dtype=bool)
        """Bridged across a short gap (not a sample that came in)."""
        self.clip = np.zeros(size, dtype=bool)
        """Gyroscope at full scale (learned, :mod:`clipping`): the angle is lost there."""
        self.aclip = np.zeros(size, dtype=bool)
        """Accelerometer at full scale (a hard landing on an 8 g sensor: its impact is
        still timed by its steep edges, and its short loss of velocity barely moves a
        cycle's closure)."""
        # derived, segment frame
        self.g_ml = np.zeros(size)
        """Sagittal rate (deg/s, toes up positive): what event detection scans."""
        self.g_seg = np.zeros((size, 3))
        """Angular rate (deg/s, segment frame); its sagittal column is :attr:`g_ml`."""
        self.a_seg = np.zeros((size, 3))
        """Specific force (m/s², segment frame)."""
        self.g_norm = np.zeros(size)
        """|angular rate| (deg/s)."""
        self.jerk = np.zeros(size)
        """|d acc / dt| (m/s³), sensor frame, 0 after a gap; filled on demand
        (:meth:`derive_jerk`)."""
        self._arrays = [
            self.t_s,
            self.acc,
            self.gyr,
            self.filled,
            self.clip,
            self.aclip,
            self.g_ml,
            self.g_seg,
            self.a_seg,
            self.g_norm,
            self.jerk,
        ]
        self.rotation: np.ndarray | None = None
        """Sensor to segment rotation of the derived arrays (``None``: not known yet)."""
        self.base = 0
        """Stream index of buffer row 0."""
        self.n = 0
        """Stream index one past the newest sample ready for the estimator (a clipped run
        still at full scale at the newest sample waits for its end, to be rebuilt)."""
        self.n_in = 0
        """Stream index one past the newest sample in the buffer."""
        self.derived_to = 0
        """Stream index up to which the segment-frame arrays are derived."""
        self.last_t_s = -math.inf
        """Sensor time of the newest sample that came in."""
        self._gml_to = 0
        self._jerk_to = 0
        self._stretch_from = 0
        """Stream index of the first sample after the last long gap."""
        self._unclip_from = 0
        """Stream index from which clipped runs may still be open."""
        self._refill_open: int | None = None
        """Stream index where a bridged run still open at the newest sample begins."""
        self._acc_scale = FullScale(DEFAULT_ACC_MPS2)
        self._gyr_scale = FullScale(DEFAULT_GYR_DPS)
        self._raw_last = (np.zeros(3), np.zeros(3))
        """The newest sample as it came (the grid placement of the next batch starts
        from it, before any rebuilding of a clipped run)."""

    # ------------------------------------------------------------------ indexing
    def row(self, idx: int) -> int:
        """Buffer row of stream index ``idx``."""
        return idx - self.base

    def time_at(self, idx: int) -> float:
        """Sensor time (s) of stream index ``idx``."""
        return float(self.t_s[idx - self.base])

    # ------------------------------------------------------------------ input
    def place(
        self, t_s: np.ndarray, acc: np.ndarray, gyr: np.ndarray, max_gap_s: float
    ) -> list[Piece]:
        """A batch (times in s, m/s², deg/s; sensor axes) on the grid, in pieces of at
        most a quarter of the buffer for :meth:`append`; a long gap starts a new piece."""
        t = np.asarray(t_s, dtype=float)
        if len(t) == 0:
            return []
        prev = None
        if self.n_in > 0:
            if t[0] <= self.last_t_s:
                raise ValueError(
                    f"sensor {self.name!r}: sample time {t[0]:.6f} s does not follow "
                    f"{self.last_t_s:.6f} s"
                )
            prev = (self.last_t_s, self._raw_last[0], self._raw_last[1])
        reg = regularise(
            t,
            np.asarray(acc, dtype=float),
            np.asarray(gyr, dtype=float),
            self.rate_hz,
            max_gap_s,
            prev,
            self._stretch_tail,
        )
        self.last_t_s = float(t[-1])
        step = max(1, self.cap // 4)
        if len(reg.breaks) == 0 and len(reg.t_s) <= step:  # the common case: one piece
            return [Piece(False, reg.t_s, reg.acc, reg.gyr, reg.filled)]
        out = []
        cuts = [0, *[int(b) for b in reg.breaks], len(reg.t_s)]
        for k in range(len(cuts) - 1):
            lo, hi = cuts[k], cuts[k + 1]
            for s in range(lo, hi, step):
                e = min(hi, s + step)
                sl = slice(s, e)
                out.append(
                    Piece(k > 0 and s == lo, reg.t_s[sl], reg.acc[sl], reg.gyr[sl], reg.filled[sl])
                )
        return out

    def break_run(self) -> int:
        """A long gap: every sample before it is final and the jerk is brought up to date;
        the grid fit starts again after it. Returns the stream index the new run starts
        at."""
        self._finalize(self.n_in)
        self.derive_jerk()
        self._stretch_from = self.n
        return self.n

    def _stretch_tail(self) -> tuple[np.ndarray, np.ndarray]:
        """Times and stream positions of the newest ``GRID_FIT_SAMPLES`` samples that
        came in (not filled ones) since the last long gap: what places a sample after a
        suspected gap on the grid, as if the stream had come in one batch."""
        w = GRID_FIT_SAMPLES
        first = max(self._stretch_from, self.base)
        lo = self.n_in
        real = np.zeros(0, dtype=np.int64)
        while lo > first:
            lo = max(first, lo - 4 * w)
            real = np.flatnonzero(~self.filled[self.row(lo) : self.row(self.n_in)])
            if len(real) >= w:
                break
        idx = real[-w:] + lo
        return self.t_s[idx - self.base], idx.astype(float)

    def append(
        self, t_s: np.ndarray, acc: np.ndarray, gyr: np.ndarray, filled: np.ndarray
    ) -> np.ndarray:
        """Store a piece (at most :attr:`cap` rows, from :meth:`place`); the oldest rows
        leave when the buffer is full. Returns each new row's largest absolute gyroscope
        axis (deg/s, as bridged, before any clipped run is rebuilt)."""
        m = len(t_s)
        rows = self.n_in - self.base
        if rows + m > 2 * self.cap:
            self.derive_jerk()  # while the sample before each row is still here
            keep = self.cap - m
            drop = rows - keep
            for arr in self._arrays:
                arr[:keep] = arr[drop:rows]
            self.base += drop
            rows = keep
        sl = slice(rows, rows + m)
        self.t_s[sl] = t_s
        self.acc[sl] = acc
        self.gyr[sl] = gyr
        self.filled[sl] = filled
        if filled.any() or self._refill_open is not None:
            self._refill(rows, m)
        real = ~self.filled[sl]
        a_peak = np.abs(self.acc[sl]).max(axis=1)
        g_peak = np.abs(self.gyr[sl]).max(axis=1)
        idx = np.flatnonzero(real)
        self.aclip[sl] = False
        self.clip[sl] = False
        self.aclip[rows + idx] = self._acc_scale.update(a_peak[idx])
        self.clip[rows + idx] = self._gyr_scale.update(g_peak[idx])
        if len(idx):
            last = rows + int(idx[-1])
            self._raw_last = (self.acc[last].copy(), self.gyr[last].copy())
        self.n_in += m
        ready = self._unclip_rows()
        if self._refill_open is not None:
            ready = min(ready, self._refill_open)
        self._finalize(ready)
        return g_peak

    def _unclip_rows(self) -> int:
        """Rebuild the clipped runs that have ended; the stream index up to which samples
        are final."""
        lo = self.row(max(self._unclip_from, self.base + 2))
        hi = self.row(self.n_in)
        max_run = max(1, round(MAX_CLIP_RUN_S * self.rate_hz))
        a = unclip(self.acc, self.aclip, lo, hi, max_run)
        g = unclip(self.gyr, self.clip, lo, hi, max_run)
        self._unclip_from = min(a, g) + self.base
        return self._unclip_from

    def _finalize(self, upto: int) -> None:
        """Samples up to ``upto`` are ready for the estimator."""
        self.n = max(self.n, min(upto, self.n_in))

    def _refill(self, rows: int, m: int) -> None:
        """Bridged runs that end among the new rows (they may have begun in an earlier
        piece of the batch): on the parabola of their neighbours
        (:func:`~companion.estimator.gaps.refill_quadratic`)."""
        f = self.filled
        end = rows + m
        i = rows if self._refill_open is None else max(self.row(self._refill_open), 0)
        self._refill_open = None
        while i < end:
            if not f[i]:
                i += 1
                continue
            j = i
            while j + 1 < end and f[j + 1]:
                j += 1
            if j + 1 >= end:  # still open at the newest row: finish it next time
                self._refill_open = self.base + i
                return
            if i - 2 >= 0 and not f[i - 1] and not f[i - 2]:
                refill_quadratic(self.gyr, i, j)
                refill_quadratic(self.acc, i, j)
            i = j + 1

    # ------------------------------------------------------------------ derived
    def set_rotation(self, rotation: np.ndarray, start: int) -> None:
        """The sensor-to-segment rotation (3x3, rows the segment's axes in sensor axes):
        the segment-frame arrays are derived from stream index ``start`` on."""
        self.rotation = rotation
        self.derived_to = self._gml_to = start

    def _rows_since(self, done: int) -> tuple[int, int, np.ndarray] | None:
        if done >= self.n:
            return None
        assert self.rotation is not None
        return self.row(max(done, self.base)), self.row(self.n), self.rotation

    def derive_gml(self) -> None:
        """The sagittal rate of every new sample (what event detection scans)."""
        rows = self._rows_since(self._gml_to)
        if rows is None:
            return
        a, b, rot = rows
        # einsum's own loops, not a BLAS product (whose blocking may round a row
        # differently with the number of rows): bit-identical whatever the block size
        self.g_ml[a:b] = np.einsum("j,nj->n", rot[1], self.gyr[a:b])
        self._gml_to = self.n

    def derive_jerk(self) -> None:
        """|d acc / dt| of every sample since the last call (the impact search reads it).

        Each value depends on its sample and the one before (none after a gap), so it is
        the same whenever it is computed; it is brought up to date before old rows leave
        the buffer and before a gap.
        """
        if self._jerk_to >= self.n:
            return
        a, b = self.row(self._jerk_to), self.row(self.n)
        acc = self.acc
        d = np.empty((b - a, 3))
        if self._jerk_to == self._stretch_from:
            d[0] = 0.0
        else:
            assert a > 0, "the jerk fell behind the buffer"
            np.subtract(acc[a], acc[a - 1], out=d[0])
        np.subtract(acc[a + 1 : b], acc[a : b - 1], out=d[1:])
        self.jerk[a:b] = np.sqrt(np.sum(d * d, axis=1)) * self.rate_hz
        self._jerk_to = self.n

    def derive_all(self) -> None:
        """Everything else in the segment frame, up to the newest sample (done when a
        stride is measured; each sample's values are the same whenever computed)."""
        self.derive_gml()
        rows = self._rows_since(self.derived_to)
        if rows is None:
            return
        a, b, rot = rows
        self.a_seg[a:b] = np.einsum("ij,nj->ni", rot, self.acc[a:b])
        self.g_seg[a:b] = np.einsum("ij,nj->ni", rot, self.gyr[a:b])
        self.g_seg[a:b, 1] = self.g_ml[a:b]  # the sagittal rate as detection saw it
        g = self.g_seg[a:b]
        self.g_norm[a:b] = np.sqrt(np.sum(g * g, axis=1))
        self.derived_to = self.n
