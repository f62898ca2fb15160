"""The ``Source`` seam: anything that yields timestamped sample batches.

A source knows its sensors up front (:class:`~companion.types.SensorInfo`) and
then yields :class:`~companion.types.SampleBatch` objects in stream order.
Simulator, recording and BLE device all sit behind it, so the pipeline after it
never knows where samples come from.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from companion.types import LinkEvent, SampleBatch, SensorInfo

T = TypeVar("T")


@runtime_checkable
class Source(Protocol):
    """Yields sample batches; ``sensors`` is known before the first batch."""

    @property
    def sensors(self) -> dict[str, SensorInfo]: ...

    @property
    def metadata(self) -> dict[str, str]:
        """Free-form ``key: value`` metadata (device model, start time ...)."""
        ...

    def batches(self) -> AsyncIterator[SampleBatch | LinkEvent]:
        """Batches in stream order (live sources also yield :class:`LinkEvent`);
        ends when the source is exhausted or closed."""
        ...

    async def aclose(self) -> None:
        """Stop producing and release the device or file."""
        ...


class Pacer:
    """Sleeps so that stream time advances no faster than wall time (replays, demo).

    ``realtime=False`` never sleeps. The first sample's time is anchored to the
    wall clock at the first call.
    """

    def __init__(self, realtime: bool, speed: float = 1.0) -> None:
        self.realtime = realtime
        self.speed = speed
        self._t0_stream: float | None = None
        self._t0_mono = 0.0

    async def wait_until(self, t_stream_s: float) -> None:
        if not self.realtime:
            await asyncio.sleep(0)  # let other tasks run even when going fast
            return
        if self._t0_stream is None:
            self._t0_stream = t_stream_s
            self._t0_mono = time.monotonic()
        due = self._t0_mono + (t_stream_s - self._t0_stream) / self.speed
        delay = due - time.monotonic()
        await asyncio.sleep(max(delay, 0.0))


def merge_queued(items: Sequence[T]) -> list[SampleBatch | T]:
    """The items waiting in a live source's queue, with the sample batches of each sensor
    that wait together (no other kind of item between them) joined into one batch.

    Each sensor's samples keep their order, and any other item (a link event, the end of
    the stream) keeps its place after the samples queued before it. A consumer that fell
    behind so catches up in a few large batches instead of many small ones (the
    estimator's results do not depend on the batch sizes); one that keeps up sees the
    batches as they came.
    """
    import numpy as np

    out: list[SampleBatch | T] = []
    run: dict[str, list[SampleBatch]] = {}

    def flush() -> None:
        for sensor, parts in run.items():
            if len(parts) == 1:
                out.append(parts[0])
            else:
                out.append(
                    SampleBatch(
                        sensor,
                        np.concatenate([p.t_s for p in parts]),
                        np.concatenate([p.acc for p in parts]),
                        np.concatenate([p.gyr for p in parts]),
                    )
                )
        run.clear()

    for item in items:
        if isinstance(item, SampleBatch):
            run.setdefault(item.sensor, []).append(item)
        else:
            flush()
            out.append(item)
    flush()
    return out


def interleave(data: dict[str, SampleBatch], packet_s: float) -> Iterable[SampleBatch]:
    """Split each sensor's samples into packets of ``packet_s`` and merge them by time.

    Deterministic: the same data always gives the same sequence of batches.
    """
    import numpy as np

    pieces: list[tuple[float, int, SampleBatch]] = []
    for order, (_, batch) in enumerate(sorted(data.items())):
        if len(batch) == 0:
            continue
        t = batch.t_s
        edges = np.floor((t - t[0]) / packet_s).astype(np.int64)
        cuts = np.flatnonzero(np.diff(edges)) + 1
        bounds = [0, *cuts.tolist(), len(t)]
        for a, b in itertools.pairwise(bounds):
            pieces.append((float(t[b - 1]), order, batch.slice(a, b)))
    pieces.sort(key=lambda p: (p[0], p[1]))
    return [p[2] for p in pieces]


class MemorySource:
    """Replays in-memory per-sensor arrays as packets (simulator output, recordings)."""

    def __init__(
        self,
        sensors: dict[str, SensorInfo],
        data: dict[str, SampleBatch],
        metadata: dict[str, str] | None = None,
        *,
        realtime: bool = False,
        packet_s: float = 0.05,
        speed: float = 1.0,
    ) -> None:
        self._sensors = sensors
        self._data = data
        self._metadata = dict(metadata or {})
        self._pacer = Pacer(realtime, speed)
        self._packet_s = packet_s
        self._closed = False

    @property
    def sensors(self) -> dict[str, SensorInfo]:
        return self._sensors

    @property
    def metadata(self) -> dict[str, str]:
        return self._metadata

    async def batches(self) -> AsyncIterator[SampleBatch]:
        for batch in interleave(self._data, self._packet_s):
            if self._closed:
                return
            await self._pacer.wait_until(float(batch.t_s[-1]))
            yield batch

    async def aclose(self) -> None:
        self._closed = True
