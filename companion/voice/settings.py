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
    earcons: bool = setting(True, "Play a cue's short earcon (tones) before its words.")
    landing_earcon: bool = setting(
        False,
        "Per-stride feedback: a short, soft tone (the tone-only cue coach.cue_landing) right "
        "after each landing that closes a stride judged faulty, with its own cooldown "
        "(coach.landing_cooldown_s); never cuts a spoken cue short.",
    )
    spoken_fault_cues: bool = setting(
        True,
        "Say the fault cues (relax_ankle ...); false = the landing earcon instead of them (the "
        "positive and sensor cues are still spoken). Needs landing_earcon = true.",
    )
    landing_earcon_volume: float = setting(
        0.5,
        "Loudness of the landing earcon (any tone-only cue), as a fraction of volume: soft, "
        "under the spoken cues.",
        min=0.05,
        max=1.0,
    )
    stale_after_s: float = setting(
        0.7,
        "Drop a cue that could not start within this long of its decision (about one stride; "
        "the cue policy may ask for less).",
        min=0.05,
        max=10.0,
        unit="s",
    )
    block_ms: float = setting(
        15.0,
        "Audio block length: a cue starts at most about this long after the decision. The "
        "default (with its 45 ms buffer) leaves a margin against a busy machine; a few ms "
        "saved are inaudible behind Bluetooth earbuds, a gap is not.",
        min=0.5,
        max=50.0,
        unit="ms",
    )
    latency_ms: float = setting(
        0.0,
        "Output buffer PortAudio keeps ahead of the speaker; 0 = three blocks (45 ms at the "
        "default block), the smallest that keeps the callback regular on PulseAudio. Raise it "
        "(e.g. 90) if cues crackle or the log reports underflows.",
        min=0.0,
        max=500.0,
        unit="ms",
    )
    realtime_priority: int = setting(
        4,
        "Real-time priority (SCHED_FIFO 1-99) of the audio threads on Linux, where the user "
        "may have it (root, an rtprio limit such as the audio group's, or LimitRTPRIO= in a "
        "systemd unit; normal scheduling otherwise, silently); 0 = never. Keeps the output "
        "from running dry while other programs load the CPU; keep it below the sound "
        "server's own (PulseAudio's is 5), or the client can starve the server it feeds.",
        min=0,
        max=99,
    )
    sample_rate_hz: int = setting(
        0, "Output sample rate; 0 = the device's default rate.", min=0, max=192000, unit="Hz"
    )
    fade_ms: float = setting(
        8.0,
        "Fade when a higher-priority cue cuts a playing one short (no click).",
        min=1.0,
        max=50.0,
        unit="ms",
    )
    isolate: bool = setting(
        True,
        "Play audio from a separate process, so the run's own Python work cannot stall the "
        "stream (false = in this process).",
    )
    cache_dir: str = setting(
        "", "Folder of rendered speech; empty = the user cache folder (platformdirs)."
    )

    def problems(self) -> list[str]:
        if not self.spoken_fault_cues and not self.landing_earcon:
            return [
                "spoken_fault_cues = false: with landing_earcon = false too no fault would "
                "ever be cued; set landing_earcon = true (the tone instead of the words)"
            ]
        return []
