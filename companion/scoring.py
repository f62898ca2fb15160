"""Score a replayed recording against the ground truth beside it.

Pure: events in (the JSON-ready stride and cue events a replay emits, see
:func:`companion.pipeline.stride_event`), figures out. Used by ``companion score``,
``tune`` and ``report``.

Ground truth sits beside a recording ``NAME.csv[.gz]``:

* ``NAME.labels.csv`` — ``sensor,stride,t_ic_s,label``, one row per true stride
  (required);
* ``NAME.truth.json`` — optional: per stride ``t_to_s`` (toe-off), ``fsa_deg`` (the foot
  strike angle, toes up positive), ``score`` (counted: running, not next to a change of
  label), and for the run ``setup``, ``rate_hz``, ``relaxed_only`` and the fault
  ``segments`` (``[label, first stride, end stride)``).

Matching (as the validation set's README describes it): each reported stride of a sensor
is matched to the nearest true initial contact within :data:`MATCH_S`; strides are
counted where the truth says ``score`` (else every stride from the sensor's first
labelled report on). Per label, an unmatched report inside the scored span is a false
positive of its label and a missed stride a miss of its true label. Labels are scored on
the sensor whose labels become cues: the foot's when there are foot and shank sensors (a
shank alone claims no ankle fault and is scored on timing only).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import RecordingError
from companion.types import FAULT_LABELS, Label

MATCH_S = 0.1
"""A report matches a true stride when their initial contacts are this close (s)."""
LABELS: tuple[str, ...] = tuple(lab.value for lab in Label)
FAULTS: frozenset[str] = frozenset(lab.value for lab in FAULT_LABELS)


# --------------------------------------------------------------------------- truth
@dataclass
class TrueStride:
    sensor: str
    stride: int
    t_ic_s: float
    label: str
    t_to_s: float = math.nan
    fsa_deg: float = math.nan
    score: bool = True


@dataclass
class GroundTruth:
    """A recording's ground truth: true strides per sensor and what is known of the run."""

    strides: dict[str, list[TrueStride]]
    run: dict[str, Any] = field(default_factory=dict)
    spells: list[tuple[str, float, float]] = field(default_factory=list)
    """Fault spells ``(label, t_start_s, t_end_s)`` on the labelling sensor's clock."""
    has_score_flags: bool = False

    @property
    def relaxed_only(self) -> bool:
        if "relaxed_only" in self.run:
            return bool(self.run["relaxed_only"])
        return all(s.label == Label.RELAXED.value for v in self.strides.values() for s in v)


def _spells_from_strides(strides: Sequence[TrueStride]) -> list[tuple[str, float, float]]:
    """Runs of one fault label, each from its first contact to the contact after its last."""
    out: list[tuple[str, float, float]] = []
    i = 0
    while i < len(strides):
        lab = strides[i].label
        j = i
        while j + 1 < len(strides) and strides[j + 1].label == lab:
            j += 1
        if lab in FAULTS:
            end = strides[j + 1].t_ic_s if j + 1 < len(strides) else strides[j].t_ic_s + 1.0
            out.append((lab, strides[i].t_ic_s, end))
        i = j + 1
    return out


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def load_truth(labels_file: Path, truth_file: Path | None = None) -> GroundTruth:
    """Read ``NAME.labels.csv`` (and ``NAME.truth.json`` when given and present).

    Raises :class:`RecordingError` naming the file for anything unreadable.
    """
    from companion.source.recording import read_labels

    rows = read_labels(labels_file)
    strides: dict[str, list[TrueStride]] = defaultdict(list)
    for r in rows:
        strides[r.sensor].append(TrueStride(r.sensor, r.stride, r.t_ic_s, r.label.value))
    for v in strides.values():
        v.sort(key=lambda s: s.t_ic_s)
    run: dict[str, Any] = {}
    flags = False
    if truth_file is not None and truth_file.exists():
        p = str(truth_file)
        try:
            raw = json.loads(truth_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordingError(p, None, f"cannot read the truth file ({exc})") from None
        if not isinstance(raw, dict):
            raise RecordingError(p, None, "the truth file is not a JSON object")
        run = {k: v for k, v in raw.items() if k != "strides"}
        per = raw.get("strides", [])
        if not isinstance(per, list):
            raise RecordingError(p, None, "'strides' must be a list")
        # one list of strides for the run: it applies to the labels of every sensor
        by_index = {}
        for item in per:
            if isinstance(item, dict) and "stride" in item:
                try:
                    by_index[int(item["stride"])] = item
                except (TypeError, ValueError):
                    raise RecordingError(p, None, f"bad stride number {item['stride']!r}") from None
        flags = any("score" in v for v in by_index.values())
        for v in strides.values():
            for s in v:
                item = by_index.get(s.stride)
                if item is None:
                    continue
                s.t_to_s = _num(item.get("t_to_s"))
                s.fsa_deg = _num(item.get("fsa_deg"))
                if "score" in item:
                    s.score = bool(item["score"])
    truth = GroundTruth(dict(strides), run, [], flags)
    return truth


def truth_spells(truth: GroundTruth, sensor: str) -> list[tuple[str, float, float]]:
    """Fault spells of ``sensor``'s true strides (from the truth file's segments, else
    from runs of one fault label)."""
    strides = truth.strides.get(sensor, [])
    segs = truth.run.get("segments")
    if isinstance(segs, list) and segs and strides:
        by_num = {s.stride: s for s in strides}
        out = []
        for seg in segs:
            try:
                lab, a, b = str(seg[0]), int(seg[1]), int(seg[2])
            except (TypeError, ValueError, IndexError):
                continue
            if lab not in FAULTS or a not in by_num:
                continue
            end = by_num[b].t_ic_s if b in by_num else by_num[max(by_num)].t_ic_s + 1.0
            out.append((lab, by_num[a].t_ic_s, end))
        return out
    return _spells_from_strides(strides)


# --------------------------------------------------------------------------- scores
@dataclass
class SensorScore:
    """Timing of one sensor's reports against its true strides."""

    sensor: str
    segment: str
    rate_hz: float
    true_strides: int = 0
    """Scored true strides."""
    found: int = 0
    """Scored true strides with a matching report."""
    reports: int = 0
    """Reports inside the scored span."""
    invented: int = 0
    """Reports inside the scored span that match no true stride."""
    ic_err_ms: list[float] = field(default_factory=list)
    to_err_ms: list[float] = field(default_factory=list)
    fsa_err_deg: list[float] = field(default_factory=list)

    @property
    def found_frac(self) -> float:
        return self.found / self.true_strides if self.true_strides else math.nan

    @property
    def invented_frac(self) -> float:
        return self.invented / self.reports if self.reports else math.nan


@dataclass
class RunScore:
    """Everything ``companion score`` measures on one recording."""

    name: str
    setup: str
    """``foot``, ``shank`` or ``foot+shank`` (what the recording's sensors are)."""
    label_sensor: str | None
    """The sensor whose labels are scored (None: a shank alone, timing only)."""
    sensors: dict[str, SensorScore] = field(default_factory=dict)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(true label, reported label or 'missed') -> strides; ('none', label) for a report
    that matches no true stride."""
    spells: int = 0
    spells_cued: int = 0
    spell_list: list[dict[str, Any]] = field(default_factory=list)
    relaxed_only: bool = False
    fault_cues: int = 0
    minutes: float = 0.0
    """Minutes of scored running (for false cues per 10 minutes on a relaxed run)."""

    def prf(self, label: str) -> tuple[float, float, float, int]:
        """Precision, recall, F1 and true strides of one label."""
        return label_prf(self.confusion, label)

    @property
    def false_cues_per_10min(self) -> float:
        if not self.relaxed_only or self.minutes <= 0:
            return math.nan
        return 10.0 * self.fault_cues / self.minutes

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "setup": self.setup,
            "label_sensor": self.label_sensor,
            "labels": {},
            "sensors": {},
        }
        if self.label_sensor is not None:
            for lab in LABELS:
                p, r, f, n = self.prf(lab)
                out["labels"][lab] = {
                    "precision": _j(p),
                    "recall": _j(r),
                    "f1": _j(f),
                    "strides": n,
                }
            out["confusion"] = {f"{t}->{p}": v for (t, p), v in sorted(self.confusion.items())}
        for name, s in self.sensors.items():
            out["sensors"][name] = {
                "segment": s.segment,
                "rate_hz": s.rate_hz,
                "true_strides": s.true_strides,
                "found": s.found,
                "found_frac": _j(s.found_frac),
                "reports": s.reports,
                "invented": s.invented,
                "invented_frac": _j(s.invented_frac),
                "contact_error_ms": _stats(s.ic_err_ms),
                "toe_off_error_ms": _stats(s.to_err_ms),
                "strike_angle_error_deg": _bias_sd(s.fsa_err_deg),
            }
        out["fault_spells"] = self.spells
        out["fault_spells_cued"] = self.spells_cued
        out["spells"] = self.spell_list
        out["relaxed_only"] = self.relaxed_only
        out["fault_cues"] = self.fault_cues
        out["minutes"] = round(self.minutes, 3)
        out["false_cues_per_10min"] = _j(self.false_cues_per_10min)
        return out


def _j(x: float) -> float | None:
    """A JSON-safe float (NaN -> null)."""
    return None if x != x else round(float(x), 4)


def _stats(errs: Sequence[float]) -> dict[str, float | int | None]:
    if not errs:
        return {"n": 0, "median": None, "p95": None, "mean": None}
    a = np.asarray(errs, dtype=float)
    return {
        "n": len(a),
        "median": _j(float(np.median(a))),
        "median_abs": _j(float(np.median(np.abs(a)))),
        "p95": _j(float(np.percentile(np.abs(a), 95))),
        "mean": _j(float(np.mean(a))),
    }


def _bias_sd(errs: Sequence[float]) -> dict[str, float | int | None]:
    if not errs:
        return {"n": 0, "mean": None, "sd": None}
    a = np.asarray(errs, dtype=float)
    return {"n": len(a), "mean": _j(float(a.mean())), "sd": _j(float(a.std()))}


def setup_of(segments: Iterable[str]) -> str:
    segs = set(segments)
    if segs == {"foot"}:
        return "foot"
    if segs == {"shank"}:
        return "shank"
    return "foot+shank"


def label_prf(
    confusion: Mapping[tuple[str, str], int], label: str
) -> tuple[float, float, float, int]:
    """Precision, recall, F1 and true strides of ``label`` from a confusion count of
    (true label, reported label) pairs; NaN where there is nothing to divide by."""
    tp = confusion.get((label, label), 0)
    fp = sum(v for (t, p), v in confusion.items() if p == label and t != label)
    fn = sum(v for (t, p), v in confusion.items() if t == label and p != label)
    prec = tp / (tp + fp) if tp + fp else math.nan
    rec = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return prec, rec, f1, tp + fn


def nearest_event(t_true: np.ndarray, t: float) -> int | None:
    """Index of the true event nearest to ``t`` (s) in the sorted ``t_true``, if within
    :data:`MATCH_S`."""
    if len(t_true) == 0:
        return None
    k = int(np.searchsorted(t_true, t))
    best = None
    for j in (k - 1, k):
        if 0 <= j < len(t_true) and (best is None or abs(t_true[j] - t) < abs(t_true[best] - t)):
            best = j
    if best is None or abs(t_true[best] - t) > MATCH_S:
        return None
    return best


def score_events(
    name: str,
    events: Sequence[Mapping[str, Any]],
    truth: GroundTruth,
    sensors: Mapping[str, tuple[str, float]],
) -> RunScore:
    """Score one replay.

    ``events``: the replay's stride and cue events (dicts as ``replay --json`` prints).
    ``sensors``: sensor name -> (segment, rate Hz) of the recording.
    """
    setup = setup_of(seg for seg, _ in sensors.values())
    feet = sorted(n for n, (seg, _) in sensors.items() if seg == "foot" and n in truth.strides)
    label_sensor = feet[0] if feet else None
    res = RunScore(name, setup, label_sensor, relaxed_only=truth.relaxed_only)
    by_sensor: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for ev in events:
        if ev.get("type") == "stride":
            by_sensor[str(ev["sensor"])].append(ev)
    for sensor, (segment, rate) in sensors.items():
        true = truth.strides.get(sensor)
        if not true:
            continue
        reps = by_sensor.get(sensor, [])
        sc = SensorScore(sensor, segment, float(rate))
        res.sensors[sensor] = sc
        if truth.has_score_flags:
            counted = [s.score for s in true]
        else:
            # no flags: from the sensor's first labelled report on
            first = next((float(r["t_ic_s"]) for r in reps if r.get("baseline_ready")), math.inf)
            counted = [s.t_ic_s >= first - MATCH_S for s in true]
        t_true = np.array([s.t_ic_s for s in true])
        idx = np.flatnonzero(counted)
        if len(idx) == 0:
            continue
        lo, hi = t_true[idx[0]] - MATCH_S, t_true[idx[-1]] + MATCH_S
        matched: dict[int, Mapping[str, Any]] = {}
        scoring_labels = sensor == label_sensor
        for r in reps:
            t = float(r["t_ic_s"])
            j = nearest_event(t_true, t)
            if j is not None and j not in matched:
                matched[j] = r
                continue
            if lo <= t <= hi and (j is None or counted[j]):
                # a report that matches no true stride (or one already matched)
                sc.reports += 1
                sc.invented += 1
                if scoring_labels:
                    res.confusion[("none", str(r["label"]))] += 1
        for j in idx:
            s = true[j]
            sc.true_strides += 1
            r = matched.get(int(j))
            if r is None:
                if scoring_labels:
                    res.confusion[(s.label, "missed")] += 1
                continue
            sc.found += 1
            sc.reports += 1
            sc.ic_err_ms.append(1000.0 * (float(r["t_ic_s"]) - s.t_ic_s))
            if math.isfinite(s.t_to_s) and "t_to_s" in r:
                sc.to_err_ms.append(1000.0 * (float(r["t_to_s"]) - s.t_to_s))
            fsa = r.get("strike_angle_deg")
            if segment == "foot" and math.isfinite(s.fsa_deg) and fsa is not None:
                sc.fsa_err_deg.append(float(fsa) - s.fsa_deg)
            if scoring_labels:
                res.confusion[(s.label, str(r["label"]))] += 1
        if sensor == label_sensor or (label_sensor is None and res.minutes == 0):
            res.minutes = (hi - lo) / 60.0
    # cues: fault spells cued while on, and fault cues on a relaxed run
    cues = [ev for ev in events if ev.get("type") == "cue"]
    fault_cues = [c for c in cues if str(c.get("reason")) in FAULTS]
    if label_sensor is not None:
        spells = truth_spells(truth, label_sensor)
        scored = res.sensors.get(label_sensor)
        true = truth.strides[label_sensor]
        first_scored = next((s.t_ic_s for s in true if s.score), math.inf)
        if not truth.has_score_flags and scored is not None:
            first_scored = -math.inf
        for lab, a, b in spells:
            if b < first_scored:
                continue  # the baseline period: no cue is owed
            hit = [float(c["t_s"]) for c in fault_cues if c["reason"] == lab and a <= c["t_s"] < b]
            res.spells += 1
            res.spells_cued += bool(hit)
            res.spell_list.append(
                {
                    "label": lab,
                    "t_start_s": round(a, 3),
                    "t_end_s": round(b, 3),
                    "cued_at_s": round(hit[0], 3) if hit else None,
                }
            )
    if res.relaxed_only:
        res.fault_cues = len(fault_cues)
    return res


# --------------------------------------------------------------------------- summary
@dataclass
class Pooled:
    """Several recordings' scores added up (per set-up, or all)."""

    name: str
    runs: list[RunScore] = field(default_factory=list)

    def confusion(self) -> Counter[tuple[str, str]]:
        c: Counter[tuple[str, str]] = Counter()
        for r in self.runs:
            c.update(r.confusion)
        return c

    def prf(self, label: str) -> tuple[float, float, float, int]:
        return label_prf(self.confusion(), label)

    def sensors(self, segment: str | None = None) -> list[SensorScore]:
        return [s for r in self.runs for s in r.sensors.values() if segment in (None, s.segment)]

    def scored_sensors(self, segment: str | None = None) -> list[SensorScore]:
        """The sensor each recording is scored on: the labelling (foot) sensor where there
        is one, else every sensor (a shank alone)."""
        out = []
        for r in self.runs:
            for name, s in r.sensors.items():
                if segment not in (None, s.segment):
                    continue
                if r.label_sensor is None or name == r.label_sensor:
                    out.append(s)
        return out

    def found(self, segment: str | None = None) -> tuple[int, int, int, int]:
        ss = self.scored_sensors(segment)
        return (
            sum(s.found for s in ss),
            sum(s.true_strides for s in ss),
            sum(s.invented for s in ss),
            sum(s.reports for s in ss),
        )

    def errors(
        self, attr: str, segment: str | None = None, rate: float | None = None
    ) -> list[float]:
        return [
            e
            for s in self.scored_sensors(segment)
            if rate is None or s.rate_hz == rate
            for e in getattr(s, attr)
        ]

    def spells(self) -> tuple[int, int]:
        return sum(r.spells_cued for r in self.runs), sum(r.spells for r in self.runs)

    def false_cues(self) -> tuple[int, float]:
        relaxed = [r for r in self.runs if r.relaxed_only]
        return sum(r.fault_cues for r in relaxed), sum(r.minutes for r in relaxed)


def _f(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None or x != x else f"{x:.{nd}f}"


def format_run(res: RunScore) -> str:
    """A recording's score as a few readable lines."""
    lines = [f"{res.name} ({res.setup})"]
    if res.label_sensor is not None:
        cells = []
        for lab in LABELS:
            p, r, f, n = res.prf(lab)
            if n or p == p:
                cells.append(f"{lab} P {_f(p)} R {_f(r)} F1 {_f(f)} (n {n})")
        lines.append("  labels (" + res.label_sensor + "): " + "; ".join(cells))
    else:
        lines.append("  labels: a shank alone claims no ankle fault (timing only)")
    for s in res.sensors.values():
        ic = _stats(s.ic_err_ms)
        to = _stats(s.to_err_ms)
        line = (
            f"  {s.sensor} ({s.segment}, {s.rate_hz:g} Hz): found {s.found}/{s.true_strides} "
            f"({_f(100 * s.found_frac, 1)} %), invented {s.invented}; contact error median "
            f"{_f(ic['median'], 1)} ms, p95 |err| {_f(ic['p95'], 1)} ms"
        )
        if to["n"]:
            line += f"; toe-off median {_f(to['median'], 1)} ms"
        if s.fsa_err_deg:
            b = _bias_sd(s.fsa_err_deg)
            line += f"; strike angle error {_f(b['mean'], 1)} ± {_f(b['sd'], 1)} deg"
        lines.append(line)
    if res.spells:
        lines.append(f"  fault spells cued while on: {res.spells_cued}/{res.spells}")
    if res.relaxed_only:
        lines.append(
            f"  relaxed run: {res.fault_cues} fault cue(s) in {res.minutes:.1f} min "
            f"({_f(res.false_cues_per_10min)} per 10 min)"
        )
    return "\n".join(lines)


def format_summary(runs: Sequence[RunScore]) -> str:
    """Markdown tables over several recordings: one row per recording, then per set-up."""
    lines = [
        "Strides found, invented and contact error are the foot's where there are foot and "
        "shank (the shank's own are in each recording's lines above).",
        "",
        "| recording | set-up | rate (Hz) | strides found | invented | F1 relaxed / rigid / "
        "dorsiflexion / plantarflexion | contact error median / p95 (ms) | strike angle error "
        "mean / SD (deg) | spells cued | false cues / 10 min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(_row(Pooled(r.name, [r]), r.setup, _rates(r)))
    groups: dict[str, list[RunScore]] = defaultdict(list)
    for r in runs:
        groups[r.setup].append(r)
    if len(runs) > 1:
        for setup, rs in sorted(groups.items()):
            lines.append(_row(Pooled(f"**all {setup}**", rs), setup, "all"))
    return "\n".join(lines)


def _rates(r: RunScore) -> str:
    return "/".join(sorted({f"{s.rate_hz:g}" for s in r.sensors.values()}))


def _row(p: Pooled, setup: str, rates: str) -> str:
    found, true, inv, reps = p.found()
    f1 = "timing only" if setup == "shank" else " / ".join(_f(p.prf(lab)[2]) for lab in LABELS)
    ic = p.errors("ic_err_ms")
    a = np.abs(np.asarray(ic)) if ic else None
    ic_txt = (
        f"{_f(float(np.median(ic)), 1)} / {_f(float(np.percentile(a, 95)), 1)}"
        if a is not None
        else "n/a"
    )
    fsa = p.errors("fsa_err_deg")
    fsa_txt = f"{_f(float(np.mean(fsa)), 1)} / {_f(float(np.std(fsa)), 1)}" if fsa else "n/a"
    cued, spells = p.spells()
    n_false, minutes = p.false_cues()
    false_txt = f"{_f(10 * n_false / minutes)} ({n_false} in {minutes:.1f} min)" if minutes else ""
    found_txt = f"{_f(100 * found / true, 1)} % ({found}/{true})" if true else "n/a"
    inv_txt = f"{_f(100 * inv / reps, 1)} %" if reps else "n/a"
    spells_txt = f"{cued}/{spells}" if spells else ""
    return (
        f"| {p.name} | {setup} | {rates} | {found_txt} | {inv_txt} | {f1} | {ic_txt} | "
        f"{fsa_txt} | {spells_txt} | {false_txt} |"
    )
