"""The project's exceptions: one small hierarchy, every message says what to do.

The CLI catches :class:`CompanionError` and prints its message (no traceback);
anything else is a bug.
"""

from __future__ import annotations


class CompanionError(Exception):
    """Base of every error a user can cause and fix."""

    exit_code = 1


class ConfigError(CompanionError):
    """A config file (or a cue library) has a wrong value, type or key.

    ``problems`` lists every problem found, each already phrased for the user.
    """

    exit_code = 2

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = head + self.problems[0]
        else:
            msg = (
                head
                + f"{len(self.problems)} problems:\n"
                + "\n".join(f"  - {p}" for p in self.problems)
            )
        super().__init__(msg)


class RecordingError(CompanionError):
    """A recording file cannot be read: the message names the file and line."""

    exit_code = 3

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class SourceError(CompanionError):
    """A sample source failed (simulator arguments, device, link)."""

    exit_code = 4


class SensorError(SourceError):
    """A BLE sensor is missing, wrong, or sent something that cannot be decoded."""


class AudioError(CompanionError):
    """No usable audio output or speech engine; callers fall back to the console."""

    exit_code = 5
