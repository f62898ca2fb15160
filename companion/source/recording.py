"""The recording format: a CSV any tool can read, with ``# key: value`` metadata.

::

    # format: companion-recording/1
    # start_wall: 2026-11-25T08:00:00+00:00
    # sensor.foot.rate_hz: 200
    # sensor.foot.segment: foot
    # sensor.foot.side: right
    # sensor.foot.mount: auto
    # sensor.foot.model: simulator
    t_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z
    0.0,foot,0.12,-0.3,9.79,0.5,-1.2,0.1

``t_s`` is seconds on the sensor's clock; accelerometer in m/s² including
gravity, gyroscope in deg/s, in the sensor's own axes (see :mod:`companion.types`).
Rows of different sensors may interleave; each sensor's ``t_s`` strictly
increases. Values are written with Python's shortest round-trip repr, so a
recording read back is bit-identical to what was written.

Ground truth (simulator only) sits beside it as ``<stem>.labels.csv`` with
columns ``sensor,stride,t_ic_s,label``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import re
import stat
import threading
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.errors import RecordingError
from companion.files import open_private, write_all
from companion.source.settings import SEGMENTS, SIDES
from companion.types import RATE_RANGE_HZ, Label, SampleBatch, SensorInfo, mount_problem

if TYPE_CHECKING:
    from companion.source.base import MemorySource

log = logging.getLogger(__name__)

FORMAT = "companion-recording/1"
COLUMNS = ("t_s", "sensor", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
LABEL_COLUMNS = ("sensor", "stride", "t_ic_s", "label")
_SENSOR_KEYS = ("rate_hz", "segment", "side", "mount", "model")


RATE_MISMATCH = 0.25
"""Relative difference between a sensor's metadata rate and its sample spacing that is
taken as wrong metadata (a :class:`RecordingWarning`; the data are left as they are)."""


class RecordingWarning(UserWarning):
    """Something in a recording was off but the data could still be used."""


class TruncatedRecordingWarning(RecordingWarning):
    """The last line of a recording was cut short (a run that ended abruptly)."""


@dataclass
class Recording:
    """A whole recording in memory: sensors, metadata and each sensor's samples."""

    sensors: dict[str, SensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    data: dict[str, SampleBatch] = field(default_factory=dict)

    def source(self, *, realtime: bool = False, packet_s: float = 0.05) -> MemorySource:
        from companion.source.base import MemorySource

        return MemorySource(
            self.sensors, self.data, self.metadata, realtime=realtime, packet_s=packet_s
        )


@dataclass(frozen=True)
class GroundTruthStride:
    sensor: str
    stride: int
    t_ic_s: float
    label: Label


def recording_stem(recording_path: str | Path) -> Path:
    """The recording's path without ``.csv`` / ``.csv.gz``: where the files beside it
    (``.labels.csv``, ``.truth.json``) take their names from."""
    p = Path(recording_path)
    name = p.name
    for ext in (".csv.gz", ".gz", ".csv"):
        if name.lower().endswith(ext):
            return p.with_name(name[: -len(ext)])
    return p


def labels_path(recording_path: str | Path) -> Path:
    s = recording_stem(recording_path)
    return s.with_name(s.name + ".labels.csv")


def truth_path(recording_path: str | Path) -> Path:
    """``NAME.truth.json`` beside a recording (strike angles, toe-offs; optional)."""
    s = recording_stem(recording_path)
    return s.with_name(s.name + ".truth.json")


# ----------------------------------------------------------------------------- writing


SENSOR_LABEL = re.compile(r"[\w-]+")
"""What a sensor label may be: letters, digits, ``_`` and ``-`` (it is a CSV column value and
part of the metadata keys, so no comma, colon, space, dot or slash)."""


def sensor_label_problem(name: str) -> str | None:
    """Why ``name`` cannot label a sensor's rows, or ``None`` when it can."""
    if SENSOR_LABEL.fullmatch(name):
        return None
    return (
        f"sensor name {name!r} cannot label a recording's rows: use letters, digits, _ and - "
        "(foot, shank, left_foot ...)"
    )


def _one_line(text: object) -> str:
    """A metadata key or value on one line: control characters (a newline that would start a
    line of its own) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(text))


def _header_lines(sensors: dict[str, SensorInfo], metadata: dict[str, str]) -> list[str]:
    meta = {"format": FORMAT}
    meta.setdefault("start_wall", datetime.now(UTC).isoformat(timespec="seconds"))
    meta.update({k: v for k, v in metadata.items() if k != "format"})
    lines = [f"# {_one_line(k).replace(':', '_')}: {_one_line(v)}" for k, v in meta.items()]
    for name, info in sensors.items():
        for key in _SENSOR_KEYS:
            lines.append(f"# sensor.{name}.{key}: {_one_line(getattr(info, key))}")
    lines.append(",".join(COLUMNS))
    return lines


def _rows(batch: SampleBatch) -> str:
    out = io.StringIO()
    name = batch.sensor
    t, a, g = batch.t_s.tolist(), batch.acc.tolist(), batch.gyr.tolist()
    for i in range(len(t)):
        ai, gi = a[i], g[i]
        out.write(f"{t[i]!r},{name},{ai[0]!r},{ai[1]!r},{ai[2]!r},{gi[0]!r},{gi[1]!r},{gi[2]!r}\n")
    return out.getvalue()


def _cannot_write(path: Path, exc: OSError, what: str) -> RecordingError:
    why = exc.strerror or str(exc) or type(exc).__name__
    return RecordingError(str(path), None, f"cannot write: {why}; {what}")


def _open_for_writing(path: Path) -> int:
    """``open_private``; a path a user got wrong is a :class:`RecordingError`."""
    try:
        return open_private(path)
    except OSError as exc:
        raise _cannot_write(path, exc, "give a file path in a folder you can write to") from None


_SYNC = "sync"
_STOP = "stop"


class RecordingWriter:
    """Appends batches to a recording file, synced to disk at least every ``flush_interval_s``.

    The run's loop only turns a batch into rows (:meth:`write` returns at once); a thread of
    the writer's own hands them to the operating system as they come and syncs them
    (``fsync``), so a disk that stalls (an SD card, other programs writing) never holds up
    the loop, a process that is killed loses only the rows of the last moment (those not yet
    taken by the thread, normally none), and a power cut at most ``flush_interval_s``. The
    file is user-only (see :mod:`companion.files`).

    Output that cannot be written (a full disk, a file size limit, an I/O error) does not
    raise: the writer cuts the file back to its last whole row, so it reads back cleanly,
    stops writing, and counts every sample it could not keep (``not_recorded``, per sensor,
    from the failed batch on); ``error`` says what happened, with the path, and ``on_error``
    is called once with it (from the writer's thread). The run that feeds it goes on. Only
    opening the file and writing its header raise (:class:`RecordingError`), before there is
    anything to lose. The counts are final once :meth:`close` returns.
    """

    def __init__(
        self,
        path: str | Path,
        sensors: dict[str, SensorInfo],
        metadata: dict[str, str] | None = None,
        *,
        flush_interval_s: float = 1.0,
        on_error: Callable[[RecordingError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        for name in sensors:
            problem = sensor_label_problem(name)
            if problem:
                raise RecordingError(str(self.path), None, problem)
        self._flush_interval_s = flush_interval_s
        self.on_error = on_error
        self.samples_written = 0
        self.written: Counter[str] = Counter()
        """Samples in the file, per sensor."""
        self.not_recorded: Counter[str] = Counter()
        """Samples that could not be written, per sensor (all of them after a failure)."""
        self.t_written_s: float | None = None
        """Stream time of the last sample in the file."""
        self.error: RecordingError | None = None
        self._fd: int | None = _open_for_writing(self.path)
        self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        header = ("\n".join(_header_lines(sensors, metadata or {})) + "\n").encode("utf-8")
        try:
            write_all(self._fd, header)
            if self._regular:
                os.fsync(self._fd)
        except OSError as exc:
            os.close(self._fd)
            self._fd = None
            if self._regular:  # an empty file left behind would pass for a recording
                with contextlib.suppress(OSError):
                    self.path.unlink()
            raise _cannot_write(self.path, exc, "free some space, or write elsewhere") from None
        self._good_bytes = len(header)
        self._dirty = False
        self._last_sync = time.monotonic()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="recording", daemon=True)
        self._thread.start()

    @property
    def samples_not_recorded(self) -> int:
        return sum(self.not_recorded.values())

    def write(self, batch: SampleBatch) -> None:
        """Queue a batch's rows for the file; returns at once."""
        if self._closed:
            raise ValueError(f"recording {self.path} is closed")
        n = len(batch)
        if not n:
            return
        # once writing failed, rows are no longer made: the thread only counts them
        data = _rows(batch).encode("utf-8") if self.error is None else None
        self._queue.put((data, batch.sensor, n, float(batch.t_s[-1])))

    def flush(self, *, wait: bool = False) -> None:
        """Have what was written synced to the disk; ``wait`` for it (tests, shutdown)."""
        if self._closed:
            return
        done = threading.Event() if wait else None
        self._queue.put((_SYNC, done))
        if done is not None:
            done.wait()

    def close(self) -> None:
        """Write and sync what is queued, close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((_STOP, None))
        self._thread.join()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the writer's thread
    def _drain(self) -> None:
        assert self._fd is not None
        while True:
            item = self._queue.get()
            if item[0] == _SYNC or item[0] == _STOP:
                self._sync()
                if item[1] is not None:
                    item[1].set()
                if item[0] == _STOP:
                    with contextlib.suppress(OSError):
                        os.close(self._fd)
                    self._fd = None
                    return
                continue
            data, sensor, n, t_last = item
            if self.error is not None or data is None:
                self.not_recorded[sensor] += n
                continue
            try:
                write_all(self._fd, data)
            except OSError as exc:
                self.not_recorded[sensor] += n
                self._fail(exc)
                continue
            self._good_bytes += len(data)
            self._dirty = True
            self.samples_written += n
            self.written[sensor] += n
            self.t_written_s = max(self.t_written_s or -np.inf, t_last)
            if time.monotonic() - self._last_sync >= self._flush_interval_s:
                self._sync()

    def _sync(self) -> None:
        if self.error is not None or not self._dirty:
            return
        try:
            if self._regular and self._fd is not None:
                os.fsync(self._fd)
        except OSError as exc:
            # the disk refused rows it had taken (an I/O error, a full network disk seen
            # only now): stop here, keep what was written
            self._fail(exc)
            return
        self._dirty = False
        self._last_sync = time.monotonic()

    def _fail(self, exc: OSError) -> None:
        self.error = _cannot_write(self.path, exc, "free some space, or write elsewhere")
        if self._regular and self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._good_bytes)  # no half row at the end
        if self.on_error is not None:
            self.on_error(self.error)
        else:
            log.warning("%s", self.error)


def write_recording(path: str | Path, recording: Recording) -> None:
    """Write a whole recording (sensor by sensor, then sorted by time within the file).

    Output that cannot be written is a :class:`RecordingError` naming the path, and the
    file, incomplete, is removed.
    """
    with RecordingWriter(path, recording.sensors, recording.metadata) as w:
        for batch in _time_sorted(recording.data):
            w.write(batch)
            if w.error is not None:
                break
    if w.error is not None:
        with contextlib.suppress(OSError):
            if Path(path).is_file():
                Path(path).unlink()
        raise w.error


def _time_sorted(data: dict[str, SampleBatch]) -> Iterable[SampleBatch]:
    from companion.source.base import interleave

    return interleave(data, packet_s=1.0)


def write_labels(path: str | Path, strides: Iterable[GroundTruthStride]) -> None:
    p = Path(path)
    rows = [",".join(LABEL_COLUMNS)]
    rows += [f"{s.sensor},{s.stride},{s.t_ic_s!r},{s.label.value}" for s in strides]
    fd = _open_for_writing(p)
    try:
        write_all(fd, ("\n".join(rows) + "\n").encode("utf-8"))
    except OSError as exc:
        raise _cannot_write(p, exc, "free some space, or write elsewhere") from None
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- reading


def _sensor_infos(
    path: str, meta: dict[str, str], meta_line: dict[str, int], names: list[str]
) -> dict[str, SensorInfo]:
    infos: dict[str, SensorInfo] = {}
    for name in names:
        vals = {k: meta.get(f"sensor.{name}.{k}") for k in _SENSOR_KEYS}

        def bad(key: str, problem: str, name: str = name) -> RecordingError:
            k = f"sensor.{name}.{key}"
            return RecordingError(
                path, meta_line.get(k), f"metadata {k} = {_clip(meta[k])!r}: {_clip(problem, 300)}"
            )

        rate = vals["rate_hz"]
        try:
            rate_hz = float(rate) if rate is not None else 0.0
        except ValueError:
            rate_hz = float("nan")
        if rate is not None and not (np.isfinite(rate_hz) and rate_hz > 0):
            raise bad(
                "rate_hz",
                "not a positive number of Hz; fix it, or delete the line to have the rate "
                "estimated from t_s",
            )
        segment = vals["segment"] or ("shank" if "shank" in name else "foot")
        if segment not in SEGMENTS:
            raise bad("segment", f"must be one of {', '.join(SEGMENTS)}; fix that line")
        side = vals["side"] or (
            "left"
            if name.startswith("left")
            else "right"
            if name.startswith("right")
            else "unknown"
        )
        if side not in SIDES:
            raise bad("side", f"must be one of {', '.join(SIDES)}; fix that line")
        problem = mount_problem(vals["mount"] or "auto")
        if problem:
            raise bad("mount", f"{problem}; fix that line, or set it to auto")
        infos[name] = SensorInfo(
            name=name,
            rate_hz=rate_hz,
            segment=segment,
            side=side,
            mount=vals["mount"] or "auto",
            model=vals["model"] or "unknown",
        )
    return infos


def _clip(text: str, most: int = 60) -> str:
    """A value quoted in a message, cut to ``most`` characters (a line can be megabytes)."""
    return text if len(text) <= most else f"{text[:most]}... ({len(text):,} characters)"


_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 16


def _gunzip(p: str, raw: bytes) -> tuple[bytes, bool]:
    """The text of a gzip-compressed recording (every member of the file), and whether it
    was cut short. A stream cut short (a copy that did not finish) or damaged part-way
    gives what could be read before, with a :class:`TruncatedRecordingWarning`."""
    out: list[bytes] = []
    pos = 0
    while True:
        d = zlib.decompressobj(wbits=31)
        problem = None
        try:
            for a in range(pos, len(raw), _GZIP_CHUNK):
                out.append(d.decompress(raw[a : a + _GZIP_CHUNK]))
                if d.eof:
                    break
        except zlib.error as exc:
            problem = f"the gzip data is damaged ({exc})"
        if problem is None and not d.eof:
            problem = "the gzip stream is cut short"
        if problem is not None:
            if not any(out):
                raise RecordingError(p, None, f"{problem}; no samples to read") from None
            warnings.warn(
                f"{p}: {problem}; the data up to there was kept",
                TruncatedRecordingWarning,
                stacklevel=3,
            )
            return b"".join(out), True
        rest = d.unused_data
        pos = len(raw) - len(rest)
        if not rest.startswith(_GZIP_MAGIC):  # one member, or the last of several
            if rest.strip(b"\x00"):
                warnings.warn(
                    f"{p}: {len(rest)} bytes after the gzip data were ignored",
                    RecordingWarning,
                    stacklevel=3,
                )
            return b"".join(out), False


def _decode(p: str, raw: bytes, cut: bool) -> tuple[str, bool]:
    """UTF-8 text of a recording, and whether it is cut short. Bytes cut off inside a
    character at the very end are a cut (the line is then dropped as truncated); bad
    bytes anywhere else are a :class:`RecordingError` naming the line."""
    try:
        return raw.decode("utf-8"), cut
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(raw):
            return raw[: exc.start].decode("utf-8"), True
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RecordingError(
            p,
            line,
            f"not a text file: byte {raw[exc.start]:#04x} is not UTF-8 (is it a recording CSV?)",
        ) from None


NAME_CHARS_FAST = 32
NAMES_FAST = 16
"""Longest sensor name, and most sensors, the fast parser takes (more go through the loop)."""


def _parse_rows_fast(
    text: str, lines: list[str], first_data: int, ncols: int, num_cols: list[int], sensor_col: int
) -> dict[str, np.ndarray]:
    """Each sensor's rows (``t_s`` and the six values, in file order) of a well-formed
    recording, parsed by numpy in C; ``{}`` when anything is unusual (a bad or non-finite
    value, a wrong number of columns, a blank sensor, time not increasing, a lone
    ``\\r``...): :func:`read_recording`'s line-by-line loop then reads the file and says
    what is wrong. It accepts only what that loop accepts, with the same values (both
    turn text into a number with Python's correctly rounded ``PyOS_string_to_double``)."""
    start = sum(len(line) + 1 for line in lines[:first_data])
    body = text[start:]
    lone_cr = "\r" in body and body.count("\r") != body.count("\r\n")
    if lone_cr or "\x00" in body or not body or body.isspace():
        return {}
    fields = [(f"c{k}", "f8") for k in range(ncols)]
    fields[sensor_col] = (fields[sensor_col][0], f"U{NAME_CHARS_FAST}")
    for k in range(ncols):
        if k != sensor_col and k not in num_cols:
            fields[k] = (fields[k][0], "U1")  # a column the recording does not use
    try:
        table = np.loadtxt(
            io.StringIO(body),
            dtype=np.dtype(fields),
            delimiter=",",
            comments=None,
            quotechar=None,
            ndmin=1,
        )
    except ValueError:
        return {}
    values = np.stack([table[f"c{k}"] for k in num_cols], axis=1)
    if len(values) == 0 or not np.isfinite(values).all():
        return {}
    col = table[f"c{sensor_col}"]
    # rows per sensor, in the order each first appears; names that differ only in the
    # spaces around them are one sensor, as in the loop
    rows: dict[str, np.ndarray] = {}
    left = np.ones(len(col), dtype=bool)
    while left.any():
        raw = col[int(np.argmax(left))]
        if len(rows) >= NAMES_FAST or len(raw) >= NAME_CHARS_FAST or not raw.strip():
            return {}  # many sensors, a name perhaps cut short, or a blank one
        mine = col == raw
        left &= ~mine
        name = str(raw).strip()
        rows[name] = rows[name] | mine if name in rows else mine
    out: dict[str, np.ndarray] = {}
    for name, mine in rows.items():
        out[name] = values[mine]
        if not (np.diff(out[name][:, 0]) > 0).all():
            return {}
    return out


def read_recording(path: str | Path) -> Recording:
    """Read a recording; raise :class:`RecordingError` naming the bad line.

    A truncated last line (a run cut off mid-write) is dropped with a
    :class:`TruncatedRecordingWarning`; anything else malformed is an error.
    """
    p = str(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise RecordingError(p, None, "file not found") from None
    except OSError as exc:
        raise RecordingError(p, None, f"cannot read: {exc.strerror or exc}") from None
    cut = False
    if raw[:2] == _GZIP_MAGIC:  # gzip (``.csv.gz``), whatever the name says
        raw, cut = _gunzip(p, raw)
    text, cut = _decode(p, raw, cut)
    text = text.removeprefix("\ufeff")  # a byte order mark (a spreadsheet's "CSV UTF-8")

    if not text.strip():
        raise RecordingError(
            p, None, "the file is empty (a run that recorded nothing?); no samples to read"
        )
    ends_with_newline = text.endswith("\n")
    lines = text.split("\n")
    if ends_with_newline:
        lines.pop()
    meta: dict[str, str] = {}
    meta_line: dict[str, int] = {}
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        body = lines[i][1:].strip()
        if ":" in body:
            k, v = body.split(":", 1)
            meta[k.strip()] = v.strip()
            meta_line[k.strip()] = i + 1
        i += 1
    if i >= len(lines):
        raise RecordingError(p, i + 1, f"no header line; expected: {','.join(COLUMNS)}")
    header = [c.strip() for c in lines[i].rstrip("\r").split(",")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RecordingError(
            p, i + 1, f"missing column(s) {', '.join(missing)}; expected: {','.join(COLUMNS)}"
        )
    col = {c: header.index(c) for c in COLUMNS}
    ncols = len(header)
    num_cols = [col[c] for c in COLUMNS if c != "sensor"]
    sensor_col = col["sensor"]

    first_data = i + 1
    # A well-formed file is parsed in C; anything unusual or wrong is left to the
    # line-by-line loop below, which says what and where (so it then reads every line).
    # (a stream cut short is read line by line: its last line may be cut inside a number)
    rows: dict[str, Any] = (
        {} if cut else _parse_rows_fast(text, lines, first_data, ncols, num_cols, sensor_col)
    )
    last_t: dict[str, float] = {}
    last_line = first_data if rows else len(lines)  # 1-based number of the final line
    for lineno in range(first_data + 1, last_line + 1):
        row = lines[lineno - 1].rstrip("\r")
        if not row.strip():
            continue
        is_last = lineno == last_line
        parts = row.split(",")
        try:
            if is_last and cut and not ends_with_newline:
                # the stream was cut: a last line that parses may still be cut in a number
                raise RecordingError(p, lineno, "the file was cut inside this line")
            if len(parts) != ncols:
                raise RecordingError(p, lineno, f"expected {ncols} values, found {len(parts)}")
            vals = []
            for c in num_cols:
                s = parts[c]
                try:
                    v = float(s)
                except ValueError:
                    raise RecordingError(
                        p, lineno, f"column {header[c]}: {_clip(s.strip())!r} is not a number"
                    ) from None
                if not np.isfinite(v):
                    raise RecordingError(
                        p, lineno, f"column {header[c]}: {_clip(s.strip())!r} is not finite"
                    )
                vals.append(v)
        except RecordingError as exc:
            if is_last and not ends_with_newline:
                why = exc.args[0].split(": ", 2)[-1]
                warnings.warn(
                    f"{p}, line {lineno}: last line is truncated ({why});"
                    " it was dropped and the rest of the data kept",
                    TruncatedRecordingWarning,
                    stacklevel=2,
                )
                break
            raise
        name = parts[sensor_col].strip()
        if not name:
            raise RecordingError(p, lineno, "column sensor is empty")
        t = vals[0]
        prev = last_t.get(name)
        if prev is not None and t <= prev:
            raise RecordingError(
                p,
                lineno,
                f"time goes backwards for sensor {_clip(name)!r}: t_s {t!r} after {prev!r}"
                " (each sensor's t_s must strictly increase)",
            )
        last_t[name] = t
        rows.setdefault(name, []).append(vals)

    if not rows:
        raise RecordingError(p, first_data + 1, "no samples after the header")
    data: dict[str, SampleBatch] = {}
    for name, r in rows.items():
        arr = np.asarray(r, dtype=np.float64)
        data[name] = SampleBatch(name, arr[:, 0].copy(), arr[:, 1:4].copy(), arr[:, 4:7].copy())
    infos = _sensor_infos(p, meta, meta_line, list(rows))
    lo, hi = RATE_RANGE_HZ
    for name, info in list(infos.items()):
        t = data[name].t_s
        with np.errstate(over="ignore"):  # times 1e308 apart: no rate (caught below)
            est = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 0.0
        key = f"sensor.{name}.rate_hz"
        if info.rate_hz <= 0:
            if est <= 0:
                raise RecordingError(
                    p,
                    None,
                    f"sensor {_clip(name)!r} has a single sample and no {key} metadata, so its "
                    "rate is unknown; add that line (Hz)",
                )
            log.info("%s: no rate for %s in metadata; estimated %.1f Hz", p, name, est)
            infos[name] = info = SensorInfo(
                name, round(est, 3), info.segment, info.side, info.mount, info.model
            )
        if not lo <= info.rate_hz <= hi:
            said = f"metadata {key} says" if key in meta else "its samples are at"
            raise RecordingError(
                p,
                meta_line.get(key),
                f"sensor {_clip(name)!r}: {said} {info.rate_hz:g} Hz; strides can be found from "
                f"{lo:g} to {hi:g} Hz (is the rate, or t_s, in the right unit?)",
            )
        if key in meta and est > 0 and abs(est / info.rate_hz - 1.0) > RATE_MISMATCH:
            warnings.warn(
                f"{p}: metadata {key} says {info.rate_hz:g} Hz but its samples are "
                f"{1000.0 / est:.3g} ms apart ({est:.1f} Hz), so strides may be missed or "
                "misjudged; fix that line, or delete it to have the rate estimated from t_s",
                RecordingWarning,
                stacklevel=2,
            )
    return Recording(infos, meta, data)


def read_labels(path: str | Path) -> list[GroundTruthStride]:
    p = str(path)
    try:
        with open(p, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise RecordingError(p, None, f"cannot read labels: {exc.strerror}") from None
    if not lines or [c.strip() for c in lines[0].split(",")] != list(LABEL_COLUMNS):
        raise RecordingError(p, 1, f"expected header {','.join(LABEL_COLUMNS)}")
    out: list[GroundTruthStride] = []
    for lineno, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        parts = raw.split(",")
        if len(parts) != 4:
            raise RecordingError(p, lineno, f"expected 4 values, found {len(parts)}")
        try:
            out.append(GroundTruthStride(parts[0], int(parts[1]), float(parts[2]), Label(parts[3])))
        except ValueError as exc:
            raise RecordingError(p, lineno, f"bad value: {exc}") from None
    return out
