"""The contact after the learning strides, looked for only in a gate.

Once the learning strides (:mod:`~companion.estimator.learning`) have taught the runner's
mid-swing to contact time, the contact is looked for only in a **gate** around it
(:data:`GATE_S` either side, at least a quarter of that time): a late-swing bump 0.1 s
before the landing or the push-off after it cannot pass for a landing. Where the learned
timing was unsteady (a swing without one clear peak), the gate is joined with the window
around the previous contact plus the runner's stride time (strides repeat within a few
percent). The gate follows slow changes of pace (:meth:`ContactGate.adapt`), a little at
a time, so that a gate that caught a wrong event once does not walk off after it; where
impacts time the landings, never more than :data:`DRIFT_S` from what the learning strides
taught (a gate that keeps catching a late-swing braking jolt at its early edge would
otherwise walk off after it, stride by stride).

In the gate, the first impact onset at least
:data:`~companion.estimator.landing.IMPACT_SHARE` of the runner's recent landings
(confirmed 20 ms later; when impacts time this runner's landings; the falling tail of a
jolt that peaked before the gate is not one), else the sagittal-rate landing, else the
lowest rate in the gate. A foot's rate landing at 100 Hz and above is the heel's jolt before
it when there is one (a heel strike's forefoot slaps down after the heel); for an
impact-timed foot whose impact the gate missed, that jolt need only be the size of its
learning strides' impacts (a spell of harder landings raises the recent ones). The runner's
impact size is the largest jerk of each stride's whole landing window, whatever the gate
held (a gate that missed a landing once must not lower the bar for the next).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from companion.estimator.events import impact_onset, median
from companion.estimator.landing import IMPACT_SHARE, LandingProbe
from companion.estimator.learning import AGREE_S, LEARN_WINDOW_S, LandingTiming

ADAPT = 0.2
"""How fast the gate follows the mid-swing to contact time."""
STRIDE_GATE_SHARE = 0.08
"""Half width of the gate around the last contact plus the stride time, as a share of
the stride (strides vary by 2-4 %; a pace change needs a few strides)."""
HEEL_MIN_RATE_HZ = 100.0
"""A rate-timed runner's heel strike is looked for before its rate landing at this rate and
above. Below it a sample (20 ms at 50 Hz) is as long as the heel's lead over the slap, and
late-swing jolts merge with the landing's: taking them there made contacts alternate
between kinds (unsteady landing angles, a 50 Hz heel striker's faults missed)."""
DRIFT_S = 0.03
"""The gate follows the mid-swing to contact time at most this far from what the learning
strides taught, where impacts time the landings (:attr:`ContactGate.use_impacts`: what the
learning strides took for the landing is unambiguous, a foot's jolt followed by its rest, a
shank's first jolt of the landing's size once the swing has come down; pace moves it by tens
of ms): a gate that keeps catching a wrong event cannot walk off after it. A rate-timed gate
follows the contacts further."""
GATE_S = 0.06
"""Half width of the gate around the learned mid-swing to contact time (at least a
quarter of that time): pace changes move it slowly; a late-swing bump 0.1 s before the
landing and the push-off 0.15 s after it stay outside."""


class ContactGate:
    """The gate a contact is looked for in after the learning strides, its slow
    adaptation, and the runner's impact size.

    Centred on :attr:`typ` once :meth:`learned` is given what the learning strides taught;
    :meth:`window` and :meth:`adapt` are plain arithmetic on stream indices and sample
    counts; :meth:`contact` searches the stream (through the
    :class:`~companion.estimator.landing.LandingProbe`).
    """

    def __init__(self, probe: LandingProbe) -> None:
        self.probe = probe
        self.rate_hz = probe.ring.rate_hz
        self.typ = 0.0
        """The runner's mid-swing to contact time (samples) the gate is centred on."""
        self._learned_typ: float | None = None
        """... as the learning strides taught it (None until they have)."""
        self.use_impacts = True
        """False once the first strides showed landings that do not stand out of the
        swing's jerk (low sampling rates): contacts then come from the sagittal rate."""
        self.unsteady = False
        """The learned timing was unsteady: the gate also follows the stride time."""
        self.impacts: deque[float] = deque(maxlen=7)
        """The largest jerk (m/s³) of each recent stride's whole landing window, measured
        once the window is complete: the runner's own impact size, whatever the detector
        accepted (so a late-swing bump taken once cannot lower the bar for the next)."""
        self.learned_impacts: list[float] = []
        """The learning strides' impacts (m/s³): the runner's relaxed landings."""
        self._windows: deque[tuple[int, int]] = deque()
        """Landing windows (stream indices, inclusive) still to be measured."""
        self._seen = False
        """The current swing's landing window is queued."""
        self._imp_scan = 0
        """Stream index up to which the current swing's gate holds no impact onset."""

    def learned(self, timing: LandingTiming) -> None:
        """What the learning strides taught: the gate is centred on it from now on."""
        self.use_impacts = timing.use_impacts
        self.typ = timing.ms_to_ic
        self._learned_typ = timing.ms_to_ic
        self.unsteady = timing.unsteady

    def remember(self, impact_mps3: float) -> None:
        """A learning stride's landing impact (its largest jerk, m/s³)."""
        self.impacts.append(impact_mps3)
        self.learned_impacts.append(impact_mps3)

    def impact_bar(self) -> float:
        """The smallest peak jerk (m/s³) of an impact in the gate: half the sensor's floor,
        and at least :data:`~companion.estimator.landing.IMPACT_SHARE` of the runner's
        recent impacts (inside the gate only the runner's own impacts count: the floor can
        be lower, a 50 Hz shank's landing is a few hundred g/s)."""
        return self._bar(self.impacts)

    def relaxed_bar(self) -> float:
        """:meth:`impact_bar`, or lower where the learning strides' impacts (the runner's
        relaxed landings) were smaller than the recent ones: a spell of harder landings (a
        fault) must not hide the relaxed landing after it."""
        bar = self.impact_bar()
        if self.learned_impacts:
            bar = min(bar, self._bar(self.learned_impacts))
        return bar

    def _bar(self, impacts: Sequence[float]) -> float:
        """Half the sensor's impact floor, and at least
        :data:`~companion.estimator.landing.IMPACT_SHARE` of these impacts' median."""
        peak = 0.5 * self.probe.impact_min
        if impacts:
            peak = max(peak, IMPACT_SHARE * median(impacts))
        return peak

    def window(self, ms: int, last_contact: int | None, strides: Sequence[int]) -> tuple[int, int]:
        """The stream indices ``[lo, hi]`` a contact after mid-swing ``ms`` is searched in:
        around the mid-swing plus :attr:`typ`; where that time was unsteady in the
        learning strides, joined with the window around the previous contact
        ``last_contact`` plus the median of the recent ``strides`` (samples between
        contacts; at least three)."""
        fs = self.rate_hz
        first = ms + self.probe.min_ms_to_ic
        typ = round(self.typ)
        half = max(round(GATE_S * fs), round(0.25 * typ))
        lo, hi = ms + typ - half, ms + typ + half
        if self.unsteady and last_contact is not None and len(strides) >= 3:
            stride = int(np.median(strides))
            centre = last_contact + stride
            s_half = max(round(GATE_S * fs), round(STRIDE_GATE_SHARE * stride))
            if centre - s_half <= hi and centre + s_half >= lo:  # they overlap: join them
                lo, hi = min(lo, centre - s_half), max(hi, centre + s_half)
        return max(first, lo), max(first, hi)

    def adapt(self, timing: int) -> None:
        """Follow a slow change of the mid-swing to contact time (pace) to this stride's
        ``timing`` (samples), a step of at most a quarter of the gate at a time, and where
        impacts time the landings at most :data:`DRIFT_S` from the learned time: a gate
        that caught a wrong event once, or keeps catching one at its edge, must not walk
        off after it."""
        step = max(1.0, GATE_S * self.rate_hz / 4.0)
        self.typ += ADAPT * float(np.clip(timing - self.typ, -step, step))
        learned = self._learned_typ
        if self.use_impacts and learned is not None:
            drift = max(1.0, DRIFT_S * self.rate_hz)
            self.typ = float(np.clip(self.typ, learned - drift, learned + drift))

    def begin(self, ms: int) -> None:
        """A new swing, its mid-swing at stream index ``ms``."""
        self._seen = False
        self._imp_scan = ms

    def _measure_windows(self, upto: int) -> None:
        """The largest jerk of every landing window that ends before stream index ``upto``
        (a fixed point of the stride being searched: the bar does not depend on how far
        the stream has arrived)."""
        r = self.probe.ring
        while self._windows and self._windows[0][1] < min(upto, r.n):
            lo, hi = self._windows.popleft()
            lo = max(lo, r.base)
            if hi > lo:
                r.derive_jerk()
                self.impacts.append(float(r.jerk[r.row(lo) : r.row(hi) + 1].max()))

    def _heel_strike(self, lo: int, m: int, peak_dps: float, bar: float) -> tuple[int, int] | None:
        """A heel strike before a rate-timed runner's landing at stream index ``m``: toes
        pulled up make a midfoot runner land on the heel and slap the forefoot down after
        it, where the sagittal rate lands. The first jolt of the runner's size (at least
        ``bar``, m/s³) in the gate from ``lo`` to :data:`AGREE_S
        <companion.estimator.learning.AGREE_S>` before ``m`` that the foot's rest follows
        is the landing: ``(onset, decided)``; ``(-1, decided)`` if there is none; ``None``
        to wait for the samples that tell."""
        p = self.probe
        r = p.ring
        end = m - max(1, round(AGREE_S * self.rate_hz))
        a = max(lo, r.base, p.run_start)
        if end <= a:
            return -1, m
        r.derive_jerk()
        if float(r.jerk[r.row(a) : r.row(end) + 1].max()) < bar:
            return -1, end
        decided = end + p.quiet_span
        if r.n <= decided:
            return None
        imp = p.impact_near(a, end, peak_dps, quiet=True)
        if imp is None or imp[1] < bar:
            return -1, decided
        return imp[0], decided

    def contact(
        self, ms: int, peak_dps: float, last_contact: int | None, strides: Sequence[int]
    ) -> tuple[int, int, str] | None:
        """The contact after mid-swing ``ms`` (swing peak ``peak_dps``) in the gate
        (:meth:`window`), once it can be confirmed: ``(ic, decided, kind)``, stream
        indices of the contact and of the sample that confirmed it, and what timed it
        (``"impact"`` or ``"rate"``); ``None`` to wait for more samples."""
        p = self.probe
        r = p.ring
        self._measure_windows(ms)
        lo, hi = self.window(ms, last_contact, strides)
        if not self._seen:
            # the runner's impact size: the largest jerk of the whole landing window after
            # mid-swing, whatever this gate holds (a gate that missed a landing once must not
            # lower the bar for the next)
            self._windows.append((ms + p.min_ms_to_ic, ms + round(LEARN_WINDOW_S * self.rate_hz)))
            self._seen = True
        w_imp = p.w_imp
        if self.use_impacts:
            k_hi = min(r.n - w_imp, hi + 1)
            if k_hi > max(lo, self._imp_scan):
                a = max(lo, self._imp_scan, r.base, p.run_start)
                # the sample before the span is context: a jolt falling there peaked before
                # the gate (a late-swing braking jolt's tail, not this landing's onset)
                c = a - 1 if a - 1 >= max(r.base, p.run_start) else a
                r.derive_jerk()
                jerk = r.jerk[r.row(c) : r.row(k_hi + w_imp)]
                k = impact_onset(jerk, w_imp, self.impact_bar(), 0.5 * p.impact_onset, a - c)
                if k is not None:
                    self.adapt(c + k - ms)
                    return c + k, c + k + w_imp, "impact"
                self._imp_scan = k_hi
            if r.n <= hi + w_imp:
                return None
        # no impact: the sagittal rate's landing in the gate, else its lowest sample there
        found = p.landing(lo, hi + 1, peak_dps)
        look = 2 * p.rise_look
        if found is None:
            if r.n <= hi + look:
                return None
            a = min(max(lo, r.base), hi)
            m = a + int(np.argmin(r.g_ml[r.row(a) : r.row(hi) + 1]))
            decided = hi + look
        else:
            m, decided = found
        if p.segment == "foot" and self.rate_hz >= HEEL_MIN_RATE_HZ:
            # a rate-timed foot's heel strike; or an impact-timed foot's landing the gate's
            # bar missed (its relaxed heel strike after a spell of harder landings)
            bar = self.relaxed_bar() if self.use_impacts else self.impact_bar()
            heel = self._heel_strike(lo, m, peak_dps, bar)
            if heel is None:
                return None
            if heel[0] >= 0:
                self.adapt(heel[0] - ms)
                return heel[0], max(decided, heel[1]), "impact"
        self.adapt(m - ms)
        return m, (max(decided, hi + w_imp) if self.use_impacts else decided), "rate"
