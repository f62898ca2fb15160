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
LANDING_FEATURES = (
    "landing_deg",
    "strike_angle_deg",
    "landing_peak_deg",
    "stance_excursion_deg",
    "midstance_deg",
    "still_ms",
    "midstance_rate_dps",
    "stance_still_dps",
)
"""The features that need the landing and the stance (not reported when lost in a gap)."""
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


STILLEST_S = 0.02
"""How still a segment gets in stance: its mean rotation rate over its stillest stretch of
this length, and at least two samples (a relaxed foot lies flat for a few tens of ms
while the shank turns over it)."""


def stillest_dps(g_norm: np.ndarray, rate_hz: float) -> float:
    """The lowest mean of ``g_norm`` (deg/s) over :data:`STILLEST_S` (at least 2 samples)."""
    w = max(2, round(STILLEST_S * rate_hz))
    if len(g_norm) < w:
        return float(g_norm.mean()) if len(g_norm) else 0.0
    c = np.concatenate(([0.0], np.cumsum(g_norm)))
    return float(((c[w:] - c[:-w]) / w).min())


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

    * ``landing_deg``: the landing angle the forced-angle labels are judged on, the mean of
      the next two;
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
    # at the contact itself: from the sample after it, at that sample's rate (the rate
    # changes abruptly at contact, so the sample before it says nothing of after)
    strike = float(pitch[ic] + g_ml[ic] * ev.ic_frac / fs)
    peak = float(pitch[max(0, ic - round(LANDING_S * fs)) : ic + 1].max())
    return {
        # the strike angle (sharp, but moves with the contact's exact timing) and the
        # approach's highest angle (which does not) measure the same landing: their mean
        "landing_deg": 0.5 * (strike + peak),
        "stride_s": (nx - ic) / fs,
        "cadence_spm": 120.0 * fs / (nx - ic),
        "contact_ms": 1000.0 * (to - ic) / fs,
        "strike_angle_deg": strike,
        "landing_peak_deg": peak,
        "midstance_deg": float(pitch[an]),
        "stance_excursion_deg": float(np.ptp(pitch[ic : an + 1])),
        "stride_range_deg": float(np.ptp(pitch[ic : nx + 1])),
        "pushoff_deg": float(pitch[an : nx + 1].min()),
        "still_ms": 1000.0 * float(np.sum(np.abs(g_ml[ic:to]) < STILL_DPS)) / fs,
        "midstance_rate_dps": float(np.mean(np.abs(mid))) if len(mid) else 0.0,
        "stance_still_dps": stillest_dps(g_norm[ic : to + 1], fs),
        "frontal_ic_deg": float(roll[ic]),
        "frontal_range_deg": float(np.ptp(roll[ic : nx + 1])),
    }


def shank_features(
    f: dict[str, float], a_seg: np.ndarray, ev: StrideIndex, rate_hz: float
) -> dict[str, float]:
    """A shank's stride: its timing and angles, and the peak tibial acceleration (g) in
    the 60 ms after contact."""
    fs = rate_hz
    keep = (
        "stride_s",
        "cadence_spm",
        "contact_ms",
        "strike_angle_deg",
        "stride_range_deg",
        "filled_ms",
        "clipped_ms",
        "lost_ms",
        "zupt",
        "frontal_ic_deg",
    )
    out = {k: f[k] for k in keep if k in f}
    w0 = max(0, ev.ic - round(0.01 * fs))
    w1 = ev.ic + round(0.06 * fs) + 1
    a = a_seg[w0:w1]
    out["pta_g"] = float(np.sqrt(np.sum(a * a, axis=1)).max() / G_MPS2)
    return out
