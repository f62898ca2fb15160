"""Throughput and memory of the streaming estimator (one sensor, one process).

    PYTHONPATH=. python benchmarks/bench_estimator.py [--hours 3] [--rate 200]

Prints a table: samples per second through the whole estimator (gap handling,
alignment, events, angles, features, labels) for several batch sizes, as a
multiple of real time, and the peak memory while a multi-hour stream goes
through (a simulated minute repeated with advancing timestamps), checked at
several points of the run: flat means the estimator keeps no per-run history.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from companion.estimator.settings import EstimatorSettings
from companion.estimator.streaming import StreamingEstimator
from companion.source.simulator import RunnerParams, simulate
from companion.types import SampleBatch, SensorInfo


def _stream(rate_hz: float, seconds: float, seed: int) -> SampleBatch:
    run = simulate(
        seconds,
        rate_hz,
        runner=RunnerParams.random(np.random.default_rng(seed)),
        faults=[],
        sensors=("foot",),
        seed=seed,
    )
    return run.recording.data["foot"]


def throughput(batch: SampleBatch, rate_hz: float, size: int, repeat: int = 3) -> float:
    best = 0.0
    for _ in range(repeat):
        est = StreamingEstimator({"foot": SensorInfo("foot", rate_hz)}, EstimatorSettings())
        t0 = time.perf_counter()
        for i in range(0, len(batch), size):
            est.push(batch.slice(i, i + size))
        est.finish()
        best = max(best, len(batch) / (time.perf_counter() - t0))
    return best


def long_run(one: SampleBatch, rate_hz: float, hours: float, packet: int) -> list[tuple]:
    est = StreamingEstimator({"foot": SensorInfo("foot", rate_hz)}, EstimatorSettings())
    period = float(one.t_s[-1] - one.t_s[0]) + 1.0 / rate_hz
    laps = int(np.ceil(hours * 3600.0 / period))
    marks = {max(1, int(laps * f)) for f in (1 / 18, 1 / 3, 2 / 3, 1.0)}
    rows = []
    tracemalloc.start()
    strides = 0
    t0 = time.perf_counter()
    for lap in range(1, laps + 1):
        t = one.t_s + (lap - 1) * period
        for i in range(0, len(t), packet):
            b = SampleBatch(
                "foot", t[i : i + packet], one.acc[i : i + packet], one.gyr[i : i + packet]
            )
            strides += len(est.push(b))
        if lap in marks:
            cur, peak = tracemalloc.get_traced_memory()
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            rows.append((lap * period / 3600.0, strides, cur / 1e6, peak / 1e6, rss_mb))
    tracemalloc.stop()
    rows.append(("wall", time.perf_counter() - t0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=120.0, help="stream for throughput")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    batch = _stream(args.rate, args.seconds, args.seed)
    print(f"throughput, one foot sensor at {args.rate:.0f} Hz ({len(batch)} samples)")
    print("| batch size (samples) | samples/s | x real time |")
    print("|---|---|---|")
    for size in (1, 10, 50, 200, 2000):
        sps = throughput(batch, args.rate, size, repeat=1 if size == 1 else 3)
        print(f"| {size} | {sps:,.0f} | {sps / args.rate:,.0f}x |")

    one = _stream(args.rate, 60.0, args.seed + 1)
    print()
    print(f"memory over a {args.hours:g}-hour stream ({args.rate:.0f} Hz, 10-sample packets)")
    print(
        "| stream time (h) | strides | traced now (MB) | traced peak (MB) | process max RSS (MB) |"
    )
    print("|---|---|---|---|---|")
    rows = long_run(one, args.rate, args.hours, 10)
    for r in rows[:-1]:
        print(f"| {r[0]:.2f} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.0f} |")
    print(f"(wall time {rows[-1][1]:.1f} s under tracemalloc)")


if __name__ == "__main__":
    main()
