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
import os
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


def stdout_name() -> str:
    """Where standard output goes, for a message: ``standard output (/dev/full)``, ``(a pipe)``."""
    try:
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):
        return "standard output"
    for kind in ("pipe", "socket"):
        if target.startswith(kind + ":"):
            return f"standard output (a {kind})"
    return f"standard output ({target})"


def output_error(exc: OSError) -> str:
    """The message for output that standard output did not take."""
    why = (
        "the program reading it closed it"
        if isinstance(exc, BrokenPipeError)
        else exc.strerror or str(exc) or type(exc).__name__
    )
    return f"cannot write the output to {stdout_name()}: {why}"


def drop_stdout() -> None:
    """Send standard output to /dev/null from now on, so that nothing more (the flush at exit
    above all) fails on it and prints a traceback."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)


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


def _simulation(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    """The runner, the conditions and the faults ``simulate`` options ask for: the world's
    draw for the seed (classic: the defaults), then each option given on top of it."""
    import dataclasses

    import numpy as np

    from companion.errors import SourceError
    from companion.source.simulator import (
        RunConditions,
        RunnerParams,
        Turns,
        draw_world,
        fault_size,
        parse_faults,
        random_faults,
    )

    sizes = ("dorsi_deg", "plantar_deg", "rigid_keep", "heel_up_deg")
    changes: dict[str, Any] = {}
    if args.world == "classic":
        runner, cond = RunnerParams(), RunConditions()
        if args.fault_size:  # the classic runner with faults of this band
            rng = np.random.default_rng([args.seed, 4244])
            changes.update({name: fault_size(rng, name, args.fault_size) for name in sizes})
    else:
        bands = dict.fromkeys(sizes, args.fault_size) if args.fault_size else None
        runner, cond = draw_world(args.seed, "wide", bands=bands)
    if args.cadence is not None:
        changes["cadence_spm"] = args.cadence
    if args.speed is not None:
        changes.update(speed_mps=args.speed, contact_time_s=None)  # contact from the speed
    if args.strike is not None:
        changes.update(strike=args.strike, strike_angle_deg=None)  # at its typical angle
    runner = dataclasses.replace(runner, **changes)
    rate = cond.rate_hz if args.rate is None else args.rate
    packet_ms = args.packet_ms
    if packet_ms is None and cond.packet_size:  # the drawn packet's length, at this rate
        packet_ms = 1000.0 * cond.packet_size / cond.rate_hz
    if packet_ms is not None and not 0 < packet_ms <= 5000:
        raise SourceError(f"--packet-ms {packet_ms:g}: give a packet length over 0, up to 5000")
    knobs = {
        "packet_loss": args.loss,
        "acc_range_g": args.acc_range,
        "shank_acc_range_g": args.acc_range,
        "gyr_range_dps": args.gyr_range,
        "shank_gyr_range_dps": args.gyr_range,
        "clock_ppm": args.clock_ppm,
        "host_timestamps": args.host_timestamps,
        "running_start": args.running_start,
    }
    cond = dataclasses.replace(
        cond,
        rate_hz=rate,
        packet_size=max(1, round(packet_ms * rate / 1000.0)) if packet_ms else 0,
        jitter_s=cond.jitter_s * cond.rate_hz / rate,  # the same share of a period
        turns=cond.turns if args.turns is None else Turns() if args.turns else None,
        **{k: v for k, v in knobs.items() if v is not None},
    )
    if args.faults:
        faults = parse_faults(args.faults)
    elif args.world == "wide" and not args.relaxed:
        rng = np.random.default_rng([args.seed, 4243])
        faults = random_faults(rng, args.minutes * 60.0, "wide")
    else:
        faults = []
    return runner, cond, faults


def cmd_simulate(args: argparse.Namespace) -> int:
    from companion.source.recording import labels_path, truth_path
    from companion.source.simulator import format_faults, simulate, write_simulation

    runner, cond, faults = _simulation(args)
    sensors = tuple(s.strip() for s in args.sensors.split(",") if s.strip())
    run = simulate(
        args.minutes * 60.0, runner=runner, faults=faults, sensors=sensors, seed=args.seed,
        **cond.kwargs(),
    )  # fmt: skip
    out = Path(args.out)
    write_simulation(run, out)
    n = len(run.truth)
    _stdout_line(f"wrote {out} ({sum(len(b) for b in run.recording.data.values())} samples)")
    _stdout_line(f"wrote {labels_path(out)} ({n} strides)")
    i = run.info
    _stdout_line(
        f"wrote {truth_path(out)}: {args.world} world, seed {args.seed}: {i['setup']} at "
        f"{i['rate_hz']:g} Hz, {runner.strike} {i['fsa_deg']:+.1f} deg, {i['speed_mps']:.1f} m/s, "
        f"{i['cadence_spm']:.0f} steps/min; faults {format_faults(faults) or 'none'} (dorsiflexion "
        f"+{i['d_dorsi']:.1f} deg, plantarflexion -{i['d_plantar']:.1f} deg, heel up "
        f"{i['heel_up']:.1f} deg, rigid keeps {100 * i['k_rom']:.0f} %); {100 * i['loss']:.1f} % "
        f"of {i['packet_ms']:.0f} ms packets lost"
    )
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

    p = sub.add_parser(
        "simulate",
        help="write a simulated recording and its ground truth",
        description="Write a simulated recording, its true strides (NAME.labels.csv) and its "
        "truth file (NAME.truth.json: toe-offs, strike angles, fault sizes; what `companion "
        "score` reads). --world wide --seed N draws the runner, the sensors, the link, the "
        "course and the faults from the wide world; each option given replaces its draw.",
    )
    p.add_argument("--out", required=True, help="recording CSV to write")
    p.add_argument("--minutes", type=Bounded(0.01, 360.0, "min"), default=3.0)
    p.add_argument(
        "--world",
        choices=("classic", "wide"),
        default="classic",
        help="classic: one typical runner and sensor set-up (the default); wide: everything "
        "drawn from the seed (docs/simulator.md)",
    )
    p.add_argument(
        "--rate",
        type=Bounded(25.0, 2000.0, "Hz"),
        help="sampling rate, Hz (default 200; wide: drawn)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="random seed (>= 0)")
    p.add_argument(
        "--faults",
        default="",
        help="e.g. 'rigid@60-90,forced_dorsiflexion@100-130' (seconds from the start; "
        "default: none, wide: drawn)",
    )
    p.add_argument("--relaxed", action="store_true", help="wide: no faults (for false cues)")
    p.add_argument(
        "--fault-size",
        choices=("near", "moderate", "large"),
        help="every fault's size from this band (near: just over the default thresholds)",
    )
    p.add_argument("--sensors", default="foot", help="foot, shank, or foot,shank")
    p.add_argument(
        "--cadence",
        type=Bounded(120.0, 240.0, "steps/min"),
        help="steps/min (default 170; wide: drawn)",
    )
    p.add_argument(
        "--speed",
        type=Bounded(1.0, 10.0, "m/s"),
        help="m/s (default: from the cadence; wide: drawn)",
    )
    p.add_argument(
        "--strike",
        choices=("rearfoot", "midfoot", "forefoot"),
        help="strike style, at its typical angle (default rearfoot; wide: drawn)",
    )
    p.add_argument(
        "--loss", type=Bounded(0.0, 0.5), help="fraction of packets lost (0-0.5; default 0)"
    )
    p.add_argument(
        "--packet-ms", type=Bounded(1.0, 1000.0, "ms"), help="BLE packet length, ms (default 20)"
    )
    p.add_argument(
        "--acc-range", type=Bounded(2.0, 400.0, "g"), help="accelerometer range, g (default 16)"
    )
    p.add_argument(
        "--gyr-range",
        type=Bounded(125.0, 10000.0, "deg/s"),
        help="gyroscope range, deg/s (default 2000)",
    )
    p.add_argument(
        "--clock-ppm",
        type=Bounded(-1000.0, 1000.0, "ppm"),
        help="sensor clock drift, ppm (default 0)",
    )
    for flag, text in (
        ("--host-timestamps", "samples stamped by the host as their packet arrives (uneven)"),
        ("--running-start", "the recording starts mid-run, without standing"),
        ("--turns", "a loop with a 180 deg turn (radius 10 m) every 100 m"),
    ):
        p.add_argument(flag, action=argparse.BooleanOptionalAction, help=text + " (wide: drawn)")
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
    except OSError as exc:
        if exc.filename is not None:  # a file the command wrote or read, named
            log.debug("", exc_info=True)
            msg = f"{exc.filename}: {exc.strerror or exc}"
        else:  # standard output cannot take the output (a full disk, a closed pipe)
            msg = output_error(exc)
            drop_stdout()
        with contextlib.suppress(OSError):
            sys.stderr.write(f"companion: {msg}\n")
        return 1
