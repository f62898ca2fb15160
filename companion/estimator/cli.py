"""``companion evaluate``: measure the estimator on simulated runners, print tables."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from companion.errors import ConfigError
from companion.estimator.evaluate import MAX_JITTER_PERIODS


def _setups(text: str) -> list[str]:
    from companion.estimator.evaluate import SETUPS

    out = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in out if s not in SETUPS]
    if bad or not out:
        raise ConfigError(
            f"--setups {text!r}: choose from {', '.join(SETUPS)} (comma-separated), "
            "e.g. --setups foot,foot+shank"
        )
    return out


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure the estimator on simulated runners (F1, IC timing, latency, false cues)",
        description=(
            "Simulate runners who differ in cadence, strike, range of motion, noise, mounting, "
            "sampling rate (50-400 Hz) and packet loss (0-5%), run the streaming estimator "
            "and print per-label precision/recall/F1, initial-contact timing error, decision "
            "latency and false cues per 10 minutes of relaxed running."
        ),
    )
    p.add_argument("--runners", type=int, default=20, help="simulated runners (default 20)")
    p.add_argument("--minutes", type=float, default=4.0, help="minutes per run with faults")
    p.add_argument(
        "--relaxed-minutes",
        type=float,
        default=3.0,
        help="minutes of a fully relaxed run per runner, for false cues (0 = skip)",
    )
    p.add_argument(
        "--setups", default="foot,shank,foot+shank", help="foot, shank, foot+shank (comma list)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--world",
        choices=("classic", "wide"),
        default="classic",
        help="the simulator's world: classic (the first, narrow one; the default for now) or "
        "wide (fault sizes from just over the thresholds to large, 50-406 Hz, 10-200 ms "
        "packets with loss and dropouts, clipping, clock drift, host timestamps, fast "
        "running, late-swing braking, turns; docs/simulator.md)",
    )
    p.add_argument(
        "--jitter",
        type=float,
        default=MAX_JITTER_PERIODS,
        help="largest timestamp jitter (std, in sample periods) of a runner; each runner "
        f"gets a random one up to it (default {MAX_JITTER_PERIODS:g}, at most 0.45; the wide "
        "world draws its own)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config (estimator thresholds)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.estimator.evaluate import evaluate, format_tables

    if args.runners < 1 or args.minutes < 2.0 or args.relaxed_minutes < 0:
        raise ConfigError(
            "--runners must be >= 1, --minutes >= 2 (the baseline needs the first minute) "
            "and --relaxed-minutes >= 0"
        )
    if not 0.0 <= args.jitter <= 0.45:
        raise ConfigError(f"--jitter {args.jitter}: give 0 to 0.45 sample periods")
    setups = _setups(args.setups)
    cfg = load_config(args.config)

    def progress(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    results = evaluate(
        n_runners=args.runners,
        minutes=args.minutes,
        relaxed_minutes=args.relaxed_minutes,
        setups=setups,
        seed=args.seed,
        settings=cfg.estimator,
        progress=progress,
        max_jitter=args.jitter,
        world=args.world,
    )
    if args.json:
        print(json.dumps({k: v.as_dict() for k, v in results.items()}, indent=2))
    else:
        print(format_tables(results))
    return 0
