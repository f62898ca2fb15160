"""Per-stride features from a segment's angles and rates around one stride.

Plain functions on arrays: ``tilt`` (n, 2) pitch and roll in deg, rates in deg/s in the
segment frame, all over the same samples, and a :class:`StrideIndex` saying where in
them the stride's events are. Feature names carry their units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.types import G_MPS2

LANDING_S = 0.15
"""The landing angle is the highest the toes come up in this long before contact."""
STILL_DPS = 50.0
"""A stance sample turning slower than this counts towards ``still_ms``."""


@dataclass(frozen=True)
class StrideIndex:
    """Positions of one stride's events in the arrays a feature function gets."""

    ic: int
    """The stride's initial contact."""
    to: int
    """Its toe-off."""
    anchor: int
    """Its stance's anchor instant (the foot lying stillest)."""
    ic_next: int
    """The next initial contact (the stride's end)."""
    ic_frac: float = 0.0
    """Where the contact fell, in samples from ``ic`` (-0.5: half a sample before it)."""


def toe_off(g_ml: np.ndarray, lo: int, hi: int) -> int | None:
    """Toe-off: the lowest sagittal rate (fastest push-off) in rows ``[lo, hi)``
    (Falbriard et al. 2018: the second half of the mid-swing to mid-swing cycle)."""
    if hi - lo < 2:
        return None
    return lo + int(np.argmin(g_ml[lo:hi]))


def resample(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (samples evenly spread over a stride) at ``n`` evenly spread points."""
    if len(x) < 2:
        return np.full(n, float(x[0]) if len(x) else np.nan)
    return np.interp(np.linspace(0.0, len(x) - 1.0, n), np.arange(len(x)), x)


def foot_features(
    tilt: np.ndarray,
    g_seg: np.ndarray,
    g_norm: np.ndarray,
    ev: StrideIndex,
    rate_hz: float,
) -> dict[str, float]:
    """What one stride of a segment looked like (used for a foot and, in part, a shank).

    * ``strike_angle_deg``: the angle at initial contact (toes up positive);
    * ``landing_peak_deg``: the highest the toes come up in the last 150 ms before
      contact (does not move with the contact's exact timing);
    * ``midstance_deg``: the angle at the stance's anchor (a heel kept up is negative);
    * ``stance_excursion_deg``: how far the foot turns from contact to mid-stance (heel
      lowering for a heel strike, the heel coming down for a forefoot strike);
    * ``stride_range_deg``, ``pushoff_deg`` (the lowest angle, after toe-off);
    * ``still_ms``, ``midstance_rate_dps``, ``stance_still_dps``: how still the segment
      gets in stance (a relaxed foot lies flat while the shank turns over it);
    * ``frontal_ic_deg``, ``frontal_range_deg``: the roll at contact and over the stride;
    * timing: ``stride_s``, ``cadence_spm``, ``contact_ms``.
    """
    fs = rate_hz
    pitch, roll = tilt[:, 0], tilt[:, 1]
    ic, to, an, nx = ev.ic, ev.to, ev.anchor, ev.ic_next
    g_ml = g_seg[:, 1]
    mid = g_ml[ic + round(0.25 * (to - ic)) : ic + round(0.6 * (to - ic)) + 1]
    h = max(1, round(0.01 * fs))
    return {
        "stride_s": (nx - ic) / fs,
        "cadence_spm": 120.0 * fs / (nx - ic),
        "contact_ms": 1000.0 * (to - ic) / fs,
        # at the contact itself: from the sample after it, at that sample's rate (the rate
        # changes abruptly at contact, so the sample before it says nothing of after)
        "strike_angle_deg": float(pitch[ic] + g_ml[ic] * ev.ic_frac / fs),
        "landing_peak_deg": float(pitch[max(0, ic - round(LANDING_S * fs)) : ic + 1].max()),
        "midstance_deg": float(pitch[an]),
        "stance_excursion_deg": float(np.ptp(pitch[ic : an + 1])),
        "stride_range_deg": float(np.ptp(pitch[ic : nx + 1])),
        "pushoff_deg": float(pitch[an : nx + 1].min()),
        "still_ms": 1000.0 * float(np.sum(np.abs(g_ml[ic:to]) < STILL_DPS)) / fs,
        "midstance_rate_dps": float(np.mean(np.abs(mid))) if len(mid) else 0.0,
        "stance_still_dps": float(g_norm[max(0, an - h) : an + h + 1].mean()),
        "frontal_ic_deg": float(roll[ic]),
        "frontal_range_deg": float(np.ptp(roll[ic : nx + 1])),
    }


def shank_features(
    f: dict[str, float], a_seg: np.ndarray, ev: StrideIndex, rate_hz: float
) -> dict[str, float]:
    """A shank's stride: its timing and angles, and the peak tibial acceleration (g) in
    the 60 ms after contact."""
    fs = rate_hz
    keep = ("stride_s", "cadence_spm", "contact_ms", "strike_angle_deg", "stride_range_deg")
    out = {k: f[k] for k in keep}
    out.update({k: f[k] for k in ("filled_ms", "clipped_ms", "zupt", "frontal_ic_deg") if k in f})
    w0 = max(0, ev.ic - round(0.01 * fs))
    w1 = ev.ic + round(0.06 * fs) + 1
    a = a_seg[w0:w1]
    out["pta_g"] = float(np.sqrt(np.sum(a * a, axis=1)).max() / G_MPS2)
    return out
