"""The open IMU profile for DIY sensors (spec: ``docs/open-imu-profile.md``).

One notification carries a header (format, sample count, sequence number, the
first sample's time on a free-running 1 MHz clock, the sample period and the
full-scale ranges) and ``n`` six-axis int16 samples. Everything here follows the
spec byte for byte; :class:`OpenImuPeripheral` is the reference peripheral.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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

SERVICE_UUID = "eb840001-3f0a-4286-9f98-55efd104ef32"
DATA_UUID = "eb840002-3f0a-4286-9f98-55efd104ef32"
CONTROL_UUID = "eb840003-3f0a-4286-9f98-55efd104ef32"
INFO_UUID = "eb840004-3f0a-4286-9f98-55efd104ef32"

FORMAT_6AXIS_INT16 = 0x01
CMD_START = 0x01
CMD_STOP = 0x02
HEADER = struct.Struct("<BBHIHBB")
"""format u8, n u8, seq u16, t0_us u32, period_us u16, acc_fs_g u8, gyr_fs_code u8."""
HEADER_SIZE = HEADER.size  # 12
SAMPLE_SIZE = 12
GYR_FS_UNIT_DPS = 125
CLOCK_HZ = 1_000_000
CLOCK_MODULUS = 1 << 32
SEQ_MODULUS = 1 << 16
INFO = struct.Struct("<BBBHB")
"""version u8, acc_fs_g u8, gyr_fs_code u8, max_rate_hz u16, max samples per packet u8."""


@dataclass(frozen=True, slots=True)
class OpenImuPacket:
    """One decoded data notification, in the spec's own terms."""

    seq: int
    t0_us: int
    period_us: int
    acc_fs_g: int
    gyr_fs_dps: int
    raw: np.ndarray
    """(n, 6) int16: ax, ay, az, gx, gy, gz."""


def encode_packet(
    seq: int,
    t0_us: int,
    period_us: int,
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    *,
    acc_fs_g: int = 16,
    gyr_fs_dps: int = 2000,
) -> bytes:
    """Encode ``n`` samples as one data notification (values saturate at full scale)."""
    n = len(acc_mps2)
    if not 1 <= n <= 255:
        raise ValueError(f"a packet holds 1..255 samples, not {n}")
    if gyr_fs_dps % GYR_FS_UNIT_DPS:
        raise ValueError(f"gyroscope full scale must be a multiple of {GYR_FS_UNIT_DPS} dps")
    acc_raw = clamp_int16(np.asarray(acc_mps2) / (acc_fs_g * G_MPS2) * 32768.0)
    gyr_raw = clamp_int16(np.asarray(gyr_dps) / gyr_fs_dps * 32768.0)
    head = HEADER.pack(
        FORMAT_6AXIS_INT16,
        n,
        seq % SEQ_MODULUS,
        t0_us % CLOCK_MODULUS,
        period_us,
        acc_fs_g,
        gyr_fs_dps // GYR_FS_UNIT_DPS,
    )
    body = np.hstack([acc_raw, gyr_raw]).astype("<i2").tobytes()
    return head + body


def decode_packet(data: bytes) -> OpenImuPacket:
    """Parse one data notification; :class:`SensorError` says what is wrong with it."""
    if len(data) < HEADER_SIZE:
        raise SensorError(
            f"open_imu packet of {len(data)} bytes is shorter than its {HEADER_SIZE}-byte header"
        )
    fmt, n, seq, t0, period, acc_fs, gyr_code = HEADER.unpack_from(data)
    if fmt != FORMAT_6AXIS_INT16:
        raise SensorError(f"open_imu packet format {fmt:#04x} is unknown (this host reads 0x01)")
    want = HEADER_SIZE + n * SAMPLE_SIZE
    if len(data) != want or n == 0:
        raise SensorError(
            f"open_imu packet says {n} samples ({want} bytes) but has {len(data)} bytes"
        )
    if period == 0 or acc_fs == 0 or gyr_code == 0:
        raise SensorError("open_imu packet has a zero sample period or full-scale range")
    raw = np.frombuffer(data, dtype="<i2", offset=HEADER_SIZE).reshape(n, 6)
    return OpenImuPacket(seq, t0, period, acc_fs, gyr_code * GYR_FS_UNIT_DPS, raw)


class OpenImuDecoder(Decoder):
    def feed(self, char_uuid: str, data: bytes) -> list[Frame]:
        if char_uuid != DATA_UUID:
            return []
        p = decode_packet(bytes(data))
        n = len(p.raw)
        ticks = p.t0_us + p.period_us * np.arange(n, dtype=np.int64)
        acc = p.raw[:, :3].astype(np.float64) * (p.acc_fs_g * G_MPS2 / 32768.0)
        gyr = p.raw[:, 3:].astype(np.float64) * (p.gyr_fs_dps / 32768.0)
        return [Frame(ticks % CLOCK_MODULUS, acc, gyr, float(p.period_us), p.seq)]


class OpenImuProfile(Profile):
    key: ClassVar[str] = "open_imu"
    model: ClassVar[str] = "open IMU profile (DIY)"
    service_uuid: ClassVar[str] = SERVICE_UUID
    name_prefixes: ClassVar[tuple[str, ...]] = ("OpenIMU",)
    clock_hz: ClassVar[float] = float(CLOCK_HZ)
    clock_modulus: ClassVar[int | None] = CLOCK_MODULUS
    seq_modulus: ClassVar[int | None] = SEQ_MODULUS

    def decoder(self, rate_hz: float) -> Decoder:
        return OpenImuDecoder()

    def actual_rate_hz(self, rate_hz: float) -> float:
        return rate_hz  # the device reports its real period in every packet

    async def start(self, client: BleakClient, rate_hz: float, on_notify: NotifyHandler) -> None:
        await client.start_notify(DATA_UUID, lambda _c, data: on_notify(DATA_UUID, data))
        await client.write_gatt_char(
            CONTROL_UUID, bytes([CMD_START]) + struct.pack("<H", round(rate_hz)), response=True
        )

    async def stop(self, client: BleakClient) -> None:
        await client.write_gatt_char(CONTROL_UUID, bytes([CMD_STOP]), response=True)

    def peripheral(
        self, t_s: np.ndarray, acc_mps2: np.ndarray, gyr_dps: np.ndarray, **kwargs: object
    ) -> OpenImuPeripheral:
        return OpenImuPeripheral(t_s, acc_mps2, gyr_dps, **kwargs)  # type: ignore[arg-type]


@dataclass
class OpenImuPeripheral(Peripheral):
    """The reference peripheral: what a firmware following the spec sends.

    ``clock_offset_us`` starts the device clock anywhere (near 2**32 to test the
    wrap); ``samples_per_packet`` is ``n`` in the spec.
    """

    name: str = "OpenIMU"
    samples_per_packet: int = 8
    clock_offset_us: int = 0
    acc_fs_g: int = 16
    gyr_fs_dps: int = 2000
    seq: int = 0
    requested_rate_hz: float = 0.0

    def __post_init__(self) -> None:
        info = INFO.pack(1, self.acc_fs_g, self.gyr_fs_dps // GYR_FS_UNIT_DPS, 1000, 19)
        self.services = {
            SERVICE_UUID: [
                Characteristic(DATA_UUID, ["notify"]),
                Characteristic(CONTROL_UUID, ["write", "write-without-response"]),
                Characteristic(INFO_UUID, ["read"], info),
            ],
            **dict([battery_service()]),
        }
        self._ticks = np.rint(np.asarray(self.t_s) * CLOCK_HZ).astype(np.int64)
        self._ticks += self.clock_offset_us
        d = np.diff(self._ticks)
        self._period_us = int(np.median(d)) if len(d) else 5000
        self._pending = self.cursor

    @property
    def rate_hz(self) -> float:
        return CLOCK_HZ / self._period_us

    def write(self, char_uuid: str, data: bytes) -> list[tuple[str, bytes]]:
        if char_uuid != CONTROL_UUID or not data:
            return []
        if data[0] == CMD_START:
            self.requested_rate_hz = struct.unpack_from("<H", data, 1)[0] if len(data) >= 3 else 0
            self.streaming = True
            self.seq = 0
            self._pending = self.cursor
        elif data[0] == CMD_STOP:
            self.streaming = False
        return []

    def advance(self, index: int) -> list[tuple[str, bytes]]:
        index = min(index, self.n_samples)
        out: list[tuple[str, bytes]] = []
        if not self.streaming:
            self.cursor = self._pending = max(self.cursor, index)
            return out
        self.cursor = max(self.cursor, index)
        k = self.samples_per_packet
        while self._pending + k <= self.cursor or (
            self.cursor >= self.n_samples and self._pending < self.n_samples
        ):
            a, b = self._pending, min(self._pending + k, self.n_samples)
            out.append(
                (
                    DATA_UUID,
                    encode_packet(
                        self.seq,
                        int(self._ticks[a]),
                        self._period_us,
                        self.acc_mps2[a:b],
                        self.gyr_dps[a:b],
                        acc_fs_g=self.acc_fs_g,
                        gyr_fs_dps=self.gyr_fs_dps,
                    ),
                )
            )
            self.seq = (self.seq + 1) % SEQ_MODULUS
            self._pending = b
        return out
