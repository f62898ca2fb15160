"""Gait events from a segment's sagittal rate and its jerk: mid-swing, initial contact,
toe-off.

Pure functions on arrays (rates in deg/s, jerk in m/s³, indices into the arrays
given); :class:`ContactScanner` runs them over a stream so that every decision uses a
fixed look-ahead after its sample and never depends on how the stream was chunked.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from companion.estimator.ring import SampleRing
from companion.estimator.settings import EstimatorSettings
from companion.estimator.windows import centred_max, window_max
from companion.types import G_MPS2


def first_swing_peak(
    g_ml: np.ndarray, half_window: int, threshold_dps: float, first: int
) -> int | None:
    """Index of the first mid-swing in ``g_ml[first:len-half_window]``.

    A mid-swing is the largest sagittal angular rate within ±``half_window``
    samples that exceeds ``threshold_dps`` (the swing peak of Mariani et al. 2013
    and Falbriard et al. 2018; the maximum of gaitmap's ``gyr_ml`` in swing).
    """
    last = len(g_ml) - half_window
    if last <= first:
        return None
    lo = max(0, first - half_window)
    seg = g_ml[lo:]
    mx = centred_max(seg, 2 * half_window + 1)
    cand = seg[first - lo : last - lo]
    hits = np.flatnonzero((cand >= mx[first - lo : last - lo]) & (cand >= threshold_dps))
    return int(hits[0]) + first if len(hits) else None


def swing_centre(g_ml: np.ndarray, peak: int, half_window: int) -> int:
    """The centre of the swing lobe around its peak ``g_ml[peak]``: the mean position of
    the samples within ``half_window`` of it that are above :data:`LOBE_SHARE` of the peak,
    weighted by how far above. The same as the peak for a peaked swing; for a flat-topped
    one, steady where the peak sample would jump around the top."""
    a, b = max(0, peak - half_window), min(len(g_ml), peak + half_window + 1)
    w = g_ml[a:b] - LOBE_SHARE * g_ml[peak]
    w = np.where(w > 0.0, w, 0.0)
    if w.sum() <= 0.0:
        return peak
    return a + round(float(np.dot(w, np.arange(b - a)) / w.sum()))


def landing_rise(
    g_ml: np.ndarray, first: int, look: int, rise_dps: float
) -> tuple[int, int] | None:
    """Index of the first foot landing in ``g_ml[first:]``: where the sagittal rate
    starts to rise steeply (by ``rise_dps`` within ``look`` samples: the ground stopping a
    foot that swung down, or a forefoot landing turning the heel down), taken at the
    sample before the steepest step of that rise. Returns it and the index of the sample
    that confirmed it (the rise's last)."""
    n = len(g_ml)
    last = n - look
    if last <= first:
        return None
    up = g_ml[first + look : last + look] - g_ml[first:last]
    hits = np.flatnonzero(up >= rise_dps)
    if len(hits) == 0:
        return None
    k = first + int(hits[0])
    # the contact: the sample before the steepest step of that rise
    return k + int(np.argmax(np.diff(g_ml[k : k + look + 1]))), k + look


def landing_kink(
    g_ml: np.ndarray, first: int, look: int, kink_dps: float
) -> tuple[int, int] | None:
    """Index of the first landing in ``g_ml[first:]``: where the sagittal rate's trend
    breaks (the ground stops or turns the segment's late-swing rotation: a foot slapped
    flat, a heel turned down, a shank pushed forward), i.e. the first sample whose rate
    differs from the straight line through the rates ``look`` samples before and after it
    by at least ``kink_dps``, taken at the sample before the steepest step of the next
    ``look`` samples. Needs ``look`` samples before ``first``; returns it and the index of
    the sample that confirmed it."""
    n = len(g_ml)
    lo = max(first, look)
    last = n - 2 * look
    if last <= lo:
        return None
    bend = np.abs(
        g_ml[lo + look : last + 2 * look] + g_ml[lo - look : last] - 2.0 * g_ml[lo : last + look]
    )
    hits = np.flatnonzero(bend[: last - lo] >= 2.0 * kink_dps)
    if len(hits) == 0:
        return None
    k = lo + int(hits[0])
    # the contact: the sample before the steepest single step of that bend
    return k + int(np.argmax(np.abs(np.diff(g_ml[k : k + look + 1])))), k + 2 * look


def impact_onset(jerk: np.ndarray, confirm: int, min_peak: float, min_onset: float) -> int | None:
    """Index of the first impact onset in ``jerk[: len - confirm]``.

    An onset is a sample whose jerk (``|d acc / dt|``) is at least ``min_onset`` and at
    least half the largest jerk of the ``confirm`` samples after it, that largest jerk
    being at least ``min_peak``: the first steep edge of the landing transient (an
    impact rings for a few cycles after contact, and a later edge may be steeper).
    Clipped (saturated) accelerations keep a steep rising edge.
    """
    n = len(jerk) - confirm
    if n <= 0:
        return None
    # max over [k, k + confirm]
    ahead = window_max(jerk, 0, confirm)
    ok = (ahead[:n] >= min_peak) & (jerk[:n] >= min_onset) & (jerk[:n] >= 0.5 * ahead[:n])
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


QUIET_AFTER_S = 0.15
"""A learning stride's impact must be followed by rest within this long (stance)."""
QUIET_SHARE = 0.2
"""... the sagittal rate under this share of the swing peak ..."""
QUIET_ACC_MPS2 = 0.35 * G_MPS2
"""... and the specific force this close to gravity, for some 20 ms."""
LOBE_SHARE = 0.8
"""Samples above this share of the swing peak make its lobe's centre (the mid-swing)."""
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
IMPACT_PROMINENCE = 2.5
"""The landing must stand out of the swing's jerk by this factor for impacts to time the
contact; at low rates, where a sample period smears it into the swing, the sagittal rate
alone does."""
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
ADAPT = 0.2
"""How fast the gate follows the mid-swing to contact time."""
STRIDE_GATE_SHARE = 0.08
"""Half width of the gate around the last contact plus the stride time, as a share of
the stride (strides vary by 2-4 %; a pace change needs a few strides)."""
GATE_S = 0.06
"""Half width of the gate around the learned mid-swing to contact time (at least a
quarter of that time): pace changes move it slowly; a late-swing bump 0.1 s before the
landing and the push-off 0.15 s after it stay outside."""
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
IMPACT_BEFORE_DESCENT_S = 0.12
"""The impact is searched from this long before the swing rate has dropped: a heel
strike with the toes well up can land while the foot still rotates toes-up."""
IMPACT_ONSET_G_PER_S = 100.0
"""Smallest jerk (g/s) at the first sample of an impact (scaled down like the peak at low
sampling rates)."""


def _mad(values: list[int]) -> float:
    """Median absolute deviation (the spread of a few timings, robust to one odd one)."""
    v = np.asarray(values, dtype=float)
    return float(np.median(np.abs(v - np.median(v))))


def _median(values: deque[float]) -> float:
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


class ContactScanner:
    """Mid-swings and initial contacts of one sensor's stream, found as samples come.

    Works on a sensor's :class:`~companion.estimator.ring.SampleRing` (its sagittal
    rate ``g_ml``, jerk and specific force, by stream index), from the stream index given
    to :meth:`restart` on. :meth:`scan` returns every contact that the samples so far
    confirm, in order, with ``(-1, -1, ms, False)`` for a swing that had none (the chain
    of strides breaks there): ``(ic, decided, ms, impact)``: stream indices of the
    contact, of the sample that confirmed it, and of the mid-swing before it, and whether
    an impact timed it (its first steep sample: the contact came after the sample before
    it, so half a sample earlier on average) or the sagittal rate did.
    """

    def __init__(self, ring: SampleRing, segment: str, settings: EstimatorSettings) -> None:
        self.ring = ring
        self.segment = segment
        self.settings = settings
        fs = ring.rate_hz
        self._w_ms = max(2, round(0.10 * fs))
        self._max_ms_to_ic = round(0.6 * fs)
        self._min_ms_to_ic = max(1, round(0.03 * fs))
        self._stance_skip = round(0.15 * fs)
        self._w_imp = max(1, round(0.02 * fs))
        self._fallback_wait = round(0.08 * fs)
        # a sagittal-rate landing is confirmed two rise look-aheads after it
        self._rise_look = max(1, int(settings.ic_lookahead_ms / 2000.0 * fs))
        peak_g_s = IMPACT_MIN_G_PER_S[segment]
        low_rate = min(1.0, IMPACT_MIN_G_PER_SAMPLE[segment] * fs / peak_g_s)
        self._impact_min = peak_g_s * low_rate * G_MPS2
        self._impact_onset = IMPACT_ONSET_G_PER_S * low_rate * G_MPS2
        self._peaks: deque[float] = deque(maxlen=5)
        self._impacts: deque[float] = deque(maxlen=7)
        """The largest jerk of each recent stride's whole landing window, measured once
        the window is complete: the runner's own impact size, whatever the detector
        accepted (so a late-swing bump taken once cannot lower the bar for the next)."""
        self._windows: deque[tuple[int, int]] = deque()
        self._strides: deque[int] = deque(maxlen=7)
        """Samples between consecutive contacts of recent strides."""
        self._timing: deque[int] = deque(maxlen=LEARN_IMPACTS)
        """Samples from mid-swing to contact of the learning strides."""
        self._typ = 0.0
        """The runner's mid-swing to contact time (samples) the gate is centred on."""
        self._learned: dict[str, list[int]] = {}
        """Mid-swing to contact (samples) of each kind of landing in the learning strides."""
        self._prominence: list[float] = []
        self.use_impacts = True
        """False once the first strides showed landings that do not stand out of the
        swing's jerk (low sampling rates): contacts then come from the sagittal rate."""
        self.run_start = 0
        """Stream index of the run's first sample (nothing before it is looked at)."""
        self.restart(0)

    def restart(self, start: int) -> None:
        """Search afresh from stream index ``start`` (alignment found, or a long gap):
        nothing before it is looked at."""
        self.run_start = start
        self._resume(start)

    def _resume(self, start: int) -> None:
        """Look for the next mid-swing from stream index ``start`` (the run goes on)."""
        self._gate_seen = False
        self._last_contact: int | None = None
        self._mode = "ms"
        self._scan = start
        self._ms = -1
        self._ms_peak = 0.0
        self._descent: int | None = None
        self._imp_scan = start
        self._min_scan = start
        self._gmin: int | None = None
        self._impact = False

    def _measure_windows(self, upto: int) -> None:
        """The largest jerk of every landing window that ends before stream index ``upto``
        (a fixed point of the stride being searched: the bar does not depend on how far
        the stream has arrived)."""
        r = self.ring
        while self._windows and self._windows[0][1] < min(upto, r.n):
            lo, hi = self._windows.popleft()
            lo = max(lo, r.base)
            if hi > lo:
                r.derive_jerk()
                self._impacts.append(float(r.jerk[r.row(lo) : r.row(hi) + 1].max()))

    def scan(self) -> list[tuple[int, int, int, bool]]:
        r = self.ring
        out: list[tuple[int, int, int, bool]] = []
        g = r.g_ml
        while True:
            if self._mode == "ic" and self._ms < r.base:
                # the samples this search needs are gone (only a stalled stream can do that)
                out.append((-1, -1, self._ms, False))
                self._resume(max(self._scan, r.base))
            if self._mode == "ms":
                need = self._scan + self._w_ms
                if need >= r.n:
                    return out
                lo = max(self.run_start, self._scan - self._w_ms, r.base)
                thr = self.settings.min_swing_peak_dps
                if self._peaks:
                    thr = max(thr, 0.4 * _median(self._peaks))
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
                self._gate_seen = False
                self._imp_scan = self._ms
                self._scan = self._ms + self._min_ms_to_ic
            else:
                found = self._seek_contact()
                if found is None:
                    return out
                if found[0] < 0:
                    # no contact after this swing: the stride chain is broken here (in
                    # order with the contacts before it)
                    self._last_contact = None
                    out.append((-1, -1, self._ms, False))
                    self._mode = "ms"
                    self._scan = self._ms + self._w_ms
                    continue
                ic, decided = found
                self._peaks.append(self._ms_peak)
                if self._last_contact is not None:
                    step = ic - self._last_contact
                    typ = np.median(self._strides) if self._strides else step
                    if 0.6 * typ <= step <= 1.6 * typ:
                        self._strides.append(step)
                self._last_contact = ic
                out.append((ic, decided, self._ms, self._impact))
                self._mode = "ms"
                self._scan = ic + self._stance_skip

    def _seek_contact(self) -> tuple[int, int] | None:
        """The initial contact after the current mid-swing, once it can be confirmed.

        The landing shows in two ways: the **impact** (the first steep edge of the jerk,
        |d acc / dt|; Giandolini et al. 2014, Mitschke et al. 2017), sharp at high
        sampling rates, smeared into the swing at low ones and faint in a soft forefoot
        landing; and the **sagittal rate**, which the ground stops or turns (the pitch-rate
        minimum of Falbriard et al. 2018, where the rate rises again steeply).

        * The first :data:`LEARN_IMPACTS` strides are searched whole, from mid-swing to
          :data:`LEARN_WINDOW_S` after it: the landing is the first sagittal-rate minimum
          after the swing has come down (below 20 % of its peak) that rises again by
          :data:`LANDING_RISE_SHARE` of the peak within the look-ahead; an impact within
          :data:`IMPACT_NEAR_S` of it times it. They teach the runner's mid-swing to
          contact time and whether impacts stand out of the swing (:attr:`use_impacts`).
        * After that the contact is looked for only in a **gate** around the learned
          mid-swing to contact time (:data:`GATE_S` either side): a late-swing bump or the
          push-off cannot pass for a landing. In the gate, the first impact onset at least
          :data:`IMPACT_SHARE` of the runner's recent landings (confirmed 20 ms later), else
          the sagittal-rate landing, else the lowest rate in the gate.

        Returns ``(ic, decided_index)``, ``(-1, -1)`` when this swing has no contact, or
        ``None`` to wait for more samples. Every test uses a fixed window after its sample,
        so the answer never depends on how the stream was chunked.
        """
        if len(self._timing) < LEARN_IMPACTS:
            return self._learn_contact()
        return self._gated_contact()

    def _landing_min(self, lo: int, hi: int) -> tuple[int, int] | None:
        """The first sagittal-rate landing (:func:`landing_kink`) in stream indices
        ``[lo, hi)``, once the samples that confirm it are in, and the index of the sample
        that did."""
        r = self.ring
        look = self._rise_look
        a = max(lo - look, self.run_start, r.base)
        b = min(hi + 2 * look, r.n)
        if b - a <= 3 * look:
            return None
        if self.segment == "foot":
            i = landing_rise(
                r.g_ml[r.row(a) : r.row(b)],
                lo - a,
                look,
                max(LANDING_RISE_MIN_DPS, LANDING_RISE_SHARE * self._ms_peak),
            )
        else:
            i = landing_kink(
                r.g_ml[r.row(a) : r.row(b)],
                lo - a,
                look,
                max(SHANK_KINK_MIN_DPS, SHANK_KINK_SHARE * self._ms_peak),
            )
        if i is None or a + i[0] >= hi:
            return None
        return a + i[0], a + i[1]

    def _resting(self, lo: int, hi: int) -> np.ndarray:
        """For each stream index in ``[lo, hi]`` (as far as the stream has come), whether
        the segment lies still for some 20 ms from there: its sagittal rate under
        :data:`QUIET_SHARE` of the swing peak and its specific force within
        :data:`QUIET_ACC_MPS2` of gravity (a late swing's rate passes through zero, but
        its specific force is 2-4 g)."""
        r = self.ring
        w = max(2, round(0.02 * r.rate_hz))
        a, b = r.row(max(lo, r.base)), r.row(min(hi, r.n - 1)) + 1
        if b - a < w:
            return np.zeros(0, dtype=bool)
        acc = r.acc[a:b]
        off = np.abs(np.sqrt(np.sum(acc * acc, axis=1)) - G_MPS2) < QUIET_ACC_MPS2
        slow = np.abs(r.g_ml[a:b]) < QUIET_SHARE * self._ms_peak
        c = np.concatenate(([0.0], np.cumsum((off & slow).astype(float))))
        return (c[w:] - c[:-w]) >= w

    def _quiet_after(self, k: int) -> bool:
        """Whether the segment comes to rest (:meth:`_resting`) within
        :data:`QUIET_AFTER_S` after stream index ``k``: a landing is followed by stance, a
        late-swing braking bump by more swing."""
        return bool(self._resting(k, k + round(QUIET_AFTER_S * self.ring.rate_hz)).any())

    def _impact_near(self, lo: int, hi: int, quiet: bool = False) -> tuple[int, float] | None:
        """The largest jerk in ``[lo, hi]`` (with ``quiet``: of the jerk peaks followed by
        rest, :meth:`_quiet_after`) and the onset of its rising edge."""
        r = self.ring
        lo, hi = max(lo, r.base, self.run_start), min(hi, r.n - 1)
        if hi <= lo:
            return None
        r.derive_jerk()
        jerk = r.jerk[r.row(lo) : r.row(hi) + 1]
        k = int(np.argmax(jerk))
        if quiet:
            peaks = np.flatnonzero(jerk >= centred_max(jerk, 2 * self._w_imp + 1))
            peaks = [int(p) for p in peaks if self._quiet_after(lo + p)]
            if not peaks:
                return None
            top = max(peaks, key=lambda p: jerk[p])
            # a heel strike lands twice: the heel, then the forefoot slapping down (often
            # the larger jolt at the instep): the landing is the first of them
            span = round(LANDING_SPAN_S * r.rate_hz)
            k = next(p for p in peaks if p >= top - span and jerk[p] >= IMPACT_SHARE * jerk[top])
        on = k
        while on > 0 and jerk[on - 1] >= 0.5 * jerk[k] and k - on < self._w_imp:
            on -= 1
        return lo + on, float(jerk[k])

    def _learn_contact(self) -> tuple[int, int] | None:
        """A learning stride: every kind of landing the window shows; the stride's contact
        is the one of the kind whose timing has been steadiest so far (a real landing
        comes at the same time after mid-swing stride after stride; a spurious one does
        not)."""
        r = self.ring
        fs = r.rate_hz
        end = self._ms + round(LEARN_WINDOW_S * fs)
        if r.n <= end + 2 * self._rise_look:
            return None
        g = r.g_ml
        seg = g[r.row(self._ms) : r.row(end) + 1]
        hit = np.flatnonzero(seg <= 0.2 * self._ms_peak)
        if len(hit) == 0:
            return (-1, -1)
        descent = self._ms + int(hit[0])
        # the landing comes before the push-off (the foot's fast toes-down turn); a heel
        # strike's foot slaps down as fast, but before the foot rests: a foot's push-off
        # is the first such turn after its rest
        after = seg[descent - self._ms :]
        push = np.flatnonzero(after < -PUSH_OFF_SHARE * self._ms_peak)
        if self.segment == "foot" and len(push):
            rest = np.flatnonzero(self._resting(descent, end))
            if len(rest):
                push = push[push > rest[0]]
        stop = min(end, descent + int(push[0])) if len(push) else end
        start = max(self._ms + self._min_ms_to_ic, descent - round(IMPACT_BEFORE_DESCENT_S * fs))
        found: dict[str, int] = {}
        # a foot rests in stance (a shank turns on over it): its impact must be followed by rest
        imp = self._impact_near(start, stop, quiet=self.segment == "foot")
        if imp is not None:
            swing = r.jerk[r.row(max(self._ms - self._w_ms, r.base)) : r.row(self._ms) + 1]
            self._prominence.append(imp[1] / max(float(np.median(swing)), 1e-6))
            if imp[1] >= self._impact_min:
                found["impact"] = imp[0]
                self._impacts.append(imp[1])
        landing = self._landing_min(descent, stop + 1)
        if landing is not None:
            found["rate"] = landing[0]
        if not found:
            return (-1, -1)
        for kind, ic in found.items():
            self._learned.setdefault(kind, []).append(ic - self._ms)
        kind = self._steadiest(found)
        ic = found[kind]
        self._impact = kind == "impact"
        self._timing.append(ic - self._ms)
        if len(self._timing) >= LEARN_IMPACTS:
            self._typ = float(np.median(self._timing))
            self.use_impacts = self._impacts_land()
            # the timing of the kind kept, from the learning strides that showed it
            kept = "impact" if self.use_impacts else "rate"
            if len(self._learned.get(kept, ())) >= 2:
                self._typ = float(np.median(self._learned[kept]))
        return ic, end + 2 * self._rise_look

    def _impacts_land(self) -> bool:
        """Whether this runner's impacts time the landing.

        Yes when impacts showed in most learning strides and either the sagittal rate
        showed no landing in most of them (a shank, whose rate turns several times in late
        swing, or a sharp heel strike), or its landings came later (a heel strike's foot
        slapping flat after the impact), or at the same time but less steadily.
        """
        imp = self._learned.get("impact", [])
        half = LEARN_IMPACTS // 2 + 1
        if len(imp) < half:
            return False
        rate = self._learned.get("rate", [])
        if self.segment != "foot" or len(rate) < half:
            return True
        lag = float(np.median(rate) - np.median(imp))
        near = AGREE_S * self.ring.rate_hz
        if lag > near:
            # the rate turned later: a heel strike's foot slapping flat after its impact
            return True
        if lag < -near:
            return False  # the jerk came after the landing: not the landing's
        # both at the same time: the steadier times it; on a tie the rate (a soft forefoot
        # landing's window holds other jerks, the heel coming down turns the rate sharply)
        return _mad(imp) + 1.0 < _mad(rate)

    def _steadiest(self, kinds: dict[str, int]) -> str:
        """Of these kinds, the one whose learned timings spread least (seen at least
        twice; impacts win a tie: they time the contact more sharply)."""
        best, best_spread = None, np.inf
        for kind in ("impact", "rate"):
            if kind not in kinds:
                continue
            v = self._learned.get(kind, [])
            spread = _mad(v) if len(v) >= 2 else np.inf
            if best is None or spread < best_spread - 1:
                best, best_spread = kind, spread
        assert best is not None
        return best

    def _gate(self) -> tuple[int, int]:
        """The stream indices a gated contact is searched in: around the mid-swing plus the
        runner's mid-swing to contact time; where that time was unsteady in the learning
        strides (a swing without one clear peak), joined with the window around the
        previous contact plus the runner's stride time (strides repeat within a few
        percent)."""
        fs = self.ring.rate_hz
        first = self._ms + self._min_ms_to_ic
        typ = round(self._typ)
        half = max(round(GATE_S * fs), round(0.25 * typ))
        lo, hi = self._ms + typ - half, self._ms + typ + half
        unsteady = _mad(list(self._timing)) > UNSTEADY_S * fs
        if unsteady and self._last_contact is not None and len(self._strides) >= 3:
            stride = int(np.median(self._strides))
            centre = self._last_contact + stride
            s_half = max(round(GATE_S * fs), round(STRIDE_GATE_SHARE * stride))
            if centre - s_half <= hi and centre + s_half >= lo:  # they overlap: join them
                lo, hi = min(lo, centre - s_half), max(hi, centre + s_half)
        return max(first, lo), max(first, hi)

    def _adapt(self, timing: int) -> None:
        """Follow a slow change of the mid-swing to contact time (pace), a step of at most
        a quarter of the gate at a time: a gate that caught a wrong event once must not walk
        off after it."""
        step = max(1.0, GATE_S * self.ring.rate_hz / 4.0)
        self._typ += ADAPT * float(np.clip(timing - self._typ, -step, step))

    def _gated_contact(self) -> tuple[int, int] | None:
        r = self.ring
        self._measure_windows(self._ms)
        lo, hi = self._gate()
        if not self._gate_seen:
            # the runner's impact size: the largest jerk of the whole landing window after
            # mid-swing, whatever this gate holds (a gate that missed a landing once must not
            # lower the bar for the next)
            fs = r.rate_hz
            self._windows.append(
                (self._ms + self._min_ms_to_ic, self._ms + round(LEARN_WINDOW_S * fs))
            )
            self._gate_seen = True
        w_imp = self._w_imp
        if self.use_impacts:
            k_hi = min(r.n - w_imp, hi + 1)
            if k_hi > max(lo, self._imp_scan):
                a = max(lo, self._imp_scan, r.base, self.run_start)
                r.derive_jerk()
                jerk = r.jerk[r.row(a) : r.row(k_hi + w_imp)]
                # inside the gate only the runner's own impacts count: the absolute floor
                # can be lower (a 50 Hz shank's landing is a few hundred g/s)
                peak = 0.5 * self._impact_min
                if self._impacts:
                    peak = max(peak, IMPACT_SHARE * _median(self._impacts))
                k = impact_onset(jerk, w_imp, peak, 0.5 * self._impact_onset)
                if k is not None:
                    self._impact = True
                    self._adapt(a + k - self._ms)
                    return a + k, a + k + w_imp
                self._imp_scan = k_hi
            if r.n <= hi + w_imp:
                return None
        # no impact: the sagittal rate's landing in the gate, else its lowest sample there
        found = self._landing_min(lo, hi + 1)
        look = 2 * self._rise_look
        if found is None:
            if r.n <= hi + look:
                return None
            a = min(max(lo, r.base), hi)
            m = a + int(np.argmin(r.g_ml[r.row(a) : r.row(hi) + 1]))
            decided = hi + look
        else:
            m, decided = found
        self._impact = False
        self._adapt(m - self._ms)
        return m, max(decided, hi + w_imp) if self.use_impacts else decided
