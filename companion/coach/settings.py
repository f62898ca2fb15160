"""Cue-policy settings: persistence, cooldown, which cue answers which fault."""

from __future__ import annotations

from dataclasses import dataclass

from companion.settings import setting


@dataclass(frozen=True)
class CoachSettings:
    persist_k: int = setting(3, "A fault must show in k of the last n strides ...", min=1, max=20)
    persist_n: int = setting(4, "... of the last n strides (per sensor).", min=1, max=30)
    cooldown_s: float = setting(
        10.0, "Quiet time after any fault cue before the next one.", min=0.0, max=600.0, unit="s"
    )
    repeat_s: float = setting(
        20.0,
        "Quiet time before the same fault cue is repeated while the fault goes on.",
        min=0.0,
        max=600.0,
        unit="s",
    )
    positive_cue: bool = setting(True, "Say good_ankle when a cued fault has gone for k strides.")
    positive_min_confidence: float = setting(
        0.75,
        "A stride counts toward the positive cue only when relaxed with at least this "
        "confidence (0.5 = a fault right at its threshold, 0.75 = every fault at most half "
        "its threshold, 1.0 = at the runner's baseline).",
        min=0.5,
        max=1.0,
    )
    min_confidence: float = setting(
        0.5, "Fault strides below this confidence count as relaxed.", min=0.0, max=1.0
    )
    cue_rigid: str = setting("relax_ankle", "Cue id for a rigid ankle.")
    cue_forced_dorsiflexion: str = setting("soft_landing", "Cue id for toes held up.")
    cue_forced_plantarflexion: str = setting("heel_down", "Cue id for toes pointed and held.")
    cue_positive: str = setting("good_ankle", "Cue id after the runner relaxes again.")
    cue_sensor_lost: str = setting("sensor_lost", "Cue id when a sensor's link drops.")
    cue_sensor_back: str = setting("sensor_back", "Cue id when it is back.")
    cue_landing: str = setting(
        "landing_tone",
        "Tone-only cue id played at each landing judged faulty (voice.landing_earcon = true).",
    )
    landing_cooldown_s: float = setting(
        0.3,
        "Least time between two landing earcons (any sensor); below a step, so each faulty "
        "landing still gets its tone.",
        min=0.0,
        max=60.0,
        unit="s",
    )

    def problems(self) -> list[str]:
        if self.persist_k > self.persist_n:
            return [f"persist_k = {self.persist_k}: must be <= persist_n ({self.persist_n})"]
        return []

    def cue_ids(self) -> list[str]:
        """Every cue id the policy can emit (checked against the cue library)."""
        return [
            self.cue_rigid,
            self.cue_forced_dorsiflexion,
            self.cue_forced_plantarflexion,
            self.cue_positive,
            self.cue_sensor_lost,
            self.cue_sensor_back,
            self.cue_landing,
        ]
