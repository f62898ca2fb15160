"""The audio output in its own process, where the run's Python work cannot stall it.

The stream callback is Python and needs the GIL. A busy thread that keeps
releasing and retaking the GIL (short numpy calls between pure-Python work, which
is what an estimator does) can starve a waiting callback thread for a second or
more (measured: a 2 s stall with such a thread, none without it), and a starved
callback is a gap in the runner's ear. So :class:`ProcessAudioSink` runs the
:class:`~companion.voice.audio.AudioSink` in a child process.

Cues cross over through a **shared-memory mailbox** (:class:`MailboxWriter` in the
run's process, :class:`MailboxReader` in the audio process): the run loop writes
the cue into the next slot of a ring and then bumps a write counter (a few
microseconds, never waits); the stream callback itself reads the counter at the
start of every block and takes the new slots in. No process or thread has to wake
up between the decision and the callback that plays the cue. Control messages
(stats, waits, close) and the child's events (started, cut short, dropped; the device
gone or back) go through a pipe, off the hot path. ``Cue.decided_mono`` is ``time.monotonic()``,
one clock for every process of the machine, so latencies stay comparable.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from multiprocessing import shared_memory
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


# ----------------------------------------------------------------------------- mailbox
#
# Layout of the shared memory (little-endian):
#   header  64 bytes: write count W (int64, the writer's), read count R (int64, the
#           reader's), magic, slots, area samples
#   slots   SLOTS x 128 bytes: seq, key, priority, clip offset, clip length (int64),
#           decided_mono, stale_after_s, t_s (float64), crc32 of those 64 bytes
#   area    AREA_SAMPLES float32: clips made at run time (submit_clip), written in turn;
#           the reader copies each into its own memory when it takes the slot
#
# One writer (the run's process, its threads serialised by a lock), one reader (the
# stream callback). The writer fills slot W % SLOTS, then stores W + 1; the reader
# takes slots R..W-1, then stores its R. The writer never reuses a slot the reader
# has not taken (R is checked), so a cue cannot be lost to a slot overwritten early
# or a counter updated by both sides (each counter has one writer). The reader checks
# each slot's seq and crc on a private copy: a slot not yet (or only partly) visible
# to the reader's CPU, as weak memory ordering may leave it, fails the check and is
# taken at the next block instead of being misread.

MAGIC = 0x31455543  # "CUE1"
SLOTS = 64
SLOT_BYTES = 128
HEADER_BYTES = 64
AREA_SAMPLES = 1 << 20
"""Room for clips made at run time: about 22 s at 48 kHz."""
KEY_SILENCE = -1
KEY_ADHOC = -2
_HEADER = struct.Struct("<qqqqq")
_COUNT = struct.Struct("<q")
_BODY = struct.Struct("<qqqqqddd")
_CRC = struct.Struct("<I")


def _mailbox_bytes(slots: int, area: int) -> int:
    return HEADER_BYTES + slots * SLOT_BYTES + 4 * area


class MailboxWriter:
    """The run's side of the cue mailbox: creates the shared memory; ``post`` never waits.

    Parameters
    ----------
    slots
        Cues that may be written before the callback takes them (a ring).
    area_samples
        float32 samples of room for clips made at run time (:meth:`post_clip`).
    """

    def __init__(self, slots: int = SLOTS, area_samples: int = AREA_SAMPLES) -> None:
        size = _mailbox_bytes(int(slots), int(area_samples))
        self._setup(shared_memory.SharedMemory(create=True, size=size), owner=True)
        assert self._mv is not None
        self._mv[:size] = bytes(size)  # every page touched now, not on the hot path
        _HEADER.pack_into(self._mv, 0, 0, 0, MAGIC, int(slots), int(area_samples))
        self._setup(self.shm, owner=True)

    @classmethod
    def attach(cls, name: str) -> MailboxWriter:
        """The writer's side of a mailbox another process created (tests); one writer at a
        time. Closing it leaves the shared memory to its creator."""
        self = cls.__new__(cls)
        self._setup(shared_memory.SharedMemory(name=name), owner=False)
        return self

    def _setup(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self.shm = shm
        self.name = shm.name
        self._owner = owner
        self._mv: memoryview | None = shm.buf
        w, _r, _magic, self.slots, self.area_samples = _HEADER.unpack_from(shm.buf, 0)
        self._area = np.frombuffer(
            shm.buf, np.float32, self.area_samples, HEADER_BYTES + self.slots * SLOT_BYTES
        )
        self._w = w
        self._area_at = 0
        self._lock = threading.Lock()
        self.dropped = 0
        """Cues not posted because the reader had not taken the whole ring (it has stopped)."""

    def post(self, cue: Cue, key: int) -> bool:
        """Write ``cue`` (its clip: library clip number ``key``) for the callback's next block.

        ``key`` = :data:`KEY_SILENCE` asks for silence. False when the ring is full (the
        reader has stopped taking cues) or the mailbox is closed.
        """
        with self._lock:
            return self._post(cue, key, -1, 0)

    def _post(self, cue: Cue, key: int, clip_at: int, clip_n: int) -> bool:
        mv = self._mv
        if mv is None:
            return False
        w = self._w
        (r,) = _COUNT.unpack_from(mv, 8)
        if w - r >= self.slots:
            self.dropped += 1
            return False
        body = _BODY.pack(
            w,
            key,
            cue.priority,
            clip_at,
            clip_n,
            cue.decided_mono,
            cue.stale_after_s,
            cue.t_s,
        )
        at = HEADER_BYTES + (w % self.slots) * SLOT_BYTES
        mv[at : at + _BODY.size + _CRC.size] = body + _CRC.pack(zlib.crc32(body))
        self._w = w + 1
        _COUNT.pack_into(mv, 0, w + 1)  # published: the callback takes it at its next block
        return True

    def post_silence(self) -> bool:
        return self.post(_SILENCE_CUE, KEY_SILENCE)

    def post_clip(self, cue: Cue, key: int, clip: np.ndarray) -> bool:
        """Copy ``clip`` into the shared area, then post ``cue`` to play it (benchmarks)."""
        x = np.asarray(clip, dtype=np.float32).ravel()
        n = len(x)
        if n > self.area_samples:
            raise ValueError(f"clip of {n} samples is longer than the mailbox's area")
        with self._lock:
            if self._mv is None:
                return False
            if self._w - _COUNT.unpack_from(self._mv, 8)[0] >= self.slots:
                self.dropped += 1  # full: the area is not touched (a retry must not wrap it
                return False  # around onto the clips of slots not taken yet)
            if self._area_at + n > self.area_samples:
                self._area_at = 0  # written in turn: an earlier clip is long finished
            at = self._area_at
            self._area[at : at + n] = x
            self._area_at = at + n
            return self._post(cue, key, at, n)

    def pending(self) -> int:
        """Cues written that the callback has not taken yet."""
        if self._mv is None:
            return 0
        return self._w - _COUNT.unpack_from(self._mv, 8)[0]

    def close(self) -> None:
        with self._lock:
            if self._mv is None:
                return
            del self._area
            self._mv = None
            self.shm.close()
            if self._owner:
                self.shm.unlink()


_SILENCE_CUE = Cue("", t_s=0.0, priority=0)


class MailboxReader:
    """The callback's side: :meth:`take` (called at the start of every block) moves new cues
    into the player's inbox; no lock, no allocation beyond the cue itself, no I/O.

    ``keys`` and ``clips`` are the library clips in the order the writer numbers them.
    """

    def __init__(self, name: str, keys: list[tuple[str, str]], clips: list[np.ndarray]) -> None:
        self.shm = shared_memory.SharedMemory(name=name)
        mv = self.shm.buf
        _w, _r, magic, self.slots, self.area_samples = _HEADER.unpack_from(mv, 0)
        if magic != MAGIC:
            raise AudioError("the cue mailbox is not one this version wrote")
        self._mv: memoryview | None = mv
        self._area = np.frombuffer(
            mv, np.float32, self.area_samples, HEADER_BYTES + self.slots * SLOT_BYTES
        )
        # clips made at run time are copied out of the shared area into this one (the
        # callback keeps no view of shared memory, and a later clip cannot overwrite one
        # that plays); every page of both, and of every clip, is touched now, not in the
        # callback
        self._own = np.empty(self.area_samples, np.float32)
        self._own.fill(0.0)
        float(self._area.sum())
        for c in clips:
            float(c.sum())
        self._keys = keys
        self._clips = clips
        (self._r,) = _COUNT.unpack_from(mv, 8)
        self.taken = 0
        """Cues taken in so far."""

    def pending(self) -> bool:
        mv = self._mv
        return mv is not None and _COUNT.unpack_from(mv, 0)[0] > self._r

    def take(self, inbox: deque[Any]) -> None:
        """Append every complete new slot to ``inbox`` as (cue, clip), or None for silence."""
        mv = self._mv
        if mv is None:
            return
        (w,) = _COUNT.unpack_from(mv, 0)
        r = self._r
        while r < w:
            at = HEADER_BYTES + (r % self.slots) * SLOT_BYTES
            raw = bytes(mv[at : at + _BODY.size + _CRC.size])  # one snapshot, then check it
            body = raw[: _BODY.size]
            if _CRC.unpack_from(raw, _BODY.size)[0] != zlib.crc32(body):
                break  # not (wholly) visible yet: next block
            seq, key, prio, clip_at, clip_n, decided, stale, t_s = _BODY.unpack(body)
            if seq != r:
                break
            r += 1
            if key == KEY_SILENCE:
                inbox.append(None)
                continue
            cid, text = self._keys[key] if 0 <= key < len(self._keys) else (f"clip{seq}", "")
            if clip_at >= 0 and clip_at + clip_n <= self.area_samples:
                clip = self._own[clip_at : clip_at + clip_n]
                clip[:] = self._area[clip_at : clip_at + clip_n]
            elif 0 <= key < len(self._clips):
                clip = self._clips[key]
            else:
                continue
            cue = Cue(
                cid,
                t_s=t_s,
                priority=prio,
                text=text,
                decided_mono=decided,
                stale_after_s=stale,
            )
            inbox.append((cue, clip))
        if r != self._r:
            self.taken += r - self._r
            self._r = r
            _COUNT.pack_into(mv, 8, r)

    def close(self) -> None:
        """Detach (after the stream has stopped: the callback must not run any more)."""
        if self._mv is None:
            return
        self._mv = None
        del self._area
        with contextlib.suppress(BufferError):  # a view still held: the process ends soon
            self.shm.close()


def _serve(conn: Any, settings: VoiceSettings, device: str | int | None, mailbox: str) -> None:
    """The child: open the sink, read cues from the mailbox in its callback, answer the pipe."""
    import signal

    from companion.voice.audio import AudioSink
    from companion.voice.library import load_library

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's: it closes us in order
    _c_stderr_to_null()
    _own_scheduling_group()
    # The callback waits for the GIL while this thread runs Python (answering the pipe);
    # by default it would get it only after 5 ms, longer than a small output buffer lasts
    sys.setswitchinterval(0.0005)

    notices: deque[tuple[bool, str]] = deque()  # the device gone or back, from its watchdog
    try:
        lib = load_library(settings)
        sink = AudioSink(
            settings, lib, device=device, report=lambda up, msg: notices.append((up, msg))
        )
        keys = list(sink.clips)
        reader = MailboxReader(mailbox, keys, [sink.clips[k] for k in keys])
    except CompanionError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    except Exception as exc:  # reported to the parent, which falls back to the console
        conn.send(("error", "AudioError", f"the audio process failed: {exc!r}"))
        return
    import gc

    gc.freeze()  # what start-up made is never scanned again: no long collection in a callback
    sink.player.mailbox = reader  # from now on the callback takes cues at every block
    conn.send(
        (
            "ready",
            {
                "rate_hz": sink.rate_hz,
                "block": sink.block,
                "latency_s": sink.output_latency_s,
                "device": sink.device,
                "keys": keys,
            },
        )
    )
    settled_at = time.monotonic() + 2.0  # underflows while the stream warms up do not count
    underflows_0: int | None = None
    try:
        while True:
            while notices:
                up, text = notices.popleft()
                conn.send(("device", up, text))
                if up:  # a new stream: its warm-up does not count either
                    settled_at, underflows_0 = time.monotonic() + 2.0, None
            if underflows_0 is None and time.monotonic() > settled_at:
                underflows_0 = sink.player.underflows
            elif underflows_0 is not None and sink.player.underflows - underflows_0 >= 3:
                conn.send(("warn", _dry_warning(sink.player.underflows - underflows_0, settings)))
                underflows_0 = 1 << 62  # once
            if conn.poll(0.05):
                msg = conn.recv()
                kind = msg[0]
                if kind == "wait_running":
                    conn.send(("reply", sink.wait_running(msg[1])))
                elif kind == "wait_idle":
                    conn.send(("reply", sink.wait_idle(msg[1])))
                elif kind == "stats":
                    conn.send(("reply", {**sink.stats(), "taken": reader.taken}))
                elif kind == "clips":
                    conn.send(("reply", sink.clips))
                elif kind == "close":
                    sink.close()
                    reader.close()
                    conn.send(("events", _plain(sink.drain_events())))
                    conn.send(("reply", {**sink.stats(), "taken": reader.taken}))
                    return
            events = sink.drain_events()
            if events:
                conn.send(("events", _plain(events)))
    except (EOFError, BrokenPipeError, OSError):  # the parent is gone: stop playing
        sink.close()
        reader.close()


def _own_scheduling_group() -> None:
    """A session of its own. Linux's scheduler shares the CPU between sessions first (the
    autogroup of desktop kernels) and then between the processes of each: in the run's
    session the audio process would pay for the run's own CPU use and wait behind it when it
    wakes; in its own, mostly asleep, it is woken at once. (Measured with two CPU hogs and a
    busy run on 2 cores, 10 ms blocks: 6-13 underflows in 90 s in the run's session, 0-1 in
    its own.) It leaves when the run closes the pipe, as before."""
    with contextlib.suppress(OSError, AttributeError):
        os.setsid()


def _c_stderr_to_null() -> None:
    """The audio process reports through the pipe; PortAudio's ALSA host prints a few lines of
    its own (to the C library's stderr) when a device vanishes mid-run. Those go to /dev/null;
    Python's own ``sys.stderr`` keeps the terminal, for a crash's traceback."""
    with contextlib.suppress(OSError):
        terminal = os.dup(2)
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        sys.stderr = open(terminal, "w", buffering=1, closefd=True)  # noqa: SIM115


def _dry_warning(n: int, settings: VoiceSettings) -> str:
    ms = settings.latency_ms or 3 * settings.block_ms
    now = f"{ms:g} ms" + ("" if settings.latency_ms else " (three blocks)")
    return (
        f"the audio output ran dry {n} times (gaps in the cues): raise voice.latency_ms "
        f"(now {now}; e.g. {2 * ms:g}) or voice.block_ms"
    )


def _plain(events: list[PlayerEvent]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.cue, e.t_mono, e.latency_s, e.frame) for e in events]


class ProcessAudioSink:
    """An :class:`~companion.voice.audio.AudioSink` in a child process; same interface.

    Parameters are those of ``AudioSink``. Raises :class:`AudioError` (or
    :class:`ConfigError` for a wrong voice) when the child cannot open the device.
    :meth:`play` writes the cue to the shared-memory mailbox the child's stream
    callback reads at every block; it never waits.
    """

    def __init__(
        self,
        settings: VoiceSettings,
        library: CueLibrary,
        *,
        device: str | int | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from companion.voice.sink import echo_cue

        self._echo_cue = echo_cue
        self.echo = echo
        self.library = library
        try:
            self._mailbox = MailboxWriter()
        except OSError as exc:  # no /dev/shm (some containers): say so, the caller falls back
            raise AudioError(f"no shared memory for the audio process ({exc})") from None
        ctx = multiprocessing.get_context("spawn")  # a fresh PortAudio, no forked threads
        self._conn, child = ctx.Pipe()
        child_settings = replace(settings, library=str(library.path))
        self._proc = ctx.Process(
            target=_serve,
            args=(child, child_settings, device, self._mailbox.name),
            daemon=True,
            name="companion-audio",
        )
        try:
            self._proc.start()
        except BaseException:
            self._mailbox.close()
            raise
        child.close()
        try:
            ready = self._conn.poll(START_TIMEOUT_S)
            msg = self._conn.recv() if ready else ("error", "AudioError", "no answer")
        except EOFError:
            msg = ("error", "AudioError", "the audio process ended at start")
        if msg[0] != "ready":
            self._proc.join(5)
            self._mailbox.close()
            err = ConfigError if msg[1] == "ConfigError" else AudioError
            raise err(msg[2])
        info = msg[1]
        self.rate_hz: int = info["rate_hz"]
        self.block: int = info["block"]
        self._latency_s: float = info["latency_s"]
        self.device = info["device"]
        self._keys: dict[tuple[str, str], int] = {
            (cid, text): i for i, (cid, text) in enumerate(info["keys"])
        }
        self._id_key: dict[str, int] = {}
        for (cid, _text), i in self._keys.items():
            self._id_key.setdefault(cid, i)
        self._sent: dict[tuple[str, float], Cue] = {}
        self.device_ok = True
        """False while the audio process says the device is gone: cues are printed only."""
        self.device_changes: list[tuple[bool, float]] = []
        """(device up, host time) each time it went away or came back."""
        self._warned: set[str] = set()
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
            if msg[0] == "warn":
                log.warning("%s", msg[1])
            elif msg[0] == "device":
                self.device_ok = msg[1]
                self.device_changes.append((msg[1], time.monotonic()))
                log.warning("%s", msg[2])
            elif msg[0] == "events":
                for kind, cue, t, lat, frame in msg[1]:
                    # the child knows a cue by id, text, priority and times; give back the
                    # cue the run loop sent (with its reason)
                    cue = self._sent.get((cue.id, cue.decided_mono), cue)
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

    def _remember(self, cue: Cue) -> None:
        sent = self._sent
        sent[(cue.id, cue.decided_mono)] = cue
        if len(sent) > 512:  # only the latest matter: events come back within seconds
            for k in list(sent)[:256]:
                del sent[k]

    def _posted(self, ok: bool) -> None:
        if self._closed:
            return
        if not self._proc.is_alive():  # (one waitpid, no waiting)
            log.warning("the audio process has stopped; cues are printed only")
            self._closed = True
        elif not ok and "full" not in self._warned:
            self._warned.add("full")
            log.warning("the audio process is not taking cues (stream stopped?); cue dropped")

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
        """Write the cue to the audio process's mailbox (never waits), then echo its line."""
        if cue.decided_mono == 0.0:
            cue = replace(cue, decided_mono=time.monotonic())
        key = self._keys.get((cue.id, cue.text))
        if key is not None and not self._closed and self.device_ok:
            self._remember(cue)
            self._posted(self._mailbox.post(cue, key))
        self._echo_cue(self.echo, cue)
        if key is None and cue.id not in self._warned:
            self._warned.add(cue.id)
            log.warning("cue %s: %r was not rendered at start; printed only", cue.id, cue.text)

    def submit_clip(self, cue: Cue, clip: np.ndarray) -> None:
        """Play an arbitrary clip as ``cue`` (benchmarks: live synthesis for comparison)."""
        key = self._keys.get((cue.id, cue.text), self._id_key.get(cue.id, KEY_ADHOC))
        self._remember(cue)
        self._posted(self._mailbox.post_clip(cue, key, clip))

    def silence(self) -> None:
        self._posted(self._mailbox.post_silence())

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
        self._mailbox.close()
