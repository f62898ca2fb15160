"""Estimator settings: baseline learning, the coach-set fault thresholds and the
signal-processing windows (all with units; defaults come from running biomechanics,
see docs/estimator.md)."""

from __future__ import annotations

from dataclasses import dataclass

from companion.settings import setting


@dataclass(frozen=True)
class EstimatorSettings:
    baseline_strides: int = setting(
        20, "Relaxed strides per sensor used to learn the runner's baseline.", min=5, max=500
    )
    rigid_range_drop_pct: float = setting(
        20.0,
        "Foot and shank sensors: rigid when the ankle's range of motion falls this much below "
        "baseline.",
        min=5.0,
        max=90.0,
        unit="%",
    )
    rigid_midstance_rate_dps: float = setting(
        25.0,
        "Foot sensor: rigid when the foot still turns this much faster over its stillest "
        "20 ms of the stance than in the runner's relaxed strides (a relaxed ankle lets "
        "the foot lie flat while the shank rotates over it; a held ankle makes the foot "
        "turn with the shank).",
        min=5.0,
        max=300.0,
        unit="deg/s",
    )
    forced_dorsiflexion_deg: float = setting(
        6.0,
        "Forced dorsiflexion when the landing angle (the mean of the foot strike angle and "
        "the highest the toes come up in the approach to contact), or that highest angle "
        "alone, is this far above baseline.",
        min=2.0,
        max=45.0,
        unit="deg",
    )
    forced_plantarflexion_deg: float = setting(
        6.0,
        "Forced plantarflexion when the landing angle is this far below baseline.",
        min=2.0,
        max=45.0,
        unit="deg",
    )
    noise_guard_mads: float = setting(
        2.5,
        "A fault also needs the feature this many robust SDs (1.4826 MAD) of the runner's "
        "own relaxed stride-to-stride spread away from baseline.",
        min=0.0,
        max=20.0,
    )
    ic_lookahead_ms: float = setting(
        60.0,
        "Look-ahead that confirms an initial contact found from the sagittal rate (its "
        "steep rise or bend within the first half of it; adds to the decision latency).",
        min=10.0,
        max=150.0,
        unit="ms",
    )
    max_gap_ms: float = setting(
        400.0,
        "Gaps from lost packets up to this long are bridged (a lost BLE notification is "
        "20-200 ms); a longer gap restarts stride detection after it.",
        min=0.0,
        max=1000.0,
        unit="ms",
    )
    min_swing_peak_dps: float = setting(
        100.0,
        "Smallest sagittal gyro peak accepted as a mid-swing.",
        min=20.0,
        max=1000.0,
        unit="deg/s",
    )
    min_stride_s: float = setting(
        0.4, "Shortest accepted stride (IC to IC of the same foot).", min=0.2, max=2.0, unit="s"
    )
    max_stride_s: float = setting(2.0, "Longest accepted stride.", min=0.5, max=5.0, unit="s")
    max_turn_deg: float = setting(
        45.0,
        "Strides that turn the runner more than this about the vertical are not judged (a "
        "sharp turn or a tight circle changes how each foot lands; a bend of a road or a "
        "track turns a few degrees a stride).",
        min=10.0,
        max=360.0,
        unit="deg",
    )
    align_window_s: float = setting(
        5.0,
        "Seconds of running used to find the sensor's mounting automatically.",
        min=2.0,
        max=8.0,
        unit="s",
    )
