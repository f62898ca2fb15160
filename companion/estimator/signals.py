"""Small numpy functions the streaming estimator is built from.

Each works on plain arrays, knows nothing about streaming, and can be tested alone.
Sensor axes are named ``_x/_y/_z``; segment axes (after alignment) ``_ap/_ml/_si``
as defined in :mod:`companion.types`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from companion.types import G_MPS2

GYR_SATURATION_DPS = 1990.0
"""Gyro samples at or beyond this are treated as clipped (common range ±2000 deg/s)."""
ACC_SATURATION_MPS2 = 15.9 * G_MPS2
"""Accelerometer samples at or beyond this are treated as clipped (common range ±16 g)."""


# --------------------------------------------------------------------------- gaps
@dataclass(frozen=True)
class Regularised:
    """Samples put on the sensor's nominal-rate grid.

    ``t_s``/``acc``/``gyr`` hold one row per grid step after the previous sample;
    ``filled`` marks rows interpolated across a short gap; ``breaks`` are row
    positions before which a gap was too long to bridge (the stream restarts there).
    """

    t_s: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    filled: np.ndarray
    breaks: np.ndarray


_NO_BREAKS = np.zeros(0, dtype=np.int64)
_NOT_FILLED = np.zeros(4096, dtype=bool)
_NOT_FILLED.flags.writeable = False


def _not_filled(n: int) -> np.ndarray:
    """``filled`` for ``n`` samples that all came in (a shared read-only view when short)."""
    return _NOT_FILLED[:n] if n <= len(_NOT_FILLED) else np.zeros(n, dtype=bool)


GRID_FIT_SAMPLES = 16
"""Samples before a suspected gap whose grid line places it (see :func:`regularise`)."""
_GRID_FIT_MIN = 6


def _grid_time(t: np.ndarray, pos: np.ndarray, rate_hz: float) -> float:
    """Where the last of these samples sits on their grid: a straight line fitted to
    their offsets from it (least squares: timestamp jitter averages out, and a sensor
    running a little off its nominal rate does not make the line lag)."""
    off = t - pos / rate_hz
    x = pos - pos.mean()
    slope = float(x @ (off - off.mean())) / float(x @ x)
    return float(pos[-1] / rate_hz + off.mean() + slope * x[-1])


def _refine_steps(
    t_all: np.ndarray,
    steps: np.ndarray,
    suspects: np.ndarray,
    breaks: np.ndarray,
    rate_hz: float,
    history: Callable[[], tuple[np.ndarray, np.ndarray]] | None,
    origin: int,
) -> None:
    """Recount, in place, the grid steps before each suspected gap (a step of two or more
    between neighbours) from the grid time of the sample before it, fitted over the
    samples before it in the same stretch (no long gap between): two neighbours whose
    timestamps jitter apart by more than half a period no longer look like a lost sample.
    ``history()`` gives the stretch's samples before this batch (raw times, stream
    positions), its last one being ``t_all[0]`` (``origin`` is 1 then)."""
    w = GRID_FIT_SAMPLES
    before = history() if (history is not None and origin) else None
    for j in suspects:
        start = int(breaks[breaks <= j].max()) if (breaks <= j).any() else 0
        pos = np.concatenate(([0.0], np.cumsum(steps[start:j])))
        t_fit = t_all[start : j + 1]
        if start == 0 and before is not None and len(before[0]) > 1:
            t_hist, p_hist = before
            t_fit = np.concatenate((t_hist[:-1], t_fit))
            pos = np.concatenate((p_hist[:-1], p_hist[-1] + pos))
        t_fit, pos = t_fit[-w:], pos[-w:]
        if len(t_fit) < _GRID_FIT_MIN:
            continue
        g = _grid_time(t_fit, pos, rate_hz)
        steps[j] = max(1, round((float(t_all[j + 1]) - g) * rate_hz))


def regularise(
    t_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray,
    rate_hz: float,
    max_gap_s: float,
    prev: tuple[float, np.ndarray, np.ndarray] | None,
    history: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Regularised:
    """Bridge short gaps (lost packets) by linear interpolation on the nominal grid.

    Each step between consecutive timestamps counts ``rint(dt * rate_hz)`` grid
    samples (at least one). A step of two or more (a suspected lost sample) is
    recounted from where the sample before it sits on the grid, fitted over the
    ``GRID_FIT_SAMPLES`` before it (``history()`` gives those that came in earlier
    batches: raw times and stream positions of the stretch since the last long gap,
    ending with ``prev``): so timestamp jitter, even when two neighbours jitter
    apart by more than half a period, does not invent samples. A gap whose missing
    part exceeds ``max_gap_s`` is not bridged: it is reported in ``breaks`` and no
    sample is invented for it. The result depends only on the samples, never on how
    they were chunked.
    """
    n = len(t_s)
    if n == 0:
        z = np.zeros(0)
        return Regularised(z, np.zeros((0, 3)), np.zeros((0, 3)), z.astype(bool), z.astype(int))
    # fast path, the common case: every step rounds to one grid sample (no gap)
    step_max = float((t_s[1:] - t_s[:-1]).max()) if n > 1 else 0.0
    if prev is not None:
        step_max = max(step_max, float(t_s[0]) - prev[0])
    if step_max * rate_hz < 1.5:
        return Regularised(t_s, acc, gyr, _not_filled(n), _NO_BREAKS)
    t_all = t_s if prev is None else np.concatenate(([prev[0]], t_s))
    origin = 0 if prev is None else 1
    steps = np.maximum(np.rint(np.diff(t_all) * rate_hz).astype(np.int64), 1)
    long_gap = (steps - 1) / rate_hz > max_gap_s
    if long_gap.any():
        steps[long_gap] = 1
    suspects = np.flatnonzero(steps > 1)
    if len(suspects):
        _refine_steps(
            t_all, steps, suspects, np.flatnonzero(long_gap) + 1, rate_hz, history, origin
        )
    if not (steps > 1).any():  # fast path: nothing to fill
        breaks = np.flatnonzero(long_gap) + 1 - origin
        return Regularised(t_s, acc, gyr, _not_filled(n), breaks)
    if prev is None:
        acc_all, gyr_all = acc, gyr
    else:
        acc_all = np.vstack((prev[1][None, :], acc))
        gyr_all = np.vstack((prev[2][None, :], gyr))
    pos = np.concatenate(([0], np.cumsum(steps)))
    grid = np.arange(pos[-1] + 1)
    t_out = np.interp(grid, pos, t_all)
    acc_out = np.column_stack([np.interp(grid, pos, acc_all[:, c]) for c in range(3)])
    gyr_out = np.column_stack([np.interp(grid, pos, gyr_all[:, c]) for c in range(3)])
    filled = np.ones(len(grid), dtype=bool)
    filled[pos] = False
    breaks = pos[1:][long_gap]
    start = 1 if origin else 0
    return Regularised(
        t_out[start:], acc_out[start:], gyr_out[start:], filled[start:], breaks - start
    )


# --------------------------------------------------------------------------- alignment
def quasi_static_mask(
    acc: np.ndarray, gyr: np.ndarray, rate_hz: float, gyr_max_dps: float, acc_tol_mps2: float
) -> np.ndarray:
    """Samples where the segment is nearly still: little rotation and |acc| close to g."""
    w = max(1, round(0.03 * rate_hz))
    gn = uniform_filter1d(np.linalg.norm(gyr, axis=1), w, mode="nearest")
    an = uniform_filter1d(np.linalg.norm(acc, axis=1), w, mode="nearest")
    return (gn < gyr_max_dps) & (np.abs(an - G_MPS2) < acc_tol_mps2)


def stance_centres(gyr_norm_dps: np.ndarray, rate_hz: float) -> np.ndarray:
    """Indices of the least-rotating instant of each stance (gyro only).

    The smoothed (30 ms) angular-rate norm is a local minimum within +-0.25 s and
    below 30 % of its 95th percentile: mid-stance, whatever the accelerometer shows.
    """
    w = max(1, round(0.03 * rate_hz))
    gs = uniform_filter1d(gyr_norm_dps, w, mode="nearest")
    half = max(1, round(0.25 * rate_hz))
    mn = minimum_filter1d(gs, 2 * half + 1, mode="nearest")
    p95 = float(np.percentile(gyr_norm_dps, 95))
    # mid-stance of a stride, not standing: a swing within +-0.4 s
    reach = max(1, round(0.4 * rate_hz))
    mx = maximum_filter1d(gyr_norm_dps, 2 * reach + 1, mode="nearest")
    idx = np.flatnonzero((gs <= mn) & (gs < 0.3 * p95) & (mx > 0.5 * p95))
    if len(idx) == 0:
        return idx
    keep = np.concatenate(([True], np.diff(idx) > half))  # one per plateau
    return idx[keep]


def estimate_alignment(
    acc: np.ndarray,
    gyr: np.ndarray,
    rate_hz: float,
    segment: str,
    standing_up: np.ndarray | None = None,
    allow_fallback: bool = True,
) -> np.ndarray | None:
    """Find the sensor-to-segment rotation from running data (no configuration).

    * **medio-lateral axis** = the principal axis of the angular velocity while
      moving: sagittal rotation dominates the foot's and the shank's motion in
      running (the same idea as the functional calibration of Favre et al. 2009
      and the PCA alignment used in gaitmap).
    * **vertical** = the mean specific force (gravity) while standing
      (``standing_up``, if the runner stood still), else over the quasi-static
      samples (foot flat: little rotation, |acc| close to g), else around the
      least-rotating mid-stance instants, else over the whole window (shank).
    * **sign** (which way is forward), from physics, not from the mounting: for the
      foot, the direction it travels between two mid-stances (a zero-velocity-update
      strapdown, :func:`forward_travel_m`); failing that, the heel rise after
      mid-stance, which turns the foot toes-down for every strike style. For the
      shank, its largest rotation rate is the forward swing (positive).

    Returns ``R`` with ``v_segment = R @ v_sensor`` (rows ap, ml, si), or ``None``
    when the window holds too little running to decide (or, with
    ``allow_fallback=False``, when the foot's travel is not clear).
    """
    gn = np.sqrt(np.sum(gyr * gyr, axis=1))
    moving = gn > 100.0
    if moving.sum() < max(rate_hz * 1.0, 0.3 * len(gn)):
        return None  # mostly standing: wait for more running
    cov = np.cov(gyr[moving].T)
    w, v = np.linalg.eigh(cov)
    ml = v[:, -1]
    if w[-1] < 2.0 * w[-2]:
        return None  # no dominant rotation axis: not running (yet)
    centres = stance_centres(gn, rate_hz)
    h = max(1, round(0.015 * rate_hz))
    p95 = float(np.percentile(gn, 95))
    still = np.zeros(len(gn), dtype=bool)
    for frac, tol in ((0.03, 1.0), (0.06, 1.5), (0.1, 2.0)):
        still = quasi_static_mask(acc, gyr, rate_hz, max(15.0, frac * p95), tol)
        if still.sum() >= max(3, 0.05 * rate_hz):
            break
    if standing_up is not None and np.linalg.norm(standing_up) > 0:
        up = np.asarray(standing_up, dtype=float)
    elif still.sum() >= max(3, 0.05 * rate_hz):
        up = acc[still].mean(axis=0)
    elif len(centres) >= 2:
        up = np.mean([acc[max(0, c - h) : c + h + 1].mean(axis=0) for c in centres], axis=0)
    else:
        up = acc.mean(axis=0)
    up = up - np.dot(up, ml) * ml
    if np.linalg.norm(up) < 1e-6:
        return None
    up /= np.linalg.norm(up)
    si = -up
    g_ml = gyr @ ml
    if segment == "foot":
        fwd = forward_travel_m(acc, g_ml, ml, si, rate_hz, centres)
        # a running stride travels 1.5 m and more; less is the first few steps (or noise)
        votes_travel = 0.0 if fwd is None or abs(fwd) <= 0.5 else float(np.sign(fwd))
        votes_swing = swing_before_impact_sign(acc, g_ml, rate_hz)
        if votes_travel and votes_swing and votes_travel != votes_swing and not allow_fallback:
            return None  # the two physical cues disagree: wait for more running
        if votes_swing:
            sign = votes_swing
        elif votes_travel:
            sign = votes_travel
        elif not allow_fallback:
            return None  # not clear yet: try again on more running
        else:
            span = max(1, round(0.15 * rate_hz))
            # rotation (deg) in the 0.15 s after each mid-stance: the heel rise
            votes = np.array(
                [
                    float(np.sum(g_ml[c : c + span])) / rate_hz
                    for c in centres
                    if c + span <= len(g_ml)
                ]
            )
            votes = votes[np.abs(votes) >= 2.0]
            if len(votes) < 2:
                return None
            sign = -np.sign(np.sum(votes)) or 1.0
    else:
        hi, lo = np.percentile(g_ml, [99.5, 0.5])
        sign = 1.0 if hi >= -lo else -1.0
    ml = ml * sign
    ap = np.cross(ml, si)
    ap /= np.linalg.norm(ap)
    ml = np.cross(si, ap)
    return np.vstack((ap, ml, si))


def swing_before_impact_sign(acc: np.ndarray, g_ml: np.ndarray, rate_hz: float) -> float:
    """+1 or -1: the sign that makes the foot's swing rotation toes-up, 0 if unclear.

    At each landing impact (the largest jerk within 0.3 s, at least ``400 g/s``, or
    3 g per sample at low rates), the foot has just swung from its toes-down push-off
    (-40..-70 deg) to its strike angle (-15..+25 deg): the rotation over the 0.35 s
    before the impact is large and toes-up (positive) for every strike style. Needs
    three impacts agreeing three to one.
    """
    if len(acc) < 3:
        return 0.0
    d = np.diff(acc, axis=0)
    jerk = np.concatenate(([0.0], np.sqrt(np.sum(d * d, axis=1)))) * rate_hz / G_MPS2
    half = max(1, round(0.3 * rate_hz))
    # the impact is smeared over a sample period at low rates (as in the estimator)
    floor = min(400.0, 3.0 * rate_hz)
    peaks = np.flatnonzero((jerk >= maximum_filter1d(jerk, 2 * half + 1)) & (jerk >= floor))
    back = round(0.35 * rate_hz)
    gap = max(1, round(0.02 * rate_hz))
    votes = [float(np.sum(g_ml[k - back : k - gap])) / rate_hz for k in peaks if k >= back]
    votes = [v for v in votes if abs(v) >= 20.0]
    if len(votes) < 3:
        return 0.0
    pos = sum(v > 0 for v in votes)
    if pos >= 0.75 * len(votes):
        return 1.0
    if pos <= 0.25 * len(votes):
        return -1.0
    return 0.0


def forward_travel_m(
    acc: np.ndarray,
    g_ml: np.ndarray,
    ml: np.ndarray,
    si: np.ndarray,
    rate_hz: float,
    centres: np.ndarray,
) -> float | None:
    """Median horizontal travel (m) of the foot per stride along ``ap = ml x si``.

    A planar strapdown between consecutive mid-stances (``centres``): the sagittal
    tilt is the integrated rate (from the gravity tilt at the start), the specific
    force is turned into the level frame, the velocity is integrated and forced to
    zero at both mid-stances (the zero-velocity update of foot-mounted inertial
    navigation, e.g. Peruzzi et al. 2011, Rampp et al. 2015), and the displacement
    integrated. A foot travels a metre or more forward per running stride, so the
    sign of the result tells which way ``ap`` points. ``None`` below two strides.
    """
    ap = np.cross(ml, si)
    n = np.linalg.norm(ap)
    if n < 1e-9:
        return None
    ap /= n
    a_ap, a_si = acc @ ap, acc @ si
    travel = []
    for a, b in itertools.pairwise(centres):
        span = (b - a) / rate_hz
        if not 0.35 <= span <= 2.0:
            continue
        theta = np.radians(np.cumsum(g_ml[a:b]) / rate_hz)
        theta += np.arctan2(a_ap[a], -a_si[a])
        fx = a_ap[a:b] * np.cos(theta) + a_si[a:b] * np.sin(theta)
        vx = np.cumsum(fx) / rate_hz
        vx -= np.linspace(0.0, vx[-1], len(vx))
        travel.append(float(np.sum(vx)) / rate_hz)
    if len(travel) < 2:
        return None
    return float(np.median(travel))


# --------------------------------------------------------------------------- angles
def accel_pitch_deg(acc_ap: np.ndarray, acc_si: np.ndarray) -> float:
    """Sagittal tilt (toes up positive) from gravity over a quasi-static window."""
    return float(np.degrees(np.arctan2(np.mean(acc_ap), -np.mean(acc_si))))


def accel_roll_deg(acc_ml: np.ndarray, acc_si: np.ndarray) -> float:
    """Frontal tilt (rotation about ap, right side down positive) from gravity."""
    return float(np.degrees(np.arctan2(-np.mean(acc_ml), -np.mean(acc_si))))


def dedrifted_angle(
    rate_dps: np.ndarray, start_deg: float, end_deg: float, rate_hz: float
) -> np.ndarray:
    """Integrate an angular rate between two accelerometer-anchored instants.

    The integral is forced to go from ``start_deg`` to ``end_deg`` by removing a
    linear drift: the zero-velocity/still-phase reset of foot-mounted inertial
    gait analysis (e.g. Peruzzi et al. 2011; Rampp et al. 2015), which also
    absorbs gyro bias and most of the error of clipped swing peaks.
    """
    n = len(rate_dps)
    if n < 2:
        return np.full(n, start_deg)
    theta = np.concatenate(([0.0], np.cumsum(0.5 * (rate_dps[1:] + rate_dps[:-1])))) / rate_hz
    err = theta[-1] - (end_deg - start_deg)
    theta -= np.arange(n) * (err / (n - 1))
    theta += start_deg
    return theta


# --------------------------------------------------------------------------- events
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


LOSSY_ALPHA = 0.5
"""Largest weight of the gyro prediction over a cycle with lost samples."""
MIN_CHAIN_S = 5.0
"""Shortest run of complete cycles whose gyro/accelerometer balance feeds the bias."""
DEFAULT_ALPHA_MAX = 0.3
"""Largest weight of the gyro prediction in a still stance's tilt (a light blend)."""
POOR_ANCHOR_ALPHA = 0.95
"""Weight of the gyro prediction when the stance was not still (a poor gravity anchor)."""
STILL_ACC_TOL_MPS2 = 0.15 * G_MPS2
"""A gravity anchor whose mean | |acc| - g | around the still instant exceeds this is poor."""
STILL_GYR_MAX_DPS = 60.0
"""A gravity anchor whose mean |gyro| around the still instant exceeds this is poor: a rotating
foot's accelerometer also carries its tangential and centripetal acceleration."""


class StanceTiltFilter:
    """A segment's tilt at each still mid-stance instant, anchored to gravity.

    At every stance the accelerometer gives the tilt from gravity at the still
    instant (small rotation, |acc| close to g), the gyroscope the rotation since the
    last stance (biased). Per stance::

        predicted = previous + integral(rate - bias) over the cycle
        tilt      = alpha * predicted + (1 - alpha) * accelerometer

    with ``alpha`` at most ``alpha_max`` when the anchor is good (the segment was
    still: small rotation, |acc| close to g). That is a light blend: the
    accelerometer anchor dominates, so a systematic error of the gyro chain (bias,
    clipped swing peaks, a still instant picked at a slightly different phase) ends
    as an offset of only ``alpha / (1 - alpha)`` times its per-stride size instead
    of 19 times with ``alpha = 0.95``, which let the tilt wander 15-50 deg from the
    still foot's gravity tilt on real recordings. A poor anchor (``accel_ok=False``:
    the segment was rotating or accelerating, so the specific force is not gravity)
    gets the weight ``1 - POOR_ANCHOR_ALPHA``: still some, so the gyro chain cannot
    run away, but little. The gyro bias is the total gyro rotation minus
    the total accelerometer change over every contiguous chain of
    complete cycles (no lost samples) of at least ``MIN_CHAIN_S``, divided by their
    duration; it is reported (the swing angle between stances is integrated with it
    removed). A bias measured while standing (``prior_dps``) counts as
    ``prior_weight_s`` seconds.
    """

    def __init__(self, alpha_max: float = DEFAULT_ALPHA_MAX, min_bias_span_s: float = 10.0) -> None:
        self.alpha_max = alpha_max
        self.min_bias_span_s = min_bias_span_s
        self.prior_dps = 0.0
        self.prior_weight_s = 0.0
        self._num = 0.0  # closed chains: gyro rotation - accelerometer change (deg)
        self._den = 0.0  # closed chains: seconds
        self._chain_gyro = 0.0
        self._chain_s = 0.0
        self._chain_first = 0.0
        self._last_accel = 0.0
        self._n = 0
        self.tilt_deg: float | None = None

    def _close_chain(self) -> None:
        # a short chain's two accelerometer ends weigh too much: only long ones count
        if self._chain_s >= MIN_CHAIN_S:
            self._num += self._chain_gyro - (self._last_accel - self._chain_first)
            self._den += self._chain_s
        self._chain_gyro = self._chain_s = 0.0

    def _open_chain(self, accel_deg: float) -> None:
        self._close_chain()
        self._chain_first = self._last_accel = accel_deg

    def restart(self) -> None:
        """The chain of cycles is broken (long gap, lost stride): start afresh."""
        self._close_chain()
        self.tilt_deg = None
        self._n = 0

    def bias_dps(self) -> float:
        num, span = self._num, self._den
        if self._chain_s >= MIN_CHAIN_S:
            num += self._chain_gyro - (self._last_accel - self._chain_first)
            span += self._chain_s
        if span < self.min_bias_span_s:
            return self.prior_dps
        return (num + self.prior_dps * self.prior_weight_s) / (span + self.prior_weight_s)

    def first(self, accel_deg: float) -> float:
        """The first stance after a restart: the accelerometer alone."""
        self._open_chain(accel_deg)
        self._n = 0
        self.tilt_deg = accel_deg
        return accel_deg

    def update(
        self,
        gyro_rotation_deg: float,
        span_s: float,
        accel_deg: float,
        whole: bool = True,
        accel_ok: bool = True,
    ) -> float:
        """Next stance: ``gyro_rotation_deg`` is the raw integral since the last one.

        ``whole=False`` (samples were lost in the cycle; a bridged swing peak loses
        area): the gyro part gets at most ``LOSSY_ALPHA`` of the weight when the
        anchor is good, and the cycle is left out of the bias estimate.
        ``accel_ok=False`` (the segment was not still at the anchor): the
        accelerometer gets only ``1 - POOR_ANCHOR_ALPHA``.
        """
        if self.tilt_deg is None:
            return self.first(accel_deg)
        predicted = self.tilt_deg + gyro_rotation_deg - self.bias_dps() * span_s
        if whole:
            self._chain_gyro += gyro_rotation_deg
            self._chain_s += span_s
            self._last_accel = accel_deg
        else:
            self._open_chain(accel_deg)
        self._n += 1
        limit = self.alpha_max if accel_ok else max(self.alpha_max, POOR_ANCHOR_ALPHA)
        alpha = min(limit, self._n / (self._n + 1.0))
        if not whole and accel_ok:
            # lost samples make the gyro part unsure; a poor anchor is no better
            alpha = min(alpha, LOSSY_ALPHA)
        self.tilt_deg = alpha * predicted + (1.0 - alpha) * accel_deg
        return self.tilt_deg
