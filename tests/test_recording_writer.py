"""The recording writer and runner profiles when the disk says no, and who may read them.

A recording is the only copy of a run: a disk that fills up keeps every row written before,
the file ending on a whole row; files are the user's alone; no value (a runner name, a
sensor name) can add lines of its own to a recording or put a file outside its folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from companion.errors import ConfigError, RecordingError
from companion.estimator.classify import FeatureStats
from companion.estimator.profile import RunnerProfile, profile_path
from companion.source.recording import (
    RecordingWriter,
    read_recording,
    write_recording,
)
from companion.types import SampleBatch, SensorInfo

SENSORS = {"foot": SensorInfo("foot", 200.0)}


def _batch(n: int, t0: float = 0.0) -> SampleBatch:
    rng = np.random.default_rng(int(t0 * 1000))
    t = t0 + 0.005 * np.arange(n)
    return SampleBatch("foot", t, rng.normal(0, 20, (n, 3)), rng.normal(0, 500, (n, 3)))


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that gives everyone everything: the modes below come from the code alone."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- permissions


def test_a_recording_and_the_folders_it_makes_are_the_users_alone(
    tmp_path: Path, open_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    path = shared / "runs" / "2026" / "run.csv"
    with RecordingWriter(path, SENSORS) as w:
        w.write(_batch(10))
    assert _mode(path) == 0o600
    assert _mode(shared / "runs") == 0o700 and _mode(shared / "runs" / "2026") == 0o700
    assert _mode(shared) == 0o755  # a folder that was there keeps what the user chose
    # a file that was there, readable by all, is no longer once it holds a run
    old = tmp_path / "old.csv"
    old.write_text("x")
    old.chmod(0o644)
    write_recording(old, read_recording(path))
    assert _mode(old) == 0o600


def test_a_device_given_as_the_output_keeps_its_permissions(tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    with RecordingWriter("/dev/null", SENSORS) as w:
        w.write(_batch(10))
    assert w.error is None and w.samples_written == 10
    assert os.stat("/dev/null").st_mode == before.st_mode


def test_a_runner_profile_is_the_users_alone(tmp_path: Path, open_umask: None) -> None:
    prof = RunnerProfile("ana", {"foot": {"strike_angle_deg": FeatureStats(12.0, 2.0)}}, {})
    path = tmp_path / "profiles" / "ana.json"
    prof.save(path)
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert RunnerProfile.load(path).segments == prof.segments
    # a profile that cannot be written says where, and what to do
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match=r"blocked/ana\.json cannot be written .*profile_dir"):
        prof.save(tmp_path / "blocked" / "ana.json")


# ----------------------------------------------------------------------------- hostile values


@pytest.mark.parametrize("runner", ["../../x", "/etc/passwd", "..", ".", "a/../../b", "~root"])
def test_a_runner_name_never_leads_out_of_the_profile_folder(tmp_path: Path, runner: str) -> None:
    from companion.config import config_from_dict

    cfg = config_from_dict({"run": {"profile_dir": str(tmp_path / "profiles")}})
    path = profile_path(cfg, runner)
    assert path.resolve().parent == (tmp_path / "profiles").resolve()
    assert path.suffix == ".json" and not path.name.startswith(".")  # not hidden, not ..


def test_a_value_with_line_breaks_cannot_add_lines_to_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    hostile = "ana\n# sensor.foot.rate_hz: 25\nt_s,sensor,acc_x\r\n1.0,foot,1,2,3,4,5,6"
    with RecordingWriter(path, SENSORS, {"runner": hostile, "note:\nx": "y"}) as w:
        w.write(_batch(50))
    back = read_recording(path)
    assert back.sensors["foot"].rate_hz == 200.0
    assert back.metadata["runner"].startswith("ana ") and "\n" not in back.metadata["runner"]
    assert len(back.data["foot"]) == 50


@pytest.mark.parametrize("name", ["../../x", "left foot", "a,b", "foot\n1.0", "sensor.x", ""])
def test_a_sensor_name_that_would_break_the_rows_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(RecordingError, match="cannot label a recording's rows"):
        RecordingWriter(tmp_path / "run.csv", {name: SensorInfo(name, 200.0)})
    assert not (tmp_path / "run.csv").exists()
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- a full disk


def test_a_device_that_is_full_from_the_start_is_one_clear_error() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with pytest.raises(RecordingError, match=r"^/dev/full: cannot write: No space left on device"):
        RecordingWriter("/dev/full", SENSORS)
    assert Path("/dev/full").exists()  # and it is not removed as a failed file would be
