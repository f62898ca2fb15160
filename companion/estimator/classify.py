"""The runner's relaxed baseline and the per-stride label.

Faults are judged only against the runner's *own* relaxed strides, with the
coach-set thresholds of :class:`~companion.estimator.settings.EstimatorSettings`
(degrees and percent). A robust noise guard keeps a runner whose relaxed strides
naturally vary a lot from being flagged by that variation alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from companion.estimator.settings import EstimatorSettings
from companion.types import Label

MAD_TO_SD = 1.4826
"""Scale that makes the median absolute deviation an SD estimate for normal data."""
RANGE_GAIN_MIN_DEG = 3.0
"""Foot only: a stride whose range exceeds the relaxed median by more than this (and the
noise guard) moved more, not less, and is not called rigid on its mid-stance rate alone."""

BASELINE_FEATURES: dict[str, tuple[str, ...]] = {
    "foot": (
        "strike_angle_deg",
        "stance_excursion_deg",
        "stride_range_deg",
        "landing_peak_deg",
        "pushoff_deg",
        "still_ms",
        "midstance_rate_dps",
        "stance_still_dps",
        "contact_ms",
        "stride_s",
        "ankle_ic_deg",
        "ankle_rom_deg",
        "ankle_stance_df_deg",
        "ankle_still_ms",
    ),
    "shank": ("strike_angle_deg", "stride_range_deg", "contact_ms", "stride_s", "pta_g"),
}

SUPPORTED_LABELS: dict[str, frozenset[Label]] = {
    # The foot sensor sees the foot's angle to the ground (= shank + ankle): the strike
    # angle and its heel lowering show forced dorsi-/plantarflexion; a rigid ankle shows as
    # a foot that swings through a much smaller range.
    "foot": frozenset(
        {Label.RELAXED, Label.RIGID, Label.FORCED_DORSIFLEXION, Label.FORCED_PLANTARFLEXION}
    ),
    # The shank sensor never sees the foot: an ankle held up, pointed or stiff changes the
    # shank's own motion only indirectly (impact, contact time), as running faster or
    # slower does. It reports timing and impact, and claims no ankle fault.
    "shank": frozenset({Label.RELAXED}),
}


@dataclass
class FeatureStats:
    median: float
    mad: float

    def to_json(self) -> dict[str, float]:
        return {"median": self.median, "mad": self.mad}


@dataclass
class Baseline:
    """Median and MAD of each feature over a runner's first relaxed strides."""

    segment: str
    target: int
    stats: dict[str, FeatureStats] = field(default_factory=dict)
    _rows: list[dict[str, float]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return bool(self.stats)

    def add(self, features: dict[str, float]) -> None:
        """Learn from one stride until ``target`` strides have been seen."""
        if self.ready:
            return
        self._rows.append(features)
        if len(self._rows) >= self.target:
            self.stats = {}
            for name in BASELINE_FEATURES.get(self.segment, ()):
                vals = np.array([r[name] for r in self._rows if name in r], dtype=float)
                vals = vals[np.isfinite(vals)]
                if len(vals) == 0:
                    continue
                med = float(np.median(vals))
                self.stats[name] = FeatureStats(med, float(np.median(np.abs(vals - med))))
            self._rows.clear()


@dataclass(frozen=True)
class Decision:
    label: Label
    confidence: float
    scores: dict[str, float]


def _confidence(score: float) -> float:
    """0.5 at the threshold, 1.0 at twice the threshold."""
    return float(np.clip(0.5 + 0.5 * (score - 1.0), 0.5, 1.0))


def classify(
    features: dict[str, float], baseline: Baseline, settings: EstimatorSettings
) -> Decision:
    """Label one stride against the baseline.

    Scores are the feature's change from baseline divided by its threshold (1.0 =
    just at the coach's threshold); the threshold is raised to
    ``noise_guard_mads`` robust SDs of the runner's relaxed variation when that is
    larger. The highest score >= 1 wins; otherwise the stride is relaxed.
    """
    if baseline.segment != "foot" or not baseline.ready:
        return Decision(Label.RELAXED, 1.0, {})
    st = baseline.stats
    guard = settings.noise_guard_mads * MAD_TO_SD
    scores: dict[str, float] = {}
    # the landing angle: the highest the toes come up in the approach to contact (the
    # strike angle for a heel strike). Unlike the angle at the contact sample it does not
    # move with the contact's timing, which is coarse at low sampling rates.
    name = "landing_peak_deg" if "landing_peak_deg" in st else "strike_angle_deg"
    landing = st.get(name)
    if landing is not None and name in features:
        delta = features[name] - landing.median
        scores[Label.FORCED_DORSIFLEXION] = delta / max(
            settings.forced_dorsiflexion_deg, guard * landing.mad
        )
        scores[Label.FORCED_PLANTARFLEXION] = -delta / max(
            settings.forced_plantarflexion_deg, guard * landing.mad
        )
    # rigid: with a shank sensor, the ankle's own range of motion (foot - shank) falls by
    # rigid_range_drop_pct. With the foot alone the ankle is not seen: the foot turns with
    # the shank in mid-stance instead of lying still, or stops pointing at push-off.
    ankle = st.get("ankle_rom_deg")
    foot = st.get("stride_range_deg")
    forced = max(
        scores.get(Label.FORCED_DORSIFLEXION, 0.0), scores.get(Label.FORCED_PLANTARFLEXION, 0.0)
    )
    if ankle is not None and "ankle_rom_deg" in features and ankle.median > 1.0:
        drop_deg = ankle.median - features["ankle_rom_deg"]
        need = settings.rigid_range_drop_pct / 100.0 * ankle.median
        scores[Label.RIGID] = drop_deg / max(need, guard * ankle.mad)
        # the strike angle is measured directly; a held ankle also changes the landing,
        # so a forced landing wins unless the ankle's range itself collapsed
        if forced >= 1.0 and scores[Label.RIGID] < 1.5 * forced:
            scores[Label.RIGID] = min(scores[Label.RIGID], 0.99)
    else:
        mid_score = 0.0
        grew = False
        if foot is not None and "stride_range_deg" in features:
            # a held ankle moves the foot less through the stride: a foot that swings
            # through more than its relaxed range (toes held up, then slapped down) is
            # not held rigid, whatever it does in mid-stance. (A range that only shrank
            # is no sign of its own: pointed toes shrink it as much, by landing lower.)
            change = features["stride_range_deg"] - foot.median
            grew = change > max(guard * foot.mad, RANGE_GAIN_MIN_DEG)
        # how fast the foot still turns at its stillest instant of the stance
        mid = st.get("stance_still_dps")
        if mid is not None and "stance_still_dps" in features and not grew:
            rise = features["stance_still_dps"] - mid.median
            mid_score = rise / max(settings.rigid_midstance_rate_dps, guard * mid.mad)
        # a held ankle pushes off less: the foot's lowest angle (just after toe-off) rises
        push = st.get("pushoff_deg")
        push_score = 0.0
        if push is not None and "pushoff_deg" in features:
            rise = features["pushoff_deg"] - push.median
            push_score = rise / max(settings.rigid_pushoff_rise_deg, guard * push.mad)
        scores[Label.RIGID] = max(mid_score, push_score)
        # A foot that turns with the shank in mid-stance is the held ankle's own sign; a
        # held ankle also shifts the landing angle (a forefoot runner holding the ankle
        # near neutral lands flatter), so then rigid wins over a forced landing. A range
        # that only shrank, or a higher push-off, is weaker evidence: there a forced
        # landing wins.
        if mid_score < 1.0 and forced >= 1.0:
            scores[Label.RIGID] = min(scores[Label.RIGID], 0.99)
        elif mid_score >= 1.0:
            for lab in (Label.FORCED_DORSIFLEXION, Label.FORCED_PLANTARFLEXION):
                if lab in scores:
                    scores[lab] = min(scores[lab], 0.99)
    if not scores:
        return Decision(Label.RELAXED, 1.0, {})
    best = max(scores, key=lambda k: scores[k])
    if scores[best] >= 1.0:
        return Decision(Label(best), _confidence(scores[best]), scores)
    top = max(scores.values())
    return Decision(Label.RELAXED, float(np.clip(1.0 - 0.5 * max(top, 0.0), 0.5, 1.0)), scores)
