"""Fuzz every sensor decoder, the live notification path and the recording reader.

Usage::

    PYTHONPATH=. python benchmarks/bench_fuzz.py [--inputs 100000] [--targets all]

The same hypothesis strategies as the CI tests (``tests/_fuzz.py``), run until each
target has had ``--inputs`` inputs: notifications for each profile's decoder (random,
truncated, empty, oversized, any byte or header field set to anything: every frame
type byte, sequence numbers and clocks that repeat, go back, wrap or jump; valid ones
repeated, late or skipped), the same through the live notification path (decode,
clock, emit: each sensor's time line must strictly increase, every value be finite),
and files for the recording reader (mutated CSV and gzip, cut anywhere, huge lines).

Prints per target the inputs fed, the errors seen by kind, and anything else that
came out (with its traceback; the exit code is then 1). "Documented" means
:class:`SensorError` for notifications, :class:`RecordingError` and
:class:`RecordingWarning` for files.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _fuzz import (  # noqa: E402
    PROFILE_KEYS,
    Stream,
    check_recording,
    fuzz_decoder,
    live,
    make_stream,
    recordings,
    sequences,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

BATCH = 500
"""Examples per hypothesis run (each run draws fresh random inputs)."""


class Tally:
    def __init__(self) -> None:
        self.inputs = 0
        self.examples = 0
        self.errors: Counter[str] = Counter()
        self.bugs: list[str] = []

    def bug(self, what: str) -> None:
        if len(self.bugs) < 5:
            self.bugs.append(f"{what}\n{traceback.format_exc()}")
        self.errors["UNDOCUMENTED"] += 1


def run(target: str, want: int, example: Callable[[Tally], Callable[..., None]]) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    fn = example(tally)
    while tally.inputs < want:
        fn()
    dt = time.perf_counter() - start
    print(
        f"\n{target}: {tally.inputs:,} inputs in {tally.examples:,} examples, {dt:.0f} s "
        f"({1e6 * dt / max(tally.inputs, 1):.0f} us per input)",
        flush=True,
    )
    for kind, n in sorted(tally.errors.items(), key=lambda kv: -kv[1]):
        print(f"  {n:>8,}  {kind}")
    for b in tally.bugs:
        print(f"  UNDOCUMENTED:\n{b}")
    return tally


SETTINGS = settings(
    max_examples=BATCH,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def feed_decoder(stream: Stream, ops: list, tally: Tally) -> None:
    """Straight into a fresh decoder: only SensorError, and well-formed frames."""
    fuzz_decoder(stream, ops, tally.errors)


def feed_live(stream: Stream, ops: list, tally: Tally) -> None:
    """Through decode, clock and emit: nothing escapes, time strictly increases."""
    link, out = live(stream, ops)
    tally.errors["bad notifications (counted, skipped)"] += link.bad_notifications
    tally.errors["notifications accepted (data, or not data)"] += len(ops) - link.bad_notifications
    tally.errors["samples emitted"] += len(out)
    tally.errors["clock jumps re-anchored"] += link.clock.clock_jumps


def notifications_example(
    key: str, feed: Callable[[Stream, list, Tally], None]
) -> Callable[[Tally], Callable[..., None]]:
    stream = make_stream(key)

    def make(tally: Tally) -> Callable[..., None]:
        @SETTINGS
        @given(ops=sequences(stream, max_size=60))
        def example(ops: list) -> None:
            tally.examples += 1
            tally.inputs += len(ops)
            try:
                feed(stream, ops, tally)
            except Exception:  # anything but the documented errors, or broken output
                tally.bug(f"{feed.__name__} {key}, ops {ops!r:.400}")

        return example

    return make


def reader_example(tmp: Path) -> Callable[[Tally], Callable[..., None]]:
    path = tmp / "fuzz.csv"

    def make(tally: Tally) -> Callable[..., None]:
        @SETTINGS
        @given(raw=recordings(huge_max=2_000_000))
        def example(raw: bytes) -> None:
            tally.examples += 1
            tally.inputs += 1
            path.write_bytes(raw)
            try:
                check_recording(path, tally.errors)
            except Exception:
                tally.bug(f"reader, {len(raw)} bytes: {raw[:300]!r}")

        return example

    return make


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    ap.add_argument(
        "--targets",
        default="all",
        help="comma list of decoder:KEY, live:KEY, reader (default: all of them)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # a skipped notification is counted, not logged
    targets = [f"decoder:{k}" for k in PROFILE_KEYS] + [f"live:{k}" for k in PROFILE_KEYS]
    targets.append("reader")
    if args.targets != "all":
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    total = Counter()
    shm = Path("/dev/shm")  # files in memory where there is such a place: faster to fuzz
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        for target in targets:
            kind, _, key = target.partition(":")
            make = {
                "decoder": lambda k=key: notifications_example(k, feed_decoder),
                "live": lambda k=key: notifications_example(k, feed_live),
                "reader": lambda: reader_example(Path(tmp)),
            }[kind]()
            tally = run(target, args.inputs, make)
            total["inputs"] += tally.inputs
            total["undocumented"] += tally.errors["UNDOCUMENTED"]
    print(
        f"\nall targets: {total['inputs']:,} inputs; "
        f"anything but the documented errors: {total['undocumented']}"
    )
    return 1 if total["undocumented"] else 0


if __name__ == "__main__":
    sys.exit(main())
