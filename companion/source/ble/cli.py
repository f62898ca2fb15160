"""``companion scan`` and ``companion run``: find sensors, and coach a live run.

``run`` drives exactly the pipeline ``replay`` drives (:func:`companion.pipeline.run_source`)
from the live :class:`~companion.source.ble.source.BleSource`, always records every
sample (flushed at least every ``recording.flush_interval_s``), shows one status line
on a terminal, and stops cleanly on Ctrl-C or SIGTERM with the run's summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from companion.cli import Bounded
from companion.errors import ConfigError, SensorError
from companion.progress import StatusLine

log = logging.getLogger("companion.ble")


def _out(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- scan
def cmd_scan(args: argparse.Namespace) -> int:
    import asyncio

    from companion.source.ble.scan import printable, scan

    _out(f"scanning for {args.seconds:g} s ...")
    found = asyncio.run(scan(args.seconds))
    if not found:
        _out(
            "no known sensor found. Switch the sensor on (and off its phone app), bring it "
            "close, and scan again; known profiles: polar_pmd, witmotion, open_imu."
        )
        return 1
    _out(f"{'name':<24} {'address':<18} {'signal':>7} {'battery':>8}  profile")
    for f in found:
        batt = f"{f.battery_pct}%" if f.battery_pct is not None else "-"
        name, address = printable(f.name) or "?", printable(f.address)
        _out(f"{name:<24} {address:<18} {f.rssi_dbm:>4} dBm {batt:>8}  {f.profile}")
    _out("")
    _out("to pin one, put these lines in your config (name: foot, shank, left_foot ...):")
    for f in found:
        _out("")
        for line in f.config_lines():
            _out(line)
    return 0


# --------------------------------------------------------------------------- run
class Console:
    """Standard output of a live run, which must not stop the run when it fails.

    Output that cannot be written (a closed pipe, a full disk) is said once on stderr; from
    then on lines are counted as lost (``lost``) and the run goes on, recording and coaching.
    """

    def __init__(self, stream: Any, recording: Path) -> None:
        self.stream = stream
        self.recording = recording
        self.error: str | None = None
        self.lost = 0

    def write(self, text: str) -> None:
        if self.error is not None:
            self.lost += 1
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError as exc:
            from companion.cli import drop_stdout, output_error

            self.error = output_error(exc)
            self.lost += 1
            drop_stdout()
            _err(
                f"companion: {self.error}; the run goes on (recording to {self.recording}), "
                "its summary comes here"
            )

    def flush(self) -> None:
        """Every :meth:`write` flushes already."""

    def line(self, text: str) -> None:
        self.write(text + "\n")


def _err(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def status_text(source: Any, pipeline: Any, now_mono: float) -> str:
    parts = []
    for name, link in source.links.items():
        st = link.stats
        batt = f" batt {st.battery_pct}%" if st.battery_pct is not None else ""
        label = pipeline.last_label.get(name, "-")
        bad = f" bad {link.bad_notifications}" if link.bad_notifications else ""
        parts.append(
            f"{name}: {st.state} {st.rate_hz(now_mono):5.1f} Hz loss "
            f"{100 * link.clock.loss_fraction:4.1f}%{bad}{batt} strides "
            f"{pipeline.summary.strides[name]} last {label}"
        )
    return " | ".join(parts)


def recording_path(cfg: Any, out: str | None) -> Path:
    if out:
        return Path(out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return cfg.resolve(cfg.recording.dir) / f"run-{stamp}.csv"


@dataclass
class LiveResult:
    """What a live run leaves: its summary, its recorder (what was written and what could
    not be) and the relaxed baseline it learned or was given (``None`` if none)."""

    summary: Any
    recorder: Any
    learned: Any


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that end a run cleanly (Ctrl-C, ``kill``, systemd, a closed terminal); a second
one ends it at once, the recording still closed."""


async def live_run(
    cfg: Any,
    source: Any,
    sink: Any,
    library: Any,
    *,
    out_path: Path,
    runner_profile: Any = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    status: StatusLine | None = None,
    metadata: dict[str, str] | None = None,
    on_recording: Callable[[], None] | None = None,
) -> LiveResult:
    """Run the live source through the pipeline, recording everything.

    The recording is opened before any sensor is connected (a path that cannot be written is
    a :class:`RecordingError` at once; ``on_recording`` is called once it is open). Output
    that fails later (the disk fills up) does not stop the run: the recorder keeps what it
    wrote and counts what it could not.
    """
    import asyncio

    from companion.pipeline import Pipeline, run_source
    from companion.source.recording import RecordingWriter

    loop = asyncio.get_running_loop()
    meta = {**source.metadata, **(metadata or {})}

    def recording_failed(error: Any) -> None:
        _err(f"companion: recording stopped: {error}. The run goes on, coaching without it.")

    recorder = RecordingWriter(
        out_path,
        source.sensors,
        meta,
        flush_interval_s=cfg.recording.flush_interval_s,
        on_error=recording_failed,
    )
    if on_recording is not None:
        on_recording()
    pipeline = Pipeline(
        cfg,
        source.sensors,
        sink,
        library=library,
        on_event=on_event,
        recorder=recorder,
        profile=runner_profile,
    )

    async def flusher() -> None:
        # A link that drops leaves written rows unsynced until the next write: sync anyway.
        while True:
            await asyncio.sleep(cfg.recording.flush_interval_s)
            recorder.flush()
            if status is not None:
                status.show(status_text(source, pipeline, time.monotonic()))

    main_task = asyncio.current_task()
    stops = 0

    def on_stop_signal() -> None:
        nonlocal stops
        stops += 1
        if stops == 1:
            source.stop()
        elif main_task is not None:
            main_task.cancel()  # a second Ctrl-C: do not wait for the sensors to let go

    handled: list[int] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_stop_signal)
            handled.append(sig)
    task = asyncio.create_task(flusher())
    try:
        summary = await run_source(source, pipeline)
    except asyncio.CancelledError:
        if stops < 2:
            raise
        summary = pipeline.finish()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sig in handled:
            loop.remove_signal_handler(sig)
        recorder.close()
        if status is not None:
            status.clear()
    return LiveResult(summary, recorder, pipeline.estimator.profile())


def recording_lines(recorder: Any) -> list[str]:
    """The summary's account of the recording: what is in it, and what could not be kept."""
    where = f"recording: {recorder.path} ({recorder.samples_written} samples)"
    if recorder.error is None:
        return [where + "; replay it with `companion replay`"]
    upto = f" up to t={recorder.t_written_s:.2f} s" if recorder.t_written_s is not None else ""
    lost = ", ".join(f"{k} {v}" for k, v in sorted(recorder.not_recorded.items()))
    return [
        where + upto + "; replay it with `companion replay`",
        f"  NOT recorded: {recorder.samples_not_recorded} samples ({lost or 'none'}) after "
        f"{recorder.error}",
    ]


def check_profile_writable(cfg: Any, runner: str) -> None:
    """Before a run that will save a profile: its folder can take one (ConfigError if not)."""
    from companion.estimator.profile import profile_path
    from companion.files import make_private_dirs

    folder = profile_path(cfg, runner).parent
    try:
        make_private_dirs(folder)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--save-profile: runner profiles cannot be written to {folder} "
            f"({exc.strerror or exc}); set [run] profile_dir to a folder you can write to"
        ) from None


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from companion.config import load_config
    from companion.estimator.profile import LearnedFrom, find_profile, save_learned
    from companion.pipeline import load_checked_library
    from companion.source.ble.source import BleSource, pinning_problems
    from companion.voice.sink import ConsoleSink, make_sink

    cfg = load_config(args.config)
    if not cfg.sensors:
        raise SensorError(
            "no sensor is pinned in the config: add a [[sensors]] table (run `companion scan` "
            "to get the lines for a nearby sensor, see config.example.toml)"
        )
    # every config problem at once, before anything else: no device is connected for a
    # config that is wrong
    problems = pinning_problems(list(cfg.sensors))
    try:
        library = load_checked_library(cfg)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems, cfg.source_path or None) from None
    if problems:
        raise ConfigError(problems, cfg.source_path or None)
    source = BleSource(
        list(cfg.sensors),
        connect_timeout_s=args.connect_timeout,
        stop_after_s=args.seconds,
    )
    runner = args.runner or cfg.run.runner
    if args.save_profile:
        check_profile_writable(cfg, runner)
    out_path = recording_path(cfg, args.out)
    console = Console(sys.stdout, out_path)
    status = StatusLine(console, enabled=sys.stdout.isatty() and not args.json)
    on_event: Callable[[dict[str, Any]], None] | None = None
    if args.json:
        sink: Any = ConsoleSink(lambda _t: None)

        def on_event(ev: dict[str, Any]) -> None:
            console.line(json.dumps(ev))
    else:
        # cues above the status line on a terminal, else as lines: through the console
        # either way, so that output that fails never stops the run
        sink = make_sink(
            cfg.voice,
            library,
            console=status.print_above if status.enabled else console.line,
            audio_device=args.audio_device,
        )
    # --save-profile learns this run's baseline afresh (a saved one is replaced at the end)
    runner_profile = None if args.save_profile else find_profile(cfg, args.runner)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {"start_wall": started, "runner": runner}

    def connecting() -> None:
        if not args.json:
            names = ", ".join(f"{s.name} ({s.profile})" for s in cfg.sensors)
            console.line(f"connecting to {names}; recording to {out_path}; Ctrl-C stops")

    try:
        res = asyncio.run(
            live_run(
                cfg,
                source,
                sink,
                library,
                out_path=out_path,
                runner_profile=runner_profile,
                on_event=on_event,
                status=status,
                metadata=meta,
                on_recording=connecting,
            )
        )
    except SensorError:
        with contextlib.suppress(OSError):
            if out_path.exists() and _no_samples(out_path):
                out_path.unlink()  # nothing was recorded: do not leave an empty file behind
        raise
    finally:
        sink.close()
    summary, recorder = res.summary, res.recorder
    # the summary goes where the output goes, or to stderr when that failed
    say = console.line if console.error is None else _err
    links = {name: link for name, link in source.links.items()}
    if args.json:
        d = summary.as_dict()
        d["recording"] = str(out_path)
        d["recorded_samples"] = dict(sorted(recorder.written.items()))
        d["not_recorded"] = dict(sorted(recorder.not_recorded.items()))
        d["recording_error"] = str(recorder.error) if recorder.error else None
        d["lost_samples"] = {n: lk.clock.lost_samples for n, lk in links.items()}
        d["lost_notifications"] = {n: lk.clock.lost_frames for n, lk in links.items()}
        d["reconnects"] = {n: lk.stats.reconnects for n, lk in links.items()}
        d["bad_notifications"] = {n: lk.bad_notifications for n, lk in links.items()}
        say(json.dumps(d))
    else:
        for line in summary.lines():
            say(line)
        for name, lk in links.items():
            say(
                f"  {name} link: {lk.clock.lost_samples} samples lost "
                f"({100 * lk.clock.loss_fraction:.2f}%, {lk.clock.lost_frames} notifications), "
                f"{lk.stats.reconnects} reconnects, "
                f"{lk.bad_notifications} bad notifications skipped"
            )
        for line in recording_lines(recorder):
            say(line)
    if console.error is not None:
        _err(f"  output: {console.lost} line(s) could not be written ({console.error})")
    if args.save_profile:
        path = save_learned(
            cfg,
            res.learned,
            runner,
            str(out_path),
            LearnedFrom.of("live run", str(out_path.resolve()), source.sensors, meta),
        )
        _err(f"saved the relaxed baseline of runner {runner!r} to {path}")
    if recorder.error is not None:
        return recorder.error.exit_code
    return 1 if console.error is not None else 0


def _no_samples(path: Path) -> bool:
    with open(path, encoding="utf-8") as fh:
        return all(line.startswith("#") or line.startswith("t_s,") for line in fh)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scan", help="list nearby sensors of a known profile and the config lines that pin one"
    )
    p.add_argument(
        "--seconds", type=Bounded(0.1, 600.0, "s"), default=5.0, help="how long to scan (default 5)"
    )
    p.set_defaults(func=cmd_scan)

    p = subparsers.add_parser(
        "run", help="coach a live run from the pinned BLE sensor(s), recording every sample"
    )
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config (see config.example.toml)")
    p.add_argument("--runner", help="use this runner's saved relaxed baseline")
    p.add_argument(
        "--save-profile",
        action="store_true",
        help="learn the relaxed baseline from this run (not from a saved profile) and save it "
        "at the end as the runner's profile (--runner, else [run] runner), so later runs "
        "label from the first stride",
    )
    p.add_argument("--out", metavar="CSV", help="recording path (default: recording.dir/run-*.csv)")
    p.add_argument(
        "--seconds",
        type=Bounded(0.1, 86400.0, "s"),
        default=None,
        help="stop after this much stream time (s)",
    )
    p.add_argument(
        "--connect-timeout",
        type=Bounded(0.5, 600.0, "s"),
        default=20.0,
        help="seconds to find and connect each sensor at the start (default 20)",
    )
    p.add_argument("--json", action="store_true", help="JSON Lines events on stdout")
    p.add_argument("--audio-device", help="output device name or index")
    p.set_defaults(func=cmd_run)
