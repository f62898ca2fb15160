"""The running leg: per-stride parameters, the sagittal and frontal angles of foot and
shank, and the path of each sensor through the world (stance, swing, late-swing braking,
turns). Arrays in, arrays out; the sensor model (:mod:`.sensor`) reads what this gives.

Conventions of :mod:`companion.types`: segment frames x forward, y right, z down; foot
angle to the ground toes up positive (0 = the foot lying flat); ankle = foot - shank.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PPoly
from scipy.linalg import solve_banded
from scipy.ndimage import gaussian_filter1d

from companion.source.sim.params import FaultSegment, RunnerParams, Turns
from companion.types import G_MPS2, Label

_TOE_M = 0.18  # heel to the forefoot pivot (metatarsal heads), foot frame x
_R_ANKLE_M = np.array([0.06, 0.0, -0.08])  # ankle joint from the heel's sole point, foot frame
_R_FOOT_SENSOR_M = np.array([0.10, 0.0, -0.06])  # sensor on the instep / laces
_R_SHANK_SENSOR_M = np.array([0.03, 0.0, -0.14])  # sensor on the distal shank, above the ankle
_ROLL_BAND_RAD = math.radians(1.5)  # the pivot rolls heel -> forefoot over +-1.5 deg of foot angle


# ----------------------------------------------------------------------------- rotations


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2
    )


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2
    )


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack(
        [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2
    )


def _rot_zyx(yaw: np.ndarray | float, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``Rz(yaw) Ry(pitch) Rx(roll)`` for arrays of angles (rad), shape (n, 3, 3)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rows = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    shape = np.shape(pitch)
    out = np.empty((3, 3, *shape))
    for i in range(3):
        for j in range(3):
            out[i, j] = rows[i][j]
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (-2, -1)))


def mount_matrix(rpy_deg: Sequence[float]) -> np.ndarray:
    """Sensor-to-segment rotation ``Rz(yaw) Ry(pitch) Rx(roll)`` (v_seg = M @ v_sensor)."""
    r, p, y = (np.asarray(math.radians(v)) for v in rpy_deg)
    return _rz(y) @ _ry(p) @ _rx(r)


# ----------------------------------------------------------------------------- strides


@dataclass
class _Leg:
    """Per-stride parameters of one leg (arrays of length n strides)."""

    side: str
    t_ic: np.ndarray
    contact: np.ndarray
    label: list[Label]
    strike: np.ndarray  # relaxed strike angle (before the fault)
    sigma: np.ndarray  # shank angle at IC
    peak_df: np.ndarray  # peak ankle dorsiflexion in stance
    to_pf: np.ndarray  # ankle plantarflexion at toe-off
    foot_to: np.ndarray  # foot angle at toe-off
    shank_min: np.ndarray  # most flexed shank in swing
    ramp: np.ndarray  # 0..1 amplitude ramp of the first strides
    rigid_scale: np.ndarray  # ankle motion kept (1 = relaxed)
    rigid_hold: np.ndarray  # held ankle angle for rigid strides
    offset: np.ndarray  # ankle offset of forced dorsi-/plantarflexion (deg, signed)
    w_stance: np.ndarray  # share of an ankle change taken by the foot in stance
    frontal_amp: np.ndarray
    stride_len: np.ndarray
    v_ic_x: np.ndarray  # horizontal foot speed at touchdown
    v_ic_z: np.ndarray  # downward foot speed at touchdown
    impact_g: np.ndarray  # the landing's jolt (g) the shank sensor sees (a quarter of it)
    foot_impact_g: np.ndarray  # the jolt the foot sensor sees (a soft landing: less of it)
    firmness: np.ndarray  # 1: a typical landing; a soft lander's flat landing less (slower)
    first_to: float
    toe_out: float
    clearance: float
    pf_hold: np.ndarray  # share of the plantarflexed landing kept through stance (heel up)
    brake_v: np.ndarray  # late-swing braking before this IC: velocity taken off (m/s)
    brake_t: np.ndarray  # ... over this window before the IC (s)
    foot_sensor: np.ndarray  # sensor position on the foot, from the heel's sole point (m)
    shank_sensor: np.ndarray  # sensor position on the shank, from the ankle joint (m)


def _ar1(rng: np.random.Generator, n: int, rho: float = 0.5) -> np.ndarray:
    """Unit-variance AR(1) noise: stride-to-stride variability with some memory."""
    e = rng.normal(size=n)
    out = np.empty(n)
    prev = 0.0
    s = math.sqrt(1 - rho * rho)
    for i in range(n):
        prev = rho * prev + s * e[i]
        out[i] = prev
    return out


def _labels_at(t: np.ndarray, faults: Sequence[FaultSegment]) -> list[Label]:
    lab = [Label.RELAXED] * len(t)
    for f in faults:
        for i in np.flatnonzero((t >= f.start_s) & (t < f.end_s)):
            lab[int(i)] = f.label
    return lab


def _make_leg(
    rng: np.random.Generator,
    runner: RunnerParams,
    side: str,
    t_ic: np.ndarray,
    first_to: float,
    faults: Sequence[FaultSegment],
    style: dict[str, float],
    xrng: np.random.Generator,
) -> _Leg:
    """One leg's strides. ``rng`` gives the classic draws (their order is fixed: a seed
    gives the run it always gave); ``xrng`` the wide world's additions."""
    n = len(t_ic)
    cv = runner.stride_cv
    speed = runner.resolved_speed_mps()
    stride_t = np.diff(t_ic, append=t_ic[-1] + (t_ic[-1] - t_ic[-2]))
    labels = _labels_at(t_ic, faults)
    lab = np.array([lab.value for lab in labels])
    rig = lab == Label.RIGID.value
    fdf = lab == Label.FORCED_DORSIFLEXION.value
    fpf = lab == Label.FORCED_PLANTARFLEXION.value

    rom = runner.ankle_rom_scale
    strike = runner.resolved_strike_deg() + 1.5 * _ar1(rng, n)
    sigma = 4.0 + 0.35 * strike + 1.0 * rng.normal(size=n)
    peak_df = style["peak_df"] * rom * (1 + 0.05 * rng.normal(size=n))
    to_pf = style["to_pf"] * rom * (1 + 0.06 * rng.normal(size=n))
    foot_to = -(45.0 + 4.0 * speed) * (1 + 0.04 * rng.normal(size=n))
    shank_min = -(45.0 + 9.0 * speed) * (1 + 0.03 * rng.normal(size=n))
    contact = runner.resolved_contact_s() * (1 + cv * _ar1(rng, n))

    n_ramp = 3
    k = np.arange(n)
    ramp = np.minimum(1.0, 0.45 + 0.55 * k / n_ramp)

    rigid_scale = np.ones(n)
    rigid_hold = np.zeros(n)
    offset = np.zeros(n)
    w_stance = np.full(n, 0.7) + 0.03 * rng.normal(size=n)
    # rigid: a share of the relaxed ankle motion kept (classic 30-50 %), around a held
    # angle; a size the runner gives varies +-0.08 stride to stride
    keep = runner.rigid_keep
    lo, hi = (0.25, 0.55) if keep is None else (keep - 0.08, keep + 0.08)
    rigid_scale[rig] = np.clip(style["rigid_scale"] + 0.04 * rng.normal(size=rig.sum()), lo, hi)
    rigid_hold[rig] = style["rigid_hold"] + 1.0 * rng.normal(size=rig.sum())
    w_stance[rig] = 0.6 + 0.05 * rng.normal(size=rig.sum())
    # forced dorsiflexion: toes held up into landing (classic +8..+16 deg), longer braking
    # contact; a size the runner gives varies 6 % (SD) stride to stride, within 12 %
    sd, lo, hi = _spread(runner.dorsi_deg, 1.5, 7.0, 17.0)
    offset[fdf] = np.clip(style["df_offset"] + sd * rng.normal(size=fdf.sum()), lo, hi)
    contact[fdf] *= np.clip(style["df_contact"] + 0.03 * rng.normal(size=fdf.sum()), 1.04, 1.3)
    # forced plantarflexion: toes pointed and held, heel kept off the ground
    sd, lo, hi = _spread(runner.plantar_deg, 1.5, 9.0, 20.0)
    offset[fpf] = -np.clip(style["pf_offset"] + sd * rng.normal(size=fpf.sum()), lo, hi)
    contact[fpf] *= np.clip(0.96 + 0.03 * rng.normal(size=fpf.sum()), 0.88, 1.02)
    w_stance[fpf] = 0.8 + 0.04 * rng.normal(size=fpf.sum())
    contact = np.minimum(contact, 0.6 * stride_t)
    # how far the heel stays up (foot below flat) through a plantarflexed stance; classic:
    # the whole landing offset is held (about 0.8 of it reaches the foot)
    pf_hold = np.ones(n)
    if runner.heel_up_deg is not None and fpf.any():
        heel = runner.heel_up_deg * np.clip(1.0 + 0.1 * xrng.normal(size=fpf.sum()), 0.8, 1.2)
        pf_hold[fpf] = np.clip(heel / (w_stance[fpf] * -offset[fpf]), 0.2, 1.8)
    brake_v, brake_t = _braking(xrng, runner, t_ic, contact, first_to, ramp)

    eff_strike = strike + offset  # the foot takes all of the change in the air
    jolt = rng.uniform(0.75, 1.25, n)
    heel = 0.8 * np.maximum(eff_strike, 0.0)  # a heel strike jolts harder, soft or not
    impact_g = (6.0 + heel) * jolt
    # a soft lander's flat or forefoot landing is softer; landing on the heel (10 deg and
    # more, a forced dorsiflexion too) is as firm as anyone's
    soft = runner.foot_jolt_scale
    firmness = soft + (1.0 - soft) * np.clip(np.maximum(eff_strike, 0.0) / 10.0, 0.0, 1.0)
    foot_impact_g = (6.0 * firmness + heel) * jolt
    v_ic_x = 0.5 + 0.1 * speed + 0.1 * rng.normal(size=n) + 0.04 * np.maximum(offset, 0)
    v_ic_z = 0.7 + 0.15 * rng.normal(size=n)
    stride_len = speed * stride_t * np.minimum(1.0, 0.3 + 0.7 * k / n_ramp)
    return _Leg(
        side=side,
        t_ic=t_ic,
        contact=contact,
        label=labels,
        strike=strike,
        sigma=sigma,
        peak_df=peak_df,
        to_pf=to_pf,
        foot_to=foot_to,
        shank_min=shank_min,
        ramp=ramp,
        rigid_scale=rigid_scale,
        rigid_hold=rigid_hold,
        offset=offset,
        w_stance=w_stance,
        frontal_amp=runner.frontal_amp_deg * (1 + 0.08 * rng.normal(size=n)),
        stride_len=stride_len,
        v_ic_x=v_ic_x,
        v_ic_z=v_ic_z,
        impact_g=impact_g,
        foot_impact_g=foot_impact_g,
        firmness=firmness,
        first_to=first_to,
        toe_out=float(rng.uniform(2.0, 10.0)),
        clearance=0.10 + 0.07 * speed,
        pf_hold=pf_hold,
        brake_v=brake_v,
        brake_t=brake_t,
        foot_sensor=_R_FOOT_SENSOR_M if runner.foot_sensor_m is None
        else np.asarray(runner.foot_sensor_m, dtype=float),
        shank_sensor=_R_SHANK_SENSOR_M if runner.shank_sensor_m is None
        else np.asarray(runner.shank_sensor_m, dtype=float),
    )  # fmt: skip


def _spread(size: float | None, sd_classic: float, lo: float, hi: float) -> tuple[float, ...]:
    """Stride-to-stride spread (SD) and bounds of a fault size: the classic ones, or 6 %
    within +-12 % of a size the runner gives."""
    if size is None:
        return sd_classic, lo, hi
    return 0.06 * size, 0.88 * size, 1.12 * size


def _braking(
    xrng: np.random.Generator,
    runner: RunnerParams,
    t_ic: np.ndarray,
    contact: np.ndarray,
    first_to: float,
    ramp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per stride: the velocity late-swing braking takes off the foot before its IC, and
    the window it takes it over (peak deceleration ``brake_g``, varied 15 % stride to
    stride; window ``brake_ms``, varied 10 %, at most half the swing)."""
    n = len(t_ic)
    window = np.full(n, runner.brake_ms / 1000.0)
    if runner.brake_g <= 0:
        return np.zeros(n), window
    peak = runner.brake_g * G_MPS2 * np.clip(1.0 + 0.15 * xrng.normal(size=n), 0.5, 1.5) * ramp
    window = window * np.clip(1.0 + 0.1 * xrng.normal(size=n), 0.8, 1.2)
    swing = t_ic - np.concatenate([[first_to], (t_ic + contact)[:-1]])
    window = np.minimum(window, 0.5 * swing)
    return peak * window / _BRAKE_DW_MAX, window


# Key points of one stride. Stance keys are fractions u of the contact time, swing
# keys fractions v of the swing time. "approach" swing keys (v >= 0.75) prepare the
# NEXT contact and take that stride's fault, so a stride's label describes its landing.
_U = np.array([0.0, 0.06, -1.0, 0.30, 0.45, 0.60, 0.80])  # -1: foot flat, set per stride
_V_OWN = np.array([0.0, 0.12, 0.30, 0.55])  # v = 0 is toe-off
_V_APP = np.array([0.75, 0.90])
_DF_PROFILE_U = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # forced DF: gone at foot flat
_PF_PROFILE_U = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9])  # forced PF held through stance
_PF_HELD_U = np.array([False, False, True, True, True, True, True])  # scaled by pf_hold
_PF_PROFILE_V = np.array([0.6, 0.2, 0.0, 0.0])
_FRONTAL_U = np.array([0.0, 0.06, 0.18, 0.30, 0.45, 0.60, 0.80])
_FRONTAL_SHAPE = np.array([0.3, 0.0, -0.75, -0.95, -1.0, -0.8, -0.4])  # x frontal amplitude
_W_U = np.array([1.0, 0.85, -1.0, -1.0, -1.0, -1.0, -1.0])  # -1: the stride's w_stance


def _u_flat(strike_deg: np.ndarray, offset_deg: np.ndarray) -> np.ndarray:
    """Fraction of contact at which the foot lies flat: about 15-20 % of stance,
    later the further the foot was from flat at contact, and later still when the
    toes were held up into the landing (``offset_deg`` > 0: a longer braking phase
    before the forefoot comes down)."""
    u = 0.16 + 0.003 * np.abs(strike_deg) + 0.006 * np.maximum(offset_deg, 0.0)
    return np.minimum(u, 0.27)


def _keys(leg: _Leg, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Key times and (foot, shank, frontal) angles of the whole leg, in time order."""
    n = len(leg.t_ic)
    t_to = leg.t_ic + leg.contact
    t_next = np.append(leg.t_ic[1:], leg.t_ic[-1] + (leg.t_ic[-1] - leg.t_ic[-2]))
    swing = t_next - t_to
    r = leg.ramp[:, None]

    # --- stance (n, 7)
    s = leg.strike[:, None]
    u = np.broadcast_to(_U, (n, len(_U))).copy()
    u[:, 2] = _u_flat(leg.strike, leg.offset)
    u[:, 1] = 0.4 * u[:, 2]
    sig = leg.sigma[:, None]
    d = leg.peak_df[:, None]
    sh_to = (leg.foot_to + leg.to_pf)[:, None]
    foot_u = np.zeros((n, len(_U)))
    foot_u[:, 0] = s[:, 0]
    foot_u[:, 1] = 0.6 * s[:, 0]
    foot_u[:, 5] = -6.0
    foot_u[:, 6] = 0.45 * leg.foot_to
    shank_u = np.where(
        u <= 0.45, sig + (-d - sig) * (u / 0.45), -(d + 4.0) + (sh_to + d + 4.0) * (u - 0.6) / 0.4
    )
    foot_u *= r
    shank_u *= r
    ankle_u = foot_u - shank_u
    t_u = leg.t_ic[:, None] + u * leg.contact[:, None]

    # --- own swing (n, 4): toe-off and early/mid swing
    ankle_v = np.stack([-leg.to_pf, -(leg.to_pf + 4.0), -0.3 * leg.to_pf, np.full(n, 2.0)], -1) * r
    shank_v = np.stack([sh_to[:, 0], sh_to[:, 0] - 12.0, leg.shank_min, np.full(n, -25.0)], -1) * r
    t_v = t_to[:, None] + _V_OWN * swing[:, None]

    # --- approach keys (n, 2) of stride k: in the swing BEFORE its IC
    a_ic = (leg.strike - leg.sigma)[:, None]
    ankle_a = np.concatenate([np.full((n, 1), 4.0), 0.3 * 4.0 + 0.7 * a_ic], -1) * r
    shank_a = np.concatenate([sig + 6.0, sig + 4.0], -1) * r
    t_prev_to = np.concatenate([[leg.first_to], t_to[:-1]])
    t_prev_ic = np.concatenate([[leg.first_to - 0.01], leg.t_ic[:-1]])
    prev_swing = leg.t_ic - t_prev_to
    t_a = t_prev_to[:, None] + _V_APP * prev_swing[:, None]
    del t_prev_ic

    # --- faults, as changes of the ANKLE angle
    rs = leg.rigid_scale[:, None]
    hold = leg.rigid_hold[:, None]
    dank_u = hold + rs * (ankle_u - hold) - ankle_u
    dank_v = hold + rs * (ankle_v - hold) - ankle_v
    dank_a = hold + rs * (ankle_a - hold) - ankle_a
    off = leg.offset[:, None]
    is_df = off > 0
    pf_u = _PF_PROFILE_U * np.where(_PF_HELD_U, leg.pf_hold[:, None], 1.0)
    dank_u += off * np.where(is_df, _DF_PROFILE_U, pf_u)
    dank_v += np.where(is_df, 0.0, off * _PF_PROFILE_V)
    dank_a += off
    # who takes the change: in the air the foot; in stance mostly the foot
    w_u = np.where(_W_U < 0, leg.w_stance[:, None], _W_U)
    w_v = np.array([0.85, 1.0, 1.0, 1.0])
    foot_u = foot_u + w_u * dank_u
    shank_u = shank_u - (1 - w_u) * dank_u
    foot_v = shank_v + ankle_v + w_v * dank_v
    shank_v = shank_v - (1 - w_v) * dank_v
    foot_a = shank_a + ankle_a + dank_a

    # frontal: slight inversion at contact, fast eversion while the foot comes down (most
    # of it by foot flat), its maximum near 45 % of stance, where the flat foot lies
    # nearly still under the body (the quasi-static instant foot-mounted IMUs rely on)
    amp = leg.frontal_amp[:, None] * r
    # (a profile over the fraction of contact, so a later foot flat does not squeeze it)
    fr_u = amp * np.interp(u, _FRONTAL_U, _FRONTAL_SHAPE)
    fr_v = np.concatenate([-0.2 * amp, 0.1 * amp, 0.25 * amp, 0.25 * amp], -1)
    fr_a = np.concatenate([0.3 * amp, 0.3 * amp], -1)

    # assemble: approach keys of k, stance of k, own swing of k
    t_all = np.concatenate([t_a, t_u, t_v], -1).ravel()
    f_all = np.concatenate([foot_a, foot_u, foot_v], -1).ravel()
    s_all = np.concatenate([shank_a, shank_u, shank_v], -1).ravel()
    r_all = np.concatenate([fr_a, fr_u, fr_v], -1).ravel()
    # standing before the first toe-off, and a tail after the last stride
    head_t = np.array([-1.0, leg.first_to])
    keep = t_all > leg.first_to + 1e-4
    t_all, f_all, s_all, r_all = t_all[keep], f_all[keep], s_all[keep], r_all[keep]
    t = np.concatenate([head_t, t_all, [max(t_end, t_all[-1]) + 1.0]])
    f = np.concatenate([[0.0, 0.0], f_all, [f_all[-1]]])
    sh = np.concatenate([[0.0, 0.0], s_all, [s_all[-1]]])
    fr = np.concatenate([[0.0, 0.0], r_all, [r_all[-1]]])
    order = np.argsort(t, kind="stable")
    t, f, sh, fr = t[order], f[order], sh[order], fr[order]
    ok = np.concatenate([[True], np.diff(t) > 1e-5])
    return t[ok], f[ok], sh[ok], fr[ok]


# ----------------------------------------------------------------------------- leg motion


def _piecewise_spline(
    kt: np.ndarray,
    kv: np.ndarray,
    breaks: np.ndarray,
    clamped: np.ndarray | None = None,
    clamped_end: np.ndarray | None = None,
) -> PPoly:
    """Natural cubic splines through the keys, one per stretch between ``breaks``.

    C2 (smooth angular acceleration) inside a stride; at each initial contact
    (and at the start of running) only the angle is continuous: the ground
    stopping the foot is an abrupt change of angular rate, and a spline across
    it would overshoot. Pieces starting at a time in ``clamped`` start with zero
    rate (the heel leaving a flat foot); pieces ending at a time in
    ``clamped_end`` end with zero rate (a controlled landing of the foot).
    """
    cut = np.searchsorted(kt, breaks - 1e-9)
    cut = np.unique(np.concatenate([[0], cut[(cut > 0) & (cut < len(kt) - 1)], [len(kt) - 1]]))
    clamp_at = set()
    if clamped is not None:
        clamp_at = set(np.searchsorted(kt, clamped - 1e-9).tolist())
    # every piece's knots, stacked (shared break knots appear twice)
    idx = np.concatenate([np.arange(a, b + 1) for a, b in itertools.pairwise(cut)])
    first = np.concatenate([[True], np.diff(idx) <= 0])  # first knot of a piece
    last = np.concatenate([first[1:], [True]])
    x, y = kt[idx], kv[idx]
    n = len(x)
    h = np.diff(x, append=x[-1])
    h[last] = 1.0  # not used: no interval after a piece's last knot
    d = np.diff(y, append=y[-1]) / h
    h_prev = np.concatenate([[1.0], h[:-1]])
    d_prev = np.concatenate([[0.0], d[:-1]])
    # tridiagonal system in the second derivatives m of each piece
    lower, diag, upper = h_prev.copy(), 2 * (h_prev + h), h.copy()
    rhs = 6 * (d - d_prev)
    is_clamped = first & np.isin(idx, list(clamp_at))
    natural_first = first & ~is_clamped
    diag[natural_first], upper[natural_first], rhs[natural_first] = 1.0, 0.0, 0.0
    lower[natural_first] = 0.0  # a new piece does not see the previous piece's last knot
    lower[is_clamped] = 0.0
    diag[is_clamped] = 2 * h[is_clamped]
    rhs[is_clamped] = 6 * d[is_clamped]
    lower[last], diag[last], upper[last], rhs[last] = 0.0, 1.0, 0.0, 0.0
    if clamped_end is not None:
        end_at = np.searchsorted(kt, clamped_end - 1e-9)
        ce = last & np.isin(idx, end_at) & ~first
        lower[ce] = h_prev[ce]
        diag[ce] = 2 * h_prev[ce]
        rhs[ce] = -6 * d_prev[ce]
    ab = np.zeros((3, n))
    ab[0, 1:] = upper[:-1]
    ab[1] = diag
    ab[2, :-1] = lower[1:]
    m = solve_banded((1, 1), ab, rhs)
    seg = np.flatnonzero(~last)
    m0, m1, hs = m[seg], m[seg + 1], h[seg]
    c = np.stack([(m1 - m0) / (6 * hs), m0 / 2, d[seg] - hs * (2 * m0 + m1) / 6, y[seg]], axis=0)
    return PPoly(c, np.append(x[seg], kt[-1]), extrapolate=True)


def _quintic(tau: np.ndarray) -> tuple[np.ndarray, ...]:
    t2, t3 = tau * tau, tau**3
    t4, t5 = t3 * tau, t3 * t2
    h0 = 1 - 10 * t3 + 15 * t4 - 6 * t5
    h1 = tau - 6 * t3 + 8 * t4 - 3 * t5
    h2 = 0.5 * t2 - 1.5 * t3 + 1.5 * t4 - 0.5 * t5
    h3 = 0.5 * t3 - t4 + 0.5 * t5
    h4 = -4 * t3 + 7 * t4 - 3 * t5
    h5 = 10 * t3 - 15 * t4 + 6 * t5
    return h0, h1, h2, h3, h4, h5


@dataclass
class _LegMotion:
    foot_deg: np.ndarray
    shank_deg: np.ndarray
    frontal_deg: np.ndarray
    foot_rate_dps: np.ndarray
    splines: tuple[PPoly, PPoly, PPoly]
    foot_pos: np.ndarray  # (n, 3) sensor positions, world NED
    shank_pos: np.ndarray
    r_foot: np.ndarray  # (n, 3, 3) segment-to-world
    r_shank: np.ndarray
    w_foot: np.ndarray  # (n, 3) body rate, segment frame, rad/s
    w_shank: np.ndarray
    heading: np.ndarray | None = None  # (n,) the course's heading at the heel (rad; turns)


def _leg_motion(
    leg: _Leg, t: np.ndarray, t_end: float, course: Course | None = None, speed_mps: float = 0.0
) -> _LegMotion:
    """The leg's angles, rotations, body rates and sensor paths on the time grid ``t``
    (on a ``course`` with turns: along it, leaning into each curve at ``speed_mps``)."""
    kt, kf, ks, kr = _keys(leg, t_end)
    breaks = np.concatenate([[leg.first_to], leg.t_ic])
    # the foot also breaks where the forefoot (or heel) lands flat and where the heel
    # starts to rise: a flat foot stays still (its gyro reads ~0), as on a real runner
    u_flat = _u_flat(leg.strike, leg.offset)
    t_flat = leg.t_ic + u_flat * leg.contact
    t_heel = leg.t_ic + 0.45 * leg.contact
    foot_breaks = np.sort(np.concatenate([breaks, t_flat, t_heel]))
    pf = _piecewise_spline(kt, kf, foot_breaks, clamped=t_heel, clamped_end=t_flat)
    ps, pr = (_piecewise_spline(kt, v, breaks) for v in (ks, kr))
    foot = pf(t)
    shank = ps(t)
    frontal = pr(t)
    # a little postural sway of the shank while standing
    stand = np.clip((leg.first_to - t) / 0.5, 0.0, 1.0)
    sway = 0.6 * np.sin(2 * np.pi * 0.3 * t) * stand
    shank = shank + sway
    dfoot = pf.derivative()(t)
    dshank = ps.derivative()(t) + 0.6 * 2 * np.pi * 0.3 * np.cos(2 * np.pi * 0.3 * t) * stand
    dfront = pr.derivative()(t)

    sgn = 1.0 if leg.side == "right" else -1.0
    th, ph = np.radians(foot), np.radians(frontal) * sgn
    psi = math.radians(leg.toe_out) * sgn
    r_foot = _rot_zyx(psi, th, ph)
    ths, phs = np.radians(shank), 0.3 * ph
    r_shank = _rot_zyx(0.0, ths, phs)
    dth, dph = np.radians(dfoot), np.radians(dfront) * sgn
    w_foot = np.stack([dph, dth * np.cos(ph), -dth * np.sin(ph)], -1)
    dths = np.radians(dshank)
    w_shank = np.stack([0.3 * dph, dths * np.cos(phs), -dths * np.sin(phs)], -1)

    # ---- heel (foot origin) path in the world, NED
    n = len(leg.t_ic)
    x_flat = np.cumsum(np.concatenate([[0.0], leg.stride_len[:-1]]))
    x_stand = -leg.stride_len[0] * 0.5
    idx = np.searchsorted(leg.t_ic, t, side="right") - 1  # stride of each sample (-1 before)
    t_to = leg.t_ic + leg.contact
    o = np.zeros((len(t), 3))
    rz_toe = _rz(np.asarray(psi)) @ np.array([_TOE_M, 0.0, 0.0])

    def stance_origin(xf: np.ndarray, rf: np.ndarray, thv: np.ndarray) -> np.ndarray:
        # rolling contact: the pivot moves along the sole from the heel (toes up) to
        # the forefoot (heel up) while the foot passes flat, C2-smooth in the angle,
        # so the sensor's velocity never jumps when the foot angle crosses zero
        base = np.stack([xf, np.zeros_like(xf), np.zeros_like(xf)], -1)
        x = np.clip((_ROLL_BAND_RAD - thv) / (2 * _ROLL_BAND_RAD), 0.0, 1.0)
        share = x**3 * (10 - 15 * x + 6 * x * x)  # 0 heel pivot .. 1 forefoot pivot
        toe_term = rz_toe[None, :] - rf @ np.array([_TOE_M, 0.0, 0.0])
        return base + share[:, None] * toe_term

    in_stance = (idx >= 0) & (t < t_to[np.maximum(idx, 0)])
    si = np.flatnonzero(in_stance)
    o[si] = stance_origin(x_flat[idx[si]], r_foot[si], th[si])
    standing = idx < 0
    standing &= t < leg.first_to
    o[standing] = [x_stand, 0.0, 0.0]

    # swing segments: from the previous toe-off (or standing) to the next IC
    seg_start = np.concatenate([[leg.first_to], t_to])  # (n+1)
    seg_end = np.concatenate([leg.t_ic, [np.inf]])
    # boundary states at toe-off from the analytic stance path (toe pivot)
    th_to = np.radians(pf(t_to))
    dth_to = np.radians(pf.derivative()(t_to))
    ddth_to = np.radians(pf.derivative(2)(t_to))
    th_to_c = np.minimum(th_to, 0.0)
    r_to = _rot_zyx(psi, th_to_c, np.radians(pr(t_to)) * sgn)
    p_to = stance_origin(x_flat, r_to, th_to_c - 1e-12)
    # velocity/acc of the toe-pivot origin in the sagittal plane (roll ignored here)
    c, s_ = np.cos(th_to_c), np.sin(th_to_c)
    cy, sy = math.cos(psi), math.sin(psi)
    vx = _TOE_M * s_ * dth_to
    vz = _TOE_M * c * dth_to
    ax = _TOE_M * (c * dth_to**2 + s_ * ddth_to)
    az = _TOE_M * (-s_ * dth_to**2 + c * ddth_to)
    v_to = np.stack([vx * cy, vx * sy, vz], -1)
    a_to = np.stack([ax * cy, ax * sy, az], -1)
    p0 = np.concatenate([[[x_stand, 0.0, 0.0]], p_to])
    v0 = np.concatenate([np.zeros((1, 3)), v_to])
    a0 = np.concatenate([np.zeros((1, 3)), a_to])
    # state at the next IC
    th_ic = np.radians(pf(leg.t_ic))
    r_ic = _rot_zyx(psi, th_ic, np.radians(pr(leg.t_ic)) * sgn)
    p_ic = stance_origin(x_flat, r_ic, th_ic)
    v_ic = np.stack([leg.v_ic_x, np.zeros(n), leg.v_ic_z], -1)

    sw = ~in_stance & ~standing
    swi = np.flatnonzero(sw)
    seg = idx[swi] + 1  # swing segment number (0 = from standing to IC 0)
    seg = np.minimum(seg, n - 1)
    dur = np.minimum(seg_end[seg], leg.t_ic[seg]) - seg_start[seg]
    tau = np.clip((t[swi] - seg_start[seg]) / dur, 0.0, 1.0)
    h = _quintic(tau)
    d = dur[:, None]
    pos = (
        h[0][:, None] * p0[seg]
        + h[1][:, None] * v0[seg] * d
        + h[2][:, None] * a0[seg] * d * d
        + h[4][:, None] * v_ic[seg] * d
        + h[5][:, None] * p_ic[seg]
    )
    # clearance: a C2 bump peaking early in swing (heel lifted behind)
    bump = tau**3 * (1 - tau) ** 4.5
    bump /= (3 / 7.5) ** 3 * (4.5 / 7.5) ** 4.5
    ramp_seg = leg.ramp[seg]
    pos[:, 2] -= leg.clearance * ramp_seg * bump
    if np.any(leg.brake_v > 0):
        pos[:, 0] += _brake_dx(
            t[swi], seg_start[seg], leg.t_ic[seg], leg.brake_t[seg], leg.brake_v[seg]
        )
    o[swi] = pos

    # impact: blend the touchdown velocity into the stance path over ~12 ms (a soft
    # landing over longer)
    tau_imp = 0.012 / leg.firmness[np.maximum(idx, 0)]
    since = t - leg.t_ic[np.maximum(idx, 0)]
    blend = (idx >= 0) & (since < tau_imp) & in_stance
    bi = np.flatnonzero(blend)
    if len(bi):
        kk = idx[bi]
        w = since[bi] / tau_imp[bi]
        w = w * w * (3 - 2 * w)
        ext = p_ic[kk] + v_ic[kk] * since[bi][:, None]
        o[bi] = (1 - w)[:, None] * ext + w[:, None] * o[bi]

    foot_pos = o + r_foot @ leg.foot_sensor
    ankle = o + r_foot @ _R_ANKLE_M
    shank_pos = ankle + r_shank @ leg.shank_sensor
    heading = None
    if course is not None:
        foot_pos, shank_pos = course.place(foot_pos), course.place(shank_pos)
        dt = float(t[1] - t[0])
        # the flat foot on the ground does not lean; in the air it leans with the leg
        stance = gaussian_filter1d(in_stance.astype(float), 0.015 / dt)
        psi_c, lean = course.heading_and_lean(o[:, 0], speed_mps)
        r_foot, w_foot = _turned(r_foot, w_foot, psi_c, lean * (1.0 - stance), dt)
        r_shank, w_shank = _turned(r_shank, w_shank, psi_c, lean, dt)
        heading = psi_c
    return _LegMotion(
        foot_deg=foot,
        shank_deg=shank,
        frontal_deg=frontal,
        foot_rate_dps=dfoot,
        splines=(pf, ps, pr),
        foot_pos=foot_pos,
        shank_pos=shank_pos,
        r_foot=r_foot,
        r_shank=r_shank,
        w_foot=w_foot,
        w_shank=w_shank,
        heading=heading,
    )


# ----------------------------------------------------------------------------- braking

# Late-swing braking takes velocity -v_b * w(tau) off the foot over the window tau = 0..1
# before contact: w = tau^2 (1 - tau)^6 (normalised to 1 at its peak, tau = 0.25) rises
# fast (the hamstrings' deceleration, its onset a jerk a whole window before the impact)
# and eases off slowly, so velocity and acceleration are back on the planned path at the
# contact. The distance it costs is made up earlier in the swing.
_BRAKE_W = np.polynomial.Polynomial([0.0, 0.0, 1.0]) * np.polynomial.Polynomial([1.0, -1.0]) ** 6
_BRAKE_W = _BRAKE_W / _BRAKE_W(0.25)
_BRAKE_WI = _BRAKE_W.integ()
_BRAKE_DW_MAX = float(np.max(_BRAKE_W.deriv()(np.linspace(0.0, 1.0, 4001))))
"""Peak of dw/dtau: the deceleration's peak is ``v_b * _BRAKE_DW_MAX / window``."""


def _brake_dx(
    t: np.ndarray, t_start: np.ndarray, t_ic: np.ndarray, window: np.ndarray, v_b: np.ndarray
) -> np.ndarray:
    """Forward displacement (m) late-swing braking adds to a swing from ``t_start`` to
    ``t_ic``: zero with zero velocity and acceleration at both ends."""
    t_b = t_ic - window
    total = v_b * window * _BRAKE_WI(1.0)
    tau = np.clip((t - t_b) / window, 0.0, 1.0)
    inside = total - v_b * window * _BRAKE_WI(tau)
    t_pre = t_start + 0.3 * (t_b - t_start)
    sig = np.clip((t - t_pre) / (t_b - t_pre), 0.0, 1.0)
    before = total * sig**3 * (10.0 - 15.0 * sig + 6.0 * sig * sig)
    return np.where(t >= t_b, inside, before)


# ----------------------------------------------------------------------------- turns


@dataclass
class Course:
    """A course of straights and curves, as functions of the distance along it.

    ``psi`` is the heading (rad; NED yaw, positive turning right), ``kappa`` the
    curvature (1/m), ``cx``, ``cy`` the course's points, all on the grid ``x``.
    """

    x: np.ndarray
    psi: np.ndarray
    kappa: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    @classmethod
    def of(cls, turns: Turns, length_m: float) -> Course:
        dx = 0.05
        x = np.arange(-50.0, length_m + 50.0, dx)
        arc = turns.radius_m * math.radians(turns.angle_deg)
        sign = 1.0 if turns.direction == "right" else -1.0
        kappa = np.zeros_like(x)
        for x0 in np.arange(turns.every_m, x[-1], turns.every_m):
            kappa[(x >= x0) & (x < x0 + arc)] = sign / turns.radius_m
        kappa = gaussian_filter1d(kappa, 1.0 / dx)  # about a metre easing in and out
        psi = np.cumsum(kappa) * dx
        cx = np.cumsum(np.cos(psi)) * dx
        cy = np.cumsum(np.sin(psi)) * dx
        i0 = int(np.searchsorted(x, 0.0))  # straight ahead before the first curve
        return cls(x, psi, kappa, cx - cx[i0] + x[i0], cy - cy[i0])

    def place(self, p: np.ndarray) -> np.ndarray:
        """Positions on the straight track (x along it, y to the right) on the course."""
        psi = np.interp(p[:, 0], self.x, self.psi)
        cx = np.interp(p[:, 0], self.x, self.cx)
        cy = np.interp(p[:, 0], self.x, self.cy)
        return np.stack([cx - np.sin(psi) * p[:, 1], cy + np.cos(psi) * p[:, 1], p[:, 2]], -1)

    def heading_and_lean(self, x: np.ndarray, speed_mps: float) -> tuple[np.ndarray, np.ndarray]:
        """Heading at ``x`` and the lean into the curve, ``atan(v^2 kappa / g)`` (rad,
        positive to the right)."""
        kappa = np.interp(x, self.x, self.kappa)
        return np.interp(x, self.x, self.psi), np.arctan(speed_mps**2 * kappa / G_MPS2)


def _turned(
    r: np.ndarray, w: np.ndarray, psi: np.ndarray, lean: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """A segment's rotation ``Rz(psi) Rx(lean) R`` and its body rate: the old rate plus
    ``R^T (Rx(lean)^T [0, 0, psi'] + [lean', 0, 0])``."""
    dpsi, dlean = np.gradient(psi, dt), np.gradient(lean, dt)
    w_q = np.stack([dlean, dpsi * np.sin(lean), dpsi * np.cos(lean)], -1)
    return _rot_zyx(psi, np.zeros_like(psi), lean) @ r, w + np.einsum("nji,nj->ni", r, w_q)
