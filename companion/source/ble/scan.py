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
        lines = [
            "[[sensors]]",
            f'name = "{sensor_name}"',
            f'profile = "{self.profile}"',
            f'address = "{self.address}"',
        ]
        if self.name:
            lines.append(f'device_name = "{self.name}"')
        return lines


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
