"""A landing's evidence in a span of one sensor's stream.

The landing shows in two ways: the **impact** (the first steep edge of the jerk,
|d acc / dt|; Giandolini et al. 2014, Mitschke et al. 2017), sharp at high sampling rates,
smeared into the swing at low ones and faint in a soft forefoot landing; and the
**sagittal rate**, which the ground stops or turns (the pitch-rate minimum of Falbriard
et al. 2018, where the rate rises again steeply). A :class:`LandingProbe` looks for both
in a span of a :class:`~companion.estimator.ring.SampleRing` (by stream index, with the
pure tests of :mod:`~companion.estimator.events`), and for the rest that follows a
landing; it also holds the spans (in samples) and impact floors a search uses at the
sensor's rate. Which kind times a runner's landings is learned
(:mod:`~companion.estimator.learning`); where the contact is looked for after that is the
gate's (:mod:`~companion.estimator.gate`).
"""

from __future__ import annotations

import numpy as np

from companion.estimator.events import landing_kink, landing_rise
from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings
from companion.estimator.windows import centred_max
from companion.types import G_MPS2

QUIET_AFTER_S = 0.15
"""A learning stride's impact must be followed by rest within this long (stance)."""
QUIET_SHARE = 0.2
"""... the sagittal rate under this share of the swing peak ..."""
QUIET_ACC_MPS2 = 0.35 * G_MPS2
"""... and the specific force this close to gravity, for some 20 ms."""
IMPACT_MIN_G_PER_S = {"foot": 400.0, "shank": 300.0}
"""Smallest peak jerk (g/s) taken as a landing impact (also at least
:data:`IMPACT_SHARE` of the runner's recent impacts). A foot's swing stays at 100-200 g/s
and its heel strike gives 1000 g/s and more at 200 Hz; the shank's impact is smaller
(400-800 g/s at 200 Hz) and its swing reaches 250 g/s."""
IMPACT_MIN_G_PER_SAMPLE = {"foot": 3.0, "shank": 3.0}
"""At low sampling rates the impact is smeared over a sample period: the smallest peak
jerk is then this change of acceleration (g) per sample when that is below
``IMPACT_MIN_G_PER_S``."""
IMPACT_SHARE = 0.4
"""An impact is at least this share of the median of the runner's recent impacts: a
late-swing braking bump (the hamstrings stopping the shank, 0.1 s before landing) is
steep too, but a fraction of the landing's."""
LANDING_SPAN_S = 0.08
"""A heel strike's forefoot comes down this long after its heel at most; a late-swing
braking bump comes 0.1 s before the landing or earlier."""
LANDING_RISE_SHARE = 0.25
"""At a landing the ground stops the segment's late-swing rotation: within the look-ahead
the sagittal rate rises again by at least this share of the swing peak (a wiggle of a slow
late swing does not)."""
LANDING_RISE_MIN_DPS = 80.0
"""... and by at least this much."""
SHANK_KINK_SHARE = 0.25
"""A shank's landing bends its sagittal rate by at least this share of the swing peak (the
ground stops the foot, the knee goes on: the shank's rate changes its course)."""
SHANK_KINK_MIN_DPS = 40.0
SHARP_RATE_HZ = 100.0
"""At this sampling rate and above a landing's jolt stands out of the swing's: below it, a
sample (20 ms at 50 Hz) smears it into the late swing's and the push-off's."""
IMPACT_ONSET_G_PER_S = 100.0
"""Smallest jerk (g/s) at the first sample of an impact (scaled down like the peak at low
sampling rates)."""


class LandingProbe:
    """The landing's evidence in spans of one sensor's stream (foot or shank).

    Reads the ring's sagittal rate ``g_ml`` (deg/s), jerk (m/s³) and specific force by
    stream index, never before :attr:`run_start`. The thresholds that scale with the
    swing are given its peak (``peak_dps``, the sagittal rate at mid-swing).
    """

    def __init__(self, ring: SampleRing, segment: str, settings: EstimatorSettings) -> None:
        self.ring = ring
        self.segment = segment
        fs = ring.rate_hz
        self.w_ms = max(2, round(0.10 * fs))
        """Half window (samples) of a mid-swing: the largest sagittal rate within it."""
        self.min_ms_to_ic = max(1, round(0.03 * fs))
        """Fewest samples from mid-swing to contact."""
        self.w_imp = max(1, round(0.02 * fs))
        """Samples an impact onset is confirmed by (and its rising edge's longest)."""
        # a sagittal-rate landing is confirmed two rise look-aheads after it
        self.rise_look = max(1, int(settings.ic_lookahead_ms / 2000.0 * fs))
        """Look-ahead (samples) of the sagittal-rate landing tests."""
        peak_g_s = IMPACT_MIN_G_PER_S[segment]
        low_rate = min(1.0, IMPACT_MIN_G_PER_SAMPLE[segment] * fs / peak_g_s)
        self.impact_min = peak_g_s * low_rate * G_MPS2
        """Smallest peak jerk (m/s³) of a landing impact at this rate."""
        self.impact_onset = IMPACT_ONSET_G_PER_S * low_rate * G_MPS2
        """Smallest jerk (m/s³) at an impact's first sample at this rate."""
        self.rest_w = max(2, round(0.02 * fs))
        """Samples the segment must lie still for to rest (:meth:`resting`)."""
        self.quiet_n = round(QUIET_AFTER_S * fs)
        """Samples within which a landing's rest comes (:data:`QUIET_AFTER_S`)."""
        self.quiet_span = self.quiet_n + self.rest_w
        """Samples after a stream index that :meth:`quiet_after` reads."""
        self.run_start = 0
        """Stream index of the run's first sample (nothing before it is looked at)."""

    def landing(self, lo: int, hi: int, peak_dps: float) -> tuple[int, int] | None:
        """The first sagittal-rate landing (a foot's :func:`~.events.landing_rise`, a
        shank's :func:`~.events.landing_kink`) in stream indices ``[lo, hi)``, once the
        samples that confirm it are in, and the index of the sample that did."""
        r = self.ring
        look = self.rise_look
        a = max(lo - look, self.run_start, r.base)
        b = min(hi + 2 * look, r.n)
        if b - a <= 3 * look:
            return None
        if self.segment == "foot":
            i = landing_rise(
                r.g_ml[r.row(a) : r.row(b)],
                lo - a,
                look,
                max(LANDING_RISE_MIN_DPS, LANDING_RISE_SHARE * peak_dps),
            )
        else:
            i = landing_kink(
                r.g_ml[r.row(a) : r.row(b)],
                lo - a,
                look,
                max(SHANK_KINK_MIN_DPS, SHANK_KINK_SHARE * peak_dps),
            )
        if i is None or a + i[0] >= hi:
            return None
        return a + i[0], a + i[1]

    def resting(self, lo: int, hi: int, peak_dps: float) -> np.ndarray:
        """For each stream index in ``[lo, hi]`` (as far as the stream has come), whether
        the segment lies still for some 20 ms from there: its sagittal rate under
        :data:`QUIET_SHARE` of the swing peak and its specific force within
        :data:`QUIET_ACC_MPS2` of gravity (a late swing's rate passes through zero, but
        its specific force is 2-4 g)."""
        r = self.ring
        w = self.rest_w
        a, b = r.row(max(lo, r.base)), r.row(min(hi, r.n - 1)) + 1
        if b - a < w:
            return np.zeros(0, dtype=bool)
        acc = r.acc[a:b]
        off = np.abs(np.sqrt(np.sum(acc * acc, axis=1)) - G_MPS2) < QUIET_ACC_MPS2
        slow = np.abs(r.g_ml[a:b]) < QUIET_SHARE * peak_dps
        c = np.concatenate(([0.0], np.cumsum((off & slow).astype(float))))
        return (c[w:] - c[:-w]) >= w

    def quiet_after(self, k: int, peak_dps: float) -> bool:
        """Whether the segment comes to rest (:meth:`resting`) within
        :data:`QUIET_AFTER_S` after stream index ``k``: a landing is followed by stance, a
        late-swing braking bump by more swing."""
        return bool(self.resting(k, k + self.quiet_n, peak_dps).any())

    def _jerk_in(self, lo: int, hi: int) -> tuple[int, np.ndarray] | None:
        """The jerk (m/s³) in stream indices ``[lo, hi]`` (clipped to what the ring holds
        from :attr:`run_start` on) and the index of its first sample."""
        r = self.ring
        lo, hi = max(lo, r.base, self.run_start), min(hi, r.n - 1)
        if hi <= lo:
            return None
        r.derive_jerk()
        return lo, r.jerk[r.row(lo) : r.row(hi) + 1]

    def _peaks(self, jerk: np.ndarray) -> np.ndarray:
        """Indices of the jerk's local peaks (the largest within an impact's rising edge)."""
        return np.flatnonzero(jerk >= centred_max(jerk, 2 * self.w_imp + 1))

    def _onset(self, jerk: np.ndarray, k: int) -> int:
        """Where the rising edge of the jolt peaking at ``k`` begins (at most an impact's
        edge before it, while at least half the peak)."""
        on = k
        while on > 0 and jerk[on - 1] >= 0.5 * jerk[k] and k - on < self.w_imp:
            on -= 1
        return on

    def first_jolt(self, lo: int, hi: int, share: float) -> tuple[int, float] | None:
        """The first jerk peak in ``[lo, hi]`` of at least ``share`` of the largest there, and
        the onset of its rising edge, with the largest jerk (m/s³): the size of the jolts
        the window's landing is among."""
        span = self._jerk_in(lo, hi)
        if span is None:
            return None
        lo, jerk = span
        top = float(jerk.max())
        k = int(next(p for p in self._peaks(jerk) if jerk[p] >= share * top))
        return lo + self._onset(jerk, k), top

    def impact_near(
        self, lo: int, hi: int, peak_dps: float, quiet: bool = False
    ) -> tuple[int, float] | None:
        """The largest jerk in ``[lo, hi]`` (with ``quiet``: of the jerk peaks followed by
        rest, :meth:`quiet_after`) and the onset of its rising edge."""
        span = self._jerk_in(lo, hi)
        if span is None:
            return None
        lo, jerk = span
        k = int(np.argmax(jerk))
        if quiet:
            peaks = [int(p) for p in self._peaks(jerk) if self.quiet_after(lo + p, peak_dps)]
            if not peaks:
                return None
            top = max(peaks, key=lambda p: jerk[p])
            # a heel strike lands twice: the heel, then the forefoot slapping down (often
            # the larger jolt at the instep): the landing is the first of them
            span_n = round(LANDING_SPAN_S * self.ring.rate_hz)
            k = next(p for p in peaks if p >= top - span_n and jerk[p] >= IMPACT_SHARE * jerk[top])
        return lo + self._onset(jerk, k), float(jerk[k])
