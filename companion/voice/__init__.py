"""The voice: a coach-editable cue library, pre-rendered speech, one audio stream.

* :mod:`companion.voice.library` - the cue library (``cues/<lang>.toml``) and
  ``check_config_problems`` for ``companion check-config``.
* :mod:`companion.voice.render` - speech rendered once with pyttsx3, cached on disk.
* :mod:`companion.voice.player` - the stream callback's cue logic (preempt, wait, drop).
* :mod:`companion.voice.audio` / :mod:`companion.voice.audio_proc` - the PortAudio
  output, in this process or in its own.
* :mod:`companion.voice.sink` - ``Sink``, ``ConsoleSink`` and ``make_sink``.
* :mod:`companion.voice.cli` - ``companion cues ...`` and ``companion audio-devices``.
"""
