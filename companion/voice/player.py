"""The audio callback's side of the voice: which cue sounds now, sample by sample.

:class:`CuePlayer` is what the output stream's callback runs. The run loop hands it
cues with :meth:`CuePlayer.submit` (one ``deque.append``: no lock, never waits);
the callback takes them in at its next block and decides:

* a cue starts in the first callback after it was submitted, when nothing plays or
  when it has a **higher priority** than the cue playing, which is then cut short
  with a ``fade_ms`` raised-cosine fade under the new cue's first samples (no click);
* a cue of **equal or lower** priority waits until the one playing ends, then the
  highest-priority waiting cue starts (oldest first among equals) in the same block;
* a waiting cue past its staleness limit (``min(cue.stale_after_s, stale_after_s)``
  after its decision) is **dropped**, not played late;
* a cue whose id is already playing or waiting is dropped as a **duplicate**.

A cue can also come from a :attr:`CuePlayer.mailbox` (the audio process's shared-memory
mailbox, :class:`~companion.voice.audio_proc.MailboxReader`): the callback itself reads
it at the start of every block, so nothing has to wake up between the run loop's
decision and the callback that plays the cue.

Everything that happened goes to :attr:`CuePlayer.events` (a deque the callback
appends to) with host times, for logs, tests and latency figures. The callback does
array copies into buffers allocated once, and no locks, logging or I/O.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from companion.types import Cue

STARTED = "started"
FINISHED = "finished"
PREEMPTED = "preempted"
STALE = "dropped_stale"
DUPLICATE = "dropped_duplicate"
SILENCED = "silenced"


@dataclass(frozen=True, slots=True)
class PlayerEvent:
    """Something the callback did with a cue."""

    kind: str
    """``started``, ``finished``, ``preempted``, ``dropped_stale``, ``dropped_duplicate``
    or ``silenced``."""
    cue: Cue
    t_mono: float
    """Host monotonic time at the callback that did it."""
    latency_s: float
    """For ``started``: decision to first sample handed to the callback's buffer."""
    frame: int
    """Output frame count (samples since the stream started) where it happened."""


class _Playing:
    __slots__ = ("clip", "cue", "pos")

    def __init__(self, cue: Cue, clip: np.ndarray) -> None:
        self.cue = cue
        self.clip = clip
        self.pos = 0


class CuePlayer:
    """Mixes submitted cue clips into output blocks; :meth:`callback` is the stream callback.

    Parameters
    ----------
    rate_hz
        Output sample rate (clips must already be at this rate, mono float32).
    max_block
        Largest block the callback will be asked for (buffers are allocated once).
    fade_ms
        Fade-out of a cue cut short by a higher-priority one.
    stale_after_s
        Longest a cue may wait after its decision (a cue may ask for less).
    clock
        Host clock, ``time.monotonic`` (the clock of ``Cue.decided_mono``).
    """

    def __init__(
        self,
        rate_hz: int,
        *,
        max_block: int = 8192,
        fade_ms: float = 8.0,
        stale_after_s: float = 0.7,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_hz = int(rate_hz)
        self.stale_after_s = float(stale_after_s)
        self.clock = clock
        n_fade = max(round(fade_ms * rate_hz / 1000), 1)
        self._fade = (0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, n_fade + 2)[1:-1])).astype(
            np.float32
        )
        self._buf = np.zeros(max_block, np.float32)
        self._inbox: deque[tuple[Cue, np.ndarray] | None] = deque()
        self._waiting: list[_Playing] = []
        self._cur: _Playing | None = None
        self._fading: _Playing | None = None
        self._fade_pos = 0
        self._frame = 0
        self.mailbox: Any = None
        """A :class:`~companion.voice.audio_proc.MailboxReader` the callback reads each block
        (``take(inbox)`` appends what was written to it; ``pending()``), or None."""
        self.events: deque[PlayerEvent] = deque(maxlen=10000)
        self.blocks = 0
        """Callbacks run so far (to see that the stream is running at its pace)."""
        self.times = np.zeros(4096, np.float64)
        """Host times of the latest callbacks (a ring; ``blocks % len`` is the next), to see
        how the device paces them."""
        self.pace_from = 0.0
        """:meth:`pace` looks at callbacks from this host time on (after the warm-up)."""
        self.underflows = 0
        """Callbacks PortAudio flagged with an output underflow (a gap the listener heard)."""

    # ------------------------------------------------------------------ loop side
    def submit(self, cue: Cue, clip: np.ndarray) -> None:
        """Hand a cue to the callback (thread-safe, never blocks)."""
        self._inbox.append((cue, clip))

    def silence(self) -> None:
        """Fade out the playing cue and forget the waiting ones (at the next callback)."""
        self._inbox.append(None)

    @property
    def busy(self) -> bool:
        """True while a cue plays, fades, waits or is about to be taken in."""
        mb = self.mailbox
        return bool(
            self._cur
            or self._fading
            or self._waiting
            or self._inbox
            or (mb is not None and mb.pending())
        )

    def pace(self) -> dict[str, float]:
        """How the device calls back, from the latest callbacks (ms): the interval between
        callbacks (p50, p95, max) and the wait from a moment picked at random to the next
        callback (p50, p95), which is what a cue decided at that moment waits."""
        n = min(self.blocks, len(self.times))
        t = np.sort(self.times[:n])  # the ring, in time order
        t = t[t >= self.pace_from]
        if len(t) < 3:
            return {}
        d = np.diff(t)
        # moments drawn at random over the span (a cue's decision), each to the next callback;
        # the ring is read while the callback writes it: a figure for reports, not a clock
        q = np.random.default_rng(0).uniform(t[0], t[-1], 20000)
        w = t[np.searchsorted(t, q)] - q
        ms = 1000.0
        return {
            "interval_p50_ms": ms * float(np.median(d)),
            "interval_p95_ms": ms * float(np.percentile(d, 95)),
            "interval_max_ms": ms * float(d.max()),
            "wait_p50_ms": ms * float(np.median(w)),
            "wait_p95_ms": ms * float(np.percentile(w, 95)),
        }

    # ------------------------------------------------------------------ callback side
    def _limit(self, cue: Cue) -> float:
        return (
            min(cue.stale_after_s, self.stale_after_s)
            if cue.stale_after_s > 0
            else (self.stale_after_s)
        )

    def _event(self, kind: str, cue: Cue, now: float, latency_s: float = 0.0, at: int = 0) -> None:
        self.events.append(PlayerEvent(kind, cue, now, latency_s, self._frame + at))

    def _take_inbox(self, now: float) -> None:
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            if item is None:
                if self._cur is not None:
                    self._event(SILENCED, self._cur.cue, now)
                    self._fading, self._fade_pos = self._cur, 0
                    self._cur = None
                for w in self._waiting:
                    self._event(SILENCED, w.cue, now)
                self._waiting = []
                continue
            cue, clip = item
            if (self._cur is not None and self._cur.cue.id == cue.id) or any(
                w.cue.id == cue.id for w in self._waiting
            ):
                self._event(DUPLICATE, cue, now)
                continue
            self._waiting.append(_Playing(cue, clip))

    def _drop_stale(self, now: float) -> None:
        if not self._waiting:
            return
        keep = []
        for w in self._waiting:
            if now - w.cue.decided_mono > self._limit(w.cue):
                self._event(STALE, w.cue, now, now - w.cue.decided_mono)
            else:
                keep.append(w)
        self._waiting = keep

    def _best_waiting(self) -> int:
        """Index of the highest-priority waiting cue (the oldest among equals), or -1."""
        best = -1
        for i, w in enumerate(self._waiting):
            if best < 0 or w.cue.priority > self._waiting[best].cue.priority:
                best = i
        return best

    def _start(self, i: int, now: float, at: int) -> None:
        p = self._waiting.pop(i)
        self._cur = p
        lat = now - p.cue.decided_mono + at / self.rate_hz
        self._event(STARTED, p.cue, now, lat, at)

    def callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """The stream callback (sounddevice signature); fills ``outdata`` (frames, channels)."""
        now = self.clock()
        times = self.times
        times[self.blocks % len(times)] = now
        if status:
            self.underflows += bool(getattr(status, "output_underflow", False))
        mb = self.mailbox
        if mb is not None:
            mb.take(self._inbox)
        self._take_inbox(now)
        self._drop_stale(now)
        buf = self._buf[:frames]
        buf.fill(0.0)

        # preemption: a waiting cue above the playing one cuts it short with a fade
        if self._cur is not None and self._waiting:
            i = self._best_waiting()
            if self._waiting[i].cue.priority > self._cur.cue.priority:
                self._event(PREEMPTED, self._cur.cue, now)
                self._fading, self._fade_pos = self._cur, 0
                self._cur = None
                self._start(i, now, 0)

        # the fading tail of a cut cue, mixed under whatever starts now
        f = self._fading
        if f is not None:
            n = min(frames, len(self._fade) - self._fade_pos, len(f.clip) - f.pos)
            buf[:n] += f.clip[f.pos : f.pos + n] * self._fade[self._fade_pos : self._fade_pos + n]
            f.pos += n
            self._fade_pos += n
            if self._fade_pos >= len(self._fade) or f.pos >= len(f.clip):
                self._fading = None

        # the playing cue, then the next waiting ones back to back (no gap)
        at = 0
        while at < frames:
            if self._cur is None:
                i = self._best_waiting()
                if i < 0:
                    break
                self._start(i, now, at)
            cur = self._cur
            assert cur is not None
            n = min(frames - at, len(cur.clip) - cur.pos)
            buf[at : at + n] += cur.clip[cur.pos : cur.pos + n]
            cur.pos += n
            at += n
            if cur.pos >= len(cur.clip):
                self._event(FINISHED, cur.cue, now, 0.0, at)
                self._cur = None

        np.clip(buf, -1.0, 1.0, out=buf)
        outdata[:] = buf[:, None]
        self._frame += frames
        self.blocks += 1
