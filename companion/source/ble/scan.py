"""Find nearby sensors that speak a known profile (``companion scan``)."""

from __future__ import annotations

from dataclasses import dataclass

from companion.errors import SensorError
from companion.source.ble.profiles import all_profiles
from companion.source.ble.profiles.base import BATTERY_SERVICE_UUID
from companion.source.ble.source import no_adapter_message


@dataclass(frozen=True, slots=True)
class Found:
    """A nearby device that matches a profile."""

    name: str
    address: str
    rssi_dbm: int
    profile: str
    model: str
    battery_pct: int | None

    def config_lines(self, sensor_name: str = "foot") -> list[str]:
        """The ``[[sensors]]`` table that pins this device. Its name and address are what the
        device advertises, quoted as TOML strings, so no name can add lines of its own."""
        lines = [
            "[[sensors]]",
            f"name = {toml_string(sensor_name)}",
            f"profile = {toml_string(self.profile)}",
            f"address = {toml_string(self.address)}",
        ]
        if self.name:
            lines.append(f"device_name = {toml_string(self.name)}")
        return lines


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def printable(text: str) -> str:
    """A name a device advertises, safe to print on a terminal: control characters (an
    escape sequence that would move the cursor or retitle the window) shown as ``?``."""
    return "".join("?" if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 else ch for ch in text)


async def scan(seconds: float) -> list[Found]:
    """Scan for ``seconds``; every device matching a profile, strongest signal first."""
    from bleak import BleakScanner
    from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError

    try:
        seen = await BleakScanner.discover(timeout=seconds, return_adv=True)
    except BleakBluetoothNotAvailableError as exc:
        raise SensorError(no_adapter_message(str(exc))) from None
    except BleakDBusError as exc:
        raise SensorError(no_adapter_message(f"BlueZ answered {exc.dbus_error}")) from None
    except (BleakError, OSError) as exc:
        raise SensorError(no_adapter_message(str(exc) or type(exc).__name__)) from None
    profiles = all_profiles()
    out: list[Found] = []
    for device, adv in seen.values():
        name = adv.local_name or device.name or ""
        for prof in profiles:
            if prof.matches(name, list(adv.service_uuids)):
                battery = adv.service_data.get(BATTERY_SERVICE_UUID)
                out.append(
                    Found(
                        name=name,
                        address=device.address,
                        rssi_dbm=int(adv.rssi),
                        profile=prof.key,
                        model=prof.model,
                        battery_pct=int(battery[0]) if battery else None,
                    )
                )
                break
    out.sort(key=lambda f: -f.rssi_dbm)
    return out
