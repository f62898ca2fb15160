"""Gait events from a segment's sagittal rate and its jerk: mid-swing, initial contact,
toe-off.

Pure functions on arrays (rates in deg/s, jerk in m/s³, indices into the arrays
given); :class:`ContactScanner` runs them over a stream so that every decision uses a
fixed look-ahead after its sample and never depends on how the stream was chunked.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from companion.estimator.settings import EstimatorSettings
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
    mx = maximum_filter1d(seg, 2 * half_window + 1, mode="nearest")
    cand = seg[first - lo : last - lo]
    hits = np.flatnonzero((cand >= mx[first - lo : last - lo]) & (cand >= threshold_dps))
    return int(hits[0]) + first if len(hits) else None


def first_contact(
    g_ml: np.ndarray, half_window: int, below_dps: float, first: int, rise_dps: float = 0.0
) -> int | None:
    """Index of the initial contact in ``g_ml[first:len-half_window]``.

    Falbriard et al. (2018, Front. Physiol. 9:610) found the minimum of the foot's
    pitch angular velocity after mid-swing the most precise initial-contact
    feature in running (2 ms precision, all strike styles): the foot (and shank)
    stops rotating forward and is slapped back when it meets the ground. Online,
    the first local minimum that is the smallest value within ±``half_window``
    samples and lies below ``below_dps`` is taken; the half window is the fixed
    look-ahead that confirms it, and the rate must have risen again by at least
    ``rise_dps`` at its end (a real landing, not a wiggle on a slow late swing).
    """
    last = len(g_ml) - half_window
    if last <= first:
        return None
    lo = max(0, first - half_window)
    seg = g_ml[lo:]
    mn = minimum_filter1d(seg, 2 * half_window + 1, mode="nearest")
    cand = seg[first - lo : last - lo]
    after = seg[first - lo + half_window : last - lo + half_window]
    hits = np.flatnonzero(
        (cand <= mn[first - lo : last - lo]) & (cand <= below_dps) & (after - cand >= rise_dps)
    )
    return int(hits[0]) + first if len(hits) else None


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
    ahead = maximum_filter1d(jerk, confirm + 1, origin=-((confirm + 1) // 2), mode="nearest")
    ok = (ahead[:n] >= min_peak) & (jerk[:n] >= min_onset) & (jerk[:n] >= 0.5 * ahead[:n])
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


IMPACT_MIN_G_PER_S = {"foot": 400.0, "shank": 300.0}
"""Smallest peak jerk (g/s) taken as a landing impact (also at least
:data:`IMPACT_SHARE` of the runner's recent impacts). A foot's swing stays at 100-200 g/s
and its heel strike gives 1000 g/s and more at 200 Hz; the shank's impact is smaller
(400-800 g/s at 200 Hz) and its swing reaches 250 g/s."""
IMPACT_MIN_G_PER_SAMPLE = {"foot": 3.0, "shank": 6.0}
"""At low sampling rates the impact is smeared over a sample period: the smallest peak
jerk is then this change of acceleration (g) per sample when that is below
``IMPACT_MIN_G_PER_S``."""
IMPACT_SHARE = 0.4
"""An impact is at least this share of the median of the runner's recent impacts: a
late-swing braking bump (the hamstrings stopping the shank, 0.1 s before landing) is
steep too, but a fraction of the landing's."""
IMPACT_PROMINENCE = 2.5
"""The landing must stand out of the swing's jerk by this factor for impacts to time the
contact; at low rates, where a sample period smears it into the swing, the sagittal rate
alone does."""
LEARN_IMPACTS = 3
"""Strides whose landing window is searched whole for its largest impact (the runner's
own impact size is learned from them; after that the first edge above a share of it)."""
IMPACT_BEFORE_DESCENT_S = 0.12
"""The impact is searched from this long before the swing rate has dropped: a heel
strike with the toes well up can land while the foot still rotates toes-up."""
IMPACT_ONSET_G_PER_S = 100.0
"""Smallest jerk (g/s) at the first sample of an impact (scaled down like the peak at low
sampling rates)."""


def _median(values: deque[float]) -> float:
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


class ContactScanner:
    """Mid-swings and initial contacts of one sensor's stream, found as samples come.

    Works on the :class:`~companion.estimator.track.SensorTrack`'s buffer (its sagittal
    rate ``g_ml`` and jerk, by stream index). :meth:`scan` returns every contact that the
    samples so far confirm: ``(ic, decided, ms, impact)``: stream indices of the contact,
    of the sample that confirmed it, and of the mid-swing before it, and whether an impact
    timed it (its first steep sample: the contact came after the sample before it, so
    half a sample earlier on average) or the sagittal rate did.
    """

    def __init__(self, track: Any, settings: EstimatorSettings) -> None:
        self.t = track
        self.settings = settings
        fs = track.rate_hz
        seg = track.info.segment
        self._w_ms = max(2, round(0.10 * fs))
        self._l_ic = max(2, round(settings.ic_lookahead_ms / 1000.0 * fs))
        self._max_ms_to_ic = round(0.6 * fs)
        self._min_ms_to_ic = max(1, round(0.03 * fs))
        self._stance_skip = round(0.15 * fs)
        self._w_imp = max(1, round(0.02 * fs))
        self._fallback_wait = round(0.08 * fs)
        peak_g_s = IMPACT_MIN_G_PER_S[seg]
        low_rate = min(1.0, IMPACT_MIN_G_PER_SAMPLE[seg] * fs / peak_g_s)
        self._impact_min = peak_g_s * low_rate * G_MPS2
        self._impact_onset = IMPACT_ONSET_G_PER_S * low_rate * G_MPS2
        self._peaks: deque[float] = deque(maxlen=5)
        self._impacts: deque[float] = deque(maxlen=7)
        """The largest jerk of each recent stride's whole landing window, measured once
        the window is complete: the runner's own impact size, whatever the detector
        accepted (so a late-swing bump taken once cannot lower the bar for the next)."""
        self._windows: deque[tuple[int, int]] = deque()
        self._prominence: list[float] = []
        self.use_impacts = True
        """False once the first strides showed landings that do not stand out of the
        swing's jerk (low sampling rates): contacts then come from the sagittal rate."""
        self.restart(0)

    def restart(self, start: int) -> None:
        """Search afresh from stream index ``start`` (alignment found, or a long gap)."""
        self._mode = "ms"
        self._scan = start
        self._ms = -1
        self._ms_peak = 0.0
        self._descent: int | None = None
        self._imp_scan = start
        self._min_scan = start
        self._gmin: int | None = None
        self._impact = False

    @property
    def learning(self) -> bool:
        return self.use_impacts and len(self._prominence) < LEARN_IMPACTS

    def _measure_windows(self) -> None:
        """The largest jerk of every landing window that is complete by now."""
        t = self.t
        while self._windows and self._windows[0][1] < t.n:
            lo, hi = self._windows.popleft()
            lo = max(lo, t.base)
            if hi > lo:
                t.derive_jerk()
                self._impacts.append(float(t.jerk[t.row(lo) : t.row(hi) + 1].max()))

    def scan(self) -> list[tuple[int, int, int, bool]]:
        t = self.t
        self._measure_windows()
        out: list[tuple[int, int, int, bool]] = []
        g = t.g_ml
        while True:
            if self._mode == "ic" and self._ms < t.base:
                # the samples this search needs are gone (only a stalled stream can do that)
                t.drop("no_contact", t.in_chain)
                t.break_chain()
                self.restart(max(self._scan, t.base))
            if self._mode == "ms":
                need = self._scan + self._w_ms
                if need >= t.n:
                    return out
                lo = max(t.run_start, self._scan - self._w_ms, t.base)
                thr = self.settings.min_swing_peak_dps
                if self._peaks:
                    thr = max(thr, 0.4 * _median(self._peaks))
                last = t.n - self._w_ms  # candidates are confirmed up to here
                if float(g[t.row(self._scan) : t.row(last)].max()) < thr:
                    self._scan = last  # nothing high enough yet (most of every stride)
                    return out
                j = first_swing_peak(g[t.row(lo) : t.row(t.n)], self._w_ms, thr, self._scan - lo)
                if j is None:
                    self._scan = max(self._scan, t.n - self._w_ms)
                    return out
                self._ms = j + lo
                self._ms_peak = float(g[t.row(self._ms)])
                self._mode = "ic"
                self._scan = self._ms + self._min_ms_to_ic
            else:
                found = self._seek_contact()
                if found is None:
                    return out
                if found[0] < 0:
                    # no contact after this swing: the stride chain is broken here
                    t.drop("no_contact", t.in_chain)
                    t.break_chain()
                    self._mode = "ms"
                    self._scan = self._ms + self._w_ms
                    continue
                ic, decided = found
                self._peaks.append(self._ms_peak)
                out.append((ic, decided, self._ms, self._impact))
                self._mode = "ms"
                self._scan = ic + self._stance_skip

    def _seek_contact(self) -> tuple[int, int] | None:
        """The initial contact after the current mid-swing, once it can be confirmed.

        1. *descent*: the first sample after mid-swing whose pitch rate is below 20 %
           of the swing peak (the foot has stopped swinging forward);
        2. the **impact onset**, searched from ``IMPACT_BEFORE_DESCENT_S`` before the
           descent: the first sample whose jerk is at least half the largest jerk of
           the next 20 ms, that largest jerk being at least ``IMPACT_MIN_G_PER_S``
           (less at low rates) and :data:`IMPACT_SHARE` of the runner's recent impacts
           (the foot's impact transient; Giandolini et al. 2014, Mitschke et al. 2017),
           confirmed 20 ms later. For the first :data:`LEARN_IMPACTS` strides the
           whole landing window is searched for its largest impact instead;
        3. else (or when the landing does not stand out of the swing's jerk, see
           :attr:`use_impacts`) the pitch-rate minimum after the descent (Falbriard et
           al. 2018), confirmed ``ic_lookahead_ms`` later, if no impact shows within 80 ms
           of it.

        Returns ``(ic, decided_index)``, ``(-1, -1)`` when this swing has no contact, or
        ``None`` to wait for more samples. Every test uses a fixed window after its sample,
        so the answer never depends on how the stream was chunked.
        """
        t = self.t
        fs = t.rate_hz
        g = t.g_ml
        limit = self._ms + self._max_ms_to_ic
        if self._descent is None:
            a = max(self._scan, t.base)
            seg = g[t.row(a) : t.row(min(t.n, limit + 1))]
            hit = np.flatnonzero(seg <= 0.2 * self._ms_peak)
            if len(hit) == 0:
                if t.n > limit:
                    return (-1, -1)
                self._scan = max(self._scan, t.n)
                return None
            self._descent = a + int(hit[0])
            self._imp_scan = max(
                self._ms + self._min_ms_to_ic,
                self._descent - round(IMPACT_BEFORE_DESCENT_S * fs),
                t.run_start,
                t.base,
            )
            self._min_scan = self._descent
            self._gmin = None
            self._windows.append(
                (self._imp_scan, min(limit, self._descent + round(0.3 * fs)) + self._w_imp)
            )
        d = self._descent
        # the fallback first (the impact search is capped by it): the first pitch-rate
        # minimum after the descent
        gmin_done = self._gmin is not None or self._min_scan > limit
        if not gmin_done:
            need = self._min_scan + self._l_ic
            if need < t.n:
                lo = max(t.run_start, self._min_scan - self._l_ic, t.base)
                hi = min(t.n, limit + self._l_ic + 1)
                i = first_contact(
                    g[t.row(lo) : t.row(hi)],
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
        if self.learning:
            # the runner's own impacts: the largest in the whole landing window
            if t.n <= imp_limit + w_imp:
                return None
            lo = self._imp_scan
            t.derive_jerk()
            jerk = t.jerk[t.row(lo) : t.row(imp_limit + w_imp) + 1]
            k = int(np.argmax(jerk))
            swing = t.jerk[t.row(max(self._ms - self._w_ms, t.base)) : t.row(self._ms) + 1]
            self._prominence.append(float(jerk[k]) / max(float(np.median(swing)), 1e-6))
            if len(self._prominence) == LEARN_IMPACTS:
                self.use_impacts = float(np.median(self._prominence)) >= IMPACT_PROMINENCE
            if jerk[k] >= self._impact_min:
                # its onset: the first sample of the rising edge at half its height
                on = k
                while on > 0 and jerk[on - 1] >= 0.5 * jerk[k] and k - on < w_imp:
                    on -= 1
                self._descent = None
                self._impact = True
                return lo + on, imp_limit + w_imp
            if self._gmin is not None:
                self._descent = None
                self._impact = False
                return self._gmin, max(imp_limit + w_imp, self._gmin + self._l_ic)
            self._descent = None
            return (-1, -1)
        # impact onset candidates k need k + w_imp < n
        k_hi = min(t.n - w_imp, imp_limit + 1)
        if self._gmin is not None:
            k_hi = min(k_hi, self._gmin + self._fallback_wait + 1)
        if self.use_impacts and k_hi > self._imp_scan:
            lo = self._imp_scan
            t.derive_jerk()
            jerk = t.jerk[t.row(lo) : t.row(k_hi + w_imp)]
            peak = self._impact_min
            if self._impacts:
                peak = max(peak, IMPACT_SHARE * _median(self._impacts))
            k = impact_onset(jerk, w_imp, peak, self._impact_onset)
            if k is not None:
                ic = lo + k
                self._descent = None
                self._impact = True
                return ic, ic + w_imp
            self._imp_scan = k_hi
        elif not self.use_impacts:
            self._imp_scan = max(self._imp_scan, k_hi)
        if self._gmin is not None:
            wait_to = min(self._gmin + self._fallback_wait, imp_limit)
            if not self.use_impacts:
                wait_to = self._gmin
            if self._imp_scan > wait_to or not self.use_impacts:
                m = self._gmin
                self._descent = None
                self._impact = False
                return m, max(wait_to + w_imp, m + self._l_ic)
        if self._gmin is None and self._min_scan > limit and self._imp_scan > imp_limit:
            self._descent = None
            return (-1, -1)
        return None
