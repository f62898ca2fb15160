# ruff: noqa: F722, F821
"""A small fake BlueZ on a private D-Bus bus, so bleak runs unmodified in CI.

It exports what bleak's BlueZ backend reads (see bleak/backends/bluezdbus/manager.py
and client.py): an ObjectManager at ``/``, ``org.bluez.Adapter1`` at
``/org/bluez/hci0`` (discovery, filters, RemoveDevice), one ``org.bluez.Device1``
per simulated sensor (Connect/Disconnect, Connected, ServicesResolved, RSSI while
discovering, battery in ServiceData), and each device's GATT services and
characteristics (ReadValue, WriteValue, StartNotify/StopNotify; notifications are
``PropertiesChanged`` on ``Value``, as BlueZ sends them).

Behind each device sits the profile's own :class:`Peripheral` (the encoder), fed
from a recording and advanced in wall time times ``speed``; the scenario can drop
chosen notifications, send bad ones after chosen ones (``inject``: number -> hex), and
take the device away for a while (link lost).

Run as a process (``python tests/_fake_bluez.py SCENARIO.json``) on the bus named
by ``DBUS_SYSTEM_BUS_ADDRESS``; it prints ``READY`` once it owns ``org.bluez``.
The helpers at the bottom start a private ``dbus-daemon`` and this process for tests.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import BusType, DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method

ROOT = Path(__file__).resolve().parents[1]
ADAPTER_PATH = "/org/bluez/hci0"
R = PropertyAccess.READ


class Adapter(ServiceInterface):
    def __init__(self, server: "FakeBlueZ") -> None:
        super().__init__("org.bluez.Adapter1")
        self.server = server
        self.discovering = False

    @method()
    def StartDiscovery(self) -> None:
        self.discovering = True
        self.emit_properties_changed({"Discovering": True})
        self.server.discovery_changed()

    @method()
    def StopDiscovery(self) -> None:
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})

    @method()
    def SetDiscoveryFilter(self, filters: "a{sv}") -> None:
        pass

    @method()
    def RemoveDevice(self, device: "o") -> None:
        pass

    @method()
    def GetDiscoveryFilters(self) -> "as":
        return ["UUIDs", "RSSI", "Transport", "DuplicateData"]

    @dbus_property(access=R)
    def Address(self) -> "s":
        return "00:1A:7D:DA:71:13"

    @dbus_property(access=R)
    def Name(self) -> "s":
        return "fake-hci0"

    @dbus_property(access=R)
    def Alias(self) -> "s":
        return "fake-hci0"

    @dbus_property(access=R)
    def Powered(self) -> "b":
        return True

    @dbus_property(access=R)
    def Discovering(self) -> "b":
        return self.discovering

    @dbus_property(access=R)
    def Roles(self) -> "as":
        return ["central", "peripheral"]

    @dbus_property(access=R)
    def UUIDs(self) -> "as":
        return []


class Device(ServiceInterface):
    def __init__(self, sim: "SimDevice") -> None:
        super().__init__("org.bluez.Device1")
        self.sim = sim
        self.connected = False
        self.resolved = False
        self.rssi = sim.spec.get("rssi", -60)

    def set_connected(self, up: bool) -> None:
        self.connected = up
        self.resolved = up
        if up:
            self.emit_properties_changed({"Connected": True})
            self.emit_properties_changed({"ServicesResolved": True})
        else:
            self.emit_properties_changed({"ServicesResolved": False, "Connected": False})

    @method()
    async def Connect(self) -> None:
        if self.sim.away():
            await asyncio.sleep(0.2)
            raise DBusError("org.bluez.Error.Failed", "Page Timeout")
        await asyncio.sleep(0.02)
        self.set_connected(True)

    @method()
    def Disconnect(self) -> None:
        if self.connected:
            self.sim.link_down()
            self.set_connected(False)

    @method()
    def Pair(self) -> None:
        pass

    @dbus_property(access=R)
    def Address(self) -> "s":
        return self.sim.address

    @dbus_property(access=R)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=R)
    def Name(self) -> "s":
        return self.sim.name

    @dbus_property(access=R)
    def Alias(self) -> "s":
        return self.sim.name

    @dbus_property(access=R)
    def Adapter(self) -> "o":
        return ADAPTER_PATH

    @dbus_property(access=R)
    def Connected(self) -> "b":
        return self.connected

    @dbus_property(access=R)
    def ServicesResolved(self) -> "b":
        return self.resolved

    @dbus_property(access=R)
    def Paired(self) -> "b":
        return False

    @dbus_property(access=R)
    def Trusted(self) -> "b":
        return False

    @dbus_property(access=R)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=R)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=R)
    def RSSI(self) -> "n":
        return self.rssi

    @dbus_property(access=R)
    def UUIDs(self) -> "as":
        return self.sim.advertised_uuids

    @dbus_property(access=R)
    def ServiceData(self) -> "a{sv}":
        battery = self.sim.spec.get("advertise_battery")
        if battery is None:
            return {}
        return {"0000180f-0000-1000-8000-00805f9b34fb": Variant("ay", bytes([battery]))}

    @dbus_property(access=R)
    def ManufacturerData(self) -> "a{qv}":
        return {}


class GattService(ServiceInterface):
    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.uuid = uuid
        self.device_path = device_path

    @dbus_property(access=R)
    def UUID(self) -> "s":
        return self.uuid

    @dbus_property(access=R)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=R)
    def Device(self) -> "o":
        return self.device_path


class GattCharacteristic(ServiceInterface):
    def __init__(self, sim: "SimDevice", uuid: str, flags: list[str], service_path: str) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.sim = sim
        self.uuid = uuid
        self.flags = flags
        self.service_path = service_path
        self.value = b""
        self.notifying = False

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        self.sim.check_connected()
        return self.sim.periph.read(self.uuid)

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}") -> None:
        self.sim.check_connected()
        self.sim.write(self.uuid, bytes(value))

    @method()
    def StartNotify(self) -> None:
        self.sim.check_connected()
        self.notifying = True
        self.sim.periph.subscribed(self.uuid)
        self.emit_properties_changed({"Notifying": True})

    @method()
    def StopNotify(self) -> None:
        self.notifying = False
        self.emit_properties_changed({"Notifying": False})

    def notify(self, data: bytes) -> None:
        self.value = data
        if self.notifying:
            self.emit_properties_changed({"Value": data})

    @dbus_property(access=R)
    def UUID(self) -> "s":
        return self.uuid

    @dbus_property(access=R)
    def Service(self) -> "o":
        return self.service_path

    @dbus_property(access=R)
    def Value(self) -> "ay":
        return self.value

    @dbus_property(access=R)
    def Notifying(self) -> "b":
        return self.notifying

    @dbus_property(access=R)
    def Flags(self) -> "as":
        return self.flags

    @dbus_property(access=R)
    def MTU(self) -> "q":
        return 247


@dataclass
class SimDevice:
    """One simulated sensor: its peripheral, its timeline and its scenario."""

    spec: dict[str, Any]
    server: "FakeBlueZ"
    chars: dict[str, GattCharacteristic] = field(default_factory=dict)
    started_wall: float | None = None
    away_until: float = 0.0
    dropped_link: bool = False
    stalled: bool = False
    sent: int = 0
    dropped: int = 0
    links_dropped: int = 0
    log: Any = None

    def __post_init__(self) -> None:
        from companion.source.ble.profiles import get_profile
        from companion.source.recording import read_recording

        self.address = self.spec["address"]
        self.name = self.spec.get("name", "sensor")
        self.profile = get_profile(self.spec["profile"])
        rec = read_recording(self.spec["recording"])
        b = rec.data[self.spec.get("sensor", next(iter(rec.data)))]
        self.periph = self.profile.peripheral(
            b.t_s, b.acc, b.gyr, name=self.name, **self.spec.get("peripheral", {})
        )
        self.periph.battery_pct = self.spec.get("battery", 80)
        self.advertised_uuids = self.spec.get("advertised_uuids", list(self.periph.services))
        self.speed = float(self.spec.get("speed", 1.0))
        self.drop = set(self.spec.get("drop", []))
        self.inject = {int(k): bytes.fromhex(v) for k, v in self.spec.get("inject", {}).items()}
        self.rate_hz = self.periph.rate_hz
        if self.spec.get("log"):
            self.log = open(self.spec["log"], "w")  # noqa: SIM115 - open for the process's life

    def export(self, bus: MessageBus) -> None:
        path = f"{ADAPTER_PATH}/dev_{self.address.replace(':', '_').upper()}"
        self.path = path
        self.device = Device(self)
        bus.export(path, self.device)
        handle = 0x000A
        for suuid, chars in self.periph.services.items():
            spath = f"{path}/service{handle:04x}"
            bus.export(spath, GattService(suuid, path))
            handle += 1
            for c in chars:
                cpath = f"{spath}/char{handle:04x}"
                gc = GattCharacteristic(self, c.uuid, c.flags, spath)
                self.chars[c.uuid] = gc
                bus.export(cpath, gc)
                handle += 2

    def check_connected(self) -> None:
        if not self.device.connected:
            raise DBusError("org.bluez.Error.NotConnected", "Not Connected")

    def away(self) -> bool:
        return time.monotonic() < self.away_until

    def link_down(self) -> None:
        self.periph.disconnected()
        for c in self.chars.values():
            c.notifying = False

    def write(self, uuid: str, data: bytes) -> None:
        for cuuid, payload in self.periph.write(uuid, data):
            self.chars[cuuid].notify(payload)

    def sample_index(self, now: float) -> int:
        if self.started_wall is None:
            return 0
        return int((now - self.started_wall) * self.speed * self.rate_hz)

    def tick(self, now: float) -> None:
        if self.started_wall is None and self.periph.streaming:
            self.started_wall = now  # the device's sampling starts with its first stream
        idx = self.sample_index(now)
        # drop_link_at_s: one stream time, or a list of them (a link drop every few minutes)
        drop_at = self.spec.get("drop_link_at_s")
        drops = drop_at if isinstance(drop_at, list) else [] if drop_at is None else [drop_at]
        if (
            self.links_dropped < len(drops)
            and self.device.connected
            and idx / self.rate_hz >= drops[self.links_dropped]
        ):
            self.links_dropped += 1
            self.dropped_link = True
            self.away_until = now + float(self.spec.get("away_s", 1.0))
            self.link_down()
            self.device.set_connected(False)
        stall_at = self.spec.get("stall_at_s")
        if stall_at is not None and not self.stalled and idx / self.rate_hz >= stall_at:
            self.stalled = True
            self.periph.streaming = False  # firmware hiccup: connected, but silent
            if hasattr(self.periph, "running"):
                self.periph.running.clear()
        for cuuid, payload in self.periph.advance(idx):
            self.sent += 1
            lost = self.sent in self.drop
            if self.log is not None:
                # what the device sent, as a radio sniffer would see it: host time, number,
                # lost on the way or delivered, characteristic, bytes
                self.log.write(f"{now:.6f} {self.sent} {int(lost)} {cuuid} {payload.hex()}\n")
            if lost:
                self.dropped += 1
                continue
            self.chars[cuuid].notify(payload)
            junk = self.inject.get(self.sent)
            if junk is not None:  # a bad notification after this one (corrupt firmware)
                self.chars[cuuid].notify(junk)
        if self.log is not None:
            self.log.flush()


class FakeBlueZ:
    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.devices: list[SimDevice] = []
        self.adapter: Adapter | None = None

    def discovery_changed(self) -> None:
        pass

    async def run(self) -> None:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        if self.scenario.get("adapter", True):
            self.adapter = Adapter(self)
            bus.export(ADAPTER_PATH, self.adapter)
        for spec in self.scenario.get("devices", []):
            d = SimDevice(spec, self)
            d.export(bus)
            self.devices.append(d)
        await bus.request_name("org.bluez")
        print("READY", flush=True)
        last_adv = 0.0
        while True:
            now = time.monotonic()
            for d in self.devices:
                d.tick(now)
            if self.adapter is not None and self.adapter.discovering and now - last_adv > 0.2:
                last_adv = now
                for d in self.devices:
                    if not d.away() and not d.device.connected:
                        d.device.rssi = d.spec.get("rssi", -60) + (int(now * 10) % 3)
                        d.device.emit_properties_changed({"RSSI": d.device.rssi})
            await asyncio.sleep(0.005)


def main() -> None:
    scenario = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, str(ROOT))
    asyncio.run(FakeBlueZ(scenario).run())


# ----------------------------------------------------------------------------- test helpers

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""


def dbus_daemon_path() -> str | None:
    return shutil.which("dbus-daemon")


@contextmanager
def private_bus(tmp: Path):
    """Start a private ``dbus-daemon``; yield its address."""
    conf = tmp / "bus.conf"
    sock = tmp / "bus.sock"
    conf.write_text(BUS_CONFIG.format(socket=sock))
    proc = subprocess.Popen(
        [
            dbus_daemon_path() or "dbus-daemon",
            f"--config-file={conf}",
            "--nofork",
            "--print-address",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not start")
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)


@contextmanager
def fake_bluez(address: str, scenario: dict[str, Any], tmp: Path):
    """Run the fake BlueZ for ``scenario`` on the bus at ``address`` until the block ends."""
    path = tmp / f"scenario-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(scenario))
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), str(path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "READY":
            raise RuntimeError(f"fake BlueZ did not start (said {line!r})")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()


def running_recording(
    path: Path, duration_s: float = 30.0, seed: int = 3, sensors: tuple[str, ...] = ("foot",)
) -> Path:
    """A recording of a simulated foot sensor at 200 Hz, written to ``path``.

    The project's simulator when it is there, else the estimator tests' small
    synthetic stream (both give real strides for the estimator to find).
    """
    sys.path.insert(0, str(ROOT))
    from companion.source.recording import Recording, write_recording
    from companion.types import SensorInfo

    try:
        from companion.source.simulator import simulate
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests"))
        from _estimator_synth import make_stream

        batch, _ = make_stream(duration_s, 200.0, seed=seed, t0=0.0)
        rec = Recording({"foot": SensorInfo("foot", 200.0, model="synthetic")}, {}, {"foot": batch})
    else:
        rec = simulate(duration_s, 200.0, sensors=sensors, seed=seed).recording
    write_recording(path, rec)
    return path


@dataclass
class Sent:
    """What a fake device sent (its scenario's ``log``), sample by sample, decoded with the
    profile's own decoder: when, whether its notification was lost on the way, the device
    clock and the values as the host decodes them."""

    host_mono: Any
    lost: Any
    ticks: Any
    acc: Any
    gyr: Any


def sent_samples(log: Path, profile: str = "open_imu", rate_hz: float = 200.0) -> Sent:
    import numpy as np

    from companion.source.ble.profiles import get_profile

    decoder = get_profile(profile).decoder(rate_hz)
    host, lost, ticks, acc, gyr = [], [], [], [], []
    for line in Path(log).read_text().splitlines():
        mono, _, dropped, uuid, payload = line.split(" ")
        for frame in decoder.feed(uuid, bytes.fromhex(payload)):
            n = len(frame)
            host.append(np.full(n, float(mono)))
            lost.append(np.full(n, dropped == "1"))
            ticks.append(frame.ticks)
            acc.append(frame.acc_mps2)
            gyr.append(frame.gyr_dps)
    return Sent(*(np.concatenate(x) for x in (host, lost, ticks, acc, gyr)))


def compare_with_sent(
    rec: Any, sent: Sent, *, sent_before_mono: float | None = None, until_t_s: float | None = None
) -> dict[str, Any]:
    """A recorded sensor (a ``SampleBatch`` read back) against what its device delivered
    (sent and not lost; before ``sent_before_mono`` and, on the recording's clock, before
    ``until_t_s`` when given).

    ``mismatched``: recorded samples that are not delivered ones with the very same
    values; ``missing_inside``: delivered samples missing before the last recorded one;
    ``missing_tail``/``missing_tail_s``: delivered after it (a run stopped or killed);
    ``lost_on_the_way``: samples sent but lost by the link between the first and the last
    recorded one. Open IMU clock ticks (1 MHz) are assumed.
    """
    import numpy as np

    ok = ~sent.lost
    if sent_before_mono is not None:
        ok &= sent.host_mono < sent_before_mono
    ticks, acc, gyr = sent.ticks[ok], sent.acc[ok], sent.gyr[ok]
    # the recording starts with the first sample the host received: find it by its values
    first = np.flatnonzero((acc == rec.acc[0]).all(axis=1) & (gyr == rec.gyr[0]).all(axis=1))
    if not len(first):
        return {"recorded": len(rec), "delivered": len(ticks), "mismatched": len(rec),
                "missing_inside": 0, "missing_tail": 0, "missing_tail_s": 0.0,
                "lost_on_the_way": 0}  # fmt: skip
    k0 = int(first[0])
    rec_ticks = ticks[k0] + np.rint((rec.t_s - rec.t_s[0]) * 1e6).astype(np.int64)
    if until_t_s is not None:
        keep = ticks[k0:] - ticks[k0] < np.rint((until_t_s - rec.t_s[0]) * 1e6)
        ticks, acc, gyr = ticks[k0:][keep], acc[k0:][keep], gyr[k0:][keep]
    else:
        ticks, acc, gyr = ticks[k0:], acc[k0:], gyr[k0:]
    idx = np.searchsorted(ticks, rec_ticks).clip(0, len(ticks) - 1)
    same = (ticks[idx] == rec_ticks) & (acc[idx] == rec.acc).all(1) & (gyr[idx] == rec.gyr).all(1)
    last = int(idx[same][-1]) if same.any() else -1
    tail = len(ticks) - 1 - last
    return {
        "recorded": len(rec),
        "delivered": len(ticks),
        "mismatched": int((~same).sum()),
        "missing_inside": (last + 1) - int(same.sum()),
        "missing_tail": tail,
        "missing_tail_s": float(ticks[-1] - ticks[last]) / 1e6 if tail else 0.0,
        "lost_on_the_way": int(
            (sent.lost & (sent.ticks > rec_ticks[0]) & (sent.ticks < rec_ticks[-1])).sum()
        ),
    }
