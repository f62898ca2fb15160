"""A segment's 3-D tilt through the stride: gyroscope paths anchored once per stance.

Plain functions on arrays in the segment frame (``ap``, ``ml``, ``si``, see
:mod:`companion.types`); the stride measurement (:mod:`~companion.estimator.stride`)
decides which samples they get.

The anchor is the **zero-velocity cycle closure** of foot-mounted inertial navigation
(Foxlin 2005; Skog et al. 2010; Peruzzi et al. 2011; Falbriard et al. 2020): between two
instants at the same phase of consecutive stances (the foot lying still at mid-stance)
the sensor's velocity is the same, so the specific force integrated over the cycle, in
one frame, is gravity times the cycle time and nothing else. Turned into the frame of the
cycle's first sample with the gyroscope path, its direction is "up" at that instant:

    S = ∫ R(t) f(t) dt   (R: body at t -> body at the start),  up_start = S / |S|

No single sample has to be still: the tangential and centripetal accelerations that move
a gravity reading at the "stillest" sample by several degrees integrate to the velocity
change over the cycle, which is zero. A cycle with lost samples or a clipped gyroscope
cannot be integrated; then the accelerometer at the stance's stillest instant (corrected
by the offset this runner's clean cycles showed, :class:`TiltAnchor`) stands in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from companion.types import G_MPS2

CLOSURE_TOL = 0.12
"""A cycle whose integrated specific force differs from gravity x time by more than this
fraction is not trusted (clipped accelerations, a sensor that moved on the strap)."""
GRAVITY_SD_DEG = 6.0
"""Spread of a gravity anchor at a running stance's stillest instant, after the offset
correction (tangential acceleration of a foot that is never quite still)."""
RECENT_SD_DEG = 2.0
"""Spread of a stance's tilt from the previous stance's (the same runner, one stride on)."""
BIAS_FORGET = 0.97
"""Each clean cycle's weight in the gyroscope bias estimate, relative to the next one."""
BIAS_PRIOR_S2 = 0.5
"""Weight of the standing bias (or zero) in that estimate (s²; one cycle of a stride
weighs about ``T²/2``, 0.25 s² for a 0.7 s stride)."""
OFFSET_STRIDES = 24
"""Clean cycles whose ZUPT-minus-gravity tilt offset corrects the gravity fallback."""


# --------------------------------------------------------------------------- gyroscope path
def gyro_path(gyr_dps: np.ndarray, rate_hz: float) -> np.ndarray:
    """Rotation matrices ``R[k]`` (n, 3, 3) from the body at sample 0 to the body at sample k.

    ``v_start = R[k] @ v_k`` turns a vector measured at sample k into the first sample's
    frame. Each step rotates by the mean rate of its two samples (second order, as a unit
    quaternion turned into its matrix); the increments are chained with a parallel prefix
    product of the matrices (log2(n) vectorised steps), so a stride costs a few hundred
    microseconds.
    """
    n = len(gyr_dps)
    if n == 0:
        return np.zeros((0, 3, 3))
    r = np.radians(0.5 * (gyr_dps[1:] + gyr_dps[:-1])) / rate_hz
    ang = np.sqrt(np.sum(r * r, axis=1))
    half = 0.5 * ang
    s = np.where(ang > 1e-12, np.sin(half) / np.maximum(ang, 1e-12), 0.5)
    q = np.empty((n, 4))
    q[0] = (1.0, 0.0, 0.0, 0.0)
    q[1:, 0] = np.cos(half)
    q[1:, 1:] = r * s[:, None]
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    out = np.empty((n, 3, 3))
    out[:, 0, 0] = 1 - 2 * (y * y + z * z)
    out[:, 0, 1] = 2 * (x * y - w * z)
    out[:, 0, 2] = 2 * (x * z + w * y)
    out[:, 1, 0] = 2 * (x * y + w * z)
    out[:, 1, 1] = 1 - 2 * (x * x + z * z)
    out[:, 1, 2] = 2 * (y * z - w * x)
    out[:, 2, 0] = 2 * (x * z - w * y)
    out[:, 2, 1] = 2 * (y * z + w * x)
    out[:, 2, 2] = 1 - 2 * (x * x + y * y)
    k = 1
    while k < n:
        out[k:] = np.matmul(out[:-k], out[k:])
        k *= 2
    return out


# --------------------------------------------------------------------------- anchors
@dataclass(frozen=True)
class Closure:
    """The zero-velocity closure of one cycle."""

    up_start: np.ndarray
    """Unit vector pointing up, in the segment frame at the cycle's first sample."""
    up_end: np.ndarray
    """The same, carried along the gyroscope path to the cycle's last sample."""
    ratio: float
    """|S| / (g T): 1 for a clean cycle."""
    bias_gain_s: np.ndarray
    """(3, 3): how a gyroscope bias error ``e`` (deg/s, segment frame) turns the up carried
    to the cycle's end (a rotation of ``bias_gain_s @ e`` deg, in the end's frame): the
    cycle's rotations from each sample to the end, summed over its time. A segment that
    pitches through the swing mixes its ``ap`` and ``si`` axes, so this is no multiple of
    the identity."""


def cycle_closure(acc_mps2: np.ndarray, path: np.ndarray, rate_hz: float) -> Closure | None:
    """Up at both ends of a cycle between two same-phase stance instants.

    ``acc_mps2`` (n, 3): specific force in the segment frame; ``path``: :func:`gyro_path`
    of the same samples. ``None`` when the cycle is too short to say anything.
    """
    n = len(acc_mps2)
    if n < 3:
        return None
    f = np.einsum("nij,nj->ni", path, acc_mps2)
    s = (0.5 * (f[0] + f[-1]) + f[1:-1].sum(axis=0)) / rate_hz
    norm = float(np.sqrt(s @ s))
    span = (n - 1) / rate_hz
    if norm <= 0.0:
        return None
    up0 = s / norm
    up1 = path[-1].T @ up0
    summed = (0.5 * (path[0] + path[-1]) + path[1:-1].sum(axis=0)) / rate_hz
    return Closure(up0, up1, norm / (G_MPS2 * span), path[-1].T @ summed)


def gravity_up(acc_mps2: np.ndarray) -> np.ndarray | None:
    """Up from the mean specific force of a few samples (the segment taken as still)."""
    m = acc_mps2.mean(axis=0)
    norm = float(np.sqrt(m @ m))
    return m / norm if norm > 0.3 * G_MPS2 else None


def tilt_deg(up: np.ndarray) -> tuple[float, float]:
    """(pitch, roll) of a segment whose frame sees ``up`` (unit vector, segment frame).

    Pitch: the ``ap`` axis above the horizontal (toes up positive, the foot's angle to
    level ground); roll: rotation about ``ap``, right side down positive.
    """
    return (
        math.degrees(math.asin(max(-1.0, min(1.0, float(up[0]))))),
        math.degrees(math.asin(max(-1.0, min(1.0, -float(up[1]))))),
    )


def up_from_tilt(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The inverse of :func:`tilt_deg` (the up vector's ``si`` part is negative)."""
    p, r = math.radians(pitch_deg), math.radians(roll_deg)
    u_ap, u_ml = math.sin(p), -math.sin(r)
    u_si = -math.sqrt(max(0.0, 1.0 - u_ap * u_ap - u_ml * u_ml))
    return np.array([u_ap, u_ml, u_si])


def up_series(up_anchor: np.ndarray, path: np.ndarray, i_anchor: int) -> np.ndarray:
    """Up (n, 3, unit vectors in the segment frame at each sample) along ``path`` given up
    at sample ``i_anchor``: ``R[k]^T R[a] up_a`` (``path`` a :func:`gyro_path`, body at 0 ->
    body at k)."""
    up0 = path[i_anchor] @ up_anchor  # up in the frame of sample 0
    return np.einsum("nji,j->ni", path, up0)


def tilt_series(up_anchor: np.ndarray, path: np.ndarray, i_anchor: int) -> np.ndarray:
    """Pitch and roll (n, 2) along ``path`` given up at sample ``i_anchor``."""
    ups = up_series(up_anchor, path, i_anchor)
    out = np.empty((len(ups), 2))
    out[:, 0] = np.degrees(np.arcsin(np.clip(ups[:, 0], -1.0, 1.0)))
    out[:, 1] = np.degrees(np.arcsin(np.clip(-ups[:, 1], -1.0, 1.0)))
    return out


def heading_change_deg(gyr_dps: np.ndarray, ups: np.ndarray, rate_hz: float) -> float:
    """How far the segment turned about the vertical over these samples (deg; ``gyr_dps``
    bias removed, ``ups`` from :func:`up_series`, both (n, 3) in the segment frame)."""
    if len(gyr_dps) < 2:
        return 0.0
    w = np.sum(gyr_dps * ups, axis=1)
    return float((0.5 * (w[0] + w[-1]) + w[1:-1].sum()) / rate_hz)


class TiltAnchor:
    """Up at each stance's anchor instant, and what the gyroscope's bias is.

    Per stance: the zero-velocity closure of the cycle that ends there when that cycle is
    clean (no lost or clipped samples, closure within :data:`CLOSURE_TOL`), else the
    accelerometer around the anchor corrected by the median (ZUPT minus gravity) tilt
    offset of the last :data:`OFFSET_STRIDES` clean cycles.

    The gyroscope bias (deg/s, segment frame), learned from consecutive clean cycles: the
    up a cycle carries to its end and the up the next cycle finds at its start differ by
    the tilt the bias error left over the cycle, ``P J e`` (``J``:
    :attr:`Closure.bias_gain_s`; ``P`` keeps the two directions a tilt can show: a
    rotation about the vertical leaves up where it was). A recursive least-squares
    estimate over the cycles (forgetting :data:`BIAS_FORGET` per cycle: a bias drifts
    slowly with temperature) with the bias measured while standing (or none) as a prior
    of weight :data:`BIAS_PRIOR_S2`, so that what the cycles cannot show stays at the
    prior instead of wandering off.
    """

    def __init__(self) -> None:
        self.bias_dps = np.zeros(3)
        self._offsets: deque[tuple[float, float]] = deque(maxlen=OFFSET_STRIDES)
        self._carried: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """The last clean cycle: up carried to its end (segment frame), its
        :attr:`Closure.bias_gain_s`, and the bias its path was integrated with."""
        self._prior: np.ndarray | None = None
        self._info = np.zeros((3, 3))
        self._moment = np.zeros(3)

    def restart(self) -> None:
        """The chain of cycles is broken (a long gap): nothing is carried over it."""
        self._carried = None

    def offset_deg(self) -> tuple[float, float]:
        if not self._offsets:
            return 0.0, 0.0
        a = np.asarray(self._offsets)
        return float(np.median(a[:, 0])), float(np.median(a[:, 1]))

    def clean(
        self,
        closure: Closure,
        grav_up: np.ndarray | None,
        bias_used_dps: np.ndarray | None = None,
    ) -> np.ndarray:
        """A clean cycle ended at this stance (its path integrated with
        ``bias_used_dps``, the current bias if not given): learn from it; return up at its
        end."""
        used = self.bias_dps.copy() if bias_used_dps is None else np.asarray(bias_used_dps)
        if grav_up is not None:
            pz, rz = tilt_deg(closure.up_end)
            pg, rg = tilt_deg(grav_up)
            self._offsets.append((pz - pg, rz - rg))
        if self._carried is not None:
            carried, gain_s, carried_bias = self._carried
            # the previous cycle carried up to this cycle's start; this cycle found it
            found = closure.up_start
            err_deg = np.degrees(np.cross(carried, found))  # rotation carried -> found
            sens = (np.eye(3) - np.outer(found, found)) @ gain_s
            # what the bias that cycle was integrated with, plus its error, would show
            seen = err_deg + sens @ carried_bias
            if self._prior is None:
                self._prior = carried_bias.copy()
            self._info = BIAS_FORGET * self._info + sens.T @ sens
            self._moment = BIAS_FORGET * self._moment + sens.T @ seen
            w = BIAS_PRIOR_S2 * np.eye(3)
            self.bias_dps = np.linalg.solve(self._info + w, self._moment + w @ self._prior)
        self._carried = (closure.up_end, closure.bias_gain_s, used)
        return closure.up_end

    def fallback(
        self, grav_up: np.ndarray | None, recent: np.ndarray | None = None
    ) -> np.ndarray | None:
        """No clean cycle ended here: the accelerometer, corrected by the learned offset
        (SD about :data:`GRAVITY_SD_DEG`), blended with ``recent``, the last stance's
        closure (SD about :data:`RECENT_SD_DEG`: a runner's stance changes little from one
        stride to the next; at a fault's first stride it is wrong for that stride)."""
        self._carried = None
        if grav_up is None:
            return recent
        p, r = tilt_deg(grav_up)
        dp, dr = self.offset_deg()
        p, r = p + dp, r + dr
        if recent is not None:
            pr, rr = tilt_deg(recent)
            w = GRAVITY_SD_DEG**2 / (GRAVITY_SD_DEG**2 + RECENT_SD_DEG**2)
            p, r = w * pr + (1 - w) * p, w * rr + (1 - w) * r
        return up_from_tilt(p, r)
