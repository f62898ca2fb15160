"""A small, independent synthetic foot/shank IMU signal for the estimator's unit tests.

Not the project's simulator: a planar model whose foot angle follows a few
textbook key points per stride (strike, foot flat, push-off, swing), so the
streaming machinery can be tested on its own. Angles in degrees, toes up positive.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from companion.types import G_MPS2, SampleBatch


def _impact(t: np.ndarray, ic: float, amp_g: float = 10.0) -> np.ndarray:
    """A landing transient: a damped 60 Hz ring starting at the contact."""
    dt = t - ic
    on = (dt >= 0) & (dt < 0.06)
    out = np.zeros_like(t)
    out[on] = amp_g * G_MPS2 * np.exp(-dt[on] / 0.01) * np.cos(2 * np.pi * 60.0 * dt[on])
    return out


def foot_angle(
    t: np.ndarray, stride_s: float, strike_deg: float, pushoff_deg: float, contact_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Foot angle over time, and the IC times (IC at every multiple of ``stride_s``)."""
    ph = np.mod(t, stride_s)
    c = contact_s
    # key points: IC strike -> flat -> flat -> push-off at TO -> late swing toes up -> strike
    kx = [0.0, 0.06, 0.55 * c, c, c + 0.5 * (stride_s - c), stride_s - 0.03, stride_s]
    ky = [strike_deg, 0.0, 0.0, pushoff_deg, strike_deg + 5.0, strike_deg + 1.0, strike_deg]
    ang = np.interp(ph, kx, ky)
    ics = np.arange(0.0, t[-1] + 1e-9, stride_s)
    return ang, ics


def make_stream(
    duration_s: float = 30.0,
    rate_hz: float = 200.0,
    *,
    stride_s: float = 0.72,
    strike_deg: float = 12.0,
    pushoff_deg: float = -60.0,
    contact_s: float = 0.24,
    mount: Rotation | None = None,
    noise_dps: float = 2.0,
    seed: int = 0,
    t0: float = 1.0,
    segment_angles: list[tuple[float, float, float]] | None = None,
) -> tuple[SampleBatch, np.ndarray]:
    """A foot sensor stream (sensor axes) and its true IC times.

    ``segment_angles`` optionally lists ``(start_s, end_s, strike_deg)`` pieces that
    change the strike angle over a time range (a "fault").
    """
    rng = np.random.default_rng(seed)
    fine = 2000.0
    tf = np.arange(0.0, duration_s, 1.0 / fine)
    ang, ics = foot_angle(tf, stride_s, strike_deg, pushoff_deg, contact_s)
    if segment_angles:
        for a, b, s in segment_angles:
            m = (tf >= a) & (tf < b)
            ang2, _ = foot_angle(tf, stride_s, s, pushoff_deg, contact_s)
            ang[m] = ang2[m]
    ang = gaussian_filter1d(ang, 0.012 * fine)
    rate = np.gradient(ang, 1.0 / fine)  # deg/s about ml, toes up positive
    th = np.radians(ang)
    # specific force in the segment frame (x fwd, y right, z down): gravity up rotated
    acc_seg = np.column_stack([G_MPS2 * np.sin(th), np.zeros_like(th), -G_MPS2 * np.cos(th)])
    # forward acceleration then braking of the foot in swing (world frame), ~±3 g
    ph = np.mod(tf, stride_s)
    sw = (ph > contact_s) & (ph < stride_s - 0.02)
    u = np.where(sw, (ph - contact_s) / (stride_s - 0.02 - contact_s), 0.0)
    a_fwd = np.where(sw, 3.0 * G_MPS2 * np.sin(2 * np.pi * u), 0.0)
    acc_seg[:, 0] += a_fwd * np.cos(th)
    acc_seg[:, 2] += a_fwd * np.sin(th)
    # an impact at each IC, along the segment's up axis
    for ic in ics:
        acc_seg[:, 2] -= _impact(tf, ic)
    gyr_seg = np.column_stack([np.zeros_like(rate), rate, np.zeros_like(rate)])
    ts = np.arange(0.0, duration_s - 0.01, 1.0 / rate_hz)
    idx = np.clip(np.rint(ts * fine).astype(int), 0, len(tf) - 1)
    acc = acc_seg[idx]
    gyr = gyr_seg[idx] + rng.normal(0.0, noise_dps, (len(ts), 3))
    acc = acc + rng.normal(0.0, 0.05, acc.shape)
    if mount is not None:
        # sensor axes: v_sensor = M^T v_segment
        m = mount.as_matrix()
        acc = acc @ m
        gyr = gyr @ m
    return SampleBatch("foot", ts + t0, acc, gyr), ics + t0


def _imu_from_angle(
    tf: np.ndarray, ang: np.ndarray, ics: np.ndarray, stride_s: float, contact_s: float
) -> tuple[np.ndarray, np.ndarray]:
    fine = 1.0 / (tf[1] - tf[0])
    ang = gaussian_filter1d(ang, 0.012 * fine)
    rate = np.gradient(ang, 1.0 / fine)
    th = np.radians(ang)
    acc = np.column_stack([G_MPS2 * np.sin(th), np.zeros_like(th), -G_MPS2 * np.cos(th)])
    ph = np.mod(tf, stride_s)
    sw = (ph > contact_s) & (ph < stride_s - 0.02)
    u = np.where(sw, (ph - contact_s) / (stride_s - 0.02 - contact_s), 0.0)
    a_fwd = np.where(sw, 2.0 * G_MPS2 * np.sin(2 * np.pi * u), 0.0)
    acc[:, 0] += a_fwd * np.cos(th)
    acc[:, 2] += a_fwd * np.sin(th)
    for ic in ics:
        acc[:, 2] -= _impact(tf, ic)
    gyr = np.column_stack([np.zeros_like(rate), rate, np.zeros_like(rate)])
    return acc, gyr


def make_leg(
    duration_s: float = 40.0,
    rate_hz: float = 200.0,
    *,
    stride_s: float = 0.72,
    contact_s: float = 0.24,
    ankle_scale: list[tuple[float, float, float]] | None = None,
    mounts: dict[str, Rotation] | None = None,
    seed: int = 0,
) -> tuple[dict[str, SampleBatch], np.ndarray]:
    """Foot and shank sensors of one leg, foot = shank + ankle (sagittal, degrees).

    ``ankle_scale`` lists ``(start_s, end_s, factor)`` pieces that scale the ankle's
    motion (a rigid ankle: factor well below 1).
    """
    rng = np.random.default_rng(seed)
    fine = 2000.0
    tf = np.arange(0.0, duration_s, 1.0 / fine)
    ph = np.mod(tf, stride_s)
    c = contact_s
    # shank: +8 at IC, rotating forward over the foot to -35 at toe-off, swinging back
    shank = np.interp(ph, [0.0, c, c + 0.5 * (stride_s - c), stride_s], [8.0, -35.0, 25.0, 8.0])
    foot, _ = foot_angle(tf, stride_s, 12.0, -60.0, contact_s)
    ankle = foot - shank
    if ankle_scale:
        mean = float(np.mean(ankle))
        for a, b, f in ankle_scale:
            m = (tf >= a) & (tf < b)
            ankle[m] = mean + (ankle[m] - mean) * f
    ics = np.arange(0.0, duration_s, stride_s)
    ts = np.arange(0.0, duration_s - 0.01, 1.0 / rate_hz)
    idx = np.clip(np.rint(ts * fine).astype(int), 0, len(tf) - 1)
    out: dict[str, SampleBatch] = {}
    for name, ang in (("foot", shank + ankle), ("shank", shank)):
        acc, gyr = _imu_from_angle(tf, ang, ics, stride_s, contact_s)
        acc = acc[idx] + rng.normal(0.0, 0.05, (len(ts), 3))
        gyr = gyr[idx] + rng.normal(0.0, 2.0, (len(ts), 3))
        if mounts and name in mounts:
            m = mounts[name].as_matrix()
            acc, gyr = acc @ m, gyr @ m
        out[name] = SampleBatch(name, ts + 1.0, acc, gyr)
    return out, ics + 1.0
