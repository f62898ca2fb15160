"""Settings of the run, the pinned sensors and the recorder."""

from __future__ import annotations

from dataclasses import dataclass

from companion.settings import setting
from companion.types import mount_problem

SEGMENTS = ("foot", "shank")
SIDES = ("left", "right", "unknown")
PROFILES = ("polar_pmd", "witmotion", "open_imu")


@dataclass(frozen=True)
class RunSettings:
    runner: str = setting("runner", "Runner name; picks the saved relaxed-baseline profile.")
    profile_dir: str = setting("", "Folder of saved runner profiles; empty = the user data folder.")


@dataclass(frozen=True)
class SensorSettings:
    name: str = setting("foot", "Label in recordings and reports: foot, shank, left_foot ...")
    profile: str = setting("open_imu", "Device family.", choices=PROFILES)
    address: str = setting("", "BLE address (or, on macOS, UUID) that pins the device.")
    device_name: str = setting("", "Advertised name, used when no address is pinned.")
    segment: str = setting("foot", "Body segment the sensor is strapped to.", choices=SEGMENTS)
    side: str = setting("unknown", "Which leg.", choices=SIDES)
    rate_hz: float = setting(200.0, "Requested sampling rate.", min=25.0, max=1000.0, unit="Hz")
    mount: str = setting(
        "auto", "Sensor-to-segment mounting: auto (found from the data) or explicit."
    )

    def problems(self) -> list[str]:
        problem = mount_problem(self.mount)
        return [f"mount: {problem}"] if problem else []


@dataclass(frozen=True)
class RecordingSettings:
    dir: str = setting("recordings", "Folder for live-run recordings (relative to the config).")
    flush_interval_s: float = setting(
        1.0, "Longest time between flushes to disk.", min=0.05, max=1.0, unit="s"
    )
