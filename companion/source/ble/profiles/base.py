"""The one interface every sensor family implements, and the pieces they share.

A profile knows a device family's GATT layout, how to start and stop its stream,
and how to turn one notification into a :class:`Frame`: samples in the recording's
units (m/s² incl. gravity, deg/s, sensor axes) with the *device's* sample clock
ticks. Putting those ticks on a continuous time line (wraps, gaps, reconnects) is
the job of :class:`~companion.source.ble.clock.SensorClock`, the same for every
profile.

Each profile also ships the device side (:class:`Peripheral`): an encoder that
turns sample arrays into the notifications the real device would send. The tests
serve it through a fake BlueZ, and the open profile's one is the reference
peripheral for firmware authors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from companion.errors import SensorError

if TYPE_CHECKING:
    from bleak import BleakClient

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The full 128-bit form of a Bluetooth SIG 16-bit UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True, slots=True)
class Frame:
    """The samples of one notification.

    ``ticks`` (n,) int64: each sample's time in device clock ticks, as sent (may
    wrap at the profile's ``clock_modulus``); ``acc_mps2`` (n, 3) and ``gyr_dps``
    (n, 3) in sensor axes. ``seq`` is the notification's sequence number when the
    protocol has one (else ``None``); ``period_ticks`` the sample spacing the frame
    implies (used to find how many samples a gap before this frame lost).
    """

    ticks: np.ndarray
    acc_mps2: np.ndarray
    gyr_dps: np.ndarray
    period_ticks: float
    seq: int | None = None

    def __len__(self) -> int:
        return len(self.ticks)


class Decoder(ABC):
    """Turns notifications into frames; one per connection (it may keep state)."""

    @abstractmethod
    def feed(self, char_uuid: str, data: bytes) -> list[Frame]:
        """Decode one notification; raise :class:`SensorError` on a malformed one."""


NotifyHandler = Callable[[str, bytes], None]
"""``handler(char_uuid, data)`` for every notification of a started stream."""


class Profile(ABC):
    """A device family: GATT layout, stream start/stop, decoder, clock."""

    key: ClassVar[str]
    """Config name (``profile = "open_imu"``)."""
    model: ClassVar[str]
    """Human name of the family, written to recordings."""
    service_uuid: ClassVar[str]
    """The service the stream lives in; a device without it is the wrong device."""
    name_prefixes: ClassVar[tuple[str, ...]] = ()
    """Advertised names that identify the family when the service is not advertised."""
    clock_hz: ClassVar[float]
    """Device clock ticks per second."""
    clock_modulus: ClassVar[int | None]
    """The device clock wraps modulo this many ticks (``None``: never in practice)."""
    has_sample_clock: ClassVar[bool] = True
    """False when the device sends no time at all (samples are then counted at the
    nominal rate and gaps found from arrival times; see the profile's notes)."""
    seq_modulus: ClassVar[int | None] = None
    """Notification sequence numbers wrap modulo this (``None``: no sequence number)."""

    def matches(self, name: str | None, service_uuids: list[str]) -> bool:
        """Does an advertisement look like this family?"""
        uuids = {u.lower() for u in service_uuids}
        if self.service_uuid in uuids:
            return True
        return bool(name) and any(name.startswith(p) for p in self.name_prefixes)

    def check_services(self, client: BleakClient, address: str) -> None:
        """Raise a clear :class:`SensorError` if the connected device is not of this family."""
        if client.services.get_service(self.service_uuid) is None:
            found = sorted(s.uuid for s in client.services)
            raise SensorError(
                f"device {address} is not a {self.model}: it has no service "
                f"{self.service_uuid} (it offers {', '.join(found) or 'no services'}). "
                f"Check the sensor's `profile` and `address` in the config, or run "
                f"`companion scan` to see which profile each nearby device speaks."
            )

    @abstractmethod
    def decoder(self, rate_hz: float) -> Decoder:
        """A fresh decoder for one connection at the requested rate."""

    @abstractmethod
    def actual_rate_hz(self, rate_hz: float) -> float:
        """The rate the device will use for a requested one (its nearest supported)."""

    @abstractmethod
    async def start(self, client: BleakClient, rate_hz: float, on_notify: NotifyHandler) -> None:
        """Configure the device, subscribe and start the stream."""

    async def stop(self, client: BleakClient) -> None:  # noqa: B027 - optional hook
        """Stop the stream (best effort; the link may already be gone)."""

    @abstractmethod
    def peripheral(
        self,
        t_s: np.ndarray,
        acc_mps2: np.ndarray,
        gyr_dps: np.ndarray,
        **kwargs: object,
    ) -> Peripheral:
        """The device side of the protocol, fed from sample arrays (tests, reference)."""


async def read_battery(client: BleakClient) -> int | None:
    """Battery percent from the standard Battery Service, or ``None`` if not offered."""
    if client.services.get_characteristic(BATTERY_LEVEL_UUID) is None:
        return None
    try:
        data = await client.read_gatt_char(BATTERY_LEVEL_UUID)
    except Exception:  # a read failing is not worth dropping the link for
        return None
    return int(data[0]) if data else None


@dataclass
class Characteristic:
    uuid: str
    flags: list[str]
    value: bytes = b""


@dataclass
class Peripheral(ABC):
    """The device side of a profile: GATT table, commands, and notifications from samples.

    The device samples continuously at ``rate_hz`` (sample ``i`` at ``t_s[i]``);
    :meth:`advance` moves its sampling position to a sample index and returns the
    notifications the device sends meanwhile (none while it is not streaming, the
    samples are then simply not sent, as on a real device).
    """

    t_s: np.ndarray
    acc_mps2: np.ndarray
    gyr_dps: np.ndarray
    name: str = "sensor"
    battery_pct: int = 80
    streaming: bool = False
    cursor: int = 0
    services: dict[str, list[Characteristic]] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.t_s)

    @property
    @abstractmethod
    def rate_hz(self) -> float:
        """The rate the device currently samples at."""

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == BATTERY_LEVEL_UUID:
            return bytes([self.battery_pct])
        for chars in self.services.values():
            for c in chars:
                if c.uuid == char_uuid:
                    return c.value
        raise KeyError(char_uuid)

    @abstractmethod
    def write(self, char_uuid: str, data: bytes) -> list[tuple[str, bytes]]:
        """Handle a write; return notifications/indications it triggers at once."""

    @abstractmethod
    def advance(self, index: int) -> list[tuple[str, bytes]]:
        """Move the sampling position to ``index``; return notifications to send."""

    def subscribed(self, char_uuid: str) -> None:  # noqa: B027 - optional hook
        """Notifications on ``char_uuid`` were switched on (some devices start streaming)."""

    def disconnected(self) -> None:
        """The link went down: a real device stops streaming."""
        self.streaming = False


def battery_service() -> tuple[str, list[Characteristic]]:
    return BATTERY_SERVICE_UUID, [Characteristic(BATTERY_LEVEL_UUID, ["read", "notify"])]


def clamp_int16(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and saturate to int16, as a sensor's ADC does."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
