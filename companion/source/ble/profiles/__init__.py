"""Sensor profiles: one file per device family, all behind :class:`~.base.Profile`.

A new device is one new module here plus one line in :data:`PROFILES`.
"""

from __future__ import annotations

from companion.errors import SensorError
from companion.source.ble.profiles.base import Profile
from companion.source.ble.profiles.open_imu import OpenImuProfile
from companion.source.ble.profiles.polar_pmd import PolarPmdProfile
from companion.source.ble.profiles.witmotion import WitMotionProfile

PROFILES: dict[str, type[Profile]] = {
    OpenImuProfile.key: OpenImuProfile,
    WitMotionProfile.key: WitMotionProfile,
    PolarPmdProfile.key: PolarPmdProfile,
}


def get_profile(key: str) -> Profile:
    try:
        return PROFILES[key]()
    except KeyError:
        raise SensorError(
            f"unknown sensor profile {key!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None


def all_profiles() -> list[Profile]:
    return [cls() for cls in PROFILES.values()]
