"""One line of status or progress on a terminal, rewritten in place; nothing when piped.

:class:`StatusLine` is the line itself (a live run's sensor status). :class:`Progress`
shows how far long work has come (``replay --fast`` of a long recording, ``score`` over a
folder, ``tune --sweep``, ``evaluate``): on stderr, only when stderr is a terminal, and
only once the work has taken longer than a moment, so short runs and pipes stay clean.
Command-line layer only: no stage imports this.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

CLEAR = "\r\x1b[K"
"""Back to the start of the line and erase it (any ANSI terminal)."""
DELAY_S = 0.5
"""Work shorter than this shows no progress at all (no flicker for quick commands)."""


def _out(text: str) -> None:
    print(text, flush=True)


class StatusLine:
    """One status line, rewritten in place on a terminal; nothing otherwise."""

    def __init__(self, stream: Any, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.text = ""

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self.text = text
        self.stream.write(CLEAR + text)
        self.stream.flush()

    def print_above(self, line: str) -> None:
        """Print a full line (a cue) without tearing the status line."""
        if self.enabled:
            self.stream.write(CLEAR + line + "\n" + self.text)
            self.stream.flush()
        else:
            _out(line)

    def clear(self) -> None:
        if self.enabled and self.text:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.text = ""


def on_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can rewrite a line (not a pipe, a file or a
    ``TERM=dumb`` console)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def _clock_text(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """How far a long piece of work has come, on one line of stderr.

    Parameters
    ----------
    what
        What is being done, e.g. ``"replay run.csv"``.
    total
        How much there is to do, in ``unit`` (stream seconds, recordings, settings).
    unit
        Shown after the figures (``"s of stream"``, ``"recordings"``).
    stream
        Where the line goes (stderr by default).
    enabled
        ``None``: when ``stream`` is a terminal. Piped output never sees the line.
    delay_s
        Nothing is shown before the work has taken this long (default :data:`DELAY_S`).
    every_s
        The line is redrawn at most this often.

    Use as a context manager: the line is erased at the end, leaving the terminal as
    it was. :meth:`print` writes a whole line (a cue, a warning) above it.
    """

    def __init__(
        self,
        what: str,
        total: float,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        delay_s: float | None = None,
        every_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = float(total)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = on_terminal(self.stream) if enabled is None else enabled
        self.delay_s = DELAY_S if delay_s is None else delay_s
        self.every_s = every_s
        self.clock = clock
        self.done = 0.0
        self.note = ""
        self._t0 = clock()
        self._drawn_at = -float("inf")
        self._line = StatusLine(self.stream, self.enabled)

    def update(self, done: float, note: str = "") -> None:
        """``done`` of ``total`` is finished; ``note`` says what comes next."""
        self.done = float(done)
        if note:
            self.note = note
        if not self.enabled:
            return
        now = self.clock()
        if now - self._t0 < self.delay_s or now - self._drawn_at < self.every_s:
            return
        self._drawn_at = now
        self._line.show(self.text(now))

    def advance(self, step: float = 1.0, note: str = "") -> None:
        self.update(self.done + step, note)

    def text(self, now: float | None = None) -> str:
        """The line as it would be shown now (cut to the terminal's width)."""
        now = self.clock() if now is None else now
        elapsed = now - self._t0
        frac = min(1.0, self.done / self.total) if self.total > 0 else 0.0
        width = 20
        bar = "#" * round(frac * width) + "." * (width - round(frac * width))
        if self.total.is_integer():  # things counted: the ones finished
            figures = f"{int(self.done)}/{int(self.total)}"
        else:
            figures = f"{self.done:.0f}/{self.total:.0f}"
        left = ""
        if 0.0 < frac < 1.0:
            left = f", {_clock_text(elapsed * (1.0 - frac) / frac)} left"
        unit = f" {self.unit}" if self.unit else ""
        note = f"  {self.note}" if self.note else ""
        line = f"{self.what} [{bar}] {100 * frac:3.0f}% {figures}{unit}{left}{note}"
        cols = shutil.get_terminal_size((80, 24)).columns
        return line[: max(10, cols - 1)]

    def print(self, line: str, stream: TextIO | None = None) -> None:
        """Write ``line`` (to ``stream``, stderr by default) without tearing the progress
        line, which is drawn again at the next update."""
        self.clear()
        print(line, file=stream if stream is not None else self.stream, flush=True)

    def clear(self) -> None:
        """Erase the line (it comes back at the next update)."""
        self._line.clear()
        self._drawn_at = -float("inf")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()
