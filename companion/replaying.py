"""Replay a recording through the live pipeline and keep its events (for the tester's
commands: ``score``, and the tools built on it).

Exactly :class:`~companion.pipeline.Pipeline` as ``replay`` and a live run use it, fed
the same batches as ``replay --fast`` (:func:`replay_batches`); cues go nowhere (they are
kept as events), so nothing is spoken and nothing waits for a clock.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.config import Config
from companion.estimator.profile import RunnerProfile
from companion.pipeline import Pipeline, RunSummary, load_checked_library
from companion.source.recording import Recording, read_recording
from companion.types import SampleBatch, StrideReport
from companion.voice.library import CueLibrary
from companion.voice.sink import ConsoleSink

PACKET_S = 0.05
"""Packet length a replay of several sensors feeds the pipeline (as ``MemorySource``'s
default, about what a BLE notification carries)."""
ONE_SENSOR_BATCH_S = 2.0
"""Batch length a replay of one sensor feeds the pipeline: far fewer estimator calls (the
estimator's reports do not depend on batch sizes, and with one sensor neither does the
order the policy sees them in), so the output is the same as with :data:`PACKET_S`."""


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


def replay_batches(recording: Recording) -> list[SampleBatch]:
    """The batches a replay as fast as possible feeds the pipeline, in order.

    With several sensors their packets interleave by time as a live run's notifications
    would: when a foot's report comes out, and so what the cue policy decides, depends
    on how far the shank's samples have come. With one sensor nothing depends on the
    batch sizes, and larger batches save most of the per-call cost.
    """
    data = {name: b for name, b in recording.data.items() if len(b)}
    if len(data) != 1:
        from companion.source.base import interleave

        return list(interleave(data, PACKET_S))
    ((name, batch),) = data.items()
    n = max(1, round(ONE_SENSOR_BATCH_S * recording.sensors[name].rate_hz))
    return [batch.slice(i, i + n) for i in range(0, len(batch), n)]


def stream_span_s(recording: Recording) -> tuple[float, float]:
    """First and last sample time of the whole recording (all sensors)."""
    data = [b for b in recording.data.values() if len(b)]
    if not data:
        return 0.0, 0.0
    return min(float(b.t_s[0]) for b in data), max(float(b.t_s[-1]) for b in data)


def feed_recording(
    pipeline: Pipeline,
    recording: Recording,
    progress: Callable[[float], None] | None = None,
) -> RunSummary:
    """Feed every sample of ``recording`` to ``pipeline`` as fast as it goes; finish it.

    ``progress`` is called with the stream time reached after each batch.
    """
    for batch in replay_batches(recording):
        pipeline.feed(batch)
        if progress is not None:
            progress(float(batch.t_s[-1]))
    return pipeline.finish()


def replay_recording(
    recording: Recording,
    config: Config,
    *,
    profile: RunnerProfile | None = None,
    path: str | Path = "",
    keep_curves: bool = False,
    library: CueLibrary | None = None,
    progress: Callable[[float], None] | None = None,
) -> Replayed:
    """Push every sample of ``recording`` through a fresh pipeline; keep the events.

    ``keep_curves``: the pipeline keeps each stride's angle curves; the reports are then
    in ``Replayed.reports`` (events carry the figures, not the curves). ``library``: the
    config's cue library, already loaded and checked (else it is loaded here).
    ``progress`` is called with the fraction of the stream replayed (0..1) as it goes.
    """
    if library is None:
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
    t0, t1 = stream_span_s(recording)
    out.summary = feed_recording(
        pipeline,
        recording,
        None if progress is None else lambda t: progress((t - t0) / max(t1 - t0, 1e-9)),
    )
    out.pipeline = pipeline
    return out
