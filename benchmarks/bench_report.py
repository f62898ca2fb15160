"""How long ``companion report`` takes, and where the time goes.

    PYTHONPATH=. python benchmarks/bench_report.py [--minutes 4] [--rate 200] [--repeat 3]

Simulates a run with each fault (foot, then foot + shank), writes it as a recording and
times (CPU seconds, best of ``--repeat``) each step of the command in one process: reading the
recording, the replay that keeps the angle curves, the same replay without them (what
``replay --fast --json`` does: the ratio is the curves' cost), drawing and encoding the
figures, and the page. Then the whole command as a user runs it (a fresh process, all
imports included, its CPU time and its wall time), and the size of the page.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from companion.config import load_config
from companion.replaying import read_with_warnings, replay_recording
from companion.report.figures import all_figures
from companion.report.model import build_report
from companion.report.page import render_page
from companion.source.recording import write_recording
from companion.source.simulator import parse_faults, simulate

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Best CPU time of ``repeat`` calls (this process's and its children's: on a machine
    shared with other jobs, CPU time is what the command costs, wall time is not)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = _cpu_s()
        out = fn()
        best = min(best, _cpu_s() - t0)
    return best, out


def _cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    seconds = args.minutes * 60.0
    faults = parse_faults(
        ",".join(
            f"{lab}@{seconds * a:.0f}-{seconds * b:.0f}"
            for lab, a, b in (
                ("rigid", 0.25, 0.375),
                ("forced_dorsiflexion", 0.42, 0.54),
                ("forced_plantarflexion", 0.58, 0.71),
            )
        )
    )
    cfg = load_config(None)
    print(f"CPU seconds, best of {args.repeat}; the whole command also as wall-clock time\n")
    print(
        f"| sensors | read | replay with curves | replay without | figures | page | "
        f"whole command ({args.minutes:g} min at {args.rate:g} Hz): CPU / wall | page size |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for sensors in (("foot",), ("foot", "shank")):
            sim = simulate(seconds, args.rate, faults=faults, sensors=sensors, seed=2)
            path = Path(tmp) / f"{'_'.join(sensors)}.csv"
            write_recording(path, sim.recording)
            t_read, (rec, _) = best_of(args.repeat, lambda p=path: read_with_warnings(p))
            t_curves, replayed = best_of(
                args.repeat,
                lambda r=rec, p=path: replay_recording(r, cfg, path=p, keep_curves=True),
            )
            t_plain, _ = best_of(
                args.repeat, lambda r=rec, p=path: replay_recording(r, cfg, path=p)
            )
            report = build_report(replayed, cfg, name=path.stem, baseline_source="learned")
            t_figs, figs = best_of(args.repeat, lambda rp=report: all_figures(rp))
            t_page, page = best_of(
                args.repeat, lambda rp=report, f=figs: render_page(rp, f, (3, 4))
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            out = Path(tmp) / "page.html"

            def whole(p: Path = path, o: Path = out, e: dict[str, str] = env) -> None:
                cmd = [sys.executable, "-m", "companion", "report", str(p), "--out", str(o)]
                subprocess.run(cmd, check=True, capture_output=True, env=e)

            t_whole, _ = best_of(args.repeat, whole)
            wall = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                whole()
                wall = min(wall, time.perf_counter() - t0)
            print(
                f"| {'+'.join(sensors)} | {t_read:.2f} s | {t_curves:.2f} s | {t_plain:.2f} s "
                f"({t_curves / t_plain:.2f}x) | {t_figs:.2f} s ({len(figs)}) | {t_page:.3f} s | "
                f"{t_whole:.2f} s / {wall:.2f} s | {len(page.encode()) / 1024:.0f} kB |"
            )


if __name__ == "__main__":
    main()
