"""Polar's PMD measurement service (Verity Sense, OH1, Polar Sense and others): ACC + GYRO.

Facts used, from Polar's BLE SDK (polarofficial/polar-ble-sdk: the PMD client and its
unit tests ``AccDataTest``, ``GyrDataTest`` and the iOS ``testPmdDeltaFrameDecoder``):

* service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``, control point ``...5C81...``
  (write, indicate), data ``...5C82...`` (notify);
* control point requests: ``01 <type>`` get settings, ``02 <type> <settings>`` start,
  ``03 <type>`` stop; answers are indications ``F0 <op> <type> <status> <more>
  <settings>``, status 0 = success; settings are ``<setting> <count> <values>`` with
  sample rate (0), resolution (1) and range (2) as u16 values, channels (4) as u8
  and factor (5) as a float32 (in the start answer);
* measurement types: ACC = 2, GYRO = 5;
* data frame: ``<type u8> <timestamp u64 ns> <frame type u8> <content>``; the
  timestamp is the time of the frame's **last** sample; bit 7 of the frame type
  marks a delta-compressed frame;
* raw frames: int16 per channel (ACC raw type 1: mG); delta frames (type 0): a
  reference sample of int16 per channel, then blocks ``<bit width u8> <count u8>``
  of ``count`` samples × channels signed deltas of ``bit width`` bits, packed
  LSB first, each added to the previous sample; values × factor (ACC in g, GYRO
  in deg/s).

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
import contextlib
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
_SETTING_SIZE = {
    SET_RATE: 2,
    SET_RESOLUTION: 2,
    SET_RANGE: 2,
    SET_RANGE_MILLI: 4,
    SET_CHANNELS: 1,
    SET_FACTOR: 4,
}
COMPRESSED = 0x80
NS = 1_000_000_000
EPOCH_2000_TO_2026_NS = 820_540_800 * NS
"""Seconds from 2000-01-01 (Polar's epoch) to 2026-01-01, for the simulated device clock."""


# ----------------------------------------------------------------------------- settings
def parse_settings(data: bytes) -> dict[int, list[float]]:
    """``<setting> <count> <values>`` records into ``{setting: [values]}``."""
    out: dict[int, list[float]] = {}
    i = 0
    while i + 2 <= len(data):
        kind, count = data[i], data[i + 1]
        size = _SETTING_SIZE.get(kind)
        if size is None:
            raise SensorError(f"Polar PMD settings: unknown setting type {kind}")
        i += 2
        vals: list[float] = []
        for _ in range(count):
            chunk = data[i : i + size]
            if len(chunk) < size:
                raise SensorError("Polar PMD settings record is cut short")
            if kind == SET_FACTOR:
                vals.append(struct.unpack("<f", chunk)[0])
            else:
                vals.append(int.from_bytes(chunk, "little"))
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
                out += int(v).to_bytes(_SETTING_SIZE[kind], "little")
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
        raise SensorError(f"Polar PMD control point answer {data.hex(' ')} is malformed")
    params = data[5:] if len(data) > 5 else b""
    return ControlResponse(data[1], data[2], data[3], parse_settings(params) if params else {})


# ----------------------------------------------------------------------------- frames
def _bits_to_ints(payload: bytes, width: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
    bits = bits[: width * count].reshape(count, width).astype(np.int64)
    vals = bits @ (np.int64(1) << np.arange(width, dtype=np.int64))
    sign = np.int64(1) << (width - 1)
    return np.where(vals >= sign, vals - (sign << 1), vals)


def decode_delta(content: bytes, channels: int = 3, ref_bytes: int = 2) -> np.ndarray:
    """A delta-compressed frame's samples as int64 (n, channels), reference sample first."""
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
        if width == 0 or width > 32 or pos + nbytes > len(content):
            raise SensorError(
                f"Polar PMD delta block (width {width}, {count} samples) does not fit the frame"
            )
        deltas = _bits_to_ints(content[pos : pos + nbytes], width, count * channels)
        rows.append(deltas.reshape(count, channels))
        pos += nbytes
    if pos != len(content):
        raise SensorError("Polar PMD delta frame has trailing bytes")
    return np.cumsum(np.concatenate(rows), axis=0)


def encode_delta(samples: np.ndarray, block: int = 255) -> bytes:
    """Delta-compress int16 samples (n, channels): reference, then blocks of minimal width."""
    s = np.asarray(samples, dtype=np.int64)
    out = bytearray(b"".join(int(v).to_bytes(2, "little", signed=True) for v in s[0]))
    d = np.diff(s, axis=0)
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


@dataclass(frozen=True, slots=True)
class PmdFrame:
    kind: int
    timestamp_ns: int
    frame_type: int
    compressed: bool
    samples: np.ndarray
    """int64 (n, 3) raw values."""


def decode_frame(data: bytes) -> PmdFrame:
    if len(data) < 10:
        raise SensorError(f"Polar PMD data frame of {len(data)} bytes has no header")
    kind = data[0]
    ts = struct.unpack_from("<Q", data, 1)[0]
    ftype = data[9]
    compressed = bool(ftype & COMPRESSED)
    number = ftype & 0x7F
    content = data[10:]
    if compressed:
        if number != 0:
            raise SensorError(f"Polar PMD compressed frame type {number} is not supported")
        samples = decode_delta(content)
    else:
        if len(content) % 6:
            raise SensorError(f"Polar PMD raw frame of {len(content)} bytes is not 3 × int16")
        samples = np.frombuffer(content, dtype="<i2").reshape(-1, 3).astype(np.int64)
    return PmdFrame(kind, ts, ftype, compressed, samples)


def encode_frame(kind: int, timestamp_ns: int, samples: np.ndarray, *, compressed: bool) -> bytes:
    head = bytes([kind]) + struct.pack("<Q", timestamp_ns)
    if compressed:
        return head + bytes([COMPRESSED]) + encode_delta(samples)
    ftype = 1 if kind == ACC else 0
    return head + bytes([ftype]) + np.asarray(samples, dtype="<i2").tobytes()


# ----------------------------------------------------------------------------- decoder
@dataclass
class _Stream:
    """Sample times of one measurement from its frames' timestamps."""

    nominal_period_ns: float
    prev_ts: int | None = None
    period_ns: float | None = None

    def times(self, ts: int, n: int) -> np.ndarray:
        k = np.arange(n, dtype=np.float64)
        if self.prev_ts is None or ts <= self.prev_ts:
            period = self.period_ns or self.nominal_period_ns
        else:
            span = (ts - self.prev_ts) / n
            ref = self.period_ns or self.nominal_period_ns
            if abs(span - ref) <= 0.3 * ref:  # no frame lost: spread over the span
                period = span
                self.period_ns = span if self.period_ns is None else 0.9 * ref + 0.1 * span
            else:  # frames were lost (or clock jumped): back from ts at the running period
                period = ref
        self.prev_ts = ts
        # integer ns: a float64 cannot hold a 2026 timestamp to the nanosecond
        return np.int64(ts) - np.rint(period * (n - 1 - k)).astype(np.int64)


class PolarDecoder(Decoder):
    """ACC and GYRO frames into six-axis frames on the gyroscope's sample times."""

    def __init__(self, gyr_rate_hz: float, acc_rate_hz: float) -> None:
        self.acc_factor = 1.0
        self.gyr_factor = 1.0
        self._gyr = _Stream(NS / gyr_rate_hz)
        self._acc = _Stream(NS / acc_rate_hz)
        self.gyr_period_ns = NS / gyr_rate_hz
        self._acc_t = np.zeros(0, dtype=np.int64)
        self._acc_v = np.zeros((0, 3))
        self._gyr_t = np.zeros(0, dtype=np.int64)
        self._gyr_v = np.zeros((0, 3))
        self._last_out_ns: int | None = None

    def configure(
        self, acc_rate_hz: float, gyr_rate_hz: float, acc_factor: float, gyr_factor: float
    ) -> None:
        """Rates and scale factors as negotiated with the device (start answers)."""
        self._acc = _Stream(NS / acc_rate_hz)
        self._gyr = _Stream(NS / gyr_rate_hz)
        self.gyr_period_ns = NS / gyr_rate_hz
        self.acc_factor = acc_factor
        self.gyr_factor = gyr_factor

    def feed(self, char_uuid: str, data: bytes) -> list[Frame]:
        if char_uuid != DATA_UUID:
            return []
        f = decode_frame(bytes(data))
        n = len(f.samples)
        if f.kind == ACC:
            t = self._acc.times(f.timestamp_ns, n)
            scale = self.acc_factor if f.compressed else 1e-3  # raw ACC frames carry mG
            self._acc_t = np.concatenate([self._acc_t, t])
            self._acc_v = np.concatenate([self._acc_v, f.samples * scale * G_MPS2])
        elif f.kind == GYRO:
            t = self._gyr.times(f.timestamp_ns, n)
            if self._gyr.period_ns:
                self.gyr_period_ns = self._gyr.period_ns
            self._gyr_t = np.concatenate([self._gyr_t, t])
            self._gyr_v = np.concatenate([self._gyr_v, f.samples * self.gyr_factor])
        else:
            return []
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
            out.append(Frame(t, acc, self._gyr_v[start:ready], self.gyr_period_ns, None))
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
        answers: asyncio.Queue[ControlResponse] = asyncio.Queue()

        def on_cp(_c: object, data: bytearray) -> None:
            with contextlib.suppress(SensorError):  # not an answer: ignore it
                answers.put_nowait(parse_response(bytes(data)))

        async def ask(req: bytes) -> ControlResponse:
            await client.write_gatt_char(CONTROL_UUID, req, response=True)
            try:
                ans = await asyncio.wait_for(answers.get(), self.response_timeout_s)
            except TimeoutError:
                raise SensorError(
                    "the Polar sensor did not answer its PMD control point; switch it off and "
                    "on, and make sure no phone app is connected to it"
                ) from None
            if ans.status != 0:
                what = {ACC: "accelerometer", GYRO: "gyroscope"}.get(req[1], str(req[1]))
                raise SensorError(
                    f"the Polar sensor refused the {what} request (PMD status {ans.status}); "
                    "it may not have that sensor (the H10 has no gyroscope) or be busy"
                )
            return ans

        await client.start_notify(CONTROL_UUID, on_cp)
        acc = (await ask(bytes([OP_GET_SETTINGS, ACC]))).settings
        gyr = (await ask(bytes([OP_GET_SETTINGS, GYRO]))).settings
        acc_rate = _nearest(acc.get(SET_RATE, [52]), rate_hz)
        gyr_rate = _nearest(gyr.get(SET_RATE, [rate_hz]), rate_hz)
        acc_range = int(max(acc.get(SET_RANGE, [8])))
        gyr_range = int(max(gyr.get(SET_RANGE, [2000])))
        self._acc_rate, self._gyr_rate = float(acc_rate), float(gyr_rate)
        dec = self._decoder or self.decoder(gyr_rate)
        dec.configure(acc_rate, gyr_rate, acc_range / 32768.0, gyr_range / 32768.0)
        await client.start_notify(DATA_UUID, lambda _c, data: on_notify(DATA_UUID, data))
        a = await ask(start_request(ACC, int(acc_rate), 16, acc_range))
        g = await ask(start_request(GYRO, int(gyr_rate), 16, gyr_range))
        dec.configure(
            acc_rate,
            gyr_rate,
            a.settings.get(SET_FACTOR, [acc_range / 32768.0])[0],
            g.settings.get(SET_FACTOR, [gyr_range / 32768.0])[0],
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
