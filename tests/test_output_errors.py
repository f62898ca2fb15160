"""Output that cannot be written, and values that must not become paths, command by command.

Every case is the real command in a process of its own, with a real full disk (a 64 kB
tmpfs in a private mount namespace, ``/dev/full``), a real read-only folder (a read-only
bind mount), a pipe whose reader went away. All start at once (they wait on different
things), then each test reads its case: one clear message naming the path, the exit
code the README gives, nothing left half-written, no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from _fake_bluez import running_recording

from companion.source.recording import read_recording

ROOT = Path(__file__).resolve().parents[1]
FULL = "/dev/full"


def in_mount_namespace(setup: str, argv: list[str]) -> list[str]:
    """``argv`` run in a private mount namespace (``unshare -rm``: no root needed) after
    the shell commands ``setup`` (mount a tiny tmpfs, make a folder read-only)."""
    return ["unshare", "-rm", "sh", "-ec", setup + '\nexec "$@"', "sh", *argv]


def _mount_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        res = subprocess.run(in_mount_namespace("true", ["true"]), capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


NAMESPACES = _mount_namespaces_work()


@dataclass
class Case:
    argv: list[str]
    stdout: str = "pipe"
    """``pipe`` (read), ``closed`` (the reader goes away at once), ``full`` (/dev/full)."""
    read_only: Path | None = None
    tmpfs: Path | None = None
    after: str = ""
    """Shell run in the namespace after the command (the tmpfs is gone when it ends)."""


@dataclass
class Result:
    rc: int
    out: str
    err: str


class Folders:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ro = root / "read-only"
        (self.ro / "inside").mkdir(parents=True)
        self.disk = root / "disk"
        self.disk.mkdir()
        self.cfg = root / "console.toml"
        self.cfg.write_text('[voice]\noutput = "console"\n')
        self.short = running_recording(root / "short.csv", 12.0)


def _command(case: Case) -> list[str]:
    argv = [sys.executable, "-m", "companion", *case.argv]
    setup = []
    if case.read_only is not None:
        setup += [f"mount --bind {case.read_only} {case.read_only}",
                  f"mount -o remount,bind,ro {case.read_only}"]  # fmt: skip
    if case.tmpfs is not None:
        setup.append(f"mount -t tmpfs -o size=64k none {case.tmpfs}")
    if not setup:
        return argv
    if case.after:
        argv = ["sh", "-c", f'"$@"; rc=$?; {case.after}; exit $rc', "sh", *argv]
    return in_mount_namespace("\n".join(setup), argv)


def _cases(f: Folders) -> dict[str, Case]:
    ro, cfg = f.ro, str(f.cfg)
    pinned = f.root / "pinned.toml"
    pinned.write_text(
        '[voice]\noutput = "console"\n[[sensors]]\nname = "foot"\nprofile = "open_imu"\n'
        'address = "C0:FF:EE:00:00:01"\n'
    )
    ro_profiles = f.root / "ro-profiles.toml"
    ro_profiles.write_text(
        f'[run]\nprofile_dir = "{ro}/profiles"\n[estimator]\nbaseline_strides = 5\n'
        + pinned.read_text()
    )
    ro_dir = f.root / "ro-dir.toml"
    ro_dir.write_text(f'[recording]\ndir = "{ro}/runs"\n' + pinned.read_text())
    out_ro = str(ro / "inside" / "run.csv")
    save_ana = ["replay", str(f.short), "--fast", "--save-profile", "--runner", "ana"]
    return {
        "simulate, read-only folder": Case(
            ["simulate", "--out", out_ro, "--minutes", "0.1"], read_only=ro
        ),
        "simulate, full disk": Case(
            ["simulate", "--out", str(f.disk / "run.csv"), "--minutes", "0.2"],
            tmpfs=f.disk,
            after=f"ls -A {f.disk}",
        ),
        "simulate, closed pipe": Case(
            ["simulate", "--out", str(f.root / "sim.csv"), "--minutes", "0.1"], stdout="closed"
        ),
        "replay, full stdout": Case(
            ["replay", str(f.short), "--fast", "--json", "--config", cfg], stdout="full"
        ),
        "replay, closed pipe": Case(
            ["replay", str(f.short), "--fast", "--json", "--config", cfg], stdout="closed"
        ),
        "demo, closed pipe": Case(["demo", "--fast", "--config", cfg], stdout="closed"),
        "replay --save-profile, read-only folder": Case(
            [*save_ana, "--config", str(ro_profiles)], read_only=ro
        ),
        "run --out, read-only folder": Case(
            ["run", "--config", str(pinned), "--out", out_ro], read_only=ro
        ),
        "run, read-only recording.dir": Case(["run", "--config", str(ro_dir)], read_only=ro),
        "run --save-profile, read-only folder": Case(
            ["run", "--config", str(ro_profiles), "--save-profile"], read_only=ro
        ),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Folders, dict[str, Result]]:
    f = Folders(tmp_path_factory.mktemp("out"))
    # no Bluetooth: a run that tried to connect would fail with "no usable adapter" (4)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={f.root}/no-bus",
    }
    procs: dict[str, subprocess.Popen] = {}
    with open(FULL, "w") as full:
        for name, case in _cases(f).items():
            if (case.read_only or case.tmpfs) and not NAMESPACES:
                continue
            procs[name] = subprocess.Popen(
                _command(case),
                stdout=full if case.stdout == "full" else subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=f.root,
            )
            if case.stdout == "closed":
                procs[name].stdout.close()  # type: ignore[union-attr]
        out: dict[str, Result] = {}
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=120)
            out[name] = Result(p.returncode, stdout or "", stderr)
    return f, out


PIPE_CLOSED = "cannot write the output to standard output (a pipe): the program reading it closed"
EXPECTED = {  # case: exit code, what its one message says ({ro}, {disk}: the folders)
    "simulate, read-only folder": (3, "{ro}/inside/run.csv: cannot write: Read-only file system"),
    "simulate, full disk": (3, "{disk}/run.csv: cannot write: No space left on device"),
    "simulate, closed pipe": (1, PIPE_CLOSED),
    "replay, full stdout": (
        1,
        f"cannot write the output to standard output ({FULL}): No space left on device",
    ),
    "replay, closed pipe": (1, PIPE_CLOSED),
    "demo, closed pipe": (1, PIPE_CLOSED),
    "replay --save-profile, read-only folder": (
        2,
        "runner profile {ro}/profiles/ana.json cannot be written (Read-only file system)",
    ),
    # a run stops before it connects (it would then fail with no adapter: 4)
    "run --out, read-only folder": (3, "{ro}/inside/run.csv: cannot write: Read-only file system"),
    "run, read-only recording.dir": (3, "{ro}/runs/run-"),
    "run --save-profile, read-only folder": (
        2,
        "runner profiles cannot be written to {ro}/profiles (Read-only file system)",
    ),
}


def _result(results: tuple[Folders, dict[str, Result]], name: str) -> Result:
    if name not in results[1]:
        pytest.skip("no user namespaces here (unshare -rm) for a read-only folder or a tmpfs")
    return results[1][name]


@pytest.mark.parametrize("case", list(EXPECTED))
def test_output_that_cannot_be_written_is_one_clear_message(
    results: tuple[Folders, dict[str, Result]], case: str
) -> None:
    f, r = results[0], _result(results, case)
    rc, message = EXPECTED[case]
    assert r.rc == rc, r.err
    assert message.format(ro=f.ro, disk=f.disk) in r.err, r.err
    assert "Traceback" not in r.err


def test_what_was_written_before_the_output_failed_is_kept(
    results: tuple[Folders, dict[str, Result]],
) -> None:
    f = results[0]
    # simulate's reader went away: its files are written all the same
    _result(results, "simulate, closed pipe")
    assert len(read_recording(f.root / "sim.csv").data["foot"]) == 1200
    assert (f.root / "sim.labels.csv").read_text().startswith("sensor,stride")
    # the replay went through before its profile could not be saved
    assert "summary:" in _result(results, "replay --save-profile, read-only folder").out
    # a full disk leaves no half recording (`ls` of the disk after the command)
    assert "run.csv" not in _result(results, "simulate, full disk").out
    run_dir = _result(results, "run, read-only recording.dir")
    assert ".csv: cannot write: Read-only file system" in run_dir.err


@pytest.mark.parametrize(
    ("sensor", "message"),
    [
        ('name = "foot"', "sensors[0] (foot): pinned by neither address nor device_name"),
        (
            'name = "../../x"\naddress = "C0:FF:EE:00:00:01"',
            "sensors[0].name: sensor name '../../x' cannot label a recording's rows",
        ),
    ],
)
def test_run_refuses_a_sensor_before_any_connection(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sensor: str,
    message: str,
) -> None:
    """A sensor the config does not pin is never connected to (not even looked for: there
    is no Bluetooth here, which would be exit 4), and a sensor name is never a path."""
    from companion.cli import main

    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[sensors]]\n{sensor}\nprofile = "open_imu"\n[voice]\noutput = "console"\n')
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]  # nothing recorded anywhere
    assert not (tmp_path.parent.parent / "x").exists()


# ----------------------------------------------------------------------------- hostile values


def test_a_recordings_values_are_never_run_or_used_as_paths(tmp_path: Path) -> None:
    """Metadata and a sensor column made to look like paths and shell commands: a replay
    that saves a profile writes that profile in its folder, and nothing else anywhere."""
    work = tmp_path / "work"
    work.mkdir()
    rec = running_recording(tmp_path / "base.csv", 12.0)
    text = rec.read_text()
    head, _, body = text.partition("t_s,sensor,")
    hostile = (
        "# runner: ../../evil\n# source: $(touch pwned) `touch pwned2`\n"
        "# start_wall: ../../../tmp/x\n# labels: ../evil.labels.csv\n"
    )
    bad = work / "hostile.csv"
    bad.write_text(
        head.replace("sensor.foot.", "sensor.../../x.")
        + hostile
        + "t_s,sensor,"
        + body.replace(",foot,", ",../../x,")
    )
    cfg = work / "c.toml"
    cfg.write_text(
        f'[voice]\noutput = "console"\n[run]\nprofile_dir = "{work}/profiles"\n'
        "[estimator]\nbaseline_strides = 5\n"
    )
    before = sorted(p for p in tmp_path.rglob("*"))
    res = subprocess.run(
        [sys.executable, "-m", "companion", "replay", str(bad), "--fast", "--json",
         "--save-profile", "--config", str(cfg)],
        capture_output=True, text=True, timeout=120, cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["samples"] == {"../../x": 2400} and summary["strides"]["../../x"] > 0
    after = sorted(p for p in tmp_path.rglob("*"))
    new = [p for p in after if p not in before]
    assert new == [work / "profiles", work / "profiles" / "runner.json"]
    assert not list(tmp_path.parent.glob("evil*")) and not (tmp_path.parent / "x").exists()


def test_a_cue_id_is_never_a_path(tmp_path: Path) -> None:
    """Cue ids must be plain words, and clips are cached under a hash of what they say."""
    from companion.errors import ConfigError
    from companion.voice.library import load_library
    from companion.voice.render import Renderer
    from companion.voice.settings import VoiceSettings

    lib = tmp_path / "cues.toml"
    lib.write_text('[cues."../../x"]\nphrases = ["Relax."]\npriority = 5\n')
    with pytest.raises(ConfigError, match=r"cues\.\.\./\.\./x: cue id must be lower-case"):
        load_library(VoiceSettings(library=str(lib)), None)
    cache = Renderer(tmp_path / "cache")
    for text in ("../../x", "/etc/passwd", "a\nb"):
        assert cache.path_for(text).parent == tmp_path / "cache"
