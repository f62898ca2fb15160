"""The streaming estimator: sample batches in, labelled strides out.

Per sensor, a :class:`SensorTrack` keeps a fixed-size buffer of the last few
seconds (memory does not grow with the run) and runs, on whatever new samples a
batch brings:

1. **gap handling** – samples are put on the nominal-rate grid; short gaps from
   lost packets are bridged, a long one restarts stride detection (no stride is
   ever reported across it, none is invented);
2. **alignment** – the sensor-to-segment rotation from gravity and the main
   rotation axis (:func:`~companion.estimator.signals.estimate_alignment`), or the
   configured mounting;
3. **gait events** – mid-swing, initial contact (IC) and toe-off from the
   sagittal angular rate (:mod:`companion.estimator.signals`);
4. **per stride**, once its closing IC is confirmed: the sagittal and frontal
   angles between two still mid-stance instants (gyro integration reset by the
   accelerometer each stance), the features, and the label against the runner's
   baseline (:mod:`companion.estimator.classify`).

Every decision is a function of the samples up to a fixed look-ahead after the
event, never of where batches begin or end, so any chunking of the same stream
gives exactly the same reports. ``t_decided_s`` is the time of the sample that
completed the decision (the closing IC plus the look-ahead), i.e. when a live
stream delivering samples one by one would have emitted it.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import replace

import numpy as np
from scipy.ndimage import uniform_filter1d

from companion.errors import ConfigError
from companion.estimator import signals as sig
from companion.estimator.classify import SUPPORTED_LABELS, Baseline, classify
from companion.estimator.profile import RunnerProfile
from companion.estimator.settings import EstimatorSettings
from companion.types import (
    CURVE_POINTS,
    G_MPS2,
    RATE_RANGE_HZ,
    Label,
    SampleBatch,
    SensorInfo,
    StrideReport,
    parse_mount,
)

IMPACT_MIN_G_PER_S = {"foot": 400.0, "shank": 300.0}
"""Smallest peak jerk (g/s) taken as a landing impact (also at least a quarter of the
runner's recent impacts). A foot's swing stays at 100-200 g/s and its heel strike gives
1000 g/s and more at 200 Hz; the shank's impact is smaller (400-800 g/s at 200 Hz) and
its swing reaches 250 g/s."""
IMPACT_MIN_G_PER_SAMPLE = {"foot": 3.0, "shank": 6.0}
"""At low sampling rates the impact is smeared over a sample period: the smallest peak
jerk is then this change of acceleration (g) per sample when that is below
``IMPACT_MIN_G_PER_S`` (150 g/s for a foot at 50 Hz, whose swing stays below ~100 g/s).
The shank's impact is lost in its swing at low rates, so it is not scaled down there
(the pitch-rate fallback times it)."""
IMPACT_BEFORE_DESCENT_S = 0.12
"""The impact is searched from this long before the swing rate has dropped: a heel
strike with the toes well up can land while the foot still rotates toes-up."""
IMPACT_ONSET_G_PER_S = 100.0
"""Smallest jerk (g/s) at the first sample of an impact (scaled down like the peak at low
sampling rates)."""

BUFFER_S = 8.0
"""Seconds of samples kept per sensor (alignment window plus a few strides)."""


def _norm3(v: np.ndarray) -> np.ndarray:
    return np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])


def _median(values: deque[float]) -> float:
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (samples evenly spread over a stride) at ``n`` evenly spread points."""
    if len(x) < 2:
        return np.full(n, float(x[0]) if len(x) else np.nan)
    return np.interp(np.linspace(0.0, len(x) - 1.0, n), np.arange(len(x)), x)


def _integral(rate_dps: np.ndarray, rate_hz: float) -> float:
    """Trapezoidal integral of an angular rate (deg) over the samples given."""
    if len(rate_dps) < 2:
        return 0.0
    return float(np.sum(0.5 * (rate_dps[1:] + rate_dps[:-1]))) / rate_hz


class SensorTrack:
    """Everything the estimator knows about one sensor's stream.

    Parameters
    ----------
    info
        The sensor (rate, segment, side, mounting).
    settings
        Estimator settings.
    baseline
        A loaded baseline (from a runner profile), or ``None`` to learn one.
    """

    def __init__(
        self, info: SensorInfo, settings: EstimatorSettings, baseline: Baseline | None = None
    ) -> None:
        if info.segment not in ("foot", "shank"):
            raise ConfigError(
                f"sensor {info.name!r}: segment {info.segment!r} is not supported; use foot or "
                "shank"
            )
        lo, hi = RATE_RANGE_HZ
        if not (lo <= info.rate_hz <= hi):
            raise ConfigError(
                f"sensor {info.name!r}: rate {info.rate_hz} Hz is outside {lo:g}..{hi:g} Hz"
            )
        self.info = info
        self.settings = settings
        self.rate_hz = float(info.rate_hz)
        fs = self.rate_hz
        self.cap = math.ceil(max(BUFFER_S, 2.0 * settings.align_window_s + 1.0) * fs)
        size = 2 * self.cap
        self._t = np.zeros(size)
        self._acc = np.zeros((size, 3))
        self._gyr = np.zeros((size, 3))
        self._filled = np.zeros(size, dtype=bool)
        # derived, segment frame
        self._g_ml = np.zeros(size)
        self._g_ap = np.zeros(size)
        self._a_ap = np.zeros(size)
        self._a_ml = np.zeros(size)
        self._a_si = np.zeros(size)
        self._a_norm = np.zeros(size)
        self._g_norm = np.zeros(size)
        self._sat = np.zeros(size, dtype=bool)
        self._jerk = np.zeros(size)
        """|d acc / dt| (m/s³), sensor frame (rotation-invariant), 0 after a gap; filled
        only when the impact search reads it (:meth:`_derive_jerk`)."""
        self._jerk_to = 0
        """Stream index up to which the jerk is filled."""
        self._stretch_from = 0
        """Stream index of the first sample after the last long gap: no step before it for
        the jerk, and where the grid fit of :meth:`_stretch_tail` starts."""
        self.base = 0
        """Stream index of buffer row 0."""
        self.n = 0
        """Stream index one past the newest sample."""
        self._derived_to = 0
        """Stream index up to which every segment-frame array is filled."""
        self._gml_to = 0
        """Stream index up to which the sagittal rate is filled (ahead of the others)."""
        self.last_t_s = -math.inf
        """Sensor time of the newest sample (s)."""
        # windows in samples
        self._w_ms = max(2, round(0.10 * fs))
        self._l_ic = max(2, round(settings.ic_lookahead_ms / 1000.0 * fs))
        self._max_ms_to_ic = round(0.6 * fs)
        self._min_ms_to_ic = max(1, round(0.03 * fs))
        self._stance_skip = round(0.15 * fs)
        self._w_imp = max(1, round(0.02 * fs))
        self._fallback_wait = round(0.08 * fs)
        peak_g_s = IMPACT_MIN_G_PER_S[info.segment]
        low_rate = min(1.0, IMPACT_MIN_G_PER_SAMPLE[info.segment] * fs / peak_g_s)
        self._impact_min = peak_g_s * low_rate * G_MPS2
        self._impact_onset = IMPACT_ONSET_G_PER_S * low_rate * G_MPS2
        self._check_every = max(1, round(0.5 * fs))
        # alignment
        self.rotation: np.ndarray | None = None
        self.aligned_t: float | None = None
        """Sensor time at which the mounting became known."""
        if info.mount and info.mount.strip().lower() != "auto":
            self.rotation = parse_mount(info.mount)
            self.aligned_t = -math.inf
        self._still_sum = np.zeros(3, dtype=np.int64)
        self._still_gyr = np.zeros(3, dtype=np.int64)
        self._still_n = 0
        self._next_check = self._check_every
        self._align_tries = 0
        # tilt at each still mid-stance (gyro + gravity), kept across restarts
        self._pitch = sig.StanceTiltFilter()
        self._roll = sig.StanceTiltFilter()
        # detection state
        self.run_start = 0
        self._reset_detection(0)
        self._peaks: deque[float] = deque(maxlen=5)
        self._impacts: deque[float] = deque(maxlen=5)
        self._peak_med = 0.0
        self._impact_med = 0.0
        self._tilts: deque[tuple[int, float, float, float]] = deque(maxlen=6)
        """(still index, tilt deg, decided time s, gyro bias deg/s) of recent stances."""
        self.baseline = (
            baseline if baseline is not None else Baseline(info.segment, settings.baseline_strides)
        )
        self.strides_reported = 0
        self.drops: Counter[str] = Counter()
        """Strides not reported, by reason (gap, no_contact, stride_time ...)."""
        self.side_sign = -1.0 if info.side == "left" else 1.0
        self.defer = False
        self.keep_curves = False
        """Attach the stride's angle curve to each report (``StrideReport.curves``)."""
        self._curve: np.ndarray | None = None
        """Hold reports for :meth:`finalize` (set when a shank partner adds ankle features)."""
        self.traces: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self._trace: tuple[np.ndarray, np.ndarray, int] = (np.zeros(0), np.zeros(0), 0)
        self._gyr_peak_dps = 0.0
        self._acc_sum = 0.0
        self._acc_n = 0

    # ------------------------------------------------------------------ state
    def _reset_detection(self, start: int) -> None:
        self.run_start = start
        self._mode = "ms"
        self._scan = start
        self._ms = -1
        self._ms_peak = 0.0
        self._descent: int | None = None
        self._imp_scan = start
        self._min_scan = start
        self._gmin: int | None = None
        self._last_ic: int | None = None
        self._last_ic_ms: int | None = None
        self._anchor: tuple[int, float, float] | None = None
        self._pitch.restart()
        self._roll.restart()

    @property
    def strides_dropped(self) -> int:
        return sum(self.drops.values())

    def _drop(self, reason: str, count: bool = True) -> None:
        if count:
            self.drops[reason] += 1

    def _row(self, idx: int) -> int:
        return idx - self.base

    # ------------------------------------------------------------------ input
    def push(self, batch: SampleBatch) -> list[StrideReport]:
        if len(batch) == 0:
            return []
        t = np.asarray(batch.t_s, dtype=float)
        prev = None
        if self.n > 0:
            if t[0] <= self.last_t_s:
                raise ValueError(
                    f"sensor {self.info.name!r}: sample time {t[0]:.6f} s does not follow "
                    f"{self.last_t_s:.6f} s"
                )
            r = self._row(self.n - 1)  # the newest sample, as it came (never a filled one)
            prev = (self.last_t_s, self._acc[r], self._gyr[r])
        reg = sig.regularise(
            t,
            np.asarray(batch.acc, dtype=float),
            np.asarray(batch.gyr, dtype=float),
            self.rate_hz,
            self.settings.max_gap_ms / 1000.0,
            prev,
            self._stretch_tail,
        )
        self.last_t_s = float(t[-1])
        step = max(1, self.cap // 4)
        if len(reg.breaks) == 0 and len(reg.t_s) <= step:  # the common case: one piece
            self._append(reg.t_s, reg.acc, reg.gyr, reg.filled)
            return self._process()
        out: list[StrideReport] = []
        cuts = [0, *[int(b) for b in reg.breaks], len(reg.t_s)]
        for k in range(len(cuts) - 1):
            if k > 0:
                self._derive_jerk()
                self._stretch_from = self.n
                self._drop("gap", self._last_ic is not None)
                self._reset_detection(self.n)
                if self.rotation is None:
                    self._next_check = self.n + self._check_every
            lo, hi = cuts[k], cuts[k + 1]
            for s in range(lo, hi, step):
                e = min(hi, s + step)
                self._append(reg.t_s[s:e], reg.acc[s:e], reg.gyr[s:e], reg.filled[s:e])
                out.extend(self._process())
        return out

    def _stretch_tail(self) -> tuple[np.ndarray, np.ndarray]:
        """Times and stream positions of the newest ``GRID_FIT_SAMPLES`` samples that
        came in (not filled ones) since the last long gap: what places a sample after a
        suspected gap on the grid, as if the stream had come in one batch."""
        w = sig.GRID_FIT_SAMPLES
        first = max(self._stretch_from, self.base)
        lo = self.n
        real = np.zeros(0, dtype=np.int64)
        while lo > first:
            lo = max(first, lo - 4 * w)
            real = np.flatnonzero(~self._filled[self._row(lo) : self._row(self.n)])
            if len(real) >= w:
                break
        idx = real[-w:] + lo
        return self._t[idx - self.base], idx.astype(float)

    def _append(self, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, filled: np.ndarray) -> None:
        m = len(t)
        rows = self.n - self.base
        if rows + m > 2 * self.cap:
            self._derive_jerk()  # while the sample before each row is still here
            keep = self.cap - m
            drop = rows - keep
            for arr in (
                self._t,
                self._acc,
                self._gyr,
                self._filled,
                self._g_ml,
                self._g_ap,
                self._a_ap,
                self._a_ml,
                self._a_si,
                self._a_norm,
                self._g_norm,
                self._sat,
                self._jerk,
            ):
                arr[:keep] = arr[drop:rows]
            self.base += drop
            rows = keep
        self._t[rows : rows + m] = t
        self._acc[rows : rows + m] = acc
        self._gyr[rows : rows + m] = gyr
        self._filled[rows : rows + m] = filled
        if self.rotation is None:
            gn = _norm3(gyr)
            an = _norm3(acc)
            still = (gn < 8.0) & (np.abs(an - G_MPS2) < 0.3) & ~filled
            if still.any():
                # integer micro-units: the sum is exact, so it does not depend on chunking
                self._still_sum += np.rint(acc[still] * 1e6).astype(np.int64).sum(axis=0)
                self._still_gyr += np.rint(gyr[still] * 1e6).astype(np.int64).sum(axis=0)
                self._still_n += int(still.sum())
        self.n += m
        if not self.strides_reported:
            # plain running figures for :meth:`hints` (units mistakes show here)
            g_peak = float(np.abs(gyr).max())
            if g_peak > self._gyr_peak_dps:
                self._gyr_peak_dps = g_peak
            self._acc_sum += float(_norm3(acc).sum())
            self._acc_n += m

    def hints(self) -> list[str]:
        """What is likely wrong when this stream gave no strides (else nothing)."""
        if self.strides_reported or self.n < self.settings.align_window_s * self.rate_hz:
            return []
        name = self.info.name
        mean_acc = self._acc_sum / max(1, self._acc_n)
        out = []
        if mean_acc < 0.3 * G_MPS2:
            out.append(
                f"sensor {name!r}: the accelerometer averages {mean_acc:.2f}, far below "
                f"gravity ({G_MPS2:.2f} m/s²): is it in g? Samples must be in m/s²."
            )
        if self._gyr_peak_dps < 50.0:
            out.append(
                f"sensor {name!r}: the gyroscope never exceeded {self._gyr_peak_dps:.1f}; a "
                "running foot or shank turns at several hundred deg/s: is it in rad/s? "
                "Samples must be in deg/s."
            )
        elif self.rotation is None:
            out.append(
                f"sensor {name!r}: no running found to learn the mounting from (it needs "
                f"{self.settings.align_window_s:g} s of running with one main rotation axis); "
                "or set the sensor's mount in the config."
            )
        else:
            out.append(
                f"sensor {name!r}: no stride found; is the sensor on a foot or shank of a "
                f"runner (swing peaks above {self.settings.min_swing_peak_dps:g} deg/s)?"
            )
        return out

    # ------------------------------------------------------------------ processing
    def _process(self) -> list[StrideReport]:
        if self.rotation is None:
            self._try_align()
            if self.rotation is None:
                return []
        self._derive()
        return self._scan_events()

    def _try_align(self) -> None:
        fs = self.rate_hz
        win = round(self.settings.align_window_s * fs)
        while self._next_check <= self.n:
            m = self._next_check
            self._next_check += self._check_every
            start = max(self.run_start, m - win, self.base)
            if m - start < win:
                continue
            a, b = self._row(start), self._row(m)
            standing = None
            if self._still_n >= 0.5 * fs:
                standing = self._still_sum / 1e6 / self._still_n
            self._align_tries += 1
            rot = sig.estimate_alignment(
                self._acc[a:b],
                self._gyr[a:b],
                fs,
                self.info.segment,
                standing,
                allow_fallback=self._align_tries > 20,
            )
            if rot is not None:
                self.rotation = rot
                if self._still_n >= 0.5 * fs:
                    # gyro bias while standing: a prior for the stance tilt filters
                    bias = self._still_gyr / 1e6 / self._still_n
                    self._pitch.prior_dps = float(bias @ rot[1])
                    self._roll.prior_dps = float(bias @ rot[0])
                    self._pitch.prior_weight_s = self._roll.prior_weight_s = 30.0
                self.aligned_t = float(self._t[self._row(m) - 1])
                self._derived_to = self._gml_to = start
                self._scan = start
                self.run_start = max(self.run_start, start)
                return

    def _rows_since(self, done: int) -> tuple[int, int, np.ndarray] | None:
        """Buffer rows from stream index ``done`` to the newest sample, and the rotation."""
        if done >= self.n:
            return None
        assert self.rotation is not None
        return self._row(max(done, self.base)), self._row(self.n), self.rotation

    def _derive(self) -> None:
        """The sagittal rate of every new sample (what event detection scans), at once."""
        rows = self._rows_since(self._gml_to)
        if rows is None:
            return
        a, b, rot = rows
        # einsum's own loops, not a BLAS product (whose blocking may round a row
        # differently with the number of rows): bit-identical whatever the block size
        self._g_ml[a:b] = np.einsum("j,nj->n", rot[1], self._gyr[a:b])
        self._gml_to = self.n

    def _derive_jerk(self) -> None:
        """|d acc / dt| of every sample since the last call (the impact search reads it).

        Each value depends on its sample and the one before (none after a gap), so it is
        the same whenever it is computed; it is brought up to date before old rows leave
        the buffer and before a gap.
        """
        if self._jerk_to >= self.n:
            return
        a, b = self._row(self._jerk_to), self._row(self.n)
        acc = self._acc
        d = np.empty((b - a, 3))
        if self._jerk_to == self._stretch_from:
            d[0] = 0.0
        else:
            assert a > 0, "the jerk fell behind the buffer"
            np.subtract(acc[a], acc[a - 1], out=d[0])
        np.subtract(acc[a + 1 : b], acc[a : b - 1], out=d[1:])
        self._jerk[a:b] = _norm3(d) * self.rate_hz
        self._jerk_to = self.n

    def _derive_all(self) -> None:
        """Everything else in the segment frame, up to the newest sample: needed only when
        a stride is measured, so it is done then, for all the samples since the last one
        (each sample's values are the same whenever they are computed)."""
        self._derive()
        rows = self._rows_since(self._derived_to)
        if rows is None:
            return
        a, b, rot = rows
        m = b - a
        v = np.concatenate((self._acc[a:b], self._gyr[a:b]))
        seg = np.einsum("ij,nj->in", rot, v)
        ap, ml, si = seg[0], seg[1], seg[2]
        self._a_ap[a:b] = ap[:m]
        self._a_ml[a:b] = ml[:m]
        self._a_si[a:b] = si[:m]
        self._g_ap[a:b] = ap[m:]
        ml[m:] = self._g_ml[a:b]  # the sagittal rate as detection saw it
        sq = ap * ap + ml * ml + si * si
        np.sqrt(sq[:m], out=self._a_norm[a:b])
        np.sqrt(sq[m:], out=self._g_norm[a:b])
        raw = np.abs(v).max(axis=1)
        self._sat[a:b] = (raw[m:] >= sig.GYR_SATURATION_DPS) | (raw[:m] >= sig.ACC_SATURATION_MPS2)
        self._derived_to = self.n

    def _scan_events(self) -> list[StrideReport]:
        out: list[StrideReport] = []
        g = self._g_ml
        end = self._row(self.n)
        while True:
            if self._mode == "ic" and self._ms < self.base:
                # the samples this search needs are gone (only a stalled stream can do that)
                self._drop("no_contact", self._last_ic is not None)
                self._reset_detection(max(self._scan, self.base))
            if self._mode == "ms":
                need = self._scan + self._w_ms
                if need >= self.n:
                    return out
                lo = max(self.run_start, self._scan - self._w_ms, self.base)
                thr = self.settings.min_swing_peak_dps
                if self._peaks:
                    thr = max(thr, 0.4 * self._peak_med)
                last = self.n - self._w_ms  # candidates are confirmed up to here
                if float(g[self._row(self._scan) : self._row(last)].max()) < thr:
                    # nothing high enough yet (most of every stride): skip the search
                    self._scan = last
                    return out
                j = sig.first_swing_peak(g[self._row(lo) : end], self._w_ms, thr, self._scan - lo)
                if j is None:
                    self._scan = max(self._scan, self.n - self._w_ms)
                    return out
                ms = j + lo
                self._ms = ms
                self._ms_peak = float(g[self._row(ms)])
                self._mode = "ic"
                self._scan = ms + self._min_ms_to_ic
            else:
                found = self._seek_contact()
                if found is None:
                    return out
                if found[0] < 0:
                    # no contact after this swing: the stride chain is broken here
                    self._drop("no_contact", self._last_ic is not None)
                    self._mode = "ms"
                    self._scan = self._ms + self._w_ms
                    self._last_ic = None
                    self._anchor = None
                    continue
                ic, decided = found
                self._peaks.append(self._ms_peak)
                self._peak_med = _median(self._peaks)
                rep = self._on_contact(ic, decided)
                if rep is not None:
                    out.append(rep)
                self._mode = "ms"
                self._scan = ic + self._stance_skip

    def _seek_contact(self) -> tuple[int, int] | None:
        """The initial contact after the current mid-swing, once it can be confirmed.

        1. *descent*: the first sample after mid-swing whose pitch rate is below 20 %
           of the swing peak (the foot has stopped swinging forward);
        2. the **impact onset**, searched from ``IMPACT_BEFORE_DESCENT_S`` before the
           descent: the first sample whose jerk is at least half the largest jerk of
           the next 20 ms, that largest jerk being at least ``IMPACT_MIN_G_PER_S``
           (less at low rates, ``IMPACT_MIN_G_PER_SAMPLE``)
           and a quarter of the runner's recent impacts (the foot's impact
           transient; Giandolini et al. 2014, Mitschke et al. 2017), confirmed 20 ms
           later;
        3. else the pitch-rate minimum after the descent (Falbriard et al. 2018),
           confirmed ``ic_lookahead_ms`` later, if no impact shows within
           80 ms of it (low sampling rates smear the impact).

        Returns ``(ic, decided_index)``, ``(-1, -1)`` when this swing has no contact,
        or ``None`` to wait for more samples. Every test uses a fixed window after its
        sample, so the answer never depends on how the stream was chunked.
        """
        fs = self.rate_hz
        g = self._g_ml
        limit = self._ms + self._max_ms_to_ic
        if self._descent is None:
            a = max(self._scan, self.base)
            seg = g[self._row(a) : self._row(min(self.n, limit + 1))]
            hit = np.flatnonzero(seg <= 0.2 * self._ms_peak)
            if len(hit) == 0:
                if self.n > limit:
                    return (-1, -1)
                self._scan = max(self._scan, self.n)
                return None
            self._descent = a + int(hit[0])
            self._imp_scan = max(
                self._ms + self._min_ms_to_ic,
                self._descent - round(IMPACT_BEFORE_DESCENT_S * fs),
                self.run_start,
                self.base,
            )
            self._min_scan = self._descent
            self._gmin = None
        d = self._descent
        # the fallback first (the impact search is capped by it): the first pitch-rate
        # minimum after the descent
        gmin_done = self._gmin is not None or self._min_scan > limit
        if not gmin_done:
            need = self._min_scan + self._l_ic
            if need < self.n:
                lo = max(self.run_start, self._min_scan - self._l_ic, self.base)
                hi = min(self.n, limit + self._l_ic + 1)
                i = sig.first_contact(
                    g[self._row(lo) : self._row(hi)],
                    self._l_ic,
                    np.inf,
                    self._min_scan - lo,
                    max(30.0, 0.05 * self._ms_peak),
                )
                if i is not None:
                    self._gmin = i + lo
                else:
                    self._min_scan = max(self._min_scan, hi - self._l_ic)
        w_imp = self._w_imp
        imp_limit = min(limit, d + round(0.3 * fs))
        # impact onset candidates k need k + w_imp < n
        k_hi = min(self.n - w_imp, imp_limit + 1)
        if self._gmin is not None:
            k_hi = min(k_hi, self._gmin + self._fallback_wait + 1)
        if k_hi > self._imp_scan:
            lo = self._imp_scan
            self._derive_jerk()
            jerk = self._jerk[self._row(lo) : self._row(k_hi + w_imp)]
            peak = self._impact_min
            if self._impacts:
                peak = max(peak, 0.25 * self._impact_med)
            k = sig.impact_onset(jerk, w_imp, peak, self._impact_onset)
            if k is not None:
                ic = lo + k
                self._impacts.append(float(jerk[k : k + w_imp + 1].max()))
                self._impact_med = _median(self._impacts)
                self._descent = None
                return ic, ic + w_imp
            self._imp_scan = k_hi
        if self._gmin is not None:
            wait_to = min(self._gmin + self._fallback_wait, imp_limit)
            if self._imp_scan > wait_to:
                m = self._gmin
                self._descent = None
                return m, wait_to + w_imp
        if self._gmin is None and self._min_scan > limit and self._imp_scan > imp_limit:
            self._descent = None
            return (-1, -1)
        return None

    # ------------------------------------------------------------------ strides
    def _on_contact(self, ic: int, decided_at: int) -> StrideReport | None:
        self._derive_all()
        prev_ic, prev_ms = self._last_ic, self._last_ic_ms
        ms = self._ms
        self._last_ic, self._last_ic_ms = ic, ms
        if prev_ic is None or prev_ic < self.base:
            return None
        fs = self.rate_hz
        stride_s = (ic - prev_ic) / fs
        if not (self.settings.min_stride_s <= stride_s <= self.settings.max_stride_s):
            self._drop("stride_time")
            self._anchor = None
            return None
        # toe-off: minimum pitch rate in the second half of the mid-swing to mid-swing
        # cycle (Falbriard et al. 2018), and after the landing.
        lo = prev_ic + round(0.05 * fs)
        if prev_ms is not None and prev_ms >= self.base:
            lo = max(lo, (prev_ms + ms) // 2)
        hi = ms
        if hi - lo < 2:
            self._drop("no_toe_off")
            self._anchor = None
            return None
        r0 = self._row(lo)
        to = lo + int(np.argmin(self._g_ml[r0 : self._row(hi)]))
        # still instant of this stance: least rotation and |acc| closest to g
        a, b = self._row(prev_ic), self._row(to)
        w = max(1, round(0.02 * fs))
        cost = self._g_norm[a : b + 1] / 100.0
        cost += np.abs(self._a_norm[a : b + 1] - G_MPS2) / (0.1 * G_MPS2)
        still = prev_ic + int(np.argmin(uniform_filter1d(cost, w, mode="nearest")))
        # gravity tilt over +-10 ms around it (the foot lies still for only 30-50 ms of a
        # running stance; a wider window takes in the heel rise and the forefoot landing)
        h = round(0.01 * fs)
        sr = slice(self._row(max(still - h, prev_ic)), self._row(min(still + h, to)) + 1)
        n_sr = sr.stop - sr.start
        s_ap, s_ml, s_si = (float(x[sr].sum()) for x in (self._a_ap, self._a_ml, self._a_si))
        acc_pitch = math.degrees(math.atan2(s_ap, -s_si))  # as sig.accel_pitch_deg
        acc_roll = math.degrees(math.atan2(-s_ml, -s_si))  # as sig.accel_roll_deg
        # a gravity anchor is trusted only where the foot is still: |acc| near g, slow turn
        acc_dev = float(np.abs(self._a_norm[sr] - G_MPS2).sum()) / n_sr
        gyr_still = float(self._g_norm[sr].sum()) / n_sr
        acc_ok = acc_dev <= sig.STILL_ACC_TOL_MPS2 and gyr_still <= sig.STILL_GYR_MAX_DPS
        prev_anchor = self._anchor
        if prev_anchor is None or prev_anchor[0] < self.base or prev_anchor[0] >= prev_ic:
            self._pitch.restart()
            self._roll.restart()
            self._anchor = (still, self._pitch.first(acc_pitch), self._roll.first(acc_roll))
            self._drop("first_after_restart")
            return None
        ra, rb = self._row(prev_anchor[0]), self._row(still) + 1
        span = (still - prev_anchor[0]) / fs
        # a cycle with lost samples (a bridged swing peak loses area) or a clipped gyro
        # (a swing past the sensor's range loses area too) does not feed the gyro-bias
        # estimate
        whole = not self._filled[ra:rb].any() and not self._sat[ra:rb].any()
        pitch = self._pitch.update(_integral(self._g_ml[ra:rb], fs), span, acc_pitch, whole, acc_ok)
        roll = self._roll.update(_integral(self._g_ap[ra:rb], fs), span, acc_roll, whole, acc_ok)
        self._anchor = (still, pitch, roll)
        decided_t = float(self._t[self._row(min(decided_at, self.n - 1))])
        self._tilts.append((still, pitch, decided_t, self._pitch.bias_dps()))
        features = self._features(prev_anchor, (still, pitch, roll), prev_ic, to, ic)
        # how still the foot gets in this stance: the rotation rate at its stillest
        # instant (a relaxed foot lies flat while the shank turns over it; a held ankle
        # makes it turn with the shank). Found by a search, so contact timing does not
        # move it.
        features["stance_still_dps"] = gyr_still
        decided = min(decided_at, self.n - 1)
        rep = StrideReport(
            sensor=self.info.name,
            stride=self.strides_reported,
            t_ic_s=float(self._t[self._row(prev_ic)]),
            t_to_s=float(self._t[self._row(to)]),
            t_end_s=float(self._t[self._row(ic)]),
            t_decided_s=float(self._t[self._row(decided)]),
            label=Label.RELAXED,
            confidence=1.0,
            baseline_ready=False,
            features=features,
        )
        if self._curve is not None:
            rep = replace(rep, curves={f"{self.info.segment}_sagittal_deg": self._curve})
            self._curve = None
        self.strides_reported += 1
        if self.defer:
            self.traces[rep.stride] = self._trace
            return rep
        return self.finalize(rep)

    def finalize(self, rep: StrideReport) -> StrideReport:
        """Label a stride from its (complete) features; learn the baseline first."""
        if self.baseline.ready:
            d = classify(rep.features, self.baseline, self.settings)
            return replace(rep, label=d.label, confidence=d.confidence, baseline_ready=True)
        self.baseline.add(rep.features)
        return rep

    def sagittal_at(
        self, t_from: float, t_to: float, t_limit: float, t_query: np.ndarray
    ) -> np.ndarray | None:
        """This segment's sagittal angle at times ``t_query`` in ``[t_from, t_to]``.

        Integrated (bias removed) from this sensor's latest still-stance tilt before
        ``t_from`` whose stride was decided by ``t_limit``; ``None`` if there is none
        in the buffer or the stream restarted since (so the answer never depends on
        how far this sensor's stream has arrived beyond ``t_limit``).
        """
        anchor = None
        for idx, tilt, decided_t, bias in reversed(self._tilts):
            usable = decided_t <= t_limit and idx >= max(self.base, self.run_start)
            if usable and self._t[self._row(idx)] <= t_from:
                anchor = (idx, tilt, bias)
                break
        if anchor is None or t_to > t_limit:
            return None
        idx, tilt, bias = anchor
        rows_t = self._t[: self._row(self._gml_to)]
        i0 = self._row(idx)
        i1 = int(np.searchsorted(rows_t, t_to, side="left"))
        if i1 >= len(rows_t) or i1 - i0 < 2:
            return None
        g = self._g_ml[i0 : i1 + 1] - bias
        fs = self.rate_hz
        theta = tilt + np.concatenate(([0.0], np.cumsum(0.5 * (g[1:] + g[:-1])))) / fs
        return np.interp(t_query, rows_t[i0 : i1 + 1], theta)

    def _features(
        self,
        anchor0: tuple[int, float, float],
        anchor1: tuple[int, float, float],
        ic: int,
        to: int,
        ic_next: int,
    ) -> dict[str, float]:
        """Features of the stride starting at ``ic``.

        The angles are integrated over the gait cycle between the previous stance's
        still instant and this stance's one, so both ends are anchored by gravity.
        """
        fs = self.rate_hz
        s0, p0, r0 = anchor0
        s1, p1, r1 = anchor1
        a, b = self._row(s0), self._row(s1) + 1
        theta = sig.dedrifted_angle(self._g_ml[a:b], p0, p1, fs)
        phi = sig.dedrifted_angle(self._g_ap[a:b], r0, r1, fs) * self.side_sign
        i_ic = ic - s0
        strike = float(theta[i_ic])
        stance = theta[i_ic:]
        ric, rto = self._row(ic), self._row(to)
        still_dps = 50.0
        lowest = float(theta.min())
        f: dict[str, float] = {
            "stride_s": (ic_next - ic) / fs,
            "cadence_spm": 120.0 * fs / (ic_next - ic),
            "contact_ms": 1000.0 * (to - ic) / fs,
            "strike_angle_deg": strike,
            "stance_excursion_deg": float(stance.max() - stance.min()),
            "stride_range_deg": float(theta.max()) - lowest,
            # the highest the toes come up in the last 150 ms before contact: the landing
            # angle of the approach, which (unlike the angle at the contact sample) does
            # not move with the contact's timing
            "landing_peak_deg": float(theta[max(0, i_ic - round(0.15 * fs)) : i_ic + 1].max()),
            "pushoff_deg": lowest,
            "still_ms": 1000.0 * float(np.sum(np.abs(self._g_ml[ric:rto]) < still_dps)) / fs,
            # how fast the foot pitches in mid-stance (25-60 % of contact), where a relaxed
            # ankle lets it lie still while the shank rotates over it
            "midstance_rate_dps": float(
                np.mean(
                    np.abs(
                        self._g_ml[
                            ric + round(0.25 * (rto - ric)) : ric + round(0.6 * (rto - ric)) + 1
                        ]
                    )
                )
            ),
            "frontal_ic_deg": float(phi[i_ic]),
            "frontal_range_deg": float(phi.max() - phi.min()),
            # over all the samples this stride's report used
            "filled_ms": 1000.0 * float(self._filled[a : self._row(ic_next) + 1].sum()) / fs,
            "saturated_ms": 1000.0 * float(self._sat[a : self._row(ic_next) + 1].sum()) / fs,
        }
        if self.defer:
            # the cycle's angle, continued to toe-off from this stance's anchor, for the
            # ankle angle once the shank's samples are in
            r1 = self._row(s1)
            ext = p1 + np.cumsum(self._g_ml[r1 + 1 : rto + 1]) / fs
            self._trace = (
                self._t[a : rto + 1].copy(),
                np.concatenate((theta, ext)),
                i_ic,
            )
        if self.keep_curves:
            # this stride, IC to the next IC: the cycle's angle continued from this stance's
            # anchor (bias removed), resampled to 0..100 %
            r1, rn = self._row(s1), self._row(ic_next)
            g = self._g_ml[r1 : rn + 1] - self._pitch.bias_dps()
            ext = p1 + np.cumsum(0.5 * (g[1:] + g[:-1])) / fs
            stride = np.concatenate((theta[i_ic:], ext))
            self._curve = _resample(stride, CURVE_POINTS)
        if self.info.segment == "shank":
            w0 = self._row(max(ic - round(0.01 * fs), s0))
            w1 = self._row(ic + round(0.06 * fs)) + 1
            f["pta_g"] = float(self._a_norm[w0:w1].max() / G_MPS2)
        return f

    def finish(self) -> list[StrideReport]:
        """End of stream: nothing pending can be confirmed any more."""
        return []


WAIT_S = 0.5
"""Longest a foot report waits for its shank partner's samples."""


def _ankle_features(
    trace: tuple[np.ndarray, np.ndarray, int], shank: SensorTrack, t_limit: float
) -> dict[str, float]:
    """Ankle angle (foot minus shank, dorsiflexion positive) over one stride.

    ``trace`` is the foot's sample times and sagittal angle from the previous
    still mid-stance to this stride's toe-off, with the index of its IC.
    """
    t, foot, i_ic = trace
    shank_deg = shank.sagittal_at(float(t[0]), float(t[-1]), t_limit, t)
    if shank_deg is None or len(t) < 3:
        return {}
    ankle = foot - shank_deg
    stance = ankle[i_ic:]
    dt = np.diff(t)
    rate = np.abs(np.diff(stance)) / np.maximum(dt[i_ic:], 1e-6)
    return {
        "ankle_ic_deg": float(ankle[i_ic]),
        "ankle_rom_deg": float(ankle.max() - ankle.min()),
        "ankle_stance_df_deg": float(stance.max() - stance[0]),
        "ankle_still_ms": 1000.0 * float(np.sum(dt[i_ic:][rate < 30.0])),
    }


class StreamingEstimator:
    """Labelled strides from sample batches of any size, one track per sensor.

    Parameters
    ----------
    sensors
        The source's sensors by name.
    settings
        Estimator settings (thresholds, windows).
    profile
        A saved relaxed baseline for this runner; without it the baseline is
        learned from the first ``settings.baseline_strides`` strides.
    """

    def __init__(
        self,
        sensors: dict[str, SensorInfo],
        settings: EstimatorSettings,
        profile: RunnerProfile | None = None,
        *,
        keep_curves: bool = False,
    ) -> None:
        self.settings = settings
        self._profile_in = profile
        self.keep_curves = keep_curves
        self.tracks: dict[str, SensorTrack] = {}
        for name, info in sensors.items():
            base = None
            if profile is not None:
                base = profile.baseline(info.segment, settings.baseline_strides)
            self.tracks[name] = SensorTrack(info, settings, base)
            self.tracks[name].keep_curves = keep_curves
        # a foot sensor with a shank sensor of the same leg (or of an unknown side) gets
        # the ankle angle: its reports wait until the shank's samples cover them
        self._partner: dict[str, str] = {}
        shanks = [t for t in self.tracks.values() if t.info.segment == "shank"]
        for name, track in self.tracks.items():
            if track.info.segment != "foot":
                continue
            for sh in shanks:
                if "unknown" in (sh.info.side, track.info.side) or sh.info.side == track.info.side:
                    self._partner[name] = sh.info.name
                    track.defer = True
                    break
        self._pending: list[StrideReport] = []

    def push(self, batch: SampleBatch) -> list[StrideReport]:
        """Feed one batch (any size); return the strides it completed."""
        track = self.tracks.get(batch.sensor)
        if track is None:
            return []
        reps = track.push(batch)
        if track.defer:
            self._pending.extend(reps)
            reps = []
        if self._pending:
            reps.extend(self._release(final=False))
        return reps

    def finish(self) -> list[StrideReport]:
        """End of stream; strides whose closing contact was not confirmed are dropped."""
        out = self._release(final=True)
        for track in self.tracks.values():
            out.extend(track.finish())
        return out

    def _release(self, final: bool) -> list[StrideReport]:
        """Finish the foot reports whose shank samples have arrived (or never will)."""
        out: list[StrideReport] = []
        keep: list[StrideReport] = []
        for rep in self._pending:
            foot = self.tracks[rep.sensor]
            shank = self.tracks[self._partner[rep.sensor]]
            shank_t, foot_t = shank.last_t_s, foot.last_t_s
            if not (final or shank_t >= rep.t_decided_s or foot_t > rep.t_decided_s + WAIT_S):
                keep.append(rep)
                continue
            trace = foot.traces.pop(rep.stride, None)
            feats = dict(rep.features)
            curves = dict(rep.curves)
            if trace is not None:
                feats.update(_ankle_features(trace, shank, rep.t_decided_s))
            if self.keep_curves and "foot_sagittal_deg" in curves:
                tq = np.linspace(rep.t_ic_s, rep.t_end_s, CURVE_POINTS)
                sh = shank.sagittal_at(rep.t_ic_s, rep.t_end_s, rep.t_decided_s, tq)
                if sh is not None:
                    curves["ankle_deg"] = curves["foot_sagittal_deg"] - sh
            out.append(foot.finalize(replace(rep, features=feats, curves=curves)))
        self._pending = keep
        return out

    def profile(self) -> RunnerProfile | None:
        """The learned (or loaded) relaxed baseline per segment, to save."""
        prof = RunnerProfile(self._profile_in.runner if self._profile_in else "runner")
        for track in self.tracks.values():
            seg = track.info.segment
            if track.baseline.ready and seg not in prof.segments:
                prof.segments[seg] = dict(track.baseline.stats)
                prof.strides[seg] = track.baseline.target
        return prof if prof.segments else None

    def hints(self) -> list[str]:
        """Likely causes, per sensor that gave no strides (units, mounting)."""
        return [h for track in self.tracks.values() for h in track.hints()]

    def supported_labels(self, sensor: str) -> set[Label]:
        """The labels this sensor's set-up can see (see docs/estimator.md)."""
        track = self.tracks.get(sensor)
        if track is None:
            return set()
        return set(SUPPORTED_LABELS[track.info.segment])
