"""The fast paths give exactly what the plain ones gave: a recording parsed in C reads the
same numbers, warnings and errors as the line-by-line reader; a one-sensor replay in
large batches gives the same events as BLE-sized packets; building the parser imports no
heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion.config import Config
from companion.errors import RecordingError
from companion.pipeline import Pipeline, load_checked_library
from companion.replaying import PACKET_S, feed_recording, replay_batches
from companion.source import recording as recmod
from companion.source.base import interleave
from companion.source.recording import Recording, read_recording, write_recording
from companion.source.simulator import RunnerParams, simulate
from companion.voice.sink import ConsoleSink

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# format: companion-recording/1\nt_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n"


def _read(path: Path, fast: bool) -> tuple[object, list[str]]:
    """What reading gives: the recording (or the error's message) and the warnings."""
    orig = recmod._parse_rows_fast
    if not fast:
        recmod._parse_rows_fast = lambda *a: {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                got: object = read_recording(path)
            except RecordingError as exc:
                got = str(exc)
    finally:
        recmod._parse_rows_fast = orig
    return got, [str(w.message) for w in caught]


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    assert isinstance(a, Recording) and isinstance(b, Recording)
    if list(a.data) != list(b.data) or a.sensors != b.sensors or a.metadata != b.metadata:
        return False
    return all(
        getattr(a.data[k], f).tobytes() == getattr(b.data[k], f).tobytes()
        for k in a.data
        for f in ("t_s", "acc", "gyr")
    )


ROW = st.tuples(
    st.sampled_from(["foot", "shank", " foot ", "left_foot", ""]),
    st.lists(
        st.one_of(
            st.floats(-1e3, 1e3, allow_nan=False).map(repr),
            st.sampled_from(["1", " 2.5 ", "1e3", "nan", "inf", "x", "", "1_0", "-0", ".5"]),
        ),
        min_size=7,
        max_size=7,
    ),
    st.sampled_from(["\n", "\r\n", "\r", ",9\n", "\n\n", "\n  \n"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(ROW, min_size=0, max_size=12),
    increasing=st.booleans(),
    cut=st.integers(0, 6),
)
def test_fast_parse_reads_what_the_loop_reads(tmp_path: Path, rows, increasing, cut) -> None:
    lines = []
    for i, (name, vals, end) in enumerate(rows):
        if increasing:
            vals = [repr(0.01 * i), *vals[1:]]
        lines.append(",".join([vals[0], name, *vals[1:]]) + end)
    text = HEADER + "".join(lines)
    if cut:
        text = text[:-cut]  # a run cut off mid-write
    path = tmp_path / "r.csv"
    path.write_text(text, encoding="utf-8", newline="")
    fast, fast_warn = _read(path, fast=True)
    slow, slow_warn = _read(path, fast=False)
    assert _same(fast, slow), (fast, slow)
    assert fast_warn == slow_warn


def _run(
    minutes: float, rate: float, sensors: tuple[str, ...], loss: float, seed: int
) -> Recording:
    faults = []
    if minutes >= 1:
        from companion.source.simulator import parse_faults

        faults = parse_faults("forced_dorsiflexion@40-58")
    return simulate(
        minutes * 60.0,
        rate,
        runner=RunnerParams(),
        faults=faults,
        sensors=sensors,
        seed=seed,
        packet_loss=loss,
    ).recording


def test_a_real_recording_takes_the_fast_path_with_the_same_numbers(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "run.csv"
    write_recording(path, _run(0.5, 200.0, ("foot", "shank"), 0.02, 3))
    calls = []
    orig = recmod._parse_rows_fast
    monkeypatch.setattr(recmod, "_parse_rows_fast", lambda *a: calls.append(orig(*a)) or calls[-1])
    fast, _ = _read(path, fast=True)
    assert calls and calls[0], "a well-formed recording went through the line-by-line loop"
    monkeypatch.undo()
    slow, _ = _read(path, fast=False)
    assert _same(fast, slow)
    # a bad value in the middle: the same error, naming its line, as before
    lines = path.read_text().splitlines(keepends=True)
    lines[500] = lines[500].rstrip("\n") + "x\n"
    path.write_text("".join(lines))
    fast, _ = _read(path, fast=True)
    assert isinstance(fast, str) and "line 501" in fast
    assert fast == _read(path, fast=False)[0]


def _events(rec: Recording, batches: list) -> list[str]:
    cfg = Config()
    events: list[dict] = []
    pipe = Pipeline(
        cfg,
        rec.sensors,
        ConsoleSink(lambda _t: None),
        library=load_checked_library(cfg),
        on_event=events.append,
    )
    for b in batches:
        pipe.feed(b)
    summary = pipe.finish()
    return [json.dumps(e) for e in events] + [json.dumps(summary.as_dict())]


@pytest.mark.parametrize(
    ("rate", "loss", "seed"), [(200.0, 0.0, 1), (50.0, 0.03, 2), (400.0, 0.01, 5)]
)
def test_one_sensor_replays_in_large_batches_give_the_same_events(rate, loss, seed) -> None:
    rec = _run(1.0, rate, ("foot",), loss, seed)
    packets = list(interleave(rec.data, PACKET_S))
    big = replay_batches(rec)
    assert len(big) < len(packets) / 10
    a, b = _events(rec, packets), _events(rec, big)
    assert any('"type": "cue"' in e for e in a)
    assert a == b


def test_several_sensors_replay_in_packets_as_a_live_run() -> None:
    rec = _run(0.3, 100.0, ("foot", "shank"), 0.0, 4)
    got = replay_batches(rec)
    want = list(interleave(rec.data, PACKET_S))
    assert [(b.sensor, b.t_s.tobytes()) for b in got] == [(b.sensor, b.t_s.tobytes()) for b in want]
    cfg = Config()
    seen = []
    pipe = Pipeline(
        cfg, rec.sensors, ConsoleSink(lambda _t: None), library=load_checked_library(cfg)
    )
    summary = feed_recording(pipe, rec, seen.append)
    assert seen == sorted(seen) and seen[-1] == max(float(b.t_s[-1]) for b in rec.data.values())
    assert summary.samples == {k: len(v) for k, v in rec.data.items()}


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys; from companion.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'scipy', 'bleak', 'sounddevice', 'asyncio', "
        "'pyttsx3', 'tomlkit') if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert res.stdout.strip() == "[]", res.stdout


def test_evaluate_jitter_default_is_the_evaluations() -> None:
    from companion.estimator import cli, evaluate

    assert cli.MAX_JITTER_PERIODS == evaluate.MAX_JITTER_PERIODS
    assert np.isfinite(cli.MAX_JITTER_PERIODS)
