"""The run loop: source -> estimator -> cue policy -> voice, with a recorder tap.

:class:`Pipeline` is synchronous and fast: :meth:`Pipeline.feed` takes one batch,
records it, runs the estimator, lets the policy decide and hands cues to the
sink (which never blocks). :func:`run_source` is the asyncio part: it only moves
batches from a :class:`~companion.source.base.Source` into the pipeline. Demo,
replay and live runs all go through exactly this code.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from companion.coach.policy import CuePolicy
from companion.config import Config
from companion.errors import ConfigError
from companion.estimator.profile import RunnerProfile
from companion.estimator.streaming import StreamingEstimator
from companion.source.recording import RecordingWriter
from companion.types import Cue, LinkEvent, SampleBatch, SensorInfo, StrideReport
from companion.voice.library import CueLibrary, check_config_problems, load_library
from companion.voice.sink import Sink

if TYPE_CHECKING:  # (the source's module, with asyncio, only where a source runs)
    from companion.source.base import Source

EventHandler = Callable[[dict[str, Any]], None]


def load_checked_library(config: Config) -> CueLibrary:
    """The config's cue library, after checking every cue the run can say is in it.

    Raises :class:`ConfigError` (the same problems ``companion check-config`` lists)
    before a run starts rather than in the middle of it.
    """
    problems = check_config_problems(config)
    if problems:
        raise ConfigError(problems, config.source_path or None)
    return load_library(config.voice, config.resolve)


@dataclass
class RunSummary:
    """What a run did, for the closing summary."""

    duration_s: float = 0.0
    samples: Counter[str] = field(default_factory=Counter)
    strides: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    cues: Counter[str] = field(default_factory=Counter)
    cadence_spm: dict[str, float] = field(default_factory=dict)
    link_drops: Counter[str] = field(default_factory=Counter)
    hints: list[str] = field(default_factory=list)
    """Likely causes when a sensor gave no strides (units, mounting)."""

    def lines(self) -> list[str]:
        out = [f"summary: {self.duration_s:.1f} s of stream"]
        for sensor in sorted(self.samples):
            cad = self.cadence_spm.get(sensor)
            cad_txt = f", cadence {cad:.0f} steps/min" if cad else ""
            out.append(
                f"  {sensor}: {self.samples[sensor]} samples, {self.strides[sensor]} strides"
                f"{cad_txt}"
                + (f", {self.link_drops[sensor]} link drops" if self.link_drops[sensor] else "")
            )
        if self.labels:
            out.append("  labels: " + ", ".join(f"{k} {v}" for k, v in sorted(self.labels.items())))
        out.append(
            "  cues: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.cues.items())) if self.cues else "none")
        )
        out.extend(f"  hint: {h}" for h in self.hints)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "duration_s": round(self.duration_s, 3),
            "samples": dict(sorted(self.samples.items())),
            "strides": dict(sorted(self.strides.items())),
            "labels": dict(sorted(self.labels.items())),
            "cues": dict(sorted(self.cues.items())),
            "cadence_spm": {k: round(v, 1) for k, v in sorted(self.cadence_spm.items())},
            "hints": list(self.hints),
        }


def _r(x: float) -> float:
    return round(float(x), 4)


def stride_event(rep: StrideReport) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": "stride",
        "sensor": rep.sensor,
        "stride": rep.stride,
        "t_ic_s": _r(rep.t_ic_s),
        "t_to_s": _r(rep.t_to_s),
        "t_end_s": _r(rep.t_end_s),
        "t_decided_s": _r(rep.t_decided_s),
        "label": rep.label.value,
        "confidence": _r(rep.confidence),
        "baseline_ready": rep.baseline_ready,
    }
    if rep.carried:
        ev["carried"] = True
    for k, v in sorted(rep.features.items()):
        ev[k] = _r(v) if isinstance(v, float) else v
    return ev


class Pipeline:
    """Everything after the source, for one run.

    Parameters
    ----------
    config
        The validated config.
    sensors
        The source's sensors.
    sink
        Where cues go (audio or console); ``play`` must not block.
    library
        The cue library: priorities and phrasings.
    on_event
        Called with every stride, cue and link event as a JSON-ready dict.
    recorder
        If given, every batch is written to it before anything else happens.
    profile
        A saved relaxed baseline for this runner, if any.
    keep_curves
        Attach each stride's angle curves to its report (``StrideReport.curves``, for
        reports and plots; not needed to coach).
    on_report
        Called with every stride report (with its curves), before the policy sees it.
    """

    def __init__(
        self,
        config: Config,
        sensors: dict[str, SensorInfo],
        sink: Sink,
        *,
        library: CueLibrary,
        on_event: EventHandler | None = None,
        recorder: RecordingWriter | None = None,
        profile: RunnerProfile | None = None,
        clock: Callable[[], float] = time.monotonic,
        keep_curves: bool = False,
        on_report: Callable[[StrideReport], None] | None = None,
    ) -> None:
        self.config = config
        self.sensors = sensors
        self.sink = sink
        self.library = library
        self.on_event = on_event
        self.recorder = recorder
        self.clock = clock
        self.on_report = on_report
        self.estimator = StreamingEstimator(
            sensors, config.estimator, profile, keep_curves=keep_curves
        )
        enabled = config.voice.enabled_cues or None
        self.policy = CuePolicy(
            config.coach,
            priorities={cid: library.priority(cid) for cid in library.ids},
            enabled=enabled,
            landing_earcon=config.voice.landing_earcon,
            spoken_faults=config.voice.spoken_fault_cues,
        )
        self.summary = RunSummary()
        self._stride_ms: dict[str, Counter[int]] = {}
        """Stride durations per sensor, counted per whole millisecond: the cadence's median
        from a table that stays small however long the run (a list grew by every stride)."""
        self._t_first: float | None = None
        self._t_last = 0.0
        self.last_label: dict[str, str] = {}

    # ----------------------------------------------------------------- inputs
    def feed(self, batch: SampleBatch) -> list[StrideReport]:
        """Record, estimate, decide and speak for one batch; return its strides."""
        if len(batch) == 0:
            return []
        if self.recorder is not None:
            self.recorder.write(batch)
        self.summary.samples[batch.sensor] += len(batch)
        if self._t_first is None:
            self._t_first = float(batch.t_s[0])
        self._t_last = max(self._t_last, float(batch.t_s[-1]))
        reports = self.estimator.push(batch)
        for rep in reports:
            self._on_report(rep)
        return reports

    def link_changed(self, event: LinkEvent) -> None:
        if not event.up:
            self.summary.link_drops[event.sensor] += 1
        self._emit(
            {
                "type": "link",
                "sensor": event.sensor,
                "up": event.up,
                "t_s": _r(event.t_s),
                "reason": event.reason,
            }
        )
        for cue in self.policy.on_link(event):
            self._say(cue)

    def finish(self) -> RunSummary:
        for rep in self.estimator.finish():
            self._on_report(rep)
        s = self.summary
        s.duration_s = (self._t_last - self._t_first) if self._t_first is not None else 0.0
        for sensor, counts in self._stride_ms.items():
            if counts:
                s.cadence_spm[sensor] = 120.0 / (_median(counts) / 1000.0)
        s.hints = self.estimator.hints()
        return s

    # ----------------------------------------------------------------- internals
    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _on_report(self, rep: StrideReport) -> None:
        if self.on_report is not None:
            self.on_report(rep)
        self.summary.strides[rep.sensor] += 1
        self.summary.labels[rep.label.value] += 1
        self.last_label[rep.sensor] = rep.label.value
        stride_ms = round(1000.0 * (rep.t_end_s - rep.t_ic_s))
        self._stride_ms.setdefault(rep.sensor, Counter())[stride_ms] += 1
        self._emit(stride_event(rep))
        for cue in self.policy.on_stride(rep):
            self._say(cue)

    def _say(self, cue: Cue) -> None:
        cue = replace(cue, text=self.library.next_text(cue.id), decided_mono=self.clock())
        self.summary.cues[cue.id] += 1
        self._emit(
            {
                "type": "cue",
                "t_s": _r(cue.t_s),
                "id": cue.id,
                "text": cue.text,
                "priority": cue.priority,
                "reason": cue.reason,
            }
        )
        self.sink.play(cue)


def _median(counts: Counter[int]) -> float:
    """The median of values given as ``value: how many times``."""
    n = sum(counts.values())
    below, lo = 0, None
    for value in sorted(counts):
        below += counts[value]
        if lo is None and 2 * below >= n:
            lo = value
            if 2 * below > n or n % 2:
                return float(value)
        elif lo is not None:
            return (lo + value) / 2.0
    return float(lo if lo is not None else 0)


async def run_source(source: Source, pipeline: Pipeline) -> RunSummary:
    """Drive ``pipeline`` from ``source`` until it ends; always finish and close.

    The loop only moves data: every stage after the source is synchronous and
    fast, the sink plays audio off the loop.
    """
    try:
        async for item in source.batches():
            if isinstance(item, LinkEvent):
                pipeline.link_changed(item)
            else:
                pipeline.feed(item)
    finally:
        await source.aclose()
    return pipeline.finish()
