"""The sensor and its link: what an IMU strapped to a segment measures from the leg's
motion, and what of it reaches the host, when.

* :func:`specific_force_and_rate`: accelerometer (specific force, with impact transients
  and tissue smoothing) and gyroscope in the sensor's axes, averaged down to the output
  rate (the sensor's anti-alias filter).
* :func:`measured`: bias, noise, quantisation and saturation at the ranges.
* :func:`device_times` / :func:`host_times`: the timestamps (the sensor's drifting clock
  with jitter, or the host's clock at each packet's arrival spread over its samples).
* :func:`kept`: which samples arrive (whole BLE packets lost, long dropouts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from companion.source.sim.kinematics import _Leg, _LegMotion
from companion.types import G_MPS2


def _impacts(
    t: np.ndarray, t_ic: np.ndarray, amp_mps2: np.ndarray, freq_hz: float, tau_s: float
) -> np.ndarray:
    """Zero-net-impulse damped oscillation after each IC (amplitude at onset).

    ``a(t) = A e^{-t/tau} (cos wt - sin wt / (w tau))`` is the derivative of
    ``e^{-t/tau} sin wt`` scaled, so it integrates to zero: it shakes the sensor
    without adding a velocity an estimator would have to explain.
    """
    out = np.zeros_like(t)
    idx = np.searchsorted(t_ic, t, side="right") - 1
    since = t - t_ic[np.maximum(idx, 0)]
    m = (idx >= 0) & (since < 6 * tau_s)
    w = 2 * np.pi * freq_hz
    s = since[m]
    out[m] = amp_mps2[idx[m]] * np.exp(-s / tau_s) * (np.cos(w * s) - np.sin(w * s) / (w * tau_s))
    return out


def specific_force_and_rate(
    leg: _Leg,
    mo: _LegMotion,
    segment: str,
    t_fine: np.ndarray,
    n_out: int,
    mount: np.ndarray,
    srng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Accelerometer (m/s², specific force) and gyroscope (deg/s) in the sensor's axes at
    the output rate, before bias, noise, quantisation and saturation."""
    m = len(t_fine) // n_out
    dt = float(t_fine[1] - t_fine[0])
    fs = 1.0 / dt
    pos = mo.foot_pos if segment == "foot" else mo.shank_pos
    rot = mo.r_foot if segment == "foot" else mo.r_shank
    w_seg = mo.w_foot if segment == "foot" else mo.w_shank
    acc_world = np.gradient(np.gradient(pos, dt, axis=0), dt, axis=0)
    # tissue and strap compliance: the path's corners (touchdown, forefoot landing)
    # reach the sensor spread over a few ms (shank: the leg's soft tissue, more)
    sigma_s = 0.003 if segment == "foot" else 0.010
    acc_world = gaussian_filter1d(acc_world, sigma_s * fs, axis=0, mode="nearest")
    f_world = acc_world - np.array([0.0, 0.0, G_MPS2])
    # impact transient, mostly vertical (up = -z) with a posterior part
    if segment == "foot":
        amp = leg.foot_impact_g * G_MPS2
        imp = _impacts(t_fine, leg.t_ic, amp, float(srng.uniform(45, 75)), 0.010)
        f_world[:, 2] -= imp
        if mo.heading is None:
            f_world[:, 0] -= 0.4 * imp
        else:  # posterior along the course
            f_world[:, 0] -= 0.4 * imp * np.cos(mo.heading)
            f_world[:, 1] -= 0.4 * imp * np.sin(mo.heading)
    else:
        amp = 0.25 * leg.impact_g * G_MPS2  # peak tibial acceleration: several g
        imp = _impacts(t_fine, leg.t_ic, amp, float(srng.uniform(18, 30)), 0.018)
        f_world -= imp[:, None] * (rot @ np.array([0.0, 0.0, 1.0]))  # along the shank, up
    f_seg = np.einsum("nji,nj->ni", rot, f_world)
    acc_s = f_seg @ mount  # (M^T f)^T = f^T M
    gyr_s = np.degrees(w_seg) @ mount
    # sensor anti-alias: average the fine grid down to the output rate
    return acc_s.reshape(n_out, m, 3).mean(axis=1), gyr_s.reshape(n_out, m, 3).mean(axis=1)


@dataclass(frozen=True)
class Hardware:
    """One sensor's imperfections: bias and noise (of random direction), ranges, ADC."""

    noise_acc_mps2: float
    noise_gyr_dps: float
    bias_acc_mps2: float
    bias_gyr_dps: float
    acc_range_g: float
    gyr_range_dps: float
    adc_bits: int = 16


def measured(
    acc: np.ndarray, gyr: np.ndarray, hw: Hardware, srng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """What the sensor reports: a constant bias of random direction, white noise, then
    quantisation to ``adc_bits`` over the range and saturation at the range (the output
    register holds its largest code while the true value is beyond it)."""
    acc_range = hw.acc_range_g * G_MPS2
    lsb_acc = 2 * acc_range / 2**hw.adc_bits
    lsb_gyr = 2 * hw.gyr_range_dps / 2**hw.adc_bits
    ba = srng.normal(size=3)
    ba *= hw.bias_acc_mps2 / max(np.linalg.norm(ba), 1e-12)
    bg = srng.normal(size=3)
    bg *= hw.bias_gyr_dps / max(np.linalg.norm(bg), 1e-12)
    acc = acc + ba + hw.noise_acc_mps2 * srng.normal(size=acc.shape)
    gyr = gyr + bg + hw.noise_gyr_dps * srng.normal(size=gyr.shape)
    acc = np.clip(np.round(acc / lsb_acc) * lsb_acc, -acc_range, acc_range)
    gyr = np.clip(np.round(gyr / lsb_gyr) * lsb_gyr, -hw.gyr_range_dps, hw.gyr_range_dps)
    return acc, gyr


def device_clock(t_s: np.ndarray, clock_ppm: float, clock_offset_s: float) -> np.ndarray:
    """The sensor's clock at true times ``t_s``: it started at ``clock_offset_s`` and runs
    ``clock_ppm`` parts per million fast (negative: slow)."""
    if clock_ppm == 0.0 and clock_offset_s == 0.0:
        return t_s.copy()
    return clock_offset_s + t_s * (1.0 + 1e-6 * clock_ppm)


def device_times(
    clock: np.ndarray, rate_hz: float, jitter_s: float, srng: np.random.Generator
) -> np.ndarray:
    """Timestamps from the sensor's clock with jitter (std ``jitter_s``, clipped to 0.45
    periods so time still strictly increases)."""
    ts = clock.copy()
    if jitter_s > 0:
        n = len(ts)
        ts = ts + np.clip(srng.normal(0.0, jitter_s, n), -0.45 / rate_hz, 0.45 / rate_hz)
    return ts


def host_times(
    t_s: np.ndarray,
    keep: np.ndarray,
    packet_size: int,
    rate_hz: float,
    ble_interval_ms: float,
    clock_offset_s: float,
    xrng: np.random.Generator,
) -> np.ndarray:
    """Timestamps a host gives batched samples when they arrive (for the kept samples).

    Each packet of ``packet_size`` samples is ready at its last sample (plus 1 ms), goes
    out at the next BLE connection event (every ``ble_interval_ms``, in order) and is
    stamped on arrival after the host's own latency (exponential, mean 1.5 ms). The host
    spreads each packet's samples evenly back from its arrival, over the time since the
    previous packet arrived divided by the samples sent since (it counts lost packets by
    their sequence numbers): steps between samples vary with every packet, time strictly
    increases, and a packet late at one event squeezes the next.
    """
    n = len(t_s)
    n_pk = -(-n // packet_size)
    first = np.arange(n_pk) * packet_size
    last = np.minimum(first + packet_size, n) - 1
    ci = ble_interval_ms / 1000.0
    phase = float(xrng.uniform(0.0, ci))
    ready = t_s[last] + 0.001
    event = phase + np.ceil((ready - phase) / ci) * ci
    arrival = clock_offset_s + event + xrng.exponential(0.0015, n_pk)
    arrival = np.maximum.accumulate(arrival)
    arrival += np.arange(n_pk) * 1e-7  # strictly increasing, even when two share an event
    received = keep[first]
    out = np.full(n, np.nan)
    prev_k, prev_t = -1, np.nan
    for k in np.flatnonzero(received):
        a, b = int(first[k]), int(last[k]) + 1
        sent = b - int(first[prev_k + 1])  # samples sent since the previous arrival
        step = 1.0 / rate_hz if prev_k < 0 else (arrival[k] - prev_t) / sent
        out[a:b] = arrival[k] - (b - 1 - np.arange(a, b)) * step
        prev_k, prev_t = int(k), float(arrival[k])
    return out


def kept(
    n: int,
    rate_hz: float,
    packet_size: int,
    packet_loss: float,
    dropouts_per_min: float,
    dropout_max_s: float,
    srng: np.random.Generator,
    xrng: np.random.Generator,
) -> np.ndarray:
    """Which of ``n`` samples arrive: ``packet_loss`` of the whole packets are lost (at
    random), and dropouts (a Poisson process of ``dropouts_per_min``, each 0.2 s to
    ``dropout_max_s`` long: the body shadowing the 2.4 GHz link) lose every packet they
    touch."""
    keep = np.ones(n, dtype=bool)
    n_pk = -(-n // packet_size)
    if packet_loss > 0:
        n_drop = round(packet_loss * n_pk)
        drop = srng.choice(n_pk, size=n_drop, replace=False)
        pk_keep = np.ones(n_pk, dtype=bool)
        pk_keep[drop] = False
        keep = np.repeat(pk_keep, packet_size)[:n]
    if dropouts_per_min > 0:
        duration_s = n / rate_hz
        k = int(xrng.poisson(dropouts_per_min * duration_s / 60.0))
        starts = xrng.uniform(0.0, duration_s, k)
        lengths = xrng.uniform(0.2, max(0.2, dropout_max_s), k)
        pk_t0 = np.arange(n_pk) * packet_size / rate_hz
        pk_t1 = pk_t0 + packet_size / rate_hz
        pk_keep = np.ones(n_pk, dtype=bool)
        for a, ln in zip(starts, lengths, strict=True):
            pk_keep &= (pk_t1 <= a) | (pk_t0 >= a + ln)
        keep &= np.repeat(pk_keep, packet_size)[:n]
    return keep


def packet_samples(packet_size: int, rate_hz: float) -> int:
    """Samples per BLE packet: as given, or (0) about 20 ms worth."""
    return packet_size or max(1, round(0.02 * rate_hz))
