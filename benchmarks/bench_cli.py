"""Command-line speed: start-up, and a whole ``replay --fast --json`` of a long recording.

Runs each command as a user does (a fresh process each time), hyperfine-style: a couple
of warm-up runs, then ``--runs`` timed runs of every command in turn (round-robin, so a
busy spell of the machine hits every command alike), and prints the median and the
spread of each. Compare figures as ratios within one run: this VM's speed varies.

    PYTHONPATH=. python benchmarks/bench_cli.py [--runs 15] [--minutes 4] [--against REF]

``--against REF`` (e.g. ``main``, a commit) also times that version of the code, taken
with ``git archive`` into a temporary folder (the repository is not touched), in the same
round-robin, and checks its ``replay --json`` output is byte-identical to this one's.

Then a breakdown of one replay, measured inside fresh processes (medians): interpreter
start, importing numpy and the companion modules (the replay imports no scipy), reading
the recording, and the pipeline (estimator, policy, JSON lines).

Bars (issue 12): ``companion --version`` at most 0.25 s; ``replay --fast --json`` of a
4-minute 200 Hz foot recording at least 500x real time (under 0.48 s in all).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_BAR_S = 0.25
REPLAY_BAR_X = 500.0

BREAKDOWN = r"""
import io, json, sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
t2 = t1
from companion.config import load_config
from companion.pipeline import Pipeline, load_checked_library
from companion.replaying import feed_recording
from companion.source.recording import read_recording
from companion.voice.sink import ConsoleSink
t3 = time.perf_counter()
rec = read_recording(sys.argv[1])
t4 = time.perf_counter()
cfg = load_config(None)
lib = load_checked_library(cfg)
out = io.StringIO()
pipe = Pipeline(cfg, rec.sensors, ConsoleSink(lambda _t: None), library=lib,
                on_event=lambda ev: out.write(json.dumps(ev) + "\n"))
summary = feed_recording(pipe, rec)
out.write(json.dumps(summary.as_dict()) + "\n")
t5 = time.perf_counter()
print(json.dumps({"import numpy": t1 - t0,
                  "import companion": t3 - t2, "read the recording": t4 - t3,
                  "pipeline + JSON": t5 - t4}))
"""


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(cmd: list[str], env: dict[str, str], out: Path | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``cmd``."""
    # from a neutral folder: ``python -m`` puts the working folder first on sys.path
    c0 = _cpu()
    t0 = time.perf_counter()
    with open(out, "wb") if out else open(os.devnull, "wb") as fh:
        res = subprocess.run(
            cmd, stdout=fh, stderr=subprocess.PIPE, env=env, check=False, cwd=tempfile.gettempdir()
        )
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr.decode(errors='replace')}")
    return elapsed, _cpu() - c0


def _env(pythonpath: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    # as on a user's machine, imports after the first run come from .pyc files (a sandbox
    # that forbids writing them would time the compiler on every start)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _fmt(times: list[float]) -> str:
    med = statistics.median(times)
    return f"{1000 * med:7.0f} ms  ({1000 * min(times):.0f}-{1000 * max(times):.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    ap.add_argument("--minutes", type=float, default=4.0, help="recording length")
    ap.add_argument("--against", metavar="REF", help="also time this git ref's code")
    args = ap.parse_args()

    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    rec = tmp / "run.csv"
    subprocess.run(
        [py, "-m", "companion", "simulate", "--out", str(rec), "--minutes", str(args.minutes),
         "--rate", "200", "--seed", "1",
         "--faults", "rigid@60-90,forced_dorsiflexion@100-130,forced_plantarflexion@140-170"],
        env=_env(ROOT), check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    cfg = tmp / "console.toml"
    cfg.write_text('[voice]\noutput = "console"\n')
    stream_s = args.minutes * 60.0
    replay = ["replay", str(rec), "--fast", "--json", "--config", str(cfg)]
    trees = {"this": ROOT}
    if args.against:
        old = tmp / "against"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.against], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees[args.against] = old

    cases: dict[str, tuple[list[str], dict[str, str], Path | None]] = {
        "python -c pass": ([py, "-c", "pass"], _env(ROOT), None),
        "python -c 'import numpy'": (
            [py, "-c", "import numpy"],
            _env(ROOT),
            None,
        ),
    }
    for tag, tree in trees.items():
        cases[f"[{tag}] companion --version"] = (
            [py, "-m", "companion", "--version"],
            _env(tree),
            None,
        )
        cases[f"[{tag}] companion replay --fast --json"] = (
            [py, "-m", "companion", *replay],
            _env(tree),
            tmp / f"{tag.replace('/', '_')}.jsonl",
        )
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for cmd, env, out in cases.values():  # warm-up: caches, .pyc files
        for _ in range(2):
            _run(cmd, env, out)
    for _ in range(args.runs):
        for k, (cmd, env, out) in cases.items():
            wall, used = _run(cmd, env, out)
            times[k].append(wall)
            cpu[k].append(used)

    print(
        f"{args.minutes:g}-minute 200 Hz foot recording ({rec.stat().st_size / 1e6:.1f} MB), "
        f"{args.runs} runs each; wall time median (min-max), x real time, CPU time median:"
    )
    for k, ts in times.items():
        extra = ""
        if "replay" in k:
            extra = f"  {stream_s / statistics.median(ts):5.0f}x"
        print(f"  {k:<48} {_fmt(ts)}{extra:>7}  cpu {1000 * statistics.median(cpu[k]):.0f} ms")
    if args.against:
        this = statistics.median(times["[this] companion replay --fast --json"])
        that = statistics.median(times[f"[{args.against}] companion replay --fast --json"])
        v_this = statistics.median(times["[this] companion --version"])
        v_that = statistics.median(times[f"[{args.against}] companion --version"])
        same = (tmp / "this.jsonl").read_bytes() == (
            tmp / f"{args.against.replace('/', '_')}.jsonl"
        ).read_bytes()
        print(
            f"  ratios {args.against} / this: --version {v_that / v_this:.2f}x, replay "
            f"{that / this:.2f}x; replay --json output byte-identical: {same}"
        )

    parts: dict[str, list[float]] = {}
    starts = []
    for _ in range(max(5, args.runs // 2)):
        t0 = time.perf_counter()
        res = subprocess.run(
            [py, "-c", BREAKDOWN, str(rec)],
            capture_output=True,
            env=_env(ROOT),
            check=True,
            cwd=tempfile.gettempdir(),
        )
        total = time.perf_counter() - t0
        got = json.loads(res.stdout)
        for k, v in got.items():
            parts.setdefault(k, []).append(v)
        starts.append(total - sum(got.values()))
    print("breakdown of one replay (fresh processes, median):")
    rows = {"interpreter start and exit": starts, **parts}
    whole = sum(statistics.median(v) for v in rows.values())
    for k, v in rows.items():
        med = statistics.median(v)
        print(f"  {k:<28} {1000 * med:6.0f} ms  {100 * med / whole:4.0f} %")
    print(f"  {'sum':<28} {1000 * whole:6.0f} ms")

    v = statistics.median(times["[this] companion --version"])
    r = statistics.median(times["[this] companion replay --fast --json"])
    print(
        f"bars: --version {1000 * v:.0f} ms (<= {1000 * VERSION_BAR_S:.0f}: "
        f"{'met' if v <= VERSION_BAR_S else 'NOT met'}); replay {stream_s / r:.0f}x real time "
        f"(>= {REPLAY_BAR_X:.0f}x: {'met' if stream_s / r >= REPLAY_BAR_X else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
