"""The sensor's mounting on its segment, found from the data (no configuration).

Pure functions on arrays in the sensor's own axes (m/s², deg/s), and
:class:`MountingFinder`, which keeps what the stream showed so far (the gravity
direction while standing, how often it tried) and decides when to look.
"""

from __future__ import annotations

import itertools

import numpy as np

from companion.estimator.ring import SampleRing
from companion.estimator.windows import centred_max, centred_mean, centred_min
from companion.types import G_MPS2


def quasi_static_mask(
    acc: np.ndarray, gyr: np.ndarray, rate_hz: float, gyr_max_dps: float, acc_tol_mps2: float
) -> np.ndarray:
    """Samples where the segment is nearly still: little rotation and |acc| close to g."""
    w = max(1, round(0.03 * rate_hz))
    gn = centred_mean(np.linalg.norm(gyr, axis=1), w)
    an = centred_mean(np.linalg.norm(acc, axis=1), w)
    return (gn < gyr_max_dps) & (np.abs(an - G_MPS2) < acc_tol_mps2)


def stance_centres(gyr_norm_dps: np.ndarray, rate_hz: float) -> np.ndarray:
    """Indices of the least-rotating instant of each stance (gyro only).

    The smoothed (30 ms) angular-rate norm is a local minimum within +-0.25 s and
    below 30 % of its 95th percentile: mid-stance, whatever the accelerometer shows.
    """
    w = max(1, round(0.03 * rate_hz))
    gs = centred_mean(gyr_norm_dps, w)
    half = max(1, round(0.25 * rate_hz))
    mn = centred_min(gs, 2 * half + 1)
    p95 = float(np.percentile(gyr_norm_dps, 95))
    # mid-stance of a stride, not standing: a swing within +-0.4 s
    reach = max(1, round(0.4 * rate_hz))
    mx = centred_max(gyr_norm_dps, 2 * reach + 1)
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
    peaks = np.flatnonzero((jerk >= centred_max(jerk, 2 * half + 1)) & (jerk >= floor))
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


STANDING_MIN_S = 0.5
"""Still samples (gyro < 8 deg/s, |acc| within 0.3 m/s² of g) that make a standing
gravity direction and gyroscope bias worth using."""
CHECK_EVERY_S = 0.5
"""How often (stream time) the mounting is looked for until it is found."""
FALLBACK_AFTER = 20
"""Tries after which the heel-rise sign is accepted when the two physical cues do not
agree (or one is missing)."""


class MountingFinder:
    """Finds a sensor's mounting from its stream (:func:`estimate_alignment`).

    Keeps the gravity direction and the gyroscope bias of the still samples seen so far
    (exact integer sums, so they do not depend on chunking) and looks every
    :data:`CHECK_EVERY_S` of stream at the last ``window_s`` of samples.
    """

    def __init__(self, segment: str, rate_hz: float, window_s: float) -> None:
        self.segment = segment
        self.rate_hz = rate_hz
        self.window = round(window_s * rate_hz)
        self.check_every = max(1, round(CHECK_EVERY_S * rate_hz))
        self._next_check = self.check_every
        self._still_acc = np.zeros(3, dtype=np.int64)
        self._still_gyr = np.zeros(3, dtype=np.int64)
        self._still_n = 0
        self._observed_to = 0
        """Stream index up to which samples were looked at for standing."""
        self.tries = 0

    def observe(self, acc: np.ndarray, gyr: np.ndarray, filled: np.ndarray) -> None:
        """New samples (sensor axes): keep the still ones' gravity and gyroscope sums."""
        gn = np.sqrt(np.sum(gyr * gyr, axis=1))
        an = np.sqrt(np.sum(acc * acc, axis=1))
        still = (gn < 8.0) & (np.abs(an - G_MPS2) < 0.3) & ~filled
        if still.any():
            # integer micro-units: the sum is exact, so it does not depend on chunking
            self._still_acc += np.rint(acc[still] * 1e6).astype(np.int64).sum(axis=0)
            self._still_gyr += np.rint(gyr[still] * 1e6).astype(np.int64).sum(axis=0)
            self._still_n += int(still.sum())

    def restart(self, n: int) -> None:
        """A long gap: the window starts again after it."""
        self._next_check = n + self.check_every

    def _observe_upto(self, ring: SampleRing, m: int) -> None:
        """Standing sums over the samples before stream index ``m`` not yet looked at
        (exactly those, so the sums at a check do not depend on how far the stream has
        arrived)."""
        a = max(self._observed_to, ring.base)
        if m > a:
            r0, r1 = ring.row(a), ring.row(m)
            self.observe(ring.acc[r0:r1], ring.gyr[r0:r1], ring.filled[r0:r1])
        self._observed_to = max(self._observed_to, m)

    def _standing(self) -> bool:
        return self._still_n >= STANDING_MIN_S * self.rate_hz

    def standing_up(self) -> np.ndarray | None:
        return self._still_acc / 1e6 / self._still_n if self._standing() else None

    def standing_bias_dps(self) -> np.ndarray | None:
        """The gyroscope's mean while standing (sensor axes), if the runner stood."""
        return self._still_gyr / 1e6 / self._still_n if self._standing() else None

    def try_find(
        self, ring: SampleRing, run_start: int = 0
    ) -> tuple[np.ndarray, int, float] | None:
        """``(rotation, window start, sensor time)`` once the mounting is found in the
        ring's samples (those from stream index ``run_start`` on)."""
        while self._next_check <= ring.n:
            m = self._next_check
            self._next_check += self.check_every
            self._observe_upto(ring, m)
            start = max(run_start, m - self.window, ring.base)
            if m - start < self.window:
                continue
            a, b = ring.row(start), ring.row(m)
            self.tries += 1
            rot = estimate_alignment(
                ring.acc[a:b],
                ring.gyr[a:b],
                self.rate_hz,
                self.segment,
                self.standing_up(),
                allow_fallback=self.tries > FALLBACK_AFTER,
            )
            if rot is not None:
                return rot, start, float(ring.t_s[b - 1])
        return None
