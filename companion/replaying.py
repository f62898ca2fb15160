"""Replay a recording through the live pipeline and keep its events (for the tester's
commands: ``score``, and the tools built on it).

Exactly :class:`~companion.pipeline.Pipeline` as ``replay`` and a live run use it, fed
the same BLE-sized packets as ``replay --fast``; cues go nowhere (they are kept as
events), so nothing is spoken and nothing waits for a clock.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.config import Config
from companion.estimator.profile import RunnerProfile
from companion.pipeline import Pipeline, RunSummary, load_checked_library
from companion.source.base import interleave
from companion.source.recording import Recording, read_recording
from companion.types import StrideReport
from companion.voice.sink import ConsoleSink

PACKET_S = 0.05
"""Packet length the replay feeds the pipeline (as ``MemorySource``'s default)."""


@dataclass
class Replayed:
    """One recording, replayed: its events (as ``replay --json`` prints them) and summary."""

    path: Path
    recording: Recording
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: RunSummary | None = None
    warnings: list[str] = field(default_factory=list)
    pipeline: Pipeline | None = None
    reports: list[StrideReport] = field(default_factory=list)
    """Every stride report the estimator gave, in order (with curves when asked for)."""


def read_with_warnings(path: str | Path) -> tuple[Recording, list[str]]:
    """Read a recording; the reader's warnings (a truncated last line ...) as text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(path)
    return rec, [str(w.message) for w in caught]


def replay_recording(
    recording: Recording,
    config: Config,
    *,
    profile: RunnerProfile | None = None,
    path: str | Path = "",
    keep_curves: bool = False,
) -> Replayed:
    """Push every sample of ``recording`` through a fresh pipeline; keep the events.

    ``keep_curves``: the pipeline keeps each stride's angle curves; the reports are then
    in ``Replayed.reports`` (events carry the figures, not the curves).
    """
    library = load_checked_library(config)
    out = Replayed(Path(path), recording)
    pipeline = Pipeline(
        config,
        recording.sensors,
        ConsoleSink(lambda _text: None),
        library=library,
        on_event=out.events.append,
        profile=profile,
        keep_curves=keep_curves,
        on_report=out.reports.append,
    )
    for batch in interleave(recording.data, PACKET_S):
        pipeline.feed(batch)
    out.summary = pipeline.finish()
    out.pipeline = pipeline
    return out
