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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from companion.cli import Bounded
from companion.errors import SensorError
from companion.progress import StatusLine

log = logging.getLogger("companion.ble")


def _out(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- scan
def cmd_scan(args: argparse.Namespace) -> int:
    import asyncio

    from companion.source.ble.scan import scan

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
        _out(f"{f.name or '?':<24} {f.address:<18} {f.rssi_dbm:>4} dBm {batt:>8}  {f.profile}")
    _out("")
    _out("to pin one, put these lines in your config (name: foot, shank, left_foot ...):")
    for f in found:
        _out("")
        for line in f.config_lines():
            _out(line)
    return 0


# --------------------------------------------------------------------------- run
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
) -> Any:
    """Run the live source through the pipeline, recording everything.

    Returns the run's summary, the number of samples recorded, and the relaxed baseline the
    run learned or was given (``StreamingEstimator.profile()``, ``None`` if none).
    """
    import asyncio

    from companion.pipeline import Pipeline, run_source
    from companion.source.recording import RecordingWriter

    loop = asyncio.get_running_loop()
    meta = {**source.metadata, **(metadata or {})}
    recorder = RecordingWriter(
        out_path, source.sensors, meta, flush_interval_s=cfg.recording.flush_interval_s
    )
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
        # A link that drops leaves written rows unflushed until the next write: flush anyway.
        while True:
            await asyncio.sleep(cfg.recording.flush_interval_s)
            recorder.flush()
            if status is not None:
                status.show(status_text(source, pipeline, time.monotonic()))

    handled: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, source.stop)
            handled.append(sig)
    task = asyncio.create_task(flusher())
    try:
        summary = await run_source(source, pipeline)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sig in handled:
            loop.remove_signal_handler(sig)
        recorder.close()
        if status is not None:
            status.clear()
    return summary, recorder.samples_written, pipeline.estimator.profile()


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from companion.config import load_config
    from companion.estimator.profile import LearnedFrom, find_profile, save_learned
    from companion.pipeline import load_checked_library
    from companion.source.ble.source import BleSource
    from companion.voice.sink import ConsoleSink, make_sink

    cfg = load_config(args.config)
    if not cfg.sensors:
        raise SensorError(
            "no sensor is pinned in the config: add a [[sensors]] table (run `companion scan` "
            "to get the lines for a nearby sensor, see config.example.toml)"
        )
    library = load_checked_library(cfg)
    status = StatusLine(sys.stdout, enabled=sys.stdout.isatty() and not args.json)
    on_event: Callable[[dict[str, Any]], None] | None = None
    if args.json:
        sink: Any = ConsoleSink(lambda _t: None)

        def on_event(ev: dict[str, Any]) -> None:
            sys.stdout.write(json.dumps(ev) + "\n")
            sys.stdout.flush()
    else:
        sink = make_sink(
            cfg.voice, library, console=status.print_above, audio_device=args.audio_device
        )
    # --save-profile learns this run's baseline afresh (a saved one is replaced at the end)
    runner_profile = None if args.save_profile else find_profile(cfg, args.runner)
    source = BleSource(
        list(cfg.sensors),
        connect_timeout_s=args.connect_timeout,
        stop_after_s=args.seconds,
    )
    out_path = recording_path(cfg, args.out)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {"start_wall": started, "runner": args.runner or cfg.run.runner}
    if not args.json:
        names = ", ".join(f"{s.name} ({s.profile})" for s in cfg.sensors)
        _out(f"connecting to {names}; recording to {out_path}; Ctrl-C stops")
    try:
        summary, written, learned = asyncio.run(
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
            )
        )
    except SensorError:
        with contextlib.suppress(OSError):
            if out_path.exists() and _no_samples(out_path):
                out_path.unlink()  # nothing was recorded: do not leave an empty file behind
        raise
    finally:
        sink.close()
    links = {name: link for name, link in source.links.items()}
    if args.json:
        d = summary.as_dict()
        d["recording"] = str(out_path)
        d["lost_samples"] = {n: lk.clock.lost_samples for n, lk in links.items()}
        d["lost_notifications"] = {n: lk.clock.lost_frames for n, lk in links.items()}
        d["reconnects"] = {n: lk.stats.reconnects for n, lk in links.items()}
        d["bad_notifications"] = {n: lk.bad_notifications for n, lk in links.items()}
        sys.stdout.write(json.dumps(d) + "\n")
    else:
        for line in summary.lines():
            _out(line)
        for name, lk in links.items():
            _out(
                f"  {name} link: {lk.clock.lost_samples} samples lost "
                f"({100 * lk.clock.loss_fraction:.2f}%, {lk.clock.lost_frames} notifications), "
                f"{lk.stats.reconnects} reconnects, "
                f"{lk.bad_notifications} bad notifications skipped"
            )
        _out(f"recording: {out_path} ({written} samples); replay it with `companion replay`")
    if args.save_profile:
        name = args.runner or cfg.run.runner
        path = save_learned(
            cfg,
            learned,
            name,
            str(out_path),
            LearnedFrom.of("live run", str(out_path.resolve()), source.sensors, meta),
        )
        print(
            f"saved the relaxed baseline of runner {name!r} to {path}", file=sys.stderr, flush=True
        )
    return 0


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
