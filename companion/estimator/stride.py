"""One stride measured, once its closing contact is confirmed.

A :class:`StrideMeter` reads a sensor's :class:`~companion.estimator.ring.SampleRing`
(segment-frame rates and accelerations, by stream index) and, given the contact that
opened a stride and the one that closed it, finds:

1. toe-off (:func:`~companion.estimator.features.toe_off`) and the stance's **anchor
   instant** (:func:`stance_anchor`: for a foot where it turns least, for a shank a fixed
   phase of contact);
2. the **tilt** there (:meth:`StrideMeter.tilt_at`): the zero-velocity closure of the
   cycle from the previous anchor when that cycle is clean, else the accelerometer around
   the anchor (:class:`~companion.estimator.orientation.TiltAnchor`);
3. the segment's **angles** from the landing's approach to the closing contact,
   integrated from the anchor, and the stride's **features**
   (:mod:`~companion.estimator.features`); a landing lost in a gap drops the features
   that need it (:data:`LOST_LANDING_MS`).

It keeps the last few anchors, so that a partner sensor can ask for this segment's angle
over a span (:meth:`StrideMeter.sagittal_at`, :meth:`StrideMeter.sagittal_by_cycle`: the
ankle angle is foot minus shank). Labelling the stride is not its job
(:class:`~companion.estimator.track.SensorTrack` does that with the runner's baseline).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from companion.estimator import features as feat
from companion.estimator.orientation import (
    CLOSURE_TOL,
    TiltAnchor,
    cycle_closure,
    gravity_up,
    gyro_path,
    heading_change_deg,
    tilt_series,
    up_series,
)
from companion.estimator.ring import SampleRing
from companion.estimator.windows import centred_mean
from companion.types import G_MPS2

LOST_LANDING_MS = 40.0
"""More bridged samples than this from the landing's approach to toe-off and the stride's
landing and stance features are not reported."""
CONTACT_GUARD_S = 0.06
"""Bridged samples this close before a contact: the landing may have been among them."""
APPROACH_S = 0.2
"""Angles are computed from this long before a stride's IC (the landing's approach)."""
ANCHOR_HALF_S = 0.01
"""Half width of the accelerometer window at the anchor instant (the gravity fallback)."""
ANCHOR_AFTER_JOLT_SHARE = 0.35
"""A foot's anchor is looked for after the largest jolt of this first share of contact."""
SHANK_ANCHOR_PHASE = 0.45
"""The shank never lies still: its anchor is this fraction of the way through contact."""
TOE_OFF_AFTER_S = 0.05
"""Toe-off is looked for from this long after the stride's IC (and from half-way between
the mid-swings around it)."""
CYCLE_S = (0.35, 2.0)
"""A cycle (anchor to anchor) outside this span is not integrated."""
CYCLE_FILL_MS = 30.0
"""A cycle with more bridged samples than this is not integrated (the gravity fallback)."""
PRIOR_S = 2.0
"""A cycle that cannot be integrated leans on the last stance's closure if it is at most
this old (the runner's stance changes little from one stride to the next)."""
ANCHORS_KEPT = 6
"""Recent anchors kept (for the next cycle's closure and a partner's angle queries)."""

Trace = tuple[np.ndarray, np.ndarray, int, int, float, float]
"""A stride's sagittal angle for the ankle: times (s), angle (deg), IC and toe-off
positions in them, and the times of the previous and this stance's anchors (NaN when
there is none)."""


class Contact(NamedTuple):
    """An initial contact as event detection confirmed it (stream indices)."""

    ic: int
    """The contact's sample."""
    ms: int
    """The mid-swing before it."""
    frac: float = 0.0
    """Where the contact fell, in samples from ``ic`` (-0.5: half a sample before it)."""
    guess: bool = False
    """Placed at the runner's timing, its landing lost with a packet or too faint to show:
    the stride it opens is not measured."""


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


@dataclass
class Stride:
    """One measured stride: features, and the angles over it."""

    features: dict[str, float]
    """Feature name (with its unit) to value."""
    t_s: np.ndarray
    """Sensor times (s) of the samples measured: from the landing's approach (or the
    previous anchor) to the closing IC. A view into the ring: valid until it next moves."""
    tilt: np.ndarray
    """Pitch and roll (deg; n, 2) at those samples."""
    ev: feat.StrideIndex
    """The stride's events as positions in ``t_s``."""
    t_ic_s: float
    """Sensor time of the opening IC (sub-sample)."""
    t_to_s: float
    """Sensor time of toe-off."""
    t_end_s: float
    """Sensor time of the closing IC (sub-sample)."""
    approach: int
    """Position in ``t_s`` where the landing's approach (:data:`APPROACH_S`) starts."""
    t_prev_anchor_s: float
    """Sensor time of the previous stance's anchor, NaN when it is not in ``t_s``."""

    def curve(self, points: int) -> np.ndarray:
        """The sagittal angle (deg) from IC to IC at ``points`` evenly spread points."""
        ev = self.ev
        return feat.resample(self.tilt[ev.ic : ev.ic_next + 1, 0], points)

    def trace(self) -> Trace:
        """The sagittal angle from the landing's approach to the closing IC (copies)."""
        ev, i0 = self.ev, self.approach
        return (
            self.t_s[i0 : ev.ic_next + 1].copy(),
            self.tilt[i0 : ev.ic_next + 1, 0].copy(),
            ev.ic - i0,
            ev.to - i0,
            self.t_prev_anchor_s,
            float(self.t_s[ev.anchor]),
        )


def stance_anchor(g_norm: np.ndarray, jolt_mps2: np.ndarray, segment: str, rate_hz: float) -> int:
    """The stance's anchor as a position in ``g_norm`` (|rate|, deg/s, from IC to toe-off
    inclusive; ``jolt_mps2`` the specific force's distance from gravity there): for a
    foot the instant it turns least (smoothed over 20 ms) once the landing's jolt (the
    largest in the first :data:`ANCHOR_AFTER_JOLT_SHARE` of contact) has passed; for a
    shank (which never lies still) a fixed phase of contact, so that consecutive anchors
    sit at the same phase.

    Before the jolt the foot still moves: a heel strike's rate passes through zero at the
    contact itself (its toes-up swing turning into the toes-down slap), a single sample
    at 50 Hz that a 20 ms mean does not smooth away.
    """
    contact = len(g_norm) - 1
    if segment == "shank" or contact < 3:
        return round(SHANK_ANCHOR_PHASE * contact)
    w = max(1, round(0.02 * rate_hz))
    first = max(1, round(ANCHOR_AFTER_JOLT_SHARE * len(g_norm)))
    start = int(np.argmax(jolt_mps2[:first])) + 1
    if len(g_norm) - start < 2:
        start = 0
    return start + int(np.argmin(centred_mean(g_norm, w)[start:]))


class StrideMeter:
    """Strides of one sensor measured on its ring, and the anchors they leave.

    Parameters
    ----------
    ring
        The sensor's samples (segment-frame arrays derived up to the closing IC).
    segment
        ``"foot"`` or ``"shank"``.
    side_sign
        -1 for a left segment (its roll is mirrored), else 1.
    """

    def __init__(self, ring: SampleRing, segment: str, side_sign: float = 1.0) -> None:
        self.ring = ring
        self.segment = segment
        self.side_sign = side_sign
        self.tilt = TiltAnchor()
        """Tilt offsets and the gyroscope bias learned from the cycles."""
        self.anchors: deque[Anchor] = deque(maxlen=ANCHORS_KEPT)

    def restart(self) -> None:
        """A long gap: no cycle is carried over it."""
        self.tilt.restart()

    def measure(
        self, prev: Contact, cur: Contact, decided_t: float, run_start: int = 0
    ) -> Stride | str:
        """The stride from contact ``prev`` to contact ``cur`` (both in the ring, after
        ``run_start``), confirmed at sensor time ``decided_t``; or why it cannot be
        measured (``"no_toe_off"``, ``"no_tilt"``)."""
        r = self.ring
        fs = r.rate_hz
        first = max(r.base, run_start)
        lo = prev.ic + round(TOE_OFF_AFTER_S * fs)
        if prev.ms >= r.base:
            lo = max(lo, (prev.ms + cur.ms) // 2)
        to = feat.toe_off(r.g_ml, r.row(lo), r.row(cur.ms))
        if to is None:
            return "no_toe_off"
        to += r.base
        rows = slice(r.row(prev.ic), r.row(to) + 1)
        acc = r.a_seg[rows]
        jolt = np.abs(np.sqrt(np.sum(acc * acc, axis=1)) - G_MPS2)
        at = stance_anchor(r.g_norm[rows], jolt, self.segment, fs)
        anchor = self.tilt_at(prev.ic + at, decided_t, first)
        if anchor is None:
            return "no_tilt"
        # the angles from the landing's approach (or the cycle's start) to the closing IC
        w0 = max(prev.ic - round(APPROACH_S * fs), first)
        before = self.anchors[-2] if len(self.anchors) > 1 else None
        if before is not None and before.index >= first:
            w0 = min(w0, before.index)
        rows = slice(r.row(w0), r.row(cur.ic) + 1)
        gyr = r.g_seg[rows] - anchor.bias_dps
        path = gyro_path(gyr, fs)
        ups = up_series(anchor.up, path, anchor.index - w0)
        tilt = tilt_series(anchor.up, path, anchor.index - w0)
        t = r.t_s[rows]
        ev = feat.StrideIndex(
            ic=prev.ic - w0,
            to=to - w0,
            anchor=anchor.index - w0,
            ic_next=cur.ic - w0,
            ic_frac=prev.frac,
        )
        f = feat.foot_features(tilt, r.g_seg[rows], r.g_norm[rows], ev, fs)
        f["filled_ms"] = 1000.0 * float(r.filled[rows].sum()) / fs
        f["clipped_ms"] = 1000.0 * float((r.clip[rows] | r.aclip[rows]).sum()) / fs
        f["zupt"] = 1.0 if anchor.zupt else 0.0
        # how far the runner turned over the stride (a sharp turn changes how a foot lands)
        a, b = ev.ic, ev.ic_next + 1
        f["turn_deg"] = abs(heading_change_deg(gyr[a:b], ups[a:b], fs))
        # a landing lost in a gap (the approach, the contact or the stance bridged over)
        # cannot say how the foot landed or stood: those features are not reported (the
        # track keeps the previous stride's judgement)
        i0 = max(0, ev.ic - round(APPROACH_S * fs))
        r0 = r.row(w0)
        lost = 1000.0 * float(r.filled[r0 + i0 : r0 + ev.to + 1].sum()) / fs
        # a bridged stretch just before the contact found may have hidden the real one
        # (a heel strike's impact lost with its packet: the forefoot's slap comes next)
        # (or a guess placed it: its landing was lost with its packet)
        hidden = (
            prev.guess
            or r.filled[r0 + max(0, ev.ic - round(CONTACT_GUARD_S * fs)) : r0 + ev.ic].any()
        )
        # the mid-swing that placed the contact's search was bridged over: a rebuilt peak
        # moves the search, so the contact's time (and all measured from it) is a guess
        if not hidden and prev.ms >= r.base:
            hidden = bool(r.filled[r.row(prev.ms)])
        if lost > LOST_LANDING_MS or hidden:
            f["lost_ms"] = lost
            for k in feat.LANDING_FEATURES:
                f.pop(k, None)
        if self.segment == "shank":
            f = feat.shank_features(f, r.a_seg[rows], ev, fs)
        f["frontal_ic_deg"] *= self.side_sign
        t_prev = r.time_at(before.index) if before is not None and before.index >= w0 else math.nan
        return Stride(
            features=f,
            t_s=t,
            tilt=tilt,
            ev=ev,
            t_ic_s=float(t[ev.ic]) + prev.frac / fs,
            t_to_s=float(t[ev.to]),
            t_end_s=float(t[ev.ic_next]) + cur.frac / fs,
            approach=i0,
            t_prev_anchor_s=t_prev,
        )

    def tilt_at(self, i: int, decided_t: float, first: int) -> Anchor | None:
        """Up at anchor ``i`` (stream index; samples from ``first`` on are usable): the
        closure of the cycle from the previous anchor, or the accelerometer
        (:class:`~companion.estimator.orientation.TiltAnchor`). Kept as the newest
        anchor."""
        r = self.ring
        fs = r.rate_hz
        h = max(1, round(ANCHOR_HALF_S * fs))
        lo = max(i - h, first)
        g_up = gravity_up(r.a_seg[r.row(lo) : r.row(i + h) + 1])
        prev = self.anchors[-1] if self.anchors else None
        up = None
        zupt = False
        bias = self.tilt.bias_dps.copy()
        if prev is not None and prev.index >= first:
            span = (i - prev.index) / fs
            rows = slice(r.row(prev.index), r.row(i) + 1)
            # a few bridged samples (a lost 20 ms packet, rebuilt on its neighbours' parabola)
            # leave the closure good to a degree; a lost swing or a clipped gyro does not
            filled_ms = 1000.0 * float(r.filled[rows].sum()) / fs
            clean = filled_ms <= CYCLE_FILL_MS and not r.clip[rows].any()
            if clean and CYCLE_S[0] <= span <= CYCLE_S[1]:
                path = gyro_path(r.g_seg[rows] - bias, fs)
                c = cycle_closure(r.a_seg[rows], path, fs)
                if c is not None and abs(c.ratio - 1.0) <= CLOSURE_TOL:
                    up = self.tilt.clean(c, g_up, bias)
                    zupt = True
        if up is None:
            recent = None
            if prev is not None and prev.zupt and (i - prev.index) / fs <= PRIOR_S:
                recent = prev.up
            up = self.tilt.fallback(g_up, recent)
        if up is None:
            return None
        anchor = Anchor(i, up, zupt, decided_t, bias)
        self.anchors.append(anchor)
        return anchor

    def sagittal_at(
        self, t_from: float, t_to: float, t_limit: float, t_query: np.ndarray, run_start: int = 0
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at times ``t_query`` in ``[t_from, t_to]``.

        Integrated from the latest anchor before ``t_from`` that was known by ``t_limit``;
        ``None`` if there is none in the ring since ``run_start`` (so the answer never
        depends on how far this sensor's stream has arrived beyond ``t_limit``).
        """
        r = self.ring
        first = max(r.base, run_start)
        anchor = None
        for a in reversed(self.anchors):
            usable = a.decided_t <= t_limit and a.index >= first
            if usable and r.time_at(a.index) <= t_from:
                anchor = a
                break
        if anchor is None or t_to > t_limit:
            return None
        rows_t = r.t_s[: r.row(r.derived_to)]
        i0 = r.row(anchor.index)
        i1 = int(np.searchsorted(rows_t, t_to, side="left"))
        if i1 >= len(rows_t) or i1 - i0 < 2:
            return None
        path = gyro_path(r.g_seg[i0 : i1 + 1] - anchor.bias_dps, r.rate_hz)
        pitch = tilt_series(anchor.up, path, 0)[:, 0]
        return np.interp(t_query, rows_t[i0 : i1 + 1], pitch)

    def sagittal_by_cycle(
        self, t0: float, t1: float, t_limit: float, t_query: np.ndarray, run_start: int = 0
    ) -> np.ndarray | None:
        """This segment's sagittal angle (deg) at ``t_query``, anchored by the closure of
        the cycle from ``t0`` to ``t1`` (a partner's two anchor instants: for a shank, its
        foot's mid-stances, the same phase of two strides whatever this sensor's own
        contact detection made of them). ``None`` when that cycle is not clean or not in
        the ring since ``run_start``, or reaches beyond ``t_limit``."""
        r = self.ring
        if r.rotation is None or max(t1, float(t_query[-1])) > t_limit:
            return None
        r.derive_all()
        fs = r.rate_hz
        rows_t = r.t_s[: r.row(r.derived_to)]
        first = r.row(max(r.base, run_start))
        i0, i1 = (int(np.searchsorted(rows_t, x)) for x in (t0, t1))
        q0 = int(np.searchsorted(rows_t, float(t_query[0]), side="right")) - 1
        q1 = int(np.searchsorted(rows_t, float(t_query[-1])))
        if min(i0, q0) < first or max(i1, q1) >= len(rows_t):
            return None
        span = (i1 - i0) / fs
        cyc = slice(i0, i1 + 1)
        if not CYCLE_S[0] <= span <= CYCLE_S[1] or r.filled[cyc].any() or r.clip[cyc].any():
            return None
        bias = self.tilt.bias_dps
        c = cycle_closure(r.a_seg[cyc], gyro_path(r.g_seg[cyc] - bias, fs), fs)
        if c is None or abs(c.ratio - 1.0) > CLOSURE_TOL:
            return None
        lo, hi = min(q0, i1), max(q1, i1)
        path = gyro_path(r.g_seg[lo : hi + 1] - bias, fs)
        pitch = tilt_series(c.up_end, path, i1 - lo)[:, 0]
        return np.interp(t_query, rows_t[lo : hi + 1], pitch)
