"""The live source: pinned BLE sensors, kept connected, as one stream of batches.

Each pinned sensor gets a :class:`SensorLink` that finds the device, connects,
checks it is the right family, starts its stream and turns notifications into
:class:`~companion.types.SampleBatch` objects on the sensor's clock. A link that
drops yields a ``LinkEvent(up=False)`` and reconnects by itself with exponential
backoff; the first connection failing is a clear :class:`SensorError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from companion.errors import ConfigError, SensorError
from companion.source.base import merge_queued
from companion.source.ble.clock import SensorClock
from companion.source.ble.profiles import get_profile
from companion.source.ble.profiles.base import Frame, Profile, read_battery
from companion.source.recording import sensor_label_problem
from companion.source.settings import SensorSettings
from companion.types import LinkEvent, SampleBatch, SensorInfo

log = logging.getLogger("companion.ble")

Item = SampleBatch | LinkEvent
MAX_MERGED = 256
"""Most queued items taken at once (a few seconds of one-sample notifications)."""
_NO_BLUEZ_ERRORS = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)


def no_adapter_message(detail: str) -> str:
    return (
        f"no usable Bluetooth adapter ({detail}). Check that the machine has one, that "
        "BlueZ runs (`systemctl status bluetooth`), that it is powered (`bluetoothctl power "
        "on`) and that this user may use it (see docs/ble.md)."
    )


@dataclass
class LinkStats:
    """What the status line shows for one sensor."""

    state: str = "connecting"
    battery_pct: int | None = None
    address: str = ""
    reconnects: int = 0
    _recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=400), repr=False)

    def received(self, host_mono: float, n: int) -> None:
        self._recent.append((host_mono, n))

    def rate_hz(self, now_mono: float, window_s: float = 3.0) -> float:
        pts = [(t, n) for t, n in self._recent if t >= now_mono - window_s]
        if len(pts) < 2:
            return 0.0
        span = pts[-1][0] - pts[0][0]
        return sum(n for _, n in pts[1:]) / span if span > 0 else 0.0


class SensorLink:
    """One pinned sensor: find, connect, stream, and reconnect with backoff.

    Parameters
    ----------
    settings
        The sensor's config.
    profile
        Its device family.
    emit
        Called with every batch or link event, on the event loop.
    connect_timeout_s
        How long the first connection may take (scan + connect) before giving up.
    backoff_s
        First reconnect delay; doubles after every failed attempt up to ``max_backoff_s``.
    stall_timeout_s
        A connected sensor that sends nothing for this long is disconnected and
        reconnected (a stream that stopped without the link dropping).
    """

    def __init__(
        self,
        settings: SensorSettings,
        profile: Profile,
        emit: Callable[[Item], None],
        *,
        align: Callable[[float], float] | None = None,
        scan_lock: asyncio.Lock | None = None,
        connect_timeout_s: float = 20.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        stall_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.stall_timeout_s = stall_timeout_s
        self.profile = profile
        self.emit = emit
        self.align = align
        self.scan_lock = scan_lock
        self.connect_timeout_s = connect_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.rate_hz = profile.actual_rate_hz(settings.rate_hz)
        self.clock = SensorClock(
            profile.clock_hz,
            profile.clock_modulus,
            profile.seq_modulus,
            counted=not profile.has_sample_clock,
        )
        self.stats = LinkStats(address=settings.address)
        self.bad_notifications = 0
        """Notifications that could not be decoded, skipped (the run's summary shows them)."""
        self.decoder_faults = 0
        """Of those, the ones a decoder failed on with anything but a SensorError (a bug)."""
        self.last_arrival_mono = 0.0
        self._closing = False
        self._announce_up = False
        self._lost = asyncio.Event()
        self._client: object | None = None
        self._decoder = profile.decoder(self.rate_hz)

    @property
    def name(self) -> str:
        return self.settings.name

    # ------------------------------------------------------------ notifications
    def on_notify(self, char_uuid: str, data: bytes) -> None:
        """Decode, time and emit one notification (runs on the event loop).

        A notification that cannot be decoded is counted in :attr:`bad_notifications`
        and skipped; the stream goes on with the next one.
        """
        self.receive(char_uuid, data, time.monotonic())

    def receive(self, char_uuid: str, data: bytes, host_mono: float) -> None:
        """:meth:`on_notify` for a notification that arrived at ``host_mono``."""
        self.last_arrival_mono = host_mono
        try:
            for frame in self._decoder.feed(char_uuid, data):
                self._emit_frame(frame, host_mono)
        except SensorError as exc:
            self._skipped(exc)
        except Exception as exc:  # a decoder bug must not end the run: skip, and say so
            self._skipped(exc, bug=True)

    def _skipped(self, exc: Exception, *, bug: bool = False) -> None:
        self.bad_notifications += 1
        n = self.bad_notifications
        if bug:
            self.decoder_faults += 1
            log.error(
                "%s: skipped a notification the decoder failed on (a bug; please report it "
                "with this log): %r",
                self.name,
                exc,
                exc_info=n <= 3,
            )
        elif n <= 3 or n % 100 == 0:
            log.warning("%s: skipped a bad notification (%d so far): %s", self.name, n, exc)

    def _emit_frame(self, frame: Frame, host: float) -> None:
        if len(frame) == 0:
            return
        if self.clock.samples == 0 and self.clock.last_t_s is None and self.align is not None:
            span = int(frame.ticks[-1]) - int(frame.ticks[0])
            if self.profile.clock_modulus is not None:
                span %= self.profile.clock_modulus
            self.clock.start_t_s = self.align(host - span / self.profile.clock_hz)
        placed = self.clock.place(frame, host)
        if placed.lost_samples:
            log.info(
                "%s: %d samples lost before t=%.3f s", self.name, placed.lost_samples, placed.t_s[0]
            )
        keep = placed.keep
        if not keep.any():
            return
        t = placed.t_s[keep]
        if self._announce_up:
            self._announce_up = False
            self.emit(LinkEvent(self.name, True, float(t[0]), "reconnected"))
        self.stats.received(host, int(keep.sum()))
        self.emit(SampleBatch(self.name, t, frame.acc_mps2[keep], frame.gyr_dps[keep]))

    # ------------------------------------------------------------ connection
    async def _find(self, timeout_s: float) -> object:
        # One scan at a time on the adapter: a second scanner stopping discovery would
        # blind the first (BlueZ counts discovery per D-Bus client, bleak shares one).
        if self.scan_lock is None:
            return await self._find_unlocked(timeout_s)
        async with self.scan_lock:
            return await self._find_unlocked(timeout_s)

    async def _find_unlocked(self, timeout_s: float) -> object:
        from bleak import BleakScanner

        s = self.settings
        if s.address:
            dev = await BleakScanner.find_device_by_address(s.address, timeout=timeout_s)
            what = f"address {s.address}"
        elif s.device_name:  # pinned by its advertised name alone: that name, exactly

            def match(d: object, adv: object) -> bool:
                name = getattr(adv, "local_name", None) or getattr(d, "name", None)
                return name == s.device_name

            dev = await BleakScanner.find_device_by_filter(match, timeout=timeout_s)
            what = f"name {s.device_name!r}"
        else:  # never any device that merely advertises the profile's service
            raise SensorError(pinning_problems([s])[0])
        if dev is None:
            raise SensorError(
                f"sensor {s.name!r}: no device with {what} found within {timeout_s:.0f} s. Is it "
                "switched on, charged, in range and not connected to a phone? Run `companion "
                "scan` to list nearby sensors and the config lines that pin one."
            )
        return dev

    async def _session(self, timeout_s: float) -> None:
        """One connection: connect, check, start, and wait until it drops or we close."""
        from bleak import BleakClient

        device = await self._find(timeout_s)
        self._lost.clear()
        client = BleakClient(device, disconnected_callback=lambda _c: self._lost.set())
        self._client = client
        try:
            await client.connect(timeout=timeout_s)
            address = getattr(device, "address", self.settings.address)
            self.stats.address = address
            self.profile.check_services(client, address)
            self.stats.battery_pct = await read_battery(client)
            self._decoder = self.profile.decoder(self.rate_hz)
            await self.profile.start(client, self.rate_hz, self.on_notify)
            self.stats.state = "up"
            log.info("%s: streaming from %s", self.name, address)
            self._announce_up = self.stats.reconnects > 0
            await self._watch()
        finally:
            self._client = None
            if client.is_connected:
                with contextlib.suppress(Exception):
                    if self._closing:
                        await asyncio.wait_for(self.profile.stop(client), 2.0)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5.0)

    async def _watch(self) -> None:
        """Return when the link drops, the source closes, or the stream stalls."""
        started = time.monotonic()
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=min(1.0, self.stall_timeout_s))
            last = max(self.last_arrival_mono, started)
            if not self._lost.is_set() and time.monotonic() - last > self.stall_timeout_s:
                log.warning(
                    "%s: no data for %.0f s although connected; reconnecting",
                    self.name,
                    self.stall_timeout_s,
                )
                return

    def _connect_failed(self, exc: BaseException) -> str:
        return (
            f"sensor {self.name!r}: could not connect to "
            f"{self.settings.address or self.settings.device_name or 'the device'}"
            f": {exc or type(exc).__name__}. Check it is on and in range; "
            "run `companion scan` to see it."
        )

    async def run(self) -> None:
        """Keep the sensor streaming until :meth:`close`; raise only for the first connection."""
        from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError

        delay = self.backoff_s
        ever_up = False
        while not self._closing:
            try:
                timeout = self.connect_timeout_s if not ever_up else max(delay, 5.0)
                await self._session(timeout)
            except BleakBluetoothNotAvailableError as exc:
                raise SensorError(no_adapter_message(str(exc))) from None
            except BleakDBusError as exc:
                if exc.dbus_error in _NO_BLUEZ_ERRORS:
                    raise SensorError(
                        no_adapter_message(f"BlueZ answered {exc.dbus_error}")
                    ) from None
                if not ever_up:
                    raise SensorError(self._connect_failed(exc)) from None
                log.info("%s: reconnect failed: %s", self.name, exc)
            except OSError as exc:
                if not ever_up:  # the D-Bus system bus itself is not there
                    raise SensorError(no_adapter_message(f"no D-Bus system bus: {exc}")) from None
                log.info("%s: reconnect failed: %s", self.name, exc)
            except SensorError:
                if not ever_up or self.stats.state == "up":
                    raise  # the first connection, or the device turned out wrong
            except (BleakError, TimeoutError, EOFError) as exc:
                if not ever_up:
                    raise SensorError(self._connect_failed(exc)) from None
                log.info("%s: reconnect failed: %s", self.name, exc)
            if self.stats.state == "up":
                ever_up = True
                delay = self.backoff_s
                self.stats.state = "down"
                if not self._closing:
                    last = self.clock.last_t_s or 0.0
                    log.warning("%s: link lost at t=%.2f s; reconnecting", self.name, last)
                    self.emit(LinkEvent(self.name, False, last, "link lost"))
            if self._closing:
                break
            self.stats.state = "reconnecting"
            self.stats.reconnects += 1
            self.clock.resume()
            await asyncio.sleep(delay)
            delay = min(delay * 2.0, self.max_backoff_s)

    def close(self) -> None:
        self._closing = True
        self._lost.set()


def pinning_problems(sensors: list[SensorSettings]) -> list[str]:
    """What keeps the pinned sensors from a live run: a sensor pinned by neither address nor
    advertised name (a run connects only to the devices the config names, never to whatever
    nearby device advertises a known service), or a name a recording cannot label rows with."""
    out = []
    for i, s in enumerate(sensors):
        if not (s.address or s.device_name):
            out.append(
                f"sensors[{i}] ({s.name}): pinned by neither address nor device_name, and a "
                "run connects only to a sensor the config names; run `companion scan` and "
                "copy its address line"
            )
        problem = sensor_label_problem(s.name)
        if problem:
            out.append(f"sensors[{i}].name: {problem}")
    return out


class BleSource:
    """Live samples from the pinned sensors (one, or two), as a :class:`Source`.

    ``stop_after_s`` ends the stream once every sensor's clock has passed it.
    """

    def __init__(
        self,
        sensors: list[SensorSettings],
        *,
        connect_timeout_s: float = 20.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        stop_after_s: float | None = None,
    ) -> None:
        if not sensors:
            raise SensorError(
                "no sensor is pinned: add a [[sensors]] table to the config (run `companion "
                "scan` to get the lines for a nearby sensor)"
            )
        names = [s.name for s in sensors]
        if len(set(names)) != len(names):
            raise SensorError(f"two pinned sensors share a name ({names}); give each its own")
        problems = pinning_problems(sensors)
        if problems:
            raise ConfigError(problems)
        self._queue: asyncio.Queue[Item | BaseException | None] = asyncio.Queue()
        self._t0_mono: float | None = None
        self._scan_lock = asyncio.Lock()
        self.links: dict[str, SensorLink] = {}
        for s in sensors:
            self.links[s.name] = SensorLink(
                s,
                get_profile(s.profile),
                self._emit,
                align=self._align,
                scan_lock=self._scan_lock,
                connect_timeout_s=connect_timeout_s,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
            )
        self.stop_after_s = stop_after_s
        self._tasks: list[asyncio.Task[None]] = []
        self._done: set[str] = set()
        self._closed = False

    @property
    def sensors(self) -> dict[str, SensorInfo]:
        return {
            name: SensorInfo(
                name=name,
                rate_hz=link.rate_hz,
                segment=link.settings.segment,
                side=link.settings.side,
                mount=link.settings.mount,
                model=link.profile.model,
            )
            for name, link in self.links.items()
        }

    @property
    def metadata(self) -> dict[str, str]:
        meta = {"source": "ble"}
        for name, link in self.links.items():
            meta[f"ble.{name}.profile"] = link.profile.key
            meta[f"ble.{name}.address"] = link.stats.address or link.settings.address
        return meta

    def _align(self, first_sample_host_mono: float) -> float:
        """Stream time for a sensor's first sample: 0 for the first sensor, the host
        time since then for a later one (so two sensors share one time line)."""
        if self._t0_mono is None:
            self._t0_mono = first_sample_host_mono
        return max(first_sample_host_mono - self._t0_mono, 0.0)

    def _emit(self, item: Item) -> None:
        self._queue.put_nowait(item)

    async def _run_link(self, link: SensorLink) -> None:
        try:
            await link.run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._queue.put_nowait(exc)

    async def batches(self) -> AsyncIterator[Item]:
        self._tasks = [asyncio.create_task(self._run_link(lk)) for lk in self.links.values()]
        while True:
            waiting = [await self._queue.get()]
            # what else is already queued (the pipeline fell behind): fewer, larger batches
            while len(waiting) < MAX_MERGED and not self._queue.empty():
                waiting.append(self._queue.get_nowait())
            for item in merge_queued(waiting):
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, SampleBatch):
                    if self.stop_after_s is not None and item.sensor not in self._done:
                        over = item.t_s >= self.stop_after_s
                        if over.any():
                            self._done.add(item.sensor)
                            cut = int(np.argmax(over))
                            item = item.slice(0, cut)
                    elif item.sensor in self._done:
                        continue
                    if len(item):
                        yield item
                    if self.stop_after_s is not None and len(self._done) == len(self.links):
                        return
                else:
                    yield item

    def stop(self) -> None:
        """Ask the stream to end (Ctrl-C); :meth:`batches` returns soon after."""
        self._queue.put_nowait(None)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for link in self.links.values():
            link.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=8.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
