"""The earbuds: one PortAudio output stream (python-sounddevice) open for the whole run.

:class:`AudioSink` opens the stream first (so a missing device is known at once),
then loads every phrasing of the library into memory at the stream's rate
(rendering what the cache lacks), and from then on :meth:`AudioSink.play` only
looks up the clip and hands it to the :class:`~companion.voice.player.CuePlayer`
that runs in the stream's callback. Nothing on the run loop waits for audio.

A watchdog thread looks at the stream four times a second: when the device goes away
mid-run (earbuds switched off, a sound-server sink removed) PortAudio ends the stream;
the sink then says so once, cues are printed only, and it tries the device again every
second (PortAudio's device list refreshed) until it is back, then says so and plays
again. The run never waits for any of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.types import Cue
from companion.voice.library import CueLibrary
from companion.voice.player import FINISHED, PREEMPTED, STALE, CuePlayer, PlayerEvent
from companion.voice.render import (
    Renderer,
    default_cache_dir,
    earcon_clip,
    load_clip,
)
from companion.voice.settings import VoiceSettings

log = logging.getLogger("companion.voice")

WARM_UP_TIMEOUT_S = 3.0
"""Longest the sink waits at start for the callback to keep its pace."""
BUFFER_BLOCKS = 3
"""Output buffer when ``voice.latency_ms`` is 0, in blocks. PortAudio's ALSA host then makes
one period per block and ALSA's pulse plugin asks for one block at a time, so the callback
runs once per block (measured on PulseAudio: 10.0 ms apart at 10 ms blocks). A larger
buffer makes PulseAudio ask in bursts of blocks and a cue waits longer for its callback;
two blocks run dry."""


DEVICE_CHECK_S = 0.25
"""How often the watchdog looks whether the stream still runs."""
RETRY_S = 1.0
"""How often it tries the device again while it is gone."""
DeviceReport = Callable[[bool, str], None]
"""Told (device up, message) when the device goes away or comes back."""


def _sd() -> Any:
    """The sounddevice module, or an AudioError saying what to install."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise AudioError(
            f"PortAudio is not installed ({exc}); install it (apt install libportaudio2)"
        ) from None
    except ImportError:
        raise AudioError("python-sounddevice is missing; pip install sounddevice") from None
    return sd


_ALSA_QUIET: Any = None


def _quiet_alsa() -> None:
    """Stop alsa-lib printing to stderr (e.g. the ``underrun occurred`` lines of its pulse
    plugin while a stream warms up); PortAudio still reports underflows to the callback,
    which counts them (:attr:`CuePlayer.underflows`)."""
    global _ALSA_QUIET
    if _ALSA_QUIET is not None or not sys.platform.startswith("linux"):
        return
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
        proto = ctypes.CFUNCTYPE(
            None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
        )
        _ALSA_QUIET = proto(lambda *_args: None)
        lib.snd_lib_error_set_handler(_ALSA_QUIET)
    except (OSError, AttributeError):
        _ALSA_QUIET = False


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null meanwhile: PortAudio's ALSA host prints a few lines
    for every failed open, once a second while a device is gone."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _realtime_threads(priority: int) -> Iterator[None]:
    """Threads started inside run at real-time ``priority`` (SCHED_FIFO) where allowed.

    The calling thread is raised for the duration only: a thread inherits its creator's
    scheduling on Linux, and PortAudio's callback thread is started inside. Without the
    right (root, or an ``rtprio`` limit) this does nothing, silently.
    """
    setsched = getattr(os, "sched_setscheduler", None)
    if priority <= 0 or setsched is None or not sys.platform.startswith("linux"):
        yield
        return
    try:
        before = (os.sched_getscheduler(0), os.sched_getparam(0))
        setsched(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            setsched(0, before[0], before[1])


def output_devices() -> list[dict[str, Any]]:
    """Every PortAudio device with output channels: index, name, host API, channels, rate."""
    sd = _sd()
    _quiet_alsa()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_out = sd.default.device[1]
    except sd.PortAudioError as exc:
        raise AudioError(f"PortAudio cannot list devices: {exc}") from None
    out = []
    for d in devices:
        if d["max_output_channels"] > 0:
            out.append(
                {
                    "index": d["index"],
                    "name": d["name"],
                    "hostapi": apis[d["hostapi"]]["name"],
                    "channels": d["max_output_channels"],
                    "rate_hz": d["default_samplerate"],
                    "latency_s": d["default_low_output_latency"],
                    "default": d["index"] == default_out,
                }
            )
    return out


def find_device(spec: str | int | None) -> int:
    """The output device index for a name (case-insensitive substring) or index; None = default."""
    devs = output_devices()
    listing = "; ".join(f"{d['index']}: {d['name']}" for d in devs) or "none"
    todo = "; connect one, or pick one with --audio-device (see `companion audio-devices`)"
    if spec is None or spec == "":
        for d in devs:
            if d["default"]:
                return int(d["index"])
        raise AudioError(f"no default audio output device (output devices: {listing}){todo}")
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        for d in devs:
            if d["index"] == idx:
                return idx
        raise AudioError(
            f"audio device {idx} is not an output device (output devices: {listing}){todo}"
        )
    exact = [d for d in devs if d["name"].lower() == text.lower()]
    part = [d for d in devs if text.lower() in d["name"].lower()]
    hits = exact or part
    if not hits:
        raise AudioError(f"no output device named {text!r} (output devices: {listing}){todo}")
    if len(hits) > 1:
        log.info("audio device %r matches %d devices; using %s", text, len(hits), hits[0]["name"])
    return int(hits[0]["index"])


def prepare_clips(
    library: CueLibrary, settings: VoiceSettings, rate_hz: int
) -> dict[tuple[str, str], np.ndarray]:
    """Every (cue id, phrase) as a ready clip at ``rate_hz``: earcon, gap, words; a
    tone-only cue as (cue id, "") -> its tones, soft (``landing_earcon_volume``).

    Renders the phrases the cache lacks first (seconds on the first start).
    """
    cache = Path(settings.cache_dir).expanduser() if settings.cache_dir else default_cache_dir()
    renderer = Renderer(cache, settings.voice, settings.rate_wpm)
    result = renderer.render(library.texts())
    if result.rendered:
        log.info("rendered %d phrases in %.1f s", len(result.rendered), result.seconds)
    words = {t: load_clip(renderer.path_for(t), rate_hz, settings.volume) for t in library.texts()}
    clips = {}
    for cid in library.ids:
        if library.tone_only(cid):  # the tones are the cue: played whatever voice.earcons says
            vol = settings.volume * settings.landing_earcon_volume
            clips[(cid, "")] = earcon_clip(library.earcon(cid), rate_hz, vol, soft=True)
            continue
        tones = library.earcon(cid) if settings.earcons else ()
        ear = earcon_clip(tones, rate_hz, settings.volume)
        for text in library.phrases(cid):
            clip = np.concatenate([ear, words[text]]) if len(ear) else words[text]
            clips[(cid, text)] = np.ascontiguousarray(clip, dtype=np.float32)
    return clips


class AudioSink:
    """Plays cues on one output stream; also echoes each cue line through ``echo``.

    Parameters
    ----------
    settings
        Voice settings (volume, rate, block length, staleness, fade, cache).
    library
        The cue library; all of its phrasings are loaded at start.
    device
        Output device name or index; None = PortAudio's default output.
    echo
        Called with the console line of each cue played (None = silent).
    clips
        Ready clips keyed by (cue id, text), to skip rendering (tests, benchmarks).
    report
        Told (up, message), from the watchdog thread, when the device goes away or comes
        back; None = log a warning.
    """

    def __init__(
        self,
        settings: VoiceSettings,
        library: CueLibrary,
        *,
        device: str | int | None = None,
        echo: Callable[[str], None] | None = None,
        clips: dict[tuple[str, str], np.ndarray] | None = None,
        report: DeviceReport | None = None,
    ) -> None:
        sd = _sd()
        self.settings = settings
        self.echo = echo
        self._device_spec = device
        self._report = report
        self.device = find_device(device)
        info = sd.query_devices(self.device)
        self.rate_hz = int(settings.sample_rate_hz or info["default_samplerate"])
        self.block = max(round(settings.block_ms * self.rate_hz / 1000), 16)
        self.player = CuePlayer(
            self.rate_hz,
            max_block=max(self.block * 4, 8192),
            fade_ms=settings.fade_ms,
            stale_after_s=settings.stale_after_s,
        )
        self.stream = self._open(sd, info)
        self.device_ok = True
        """False while the device is gone (cues are then printed only)."""
        self.reopens = 0
        """Times the device came back and the stream was opened again."""
        self.device_changes: list[tuple[bool, float]] = []
        """(device up, host time) each time it went away or came back."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._warned: set[str] = set()
        self.history: list[PlayerEvent] = []
        """Every player event drained so far (cues started, cut, dropped)."""
        try:
            self.clips = (
                clips if clips is not None else prepare_clips(library, settings, self.rate_hz)
            )
        except BaseException:
            self.stream.close()
            raise
        from companion.voice.sink import echo_cue

        self._echo_cue = echo_cue
        # Some outputs (PulseAudio through ALSA) stall and run dry for about a second after
        # the stream starts: with small blocks a cue played then has gaps. The clips loaded
        # meanwhile; wait out the rest, so that even the first cue (`cues say`) plays whole.
        self.warmed = self.wait_running(WARM_UP_TIMEOUT_S)
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="audio-watch")
        self._watchdog.start()

    # ------------------------------------------------------------------ the device
    def _watch(self) -> None:
        """The watchdog thread: notice a stream that ended, reopen it when the device is back."""
        while not self._stop.wait(DEVICE_CHECK_S):
            if not self._stream_ended():
                continue
            self.device_ok = False
            name = self._device_name()
            with self._lock:
                self._close_stream()
            self._tell(
                False,
                f"the audio device {name} is gone; cues are printed until it is back "
                f"(tried every {RETRY_S:g} s)",
            )
            while not self._stop.wait(RETRY_S):
                if self._reopen():
                    break
            else:
                return
            self.wait_running(WARM_UP_TIMEOUT_S)  # its first second can stall: not yet
            self.reopens += 1
            self.device_ok = True
            self._tell(True, f"the audio device {self._device_name()} is back; cues are spoken")

    def _stream_ended(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            try:
                return not self.stream.active
            except Exception:  # PortAudio no longer knows the stream
                return True

    def _tell(self, up: bool, message: str) -> None:
        self.device_changes.append((up, time.monotonic()))
        if self._report is not None:
            self._report(up, message)
        else:
            log.warning("%s", message)

    def _device_name(self) -> str:
        with contextlib.suppress(Exception):
            return repr(_sd().query_devices(self.device)["name"])
        return str(self.device)

    def _reopen(self) -> bool:
        """Open the stream again on the device the run asked for, if it is there now."""
        sd = _sd()
        with self._lock:
            if self._stop.is_set():
                return False
            try:
                with _quiet_stderr():
                    # PortAudio lists devices once, at start: refresh it (the device may
                    # have a new index, or only now exist)
                    with contextlib.suppress(sd.PortAudioError):  # (a refresh that failed)
                        sd._terminate()
                    sd._initialize()
                    self.device = find_device(self._device_spec)
                    self.stream = self._open(sd, sd.query_devices(self.device))
            except (AudioError, sd.PortAudioError) as exc:
                log.debug("the audio device is not back yet: %s", exc)
                return False
        return True

    def _close_stream(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except Exception as exc:  # a vanished device must not turn the end of a run into a crash
            log.debug("closing the audio stream: %s", exc)

    def _open(self, sd: Any, info: dict[str, Any]) -> Any:
        last: Exception | None = None
        latency = self.settings.latency_ms / 1000 or BUFFER_BLOCKS * self.block / self.rate_hz
        for channels in (1, min(2, int(info["max_output_channels"]))):
            try:
                # the threads the device opens (ALSA's pulse plugin starts its own) and
                # PortAudio's callback thread inherit the real-time priority
                with _realtime_threads(self.settings.realtime_priority):
                    stream = sd.OutputStream(
                        device=self.device,
                        samplerate=self.rate_hz,
                        blocksize=self.block,
                        channels=channels,
                        dtype="float32",
                        latency=latency,
                        callback=self.player.callback,
                    )
                    stream.start()
                return stream
            except sd.PortAudioError as exc:
                last = exc
        raise AudioError(
            f"cannot open audio device {info['name']!r} at {self.rate_hz} Hz: {last}; "
            "pick another with --audio-device (see `companion audio-devices`)"
        )

    @property
    def output_latency_s(self) -> float:
        """The output latency PortAudio reports for the open stream."""
        return float(self.stream.latency)

    def play(self, cue: Cue) -> None:
        """Hand the cue's clip to the callback (never waits), then echo its line; while the
        device is gone, only echo it."""
        clip = self.clips.get((cue.id, cue.text))
        if clip is not None and self.device_ok:
            if cue.decided_mono == 0.0:
                cue = replace(cue, decided_mono=time.monotonic())
            self.player.submit(cue, clip)
        self._echo_cue(self.echo, cue)
        if clip is None and cue.id not in self._warned:
            self._warned.add(cue.id)
            log.warning("cue %s: %r was not rendered at start; printed only", cue.id, cue.text)

    def drain_events(self) -> list[PlayerEvent]:
        """What the callback did since the last call (and log the drops)."""
        out = []
        ev = self.player.events
        while ev:
            e = ev.popleft()
            out.append(e)
            self.history.append(e)
            if e.kind == STALE:
                log.info("cue %s dropped: waited %.0f ms", e.cue.id, 1000 * e.latency_s)
            elif e.kind == PREEMPTED:
                log.debug("cue %s cut short by a higher-priority cue", e.cue.id)
            elif e.kind == FINISHED:
                log.debug("cue %s finished", e.cue.id)
        return out

    def submit_clip(self, cue: Cue, clip: np.ndarray) -> None:
        """Play an arbitrary clip as ``cue`` (benchmarks: live synthesis for comparison)."""
        self.player.submit(cue, clip)

    def stats(self) -> dict[str, Any]:
        """Callbacks run, underflows, whether anything plays or waits, the callbacks' pace."""
        p = self.player
        return {
            "blocks": p.blocks,
            "underflows": p.underflows,
            "busy": p.busy,
            "device_ok": self.device_ok,
            "reopens": self.reopens,
            **p.pace(),
        }

    def silence(self) -> None:
        """Stop speaking now (fade out), dropping waiting cues."""
        self.player.silence()

    def wait_running(self, timeout_s: float = 5.0) -> bool:
        """Block until the stream's callback keeps its real-time pace (after start-up).

        Some outputs (PulseAudio through ALSA) stall for about a second after the
        stream starts; cues decided then would start late. Not for the run loop.
        """
        block_s = self.block / self.rate_hz
        end = time.monotonic() + timeout_s
        good = 0
        while time.monotonic() < end:
            n0 = self.player.blocks
            time.sleep(0.1)
            good = good + 1 if self.player.blocks - n0 >= 0.7 * 0.1 / block_s else 0
            if good >= 3:
                self.player.pace_from = time.monotonic()
                return True
        return False

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until nothing plays or waits (for `cues say` and tests, not the run loop)."""
        end = time.monotonic() + timeout_s
        while self.player.busy and time.monotonic() < end:
            time.sleep(0.01)
        return not self.player.busy

    def close(self) -> None:
        self._stop.set()
        with self._lock:  # not while the watchdog opens the device again
            self._close_stream()
        self._watchdog.join(2.0)
        self.drain_events()
        if self.player.underflows:
            log.info("audio output underflowed %d times (gaps)", self.player.underflows)
