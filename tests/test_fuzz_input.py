"""Every bad byte a sensor can send, every broken recording: only documented errors.

Hypothesis drives the inputs of ``tests/_fuzz.py`` (about 1,000 per target here;
``benchmarks/bench_fuzz.py`` runs the same with 100,000+). A bad notification is
counted and skipped and the stream goes on without losing a sample; a recording gives
its data or one :class:`RecordingError`, with only :class:`RecordingWarning` kinds.
"""

from __future__ import annotations

import gzip
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _fuzz import (
    PROFILE_KEYS,
    TYPE_BYTE,
    check_frame,
    check_recording,
    clean_output,
    fuzz_decoder,
    live,
    make_stream,
    mutated,
    recording_lines,
    recordings,
    refused,
    sequences,
    set_field,
    valid_ops,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from companion.errors import RecordingError, SensorError
from companion.source.ble.profiles import polar_pmd as pp
from companion.source.recording import TruncatedRecordingWarning, read_recording

NOTIFICATIONS = settings(max_examples=200, deadline=None)
"""About 1,000 notifications per decoder (a connection's worth of 0-30 per example)."""


# ----------------------------------------------------------------------------- decoders


@pytest.mark.parametrize("key", PROFILE_KEYS)
@NOTIFICATIONS
@given(data=st.data())
def test_decoders_raise_nothing_but_sensor_errors(key: str, data: st.DataObject) -> None:
    """Random bytes, truncated, empty, oversized, any byte or header field (frame type,
    sequence number, clock) set to anything, valid notifications repeated, late or
    skipped: a decoder raises only :class:`SensorError`, and every frame it gives is
    finite and well formed."""
    stream = make_stream(key)
    fuzz_decoder(stream, data.draw(sequences(stream)), Counter())


@pytest.mark.parametrize("key", PROFILE_KEYS)
def test_every_frame_type_byte_is_read_or_refused(key: str) -> None:
    """All 256 values of the byte that says what a notification is (open IMU format,
    WitMotion flag, Polar frame type) in each kind of notification the device sends:
    read when it is a documented one, else refused with a :class:`SensorError`."""
    stream = make_stream(key)
    pos = TYPE_BYTE[key]
    kinds = {}
    for uuid, note in stream.notes:
        kinds.setdefault((note[0], note[pos]), (uuid, note))
    for uuid, note in kinds.values():
        accepted = set()
        for value in range(256):
            try:
                frames = stream.decoder().feed(uuid, set_field(note, pos, 1, value))
            except SensorError:
                continue
            accepted.add(value)
            for f in frames:
                check_frame(f)
        assert note[pos] in accepted
        if key == "polar_pmd":  # only frame types of Polar's SDK (whose layout fits)
            assert all((note[0], bool(v & 0x80), v & 0x7F) in pp.FORMATS for v in accepted)
        else:
            assert accepted == {"open_imu": {0x01}, "witmotion": {0x61, 0x71}}[key]


# ----------------------------------------------------------------------------- live path


@pytest.mark.parametrize("key", PROFILE_KEYS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_bad_notification_is_counted_and_skipped_and_nothing_is_lost(
    key: str, data: st.DataObject
) -> None:
    """Bad notifications among a sensor's stream: each is counted, skipped, and the
    samples that come out are exactly those of the good notifications alone."""
    stream = make_stream(key)
    bad = data.draw(
        st.lists(mutated(stream).filter(lambda b: refused(key, b)), min_size=4, max_size=12)
    )
    ops = valid_ops(stream)
    for b in bad:
        ops.insert(data.draw(st.integers(0, len(ops))), ("bytes", b))
    link, out = live(stream, ops)
    assert link.bad_notifications == len(bad)
    want = clean_output(key)
    assert len(want) > 60
    np.testing.assert_array_equal(out.t_s, want.t_s)
    np.testing.assert_array_equal(out.acc, want.acc)
    np.testing.assert_array_equal(out.gyr, want.gyr)


def test_a_decoder_bug_is_skipped_and_counted_not_the_end_of_the_run() -> None:
    """Anything but a SensorError out of a decoder (a bug) must not escape bleak's
    callback: the notification is skipped and counted apart, the next one goes on."""
    stream = make_stream("open_imu")
    link, items = stream.link()
    real = link._decoder

    class Broken:
        def feed(self, char_uuid: str, data: bytes) -> list:
            if data == b"boom":
                raise RuntimeError("a decoder bug")
            return real.feed(char_uuid, data)

    link._decoder = Broken()  # type: ignore[assignment]
    uuid, first = stream.notes[0]
    link.receive(uuid, b"boom", stream.hosts[0])
    link.receive(uuid, first, stream.hosts[0])
    assert (link.bad_notifications, link.decoder_faults) == (1, 1)
    assert len(items) == 1 and len(items[0]) == 8


@pytest.mark.parametrize("key", PROFILE_KEYS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_notifications_keep_the_time_line_increasing(key: str, data: st.DataObject) -> None:
    """Whatever arrives, through decode, clock and emit: nothing escapes, each sensor's
    time line strictly increases (a recording that replays), every value is finite."""
    stream = make_stream(key)
    live(stream, data.draw(sequences(stream)))


@pytest.mark.parametrize("key", ["open_imu", "polar_pmd"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_repeated_notifications_are_dropped_and_late_ones_invent_nothing(
    key: str, data: st.DataObject
) -> None:
    """A device (or BlueZ) sending a notification twice adds nothing; one arriving late
    is dropped rather than put back in time. (WitMotion sends no sequence number and no
    time, so a repeat cannot be told from new data: see docs/ble.md.)"""
    stream = make_stream(key)
    want = clean_output(key)
    ops = valid_ops(stream)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(ops) - 1))
        ops.insert(i + 1, ops[i])
    _, out = live(stream, ops)
    np.testing.assert_array_equal(out.t_s, want.t_s)
    np.testing.assert_array_equal(out.gyr, want.gyr)
    # late: a notification swapped with the one after it (not the first: the time line
    # starts at 0 with whichever sample comes first)
    ops = valid_ops(stream)
    i = data.draw(st.integers(1, len(ops) - 2))
    ops[i], ops[i + 1] = ops[i + 1], ops[i]
    _, out = live(stream, ops)
    index = {t: k for k, t in enumerate(want.t_s.tolist())}
    assert all(t in index for t in out.t_s.tolist())
    k = [index[t] for t in out.t_s.tolist()]
    np.testing.assert_array_equal(out.gyr, want.gyr[k])
    assert len(out) >= len(want) - 40  # at most one notification's samples (Polar: 2)


@pytest.mark.parametrize("key", ["open_imu", "polar_pmd"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_device_clock_that_wraps_or_jumps_keeps_every_sample(
    key: str, data: st.DataObject
) -> None:
    """The device clock starts anywhere (the open profile's wraps at 2**32 µs), or is
    set forward or back by seconds to days mid-stream: the samples all come out, evenly
    spaced on each side, and the time line goes on without a made-up gap."""
    stream = make_stream(key)
    want = clean_output(key)
    tick_s = 1e-6 if key == "open_imu" else 1e-9
    start = data.draw(st.integers(0, 2**32 - 1)) if key == "open_imu" else 0
    jump_s = data.draw(st.floats(3.0, 3.0e5)) * data.draw(st.sampled_from([-1, 1]))
    shift = round(jump_s / tick_s)
    if key == "open_imu":  # what the 32-bit clock shows of the jump: more than 3 s
        assume(abs((shift + 2**31) % 2**32 - 2**31) > 3e6)
    at = data.draw(st.integers(1, len(stream.notes) - 1))
    moved = stream.with_clock(start).with_clock(shift, at)
    link, out = live(moved, valid_ops(moved))
    # Polar: gyro samples waiting for the accelerometer when its clock jumps are lost if
    # it went back (their ACC samples never come) or fused across the jump if it went
    # forward: at most a frame's worth either way
    slack = 0 if key == "open_imu" else 2 * 18
    assert abs(len(out) - len(want)) <= slack
    steps = np.diff(out.t_s)
    assert steps.max() < 0.5  # no made-up gap (notifications arrive 40-90 ms apart)
    # (a Polar clock set back before anything was fused is no jump on the time line)
    assert link.clock.clock_jumps == 1 or (key == "polar_pmd" and link.clock.clock_jumps == 0)
    np.testing.assert_allclose(np.median(steps), 1 / 200.0, rtol=1e-6)


# ----------------------------------------------------------------------------- recordings


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_fuzzed_recording_is_valid_before_it_is_mutated(fuzz_dir: Path) -> None:
    path = fuzz_dir / "base.csv"
    path.write_text("\n".join(recording_lines()) + "\n", encoding="utf-8")
    errors: Counter[str] = Counter()
    rec = check_recording(path, errors)
    assert rec is not None and sorted(rec.data) == ["pié", "shank"]
    assert errors == Counter({"read": 1})


@settings(max_examples=1000, deadline=None)
@given(raw=recordings(huge_max=20_000))
def test_the_recording_reader_raises_nothing_but_recording_errors(
    fuzz_dir: Path, raw: bytes
) -> None:
    """Random and mutated CSV (bad bytes, huge lines, NaN, inf, times that repeat or go
    back, missing or extra columns, cut anywhere, gzip cut short): the reader gives a
    recording that replays, or one :class:`RecordingError` with a message a terminal
    can show; warnings only of the documented kinds."""
    path = fuzz_dir / "fuzz.csv"
    path.write_bytes(raw)
    check_recording(path, Counter())


def _rows(text: str) -> list[str]:
    return [line for line in text.split("\n") if line and line[0].isdigit()]


@pytest.mark.parametrize("packed", [False, True])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_recording_cut_anywhere_keeps_every_line_before_the_cut(
    fuzz_dir: Path, packed: bool, data: st.DataObject
) -> None:
    """A run that ended abruptly, or a copy that did not finish (plain or gzip, cut at
    any byte, inside a multi-byte character too): every complete line before the cut is
    read back, with at most a :class:`TruncatedRecordingWarning`."""
    text = "\n".join(recording_lines()) + "\n"
    raw = text.encode("utf-8")
    full = read_recording_rows(fuzz_dir, raw)
    if packed:
        raw = gzip.compress(raw, mtime=0)
    cut = data.draw(st.integers(1, len(raw) - 1))
    path = fuzz_dir / "cut.csv"
    path.write_bytes(raw[:cut])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rec = read_recording(path)
        except RecordingError as exc:  # cut before the first sample
            assert "no samples" in str(exc) or "no header" in str(exc) or "missing" in str(exc)
            return
    assert all(issubclass(w.category, TruncatedRecordingWarning) for w in caught)
    for name, b in rec.data.items():
        n = len(b.t_s)
        np.testing.assert_array_equal(b.t_s, full[name][:n])


def read_recording_rows(fuzz_dir: Path, raw: bytes) -> dict[str, np.ndarray]:
    path = fuzz_dir / "full.csv"
    path.write_bytes(raw)
    return {name: b.t_s for name, b in read_recording(path).data.items()}


def test_a_gzip_stream_cut_inside_a_multibyte_character_keeps_the_data(fuzz_dir: Path) -> None:
    """The decompressed text ends in the middle of "é" (a sensor named "pié"): the lines
    before are kept with a warning, not refused as "not a text file"."""
    text = ("\n".join(recording_lines()) + "\n").encode("utf-8")
    rows = _rows(text.decode("utf-8"))
    inside = text.rindex("pié".encode()) + len(b"pi") + 1  # between é's two bytes
    comp = zlib.compressobj(wbits=31)
    head = comp.compress(text[:inside]) + comp.flush(zlib.Z_SYNC_FLUSH)
    path = fuzz_dir / "mid-char.csv.gz"
    path.write_bytes(head)  # a copy cut right there
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(path)
    assert {w.category for w in caught} == {TruncatedRecordingWarning}
    assert "gzip stream is cut short" in str(caught[0].message)
    kept = sum(len(b) for b in rec.data.values())
    complete = [r for r in rows if text.index(r.encode()) + len(r.encode()) < inside]
    assert kept == len(complete)


def test_a_huge_line_is_named_in_a_short_message(fuzz_dir: Path) -> None:
    lines = list(recording_lines())
    lines.insert(len(lines) // 2, "1.0,pié," + "9" * 5_000_000 + "x,1,1,1,1,1")
    path = fuzz_dir / "huge.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordingError, match=r"line \d+: column acc_x: '9999.*characters") as e:
        read_recording(path)
    assert len(str(e.value)) < 300
