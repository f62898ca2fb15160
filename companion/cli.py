"""The ``companion`` command: demo, simulate, replay, check-config, and each area's commands.

Every user mistake surfaces as a :class:`~companion.errors.CompanionError` whose
message is printed without a traceback; the exit code says which kind.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion import __version__
from companion.errors import CompanionError
from companion.settings import range_text

log = logging.getLogger("companion")

# Each area adds its own subcommands through ``register(subparsers)``.
# Building the parser imports every area's CLI module, so those import at their top only
# what argparse needs: a command imports numpy, the estimator, bleak or sounddevice when
# it runs (``companion --version`` stays fast; benchmarks/bench_cli.py measures it).
AREA_CLIS = (
    "companion.voice.cli",
    "companion.estimator.cli",
    "companion.source.ble.cli",
    "companion.score_cli",
    "companion.report.cli",
    "companion.tune_cli",
    "companion.profiles_cli",
)


# --------------------------------------------------------------------------- helpers
def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config (see config.example.toml)")


@dataclass(frozen=True)
class Bounded:
    """argparse type of a numeric option: a number from ``lo`` to ``hi`` (``unit`` for the
    message), a whole one when ``integer``. Anything else is refused while the command
    line is read, before any work starts, with what is allowed. Every numeric option has
    one (a test walks them all)."""

    lo: float
    hi: float
    unit: str = ""
    integer: bool = False

    def __call__(self, text: str) -> float:
        allowed = range_text(self.lo, self.hi, self.unit)
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            kind = "a whole number" if self.integer else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}; give {allowed}") from None
        if not (math.isfinite(value) and self.lo <= value <= self.hi):
            raise argparse.ArgumentTypeError(f"{text}: must be {allowed}")
        return value


SEED = Bounded(0, 2**32 - 1, integer=True)
"""A random seed (numpy takes any whole number >= 0; this many are plenty)."""


def _stdout_line(text: str) -> None:
    print(text, flush=True)


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_replay(
    recording: Any,
    args: argparse.Namespace,
    *,
    realtime: bool,
    as_json: bool,
) -> int:
    """Push a recording (or a simulated run) through the pipeline, print cues and summary."""
    from companion.config import load_config
    from companion.estimator.profile import LearnedFrom, find_profile, save_learned
    from companion.pipeline import Pipeline, load_checked_library
    from companion.progress import Progress
    from companion.replaying import feed_recording, stream_span_s
    from companion.voice.sink import ConsoleSink, make_sink

    cfg = load_config(args.config)
    library = load_checked_library(cfg)
    t0, t1 = stream_span_s(recording)
    name = Path(getattr(args, "recording", "") or "demo").name
    # as fast as it goes: how far it has come, on a terminal (nothing in real time)
    progress = Progress(
        f"replay {name}", t1 - t0, unit="s of stream", enabled=False if realtime else None
    )
    if as_json:
        sink = ConsoleSink(lambda _text: None)

        def on_event(ev: dict[str, Any]) -> None:
            sys.stdout.write(json.dumps(ev, sort_keys=False) + "\n")
    else:
        sink = make_sink(
            cfg.voice,
            library,
            console=lambda line: progress.print(line, sys.stdout),
            audio_device=getattr(args, "audio_device", None),
        )
        on_event = None
    runner = getattr(args, "runner", None)
    learn = bool(getattr(args, "save_profile", False))
    # --save-profile learns this recording's baseline afresh (a saved one is replaced)
    profile = None if learn else find_profile(cfg, runner)
    pipeline = Pipeline(
        cfg, recording.sensors, sink, library=library, on_event=on_event, profile=profile
    )
    try:
        if realtime:
            import asyncio

            from companion.pipeline import run_source

            summary = asyncio.run(run_source(recording.source(realtime=True), pipeline))
        else:
            summary = feed_recording(pipeline, recording, lambda t: progress.update(t - t0))
    except KeyboardInterrupt:
        summary = pipeline.finish()
        progress.clear()
        _stderr_line("stopped")
    finally:
        progress.clear()
        sink.close()
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    else:
        for line in summary.lines():
            _stdout_line(line)
    if learn:
        who = runner or cfg.run.runner
        path = save_learned(
            cfg,
            pipeline.estimator.profile(),
            who,
            str(args.recording),
            LearnedFrom.of(
                "recording",
                str(Path(args.recording).resolve()),
                recording.sensors,
                recording.metadata,
            ),
        )
        _stderr_line(f"saved the relaxed baseline of runner {who!r} to {path}")
    return 0


# --------------------------------------------------------------------------- commands
def cmd_demo(args: argparse.Namespace) -> int:
    from companion.source.simulator import demo_run

    run = demo_run(seed=args.seed)
    if not args.json:
        mode = "as fast as possible" if args.fast else "in real time (--fast to skip ahead)"
        _stdout_line(
            "demo: a simulated 3-minute run, relaxed warm-up then each ankle fault, " + mode
        )
    return _run_replay(run.recording, args, realtime=not args.fast, as_json=args.json)


def cmd_simulate(args: argparse.Namespace) -> int:
    from companion.source.simulator import RunnerParams, parse_faults, simulate, write_simulation

    faults = parse_faults(args.faults) if args.faults else []
    sensors = tuple(s.strip() for s in args.sensors.split(",") if s.strip())
    runner = RunnerParams(cadence_spm=args.cadence, strike=args.strike)
    run = simulate(
        args.minutes * 60.0,
        args.rate,
        runner=runner,
        faults=faults,
        sensors=sensors,
        seed=args.seed,
        packet_loss=args.loss,
    )
    out = Path(args.out)
    write_simulation(run, out)
    n = len(run.truth)
    _stdout_line(f"wrote {out} ({sum(len(b) for b in run.recording.data.values())} samples)")
    _stdout_line(f"wrote {out.with_name(out.stem + '.labels.csv')} ({n} strides)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from companion.source.recording import read_recording

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recording = read_recording(args.recording)
    for w in caught:
        _stderr_line(f"warning: {w.message}")
    return _run_replay(recording, args, realtime=not args.fast, as_json=args.json)


def cmd_check_config(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.errors import ConfigError
    from companion.voice.library import check_config_problems

    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        _stdout_line(f"{args.file}: {len(exc.problems)} problem(s)")
        for p in exc.problems:
            _stdout_line(f"  - {p}")
        return exc.exit_code
    problems = check_config_problems(cfg)
    if problems:
        _stdout_line(f"{args.file}: {len(problems)} problem(s)")
        for p in problems:
            _stdout_line(f"  - {p}")
        return ConfigError.exit_code
    _stdout_line(f"{args.file}: ok")
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion",
        description="Real-time audio feedback for a relaxed, neutral ankle while running.",
    )
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="a simulated 3-minute run through the whole pipeline")
    p.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    p.add_argument("--json", action="store_true", help="JSON Lines events on stdout")
    p.add_argument("--seed", type=SEED, default=7, help="simulated runner's seed (>= 0)")
    p.add_argument("--audio-device", help="output device name or index")
    _add_config(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="write a simulated recording and its ground truth")
    p.add_argument("--out", required=True, help="recording CSV to write")
    p.add_argument("--minutes", type=Bounded(0.01, 360.0, "min"), default=3.0)
    p.add_argument(
        "--rate", type=Bounded(25.0, 2000.0, "Hz"), default=200.0, help="sampling rate, Hz"
    )
    p.add_argument("--seed", type=SEED, default=0, help="random seed (>= 0)")
    p.add_argument(
        "--faults",
        default="",
        help="e.g. 'rigid@60-90,forced_dorsiflexion@100-130' (seconds from the start)",
    )
    p.add_argument("--sensors", default="foot", help="foot, shank, or foot,shank")
    p.add_argument(
        "--cadence", type=Bounded(120.0, 240.0, "steps/min"), default=170.0, help="steps/min"
    )
    p.add_argument("--strike", default="rearfoot", choices=("rearfoot", "midfoot", "forefoot"))
    p.add_argument(
        "--loss", type=Bounded(0.0, 0.5), default=0.0, help="fraction of packets lost (0-0.5)"
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="push a recording through the same pipeline as a live run")
    p.add_argument("recording", help="recording CSV")
    p.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    p.add_argument("--json", action="store_true", help="JSON Lines events on stdout")
    p.add_argument("--runner", help="use this runner's saved relaxed baseline")
    p.add_argument(
        "--save-profile",
        action="store_true",
        help="learn the relaxed baseline from this recording (not from a saved profile) and "
        "save it as the runner's profile (--runner, else [run] runner), so later runs label "
        "from the first stride",
    )
    p.add_argument("--audio-device", help="output device name or index")
    _add_config(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("check-config", help="validate a config and print every problem")
    p.add_argument("file", help="TOML config")
    p.set_defaults(func=cmd_check_config)

    for mod_name in AREA_CLIS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:  # pragma: no cover - only while an area is missing
            if exc.name != mod_name:
                raise
            continue
        mod.register(sub)
    _verbose_after_any_command(parser)
    return parser


def _verbose_after_any_command(parser: argparse.ArgumentParser) -> None:
    """``-v`` works after the command too (``companion replay run.csv -v``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                sub.add_argument(
                    "-v",
                    "--verbose",
                    action="count",
                    default=argparse.SUPPRESS,
                    help="more log output",
                )
                _verbose_after_any_command(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CompanionError as exc:
        _stderr_line(f"companion: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _stderr_line("companion: stopped")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.filename is not None:
            raise
        # stdout/stderr cannot take the output (a full disk, /dev/full): say so once
        with contextlib.suppress(OSError):
            sys.stderr.write(f"companion: cannot write the output: {exc.strerror or exc}\n")
        return 1
