"""The learning strides: which kind of landing times this runner's contacts, and when.

The first :data:`LEARN_IMPACTS` strides are searched whole, from mid-swing to
:data:`LEARN_WINDOW_S` after it (up to the foot's push-off after its rest), for both
kinds of landing (:class:`~companion.estimator.landing.LandingProbe`): the **impact** (for
a foot only jolts followed by rest count, and of a heel strike's two jolts the first) and
the **sagittal-rate landing**, the first after the swing has come down (below 20 % of its
peak) where the rate rises again by
:data:`~companion.estimator.landing.LANDING_RISE_SHARE` of the peak within the
look-ahead (for a shank, where its rate bends). Each learning stride's contact is the kind
whose timing has been steadiest so far (:func:`steadiest`: a real landing comes at the
same time after mid-swing stride after stride; a spurious one does not).

Once they are in (:meth:`LandingLearner.timing_learned`), they decide whether impacts
time this runner's landings (:func:`impacts_land`: low sampling rates smear the impact
into the swing, a soft forefoot landing's is faint) and the runner's mid-swing to contact
time, which centres the gate the contacts are looked for in after that
(:mod:`~companion.estimator.gate`). The decisions are functions of plain lists of timings
(samples from mid-swing to contact), tested without a stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from companion.estimator.landing import IMPACT_SHARE, SHARP_RATE_HZ, LandingProbe

LEARN_IMPACTS = 6
"""Strides whose landing is searched in a whole window after mid-swing (they teach the
runner's mid-swing to contact time, impact size and whether impacts stand out)."""
LEARN_WINDOW_S = 0.45
"""The window after mid-swing that a learning stride's landing is searched in."""
AGREE_S = 0.015
"""An impact and a sagittal-rate landing within this of each other are the same event."""
PUSH_OFF_SHARE = 0.6
"""A learning stride's landing is looked for before the sagittal rate first falls below
minus this share of the swing peak (the foot's push-off, whose jerk can outgrow a soft
forefoot landing's)."""
UNSTEADY_S = 0.02
"""Learned mid-swing to contact times whose median absolute deviation exceeds this are
unsteady: the gate then also follows the stride time."""
IMPACT_BEFORE_DESCENT_S = 0.12
"""The impact is searched from this long before the swing rate has dropped: a heel
strike with the toes well up can land while the foot still rotates toes-up."""
GUESS_GUARD_S = 0.06
"""A learning stride without a landing whose expected contact has bridged samples this
close is a landing lost with its packet (placed at the runner's timing), not a swing
without one."""
KINDS = ("impact", "rate")
"""The kinds of landing, impacts first (they time the contact more sharply)."""


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation (the spread of a few timings, robust to one odd one)."""
    v = np.asarray(values, dtype=float)
    return float(np.median(np.abs(v - np.median(v))))


def steadiest(kinds: Iterable[str], learned: Mapping[str, Sequence[int]]) -> str:
    """Of these kinds of landing, the one whose learned timings (samples from mid-swing)
    spread least (seen at least twice; impacts win a tie, within a sample: they time the
    contact more sharply)."""
    shown = set(kinds)
    best, best_spread = None, np.inf
    for kind in KINDS:
        if kind not in shown:
            continue
        v = learned.get(kind, [])
        spread = mad(v) if len(v) >= 2 else np.inf
        if best is None or spread < best_spread - 1:
            best, best_spread = kind, spread
    assert best is not None
    return best


def impacts_land(impact: Sequence[int], rate: Sequence[int], segment: str, rate_hz: float) -> bool:
    """Whether this runner's impacts time the landing, from the learning strides'
    timings (samples from mid-swing) of each kind of landing they showed.

    Yes when impacts showed in most learning strides and either the sagittal rate
    showed no landing in most of them (a shank, whose rate turns several times in late
    swing, or a sharp heel strike), or its landings came later (a heel strike's foot
    slapping flat after the impact), or at the same time but less steadily.
    """
    half = LEARN_IMPACTS // 2 + 1
    if len(impact) < half:
        return False
    if segment != "foot" or len(rate) < half:
        return True
    lag = float(np.median(rate) - np.median(impact))
    near = AGREE_S * rate_hz
    if lag > near:
        # the rate turned later: a heel strike's foot slapping flat after its impact
        return True
    if lag < -near:
        return False  # the jerk came after the landing: not the landing's
    # both at the same time: the steadier times it; on a tie the rate (a soft forefoot
    # landing's window holds other jerks, the heel coming down turns the rate sharply)
    return mad(impact) + 1.0 < mad(rate)


class LandingTiming(NamedTuple):
    """What the learning strides taught."""

    use_impacts: bool
    """Impacts time this runner's landings (else the sagittal rate does)."""
    ms_to_ic: float
    """The runner's mid-swing to contact time (samples) of the kind kept."""
    unsteady: bool
    """The learned timings spread more than :data:`UNSTEADY_S` (a swing without one clear
    peak): the gate also follows the stride time."""


class Shown(NamedTuple):
    """What one learning stride's window showed."""

    landings: dict[str, int]
    """Stream index of each kind of landing found ("impact", "rate"); none: no contact."""
    decided: int
    """Stream index of the sample that completed the search."""
    impact_mps3: float
    """The impact's largest jerk (m/s³) when it was large enough for a landing's (it is
    then among :attr:`landings`), else 0."""


class LandingLearner:
    """The learning strides of one sensor: what each showed, and what they teach.

    :meth:`search` reads a learning stride's window from the stream (through its
    :class:`~companion.estimator.landing.LandingProbe`); :meth:`add` records the timings
    it showed and picks the stride's contact; once :attr:`done`,
    :meth:`timing_learned` is the decision. :meth:`add` and :meth:`timing_learned` take
    and give plain timings (samples from mid-swing to contact).
    """

    def __init__(self, probe: LandingProbe) -> None:
        self.probe = probe
        self.segment = probe.segment
        self.rate_hz = probe.ring.rate_hz
        self.learned: dict[str, list[int]] = {}
        """Mid-swing to contact (samples) of each kind of landing in the learning strides."""
        self.timing: deque[int] = deque(maxlen=LEARN_IMPACTS)
        """Mid-swing to contact (samples) of each learning stride's contact."""

    @property
    def done(self) -> bool:
        """All :data:`LEARN_IMPACTS` learning strides are in."""
        return len(self.timing) >= LEARN_IMPACTS

    def search(self, ms: int, peak_dps: float) -> Shown | None:
        """Every kind of landing the window after mid-swing ``ms`` (stream index, swing
        peak ``peak_dps``) shows, once the samples that confirm them are in (``None``:
        wait for more)."""
        p = self.probe
        r = p.ring
        fs = r.rate_hz
        end = ms + round(LEARN_WINDOW_S * fs)
        decided = end + 2 * p.rise_look
        if r.n <= decided:
            return None
        g = r.g_ml
        seg = g[r.row(ms) : r.row(end) + 1]
        hit = np.flatnonzero(seg <= 0.2 * peak_dps)
        if len(hit) == 0:
            return Shown({}, decided, 0.0)
        descent = ms + int(hit[0])
        # the landing comes before the push-off (the foot's fast toes-down turn); a heel
        # strike's foot slaps down as fast, but before the foot rests: a foot's push-off
        # is the first such turn after its rest
        after = seg[descent - ms :]
        push = np.flatnonzero(after < -PUSH_OFF_SHARE * peak_dps)
        if self.segment == "foot" and len(push):
            rest = np.flatnonzero(p.resting(descent, end, peak_dps))
            if len(rest) == 0:
                # the rest may come just after the window (a slow swing's landing late in it)
                late = end + p.quiet_n
                if r.n <= late:
                    return None
                decided = max(decided, late)
                rest = np.flatnonzero(p.resting(descent, late, peak_dps))
            if len(rest):
                push = push[push > rest[0]]
        stop = min(end, descent + int(push[0])) if len(push) else end
        start = max(ms + p.min_ms_to_ic, descent - round(IMPACT_BEFORE_DESCENT_S * fs))
        found: dict[str, int] = {}
        size = 0.0
        # a foot rests in stance (a shank turns on over it): its impact must be followed by rest
        if self.segment == "shank" and fs < SHARP_RATE_HZ:
            # at 50 Hz a shank's landing jolt is no larger than its toe-off's: the landing is
            # the first jolt, once the swing has come down, of a share of the window's largest
            imp = p.first_jolt(descent, stop, IMPACT_SHARE)
        else:
            imp = p.impact_near(start, stop, peak_dps, quiet=self.segment == "foot")
        if imp is not None and imp[1] >= p.impact_min:
            found["impact"] = imp[0]
            size = imp[1]
        landing = p.landing(descent, stop + 1, peak_dps)
        if landing is not None:
            found["rate"] = landing[0]
        return Shown(found, decided, size)

    def lost_landing(self, ms: int, decided: int, peak_dps: float) -> int | None:
        """Where a learning stride's contact is placed when its window showed no landing
        but the stride was there: the mid-swing ``ms`` plus the runner's timing so far, if

        * the landing was lost with a packet: bridged samples lie within
          :data:`GUESS_GUARD_S` of it (up to stream index ``decided``, where the window's
          search ended; at least two learning strides), or
        * a foot came to rest there (within :data:`GUESS_GUARD_S` before it to
          :data:`~companion.estimator.landing.QUIET_AFTER_S` after it; swing peak
          ``peak_dps``): it landed, too faintly for either kind to show (at 50 Hz a heel's
          first jolt under the sensor's floor, and a rate that turns over more than the
          one-sample look-ahead);

        else ``None`` (the swing has no contact: the chain of strides breaks). The guess is
        not learned from, and the stride it opens is not measured."""
        if not self.timing:
            return None
        r = self.probe.ring
        ic = ms + round(float(np.median(self.timing)))
        guard = round(GUESS_GUARD_S * self.rate_hz)
        lo, hi = max(ic - guard, r.base), min(ic + guard, decided, r.n - 1)
        if hi < lo:
            return None
        if len(self.timing) >= 2 and r.filled[r.row(lo) : r.row(hi) + 1].any():
            return ic
        if self.segment == "foot":
            late = min(ic + self.probe.quiet_n, decided)
            if self.probe.resting(lo, late, peak_dps).any():
                return ic
        return None

    def add(self, timings: Mapping[str, int]) -> str:
        """A learning stride showed these kinds of landing, each this many samples after
        mid-swing (at least one): record them; the kind that times this stride's contact
        (:func:`steadiest` so far)."""
        for kind, t in timings.items():
            self.learned.setdefault(kind, []).append(t)
        kind = steadiest(timings, self.learned)
        self.timing.append(timings[kind])
        return kind

    def timing_learned(self) -> LandingTiming:
        """What the learning strides so far teach: whether impacts time the landings
        (:func:`impacts_land`), and the mid-swing to contact time of the kind kept (of
        the learning strides that showed it; else of their contacts)."""
        typ = float(np.median(self.timing))
        use = impacts_land(
            self.learned.get("impact", []), self.learned.get("rate", []), self.segment, self.rate_hz
        )
        kept = "impact" if use else "rate"
        if len(self.learned.get(kept, ())) >= 2:
            typ = float(np.median(self.learned[kept]))
        unsteady = mad(list(self.timing)) > UNSTEADY_S * self.rate_hz
        return LandingTiming(use, typ, unsteady)
