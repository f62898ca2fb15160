"""Fuzzing what comes in: sensor notifications and recording files.

Shared by the CI tests (``tests/test_fuzz_input.py``: hypothesis, about 1,000 inputs per
target) and ``benchmarks/bench_fuzz.py`` (the same strategies, 100,000+ inputs per
target). For each target there is a strategy for its inputs and a function that feeds
them and checks what came out: a documented error (counted by kind), or output that
holds the invariants a user relies on. Anything else raises: a bug.
"""

from __future__ import annotations

import gzip
import re
import struct
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from companion.errors import RecordingError, SensorError
from companion.source.ble.profiles import get_profile
from companion.source.ble.profiles import open_imu as oi
from companion.source.ble.profiles import polar_pmd as pp
from companion.source.ble.profiles import witmotion as wm
from companion.source.ble.profiles.base import Decoder, Frame, Peripheral, Profile
from companion.source.ble.source import SensorLink
from companion.source.recording import (
    Recording,
    RecordingWarning,
    read_recording,
    write_recording,
)
from companion.source.settings import SensorSettings
from companion.types import G_MPS2, RATE_RANGE_HZ, SampleBatch, SensorInfo

PROFILE_KEYS = ("open_imu", "witmotion", "polar_pmd")
RATE_HZ = 200.0
HOST_T0_S = 1000.0
LATENCY_S = 0.02
OTHER_UUID = "0000ffff-0000-1000-8000-00805f9b34fb"
"""A characteristic no profile streams on (a notification there is not data)."""

# (offset, width) of each header field a device sets: format/count/sequence/clock/period
# and ranges (open IMU), head/flag and a value (WitMotion), measurement/timestamp/frame
# type and the first delta block (Polar PMD)
FIELDS: dict[str, tuple[tuple[int, int], ...]] = {
    "open_imu": ((0, 1), (1, 1), (2, 2), (4, 4), (8, 2), (10, 1), (11, 1)),
    "witmotion": ((0, 1), (1, 1), (2, 2), (8, 2)),
    "polar_pmd": ((0, 1), (1, 8), (9, 1), (10, 2), (16, 1), (17, 1)),
}
TYPE_BYTE = {"open_imu": 0, "witmotion": 1, "polar_pmd": 9}
"""Where each profile's frame (format) type byte is."""


def start_writes(profile: Profile, rate_hz: float) -> list[tuple[str, bytes]]:
    """The writes each profile's ``start()`` makes, to drive a peripheral without bleak."""
    if profile.key == "open_imu":
        return [(oi.CONTROL_UUID, bytes([oi.CMD_START]) + struct.pack("<H", round(rate_hz)))]
    if profile.key == "witmotion":
        return [(wm.WRITE_UUID, wm.UNLOCK), (wm.WRITE_UUID, wm.rate_command(rate_hz))]
    return [(pp.CONTROL_UUID, c) for c in pp.start_commands(rate_hz)]


def started(profile: Profile, periph: Peripheral, rate_hz: float) -> list[bytes]:
    """Start a peripheral as the profile would; return the answers it indicated."""
    answers = [a for cu, d in start_writes(profile, rate_hz) for _, a in periph.write(cu, d)]
    for chars in periph.services.values():
        for c in chars:
            if "notify" in c.flags:
                periph.subscribed(c.uuid)
    return answers


# ----------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class Stream:
    """Valid notifications of one simulated device, in the order sent, with arrival times."""

    key: str
    notes: tuple[tuple[str, bytes], ...]
    hosts: tuple[float, ...]
    acc_rate_hz: float
    factors: tuple[float, float] | None = None

    def decoder(self) -> Decoder:
        """A fresh decoder, configured as ``start()`` leaves it."""
        prof = get_profile(self.key)
        dec = prof.decoder(prof.actual_rate_hz(RATE_HZ))
        if isinstance(dec, pp.PolarDecoder) and self.factors is not None:
            dec.configure(self.acc_rate_hz, RATE_HZ, *self.factors)
        return dec

    def link(self) -> tuple[SensorLink, list[Any]]:
        """The live notification path (decode, clock, emit) without a radio."""
        items: list[Any] = []
        settings = SensorSettings(name="foot", profile=self.key, rate_hz=RATE_HZ)
        link = SensorLink(settings, get_profile(self.key), items.append)
        link._decoder = self.decoder()
        return link, items

    def with_clock(self, shift: int, start: int = 0) -> Stream:
        """The same stream with the device clock moved by ``shift`` ticks from notification
        ``start`` on (a clock that jumps, or one started elsewhere so that it wraps)."""
        notes = list(self.notes)
        for i in range(start, len(notes)):
            uuid, data = notes[i]
            if self.key == "open_imu":
                t0 = struct.unpack_from("<I", data, 4)[0]
                data = set_field(data, 4, 4, t0 + shift)
            elif self.key == "polar_pmd" and uuid == pp.DATA_UUID:
                ts = struct.unpack_from("<Q", data, 1)[0]
                data = set_field(data, 1, 8, ts + shift)
            notes[i] = (uuid, data)
        return Stream(self.key, tuple(notes), self.hosts, self.acc_rate_hz, self.factors)


@cache
def make_stream(key: str, n_samples: int = 120, seed: int = 0) -> Stream:
    """``n_samples`` of a running-like random signal at 200 Hz, as the device sends them."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / RATE_HZ
    acc = rng.uniform(-7.5 * G_MPS2, 7.5 * G_MPS2, (n_samples, 3))
    gyr = rng.uniform(-1900.0, 1900.0, (n_samples, 3))
    prof = get_profile(key)
    rate = prof.actual_rate_hz(RATE_HZ)
    # Polar: ACC at a quarter of the gyro rate as on a Verity Sense, in raw frames (the
    # gyroscope's are delta frames: both layouts are in every stream)
    periph = prof.peripheral(t, acc, gyr, **({"acc_raw": True} if key == "polar_pmd" else {}))
    answers = started(prof, periph, rate)
    factors = None
    acc_rate = rate
    if key == "polar_pmd":
        acc_rate = RATE_HZ / 4
        got = [pp.parse_response(a).settings.get(pp.SET_FACTOR) for a in answers]
        acc_f, gyr_f = (f[0] for f in got if f)
        factors = (acc_f, gyr_f)
    notes: list[tuple[str, bytes]] = []
    hosts: list[float] = []
    for i in range(1, n_samples + 1):
        for note in periph.advance(i):
            notes.append(note)
            hosts.append(HOST_T0_S + i / RATE_HZ + LATENCY_S)
    return Stream(key, tuple(notes), tuple(hosts), acc_rate, factors)


# ----------------------------------------------------------------------------- notifications


def set_field(data: bytes, offset: int, width: int, value: int) -> bytes:
    """``data`` with a little-endian field set to ``value`` (modulo its width)."""
    if offset + width > len(data):
        return data
    return (
        data[:offset]
        + (value % (1 << 8 * width)).to_bytes(width, "little")
        + data[offset + width :]
    )


def _interesting(width: int) -> st.SearchStrategy[int]:
    top = 1 << 8 * width
    edges = [0, 1, top - 1, top - 2, top // 2, top // 2 - 1]
    return st.one_of(st.integers(0, top - 1), st.sampled_from(edges))


def mutated(stream: Stream, max_size: int = 600) -> st.SearchStrategy[bytes]:
    """One notification that is probably not valid: random bytes (empty included), a
    valid one truncated or with bytes added, a byte or a header field set to anything,
    several valid ones glued together."""
    notes = [d for _, d in stream.notes]
    pick = st.sampled_from(notes)
    fields = st.sampled_from(FIELDS[stream.key])
    return st.one_of(
        st.binary(max_size=max_size),
        pick.flatmap(lambda d: st.integers(0, len(d) - 1).map(lambda k: d[:k])),
        st.tuples(pick, st.binary(min_size=1, max_size=max_size)).map(lambda x: x[0] + x[1]),
        st.tuples(pick, st.integers(0, 1 << 16), st.integers(0, 255)).map(
            lambda x: set_field(x[0], x[1] % len(x[0]), 1, x[2])
        ),
        st.tuples(pick, fields).flatmap(
            lambda x: _interesting(x[1][1]).map(lambda v: set_field(x[0], *x[1], v))
        ),
        st.lists(pick, min_size=2, max_size=4).map(b"".join),
    )


Op = tuple[str, Any]
"""``("valid", i)``: the stream's i-th notification; ``("bytes", data)``: ``data`` on the
data characteristic; ``("other", data)``: ``data`` on another characteristic."""


def sequences(stream: Stream, max_size: int = 30) -> st.SearchStrategy[list[Op]]:
    """A connection's worth of notifications: valid ones in any order (repeated, late,
    skipped), mutated ones, and ones on another characteristic."""
    valid = st.integers(0, len(stream.notes) - 1).map(lambda i: ("valid", i))
    bad = mutated(stream).map(lambda b: ("bytes", b))
    other = st.binary(max_size=40).map(lambda b: ("other", b))
    return st.lists(st.one_of(valid, valid, bad, other), max_size=max_size)


def resolve(stream: Stream, ops: Iterable[Op]) -> list[tuple[str, bytes, float]]:
    """``(char_uuid, data, host_mono)`` for each op; host time never goes back."""
    data_uuid = stream.notes[0][0] if stream.key != "polar_pmd" else pp.DATA_UUID
    out = []
    host = stream.hosts[0]
    for kind, arg in ops:
        if kind == "valid":
            uuid, data = stream.notes[arg]
            host = max(host, stream.hosts[arg])
        else:
            uuid, data = (data_uuid if kind == "bytes" else OTHER_UUID), arg
            host += 0.001
        out.append((uuid, data, host))
    return out


def refused(key: str, data: bytes) -> bool:
    """Does the profile's decoding refuse ``data`` whatever came before it?"""
    decode = {"open_imu": oi.decode_packet, "witmotion": wm.decode_packets}.get(
        key, pp.decode_frame
    )
    try:
        decode(data)
    except SensorError:
        return True
    return False


def error_kind(exc: BaseException) -> str:
    """An error's type and the shape of its message (path, numbers and values blanked)."""
    msg = str(exc)
    if isinstance(exc, RecordingError):
        msg = msg[len(exc.path) :].lstrip(",: ")
    msg = re.sub(r"sensor\.\S*\.(rate_hz|segment|side|mount|model)", r"sensor.X.\1", msg)
    msg = re.sub(r"0x[0-9a-f]+|-?\d+(\.\d+)?(e[-+]?\d+)?", "N", msg)
    msg = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", msg)
    return f"{type(exc).__name__}: {msg[:64]}"


def check_frame(frame: Frame) -> None:
    """What the clock and the estimator rely on from a decoder's frame."""
    assert isinstance(frame, Frame)
    n = len(frame.ticks)
    assert frame.ticks.ndim == 1 and np.issubdtype(frame.ticks.dtype, np.integer)
    assert frame.acc_mps2.shape == (n, 3) and frame.gyr_dps.shape == (n, 3)
    assert np.isfinite(frame.acc_mps2).all() and np.isfinite(frame.gyr_dps).all()
    assert np.isfinite(frame.period_ticks) and frame.period_ticks > 0


def fuzz_decoder(stream: Stream, ops: Iterable[Op], errors: Counter[str]) -> int:
    """Feed ``ops`` to a fresh decoder; count its (documented) errors; return the number
    of notifications fed. Any other exception propagates."""
    dec = stream.decoder()
    n = 0
    for uuid, data, _ in resolve(stream, ops):
        n += 1
        try:
            frames = dec.feed(uuid, data)
        except SensorError as exc:
            errors[error_kind(exc)] += 1
            continue
        for f in frames:
            check_frame(f)
    return n


def live(stream: Stream, ops: Iterable[Op]) -> tuple[SensorLink, SampleBatch]:
    """Ops through the live notification path; the samples it emitted, checked: each
    sensor's time line strictly increases, every value finite."""
    link, items = stream.link()
    for uuid, data, host in resolve(stream, ops):
        link.receive(uuid, data, host)
    assert link.decoder_faults == 0, "a decoder failed with an undocumented error"
    batches = [b for b in items if isinstance(b, SampleBatch)]
    if batches:
        t = np.concatenate([b.t_s for b in batches])
        acc = np.concatenate([b.acc for b in batches])
        gyr = np.concatenate([b.gyr for b in batches])
    else:
        t, acc, gyr = np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3))
    assert np.isfinite(t).all() and np.isfinite(acc).all() and np.isfinite(gyr).all()
    assert np.all(np.diff(t) > 0), "time went back or repeated"
    return link, SampleBatch("foot", t, acc, gyr)


def valid_ops(stream: Stream) -> list[Op]:
    return [("valid", i) for i in range(len(stream.notes))]


@cache
def clean_output(key: str) -> SampleBatch:
    """What the live path emits for a stream's valid notifications alone."""
    return live(make_stream(key), valid_ops(make_stream(key)))[1]


# ----------------------------------------------------------------------------- recordings


@cache
def recording_lines() -> tuple[str, ...]:
    """A small valid recording (two sensors, non-ASCII names and metadata), as lines."""
    rng = np.random.default_rng(5)
    data = {}
    sensors = {}
    for name, rate in (("pié", 100.0), ("shank", 200.0)):
        n = 30
        t = 0.25 + np.arange(n) / rate
        data[name] = SampleBatch(name, t, rng.normal(0, 9, (n, 3)), rng.normal(0, 300, (n, 3)))
        seg = "foot" if name == "pié" else "shank"
        sensors[name] = SensorInfo(name, rate, segment=seg, model="fuzz")
    rec = Recording(sensors, {"runner": "Zoë Ñandú", "source": "fuzz"}, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.csv"
        write_recording(path, rec)
        return tuple(path.read_text(encoding="utf-8").split("\n")[:-1])


BAD_VALUES = ("nan", "NaN", "inf", "-inf", "1e999", "", " ", "abc", "1,5", "0x10", "--1", "1e")


@st.composite
def recordings(draw: st.DrawFn, huge_max: int = 100_000) -> bytes:
    """A recording file, mutated: bad values (NaN, inf, text), times that repeat or go
    back, lines deleted, repeated or swapped, columns missing or extra, a huge line,
    bad bytes, a byte order mark, CRLF, cut anywhere, gzip (cut short or not)."""
    lines = list(recording_lines())
    head = next(i for i, line in enumerate(lines) if line.startswith("t_s,"))
    for op in draw(st.lists(st.integers(0, 9), max_size=5)):
        row = draw(st.integers(head + 1, len(lines) - 1)) if len(lines) > head + 1 else head
        parts = lines[row].split(",")
        if op == 0:  # a value that is not a finite number
            col = draw(st.integers(0, len(parts) - 1))
            parts[col] = draw(st.one_of(st.sampled_from(BAD_VALUES), st.text(max_size=12)))
        elif op == 1 and row > head + 1:  # a time that repeats or goes back
            prev_t = lines[row - 1].split(",")[0]
            parts[0] = draw(st.sampled_from([prev_t, "0", "-1", "0.0001"]))
        elif op == 2:  # a line deleted, or repeated
            if draw(st.booleans()):
                del lines[row]
                continue
            lines.insert(row, lines[row])
        elif op == 3 and row > head + 1:  # two lines swapped
            lines[row - 1], lines[row] = lines[row], lines[row - 1]
            continue
        elif op == 4:  # a column missing or extra (in the header or a row)
            target = draw(st.sampled_from([row, head]))
            parts = lines[target].split(",")
            if draw(st.booleans()) and len(parts) > 1:
                del parts[draw(st.integers(0, len(parts) - 1))]
            else:
                parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(["1", "x"])))
            lines[target] = ",".join(parts)
            continue
        elif op == 5:  # a huge line (sizes spread over orders of magnitude)
            size = min(10 ** draw(st.integers(0, 7)) * draw(st.integers(1, 9)), huge_max)
            fill = draw(st.sampled_from(["1", ",", "9.5,", "a", "é"]))
            lines.insert(row, fill * size)
            continue
        elif op == 6:  # a metadata line changed
            key = draw(st.sampled_from(["rate_hz", "segment", "side", "mount", "model"]))
            value = draw(
                st.one_of(st.sampled_from(["0", "-5", "nan", "1e9", "x"]), st.text(max_size=16))
            )
            lines.insert(0, f"# sensor.pié.{key}: {value}")
            continue
        elif op == 7 and len(parts) > 1:  # a sensor name changed
            parts[1] = draw(
                st.one_of(st.sampled_from(["", " ", "shank", "x" * 300]), st.text(max_size=16))
            )
        elif op == 8 and row > head + 1:  # rows of another sensor interleaved out of order
            lines.insert(row, lines[row - 1].replace("shank", "pié"))
            continue
        else:  # a number changed
            col = draw(st.sampled_from([0, 2, 3, 4, 5, 6, 7]))
            if col < len(parts):
                parts[col] = repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
        lines[row] = ",".join(parts)
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    raw = text.encode("utf-8")
    if draw(st.booleans()):  # bad bytes (not UTF-8, NUL, control) somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if draw(st.booleans()):  # cut anywhere (a run that ended abruptly)
        raw = raw[: draw(st.integers(0, len(raw)))]
    if draw(st.booleans()):
        raw = gzip.compress(raw, mtime=0)
        if draw(st.booleans()):  # a copy that did not finish
            raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def check_recording(path: Path, errors: Counter[str]) -> Recording | None:
    """Read ``path``: a :class:`RecordingError` (counted) or a recording that holds what
    replay relies on; warnings only the documented :class:`RecordingWarning` kinds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rec = read_recording(path)
        except RecordingError as exc:
            assert len(str(exc)) < 1000, "an error message a terminal cannot show"
            errors[error_kind(exc)] += 1
            rec = None
    for w in caught:
        assert issubclass(w.category, RecordingWarning), f"undocumented warning: {w}"
        errors[f"warning {w.category.__name__}"] += 1
    if rec is None:
        return None
    lo, hi = RATE_RANGE_HZ
    assert rec.data and set(rec.data) == set(rec.sensors)
    for name, b in rec.data.items():
        n = len(b.t_s)
        assert n >= 1 and b.acc.shape == (n, 3) and b.gyr.shape == (n, 3)
        assert np.isfinite(b.t_s).all() and np.isfinite(b.acc).all() and np.isfinite(b.gyr).all()
        assert np.all(np.diff(b.t_s) > 0)
        assert lo <= rec.sensors[name].rate_hz <= hi
    errors["read"] += 1
    return rec
