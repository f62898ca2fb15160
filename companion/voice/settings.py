"""Voice settings: cue library, speech engine and audio output."""

from __future__ import annotations

from dataclasses import dataclass

from companion.settings import setting


@dataclass(frozen=True)
class VoiceSettings:
    library: str = setting(
        "en", "Cue library: a language code (cues/<code>.toml) or a path to a coach's file."
    )
    voice: str = setting("", "Speech voice id or name; empty = the engine's default.")
    rate_wpm: int = setting(175, "Speaking rate.", min=80, max=400, unit="words/min")
    volume: float = setting(0.9, "Cue volume.", min=0.0, max=1.0)
    enabled_cues: list[str] = setting([], "Cue ids that may be spoken; empty = all.")
    audio_device: str = setting("", "Output device name or index; empty = the default.")
    output: str = setting(
        "auto",
        "auto = audio if a device works, else console; audio; console (print only).",
        choices=("auto", "audio", "console"),
    )
