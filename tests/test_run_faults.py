"""``companion run`` through what a run meets: signals, output that fails, decoy devices.

Each test runs the real command (a process of its own where a signal or a broken output
must reach a real process) against the fake BlueZ on a private bus, and compares the
recording, sample for sample, with what the fake sensor sent (its notification log).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fake_bluez import (
    compare_with_sent,
    dbus_daemon_path,
    fake_bluez,
    private_bus,
    running_recording,
    sent_samples,
)

from companion.cli import main
from companion.source.recording import read_recording

pytestmark = [
    pytest.mark.ble,
    pytest.mark.skipif(
        dbus_daemon_path() is None, reason="dbus-daemon is not installed (package dbus-daemon)"
    ),
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_bus(tmp_path_factory.mktemp("bus")) as address:
        yield address


@pytest.fixture
def env(bus: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """bleak (in this process, and in the runs it starts) talks to the private bus."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
    return bus


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return running_recording(tmp_path_factory.mktemp("sim") / "sim.csv", 40.0)


def _device(i: int, sim_csv: Path, tmp: Path, **kw: Any) -> dict[str, Any]:
    return {
        "address": f"C0:FF:EE:00:13:{i:02X}",
        "name": f"OpenIMU-{i}",
        "profile": "open_imu",
        "recording": str(sim_csv),
        "speed": 1.0,
        "log": str(tmp / f"sent-{i}.log"),
        **kw,
    }


def _config(tmp: Path, dev: dict[str, Any], extra: str = "") -> Path:
    path = tmp / f"{dev['name']}.toml"
    path.write_text(
        f'[voice]\noutput = "console"\n{extra}\n[[sensors]]\nname = "foot"\n'
        f'profile = "open_imu"\naddress = "{dev["address"]}"\n'
    )
    return path


def _start(cfg: Path, *args: str, **popen: Any) -> subprocess.Popen:
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "companion", "run", "--config", str(cfg), *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **popen,
    )


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line[:1].isdigit())


def _replay(capsys: pytest.CaptureFixture[str], csv: Path, cfg: Path) -> dict[str, Any]:
    """``companion replay`` of a recording: its exit code, warnings and summary."""
    capsys.readouterr()
    rc = main(["replay", str(csv), "--fast", "--json", "--config", str(cfg)])
    out = capsys.readouterr()
    summary = json.loads(out.out.splitlines()[-1])
    return {"rc": rc, "err": out.err, "summary": summary}


# ----------------------------------------------------------------------------- signals


def test_sigint_sigterm_and_sigkill_mid_run_lose_at_most_the_last_second(
    env: str,
    sim_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pytestconfig: pytest.Config,
) -> None:
    """Three runs at once, each stopped by one signal while samples flow (real time)."""
    sigs = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
    devs = {name: _device(i, sim_csv, tmp_path) for i, name in enumerate(sigs)}
    runs_dir = tmp_path / "runs" / "deep"
    with fake_bluez(env, {"devices": list(devs.values())}, tmp_path):
        procs, outs, cfgs = {}, {}, {}
        for name, dev in devs.items():
            if name == "SIGTERM":  # this one records where the config says, not --out
                cfgs[name] = _config(tmp_path, dev, f'[recording]\ndir = "{runs_dir}"')
                procs[name] = _start(cfgs[name])
            else:
                cfgs[name] = _config(tmp_path, dev)
                outs[name] = tmp_path / f"{name}.csv"
                procs[name] = _start(cfgs[name], "--out", str(outs[name]))
        sent_at: dict[str, float] = {}
        deadline = time.monotonic() + 40.0
        while len(sent_at) < len(sigs) and time.monotonic() < deadline:
            time.sleep(0.05)
            if any(p.poll() is not None for n, p in procs.items() if n not in sent_at):
                break  # a run ended by itself: see its stderr below
            if "SIGTERM" not in outs and runs_dir.exists() and list(runs_dir.glob("run-*.csv")):
                outs["SIGTERM"] = next(runs_dir.glob("run-*.csv"))
            for k, (name, sig) in enumerate(sigs.items()):
                # at 2 s of samples, then a third of a second apart (anywhere in a flush)
                if name not in sent_at and _rows(outs.get(name, tmp_path / "-")) >= 400 + 70 * k:
                    sent_at[name] = time.monotonic()
                    procs[name].send_signal(sig)
        results = {name: p.communicate(timeout=30) for name, p in procs.items()}
    assert len(sent_at) == len(sigs), {n: (p.returncode, results[n][1]) for n, p in procs.items()}

    for name in sigs:
        out, err = results[name]
        rc = procs[name].returncode
        if name == "SIGKILL":
            assert rc == -signal.SIGKILL
        else:  # stopped cleanly, with its summary
            assert rc == 0, err
            assert "summary:" in out and f"recording: {outs[name]}" in out
            assert "Traceback" not in err
        # companion replay reads the recording, and nothing in it is damaged
        rep = _replay(capsys, outs[name], cfgs[name])
        assert rep["rc"] == 0 and "Traceback" not in rep["err"]
        rec = read_recording(outs[name]).data["foot"]
        assert rep["summary"]["samples"]["foot"] == len(rec)
        sent = sent_samples(Path(devs[name]["log"]))
        cmp = compare_with_sent(rec, sent, sent_before_mono=sent_at[name])
        if pytestconfig.getoption("capture") == "no":  # the figures, with pytest -s
            with capsys.disabled():
                print(f"\n{name}: {cmp}")
        assert cmp["mismatched"] == 0 and cmp["missing_inside"] == 0
        # at most the last second is missing, by the issue; in fact only what was on its
        # way: every row goes to the OS as it is written
        assert cmp["missing_tail_s"] <= 0.5
    # the folder the run made for its recording, and the recording, are the user's alone
    assert (runs_dir.stat().st_mode & 0o777) == 0o700
    assert (runs_dir.parent.stat().st_mode & 0o777) == 0o700
    assert (outs["SIGTERM"].stat().st_mode & 0o777) == 0o600


# ----------------------------------------------------------------------------- output


def _file_size_limit(limit_bytes: int) -> Any:
    def apply() -> None:  # in the child: its files cannot grow past the limit (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_output_that_fails_mid_run_does_not_stop_the_run(
    env: str, sim_csv: Path, tmp_path: Path
) -> None:
    """Three runs at once: the recording's disk fills up (a file size limit, the same
    failed write as a full disk), the reader of stdout goes away, stdout is a full device."""
    cases = ("recording full", "closed pipe", "stdout full")
    devs = {c: _device(i, sim_csv, tmp_path, speed=3.0) for i, c in enumerate(cases)}
    outs = {c: tmp_path / f"out-{i}.csv" for i, c in enumerate(cases)}
    stop_s = 12.0
    scenario = {"devices": list(devs.values())}
    with fake_bluez(env, scenario, tmp_path), open("/dev/full", "w") as full:
        args = ("--json", "--seconds", str(stop_s))
        procs = {
            "recording full": _start(
                _config(tmp_path, devs["recording full"]),
                *args,
                "--out",
                str(outs["recording full"]),
                preexec_fn=_file_size_limit(40_000),
            ),
            "closed pipe": _start(
                _config(tmp_path, devs["closed pipe"]), *args, "--out", str(outs["closed pipe"])
            ),
            "stdout full": _start(
                _config(tmp_path, devs["stdout full"]),
                *args,
                "--out",
                str(outs["stdout full"]),
                stdout=full,
            ),
        }
        pipe = procs["closed pipe"]
        assert pipe.stdout is not None
        first = pipe.stdout.readline()  # the reader takes one event, then goes away
        pipe.stdout.close()
        results = {c: (p.communicate(timeout=60), p.returncode) for c, p in procs.items()}
    assert first.startswith("{")

    # the disk filled up: every sample up to the failure kept, the run went on coaching
    (out, err), rc = results["recording full"]
    assert rc == 3, err
    path = outs["recording full"]
    assert f"recording stopped: {path}: cannot write: File too large" in err
    assert "Traceback" not in err
    events = _json_lines(out)
    summary = events[-1]
    rec = read_recording(path).data["foot"]  # reads back cleanly: whole rows only
    assert summary["recorded_samples"]["foot"] == len(rec)
    lost = summary["not_recorded"]["foot"]
    assert lost > 0 and summary["samples"]["foot"] == len(rec) + lost
    assert "File too large" in summary["recording_error"]
    cmp = compare_with_sent(rec, sent_samples(Path(devs["recording full"]["log"])))
    assert cmp["mismatched"] == 0 and cmp["missing_inside"] == 0
    strides_after = [e for e in events if e["type"] == "stride" and e["t_ic_s"] > rec.t_s[-1]]
    assert len(strides_after) >= 3  # coaching went on after the recording stopped
    print(
        f"\nrecording full: {len(rec)} samples kept up to t={rec.t_s[-1]:.2f} s, {lost} not "
        f"recorded, {len(strides_after)} strides judged after; {cmp}"
    )

    # stdout went away: said once, the run went on to the end, the summary on stderr
    for case, why in (
        ("closed pipe", "(a pipe): the program reading it closed it"),
        ("stdout full", "(/dev/full): No space left on device"),
    ):
        (_, err), rc = results[case]
        assert rc == 1, err
        assert f"cannot write the output to standard output {why}; the run goes on" in err
        assert "Traceback" not in err
        summary = _json_lines(err)[-1]
        assert summary["type"] == "summary" and summary["not_recorded"] == {}
        rec = read_recording(outs[case]).data["foot"]
        assert summary["recorded_samples"]["foot"] == len(rec)
        cmp = compare_with_sent(rec, sent_samples(Path(devs[case]["log"])), until_t_s=stop_s)
        assert cmp["mismatched"] == 0 and cmp["missing_inside"] == 0
        assert cmp["missing_tail"] == 0 and rec.t_s[-1] > stop_s - 0.1
        print(f"{case}: {cmp}")


# ----------------------------------------------------------------------------- pinning


def _run_briefly(capsys: pytest.CaptureFixture[str], cfg: Path, out: Path) -> Any:
    rc = main(["run", "--config", str(cfg), "--json", "--seconds", "3", "--out", str(out),
               "--connect-timeout", "5"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    return read_recording(out).data["foot"]


def test_run_connects_only_to_the_pinned_sensor_never_to_a_decoy(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_csv = running_recording(tmp_path / "other.csv", 20.0, seed=11)
    pinned = _device(0, sim_csv, tmp_path, speed=4.0, name="OpenIMU-foot", rssi=-80)
    # a stronger device that advertises the same service under another name
    decoy_service = _device(1, other_csv, tmp_path, speed=4.0, name="OpenIMU-x", rssi=-30)
    # and one that even advertises the pinned name, at another address
    decoy_name = _device(2, other_csv, tmp_path, speed=4.0, name="OpenIMU-foot", rssi=-30)
    theirs = read_recording(sim_csv).data["foot"]

    def is_pinned(rec: Any) -> bool:
        k = int(((theirs.gyr - rec.gyr[0]) ** 2).sum(axis=1).argmin())
        return bool(abs(theirs.gyr[k] - rec.gyr[0]).max() < 0.07)  # 16-bit resolution

    by_name = tmp_path / "by_name.toml"
    by_name.write_text(
        '[voice]\noutput = "console"\n[[sensors]]\nname = "foot"\nprofile = "open_imu"\n'
        'device_name = "OpenIMU-foot"\n'
    )
    with fake_bluez(env, {"devices": [pinned, decoy_service]}, tmp_path):
        assert is_pinned(_run_briefly(capsys, by_name, tmp_path / "a.csv"))
    with fake_bluez(env, {"devices": [decoy_name, pinned]}, tmp_path):
        assert is_pinned(_run_briefly(capsys, _config(tmp_path, pinned), tmp_path / "b.csv"))
    # what the decoys sent never reached a recording: they were never even subscribed to
    assert not Path(decoy_service["log"]).read_text()
    assert not Path(decoy_name["log"]).read_text()


# ----------------------------------------------------------------------------- soak


def test_a_short_soak(env: str, tmp_path: Path) -> None:
    """``benchmarks/bench_soak.py`` for 24 s of stream (8 s at three times real time): two
    sensors, 2 % of notifications lost, each link dropped twice. Every sample delivered is
    in the recording and nothing else, and the strides equal those of replaying it (the
    benchmark adds the 30-minute run, memory and latency)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_soak import live_soak

    r = live_soak(tmp_path, env, seconds=24.0, speed=3.0, drop_every_s=10.0, away_s=0.5)
    assert r.problems() == []
    assert r.reconnects == {"left_foot": 2, "right_foot": 2}
    for name, c in r.compare.items():
        assert c["recorded"] > 2500 and c["lost_on_the_way"] > 0, (name, c)
        # the run counted the notifications the link lost: those between its first and last
        # recorded sample (but one lost just before a link drop shows only as lost samples:
        # the sequence numbers start again after a reconnect), and some after its stop time,
        # while it still listened
        log = (tmp_path / f"soak-{name}.log").read_text().splitlines()
        lost_in_all = sum(line.split(" ")[2] == "1" for line in log)
        in_span = c["lost_on_the_way"] // 8
        assert in_span - r.reconnects[name] <= r.lost_notifications[name] <= lost_in_all
    assert r.strides_live >= 30 and r.strides_equal_replay
