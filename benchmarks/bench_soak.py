"""Soak: a long live run through what a run meets, and a 3-hour run through the whole pipeline.

1. **Live** (``--minutes``, default 30, real time): exactly what ``companion run`` runs
   (:func:`companion.source.ble.cli.live_run`: bleak unmodified, the sensor links, the
   recorder, the pipeline with estimator, cue policy and a console voice) against the test
   suite's fake BlueZ with two open-IMU sensors at 200 Hz, 2 % of the notifications lost
   at random, each link dropped every few minutes (the sensor away for 2 s). Then:

   * every sample each sensor delivered (sent and not lost) is in the recording, exactly,
     and nothing else (checked against the fake sensor's notification log);
   * the strides equal those of replaying the recording;
   * memory is flat: the process's peak RSS at 5, 15 and 30 minutes within 10 %;
   * per-notification latency, from bleak's callback to the end of the pipeline's work
     on the batch that held it, p95 < 20 ms in every 5-minute window.

2. **Simulated** (``--hours``, default 3, as fast as it goes): a simulated runner (foot and
   shank, every fault now and then) through the pipeline with the recorder, the cue policy
   and the console voice; memory (Python heap traced, RSS) at 10, 60 and 180 minutes.

Usage::

    PYTHONPATH=. python benchmarks/bench_soak.py [--minutes 30] [--hours 3]
        [--skip-live] [--skip-sim]

The CI test ``tests/test_run_faults.py::test_a_short_soak`` runs :func:`live_soak` for
half a minute with the same checks of the data (timing and memory are this script's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from array import array
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _fake_bluez import (  # noqa: E402
    compare_with_sent,
    fake_bluez,
    private_bus,
    running_recording,
    sent_samples,
)

from companion.config import config_from_dict  # noqa: E402
from companion.pipeline import Pipeline, run_source  # noqa: E402
from companion.source.base import interleave  # noqa: E402
from companion.source.ble.cli import live_run  # noqa: E402
from companion.source.ble.source import BleSource  # noqa: E402
from companion.source.recording import RecordingWriter, read_recording  # noqa: E402
from companion.types import SampleBatch  # noqa: E402
from companion.voice.library import load_library  # noqa: E402
from companion.voice.sink import ConsoleSink  # noqa: E402

BAR_P95_MS = 20.0
BAR_MEMORY = 0.10
SENSORS = ("left_foot", "right_foot")
PACKET = 8  # samples per open-IMU notification (the fake's default)


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class RssSampler:
    """RSS once a second in a thread of its own: ``(monotonic time, MB)`` pairs."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_until(self, t_mono: float) -> float:
        return max((mb for t, mb in self.samples if t <= t_mono), default=float("nan"))


@dataclass
class LiveSoak:
    """What :func:`live_soak` measured and checked."""

    seconds: float
    compare: dict[str, dict[str, Any]]
    """Per sensor, :func:`_fake_bluez.compare_with_sent` of the recording."""
    strides_live: int
    strides_equal_replay: bool
    lost_notifications: dict[str, int]
    """Counted by the run (sequence numbers)."""
    lost_on_the_way: dict[str, int]
    """Lost on the way by the fake link, within the recorded span."""
    reconnects: dict[str, int]
    arrival_s: array = field(default_factory=lambda: array("d"))
    """When each notification reached this process, since the first sample (s)."""
    latency_ms: array = field(default_factory=lambda: array("d"))
    """Its latency (ms)."""
    loop_lag: list[tuple[float, float, float]] = field(default_factory=list)
    """``(since the first sample s, ms late, loop's CPU ms meanwhile)`` of every time the
    run's loop woke over 20 ms late."""
    rss: list[tuple[float, float]] = field(default_factory=list)
    """``(since the first sample s, MB)``."""

    def problems(self) -> list[str]:
        """Every data check that failed (empty: all passed)."""
        out = []
        for name, c in self.compare.items():
            for key in ("mismatched", "missing_inside", "missing_tail"):
                if c[key]:
                    out.append(f"{name}: {c[key]} samples {key.replace('_', ' ')}")
            if c["recorded"] == 0:
                out.append(f"{name}: nothing recorded")
        if not self.strides_equal_replay:
            out.append("the live strides differ from those of replaying the recording")
        return out

    def p95_by_window(self, window_s: float) -> list[tuple[float, float, int]]:
        """``(window start s, p95 ms, notifications)`` per window of arrival time."""
        if not self.latency_ms:
            return []
        at, ms = np.asarray(self.arrival_s), np.asarray(self.latency_ms)
        out = []
        for start in np.arange(0.0, at.max() + 1e-9, window_s):
            sel = ms[(at >= start) & (at < start + window_s)]
            if len(sel):
                out.append((float(start), float(np.percentile(sel, 95)), len(sel)))
        return out

    def rss_peak_until(self, t_s: float) -> float:
        return max((mb for t, mb in self.rss if t <= t_s), default=float("nan"))


def _drops(rng: np.random.Generator, n_notifications: int, loss: float) -> list[int]:
    return (np.flatnonzero(rng.random(n_notifications) < loss) + 1).tolist()


def _strides(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stride events without ``t_decided_s`` (which depends on how samples were packed)."""
    rows = [{k: v for k, v in e.items() if k != "t_decided_s"} for e in events]
    return sorted(
        (e for e in rows if e["type"] == "stride"), key=lambda e: (e["sensor"], e["stride"])
    )


def live_soak(
    tmp: Path,
    bus: str,
    *,
    seconds: float,
    speed: float = 1.0,
    loss: float = 0.02,
    drop_every_s: float = 180.0,
    away_s: float = 2.0,
    seed: int = 5,
) -> LiveSoak:
    """The live soak, ``seconds`` of stream (``speed`` x real time); see the module doc."""
    sim = running_recording(tmp / "soak-sim.csv", seconds + 30.0, seed=seed, sensors=SENSORS)
    rng = np.random.default_rng(seed)
    n_notifications = int((seconds + 30.0) * 200.0 / PACKET) + 10
    devices, tables = [], []
    for i, name in enumerate(SENSORS):
        first = drop_every_s * (0.8 + 0.4 * i)  # the two links drop at different times
        addr = f"C0:FF:EE:00:50:{i:02X}"
        devices.append(
            {
                "address": addr,
                "name": f"soak-{i}",
                "profile": "open_imu",
                "recording": str(sim),
                "sensor": name,
                "speed": speed,
                "drop": _drops(rng, n_notifications, loss),
                "drop_link_at_s": np.arange(first, seconds, drop_every_s).tolist(),
                "away_s": away_s,
                "log": str(tmp / f"soak-{name}.log"),
            }
        )
        tables.append({"name": name, "profile": "open_imu", "address": addr})
    cfg = config_from_dict({"sensors": tables, "voice": {"output": "console"}})
    library = load_library(cfg.voice, cfg.resolve)
    out = tmp / "soak.csv"
    # the measurement keeps little in memory (the run's own memory is measured): events go
    # to a file as with --json, latencies to two arrays of floats (0.7 MB in 30 minutes)
    events_path = tmp / "soak-events.jsonl"
    events = events_path.open("w")
    arrival_s, latency_ms = array("d"), array("d")
    loop_lag: list[tuple[float, float, float]] = []
    t0: list[float] = []

    def on_event(ev: dict[str, Any]) -> None:
        events.write(json.dumps(ev) + "\n")

    async def watch_the_loop() -> None:
        """How late the run's loop wakes a task that sleeps 50 ms (a loop held up by
        something blocking shows here)."""
        while True:
            due = time.monotonic() + 0.05
            cpu = time.thread_time()
            await asyncio.sleep(0.05)
            late = time.monotonic() - due
            if late > 0.02 and t0:
                # with the loop thread's own CPU time meanwhile: near the delay, the loop was
                # busy computing; near nothing, it was held up (I/O, the machine)
                loop_lag.append((due - t0[0], 1000.0 * late, 1000.0 * (time.thread_time() - cpu)))

    async def run() -> Any:
        watcher = asyncio.create_task(watch_the_loop())
        try:
            return await live_run(
                cfg,
                source,
                ConsoleSink(lambda _t: None),
                library,
                out_path=out,
                on_event=on_event,
                metadata={"runner": "soak"},
            )
        finally:
            watcher.cancel()

    with fake_bluez(bus, {"devices": devices}, tmp), RssSampler() as sampler:
        source = BleSource(list(cfg.sensors), stop_after_s=seconds)
        # when each notification's samples reached this process (bleak's callback) ...
        arrivals: dict[str, deque[tuple[float, float]]] = {n: deque() for n in source.links}
        for link in source.links.values():

            def timed(item: Any, _emit: Any = link.emit) -> None:
                if isinstance(item, SampleBatch):
                    now = time.monotonic()
                    if not t0:
                        t0.append(now)
                    arrivals[item.sensor].append((float(item.t_s[-1]), now))
                _emit(item)

            link.emit = timed
        # ... and when the pipeline was done with the batch that held them (the run loop
        # asks for the next batch only then)
        batches = source.batches

        async def timed_batches() -> AsyncIterator[Any]:
            async for item in batches():
                yield item
                if isinstance(item, SampleBatch):
                    done = time.monotonic()
                    queue = arrivals[item.sensor]
                    while queue and queue[0][0] <= item.t_s[-1]:
                        _, at = queue.popleft()
                        arrival_s.append(at - t0[0])
                        latency_ms.append(1000.0 * (done - at))

        source.batches = timed_batches  # type: ignore[method-assign]
        asyncio.run(run())
        events.close()
        rss = [(t - t0[0], mb) for t, mb in sampler.samples if t0 and t >= t0[0]]

    rec = read_recording(out)
    compare = {
        name: compare_with_sent(rec.data[name], sent_samples(Path(dev["log"])), until_t_s=seconds)
        for name, dev in zip(SENSORS, devices, strict=True)
    }
    replayed: list[dict[str, Any]] = []
    pipeline = Pipeline(
        cfg, rec.sensors, ConsoleSink(lambda _t: None), library=library, on_event=replayed.append
    )
    asyncio.run(run_source(rec.source(), pipeline))
    live = _strides([json.loads(line) for line in events_path.read_text().splitlines()])
    links = source.links
    return LiveSoak(
        seconds=seconds,
        compare=compare,
        strides_live=len(live),
        strides_equal_replay=bool(live) and live == _strides(replayed),
        lost_notifications={n: lk.clock.lost_frames for n, lk in links.items()},
        lost_on_the_way={n: c["lost_on_the_way"] // PACKET for n, c in compare.items()},
        reconnects={n: lk.stats.reconnects for n, lk in links.items()},
        arrival_s=arrival_s,
        latency_ms=latency_ms,
        loop_lag=loop_lag,
        rss=rss,
    )


# ----------------------------------------------------------------------------- simulated


class LapSource:
    """One simulated lap, repeated with advancing times, as 50 ms packets (a Source)."""

    def __init__(self, run: Any, laps: int, marks_s: list[float], on_mark: Any) -> None:
        self.rec = run.recording
        self.laps = laps
        self.marks_s = sorted(marks_s)
        self.on_mark = on_mark
        ends = [b.t_s[-1] for b in self.rec.data.values()]
        self.period_s = float(max(ends)) + 0.005
        self.packets = list(interleave(self.rec.data, 0.05))

    @property
    def sensors(self) -> dict[str, Any]:
        return self.rec.sensors

    @property
    def metadata(self) -> dict[str, str]:
        return {"source": "simulator, repeated laps"}

    async def batches(self) -> AsyncIterator[SampleBatch]:
        marks = list(self.marks_s)
        for lap in range(self.laps):
            off = lap * self.period_s
            for b in self.packets:
                yield SampleBatch(b.sensor, b.t_s + off, b.acc, b.gyr)
            while marks and (lap + 1) * self.period_s >= marks[0] - 1e-6:
                self.on_mark(marks.pop(0))
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        pass


def simulated_soak(tmp: Path, hours: float, marks_min: tuple[float, ...]) -> dict[str, Any]:
    """``hours`` of simulated running through the whole pipeline, at full speed."""
    from companion.source.simulator import parse_faults, simulate

    lap_s = 600.0
    faults = parse_faults("rigid@120-180,forced_dorsiflexion@260-320,forced_plantarflexion@400-460")
    run = simulate(lap_s, 200.0, faults=faults, sensors=("foot", "shank"), seed=8)
    cfg = config_from_dict({"voice": {"output": "console"}})
    library = load_library(cfg.voice, cfg.resolve)
    spoken = Counter[str]()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below

    def say(line: str) -> None:  # the console voice, printing where nobody reads
        devnull.write(line + "\n")
        spoken["cues"] += 1

    sink = ConsoleSink(say)
    out = tmp / "soak-3h.csv"
    laps = int(np.ceil(hours * 3600.0 / lap_s))
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()

    def mark(t_s: float) -> None:
        now, peak = tracemalloc.get_traced_memory()
        rows.append(
            {
                "minutes": t_s / 60.0,
                "strides": sum(pipeline.summary.strides.values()),
                "cues": spoken["cues"],
                "traced_now_mb": now / 1e6,
                "traced_peak_mb": peak / 1e6,
                "rss_mb": rss_mb(),
                "wall_s": time.perf_counter() - t_start,
            }
        )

    source = LapSource(run, laps, [m * 60.0 for m in marks_min], mark)
    with RecordingWriter(out, source.sensors, source.metadata) as recorder:
        pipeline = Pipeline(cfg, source.sensors, sink, library=library, recorder=recorder)
        tracemalloc.start()
        try:
            summary = asyncio.run(run_source(source, pipeline))
        finally:
            tracemalloc.stop()
            devnull.close()
    fed = sum(summary.samples.values())
    size_mb = out.stat().st_size / 1e6
    out.unlink()
    return {
        "rows": rows,
        "samples": fed,
        "recorded": recorder.samples_written,
        "not_recorded": recorder.samples_not_recorded,
        "recording_mb": size_mb,
        "strides": sum(summary.strides.values()),
        "cues": spoken["cues"],
        "wall_s": time.perf_counter() - t_start,
    }


# ----------------------------------------------------------------------------- report


def report_live(r: LiveSoak, marks_min: tuple[float, ...]) -> bool:
    print(
        f"live soak: {r.seconds / 60:g} min real time, 2 open-IMU sensors at 200 Hz, bleak + "
        "fake BlueZ, 2 % notifications lost, link drops"
    )
    print()
    print("| sensor | recorded | delivered | mismatched | missing | notifications lost "
          "(counted / sent lost) | reconnects |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, c in r.compare.items():
        print(
            f"| {name} | {c['recorded']} | {c['delivered']} | {c['mismatched']} | "
            f"{c['missing_inside'] + c['missing_tail']} | {r.lost_notifications[name]} / "
            f"{r.lost_on_the_way[name]} | {r.reconnects[name]} |"
        )
    print()
    print(f"strides: {r.strides_live}; equal to replaying the recording: {r.strides_equal_replay}")
    print()
    lat = np.asarray(r.latency_ms)
    windows = r.p95_by_window(300.0)
    print(
        f"per-notification latency (callback -> pipeline done), {len(lat)} notifications: "
        f"p50 {np.percentile(lat, 50):.2f} ms, p95 {np.percentile(lat, 95):.2f} ms, "
        f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.1f} ms"
    )
    slow = np.asarray(r.arrival_s)[lat > 100.0]
    print(
        f"over 20 ms: {(lat > 20).sum()} notifications, over 100 ms: {len(slow)}"
        + (f" (at minutes {', '.join(f'{t / 60:.1f}' for t in slow[:12])})" if len(slow) else "")
    )
    lags = sorted(r.loop_lag, key=lambda x: -x[1])
    print(
        f"the run's loop woke over 20 ms late {len(lags)} times"
        + (
            "; the worst: "
            + ", ".join(
                f"{ms:.0f} ms at minute {t / 60:.1f} (loop CPU {cpu:.0f} ms)"
                for t, ms, cpu in lags[:5]
            )
            if lags
            else ""
        )
    )
    print("| window (min) | notifications | p95 (ms) |")
    print("|---|---:|---:|")
    for start, p95, n in windows:
        print(f"| {start / 60:.0f}-{(start + 300) / 60:.0f} | {n} | {p95:.2f} |")
    print()
    print("| minutes | peak RSS so far (MB) |")
    print("|---:|---:|")
    peaks = []
    for m in marks_min:
        if m * 60.0 <= r.seconds + 1:
            peaks.append(r.rss_peak_until(m * 60.0))
            print(f"| {m:g} | {peaks[-1]:.1f} |")
    problems = r.problems()
    worst = max(p95 for _, p95, _ in windows)
    flat = (max(peaks) - min(peaks)) / min(peaks) if peaks else float("nan")
    print()
    print(f"data: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}")
    print(f"latency p95 < {BAR_P95_MS:.0f} ms in every window (worst {worst:.2f} ms): "
          + ("PASS" if worst < BAR_P95_MS else "FAIL"))  # fmt: skip
    print(f"memory within {100 * BAR_MEMORY:.0f} % ({100 * flat:.1f} %): "
          + ("PASS" if flat <= BAR_MEMORY else "FAIL"))  # fmt: skip
    return not problems and worst < BAR_P95_MS and flat <= BAR_MEMORY


def report_simulated(r: dict[str, Any], hours: float) -> bool:
    print(
        f"simulated soak: {hours:g} h of foot + shank at 200 Hz through estimator, cue policy, "
        f"recorder and console voice, at full speed ({r['wall_s']:.0f} s wall under tracemalloc)"
    )
    print()
    print("| minutes | strides | cues | traced now (MB) | traced peak (MB) | RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in r["rows"]:
        print(
            f"| {row['minutes']:.0f} | {row['strides']} | {row['cues']} | "
            f"{row['traced_now_mb']:.2f} | {row['traced_peak_mb']:.2f} | {row['rss_mb']:.1f} |"
        )
    print()
    print(
        f"samples {r['samples']}, recorded {r['recorded']} ({r['recording_mb']:.0f} MB), "
        f"not recorded {r['not_recorded']}; strides {r['strides']}, cues {r['cues']}"
    )
    rss = [row["rss_mb"] for row in r["rows"]]
    flat = (max(rss) - min(rss)) / min(rss)
    traced = [row["traced_now_mb"] for row in r["rows"]]
    ok = flat <= BAR_MEMORY and r["recorded"] == r["samples"] and r["not_recorded"] == 0
    print(
        f"Python heap held by the run: {1000 * traced[0]:.0f} kB at {r['rows'][0]['minutes']:.0f}"
        f" min, {1000 * traced[-1]:.0f} kB at {r['rows'][-1]['minutes']:.0f} min"
    )
    print(f"RSS flat within {100 * BAR_MEMORY:.0f} % ({100 * flat:.1f} %) and every sample "
          "recorded: " + ("PASS" if ok else "FAIL"))  # fmt: skip
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="live soak, real time")
    ap.add_argument("--drop-every", type=float, default=180.0, help="link drop period, s")
    ap.add_argument("--hours", type=float, default=3.0, help="simulated soak, stream hours")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_live:
            with private_bus(tmp) as bus:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus
                r = live_soak(tmp, bus, seconds=args.minutes * 60.0, drop_every_s=args.drop_every)
            m = args.minutes  # 5, 15 and 30 minutes of the default
            ok &= report_live(r, (m / 6.0, m / 2.0, m))
            print()
        if not args.skip_sim:
            marks = tuple(m for m in (10.0, 60.0, 180.0) if m <= args.hours * 60.0 + 1e-9)
            ok &= report_simulated(simulated_soak(tmp, args.hours, marks), args.hours)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
