"""Estimator settings: baseline learning and the coach-set fault thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from companion.settings import setting


@dataclass(frozen=True)
class EstimatorSettings:
    baseline_strides: int = setting(
        20, "Relaxed strides per sensor used to learn the runner's baseline.", min=5, max=500
    )
    rigid_range_drop_pct: float = setting(
        35.0,
        "Rigid when the stride's angular range falls this much below baseline.",
        min=5.0,
        max=90.0,
        unit="%",
    )
    forced_dorsiflexion_deg: float = setting(
        8.0,
        "Forced dorsiflexion when the foot strike angle is this far above baseline.",
        min=2.0,
        max=45.0,
        unit="deg",
    )
    forced_plantarflexion_deg: float = setting(
        8.0,
        "Forced plantarflexion when the foot strike angle is this far below baseline.",
        min=2.0,
        max=45.0,
        unit="deg",
    )
