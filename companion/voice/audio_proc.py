"""The audio output in its own process, where the run's Python work cannot stall it.

The stream callback is Python and needs the GIL. A busy thread that keeps
releasing and retaking the GIL (short numpy calls between pure-Python work, which
is what an estimator does) can starve a waiting callback thread for a second or
more (measured: a 2 s stall with such a thread, none without it), and a starved
callback is a gap in the runner's ear. So :class:`ProcessAudioSink` runs the
:class:`~companion.voice.audio.AudioSink` in a child process whose only other
thread waits on a pipe; the run loop sends each cue down the pipe (tens of
microseconds, never waits for audio) and a small thread reads the child's
events back. ``Cue.decided_mono`` is ``time.monotonic()``, one clock for every
process of the machine, so latencies stay comparable.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from companion.errors import AudioError, CompanionError, ConfigError
from companion.types import Cue
from companion.voice.library import CueLibrary
from companion.voice.player import PlayerEvent
from companion.voice.settings import VoiceSettings

log = logging.getLogger("companion.voice")

START_TIMEOUT_S = 180.0
"""Opening the device and rendering every phrase the first time."""
REPLY_TIMEOUT_S = 60.0


def _serve(conn: Any, settings: VoiceSettings, device: str | int | None) -> None:
    """The child: open the sink, then play what the pipe says until told to close."""
    import signal

    from companion.voice.audio import AudioSink
    from companion.voice.library import load_library

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's: it closes us in order

    try:
        lib = load_library(settings)
        sink = AudioSink(settings, lib, device=device)
    except CompanionError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    except Exception as exc:  # reported to the parent, which falls back to the console
        conn.send(("error", "AudioError", f"the audio process failed: {exc!r}"))
        return
    conn.send(
        (
            "ready",
            {
                "rate_hz": sink.rate_hz,
                "block": sink.block,
                "latency_s": sink.output_latency_s,
                "device": sink.device,
            },
        )
    )
    try:
        while True:
            if conn.poll(0.05):
                msg = conn.recv()
                kind = msg[0]
                if kind == "play":
                    sink.play(msg[1])
                elif kind == "clip":
                    sink.submit_clip(msg[1], msg[2])
                elif kind == "silence":
                    sink.silence()
                elif kind == "wait_running":
                    conn.send(("reply", sink.wait_running(msg[1])))
                elif kind == "wait_idle":
                    conn.send(("reply", sink.wait_idle(msg[1])))
                elif kind == "stats":
                    conn.send(("reply", sink.stats()))
                elif kind == "clips":
                    conn.send(("reply", sink.clips))
                elif kind == "close":
                    sink.close()
                    conn.send(("events", _plain(sink.drain_events())))
                    conn.send(("reply", sink.stats()))
                    return
            events = sink.drain_events()
            if events:
                conn.send(("events", _plain(events)))
    except (EOFError, BrokenPipeError, OSError):  # the parent is gone: stop playing
        sink.close()


def _plain(events: list[PlayerEvent]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.cue, e.t_mono, e.latency_s, e.frame) for e in events]


class ProcessAudioSink:
    """An :class:`~companion.voice.audio.AudioSink` in a child process; same interface.

    Parameters are those of ``AudioSink``. Raises :class:`AudioError` (or
    :class:`ConfigError` for a wrong voice) when the child cannot open the device.
    """

    def __init__(
        self,
        settings: VoiceSettings,
        library: CueLibrary,
        *,
        device: str | int | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from companion.voice.sink import cue_line

        self._line = cue_line
        self.echo = echo
        self.library = library
        ctx = multiprocessing.get_context("spawn")  # a fresh PortAudio, no forked threads
        self._conn, child = ctx.Pipe()
        child_settings = replace(settings, library=str(library.path))
        self._proc = ctx.Process(
            target=_serve, args=(child, child_settings, device), daemon=True, name="companion-audio"
        )
        self._proc.start()
        child.close()
        try:
            ready = self._conn.poll(START_TIMEOUT_S)
            msg = self._conn.recv() if ready else ("error", "AudioError", "no answer")
        except EOFError:
            msg = ("error", "AudioError", "the audio process ended at start")
        if msg[0] != "ready":
            self._proc.join(5)
            err = ConfigError if msg[1] == "ConfigError" else AudioError
            raise err(msg[2])
        info = msg[1]
        self.rate_hz: int = info["rate_hz"]
        self.block: int = info["block"]
        self._latency_s: float = info["latency_s"]
        self.device = info["device"]
        self.history: list[PlayerEvent] = []
        self._events: deque[PlayerEvent] = deque()
        self._replies: queue.Queue[Any] = queue.Queue()
        self._send_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True, name="audio-events")
        self._reader.start()
        self._clips: dict[tuple[str, str], np.ndarray] | None = None

    # ---------------------------------------------------------------- plumbing
    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                self._replies.put(None)
                return
            if msg[0] == "events":
                for kind, cue, t, lat, frame in msg[1]:
                    self._events.append(PlayerEvent(kind, cue, t, lat, frame))
            else:
                self._replies.put(msg[1])

    def _send(self, *msg: Any) -> bool:
        try:
            with self._send_lock:
                self._conn.send(msg)
            return True
        except (BrokenPipeError, OSError):
            return False

    def _ask(self, *msg: Any, timeout_s: float = REPLY_TIMEOUT_S) -> Any:
        if not self._send(*msg):
            return None
        try:
            return self._replies.get(timeout=timeout_s)
        except queue.Empty:
            return None

    # ---------------------------------------------------------------- the Sink
    @property
    def output_latency_s(self) -> float:
        return self._latency_s

    @property
    def clips(self) -> dict[tuple[str, str], np.ndarray]:
        if self._clips is None:
            self._clips = self._ask("clips") or {}
        return self._clips

    def play(self, cue: Cue) -> None:
        """Send the cue to the audio process (never waits for audio), then echo its line."""
        if cue.decided_mono == 0.0:
            cue = replace(cue, decided_mono=time.monotonic())
        if not self._send("play", cue) and not self._closed:
            log.warning("the audio process has stopped; cues are printed only")
            self._closed = True
        if self.echo is not None:
            self.echo(self._line(cue))

    def submit_clip(self, cue: Cue, clip: np.ndarray) -> None:
        self._send("clip", cue, clip)

    def silence(self) -> None:
        self._send("silence")

    def stats(self) -> dict[str, Any]:
        return self._ask("stats") or {}

    def wait_running(self, timeout_s: float = 5.0) -> bool:
        return bool(self._ask("wait_running", timeout_s, timeout_s=timeout_s + 5))

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        return bool(self._ask("wait_idle", timeout_s, timeout_s=timeout_s + 5))

    def drain_events(self) -> list[PlayerEvent]:
        out = []
        while self._events:
            e = self._events.popleft()
            out.append(e)
            self.history.append(e)
        return out

    def close(self) -> None:
        if self._proc.is_alive():
            final = self._ask("close", timeout_s=10)
            if final and final.get("underflows"):
                log.info("audio output underflowed %d times (gaps)", final["underflows"])
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._reader.join(2)
        self.drain_events()
        self._conn.close()
