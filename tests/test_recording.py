"""The recording format: exact round trips and one clear error per kind of broken file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.errors import RecordingError
from companion.source.recording import (
    GroundTruthStride,
    Recording,
    RecordingWarning,
    RecordingWriter,
    TruncatedRecordingWarning,
    read_labels,
    read_recording,
    write_labels,
    write_recording,
)
from companion.types import Label, SampleBatch, SensorInfo

HEADER = "t_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n"


def _batch(name: str, n: int, seed: int = 0, t0: float = 0.0, dt_s: float = 0.005) -> SampleBatch:
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.uniform(0.8 * dt_s, 1.2 * dt_s, n))
    return SampleBatch(name, t, rng.normal(0, 20, (n, 3)), rng.normal(0, 500, (n, 3)))


def _recording() -> Recording:
    sensors = {
        "foot": SensorInfo("foot", 200.0, "foot", "right", "auto", "simulator"),
        "shank": SensorInfo("shank", 100.0, "shank", "right", "auto", "simulator"),
    }
    data = {"foot": _batch("foot", 500, 1), "shank": _batch("shank", 250, 2, dt_s=0.01)}
    return Recording(sensors, {"source": "test"}, data)


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    rec = _recording()
    path = tmp_path / "run.csv"
    write_recording(path, rec)
    back = read_recording(path)
    assert back.sensors == rec.sensors
    assert back.metadata["source"] == "test"
    assert back.metadata["format"] == "companion-recording/1"
    for name, b in rec.data.items():
        got = back.data[name]
        assert np.array_equal(got.t_s, b.t_s)
        assert np.array_equal(got.acc, b.acc)
        assert np.array_equal(got.gyr, b.gyr)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e6, max_value=1e6),
        min_size=6,
        max_size=6,
    )
)
def test_any_finite_value_round_trips(tmp_path_factory: pytest.TempPathFactory, vals: list) -> None:
    path = tmp_path_factory.mktemp("rt") / "one.csv"
    b = SampleBatch("foot", np.array([1.25]), np.array([vals[:3]]), np.array([vals[3:]]))
    write_recording(path, Recording({"foot": SensorInfo("foot", 100.0)}, {}, {"foot": b}))
    got = read_recording(path).data["foot"]
    assert got.acc.tolist() == [vals[:3]] and got.gyr.tolist() == [vals[3:]]


def test_writer_flushes_so_a_crash_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "live.csv"
    w = RecordingWriter(path, {"foot": SensorInfo("foot", 200.0)}, flush_interval_s=0.0)
    w.write(_batch("foot", 10))
    w.flush(wait=True)
    # not closed: another reader sees every sample already
    assert len(read_recording(path).data["foot"]) == 10
    w.close()


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "broken.csv"
    p.write_text("# format: companion-recording/1\n# sensor.foot.rate_hz: 200\n" + body)
    return p


def test_missing_column_names_the_header_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "t_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y\n0.0,foot,1,2,3,4,5\n")
    with pytest.raises(RecordingError, match=r"line 3: missing column\(s\) gyr_z"):
        read_recording(p)


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path, HEADER + "0.0,foot,1,2,3,4,5,6\n0.005,foot,1,abc,3,4,5,6\n0.01,foot,1,2,3,4,5,6\n"
    )
    with pytest.raises(RecordingError, match=r"line 5: column acc_y: 'abc' is not a number"):
        read_recording(p)


def test_time_going_backwards(tmp_path: Path) -> None:
    p = _write(
        tmp_path, HEADER + "0.01,foot,1,2,3,4,5,6\n0.005,foot,1,2,3,4,5,6\n0.02,foot,1,2,3,4,5,6\n"
    )
    with pytest.raises(RecordingError, match=r"line 5: time goes backwards for sensor 'foot'"):
        read_recording(p)


def test_wrong_field_count_in_the_middle_is_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + "0.0,foot,1,2,3\n0.005,foot,1,2,3,4,5,6\n")
    with pytest.raises(RecordingError, match=r"line 4: expected 8 values, found 5"):
        read_recording(p)


def test_truncated_last_line_warns_and_keeps_the_rest(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + "0.0,foot,1,2,3,4,5,6\n0.005,foot,1,2,3,4,5,6\n0.01,foot,1,2,")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(p)
    assert len(rec.data["foot"]) == 2
    assert any(
        issubclass(w.category, TruncatedRecordingWarning) and "line 6" in str(w.message)
        for w in caught
    )


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="file not found"):
        read_recording(tmp_path / "none.csv")
    p = _write(tmp_path, HEADER)
    with pytest.raises(RecordingError, match="no samples"):
        read_recording(p)


def test_rate_is_estimated_when_metadata_lacks_it(tmp_path: Path) -> None:
    p = tmp_path / "norate.csv"
    rows = "".join(f"{i * 0.01!r},shank,0,0,9.8,0,0,0\n" for i in range(50))
    p.write_text(HEADER + rows)
    rec = read_recording(p)
    assert rec.sensors["shank"].rate_hz == pytest.approx(100.0, rel=1e-3)
    assert rec.sensors["shank"].segment == "shank"


def test_labels_round_trip_and_errors(tmp_path: Path) -> None:
    strides = [
        GroundTruthStride("foot", 0, 3.5, Label.RELAXED),
        GroundTruthStride("foot", 1, 4.2, Label.RIGID),
    ]
    p = tmp_path / "run.labels.csv"
    write_labels(p, strides)
    assert read_labels(p) == strides
    p.write_text("sensor,stride,t_ic_s,label\nfoot,0,1.0,floppy\n")
    with pytest.raises(RecordingError, match="line 2"):
        read_labels(p)


def test_writing_to_a_folder_or_missing_place_is_a_recording_error(tmp_path: Path) -> None:
    sensors = {"foot": SensorInfo("foot", 200.0)}
    with pytest.raises(RecordingError, match=r"cannot write: Is a directory"):
        RecordingWriter(tmp_path, sensors)
    (tmp_path / "x.labels.csv").mkdir()
    with pytest.raises(RecordingError, match=r"x\.labels\.csv: cannot write"):
        write_labels(tmp_path / "x.labels.csv", [])


@pytest.mark.parametrize("rate", ["nan", "-200", "0", "abc", "inf"])
def test_a_wrong_rate_in_metadata_names_the_key(tmp_path: Path, rate: str) -> None:
    rows = "".join(f"{i * 0.005!r},foot,0,0,9.8,0,0,0\n" for i in range(10))
    p = _write(tmp_path, f"# sensor.foot.rate_hz: {rate}\n" + HEADER + rows)
    with pytest.raises(RecordingError, match=r"sensor\.foot\.rate_hz = .* positive number of Hz"):
        read_recording(p)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("segment: hand", r"line 3: metadata sensor\.foot\.segment = 'hand': must be one of foot"),
        ("side: middle", r"line 3: metadata sensor\.foot\.side = 'middle': must be one of left"),
        ("mount: sideways", r"line 3: metadata sensor\.foot\.mount = 'sideways': .*set it to auto"),
        ("mount: ap,ap,si", r"line 3: .*each segment axis must appear exactly once"),
        ("rate_hz: 5000", r"line 3: sensor 'foot': metadata sensor\.foot\.rate_hz says 5000 Hz"),
    ],
)
def test_a_wrong_sensor_in_metadata_names_the_line(tmp_path: Path, line: str, match: str) -> None:
    rows = "".join(f"{i * 0.005!r},foot,0,0,9.8,0,0,0\n" for i in range(10))
    p = _write(tmp_path, f"# sensor.foot.{line}\n" + HEADER + rows)
    with pytest.raises(RecordingError, match=match):
        read_recording(p)


def test_samples_in_milliseconds_are_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "ms.csv"
    p.write_text(HEADER + "".join(f"{i * 5.0!r},foot,0,0,9.8,0,0,0\n" for i in range(10)))
    with pytest.raises(RecordingError, match=r"its samples are at 0\.2 Hz.*right unit"):
        read_recording(p)


def test_a_single_sample_without_a_rate_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "one.csv"
    p.write_text(HEADER + "0.0,foot,0,0,9.8,0,0,0\n")
    with pytest.raises(RecordingError, match=r"single sample and no sensor\.foot\.rate_hz"):
        read_recording(p)


def test_a_metadata_rate_that_contradicts_the_samples_warns(tmp_path: Path) -> None:
    rows = "".join(f"{i * 0.02!r},foot,0,0,9.8,0,0,0\n" for i in range(100))
    p = _write(tmp_path, "# sensor.foot.rate_hz: 1000\n" + HEADER + rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(p)
    assert rec.sensors["foot"].rate_hz == 1000.0  # the file is read as written
    assert any(
        issubclass(w.category, RecordingWarning) and "says 1000 Hz" in str(w.message)
        for w in caught
    )
    # a small difference (a device's real rate near its nominal one) is left alone
    p2 = _write(tmp_path, "# sensor.foot.rate_hz: 52\n" + HEADER + rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_recording(p2).sensors["foot"].rate_hz == 52.0


def test_an_empty_file_says_so(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(RecordingError, match=r"empty\.csv: the file is empty"):
        read_recording(p)


def test_gzip_recording_reads_like_the_plain_one(tmp_path: Path) -> None:
    import gzip

    rec = _recording()
    plain = tmp_path / "run.csv"
    write_recording(plain, rec)
    packed = tmp_path / "run.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_recording(plain), read_recording(packed)
    for name in rec.data:
        assert np.array_equal(a.data[name].t_s, b.data[name].t_s)
        assert np.array_equal(a.data[name].gyr, b.data[name].gyr)
    # a copy cut short keeps what came before the cut, with a warning
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    with pytest.warns(TruncatedRecordingWarning):
        part = read_recording(cut)
    n = len(part.data["foot"])
    assert 0 < n < len(rec.data["foot"])
    assert np.array_equal(part.data["foot"].t_s, rec.data["foot"].t_s[:n])


def test_files_beside_a_recording_are_named_from_its_stem() -> None:
    from companion.source.recording import labels_path, truth_path

    assert labels_path("/x/run.csv.gz") == Path("/x/run.labels.csv")
    assert labels_path("run.csv") == Path("run.labels.csv")
    assert truth_path("/x/v1.csv.gz") == Path("/x/v1.truth.json")
