"""Mid-swings and initial contacts of one sensor's stream, found as samples come.

A :class:`ContactScanner` is the state machine over a sensor's
:class:`~companion.estimator.ring.SampleRing`: it looks for the next mid-swing
(:func:`~companion.estimator.events.first_swing_peak`, its time the centre of the peak's
lobe), then for the contact after it, then skips into the stance and looks for the next
mid-swing. The contact comes from the learning strides' search
(:class:`~companion.estimator.learning.LandingLearner`) for the first strides, then from
the gate's (:class:`~companion.estimator.gate.ContactGate`); both read the stream through
one :class:`~companion.estimator.landing.LandingProbe`. The scanner keeps the chain of
strides (a swing without a contact breaks it) and the recent stride times (the gate
follows them where the learned timing was unsteady).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from companion.estimator.events import first_swing_peak, median, swing_centre
from companion.estimator.gate import ContactGate
from companion.estimator.landing import LandingProbe
from companion.estimator.learning import LandingLearner
from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings

NO_CONTACT = (-1, -1, "")
"""What a contact search gives for a swing without a contact."""


class ContactScanner:
    """Mid-swings and initial contacts of one sensor's stream, found as samples come.

    Works on a sensor's :class:`~companion.estimator.ring.SampleRing` (its sagittal
    rate ``g_ml``, jerk and specific force, by stream index), from the stream index given
    to :meth:`restart` on. :meth:`scan` returns every contact that the samples so far
    confirm, in order, with ``(-1, -1, ms, "")`` for a swing that had none (the chain
    of strides breaks there): ``(ic, decided, ms, kind)``: stream indices of the
    contact, of the sample that confirmed it, and of the mid-swing before it, and what
    timed it: ``"impact"`` (its first steep sample: the contact came after the sample
    before it, so half a sample earlier on average), ``"rate"`` (the sagittal rate), or
    ``"guess"`` (a learning stride's landing lost with its packet, or too faint to show
    where the foot came to rest, placed at the runner's timing: the stride it opens is not
    measured).
    """

    def __init__(self, ring: SampleRing, segment: str, settings: EstimatorSettings) -> None:
        self.ring = ring
        self.segment = segment
        self.settings = settings
        self.probe = LandingProbe(ring, segment, settings)
        """The landing's evidence in a span of the stream (shared by the searches)."""
        self.learner = LandingLearner(self.probe)
        """The learning strides: which kind of landing times the contacts, and when."""
        self.gate = ContactGate(self.probe)
        """The contact search after the learning strides."""
        self._w_ms = self.probe.w_ms
        self._stance_skip = round(0.15 * ring.rate_hz)
        self._peaks: deque[float] = deque(maxlen=5)
        """Swing peaks (deg/s) of recent strides."""
        self._strides: deque[int] = deque(maxlen=7)
        """Samples between consecutive contacts of recent strides."""
        self.restart(0)

    @property
    def use_impacts(self) -> bool:
        """False once the first strides showed landings that do not stand out of the
        swing's jerk (low sampling rates): contacts then come from the sagittal rate."""
        return self.gate.use_impacts

    @property
    def run_start(self) -> int:
        """Stream index of the run's first sample (nothing before it is looked at)."""
        return self.probe.run_start

    def restart(self, start: int) -> None:
        """Search afresh from stream index ``start`` (alignment found, or a long gap):
        nothing before it is looked at."""
        self.probe.run_start = start
        self._resume(start)

    def _resume(self, start: int) -> None:
        """Look for the next mid-swing from stream index ``start`` (the run goes on)."""
        self._last_contact: int | None = None
        self._mode = "ms"
        self._scan = start
        self._ms = -1
        self._ms_peak = 0.0

    def scan(self) -> list[tuple[int, int, int, str]]:
        r = self.ring
        out: list[tuple[int, int, int, str]] = []
        g = r.g_ml
        while True:
            if self._mode == "ic" and self._ms < r.base:
                # the samples this search needs are gone (only a stalled stream can do that)
                out.append((-1, -1, self._ms, ""))
                self._resume(max(self._scan, r.base))
            if self._mode == "ms":
                need = self._scan + self._w_ms
                if need >= r.n:
                    return out
                lo = max(self.run_start, self._scan - self._w_ms, r.base)
                thr = self.settings.min_swing_peak_dps
                if self._peaks:
                    thr = max(thr, 0.4 * median(self._peaks))
                last = r.n - self._w_ms  # candidates are confirmed up to here
                if float(g[r.row(self._scan) : r.row(last)].max()) < thr:
                    self._scan = last  # nothing high enough yet (most of every stride)
                    return out
                j = first_swing_peak(g[r.row(lo) : r.row(r.n)], self._w_ms, thr, self._scan - lo)
                if j is None:
                    self._scan = max(self._scan, r.n - self._w_ms)
                    return out
                peak = j + lo
                self._ms_peak = float(g[r.row(peak)])
                self._ms = swing_centre(g, r.row(peak), self._w_ms) + r.base
                self._mode = "ic"
                self.gate.begin(self._ms)
                self._scan = self._ms + self.probe.min_ms_to_ic
            else:
                found = self._seek_contact()
                if found is None:
                    return out
                if found[0] < 0:
                    # no contact after this swing: the stride chain is broken here (in
                    # order with the contacts before it)
                    self._last_contact = None
                    out.append((-1, -1, self._ms, ""))
                    self._mode = "ms"
                    self._scan = self._ms + self._w_ms
                    continue
                ic, decided, kind = found
                self._peaks.append(self._ms_peak)
                if self._last_contact is not None:
                    step = ic - self._last_contact
                    typ = np.median(self._strides) if self._strides else step
                    if 0.6 * typ <= step <= 1.6 * typ:
                        self._strides.append(step)
                self._last_contact = ic
                out.append((ic, decided, self._ms, kind))
                self._mode = "ms"
                self._scan = ic + self._stance_skip

    def _seek_contact(self) -> tuple[int, int, str] | None:
        """The initial contact after the current mid-swing, once it can be confirmed.

        The landing shows as an impact and in the sagittal rate
        (:mod:`~companion.estimator.landing`).

        * The first :data:`~companion.estimator.learning.LEARN_IMPACTS` strides are
          searched whole, from mid-swing to
          :data:`~companion.estimator.learning.LEARN_WINDOW_S` after it, for both kinds
          of landing; the stride's contact is the kind whose timing has been steadiest so
          far (:meth:`_learn_contact`). They teach the runner's mid-swing to contact time
          and whether impacts stand out of the swing (:attr:`use_impacts`).
        * After that the contact is looked for only in a **gate** around the learned
          mid-swing to contact time (:data:`~companion.estimator.gate.GATE_S` either
          side): a late-swing bump or the push-off cannot pass for a landing. In the gate,
          the first impact onset at least
          :data:`~companion.estimator.landing.IMPACT_SHARE` of the runner's recent
          landings (confirmed 20 ms later), else the sagittal-rate landing, else the
          lowest rate in the gate (:meth:`ContactGate.contact
          <companion.estimator.gate.ContactGate.contact>`).

        Returns ``(ic, decided_index, kind)`` (what timed it, as :meth:`scan` gives it),
        :data:`NO_CONTACT` when this swing has no contact, or ``None`` to wait for more
        samples. Every test uses a fixed window after its sample, so the answer never
        depends on how the stream was chunked.
        """
        if not self.learner.done:
            return self._learn_contact()
        return self.gate.contact(self._ms, self._ms_peak, self._last_contact, self._strides)

    def _learn_contact(self) -> tuple[int, int, str] | None:
        """A learning stride: every kind of landing its window shows is recorded; its
        contact is the one of the kind whose timing has been steadiest so far. The last
        learning stride hands what they taught to the gate. A window without a landing
        whose landing was lost with a packet, or where a foot came to rest all the same,
        gives a guess at the runner's timing
        (:meth:`LandingLearner.lost_landing
        <companion.estimator.learning.LandingLearner.lost_landing>`)."""
        ms = self._ms
        shown = self.learner.search(ms, self._ms_peak)
        if shown is None:
            return None
        if "impact" in shown.landings:
            self.gate.remember(shown.impact_mps3)
        if not shown.landings:
            guess = self.learner.lost_landing(ms, shown.decided, self._ms_peak)
            return NO_CONTACT if guess is None else (guess, shown.decided, "guess")
        kind = self.learner.add({k: ic - ms for k, ic in shown.landings.items()})
        if self.learner.done:
            self.gate.learned(self.learner.timing_learned())
        return shown.landings[kind], shown.decided, kind
