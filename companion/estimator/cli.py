"""``companion evaluate``: measure the estimator on simulated runners, print tables."""

from __future__ import annotations

import argparse
import json
from typing import Any

from companion.cli import SEED, Bounded
from companion.errors import ConfigError

MAX_JITTER_PERIODS = 0.1
"""The default of ``--jitter`` (``companion.estimator.evaluate.MAX_JITTER_PERIODS``, kept
here so that building the parser does not import the estimator; a test checks both)."""


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
    p.add_argument(
        "--runners",
        type=Bounded(1, 1000, integer=True),
        default=20,
        help="simulated runners (default 20)",
    )
    p.add_argument(
        "--minutes",
        type=Bounded(2.0, 60.0, "min"),
        default=4.0,
        help="minutes per run with faults (at least 2: the baseline needs the first minute)",
    )
    p.add_argument(
        "--relaxed-minutes",
        type=Bounded(0.0, 60.0, "min"),
        default=3.0,
        help="minutes of a fully relaxed run per runner, for false cues (0 = skip)",
    )
    p.add_argument(
        "--setups", default="foot,shank,foot+shank", help="foot, shank, foot+shank (comma list)"
    )
    p.add_argument("--seed", type=SEED, default=1)
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
        type=Bounded(0.0, 0.45, "sample periods"),
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
    from companion.progress import Progress

    setups = _setups(args.setups)
    cfg = load_config(args.config)

    with Progress("evaluate", args.runners * len(setups), unit="runs") as progress:
        results = evaluate(
            n_runners=args.runners,
            minutes=args.minutes,
            relaxed_minutes=args.relaxed_minutes,
            setups=setups,
            seed=args.seed,
            settings=cfg.estimator,
            progress=lambda text: progress.advance(note=text),
            max_jitter=args.jitter,
            world=args.world,
        )
    if args.json:
        print(json.dumps({k: v.as_dict() for k, v in results.items()}, indent=2))
    else:
        print(format_tables(results))
    return 0
