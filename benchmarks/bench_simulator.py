"""How long the simulator takes for a 4-minute run with foot and shank.

    PYTHONPATH=. python benchmarks/bench_simulator.py [--minutes 4] [--rate 200] [--runs 5]

Prints, per run, the CPU time (``time.process_time``: what the simulator costs, steady on a
busy machine) and the wall time of one ``simulate`` call: the classic default runner, then a
wide-world draw at the same rate (its packets, host timestamps, dropouts and turns as drawn),
and the median of each. The bar: well under a second or two for 4 minutes at 200 Hz.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from companion.source.simulator import RunnerParams, draw_world, simulate


def _timed(**kw: object) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    simulate(**kw)  # type: ignore[arg-type]
    return time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sensors = ("foot", "shank")
    times: dict[str, list[tuple[float, float]]] = {"classic": [], "wide": []}
    print("| run | world | conditions | CPU (s) | wall (s) |")
    print("|---|---|---|---|---|")
    for i in range(args.runs):
        t = _timed(duration_s=args.minutes * 60, rate_hz=args.rate, runner=RunnerParams(),
                   sensors=sensors, seed=i)  # fmt: skip
        times["classic"].append(t)
        print(f"| {i + 1} | classic | default runner | {t[0]:.2f} | {t[1]:.2f} |")
        runner, cond = draw_world(100 + i)
        cond = dataclasses.replace(cond, rate_hz=args.rate)
        what = ", ".join(
            name
            for name, on in (
                ("host timestamps", cond.host_timestamps),
                ("turns", cond.turns is not None),
                ("dropouts", cond.dropouts_per_min > 0),
                ("running start", cond.running_start),
            )
            if on
        )
        t = _timed(duration_s=args.minutes * 60, runner=runner, sensors=sensors, seed=i,
                   **cond.kwargs())  # fmt: skip
        times["wide"].append(t)
        print(f"| {i + 1} | wide | {what or 'straight, device clock'} | {t[0]:.2f} | {t[1]:.2f} |")
    for world, ts in times.items():
        cpu = statistics.median(x for x, _ in ts)
        wall = statistics.median(x for _, x in ts)
        print(f"median {world}: CPU {cpu:.2f} s, wall {wall:.2f} s "
              f"({args.minutes:g} min at {args.rate:g} Hz, foot + shank)")  # fmt: skip


if __name__ == "__main__":
    main()
