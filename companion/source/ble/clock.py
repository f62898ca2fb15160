"""Sample times on the sensor's clock, and the sensor-to-host clock mapping.

:class:`SensorClock` puts every decoded frame on one continuous time line in
seconds: it unwraps the device clock, finds gaps (lost notifications) from the
device's own ticks, drops repeated samples, and keeps the line continuous across
reconnects (choosing the number of clock wraps from the host time that passed, and
re-anchoring if the device restarted its clock, or its clock jumped while connected).
Each sensor's time line strictly increases whatever the frames say. Arrival times are
never used to time samples, only to resolve what the device clock cannot (long outages,
resets, jumps).

:class:`ClockMap` estimates ``host_mono ≈ offset + (1 + drift) * t_sensor`` online
from (last sample time, arrival time) pairs: the lower envelope of the arrival
delays is the link's fixed latency, so the fit runs through per-window minima.
It aligns two sensors and measures latency.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from companion.source.ble.profiles.base import Frame


@dataclass(frozen=True, slots=True)
class Placed:
    """A frame placed on the time line."""

    t_s: np.ndarray
    keep: np.ndarray
    """Boolean mask of the frame's samples that are new (not repeats)."""
    lost_samples: int
    """Samples missing between the previous frame and this one."""
    lost_frames: int
    """Notifications missing before this one (from sequence numbers, else estimated)."""


class SensorClock:
    """Continuous seconds from a device clock with wraps, gaps and reconnects.

    Parameters
    ----------
    clock_hz
        Device ticks per second.
    clock_modulus
        The clock wraps modulo this (``None``: it does not).
    seq_modulus
        Notification sequence numbers wrap modulo this (``None``: no sequence).
    reset_tolerance_s
        After a reconnect, a device clock that disagrees with the host's elapsed
        time by more than this (plus 5 %) is taken as restarted and re-anchored.
    counted
        The device sends no time (WitMotion): ticks are consecutive sample numbers,
        and a gap is assumed only when a frame arrives more than ``late_gap_s`` later
        than the clock mapping predicts (or after a reconnect, from the host time).
    """

    def __init__(
        self,
        clock_hz: float,
        clock_modulus: int | None,
        seq_modulus: int | None = None,
        *,
        reset_tolerance_s: float = 2.0,
        counted: bool = False,
        late_gap_s: float = 0.25,
    ) -> None:
        self.counted = counted
        self.late_gap_s = late_gap_s
        self.clock_hz = clock_hz
        self.clock_modulus = clock_modulus
        self.seq_modulus = seq_modulus
        self.reset_tolerance_s = reset_tolerance_s
        self.start_t_s = 0.0
        """Time given to the very first sample (set before it arrives to align sensors)."""
        self._anchor_ticks: int | None = None  # unwrapped tick that maps to _anchor_t_s
        self._anchor_t_s = 0.0
        self._last_ticks: int | None = None  # unwrapped ticks of the last sample
        self._last_raw: int | None = None
        self._last_host: float | None = None
        self._last_seq: int | None = None
        self._period_ticks: float | None = None
        self._resumed = False
        self.clock_map = ClockMap()
        """Sensor-to-host mapping, fed by :meth:`place`; its drift converts host time
        passed during an outage into device ticks."""
        self.lost_samples = 0
        self.lost_frames = 0
        self.clock_jumps = 0
        """Times the device clock restarted or jumped while connected or across a reconnect."""
        self.frames = 0
        self.samples = 0

    @property
    def last_t_s(self) -> float | None:
        if self._last_ticks is None or self._anchor_ticks is None:
            return None
        return self._anchor_t_s + (self._last_ticks - self._anchor_ticks) / self.clock_hz

    def resume(self) -> None:
        """The link came back: the next frame may follow a long outage."""
        self._resumed = True
        self._last_seq = None

    def _host_gap_in_device_s(self, host_mono: float) -> float:
        """Host time since the last frame, converted to device seconds with the drift."""
        assert self._last_host is not None
        return (host_mono - self._last_host) / (1.0 + self.clock_map.drift)

    def _unwrap_first(self, raw0: int, host_mono: float) -> int:
        assert self._last_ticks is not None and self._last_raw is not None
        if self.clock_modulus is None:
            return self._last_ticks + (raw0 - self._last_raw)
        m = self.clock_modulus
        d = (raw0 - self._last_raw) % m
        if self._resumed and self._last_host is not None:
            # Choose how many whole wraps passed from the host's elapsed time.
            expected = self._host_gap_in_device_s(host_mono) * self.clock_hz
            k = round((expected - d) / m)
            d += max(k, 0) * m
        elif d > m // 2:  # a small step backwards (a repeat), not almost a whole wrap
            d -= m
        return self._last_ticks + d

    def _place_counted(self, n: int, host_mono: float) -> int:
        """First tick of a frame from a device without a clock (sample numbers)."""
        assert self._last_ticks is not None and self._anchor_ticks is not None
        if self._resumed and self._last_host is not None:
            gap = round(self._host_gap_in_device_s(host_mono) * self.clock_hz) - (n - 1)
            return self._last_ticks + max(gap, 1)
        first = self._last_ticks + 1
        if self.clock_map.offset_s is not None:
            t_last = self._anchor_t_s + (first + n - 1 - self._anchor_ticks) / self.clock_hz
            late_s = host_mono - self.clock_map.to_host(t_last)
            if late_s > self.late_gap_s:
                first += round(late_s / (1.0 + self.clock_map.drift) * self.clock_hz)
        return first

    def place(self, frame: Frame, host_mono: float) -> Placed:
        """Times for ``frame`` (arrived at ``host_mono``), gaps counted, repeats masked."""
        raw = frame.ticks.astype(np.int64)
        n = len(raw)
        rel = raw - raw[0]
        if self.clock_modulus is not None:
            rel %= self.clock_modulus
        period = frame.period_ticks
        lost = 0
        lost_frames = 0
        if self._last_ticks is None:
            first = int(raw[0])
            self._anchor_ticks = first
            self._anchor_t_s = self.start_t_s
        elif self.counted:
            first = self._place_counted(n, host_mono)
            step = first - self._last_ticks
            lost = max(step - 1, 0)
        else:
            first = self._unwrap_first(int(raw[0]), host_mono)
            if self._last_host is not None:
                host_gap_s = self._host_gap_in_device_s(host_mono)
                dev_gap_s = (first - self._last_ticks) / self.clock_hz
                if self._clock_jumped(dev_gap_s, host_gap_s, first + int(rel[-1]), host_mono):
                    # The device restarted (or set) its clock: keep the line continuous,
                    # the host's elapsed time (at least a sample period) after the last
                    gap_ticks = max(round(host_gap_s * self.clock_hz), math.ceil(period))
                    self._anchor_t_s = (self.last_t_s or 0.0) + gap_ticks / self.clock_hz
                    self._anchor_ticks = first
                    self._last_ticks = first - gap_ticks
                    self.clock_jumps += 1
            step = first - self._last_ticks
            if step > 1.5 * period:
                lost = round(step / period) - 1
        ticks = first + rel
        # keep only samples later than every one before (repeats, and any sample a
        # malformed frame puts back in time): each sensor's time line strictly increases
        floor = self._last_ticks if self._last_ticks is not None else np.iinfo(np.int64).min
        keep = ticks > np.maximum.accumulate(np.concatenate(([floor], ticks[:-1])))
        if self.seq_modulus is not None and frame.seq is not None:
            if self._last_seq is not None:
                lost_frames = (frame.seq - self._last_seq - 1) % self.seq_modulus
                if lost_frames > self.seq_modulus // 2:  # a repeated notification
                    lost_frames = 0
            self._last_seq = frame.seq
        elif lost:
            lost_frames = max(1, round(lost / max(n, 1)))
        assert self._anchor_ticks is not None
        t_s = self._anchor_t_s + (ticks - self._anchor_ticks) / self.clock_hz
        if keep.any():
            self._last_ticks = int(ticks[keep][-1])
            self._last_raw = int(raw[keep][-1])
        if keep.any():
            self.clock_map.add(float(t_s[keep][-1]), host_mono)
        self._last_host = host_mono
        self._period_ticks = period
        self._resumed = False
        self.lost_samples += lost
        self.lost_frames += lost_frames
        self.frames += 1
        self.samples += int(keep.sum())
        return Placed(t_s, keep, lost, lost_frames)

    def _clock_jumped(
        self, dev_gap_s: float, host_gap_s: float, last_tick: int, host_mono: float
    ) -> bool:
        """Did the device clock restart or jump, rather than run on? After a reconnect,
        when it disagrees with the host's elapsed time either way. While connected, when
        it went back (more than a repeated frame does), or ahead so far that the frame's
        last sample would have been taken after it arrived (notifications can arrive late,
        in a burst, but never before their samples are taken)."""
        tol = self.reset_tolerance_s
        if self._resumed:
            return abs(dev_gap_s - host_gap_s) > tol + 0.05 * host_gap_s
        if dev_gap_s < -tol:
            return True
        if self.clock_map.offset_s is None:
            return dev_gap_s - host_gap_s > tol + 0.05 * host_gap_s
        assert self._anchor_ticks is not None
        t_last = self._anchor_t_s + (last_tick - self._anchor_ticks) / self.clock_hz
        return self.clock_map.to_host(t_last) - host_mono > tol

    @property
    def loss_fraction(self) -> float:
        total = self.samples + self.lost_samples
        return self.lost_samples / total if total else 0.0


class ClockMap:
    """Online estimate of ``host_mono = offset_s + (1 + drift) * t_sensor_s``.

    Parameters
    ----------
    window_s
        Sensor-time length of the windows whose minimum delay is kept.
    windows
        How many recent windows the drift fit uses (``window_s * windows`` of history).
    """

    def __init__(self, window_s: float = 1.0, windows: int = 120) -> None:
        self.window_s = window_s
        self._minima: deque[tuple[float, float]] = deque(maxlen=windows)
        self._cur: tuple[float, float] | None = None  # (t_sensor, delay) of the window min
        self._cur_start: float | None = None
        self.offset_s: float | None = None
        self.drift: float = 0.0

    def add(self, t_sensor_s: float, host_mono: float) -> None:
        delay = host_mono - t_sensor_s
        if self._cur_start is None or t_sensor_s - self._cur_start >= self.window_s:
            if self._cur is not None:
                self._minima.append(self._cur)
            self._cur = (t_sensor_s, delay)
            self._cur_start = t_sensor_s
        elif self._cur is not None and delay < self._cur[1]:
            self._cur = (t_sensor_s, delay)
        self._fit()

    def _fit(self) -> None:
        if self._cur is None:
            return
        pts = [*self._minima, *([self._cur] if self._cur else [])]
        if len(pts) >= 3:
            t = np.array([p[0] for p in pts])
            d = np.array([p[1] for p in pts])
            slope, icpt = np.polyfit(t - t[0], d, 1)
            # the envelope sits under every point: shift the line to the lowest one
            icpt += float(np.min(d - (icpt + slope * (t - t[0]))))
            self.drift = float(np.clip(slope, -0.95, 10.0))
            self.offset_s = float(icpt - slope * t[0])
        else:
            self.drift = 0.0
            self.offset_s = min(p[1] for p in pts)

    def to_host(self, t_sensor_s: float) -> float:
        """Host monotonic time at which the sensor took a sample at ``t_sensor_s``
        (plus the link's minimum latency, which cannot be told apart from offset)."""
        if self.offset_s is None:
            raise ValueError("no observations yet")
        return self.offset_s + (1.0 + self.drift) * t_sensor_s
