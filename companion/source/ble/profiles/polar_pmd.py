"""Polar's PMD measurement service (Verity Sense, OH1, Polar Sense and others): ACC + GYRO.

Facts used, from Polar's BLE SDK (polarofficial/polar-ble-sdk: the PMD client,
``PmdSetting``, ``AccData``, ``GyrData``, ``PmdTimeStampUtils`` and their unit tests; the
iOS ``testPmdDeltaFrameDecoder``):

* service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``, control point ``...5C81...``
  (write, indicate), data ``...5C82...`` (notify);
* control point requests: ``01 <type>`` get settings, ``02 <type> <settings>`` start,
  ``03 <type>`` stop; answers are indications ``F0 <op> <type> <status> <more>
  <settings>``, status 0 = success; settings are ``<setting> <count> <values>`` with
  sample rate (0), resolution (1) and range (2) as u16 values, range in milli-units (3)
  as a signed int32, channels (4) as u8, factor (5) as a float32 (in the start answer)
  and security (6) as 16 bytes;
* measurement types: ACC = 2, GYRO = 5;
* data frame: ``<type u8> <timestamp u64 ns> <frame type u8> <content>``; the
  timestamp is the time of the frame's **last** sample; bit 7 of the frame type
  marks a delta-compressed frame, the low 7 bits are the type number (:data:`FORMATS`);
* raw ACC frames: int8 (type 0), int16 (type 1) or int24 (type 2) per channel, in mG;
  no raw GYRO frame is defined;
* delta frames: a reference sample (int16 per channel; for GYRO type 1 the bits of a
  float32), then blocks ``<bit width u8> <count u8>`` of ``count`` samples × channels
  signed deltas of ``bit width`` bits, packed LSB first, each added to the previous
  sample; values × factor: ACC type 0 in g, ACC type 1 in mG, GYRO in deg/s;
* sample times: a stream's first frame back from its timestamp at the sample rate,
  every later frame spread evenly over the time since the previous frame's timestamp,
  rounded to the nanosecond (ties to even), the last sample exactly at the timestamp.

The Verity Sense samples its accelerometer at 52 Hz only and its gyroscope at up to
416 Hz; :class:`PolarDecoder` puts both on the gyroscope's sample times (linear
interpolation of the accelerometer, on the device's own clock), so each sample
carries all six axes at the gyroscope's rate. The 64-bit clock never wraps.
Lost notifications show as a frame whose time span is too long for its samples:
its samples are then placed back from its timestamp at the running period, and
the gap before it is counted by :class:`~companion.source.ble.clock.SensorClock`.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from companion.errors import SensorError
from companion.source.ble.profiles.base import (
    Characteristic,
    Decoder,
    Frame,
    NotifyHandler,
    Peripheral,
    Profile,
    battery_service,
    clamp_int16,
)
from companion.types import G_MPS2

if TYPE_CHECKING:
    from bleak import BleakClient

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

ACC = 2
GYRO = 5
OP_GET_SETTINGS = 0x01
OP_START = 0x02
OP_STOP = 0x03
RESPONSE = 0xF0
SET_RATE, SET_RESOLUTION, SET_RANGE, SET_RANGE_MILLI, SET_CHANNELS, SET_FACTOR = 0, 1, 2, 3, 4, 5
SET_SECURITY = 6
_SETTING_SIZE = {
    SET_RATE: 2,
    SET_RESOLUTION: 2,
    SET_RANGE: 2,
    SET_RANGE_MILLI: 4,
    SET_CHANNELS: 1,
    SET_FACTOR: 4,
    SET_SECURITY: 16,
}
MAX_RATE_HZ = 10_000
"""Highest sample rate taken from a device's settings (anything above is garbage)."""
COMPRESSED = 0x80
NS = 1_000_000_000
EPOCH_2000_TO_2026_NS = 820_540_800 * NS
"""Seconds from 2000-01-01 (Polar's epoch) to 2026-01-01, for the simulated device clock."""


# ----------------------------------------------------------------------------- settings
def parse_settings(data: bytes) -> dict[int, list[float]]:
    """``<setting> <count> <values>`` records into ``{setting: [values]}``.

    Read as Polar's Android SDK reads them (``PmdSetting``): sample rate, resolution and
    range as u16, range in milli-units as a *signed* int32 (``FF FF FF FF`` is -1),
    channels as u8, the factor as a float32, the security record as 16 bytes (kept as one
    integer). A record cut short is a :class:`SensorError`; a setting type this host does
    not know ends the parse (its size is unknown), keeping the records before it.
    """
    out: dict[int, list[float]] = {}
    i = 0
    while i + 2 <= len(data):
        kind, count = data[i], data[i + 1]
        size = _SETTING_SIZE.get(kind)
        if size is None:
            break
        i += 2
        vals: list[float] = []
        for _ in range(count):
            chunk = data[i : i + size]
            if len(chunk) < size:
                raise SensorError("Polar PMD settings record is cut short")
            if kind == SET_FACTOR:
                vals.append(struct.unpack("<f", chunk)[0])
            else:
                vals.append(int.from_bytes(chunk, "little", signed=kind == SET_RANGE_MILLI))
            i += size
        out[kind] = vals
    return out


def build_settings(settings: dict[int, Iterable[float]]) -> bytes:
    out = bytearray()
    for kind, vals in settings.items():
        vals = list(vals)
        out += bytes([kind, len(vals)])
        for v in vals:
            if kind == SET_FACTOR:
                out += struct.pack("<f", v)
            else:
                signed = kind == SET_RANGE_MILLI
                out += int(v).to_bytes(_SETTING_SIZE[kind], "little", signed=signed)
    return bytes(out)


def start_request(kind: int, rate_hz: int, resolution: int, range_: int) -> bytes:
    settings = {SET_RATE: [rate_hz], SET_RESOLUTION: [resolution], SET_RANGE: [range_]}
    return bytes([OP_START, kind]) + build_settings(settings)


def start_commands(rate_hz: float) -> list[bytes]:
    """The start requests for a simulated device offering ``rate_hz`` (tests)."""
    return [
        start_request(ACC, 52, 16, 8),
        start_request(GYRO, round(rate_hz), 16, 2000),
    ]


@dataclass(frozen=True, slots=True)
class ControlResponse:
    op: int
    kind: int
    status: int
    settings: dict[int, list[float]]


def parse_response(data: bytes) -> ControlResponse:
    if len(data) < 4 or data[0] != RESPONSE:
        raise SensorError(f"Polar PMD control point answer {data[:32].hex(' ')} is malformed")
    params = data[5:] if len(data) > 5 else b""
    return ControlResponse(data[1], data[2], data[3], parse_settings(params) if params else {})


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class FrameFormat:
    """How one kind of data frame is laid out and scaled (Polar's SDK, ``AccData.kt``,
    ``GyrData.kt``): ``value_bytes`` per channel value (raw) or per reference value
    (delta); values times ``scale`` (times the stream's factor when ``uses_factor``) give
    m/s² or deg/s; ``floats``: the values are float32 bit patterns, delta-coded as int32."""

    value_bytes: int
    scale: float
    uses_factor: bool
    floats: bool = False


FORMATS: dict[tuple[int, bool, int], FrameFormat] = {
    # (measurement, delta-compressed, frame type number) -> format
    (ACC, False, 0): FrameFormat(1, 1e-3 * G_MPS2, False),  # int8 mG
    (ACC, False, 1): FrameFormat(2, 1e-3 * G_MPS2, False),  # int16 mG
    (ACC, False, 2): FrameFormat(3, 1e-3 * G_MPS2, False),  # int24 mG
    (ACC, True, 0): FrameFormat(2, G_MPS2, True),  # int16 deltas, × factor in g
    (ACC, True, 1): FrameFormat(2, 1e-3 * G_MPS2, True),  # int16 deltas, × factor in mG
    (GYRO, True, 0): FrameFormat(2, 1.0, True),  # int16 deltas, × factor in deg/s
    (GYRO, True, 1): FrameFormat(4, 1.0, True, floats=True),  # float32, × factor in deg/s
}
"""Every data frame this host reads; anything else is refused (Polar's SDK defines no
raw gyroscope frame, and a raw ACC frame's type says its integer width)."""
MAX_ABS_VALUE = 1e6
"""Largest |value| (m/s² or deg/s) a decoded sample may have: no IMU measures 100,000 g
or a million deg/s, so a frame beyond it is corrupt."""


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    """Sums as Polar's SDK makes them, in 32-bit integers (wrapping)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _bits_to_ints(payload: bytes, width: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
    bits = bits[: width * count].reshape(count, width).astype(np.int64)
    vals = bits @ (np.int64(1) << np.arange(width, dtype=np.int64))
    sign = np.int64(1) << (width - 1)
    return np.where(vals >= sign, vals - (sign << 1), vals)


def decode_delta(content: bytes, channels: int = 3, ref_bytes: int = 2) -> np.ndarray:
    """A delta-compressed frame's samples as int64 (n, channels), reference sample first.

    The reference is ``channels`` signed little-endian values of ``ref_bytes``; then
    blocks ``<bit width> <count>`` of ``count × channels`` signed deltas packed LSB
    first, each added to the sample before (in 32-bit integers, as Polar's SDK does).
    """
    need = channels * ref_bytes
    if len(content) < need:
        raise SensorError("Polar PMD delta frame is shorter than its reference sample")
    ref = np.array(
        [
            int.from_bytes(content[i : i + ref_bytes], "little", signed=True)
            for i in range(0, need, ref_bytes)
        ],
        dtype=np.int64,
    )
    rows = [ref[None, :]]
    pos = need
    while pos + 2 <= len(content):
        width, count = content[pos], content[pos + 1]
        pos += 2
        nbytes = math.ceil(width * count * channels / 8)
        if (width == 0 and count) or width > 32 or pos + nbytes > len(content):
            raise SensorError(
                f"Polar PMD delta block (width {width}, {count} samples) does not fit the frame"
            )
        if count:
            deltas = _bits_to_ints(content[pos : pos + nbytes], width, count * channels)
            rows.append(deltas.reshape(count, channels))
        pos += nbytes
    if pos != len(content):
        raise SensorError("Polar PMD delta frame has trailing bytes")
    return _wrap_int32(np.cumsum(np.concatenate(rows), axis=0))


def encode_delta(samples: np.ndarray, block: int = 255, ref_bytes: int = 2) -> bytes:
    """Delta-compress integer samples (n, channels): reference, then blocks of minimal width."""
    s = np.asarray(samples, dtype=np.int64)
    out = bytearray(b"".join(int(v).to_bytes(ref_bytes, "little", signed=True) for v in s[0]))
    d = _wrap_int32(np.diff(s, axis=0))
    for a in range(0, len(d), block):
        chunk = d[a : a + block]
        width = 1
        while chunk.size and not (
            -(1 << (width - 1)) <= chunk.min() and chunk.max() <= (1 << (width - 1)) - 1
        ):
            width += 1
        vals = chunk.reshape(-1) & ((1 << width) - 1)
        bits = ((vals[:, None] >> np.arange(width)) & 1).astype(np.uint8).reshape(-1)
        out += bytes([width, len(chunk)]) + np.packbits(bits, bitorder="little").tobytes()
    return bytes(out)


def _raw_values(content: bytes, nbytes: int) -> np.ndarray:
    """A raw frame's (n, 3) signed little-endian integers of ``nbytes`` each."""
    if not content:
        raise SensorError("Polar PMD raw frame carries no samples")
    if len(content) % (3 * nbytes):
        raise SensorError(
            f"Polar PMD raw frame of {len(content)} bytes is not whole samples of "
            f"3 × {8 * nbytes}-bit values"
        )
    if nbytes == 3:
        b = np.frombuffer(content, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
    else:
        v = np.frombuffer(content, dtype=f"<i{nbytes}").astype(np.int64)
    return v.reshape(-1, 3)


def _raw_bytes(samples: np.ndarray, nbytes: int) -> bytes:
    v = np.asarray(samples, dtype=np.int64).reshape(-1)
    return b"".join(int(x).to_bytes(nbytes, "little", signed=True) for x in v)


@dataclass(frozen=True, slots=True)
class PmdFrame:
    kind: int
    timestamp_ns: int
    frame_type: int
    compressed: bool
    samples: np.ndarray
    """(n, 3) values as sent: int64, or float64 for a float frame."""
    format: FrameFormat

    def scaled(self, factor: float) -> np.ndarray:
        """The samples in m/s² (ACC) or deg/s (GYRO), ``factor`` from the start answer."""
        f = self.format
        return self.samples * (f.scale * (factor if f.uses_factor else 1.0))


def decode_frame(data: bytes) -> PmdFrame:
    """Parse one data notification; :class:`SensorError` says what is wrong with it."""
    if len(data) < 10:
        raise SensorError(f"Polar PMD data frame of {len(data)} bytes has no header")
    kind = data[0]
    ts = struct.unpack_from("<Q", data, 1)[0]
    ftype = data[9]
    compressed = bool(ftype & COMPRESSED)
    number = ftype & 0x7F
    if kind not in (ACC, GYRO):
        raise SensorError(
            f"Polar PMD frame of measurement type {kind}: this host starts only the "
            f"accelerometer ({ACC}) and the gyroscope ({GYRO})"
        )
    fmt = FORMATS.get((kind, compressed, number))
    if fmt is None:
        what = "accelerometer" if kind == ACC else "gyroscope"
        raise SensorError(
            f"Polar PMD {what} frame type {ftype:#04x} ({'delta' if compressed else 'raw'} "
            f"type {number}) is not one Polar's SDK defines"
        )
    if ts >= 1 << 63:
        raise SensorError(f"Polar PMD frame timestamp {ts} ns is past the year 2292")
    content = data[10:]
    if compressed:
        ints = decode_delta(content, 3, fmt.value_bytes)
    else:
        ints = _raw_values(content, fmt.value_bytes)
    samples: np.ndarray = ints
    if fmt.floats:
        samples = ints.astype(np.int32).view(np.float32).astype(np.float64)
        if not np.isfinite(samples).all():
            raise SensorError("Polar PMD frame has a value that is not a finite number")
    return PmdFrame(kind, ts, ftype, compressed, samples, fmt)


def encode_frame(
    kind: int,
    timestamp_ns: int,
    samples: np.ndarray,
    *,
    compressed: bool,
    frame_type: int | None = None,
) -> bytes:
    """One data notification as a device sends it (``frame_type``: the type number; by
    default delta type 0, or raw type 1, int16 mG, for ACC)."""
    number = frame_type if frame_type is not None else (0 if compressed else 1)
    fmt = FORMATS.get((kind, compressed, number))
    if fmt is None:
        raise ValueError(f"no Polar PMD frame type {number} for measurement {kind}")
    head = bytes([kind]) + struct.pack("<Q", timestamp_ns)
    head += bytes([number | (COMPRESSED if compressed else 0)])
    if not compressed:
        return head + _raw_bytes(samples, fmt.value_bytes)
    vals = np.asarray(samples)
    if fmt.floats:
        vals = vals.astype(np.float32).view(np.int32)
    return head + encode_delta(vals, ref_bytes=fmt.value_bytes)


# ----------------------------------------------------------------------------- time stamps
def _add_rounded(base: int, offsets: np.ndarray) -> np.ndarray:
    """``round(base + offsets)`` to whole ns, ties to even as Polar's SDK (Kotlin's
    ``round``), exactly: a float64 cannot hold a 2026 timestamp to the nanosecond."""
    whole = np.floor(offsets)
    frac = offsets - whole
    out = np.int64(base) + whole.astype(np.int64)
    return out + ((frac > 0.5) | ((frac == 0.5) & (out % 2 == 1)))


def times_from_rate(ts: int, n: int, period_ns: float) -> np.ndarray:
    """Sample times of a frame whose last sample is at ``ts``, ``period_ns`` apart (Polar's
    SDK ``PmdTimeStampUtils`` for a stream's first frame)."""
    k = np.arange(n - 1, dtype=np.float64)
    return np.append(_add_rounded(ts, -period_ns * (n - 1 - k)), np.int64(ts))


def times_after(prev_ts: int, ts: int, n: int) -> np.ndarray:
    """Sample times of a frame spread evenly over ``(prev_ts, ts]`` (Polar's SDK
    ``PmdTimeStampUtils`` for every later frame)."""
    k = np.arange(1, n, dtype=np.float64)
    return np.append(_add_rounded(prev_ts, (ts - prev_ts) / n * k), np.int64(ts))


@dataclass
class _Stream:
    """Sample times of one measurement from its frames' timestamps.

    As Polar's SDK: a frame's samples spread over the time since the previous frame, the
    first frame's back from its timestamp at the nominal period. Unlike it: when that span
    is clearly too long for the samples (frames were lost), they are placed back from the
    timestamp at the running period, so the gap stays where it was and
    :class:`~companion.source.ble.clock.SensorClock` counts it.
    """

    nominal_period_ns: float
    prev_ts: int | None = None
    period_ns: float | None = None

    def times(self, ts: int, n: int) -> np.ndarray:
        ref = self.period_ns or self.nominal_period_ns
        if self.prev_ts is None:
            t = times_from_rate(ts, n, ref)
        else:
            gap = ts - self.prev_ts
            span = gap / n
            if abs(span - ref) <= 0.3 * ref:  # no frame lost: spread over the span
                t = times_after(self.prev_ts, ts, n)
                lo, hi = 0.5 * self.nominal_period_ns, 2.0 * self.nominal_period_ns
                self.period_ns = float(np.clip(0.9 * ref + 0.1 * span, lo, hi))
            elif span > ref:  # frames were lost: back from ts at the running period
                t = times_from_rate(ts, n, ref)
            elif gap >= n:  # more samples than the time since holds at this rate
                t = times_after(self.prev_ts, ts, n)
            else:
                raise SensorError(
                    f"Polar PMD frame of {n} samples comes {gap} ns after the one before"
                )
        self.prev_ts = ts
        return t


# ----------------------------------------------------------------------------- decoder
CLOCK_RESET_NS = 2 * NS
"""A frame this much older than the last one of its stream means the device clock was
set back (a repeated or late frame is at most a few frames older); the same 2 s as
:class:`~companion.source.ble.clock.SensorClock`'s ``reset_tolerance_s``."""
MAX_PENDING_S = 5.0
"""Longest one measurement's samples wait for the other's to be fused with (a stream
that stopped would otherwise fill memory)."""


class PolarDecoder(Decoder):
    """ACC and GYRO frames into six-axis frames on the gyroscope's sample times.

    A repeated or late frame (not after the last one of its stream) is skipped: its
    samples are out already. A clock set back by more than :data:`CLOCK_RESET_NS` starts
    both streams afresh.
    """

    def __init__(self, gyr_rate_hz: float, acc_rate_hz: float) -> None:
        self.configure(acc_rate_hz, gyr_rate_hz, 1.0, 1.0)
        self._restart()

    def configure(
        self, acc_rate_hz: float, gyr_rate_hz: float, acc_factor: float, gyr_factor: float
    ) -> None:
        """Rates and scale factors as negotiated with the device (start answers)."""
        self.acc_rate_hz, self.gyr_rate_hz = acc_rate_hz, gyr_rate_hz
        self.gyr_period_ns = NS / gyr_rate_hz
        self.acc_factor = acc_factor
        self.gyr_factor = gyr_factor
        self._acc = _Stream(NS / acc_rate_hz)
        self._gyr = _Stream(NS / gyr_rate_hz)

    def _restart(self) -> None:
        self._acc = _Stream(NS / self.acc_rate_hz)
        self._gyr = _Stream(NS / self.gyr_rate_hz)
        self._acc_t = np.zeros(0, dtype=np.int64)
        self._acc_v = np.zeros((0, 3))
        self._gyr_t = np.zeros(0, dtype=np.int64)
        self._gyr_v = np.zeros((0, 3))
        self._last_out_ns: int | None = None

    def feed(self, char_uuid: str, data: bytes) -> list[Frame]:
        if char_uuid != DATA_UUID:
            return []
        f = decode_frame(bytes(data))
        stream = self._acc if f.kind == ACC else self._gyr
        if stream.prev_ts is not None and f.timestamp_ns <= stream.prev_ts:
            if stream.prev_ts - f.timestamp_ns <= CLOCK_RESET_NS:
                return []  # a repeated (or late) frame: its samples are out already
            self._restart()  # the device clock was set back: start afresh from here
            stream = self._acc if f.kind == ACC else self._gyr
        values = f.scaled(self.acc_factor if f.kind == ACC else self.gyr_factor)
        if not np.all(np.abs(values) <= MAX_ABS_VALUE):
            raise SensorError(f"Polar PMD frame has a value of {np.abs(values).max():.3g}")
        t = stream.times(f.timestamp_ns, len(values))
        if f.kind == ACC:
            keep = max(int(MAX_PENDING_S * self.acc_rate_hz), 64)
            self._acc_t = np.concatenate([self._acc_t, t])[-keep:]
            self._acc_v = np.concatenate([self._acc_v, values])[-keep:]
        else:
            if self._gyr.period_ns:
                self.gyr_period_ns = self._gyr.period_ns
            keep = max(int(MAX_PENDING_S * self.gyr_rate_hz), 64)
            self._gyr_t = np.concatenate([self._gyr_t, t])[-keep:]
            self._gyr_v = np.concatenate([self._gyr_v, values])[-keep:]
        return self._fuse()

    def _fuse(self) -> list[Frame]:
        if len(self._acc_t) == 0 or len(self._gyr_t) == 0:
            return []
        # gyro samples before the first acc sample cannot be completed: drop them
        start = int(np.searchsorted(self._gyr_t, self._acc_t[0]))
        ready = int(np.searchsorted(self._gyr_t, self._acc_t[-1], side="right"))
        out: list[Frame] = []
        if ready > start:
            t = self._gyr_t[start:ready]
            acc = np.column_stack([np.interp(t, self._acc_t, self._acc_v[:, i]) for i in range(3)])
            gyr = self._gyr_v[start:ready]
            # one frame per run of samples without a gap: the clock judges each gap (lost
            # frames, or the device clock set forward) at a frame's start
            cuts = np.flatnonzero(np.diff(t) > 1.5 * self.gyr_period_ns) + 1
            for a, b in zip([0, *cuts], [*cuts, len(t)], strict=True):
                out.append(Frame(t[a:b], acc[a:b], gyr[a:b], self.gyr_period_ns, None))
        self._gyr_t, self._gyr_v = (
            self._gyr_t[max(ready, start) :],
            self._gyr_v[max(ready, start) :],
        )
        # keep the acc samples still needed to interpolate the next gyro samples: from
        # the last one at or before the oldest gyro sample not yet out (or, with none
        # pending, before the next gyro sample, which follows the last one put out)
        if ready > start:
            self._last_out_ns = int(t[-1])
        if len(self._gyr_t):
            nxt = int(self._gyr_t[0])
        elif self._last_out_ns is not None:
            nxt = self._last_out_ns + 1
        else:
            return out  # nothing put out yet: every acc sample may still be needed
        keep = max(int(np.searchsorted(self._acc_t, nxt, side="right")) - 1, 0)
        self._acc_t, self._acc_v = self._acc_t[keep:], self._acc_v[keep:]
        return out


# ----------------------------------------------------------------------------- profile
class PolarPmdProfile(Profile):
    key: ClassVar[str] = "polar_pmd"
    model: ClassVar[str] = "Polar PMD (Verity Sense)"
    service_uuid: ClassVar[str] = SERVICE_UUID
    name_prefixes: ClassVar[tuple[str, ...]] = ("Polar Sense", "Polar OH1", "Polar Verity")
    clock_hz: ClassVar[float] = float(NS)
    clock_modulus: ClassVar[int | None] = None
    response_timeout_s: ClassVar[float] = 5.0

    def __init__(self) -> None:
        self._decoder: PolarDecoder | None = None
        self._gyr_rate = 208.0
        self._acc_rate = 52.0

    def actual_rate_hz(self, rate_hz: float) -> float:
        return rate_hz  # refined in start() from the device's own list

    def decoder(self, rate_hz: float) -> Decoder:
        self._decoder = PolarDecoder(rate_hz, self._acc_rate)
        return self._decoder

    async def start(self, client: BleakClient, rate_hz: float, on_notify: NotifyHandler) -> None:
        answers: asyncio.Queue[ControlResponse | SensorError] = asyncio.Queue()

        def on_cp(_c: object, data: bytearray) -> None:
            try:
                answers.put_nowait(parse_response(bytes(data)))
            except SensorError as exc:
                if data and data[0] == RESPONSE:  # an answer, but a malformed one
                    answers.put_nowait(exc)
                # anything else is not an answer (the device saying a stream stopped): ignore

        async def ask(req: bytes) -> ControlResponse:
            what = {ACC: "accelerometer", GYRO: "gyroscope"}.get(req[1], str(req[1]))
            await client.write_gatt_char(CONTROL_UUID, req, response=True)
            try:
                ans = await asyncio.wait_for(answers.get(), self.response_timeout_s)
            except TimeoutError:
                raise SensorError(
                    "the Polar sensor did not answer its PMD control point; switch it off and "
                    "on, and make sure no phone app is connected to it"
                ) from None
            if isinstance(ans, SensorError):
                raise SensorError(
                    f"the Polar sensor's answer to the {what} request cannot be read ({ans}); "
                    "switch it off and on"
                )
            if ans.status != 0:
                raise SensorError(
                    f"the Polar sensor refused the {what} request (PMD status {ans.status}); "
                    "it may not have that sensor (the H10 has no gyroscope) or be busy"
                )
            return ans

        await client.start_notify(CONTROL_UUID, on_cp)
        acc = (await ask(bytes([OP_GET_SETTINGS, ACC]))).settings
        gyr = (await ask(bytes([OP_GET_SETTINGS, GYRO]))).settings
        acc_rate = _nearest(_plausible(acc.get(SET_RATE), MAX_RATE_HZ) or [52], rate_hz)
        gyr_rate = _nearest(_plausible(gyr.get(SET_RATE), MAX_RATE_HZ) or [rate_hz], rate_hz)
        acc_range = int(max(_plausible(acc.get(SET_RANGE), 0xFFFF) or [8]))
        gyr_range = int(max(_plausible(gyr.get(SET_RANGE), 0xFFFF) or [2000]))
        self._acc_rate, self._gyr_rate = float(acc_rate), float(gyr_rate)
        dec = self._decoder or self.decoder(gyr_rate)
        dec.configure(acc_rate, gyr_rate, acc_range / 32768.0, gyr_range / 32768.0)
        await client.start_notify(DATA_UUID, lambda _c, data: on_notify(DATA_UUID, data))
        a = await ask(start_request(ACC, int(acc_rate), 16, acc_range))
        g = await ask(start_request(GYRO, int(gyr_rate), 16, gyr_range))
        dec.configure(
            acc_rate,
            gyr_rate,
            _factor(a, acc_range / 32768.0, "accelerometer"),
            _factor(g, gyr_range / 32768.0, "gyroscope"),
        )

    async def stop(self, client: BleakClient) -> None:
        for kind in (GYRO, ACC):
            await client.write_gatt_char(CONTROL_UUID, bytes([OP_STOP, kind]), response=True)

    def peripheral(
        self, t_s: np.ndarray, acc_mps2: np.ndarray, gyr_dps: np.ndarray, **kwargs: object
    ) -> PolarPeripheral:
        return PolarPeripheral(t_s, acc_mps2, gyr_dps, **kwargs)  # type: ignore[arg-type]


def _nearest(options: list[float], want: float) -> float:
    return float(min(options, key=lambda r: abs(math.log(r / want))))


def _plausible(values: list[float] | None, most: float) -> list[float]:
    """The values of a device's setting that can be meant (positive, at most ``most``)."""
    return [v for v in values or [] if 0 < v <= most]


def _factor(answer: ControlResponse, default: float, what: str) -> float:
    """The scale factor in a start answer (``default`` when it sends none)."""
    factor = answer.settings.get(SET_FACTOR, [default])[0]
    if not (math.isfinite(factor) and 0.0 < factor < 1e3):
        raise SensorError(
            f"the Polar sensor gave its {what} a scale factor of {factor!r}, which cannot be "
            "right; switch it off and on"
        )
    return factor


# ----------------------------------------------------------------------------- peripheral
@dataclass
class PolarPeripheral(Peripheral):
    """A PMD device as the tests see it (a Verity Sense by default).

    The gyroscope streams at the data's own rate, the accelerometer at every
    ``acc_decimation``-th sample (4: 52 Hz beside 208 Hz on a Verity Sense); both as
    delta frames unless ``acc_raw`` (raw ACC frames, type 1, mG).
    """

    name: str = "Polar Sense B1234567"
    acc_decimation: int = 4
    acc_raw: bool = False
    gyr_frame: int = 18
    acc_frame: int = 9
    acc_range_g: int = 8
    gyr_range_dps: int = 2000
    running: dict[int, bool] = field(default_factory=dict)
    _next: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.services = {
            SERVICE_UUID: [
                Characteristic(CONTROL_UUID, ["read", "write", "indicate"], bytes([0x0F, 0x24])),
                Characteristic(DATA_UUID, ["notify"]),
            ],
            **dict([battery_service()]),
        }
        d = np.diff(np.asarray(self.t_s))
        self._rate = float(1.0 / np.median(d)) if len(d) else 200.0
        self._ns = EPOCH_2000_TO_2026_NS + np.rint(np.asarray(self.t_s) * NS).astype(np.int64)
        self._acc_raw = clamp_int16(np.asarray(self.acc_mps2) / G_MPS2 / self.acc_range_g * 32768)
        self._gyr_raw = clamp_int16(np.asarray(self.gyr_dps) / self.gyr_range_dps * 32768)

    @property
    def rate_hz(self) -> float:
        return self._rate

    def _settings(self, kind: int) -> dict[int, list[float]]:
        if kind == ACC:
            return {
                SET_RATE: [round(self._rate / self.acc_decimation)],
                SET_RESOLUTION: [16],
                SET_RANGE: [2, 4, self.acc_range_g],
            }
        r = round(self._rate)
        return {
            SET_RATE: [r // 4, r // 2, r, 2 * r],
            SET_RESOLUTION: [16],
            SET_RANGE: [250, 500, 1000, self.gyr_range_dps],
        }

    def write(self, char_uuid: str, data: bytes) -> list[tuple[str, bytes]]:
        if char_uuid != CONTROL_UUID or len(data) < 2:
            return []
        op, kind = data[0], data[1]
        if kind not in (ACC, GYRO):
            return [(CONTROL_UUID, bytes([RESPONSE, op, kind, 0x01, 0x00]))]  # not supported
        params = b""
        if op == OP_GET_SETTINGS:
            params = build_settings(self._settings(kind))
        elif op == OP_START:
            self.running[kind] = True
            self.streaming = True
            self._next[kind] = self.cursor
            factor = (self.acc_range_g if kind == ACC else self.gyr_range_dps) / 32768.0
            params = build_settings({SET_FACTOR: [factor]})
        elif op == OP_STOP:
            self.running[kind] = False
            self.streaming = any(self.running.values())
        return [(CONTROL_UUID, bytes([RESPONSE, op, kind, 0x00, 0x00]) + params)]

    def disconnected(self) -> None:
        super().disconnected()
        self.running.clear()

    def advance(self, index: int) -> list[tuple[str, bytes]]:
        index = min(index, self.n_samples)
        out: list[tuple[str, bytes]] = []
        done = index >= self.n_samples
        for kind, step, per in (
            (GYRO, 1, self.gyr_frame),
            (ACC, self.acc_decimation, self.acc_frame),
        ):
            if not self.running.get(kind):
                continue
            i = self._next.get(kind, self.cursor)
            i += (-i) % step  # align acc to its decimation grid
            while True:
                idx = np.arange(i, min(i + per * step, index), step)
                if len(idx) < per and not (done and len(idx)):
                    break
                if kind == GYRO:
                    frame = encode_frame(
                        GYRO, int(self._ns[idx[-1]]), self._gyr_raw[idx], compressed=True
                    )
                else:
                    samples = self._acc_raw[idx]
                    if self.acc_raw:  # raw ACC frames carry mG
                        mg = np.asarray(self.acc_mps2)[idx] / G_MPS2 * 1000.0
                        samples = clamp_int16(mg)
                    frame = encode_frame(
                        ACC, int(self._ns[idx[-1]]), samples, compressed=not self.acc_raw
                    )
                out.append((DATA_UUID, frame))
                i = int(idx[-1]) + step
            self._next[kind] = i
        self.cursor = max(self.cursor, index)
        return out
