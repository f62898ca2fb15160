"""One sensor's stream: samples in, measured strides out.

A :class:`SensorTrack` keeps a fixed-size buffer of the last seconds (memory does not
grow with the run) and runs, on whatever new samples a batch brings, the parts of the
estimator in turn, each a module of its own with arrays in and results out:

1. :mod:`~companion.estimator.gaps` — samples onto the nominal grid; lost samples bridged
   (a lost swing peak comes back as a bump), a long gap restarts stride detection;
2. :mod:`~companion.estimator.clipping` — the sensor's range learned from the stream,
   clipped samples flagged;
3. :mod:`~companion.estimator.alignment` — the sensor-to-segment rotation (or the
   configured mounting);
4. :mod:`~companion.estimator.events` — mid-swing, initial contact (IC) and toe-off;
5. per stride, once its closing IC is confirmed: the stance's anchor instant, the tilt
   there (:mod:`~companion.estimator.orientation`: the zero-velocity closure of the cycle
   that ends there, or the accelerometer), the 3-D angles around it, and the features
   (:mod:`~companion.estimator.features`).

Every decision is a function of the samples up to a fixed look-ahead after the event,
never of where batches begin or end, so any chunking of the same stream gives exactly the
same reports. ``t_decided_s`` is the time of the sample that completed the decision.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, replace

import numpy as np

from companion.errors import ConfigError
from companion.estimator import features as feat
from companion.estimator.alignment import MountingFinder
from companion.estimator.classify import Baseline, classify
from companion.estimator.clipping import DEFAULT_ACC_MPS2, DEFAULT_GYR_DPS, FullScale, unclip
from companion.estimator.events import ContactScanner
from companion.estimator.gaps import GRID_FIT_SAMPLES, refill_quadratic, regularise
from companion.estimator.orientation import (
    CLOSURE_TOL,
    TiltAnchor,
    cycle_closure,
    gravity_up,
    gyro_path,
    tilt_series,
)
from companion.estimator.settings import EstimatorSettings
from companion.estimator.windows import centred_mean
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

BUFFER_S = 8.0
"""Seconds of samples kept per sensor (alignment window plus a few strides)."""
CARRY_S = 2.0
"""A stride whose landing was lost keeps a judgement at most this old."""
LOST_LANDING_MS = 40.0
"""More bridged samples than this from the landing's approach to toe-off and the stride's
landing and stance features are not reported."""
BASELINE_SKIP = 8
"""A run's first strides (at most this many, and at most half the baseline's) are not
learned from: the runner settles into the pace, and the estimator is still learning the
landings and the tilt anchor's offset."""
APPROACH_S = 0.2
"""Angles are computed from this long before a stride's IC (the landing's approach)."""
ANCHOR_AFTER_JOLT_SHARE = 0.35
"""The foot's anchor is searched after the largest jolt of this first share of contact."""
ANCHOR_HALF_S = 0.01
"""Half width of the accelerometer window at the anchor instant (the gravity fallback)."""
SHANK_ANCHOR_PHASE = 0.45
"""The shank never lies still: its anchor is this fraction of the way through contact."""
MAX_CLIP_RUN_S = 0.05
"""A clipped run longer than this is not rebuilt (a sensor knocked to full scale)."""
CYCLE_S = (0.35, 2.0)
"""A cycle (anchor to anchor) outside this span is not integrated."""
CYCLE_FILL_MS = 30.0
"""A cycle with more bridged samples than this is not integrated (the gravity fallback)."""
PRIOR_S = 2.0
"""A cycle that cannot be integrated leans on the last stance's closure if it is at most
this old (the runner's stance changes little from one stride to the next)."""
"""A cycle (anchor to anchor) outside this span is not integrated."""


@dataclass
class Anchor:
    """A stance's anchor instant and the tilt found there."""

    index: int
    """Stream index of the anchor sample."""
    up: np.ndarray
    """Up (unit vector) in the segment frame at the anchor."""
    zupt: bool
    """From a clean cycle's zero-velocity closure (else the accelerometer)."""
    decided_t: float
    """Sensor time at which it became known."""
    bias_dps: np.ndarray
    """The gyroscope bias removed when integrating from it."""


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
        self,
        info: SensorInfo,
        settings: EstimatorSettings,
        baseline: Baseline | None = None,
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
        self.rate_hz = fs = float(info.rate_hz)
        self.cap = math.ceil(max(BUFFER_S, 2.0 * settings.align_window_s + 1.0) * fs)
        size = 2 * self.cap
        self._t = np.zeros(size)
        self._acc = np.zeros((size, 3))
        self._gyr = np.zeros((size, 3))
        self._filled = np.zeros(size, dtype=bool)
        self._clip = np.zeros(size, dtype=bool)
        """Gyroscope at full scale (learned, :mod:`clipping`): the angle is lost there."""
        self._aclip = np.zeros(size, dtype=bool)
        """Accelerometer at full scale (a hard landing on an 8 g sensor: its impact is
        still timed by its steep edges, and its short loss of velocity barely moves a
        cycle's closure)."""
        # derived, segment frame
        self.g_ml = np.zeros(size)
        """Sagittal rate (deg/s, toes up positive): what event detection scans."""
        self._g_seg = np.zeros((size, 3))
        self._a_seg = np.zeros((size, 3))
        self._g_norm = np.zeros(size)
        self.jerk = np.zeros(size)
        """|d acc / dt| (m/s³), sensor frame, 0 after a gap; filled on demand
        (:meth:`derive_jerk`)."""
        self._arrays = [
            self._t,
            self._acc,
            self._gyr,
            self._filled,
            self._clip,
            self._aclip,
            self.g_ml,
            self._g_seg,
            self._a_seg,
            self._g_norm,
            self.jerk,
        ]
        self._jerk_to = 0
        self._stretch_from = 0
        """Stream index of the first sample after the last long gap."""
        self.base = 0
        """Stream index of buffer row 0."""
        self.n = 0
        """Stream index one past the newest sample ready for the estimator (a clipped run
        still at full scale at the newest sample waits for its end, to be rebuilt)."""
        self.n_in = 0
        """Stream index one past the newest sample in the buffer."""
        self._unclip_from = 0
        """Stream index from which clipped runs may still be open."""
        self._refill_open: int | None = None
        """Stream index where a bridged run still open at the newest sample begins."""
        self._derived_to = 0
        self._gml_to = 0
        self.last_t_s = -math.inf
        self._acc_scale = FullScale(DEFAULT_ACC_MPS2)
        self._gyr_scale = FullScale(DEFAULT_GYR_DPS)
        # alignment
        self.mounting = MountingFinder(info.segment, fs, settings.align_window_s)
        self.rotation: np.ndarray | None = None
        self.aligned_t: float | None = None
        """Sensor time at which the mounting became known."""
        if info.mount and info.mount.strip().lower() != "auto":
            self.rotation = parse_mount(info.mount)
            self.aligned_t = -math.inf
        self.run_start = 0
        self.scanner = ContactScanner(self, settings)
        # per stride
        self.tilt = TiltAnchor()
        self._anchors: deque[Anchor] = deque(maxlen=6)
        self._last_ic: int | None = None
        self._last_ms: int | None = None
        self._last_frac = 0.0
        self.baseline = (
            baseline
            if baseline is not None
            else Baseline(
                info.segment,
                settings.baseline_strides,
                skip=min(BASELINE_SKIP, (settings.baseline_strides + 1) // 2),
            )
        )
        self.strides_reported = 0
        self._last_label: tuple[float, Label, float] | None = None
        self.drops: Counter[str] = Counter()
        """Strides not reported, by reason (gap, no_contact, stride_time ...)."""
        self.side_sign = -1.0 if info.side == "left" else 1.0
        self.defer = False
        """Hold reports for :meth:`finalize` (set when a shank partner adds ankle features)."""
        self.keep_curves = False
        """Attach the stride's angle curve to each report (``StrideReport.curves``)."""
        self.traces: dict[int, tuple[np.ndarray, np.ndarray, int, int, float, float]] = {}
        """Deferred reports' foot angle over the stride (times, deg, IC and toe-off
        positions, and the times of the previous and this stance's anchors, NaN when
        there is none), for the ankle angle once the shank's samples are in."""
        self._raw_last = (np.zeros(3), np.zeros(3))
        """The newest sample as it came (the grid placement of the next batch starts
        from it, before any rebuilding of a clipped run)."""
        self._gyr_peak_dps = 0.0
        self._acc_sum = 0.0
        self._acc_n = 0

    # ------------------------------------------------------------------ buffer
    @property
    def strides_dropped(self) -> int:
        return sum(self.drops.values())

    def drop(self, reason: str, count: bool = True) -> None:
        if count:
            self.drops[reason] += 1

    def row(self, idx: int) -> int:
        """Buffer row of stream index ``idx``."""
        return idx - self.base

    def time_at(self, idx: int) -> float:
        return float(self._t[idx - self.base])

    @property
    def in_chain(self) -> bool:
        """A contact was found and the next one would close a stride."""
        return self._last_ic is not None

    def break_chain(self) -> None:
        """A swing without contact: the next contact starts a new chain of strides."""
        self._last_ic = None

    def restart(self, start: int) -> None:
        """Stride detection starts afresh at ``start`` (after a long gap)."""
        self.run_start = start
        self.scanner.restart(start)
        self.tilt.restart()
        self._last_ic = None
        self._last_ms = None

    # ------------------------------------------------------------------ input
    def push(self, batch: SampleBatch) -> list[StrideReport]:
        if len(batch) == 0:
            return []
        t = np.asarray(batch.t_s, dtype=float)
        prev = None
        if self.n_in > 0:
            if t[0] <= self.last_t_s:
                raise ValueError(
                    f"sensor {self.info.name!r}: sample time {t[0]:.6f} s does not follow "
                    f"{self.last_t_s:.6f} s"
                )
            prev = (self.last_t_s, self._raw_last[0], self._raw_last[1])
        reg = regularise(
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
                self._finalize(self.n_in)
                self.derive_jerk()
                self._stretch_from = self.n
                self.drop("gap", self._last_ic is not None)
                self.restart(self.n)
                self.mounting.restart(self.n)
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
        w = GRID_FIT_SAMPLES
        first = max(self._stretch_from, self.base)
        lo = self.n_in
        real = np.zeros(0, dtype=np.int64)
        while lo > first:
            lo = max(first, lo - 4 * w)
            real = np.flatnonzero(~self._filled[self.row(lo) : self.row(self.n_in)])
            if len(real) >= w:
                break
        idx = real[-w:] + lo
        return self._t[idx - self.base], idx.astype(float)

    def _append(self, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, filled: np.ndarray) -> None:
        m = len(t)
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
        self._t[sl] = t
        self._acc[sl] = acc
        self._gyr[sl] = gyr
        self._filled[sl] = filled
        if filled.any() or self._refill_open is not None:
            self._refill(rows, m)
        real = ~self._filled[sl]
        a_peak = np.abs(self._acc[sl]).max(axis=1)
        g_peak = np.abs(self._gyr[sl]).max(axis=1)
        idx = np.flatnonzero(real)
        self._aclip[sl] = False
        self._clip[sl] = False
        self._aclip[rows + idx] = self._acc_scale.update(a_peak[idx])
        self._clip[rows + idx] = self._gyr_scale.update(g_peak[idx])
        if len(idx):
            last = rows + int(idx[-1])
            self._raw_last = (self._acc[last].copy(), self._gyr[last].copy())
        self.n_in += m
        ready = self._unclip_rows()
        if self._refill_open is not None:
            ready = min(ready, self._refill_open)
        self._finalize(ready)
        if not self.strides_reported:
            # plain running figures for :meth:`hints` (units mistakes show here)
            self._gyr_peak_dps = max(self._gyr_peak_dps, float(g_peak.max()))
            self._acc_sum += float(np.sqrt(np.sum(acc * acc, axis=1)).sum())
            self._acc_n += m

    def _unclip_rows(self) -> int:
        """Rebuild the clipped runs that have ended; the stream index up to which samples
        are final."""
        lo = self.row(max(self._unclip_from, self.base + 2))
        hi = self.row(self.n_in)
        max_run = max(1, round(MAX_CLIP_RUN_S * self.rate_hz))
        a = unclip(self._acc, self._aclip, lo, hi, max_run)
        g = unclip(self._gyr, self._clip, lo, hi, max_run)
        self._unclip_from = min(a, g) + self.base
        return self._unclip_from

    def _finalize(self, upto: int) -> None:
        """Samples up to ``upto`` are ready for the estimator."""
        self.n = max(self.n, min(upto, self.n_in))

    def _refill(self, rows: int, m: int) -> None:
        """Bridged runs that end among the new rows (they may have begun in an earlier
        piece of the batch): on the parabola of their neighbours
        (:func:`~companion.estimator.gaps.refill_quadratic`)."""
        f = self._filled
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
                refill_quadratic(self._gyr, i, j)
                refill_quadratic(self._acc, i, j)
            i = j + 1

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
            found = self.mounting.try_find(self)
            if found is None:
                return []
            rot, start, t_found = found
            self.rotation = rot
            self.aligned_t = t_found
            self._derived_to = self._gml_to = start
            self.run_start = max(self.run_start, start)
            self.scanner.restart(self.run_start)
            b = self.mounting.standing_bias_dps()
            if b is not None:
                self.tilt.bias_dps = rot @ b
        self.derive_gml()
        out = []
        for ic, decided, ms, impact in self.scanner.scan():
            if ic < 0:  # a swing without a contact: the chain of strides breaks
                self.drop("no_contact", self.in_chain)
                self.break_chain()
                continue
            rep = self._on_contact(ic, decided, ms, -0.5 if impact else 0.0)
            if rep is not None:
                out.append(rep)
        return out

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
        self.g_ml[a:b] = np.einsum("j,nj->n", rot[1], self._gyr[a:b])
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
        acc = self._acc
        d = np.empty((b - a, 3))
        if self._jerk_to == self._stretch_from:
            d[0] = 0.0
        else:
            assert a > 0, "the jerk fell behind the buffer"
            np.subtract(acc[a], acc[a - 1], out=d[0])
        np.subtract(acc[a + 1 : b], acc[a : b - 1], out=d[1:])
        self.jerk[a:b] = np.sqrt(np.sum(d * d, axis=1)) * self.rate_hz
        self._jerk_to = self.n

    def _derive_all(self) -> None:
        """Everything else in the segment frame, up to the newest sample (done when a
        stride is measured; each sample's values are the same whenever computed)."""
        self.derive_gml()
        rows = self._rows_since(self._derived_to)
        if rows is None:
            return
        a, b, rot = rows
        self._a_seg[a:b] = np.einsum("ij,nj->ni", rot, self._acc[a:b])
        self._g_seg[a:b] = np.einsum("ij,nj->ni", rot, self._gyr[a:b])
        self._g_seg[a:b, 1] = self.g_ml[a:b]  # the sagittal rate as detection saw it
        g = self._g_seg[a:b]
        self._g_norm[a:b] = np.sqrt(np.sum(g * g, axis=1))
        self._derived_to = self.n

    # ------------------------------------------------------------------ strides
    def _on_contact(self, ic: int, decided_at: int, ms: int, frac: float) -> StrideReport | None:
        """A contact is confirmed (at ``ic + frac`` samples): measure the stride it closes."""
        self._derive_all()
        prev_ic, prev_ms, prev_frac = self._last_ic, self._last_ms, self._last_frac
        self._last_ic, self._last_ms, self._last_frac = ic, ms, frac
        if prev_ic is None or prev_ic < self.base or prev_ic < self.run_start:
            return None
        fs = self.rate_hz
        stride_s = (ic - prev_ic) / fs
        if not (self.settings.min_stride_s <= stride_s <= self.settings.max_stride_s):
            self.drop("stride_time")
            return None
        lo = prev_ic + round(0.05 * fs)
        if prev_ms is not None and prev_ms >= self.base:
            lo = max(lo, (prev_ms + ms) // 2)
        to = feat.toe_off(self.g_ml, self.row(lo), self.row(ms))
        if to is None:
            self.drop("no_toe_off")
            return None
        to += self.base
        anchor_i = self._anchor_instant(prev_ic, to)
        decided = min(decided_at, self.n - 1)
        decided_t = self.time_at(decided)
        anchor = self._tilt_at(anchor_i, decided_t)
        if anchor is None:
            self.drop("no_tilt")
            return None
        # the angles from the landing's approach (or the cycle's start) to the closing IC
        w0 = max(prev_ic - round(APPROACH_S * fs), self.base, self.run_start)
        prev = self._anchors[-2] if len(self._anchors) > 1 else None
        if prev is not None and prev.index >= max(self.base, self.run_start):
            w0 = min(w0, prev.index)
        rows = slice(self.row(w0), self.row(ic) + 1)
        path = gyro_path(self._g_seg[rows] - anchor.bias_dps, fs)
        tilt = tilt_series(anchor.up, path, anchor.index - w0)
        t = self._t[rows]
        ev = feat.StrideIndex(
            ic=prev_ic - w0,
            to=to - w0,
            anchor=anchor.index - w0,
            ic_next=ic - w0,
            ic_frac=prev_frac,
        )
        f = feat.foot_features(tilt, self._g_seg[rows], self._g_norm[rows], ev, fs)
        f["filled_ms"] = 1000.0 * float(self._filled[rows].sum()) / fs
        f["clipped_ms"] = 1000.0 * float((self._clip[rows] | self._aclip[rows]).sum()) / fs
        f["zupt"] = 1.0 if anchor.zupt else 0.0
        # a landing lost in a gap (the approach, the contact or the stance bridged over)
        # cannot say how the foot landed or stood: those features are not reported, and
        # the stride keeps the previous stride's judgement (:meth:`finalize`)
        r0 = self.row(w0)
        land = self._filled[r0 + max(0, ev.ic - round(APPROACH_S * fs)) : r0 + ev.to + 1]
        lost = 1000.0 * float(land.sum()) / fs
        if lost > LOST_LANDING_MS:
            f["lost_ms"] = lost
            for k in feat.LANDING_FEATURES:
                f.pop(k, None)
        if self.info.segment == "shank":
            f = feat.shank_features(f, self._a_seg[rows], ev, fs)
        f["frontal_ic_deg"] *= self.side_sign
        rep = StrideReport(
            sensor=self.info.name,
            stride=self.strides_reported,
            t_ic_s=float(t[ev.ic]) + prev_frac / fs,
            t_to_s=float(t[ev.to]),
            t_end_s=float(t[ev.ic_next]) + frac / fs,
            t_decided_s=decided_t,
            label=Label.RELAXED,
            confidence=1.0,
            baseline_ready=False,
            features=f,
        )
        if self.keep_curves:
            stride = tilt[ev.ic : ev.ic_next + 1, 0]
            rep.curves[f"{self.info.segment}_sagittal_deg"] = feat.resample(stride, CURVE_POINTS)
        self.strides_reported += 1
        if self.defer:
            i0 = max(0, ev.ic - round(APPROACH_S * fs))
            t_prev = self.time_at(prev.index) if prev is not None and prev.index >= w0 else math.nan
            self.traces[rep.stride] = (
                t[i0 : ev.ic_next + 1].copy(),
                tilt[i0 : ev.ic_next + 1, 0].copy(),
                ev.ic - i0,
                ev.to - i0,
                t_prev,
                float(t[ev.anchor]),
            )
            return rep
        return self.finalize(rep)

    def _anchor_instant(self, ic: int, to: int) -> int:
        """The stance's anchor: for a foot the instant it turns least (smoothed over 20 ms)
        between contact and toe-off; for a shank (which never lies still) a fixed phase of
        contact, so that consecutive anchors sit at the same phase."""
        fs = self.rate_hz
        if self.info.segment == "shank" or to - ic < 3:
            return ic + round(SHANK_ANCHOR_PHASE * (to - ic))
        a, b = self.row(ic), self.row(to) + 1
        w = max(1, round(0.02 * fs))
        # the foot is not still before its landing's jolt has passed: a heel strike's rate
        # passes through zero at the contact (its toes-up swing turning into the toes-down
        # slap; a single sample at 50 Hz) while the foot still moves
        acc = self._a_seg[a:b]
        off_g = np.abs(np.sqrt(np.sum(acc * acc, axis=1)) - G_MPS2)
        first = max(1, round(ANCHOR_AFTER_JOLT_SHARE * (b - a)))
        start = int(np.argmax(off_g[:first])) + 1
        if b - a - start < 2:
            start = 0
        cost = centred_mean(self._g_norm[a:b], w)
        return ic + start + int(np.argmin(cost[start:]))

    def _tilt_at(self, i: int, decided_t: float) -> Anchor | None:
        """Up at anchor ``i``: the closure of the cycle from the previous anchor, or the
        accelerometer (:class:`~companion.estimator.orientation.TiltAnchor`)."""
        fs = self.rate_hz
        h = max(1, round(ANCHOR_HALF_S * fs))
        lo = max(i - h, self.base, self.run_start)
        g_up = gravity_up(self._a_seg[self.row(lo) : self.row(i + h) + 1])
        prev = self._anchors[-1] if self._anchors else None
        up = None
        zupt = False
        bias = self.tilt.bias_dps.copy()
        if prev is not None and prev.index >= max(self.base, self.run_start):
            span = (i - prev.index) / fs
            rows = slice(self.row(prev.index), self.row(i) + 1)
            # a few bridged samples (a lost 20 ms packet, rebuilt on its neighbours' parabola)
            # leave the closure good to a degree; a lost swing or a clipped gyro does not
            filled_ms = 1000.0 * float(self._filled[rows].sum()) / fs
            clean = filled_ms <= CYCLE_FILL_MS and not self._clip[rows].any()
            if clean and CYCLE_S[0] <= span <= CYCLE_S[1]:
                path = gyro_path(self._g_seg[rows] - bias, fs)
                c = cycle_closure(self._a_seg[rows], path, fs)
                if c is not None and abs(c.ratio - 1.0) <= CLOSURE_TOL:
                    up = self.tilt.clean(c, g_up, span)
                    zupt = True
        if up is None:
            recent = None
            if prev is not None and prev.zupt and (i - prev.index) / fs <= PRIOR_S:
                recent = prev.up
            up = self.tilt.fallback(g_up, recent)
        if up is None:
            return None
        anchor = Anchor(i, up, zupt, decided_t, bias)
        self._anchors.append(anchor)
        return anchor

    def finalize(self, rep: StrideReport) -> StrideReport:
        """Label a stride from its (complete) features; learn the baseline first.

        A stride whose landing was lost in a gap keeps the previous stride's judgement
        (within :data:`CARRY_S`): a lost packet does not make a held ankle relaxed.
        """
        if self.baseline.ready:
            if "landing_deg" not in rep.features and self._last_label is not None:
                t_prev, label, conf = self._last_label
                if rep.t_ic_s - t_prev <= CARRY_S:
                    return replace(rep, label=label, confidence=conf, baseline_ready=True)
            d = classify(rep.features, self.baseline, self.settings)
            self._last_label = (rep.t_ic_s, d.label, d.confidence)
            return replace(rep, label=d.label, confidence=d.confidence, baseline_ready=True)
        self.baseline.add(rep.features)
        return rep

    def sagittal_at(
        self, t_from: float, t_to: float, t_limit: float, t_query: np.ndarray
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at times ``t_query`` in ``[t_from, t_to]``.

        Integrated from this sensor's latest anchor before ``t_from`` that was known by
        ``t_limit``; ``None`` if there is none in the buffer or the stream restarted since
        (so the answer never depends on how far this sensor's stream has arrived beyond
        ``t_limit``).
        """
        anchor = None
        for a in reversed(self._anchors):
            usable = a.decided_t <= t_limit and a.index >= max(self.base, self.run_start)
            if usable and self.time_at(a.index) <= t_from:
                anchor = a
                break
        if anchor is None or t_to > t_limit:
            return None
        rows_t = self._t[: self.row(self._derived_to)]
        i0 = self.row(anchor.index)
        i1 = int(np.searchsorted(rows_t, t_to, side="left"))
        if i1 >= len(rows_t) or i1 - i0 < 2:
            return None
        path = gyro_path(self._g_seg[i0 : i1 + 1] - anchor.bias_dps, self.rate_hz)
        pitch = tilt_series(anchor.up, path, 0)[:, 0]
        return np.interp(t_query, rows_t[i0 : i1 + 1], pitch)

    def sagittal_by_cycle(
        self, t0: float, t1: float, t_limit: float, t_query: np.ndarray
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at ``t_query``, anchored by the closure of
        the cycle from ``t0`` to ``t1`` (a partner's two anchor instants: for a shank, its
        foot's mid-stances, the same phase of two strides whatever this sensor's own
        contact detection made of them). ``None`` when that cycle is not clean or not in
        the buffer, or reaches beyond ``t_limit``."""
        if self.rotation is None or max(t1, float(t_query[-1])) > t_limit:
            return None
        self._derive_all()
        rows_t = self._t[: self.row(self._derived_to)]
        first = self.row(max(self.base, self.run_start))
        i0, i1 = (int(np.searchsorted(rows_t, x)) for x in (t0, t1))
        q0 = int(np.searchsorted(rows_t, float(t_query[0]), side="right")) - 1
        q1 = int(np.searchsorted(rows_t, float(t_query[-1])))
        if min(i0, q0) < first or max(i1, q1) >= len(rows_t):
            return None
        span = (i1 - i0) / self.rate_hz
        cyc = slice(i0, i1 + 1)
        if not CYCLE_S[0] <= span <= CYCLE_S[1] or self._filled[cyc].any() or self._clip[cyc].any():
            return None
        bias = self.tilt.bias_dps
        c = cycle_closure(
            self._a_seg[cyc], gyro_path(self._g_seg[cyc] - bias, self.rate_hz), self.rate_hz
        )
        if c is None or abs(c.ratio - 1.0) > CLOSURE_TOL:
            return None
        lo, hi = min(q0, i1), max(q1, i1)
        path = gyro_path(self._g_seg[lo : hi + 1] - bias, self.rate_hz)
        pitch = tilt_series(c.up_end, path, i1 - lo)[:, 0]
        return np.interp(t_query, rows_t[lo : hi + 1], pitch)

    def finish(self) -> list[StrideReport]:
        """End of stream: nothing pending can be confirmed any more."""
        return []
