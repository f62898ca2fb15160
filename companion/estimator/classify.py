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

BASELINE_FEATURES: dict[str, tuple[str, ...]] = {
    "foot": (
        "landing_deg",
        "strike_angle_deg",
        "stance_excursion_deg",
        "stride_range_deg",
        "landing_peak_deg",
        "pushoff_deg",
        "still_ms",
        "midstance_rate_dps",
        "stance_still_dps",
        "midstance_deg",
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
    skip: int = 0
    max_turn_deg: float = 45.0
    """Strides that turned more than this are not learned from."""
    """Strides to pass over before learning (the first strides of a run: the runner
    settles into the pace, the estimator learns the landings and the anchor offsets)."""
    _rows: list[dict[str, float]] = field(default_factory=list)
    _seen: int = 0

    @property
    def ready(self) -> bool:
        return bool(self.stats)

    def add(self, features: dict[str, float]) -> None:
        """Learn from one stride until ``target`` strides have been seen."""
        if self.ready:
            return
        self._seen += 1
        if self._seen <= self.skip or features.get("zupt", 1.0) == 0.0:
            # a run's first strides, and strides whose tilt no clean cycle anchored
            return
        if features.get("turn_deg", 0.0) > self.max_turn_deg:
            return  # a sharp turn: not how this runner lands running on
        if "landing_deg" not in features and "pta_g" not in features:
            return  # its landing was lost in a gap
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


CRITERIA: tuple[tuple[str, str, int, str, str, str], ...] = (
    (Label.FORCED_DORSIFLEXION.value, "landing_deg", +1, "forced_dorsiflexion_deg", "abs", "any"),
    # toes held up show in the approach's highest angle whatever the contact's timing
    (
        Label.FORCED_DORSIFLEXION.value,
        "landing_peak_deg",
        +1,
        "forced_dorsiflexion_deg",
        "abs",
        "any",
    ),
    (
        Label.FORCED_PLANTARFLEXION.value,
        "landing_deg",
        -1,
        "forced_plantarflexion_deg",
        "abs",
        "any",
    ),
    (Label.RIGID.value, "stance_still_dps", +1, "rigid_midstance_rate_dps", "abs", "any"),
    (Label.RIGID.value, "ankle_rom_deg", -1, "rigid_range_drop_pct", "pct", "ankle"),
)
"""The rules, as data (what a report draws): ``(label, feature, direction, setting, scale,
needs)``: the label is given when the stride's ``feature`` moves ``direction`` from the
runner's relaxed median by more than the ``setting`` of
:class:`~companion.estimator.settings.EstimatorSettings` (``scale = "pct"``: in percent
of the median), or by more than the noise guard when that is larger; ``needs =
"ankle"``: only with a shank partner. A label with several rules takes the strongest."""


def _confidence(score: float) -> float:
    """0.5 at the threshold, 1.0 at twice the threshold."""
    return float(np.clip(0.5 + 0.5 * (score - 1.0), 0.5, 1.0))


def rule_threshold(
    setting: str, scale: str, base: FeatureStats, settings: EstimatorSettings
) -> float | None:
    """The coach's threshold of a rule in the feature's unit (a percentage of the runner's
    median for ``scale == "pct"``); None where the median is too small to take a share of."""
    need = float(getattr(settings, setting))
    if scale == "pct":
        if base.median <= 1.0:
            return None
        need = need / 100.0 * base.median
    return need


def guard_width(base: FeatureStats, settings: EstimatorSettings) -> float:
    """The noise guard: ``noise_guard_mads`` robust SDs of the runner's relaxed spread."""
    return settings.noise_guard_mads * MAD_TO_SD * base.mad


def rule_scores(
    features: dict[str, float], baseline: Baseline, settings: EstimatorSettings
) -> dict[str, float]:
    """Each label's score: the largest of its rules' (change from baseline, in the
    direction of the rule) / threshold, the threshold raised to ``noise_guard_mads``
    robust SDs of the runner's relaxed spread when that is larger (1.0 = just at it)."""
    st = baseline.stats
    out: dict[str, float] = {}
    for label, name, direction, setting, scale, _needs in CRITERIA:
        base = st.get(name)
        if base is None or name not in features:
            continue
        need = rule_threshold(setting, scale, base, settings)
        if need is None:
            continue
        score = direction * (features[name] - base.median) / max(need, guard_width(base, settings))
        out[label] = max(out.get(label, -np.inf), score)
    return out


def classify(
    features: dict[str, float], baseline: Baseline, settings: EstimatorSettings
) -> Decision:
    """Label one stride against the baseline (:data:`CRITERIA`, :func:`rule_scores`).

    A forced landing is measured directly (the landing angle, the mean of the strike
    angle and the highest angle of the approach; toes held up also by that highest angle
    alone, which does not move with the contact's timing: at 50 Hz a heel strike's
    contact comes late, later still with the toes up, and its strike angle hardly moves)
    and wins whenever it is past its threshold: a held ankle often also turns the foot in
    mid-stance, and a pointed foot pivots on its forefoot, so the stillness rule alone
    would take both for rigid. Rigid wins otherwise, from the foot's stillness in stance
    or, with a shank sensor, from the ankle's own range (the larger: adding a sensor never
    hides what the foot showed).
    """
    if baseline.segment != "foot" or not baseline.ready:
        return Decision(Label.RELAXED, 1.0, {})
    scores = rule_scores(features, baseline, settings)
    if not scores:
        return Decision(Label.RELAXED, 1.0, {})
    forced = [
        lab for lab in (Label.FORCED_DORSIFLEXION, Label.FORCED_PLANTARFLEXION) if lab in scores
    ]
    best = max(forced, key=lambda lab: scores[lab]) if forced else None
    if best is not None and scores[best] >= 1.0:
        return Decision(best, _confidence(scores[best]), scores)
    if scores.get(Label.RIGID, 0.0) >= 1.0:
        return Decision(Label.RIGID, _confidence(scores[Label.RIGID]), scores)
    top = max(scores.values())
    return Decision(Label.RELAXED, float(np.clip(1.0 - 0.5 * max(top, 0.0), 0.5, 1.0)), scores)
