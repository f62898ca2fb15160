"""One sensor's stream: samples in, measured strides out.

A :class:`SensorTrack` coordinates the parts of the estimator, each a module of its own
with arrays in and results out, on whatever new samples a batch brings:

1. :mod:`~companion.estimator.ring` — a fixed-size buffer of the last seconds (memory does
   not grow with the run): samples onto the nominal grid and lost ones bridged
   (:mod:`~companion.estimator.gaps`: a lost swing peak comes back as a bump, a long gap
   restarts stride detection), the sensor's range learned from the stream and clipped
   samples rebuilt (:mod:`~companion.estimator.clipping`), and the derived arrays the
   next parts read (sagittal rate, jerk, segment-frame rates);
2. :mod:`~companion.estimator.alignment` — the sensor-to-segment rotation (or the
   configured mounting);
3. :mod:`~companion.estimator.contacts` — mid-swing and initial contact (IC), with the
   learning strides (:mod:`~companion.estimator.learning`), the gate after them
   (:mod:`~companion.estimator.gate`) and the tests of :mod:`~companion.estimator.events`;
4. :mod:`~companion.estimator.stride` — per stride, once its closing IC is confirmed: the
   stance's anchor instant, the tilt there (:mod:`~companion.estimator.orientation`: the
   zero-velocity closure of the cycle that ends there, or the accelerometer), the 3-D
   angles around it, and the features (:mod:`~companion.estimator.features`);
5. :mod:`~companion.estimator.classify` — the stride labelled against the runner's
   relaxed baseline (learned from the first strides, or loaded).

Every decision is a function of the samples up to a fixed look-ahead after the event,
never of where batches begin or end, so any chunking of the same stream gives exactly the
same reports. ``t_decided_s`` is the time of the sample that completed the decision.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np

from companion.errors import ConfigError
from companion.estimator.alignment import MountingFinder
from companion.estimator.classify import Baseline, classify
from companion.estimator.contacts import ContactScanner
from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings
from companion.estimator.stride import Contact, StrideMeter, Trace
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
BASELINE_SKIP = 8
"""A run's first strides (at most this many, and at most half the baseline's) are not
learned from: the runner settles into the pace, and the estimator is still learning the
landings and the tilt anchor's offset."""


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
        keep_s = max(BUFFER_S, 2.0 * settings.align_window_s + 1.0)
        self.ring = SampleRing(fs, keep_s, info.name)
        """The last seconds of samples, and what is derived from them."""
        # alignment
        self.mounting = MountingFinder(info.segment, fs, settings.align_window_s)
        self.aligned_t: float | None = None
        """Sensor time at which the mounting became known."""
        if info.mount and info.mount.strip().lower() != "auto":
            self.ring.set_rotation(parse_mount(info.mount), 0)
            self.aligned_t = -math.inf
        self.run_start = 0
        """Stream index from which strides are looked for (after alignment or a long gap)."""
        self.scanner = ContactScanner(self.ring, info.segment, settings)
        # per stride
        self.side_sign = -1.0 if info.side == "left" else 1.0
        self.meter = StrideMeter(self.ring, info.segment, self.side_sign)
        self._last: Contact | None = None
        """The contact that opens the next stride (``None``: the chain is broken)."""
        self.baseline = (
            baseline
            if baseline is not None
            else Baseline(
                info.segment,
                settings.baseline_strides,
                skip=min(BASELINE_SKIP, (settings.baseline_strides + 1) // 2),
                max_turn_deg=settings.max_turn_deg,
            )
        )
        self.strides_reported = 0
        self._last_label: tuple[float, Label, float] | None = None
        self.drops: Counter[str] = Counter()
        """Strides not reported, by reason (gap, no_contact, stride_time ...)."""
        self.defer = False
        """Hold reports for :meth:`finalize` (set when a shank partner adds ankle features)."""
        self.keep_curves = False
        """Attach the stride's angle curve to each report (``StrideReport.curves``)."""
        self.traces: dict[int, Trace] = {}
        """Deferred reports' foot angle over the stride (times, deg, IC and toe-off
        positions, and the times of the previous and this stance's anchors, NaN when
        there is none), for the ankle angle once the shank's samples are in."""
        self._gyr_peak_dps = 0.0
        self._acc_sum = 0.0
        self._acc_n = 0

    # ------------------------------------------------------------------ state
    @property
    def rotation(self) -> np.ndarray | None:
        """The sensor-to-segment rotation, once known."""
        return self.ring.rotation

    @property
    def last_t_s(self) -> float:
        """Sensor time of the newest sample that came in."""
        return self.ring.last_t_s

    @property
    def strides_dropped(self) -> int:
        return sum(self.drops.values())

    def drop(self, reason: str, count: bool = True) -> None:
        if count:
            self.drops[reason] += 1

    @property
    def in_chain(self) -> bool:
        """A contact was found and the next one would close a stride."""
        return self._last is not None

    def break_chain(self) -> None:
        """A swing without contact: the next contact starts a new chain of strides."""
        self._last = None

    def restart(self, start: int) -> None:
        """Stride detection starts afresh at ``start`` (after a long gap)."""
        self.run_start = start
        self.scanner.restart(start)
        self.meter.restart()
        self._last = None

    # ------------------------------------------------------------------ input
    def push(self, batch: SampleBatch) -> list[StrideReport]:
        if len(batch) == 0:
            return []
        ring = self.ring
        pieces = ring.place(batch.t_s, batch.acc, batch.gyr, self.settings.max_gap_ms / 1000.0)
        out: list[StrideReport] = []
        for piece in pieces:
            if piece.after_gap:
                start = ring.break_run()
                self.drop("gap", self._last is not None)
                self.restart(start)
                self.mounting.restart(start)
            g_peak = ring.append(piece.t_s, piece.acc, piece.gyr, piece.filled)
            if not self.strides_reported:
                # plain running figures for :meth:`hints` (units mistakes show here)
                acc = piece.acc
                self._gyr_peak_dps = max(self._gyr_peak_dps, float(g_peak.max()))
                self._acc_sum += float(np.sqrt(np.sum(acc * acc, axis=1)).sum())
                self._acc_n += len(acc)
            out.extend(self._process())
        return out

    def hints(self) -> list[str]:
        """What is likely wrong when this stream gave no strides (else nothing)."""
        if self.strides_reported or self.ring.n < self.settings.align_window_s * self.rate_hz:
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
        if self.ring.rotation is None:
            found = self.mounting.try_find(self.ring, self.run_start)
            if found is None:
                return []
            rot, start, t_found = found
            self.ring.set_rotation(rot, start)
            self.aligned_t = t_found
            self.run_start = max(self.run_start, start)
            self.scanner.restart(self.run_start)
            b = self.mounting.standing_bias_dps()
            if b is not None:
                self.meter.tilt.bias_dps = rot @ b
        self.ring.derive_gml()
        out = []
        for ic, decided, ms, kind in self.scanner.scan():
            if ic < 0:  # a swing without a contact: the chain of strides breaks
                self.drop("no_contact", self.in_chain)
                self.break_chain()
                continue
            frac = -0.5 if kind == "impact" else 0.0
            rep = self._on_contact(Contact(ic, ms, frac, guess=kind == "guess"), decided)
            if rep is not None:
                out.append(rep)
        return out

    def _on_contact(self, cur: Contact, decided_at: int) -> StrideReport | None:
        """A contact is confirmed (by stream index ``decided_at``): measure the stride it
        closes."""
        ring = self.ring
        ring.derive_all()
        prev, self._last = self._last, cur
        if prev is None or prev.ic < ring.base or prev.ic < self.run_start:
            return None
        stride_s = (cur.ic - prev.ic) / self.rate_hz
        if not (self.settings.min_stride_s <= stride_s <= self.settings.max_stride_s):
            self.drop("stride_time")
            return None
        decided_t = ring.time_at(min(decided_at, ring.n - 1))
        stride = self.meter.measure(prev, cur, decided_t, self.run_start)
        if isinstance(stride, str):
            self.drop(stride)
            return None
        rep = StrideReport(
            sensor=self.info.name,
            stride=self.strides_reported,
            t_ic_s=stride.t_ic_s,
            t_to_s=stride.t_to_s,
            t_end_s=stride.t_end_s,
            t_decided_s=decided_t,
            label=Label.RELAXED,
            confidence=1.0,
            baseline_ready=False,
            features=stride.features,
        )
        if self.keep_curves:
            rep.curves[f"{self.info.segment}_sagittal_deg"] = stride.curve(CURVE_POINTS)
        self.strides_reported += 1
        if self.defer:
            self.traces[rep.stride] = stride.trace()
            return rep
        return self.finalize(rep)

    def finalize(self, rep: StrideReport) -> StrideReport:
        """Label a stride from its (complete) features; learn the baseline first.

        A stride that cannot be judged (its landing lost in a gap, or a sharp turn) keeps
        the previous stride's judgement (within :data:`CARRY_S`; a lost packet does not
        make a held ankle relaxed), else is called relaxed; either way ``carried``: it is
        no evidence of its own.
        """
        if self.baseline.ready:
            turning = rep.features.get("turn_deg", 0.0) > self.settings.max_turn_deg
            if "landing_deg" not in rep.features or turning:
                if self._last_label is not None:
                    t_prev, label, conf = self._last_label
                    if rep.t_ic_s - t_prev <= CARRY_S:
                        return replace(
                            rep, label=label, confidence=conf, baseline_ready=True, carried=True
                        )
                if turning:
                    return replace(
                        rep, label=Label.RELAXED, confidence=0.5, baseline_ready=True, carried=True
                    )
            d = classify(rep.features, self.baseline, self.settings)
            self._last_label = (rep.t_ic_s, d.label, d.confidence)
            return replace(rep, label=d.label, confidence=d.confidence, baseline_ready=True)
        self.baseline.add(rep.features)
        return rep

    # ------------------------------------------------------------------ for a partner
    def sagittal_at(
        self, t_from: float, t_to: float, t_limit: float, t_query: np.ndarray
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at times ``t_query`` in ``[t_from, t_to]``
        (:meth:`~companion.estimator.stride.StrideMeter.sagittal_at`)."""
        return self.meter.sagittal_at(t_from, t_to, t_limit, t_query, self.run_start)

    def sagittal_by_cycle(
        self, t0: float, t1: float, t_limit: float, t_query: np.ndarray
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at ``t_query``, anchored by the closure of
        the cycle from ``t0`` to ``t1``
        (:meth:`~companion.estimator.stride.StrideMeter.sagittal_by_cycle`)."""
        return self.meter.sagittal_by_cycle(t0, t1, t_limit, t_query, self.run_start)

    def finish(self) -> list[StrideReport]:
        """End of stream: nothing pending can be confirmed any more."""
        return []
