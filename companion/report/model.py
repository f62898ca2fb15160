"""What a run report shows, as plain data: built from a replay, no plotting here.

The rules the page draws (which feature each label is judged on, in which direction,
against which threshold setting) come from :func:`judging_criteria`, the one place the
report learns them: it reads the classifier's published table when there is one, so the
report follows the estimator without repeating its logic.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.config import Config
from companion.estimator import classify
from companion.estimator.classify import FeatureStats
from companion.estimator.settings import EstimatorSettings
from companion.pipeline import RunSummary
from companion.replaying import Replayed
from companion.scoring import RunScore
from companion.types import Label, StrideReport

LABEL_ORDER: tuple[str, ...] = tuple(lab.value for lab in Label)
LABEL_NAMES: dict[str, str] = {
    Label.RELAXED.value: "relaxed",
    Label.RIGID.value: "rigid ankle",
    Label.FORCED_DORSIFLEXION.value: "toes held up (forced dorsiflexion)",
    Label.FORCED_PLANTARFLEXION.value: "toes pointed (forced plantarflexion)",
}
LABEL_COLOURS: dict[str, str] = {
    Label.RELAXED.value: "#009E73",
    Label.RIGID.value: "#0072B2",
    Label.FORCED_DORSIFLEXION.value: "#E69F00",
    Label.FORCED_PLANTARFLEXION.value: "#CC79A7",
}
"""Each label's colour on the page and in the figures: the Okabe-Ito set, which readers
with a colour-vision deficiency can tell apart."""
FEATURE_NAMES: dict[str, str] = {
    "landing_deg": "landing angle (mean of the strike angle and the approach's highest)",
    "landing_peak_deg": "the approach's highest angle before contact",
    "strike_angle_deg": "foot strike angle at contact",
    "stance_still_dps": "foot rotation over its stillest 20 ms of stance",
    "pushoff_deg": "foot angle at push-off (lowest, just after toe-off)",
    "ankle_rom_deg": "ankle range of motion over the stride",
    "contact_ms": "ground contact time",
    "stride_range_deg": "foot's range of motion over the stride",
}
UNITS: tuple[tuple[str, str], ...] = (
    ("_deg", "deg"),
    ("_dps", "deg/s"),
    ("_ms", "ms"),
    ("_spm", "steps/min"),
    ("_pct", "%"),
    ("_s", "s"),
    ("_g", "g"),
)


def mmss(t_s: float, decimals: int = 0) -> str:
    """Seconds as ``m:ss`` (``m:ss.s`` with ``decimals=1``)."""
    t = round(abs(t_s), decimals)
    minutes, sec = divmod(t, 60.0)
    width = 2 + (decimals + 1 if decimals else 0)
    return f"{'-' if t_s < 0 else ''}{int(minutes)}:{sec:0{width}.{decimals}f}"


def feature_unit(name: str) -> str:
    """The unit a feature's name carries (``contact_ms`` -> ``ms``)."""
    return next((unit for suffix, unit in UNITS if name.endswith(suffix)), "")


def feature_title(name: str) -> str:
    """A reader's name for a feature, with its unit."""
    base = FEATURE_NAMES.get(name)
    if base is None:
        base = name
        for suffix, _ in UNITS:
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                break
        base = base.replace("_", " ")
    unit = feature_unit(name)
    return f"{base} ({unit})" if unit else base


# --------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class Criterion:
    """One rule of the classifier, as the report draws it.

    ``label`` is given when stride feature ``feature`` moves ``direction`` (+1 above,
    -1 below the runner's relaxed median) by more than the threshold setting ``setting``
    of :class:`EstimatorSettings` (in the feature's own unit; with ``scale = "pct"`` in
    percent of the baseline median), or by more than the noise guard when that is larger.
    ``needs``: ``"ankle"`` only where the stride has the ankle's features (a shank
    partner), ``"no_ankle"`` only where it has not, ``"any"`` always.
    """

    label: str
    feature: str
    direction: int
    setting: str
    scale: str = "abs"
    needs: str = "any"


def judging_criteria() -> tuple[Criterion, ...]:
    """The classifier's rules, from its published :data:`classify.CRITERIA` (the one
    place they are written down)."""
    return tuple(Criterion(*c) for c in classify.CRITERIA)


def mad_to_sd() -> float:
    """The classifier's MAD -> robust SD factor."""
    return float(getattr(classify, "MAD_TO_SD", 1.4826))


@dataclass(frozen=True)
class Threshold:
    """Where a criterion's threshold lies for this runner."""

    criterion: Criterion
    setting_value: float
    """The coach's setting (its own unit: the feature's, or % for ``scale = "pct"``)."""
    value: float
    """The feature value past which the label is given (feature unit)."""
    delta: float
    """Its distance from the baseline median."""
    set_delta: float
    """The distance the coach's setting alone asks for (``delta`` is larger when the
    noise guard raised it)."""

    @property
    def raised(self) -> bool:
        return self.delta > self.set_delta + 1e-9


def threshold(c: Criterion, stats: FeatureStats, settings: EstimatorSettings) -> Threshold:
    """The criterion's threshold against one baseline feature, noise guard included."""
    raw = float(getattr(settings, c.setting))
    set_delta = raw / 100.0 * abs(stats.median) if c.scale == "pct" else raw
    guard = settings.noise_guard_mads * mad_to_sd() * stats.mad
    delta = max(set_delta, guard)
    return Threshold(c, raw, stats.median + c.direction * delta, delta, set_delta)


@dataclass
class Panel:
    """One timeline panel: a stride feature with the thresholds drawn on it."""

    feature: str
    baseline: FeatureStats | None
    thresholds: list[Threshold] = field(default_factory=list)

    @property
    def band(self) -> tuple[float, float] | None:
        """The runner's relaxed spread: median +- one robust SD."""
        if self.baseline is None:
            return None
        sd = mad_to_sd() * self.baseline.mad
        return self.baseline.median - sd, self.baseline.median + sd


def panels_for(
    segment: str,
    baseline: Mapping[str, FeatureStats],
    settings: EstimatorSettings,
    criteria: Sequence[Criterion] | None = None,
) -> list[Panel]:
    """The timeline panels of one sensor: each feature its labels are judged on, in the
    order of the rules, with every threshold on it."""
    supported = {lab.value for lab in classify.SUPPORTED_LABELS.get(segment, frozenset())}
    has_ankle = "ankle_rom_deg" in baseline
    panels: dict[str, Panel] = {}
    for c in judging_criteria() if criteria is None else criteria:
        if c.label not in supported or c.label == Label.RELAXED.value:
            continue
        if (c.needs == "ankle" and not has_ankle) or (c.needs == "no_ankle" and has_ankle):
            continue
        stats = baseline.get(c.feature)
        panel = panels.setdefault(c.feature, Panel(c.feature, stats))
        if stats is not None:
            panel.thresholds.append(threshold(c, stats, settings))
    return list(panels.values())


# --------------------------------------------------------------------------- the run
@dataclass
class SensorRow:
    """One sensor's line of the summary."""

    name: str
    segment: str
    side: str
    rate_hz: float
    samples: int
    strides: int
    judged: int
    """Strides labelled against a baseline (the rest came while it was learned)."""
    cadence_spm: float | None
    contact_ms: float | None
    """Median ground contact time."""
    link_drops: int


@dataclass
class CueRow:
    """One cue as spoken, with the strides that made the policy say it."""

    number: int
    t_s: float
    id: str
    text: str
    reason: str
    sensor: str | None
    strides: list[Mapping[str, Any]]
    """The stride events behind it: for a fault cue the strides of its label among the
    last ``persist_n`` (the k of n), for the positive cue the last ``persist_k`` relaxed
    ones; empty for a link cue."""


def cue_rows(events: Sequence[Mapping[str, Any]], config: Config) -> list[CueRow]:
    """Every cue event of a replay, with the strides behind it.

    A cue follows, in the events, the stride whose report made the policy decide it;
    the policy's window is that sensor's last ``persist_n`` labelled strides (cleared
    when its link drops).
    """
    coach = config.coach
    windows: dict[str, deque[Mapping[str, Any]]] = defaultdict(
        lambda: deque(maxlen=coach.persist_n)
    )
    last_sensor: str | None = None
    rows: list[CueRow] = []
    for ev in events:
        kind = ev.get("type")
        if kind == "stride":
            last_sensor = str(ev["sensor"])
            if ev.get("baseline_ready"):
                windows[last_sensor].append(ev)
        elif kind == "link":
            last_sensor = None
            if not ev.get("up"):
                windows[str(ev["sensor"])].clear()
        elif kind == "cue":
            reason = str(ev.get("reason", ""))
            behind: list[Mapping[str, Any]] = []
            sensor = last_sensor if reason in LABEL_ORDER else None
            if sensor is not None:
                window = list(windows[sensor])
                if reason == Label.RELAXED.value:
                    behind = window[-coach.persist_k :]
                else:
                    behind = [
                        s
                        for s in window
                        if s.get("label") == reason
                        and float(s.get("confidence", 1.0)) >= coach.min_confidence
                    ]
            rows.append(
                CueRow(
                    len(rows) + 1,
                    float(ev["t_s"]),
                    str(ev.get("id", "")),
                    str(ev.get("text", "")),
                    reason,
                    sensor,
                    behind,
                )
            )
    return rows


def baselines_of(replayed: Replayed) -> dict[str, dict[str, FeatureStats]]:
    """Each sensor's relaxed baseline at the end of the replay (learned or loaded)."""
    out: dict[str, dict[str, FeatureStats]] = {}
    est = replayed.pipeline.estimator if replayed.pipeline is not None else None
    if est is None:
        return out
    tracks = getattr(est, "tracks", {})
    prof = est.profile()
    for name, info in replayed.recording.sensors.items():
        base = getattr(tracks.get(name), "baseline", None)
        if base is not None and base.ready:
            out[name] = dict(base.stats)
        elif prof is not None and info.segment in prof.segments:
            out[name] = dict(prof.segments[info.segment])
    return out


@dataclass
class RunReport:
    """Everything the page and the figures show."""

    name: str
    """The recording's name (file name without .csv / .csv.gz)."""
    path: Path
    metadata: dict[str, str]
    config_source: str
    baseline_source: str
    settings: EstimatorSettings
    summary: RunSummary
    sensors: list[SensorRow]
    labels: dict[str, Counter[str]]
    """Label -> strides per sensor."""
    cues: list[CueRow]
    reports: dict[str, list[StrideReport]]
    """Stride reports per sensor, in order."""
    figure_sensors: list[str]
    """The sensors that get figures: those whose labels become cues (the feet), or
    every sensor when there is none."""
    panels: dict[str, list[Panel]]
    score: RunScore | None = None
    truth_labels: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """Per sensor the true strides ``(t_ic_s, label)``, when ground truth sits beside it."""
    truth_note: str = ""
    """Why there is no confusion table (no truth beside it, or it could not be read)."""
    notes: list[str] = field(default_factory=list)
    """Warnings and hints to show on the page."""


def median_or_none(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def build_report(
    replayed: Replayed,
    config: Config,
    *,
    name: str,
    baseline_source: str,
    score: RunScore | None = None,
    truth_labels: Mapping[str, list[tuple[float, str]]] | None = None,
    truth_note: str = "",
    warnings: Sequence[str] = (),
) -> RunReport:
    """Gather what the page shows from a replay made with ``keep_curves=True``."""
    summary = replayed.summary if replayed.summary is not None else RunSummary()
    rec = replayed.recording
    by_sensor: dict[str, list[StrideReport]] = {n: [] for n in rec.sensors}
    for rep in replayed.reports:
        by_sensor.setdefault(rep.sensor, []).append(rep)
    rows = []
    labels: dict[str, Counter[str]] = {lab: Counter() for lab in LABEL_ORDER}
    for sensor, info in rec.sensors.items():
        reps = by_sensor[sensor]
        for rep in reps:
            labels.setdefault(rep.label.value, Counter())[sensor] += 1
        rows.append(
            SensorRow(
                sensor,
                info.segment,
                info.side,
                info.rate_hz,
                summary.samples[sensor],
                summary.strides[sensor],
                sum(1 for r in reps if r.baseline_ready),
                summary.cadence_spm.get(sensor),
                median_or_none([r.features.get("contact_ms", math.nan) for r in reps]),
                summary.link_drops[sensor],
            )
        )
    feet = [n for n, info in rec.sensors.items() if info.segment == "foot"]
    figure_sensors = feet or list(rec.sensors)
    baselines = baselines_of(replayed)
    panels = {
        s: panels_for(rec.sensors[s].segment, baselines.get(s, {}), config.estimator)
        for s in figure_sensors
    }
    notes = [f"warning: {w}" for w in warnings] + [f"hint: {h}" for h in summary.hints]
    return RunReport(
        name=name,
        path=replayed.path,
        metadata=dict(rec.metadata),
        config_source=config.source_path or "built-in defaults",
        baseline_source=baseline_source,
        settings=config.estimator,
        summary=summary,
        sensors=rows,
        labels=labels,
        cues=cue_rows(replayed.events, config),
        reports=by_sensor,
        figure_sensors=figure_sensors,
        panels=panels,
        score=score,
        truth_labels=dict(truth_labels or {}),
        truth_note=truth_note,
        notes=notes,
    )
