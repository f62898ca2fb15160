"""Measure the estimator against simulated runners with known ground truth.

For each simulated runner (random cadence, strike style, range of motion, noise,
3-D mounting, sampling rate, packet loss, timestamp jitter; with ``world="wide"`` the
simulator's wide world: fault sizes in bands from just over the thresholds to large,
50-406 Hz, 10-200 ms packets, dropouts, clipping, clock drift, host timestamps, fast
running, braking, turns) and each sensor set-up, the run is fed
through :class:`~companion.estimator.streaming.StreamingEstimator` in BLE-sized
packets and every reported stride is matched to the true stride with the nearest
initial contact. Reported:

* per-label precision / recall / F1 after the baseline period (labels the set-up
  supports only; strides of an unsupported fault count as that fault's truth and
  can only be missed),
* initial-contact timing error (median, 95th percentile), per sampling rate,
* decision latency: true closing IC -> ``t_decided_s`` of the stride's report, for the
  sensors that claim ankle labels (a cue comes from those) and, apart, for the others
  (a shank alone reports timing and impact only),
* stride detection: true strides found, reports that match no true stride,
* false fault cues per 10 minutes on fully relaxed runs, through the lead's
  :class:`~companion.coach.policy.CuePolicy` with default settings; on the faulted
  runs, the fault spells cued while they went on and the positive cues (none may come
  while a fault still goes on).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.estimator.settings import EstimatorSettings
from companion.estimator.streaming import StreamingEstimator
from companion.scoring import MATCH_S, label_prf, nearest_event
from companion.types import FAULT_LABELS, Label, SampleBatch, StrideReport

if TYPE_CHECKING:
    from companion.source.simulator import RunConditions, RunnerParams

SETUPS: dict[str, tuple[str, ...]] = {
    "foot": ("foot",),
    "shank": ("shank",),
    "foot+shank": ("foot", "shank"),
}
RATES_HZ = (50.0, 100.0, 200.0, 400.0)
WIDE_RATES_HZ = (50.0, 104.0, 200.0, 406.0, 52.0, 100.0, 208.0, 400.0)
"""The wide world's runners take these rates in turn: eight runners cover each."""
MAX_JITTER_PERIODS = 0.1
"""Each runner's timestamp jitter (std) is drawn from 0 to this many sample periods (the
default of ``evaluate``)."""


@dataclass
class RunnerCase:
    """One simulated runner of the evaluation."""

    seed: int
    rate_hz: float
    packet_loss: float
    faults: list[tuple[float, float, str]]
    duration_s: float
    jitter_s: float = 0.0
    """Timestamp jitter (std, s)."""
    runner: RunnerParams | None = None
    """The wide world's runner (None: the classic ``RunnerParams.random`` of ``seed``)."""
    conditions: RunConditions | None = None
    """The wide world's sensors, link and course (None: the classic ones above)."""
    bands: dict[str, str] = field(default_factory=dict)
    """The wide world's fault size band of each fault (near, moderate, large)."""

    def runner_params(self) -> RunnerParams:
        from companion.source.simulator import RunnerParams

        return self.runner or RunnerParams.random(np.random.default_rng(self.seed))

    def simulate_kwargs(self) -> dict[str, Any]:
        """Everything ``simulate`` takes for this case besides runner, faults and sensors."""
        if self.conditions is not None:
            return self.conditions.kwargs()
        return {"rate_hz": self.rate_hz, "packet_loss": self.packet_loss, "jitter_s": self.jitter_s}


@dataclass
class SetupResult:
    """Everything measured for one sensor set-up."""

    setup: str
    supported: dict[str, set[Label]] = field(default_factory=dict)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(true label, reported label) -> strides, after the baseline period."""
    ic_err_ms: dict[float, list[float]] = field(default_factory=lambda: defaultdict(list))
    to_err_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    """Decision latency of the strides of sensors that claim ankle labels (the ones a cue
    can come from)."""
    timing_latency_ms: list[float] = field(default_factory=list)
    """The same for sensors that claim none (a shank alone reports timing and impact)."""
    true_strides: int = 0
    found_strides: int = 0
    extra_reports: int = 0
    relaxed_minutes: float = 0.0
    false_cues: int = 0
    fault_segments: int = 0
    """Fault spells of the faulted runs on sensors that claim labels, and how many of
    them got their own cue while they went on."""
    segments_cued: int = 0
    praise: int = 0
    """Positive cues on the faulted runs, and those said while a fault still went on."""
    praise_in_fault: int = 0
    praise_delay_s: list[float] = field(default_factory=list)
    """From the end of a fault spell to the positive cue after it (s)."""
    runners: int = 0
    samples: int = 0
    seconds: float = 0.0

    # ------------------------------------------------------------------ metrics
    def labels_scored(self) -> list[Label]:
        """Labels some sensor of the set-up claims (a shank alone claims none)."""
        sup: set[Label] = set()
        for s in self.supported.values():
            if s != {Label.RELAXED}:
                sup |= s
        return [lab for lab in Label if lab in sup]

    def prf(self, label: Label) -> tuple[float, float, float, int]:
        """As ``companion score`` counts them; F1 0 (not NaN) for a label never seen."""
        prec, rec, f1, n = label_prf(self.confusion, label.value)
        return prec, rec, 0.0 if np.isnan(f1) else f1, n

    def ic_stats(self, rate_hz: float | None = None) -> tuple[float, float, int]:
        if rate_hz is None:
            errs = [e for v in self.ic_err_ms.values() for e in v]
        else:
            errs = list(self.ic_err_ms.get(rate_hz, []))
        if not errs:
            return float("nan"), float("nan"), 0
        a = np.abs(np.asarray(errs))
        return float(np.median(a)), float(np.percentile(a, 95)), len(a)

    def latency_stats(self, labels: bool = True) -> tuple[float, float, float]:
        """Median, p95, max of the decision latency (ms) of the label-bearing sensors'
        strides, or (``labels=False``) of the other sensors' timing reports."""
        values = self.latency_ms if labels else self.timing_latency_ms
        if not values:
            return float("nan"), float("nan"), float("nan")
        a = np.asarray(values)
        return float(np.median(a)), float(np.percentile(a, 95)), float(a.max())

    def false_cues_per_10min(self) -> float:
        return 10.0 * self.false_cues / self.relaxed_minutes if self.relaxed_minutes else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"setup": self.setup, "runners": self.runners, "labels": {}}
        for lab in self.labels_scored():
            p, r, f, n = self.prf(lab)
            out["labels"][lab.value] = {"precision": p, "recall": r, "f1": f, "strides": n}
        med, p95, n = self.ic_stats()
        out["ic_error_ms"] = {"median": med, "p95": p95, "n": n}
        out["ic_error_ms_by_rate"] = {
            str(int(r)): dict(zip(("median", "p95", "n"), self.ic_stats(r), strict=True))
            for r in sorted(self.ic_err_ms)
        }
        lm, lp, lx = self.latency_stats()
        out["latency_ms"] = {"median": lm, "p95": lp, "max": lx}
        lm, lp, lx = self.latency_stats(labels=False)
        out["timing_latency_ms"] = {"median": lm, "p95": lp, "max": lx}
        out["strides_found"] = self.found_strides / self.true_strides if self.true_strides else 0
        out["extra_reports"] = self.extra_reports
        out["false_cues_per_10min"] = self.false_cues_per_10min()
        out["fault_segments"] = self.fault_segments
        out["fault_segments_cued"] = self.segments_cued
        out["positive_cues"] = self.praise
        out["positive_cues_during_a_fault"] = self.praise_in_fault
        out["positive_cue_delay_s_median"] = (
            float(np.median(self.praise_delay_s)) if self.praise_delay_s else float("nan")
        )
        out["relaxed_minutes"] = self.relaxed_minutes
        return out


def fault_schedule(
    rng: np.random.Generator, duration_s: float, world: str = "classic"
) -> list[tuple[float, float, str]]:
    """Relaxed warm-up (alignment + baseline strides + margin: 70 s), then the faults in
    random order with relaxed spells between (classic: each once in equal blocks; wide:
    spells of 12-30 s repeated to the end, see ``simulator.random_faults``)."""
    from companion.source.simulator import random_faults

    return [(f.start_s, f.end_s, f.label.value) for f in random_faults(rng, duration_s, world)]


def make_cases(
    n_runners: int,
    minutes: float,
    seed: int,
    max_jitter: float = MAX_JITTER_PERIODS,
    world: str = "classic",
) -> list[RunnerCase]:
    """The evaluation's runners. classic: rates 50-400 Hz in turn, 0-5 % packet loss,
    jitter up to ``max_jitter`` periods. wide: the simulator's wide world, rates of
    :data:`WIDE_RATES_HZ` in turn, the sides alternating, and each fault's size band
    (near, moderate, large) rotating so that every band of every fault is there from
    three runners on (``max_jitter`` is the wide world's own, up to 0.1 periods)."""
    if world == "wide":
        return _wide_cases(n_runners, minutes, seed)
    rng = np.random.default_rng(seed)
    jitter_rng = np.random.default_rng([seed, 7])
    cases = []
    for i in range(n_runners):
        dur = minutes * 60.0
        rate_hz = RATES_HZ[i % len(RATES_HZ)]
        cases.append(
            RunnerCase(
                seed=seed * 1000 + i,
                rate_hz=rate_hz,
                packet_loss=float(rng.uniform(0.0, 0.05)),
                faults=fault_schedule(rng, dur),
                duration_s=dur,
                jitter_s=float(jitter_rng.uniform(0.0, max_jitter)) / rate_hz,
            )
        )
    return cases


def _wide_cases(n_runners: int, minutes: float, seed: int) -> list[RunnerCase]:
    import dataclasses

    from companion.source.simulator import FAULT_BANDS, SIDES, RunConditions, RunnerParams

    cases = []
    for i in range(n_runners):
        rng = np.random.default_rng([seed, 11, i])
        dur = minutes * 60.0
        bands = {
            "dorsi_deg": FAULT_BANDS[i % 3],
            "plantar_deg": FAULT_BANDS[(i + 1) % 3],
            "heel_up_deg": FAULT_BANDS[(i + 1) % 3],
            "rigid_keep": FAULT_BANDS[(i + 2) % 3],
        }
        runner = RunnerParams.random(rng, "wide", bands=bands)
        runner = dataclasses.replace(runner, side=SIDES[i % 2])
        cond = RunConditions.random(rng, rate_hz=WIDE_RATES_HZ[i % len(WIDE_RATES_HZ)])
        cases.append(
            RunnerCase(
                seed=seed * 1000 + i,
                rate_hz=cond.rate_hz,
                packet_loss=cond.packet_loss,
                faults=fault_schedule(rng, dur, "wide"),
                duration_s=dur,
                jitter_s=cond.jitter_s,
                runner=runner,
                conditions=cond,
                bands=bands,
            )
        )
    return cases


def packets(data: dict[str, SampleBatch], packet_s: float = 0.05) -> list[SampleBatch]:
    """The run's samples as BLE-sized packets, in time order across sensors."""
    from companion.source.base import interleave

    return list(interleave(data, packet_s))


def score_run(
    res: SetupResult,
    reports: Sequence[StrideReport],
    events: dict[str, dict[str, np.ndarray]],
    rate_hz: float,
    supported: dict[str, set[Label]],
) -> None:
    """Add one run's reports, matched against the simulator's true events, to ``res``."""
    by_sensor: dict[str, list[StrideReport]] = defaultdict(list)
    for r in reports:
        by_sensor[r.sensor].append(r)
    for sensor, ev in events.items():
        t_ic = np.asarray(ev["t_ic_s"], dtype=float)
        t_to = np.asarray(ev.get("t_to_s", np.full(len(t_ic), np.nan)), dtype=float)
        labels = [str(x) for x in ev["label"]]
        res.supported[sensor] = supported.get(sensor, set())
        # a sensor that claims no ankle fault (shank alone) is not scored on labels
        claims = res.supported[sensor] != {Label.RELAXED}
        matched: set[int] = set()
        reps = by_sensor.get(sensor, [])
        # strides the estimator could have reported: those after its first report
        first = reps[0].t_ic_s - MATCH_S if reps else np.inf
        last = reps[-1].t_ic_s + MATCH_S if reps else -np.inf
        res.true_strides += int(np.sum((t_ic >= first) & (t_ic <= last)))
        for r in reps:
            j = nearest_event(t_ic, r.t_ic_s)
            if j is None:
                res.extra_reports += 1
                continue
            matched.add(j)
            res.ic_err_ms[rate_hz].append(1000.0 * (r.t_ic_s - t_ic[j]))
            if j < len(t_to) and np.isfinite(t_to[j]):
                res.to_err_ms.append(1000.0 * (r.t_to_s - t_to[j]))
            k = nearest_event(t_ic, r.t_end_s)
            if k is not None:
                lat = res.latency_ms if claims else res.timing_latency_ms
                lat.append(1000.0 * (r.t_decided_s - t_ic[k]))
            if r.baseline_ready and claims:
                res.confusion[(labels[j], r.label.value)] += 1
        res.found_strides += len(matched)


def count_fault_cues(reports: Sequence[StrideReport]) -> int:
    from companion.coach.policy import CuePolicy
    from companion.coach.settings import CoachSettings

    policy = CuePolicy(CoachSettings())
    faults = {lab.value for lab in FAULT_LABELS}
    n = 0
    for r in reports:
        for cue in policy.on_stride(r):
            if cue.reason in faults:
                n += 1
    return n


def score_cues(
    res: SetupResult,
    reports: Sequence[StrideReport],
    faults: Sequence[tuple[float, float, str]],
    supported: dict[str, set[Label]],
) -> None:
    """The default cue policy over a faulted run: which fault spells got their own cue
    while they went on, and how many positive cues came while a fault still went on (the
    simulated runner does not answer a cue: a fault only ends with its spell)."""
    from companion.coach.policy import CuePolicy
    from companion.coach.settings import CoachSettings

    policy = CuePolicy(CoachSettings())
    claiming = [s for s, sup in supported.items() if sup != {Label.RELAXED}]
    cued: set[tuple[str, int]] = set()
    for r in reports:
        for cue in policy.on_stride(r):
            inside = [i for i, (a, b, _) in enumerate(faults) if a <= cue.t_s < b]
            if cue.reason == Label.RELAXED.value:
                res.praise += 1
                res.praise_in_fault += bool(inside)
                ended = [b for _, b, _ in faults if b <= cue.t_s]
                if not inside and ended:
                    res.praise_delay_s.append(cue.t_s - max(ended))
            for i in inside:
                if cue.reason == faults[i][2]:
                    cued.add((r.sensor, i))
    res.fault_segments += len(faults) * len(claiming)
    res.segments_cued += len(cued)


def run_estimator(
    sensors: dict[str, Any], data: dict[str, SampleBatch], settings: EstimatorSettings
) -> tuple[list[StrideReport], StreamingEstimator, int]:
    est = StreamingEstimator(sensors, settings)
    out: list[StrideReport] = []
    n = 0
    for b in packets(data):
        out.extend(est.push(b))
        n += len(b)
    out.extend(est.finish())
    return out, est, n


def evaluate(
    n_runners: int = 20,
    minutes: float = 4.0,
    relaxed_minutes: float = 3.0,
    setups: Sequence[str] = ("foot", "shank", "foot+shank"),
    seed: int = 1,
    settings: EstimatorSettings | None = None,
    progress: Callable[[str], None] | None = None,
    max_jitter: float = MAX_JITTER_PERIODS,
    world: str = "classic",
) -> dict[str, SetupResult]:
    """Run the whole evaluation; returns one :class:`SetupResult` per set-up."""
    from companion.source import simulator as simmod

    settings = settings or EstimatorSettings()
    results = {s: SetupResult(s) for s in setups}
    cases = make_cases(n_runners, minutes, seed, max_jitter, world)
    for i, case in enumerate(cases):
        runner = case.runner_params()
        sim_kw = case.simulate_kwargs()
        faults = [simmod.FaultSegment(a, b, Label(lab)) for a, b, lab in case.faults]
        for setup in setups:
            res = results[setup]
            sensors = SETUPS[setup]
            t0 = time.perf_counter()
            run = simmod.simulate(
                case.duration_s,
                runner=runner,
                faults=faults,
                sensors=sensors,
                seed=case.seed,
                **sim_kw,
            )
            t1 = time.perf_counter()
            reps, est, n = run_estimator(run.recording.sensors, run.recording.data, settings)
            res.seconds += time.perf_counter() - t1
            res.samples += n
            sup = {s: est.supported_labels(s) for s in run.recording.sensors}
            score_run(res, reps, run.events, case.rate_hz, sup)
            # the fault spells on the recording's clock (the wide world's sensors drift)
            spells = [
                (float(run.to_clock(a)), float(run.to_clock(b)), lab) for a, b, lab in case.faults
            ]
            score_cues(res, reps, spells, sup)
            # a fully relaxed run of the same runner: false fault cues
            if relaxed_minutes > 0:
                calm = simmod.simulate(
                    relaxed_minutes * 60.0,
                    runner=runner,
                    faults=[],
                    sensors=sensors,
                    seed=case.seed + 500_000,
                    **sim_kw,
                )
                calm_reps, _, _ = run_estimator(
                    calm.recording.sensors, calm.recording.data, settings
                )
                res.false_cues += count_fault_cues(calm_reps)
                res.relaxed_minutes += relaxed_minutes
            res.runners += 1
            if progress:
                progress(
                    f"runner {i + 1}/{len(cases)} {setup}: {case.rate_hz:.0f} Hz, "
                    f"loss {100 * case.packet_loss:.1f}%, {len(reps)} strides "
                    f"(simulated in {t1 - t0:.1f} s)"
                )
    return results


# --------------------------------------------------------------------------- tables
def _f(x: float, nd: int = 3) -> str:
    return "n/a" if x != x else f"{x:.{nd}f}"


def format_tables(results: dict[str, SetupResult]) -> str:
    """Markdown tables of the results (what docs/estimator.md shows)."""
    lines: list[str] = []
    lines.append("| set-up | label | precision | recall | F1 | strides |")
    lines.append("|---|---|---|---|---|---|")
    for res in results.values():
        scored = res.labels_scored()
        for lab in Label:
            if lab in scored:
                p, r, f, n = res.prf(lab)
                lines.append(f"| {res.setup} | {lab.value} | {_f(p)} | {_f(r)} | {_f(f)} | {n} |")
            else:
                lines.append(f"| {res.setup} | {lab.value} | not supported | | | |")
    lines.append("")
    rates = sorted({r for res in results.values() for r in res.ic_err_ms})
    head = " | ".join(f"IC error at {r:.0f} Hz, median / p95 (ms)" for r in rates)
    lines.append(
        f"| set-up | strides found | extra reports | {head} | "
        "toe-off error median (ms) | label decision latency median / p95 / max (ms) | "
        "timing-only reports latency median / p95 / max (ms) | false cues per 10 min relaxed |"
    )
    lines.append("|---|---|---|" + "---|" * len(rates) + "---|---|---|---|")
    for res in results.values():
        cells = []
        for r in rates:
            med, p95, _ = res.ic_stats(r)
            cells.append(f"{_f(med, 1)} / {_f(p95, 1)}")
        to = float(np.median(np.abs(res.to_err_ms))) if res.to_err_ms else float("nan")
        lm, lp, lx = res.latency_stats()
        tm, tp, tx = res.latency_stats(labels=False)
        found = res.found_strides / res.true_strides if res.true_strides else float("nan")
        lines.append(
            f"| {res.setup} | {_f(100 * found, 1)}% | {res.extra_reports} | "
            + " | ".join(cells)
            + f" | {_f(to, 1)} | {_f(lm, 0)} / {_f(lp, 0)} / {_f(lx, 0)} | "
            f"{_f(tm, 0)} / {_f(tp, 0)} / {_f(tx, 0)} | "
            f"{_f(res.false_cues_per_10min(), 2)} ({res.false_cues} in "
            f"{res.relaxed_minutes:.0f} min) |"
        )
    lines.append("")
    lines.append(
        "| set-up | fault spells | cued while on | positive cues | positive cues during a fault "
        "| positive cue after a spell ends, median / p95 (s) |"
    )
    lines.append("|---|---|---|---|---|---|")
    for res in results.values():
        if not res.fault_segments:
            continue
        d = np.asarray(res.praise_delay_s)
        pm, pp = (float(np.median(d)), float(np.percentile(d, 95))) if len(d) else (np.nan,) * 2
        lines.append(
            f"| {res.setup} | {res.fault_segments} | {res.segments_cued} "
            f"({_f(100 * res.segments_cued / res.fault_segments, 0)}%) | {res.praise} | "
            f"{res.praise_in_fault} | {_f(pm, 1)} / {_f(pp, 1)} |"
        )
    return "\n".join(lines)
