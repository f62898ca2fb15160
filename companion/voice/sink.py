"""Where cues go: the earbuds (pre-rendered speech on one open audio stream) or the console.

:func:`make_sink` picks one from the config: ``output = "audio"`` needs a working
device (else :class:`~companion.errors.AudioError`), ``"console"`` prints only, and
``"auto"`` plays when it can and otherwise prints, after one warning saying why.
Every sink's :meth:`Sink.play` returns at once; the audio sink also echoes each cue
line to the console so a runner (or a tester) sees what was said.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from companion.errors import AudioError
from companion.types import Cue
from companion.voice.library import CueLibrary
from companion.voice.settings import VoiceSettings

log = logging.getLogger("companion.voice")


class Sink(Protocol):
    """Something that says cues. ``play`` never blocks; ``cue.text`` is already chosen."""

    def play(self, cue: Cue) -> None: ...

    def close(self) -> None: ...


def cue_line(cue: Cue) -> str:
    """The console form of a cue: ``[  63.4 s] relax_ankle: Relax the ankle.``"""
    return f"[{cue.t_s:6.1f} s] {cue.id}: {cue.text}"


def echo_cue(write: Callable[[str], None] | None, cue: Cue) -> None:
    """Print a spoken cue's line; a tone-only cue (no words, e.g. the landing earcon at
    every faulty stride) is sound only and would flood the console (``--json`` lists it)."""
    if write is not None and cue.text:
        write(cue_line(cue))


class ConsoleSink:
    """Prints each spoken cue as one line through ``write`` (stdout, a log, a list in tests)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def play(self, cue: Cue) -> None:
        echo_cue(self.write, cue)

    def close(self) -> None:
        pass


def make_sink(
    settings: VoiceSettings,
    library: CueLibrary,
    *,
    console: Callable[[str], None],
    audio_device: str | None = None,
) -> Sink:
    """The sink the config asks for; see the module docstring for the fallbacks.

    ``audio_device`` (from ``--audio-device``) overrides ``settings.audio_device``.
    Opening the audio sink renders any phrase missing from the cache (seconds on the
    first start, then cached) and opens the output stream for the whole run.
    """
    if settings.output == "console":
        return ConsoleSink(console)
    device = audio_device if audio_device not in (None, "") else settings.audio_device
    try:
        if settings.isolate:
            from companion.voice.audio_proc import ProcessAudioSink

            return ProcessAudioSink(settings, library, device=device or None, echo=console)
        from companion.voice.audio import AudioSink

        return AudioSink(settings, library, device=device or None, echo=console)
    except AudioError as exc:
        if settings.output == "audio":
            raise
        log.warning(
            'no audio output, cues go to the console: %s (voice.output = "console" silences '
            "this warning)",
            exc,
        )
        return ConsoleSink(console)
