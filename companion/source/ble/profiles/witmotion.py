"""WitMotion WT901BLE family (WT901BLECL, BWT901BLE5.0 ...): the 0x55 0x61 combined packet.

Facts used (WitMotion WT901BLECL datasheet, "6 Communication Protocol"; WitMotion
register docs for RRATE):

* service ``0000ffe5-0000-1000-8000-00805f9a34fb`` (note WitMotion's own base UUID,
  ``...9a34fb``), notify characteristic ``...ffe4...``, write characteristic ``...ffe9...``;
* each notification is a 20-byte packet ``0x55 0x61`` then nine little-endian int16:
  acceleration x, y, z (raw/32768*16 g), angular velocity x, y, z (raw/32768*2000 deg/s),
  angle roll, pitch, yaw (raw/32768*180 deg);
* commands are written as ``FF AA <register> <low> <high>``: unlock ``FF AA 69 88 B5``,
  output rate ``FF AA 03 <code> 00`` (code 0x06 = 10 Hz ... 0x08 = 50 Hz, 0x09 = 100 Hz,
  0x0A = 200 Hz), read registers ``FF AA 27 <reg> 00`` (answered by a ``0x55 0x71`` packet).

The packet carries **no time and no sequence number**. Samples are therefore counted at
the set output rate, and a gap is only seen when a notification arrives clearly later
than the sensor-to-host clock mapping predicts (see :class:`SensorClock`, "counted"
mode): a single lost notification inside a connection event goes unnoticed. Prefer
the open profile or Polar for loss accounting.
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

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

PACKET_SIZE = 20
FLAG_DATA = 0x61
FLAG_REGISTERS = 0x71
ACC_FS_G = 16.0
GYR_FS_DPS = 2000.0
ANGLE_FS_DEG = 180.0
UNLOCK = bytes.fromhex("ffaa6988b5")
RATE_CODES: dict[float, int] = {
    0.2: 0x01,
    0.5: 0x02,
    1.0: 0x03,
    2.0: 0x04,
    5.0: 0x05,
    10.0: 0x06,
    20.0: 0x07,
    50.0: 0x08,
    100.0: 0x09,
    200.0: 0x0A,
}
_DATA = struct.Struct("<BB9h")


def rate_command(rate_hz: float) -> bytes:
    """``FF AA 03 <code> 00`` for the nearest supported output rate."""
    rate = nearest_rate(rate_hz)
    return bytes([0xFF, 0xAA, 0x03, RATE_CODES[rate], 0x00])


def nearest_rate(rate_hz: float) -> float:
    return min(RATE_CODES, key=lambda r: abs(np.log(r / rate_hz)))


def encode_packet(acc_mps2: np.ndarray, gyr_dps: np.ndarray, angle_deg: np.ndarray) -> bytes:
    """One 0x55 0x61 packet for one sample (values saturate at full scale)."""
    raw = np.concatenate(
        [
            clamp_int16(np.asarray(acc_mps2) / (ACC_FS_G * G_MPS2) * 32768.0),
            clamp_int16(np.asarray(gyr_dps) / GYR_FS_DPS * 32768.0),
            clamp_int16(np.asarray(angle_deg) / ANGLE_FS_DEG * 32768.0),
        ]
    )
    return _DATA.pack(0x55, FLAG_DATA, *(int(v) for v in raw))


def decode_packets(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 0x55 0x61 packets in a notification: acc m/s², gyr deg/s, angles deg (n, 3) each.

    0x55 0x71 register answers are skipped; anything else is a :class:`SensorError`.
    """
    if len(data) % PACKET_SIZE or not data:
        raise SensorError(
            f"WitMotion notification of {len(data)} bytes is not a whole number of "
            f"{PACKET_SIZE}-byte packets"
        )
    rows = []
    for off in range(0, len(data), PACKET_SIZE):
        head, flag = data[off], data[off + 1]
        if head != 0x55:
            raise SensorError(f"WitMotion packet starts with {head:#04x}, not 0x55")
        if flag == FLAG_REGISTERS:
            continue
        if flag != FLAG_DATA:
            raise SensorError(f"WitMotion packet flag {flag:#04x} is not 0x61 or 0x71")
        rows.append(_DATA.unpack_from(data, off)[2:])
    raw = np.asarray(rows, dtype=np.float64).reshape(-1, 9)
    acc = raw[:, 0:3] * (ACC_FS_G * G_MPS2 / 32768.0)
    gyr = raw[:, 3:6] * (GYR_FS_DPS / 32768.0)
    ang = raw[:, 6:9] * (ANGLE_FS_DEG / 32768.0)
    return acc, gyr, ang


class WitMotionDecoder(Decoder):
    """Counts samples (the device sends no time): ticks are sample numbers."""

    def __init__(self) -> None:
        self.count = 0

    def feed(self, char_uuid: str, data: bytes) -> list[Frame]:
        if char_uuid != NOTIFY_UUID:
            return []
        acc, gyr, _ = decode_packets(bytes(data))
        n = len(acc)
        if n == 0:
            return []
        ticks = self.count + np.arange(n, dtype=np.int64)
        self.count += n
        return [Frame(ticks, acc, gyr, 1.0, None)]


class WitMotionProfile(Profile):
    key: ClassVar[str] = "witmotion"
    model: ClassVar[str] = "WitMotion WT901BLE"
    service_uuid: ClassVar[str] = SERVICE_UUID
    name_prefixes: ClassVar[tuple[str, ...]] = ("WT901", "BWT901", "WT9011")
    clock_hz: ClassVar[float] = 200.0  # per instance: ticks are samples at the set rate
    clock_modulus: ClassVar[int | None] = None
    has_sample_clock: ClassVar[bool] = False

    def __init__(self, rate_hz: float = 200.0) -> None:
        self.clock_hz = nearest_rate(rate_hz)  # type: ignore[misc]

    def decoder(self, rate_hz: float) -> Decoder:
        return WitMotionDecoder()

    def actual_rate_hz(self, rate_hz: float) -> float:
        rate = nearest_rate(rate_hz)
        self.clock_hz = rate  # type: ignore[misc]
        return rate

    async def start(self, client: BleakClient, rate_hz: float, on_notify: NotifyHandler) -> None:
        await client.write_gatt_char(WRITE_UUID, UNLOCK, response=False)
        await client.write_gatt_char(WRITE_UUID, rate_command(rate_hz), response=False)
        await client.start_notify(NOTIFY_UUID, lambda _c, data: on_notify(NOTIFY_UUID, data))

    def peripheral(
        self, t_s: np.ndarray, acc_mps2: np.ndarray, gyr_dps: np.ndarray, **kwargs: object
    ) -> WitMotionPeripheral:
        return WitMotionPeripheral(t_s, acc_mps2, gyr_dps, **kwargs)  # type: ignore[arg-type]


@dataclass
class WitMotionPeripheral(Peripheral):
    """A WT901BLE as the tests see it: one packet per sample once notifications are on.

    Angles are sent as zeros (the companion does not use the device's fusion).
    """

    name: str = "WT901BLE67"
    rate_code: int = 0x06
    unlocked: bool = False

    def __post_init__(self) -> None:
        self.services = {
            SERVICE_UUID: [
                Characteristic(NOTIFY_UUID, ["read", "notify"]),
                Characteristic(WRITE_UUID, ["write-without-response", "write"]),
            ],
            **dict([battery_service()]),
        }
        d = np.diff(np.asarray(self.t_s))
        self._rate_hz = float(1.0 / np.median(d)) if len(d) else 200.0

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def write(self, char_uuid: str, data: bytes) -> list[tuple[str, bytes]]:
        if char_uuid != WRITE_UUID or len(data) != 5 or data[:2] != b"\xff\xaa":
            return []
        if data == UNLOCK:
            self.unlocked = True
        elif data[2] == 0x03:
            self.rate_code = data[3]
        return []

    def subscribed(self, char_uuid: str) -> None:
        if char_uuid == NOTIFY_UUID:
            self.streaming = True

    def advance(self, index: int) -> list[tuple[str, bytes]]:
        index = min(index, self.n_samples)
        out: list[tuple[str, bytes]] = []
        if self.streaming:
            zero = np.zeros(3)
            for i in range(self.cursor, index):
                out.append((NOTIFY_UUID, encode_packet(self.acc_mps2[i], self.gyr_dps[i], zero)))
        self.cursor = max(self.cursor, index)
        return out
