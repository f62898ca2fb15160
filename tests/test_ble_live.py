"""Live runs through bleak's own BlueZ backend, against a fake BlueZ on a private bus.

Each scenario starts ``tests/_fake_bluez.py`` (adapter, device, GATT tree, the
profile's own encoder fed from a simulated run) on a private ``dbus-daemon`` and
runs ``companion scan`` / ``companion run`` in-process with bleak unmodified,
pointed at that bus through ``DBUS_SYSTEM_BUS_ADDRESS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fake_bluez import dbus_daemon_path, fake_bluez, private_bus, running_recording

from companion.cli import main
from companion.source.recording import read_recording

pytestmark = [
    pytest.mark.ble,
    pytest.mark.skipif(
        dbus_daemon_path() is None, reason="dbus-daemon is not installed (package dbus-daemon)"
    ),
]

ADDR = "C0:FF:EE:00:00:01"
RUN_S = 24.0
STOP_S = 23.5


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_bus(tmp_path_factory.mktemp("bus")) as address:
        yield address


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return running_recording(tmp_path_factory.mktemp("sim") / "sim.csv", RUN_S)


@pytest.fixture
def env(bus: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
    return bus


def _config(tmp: Path, profile: str, address: str = ADDR, head: str = "", **extra: Any) -> Path:
    lines = [
        head,
        "[voice]",
        'output = "console"',
        "[[sensors]]",
        'name = "foot"',
        f'profile = "{profile}"',
        f'address = "{address}"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp / f"{profile}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _device(profile: str, sim_csv: Path, **kw: Any) -> dict[str, Any]:
    return {
        "address": ADDR,
        "name": {
            "open_imu": "OpenIMU-foot",
            "witmotion": "WT901BLE67",
            "polar_pmd": "Polar Sense 1A2B3C4D",
        }[profile],
        "profile": profile,
        "recording": str(sim_csv),
        "speed": 8.0,
        **kw,
    }


def _events(out: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary = next(r for r in rows if r.get("type") == "summary")
    return [r for r in rows if r.get("type") != "summary"], summary


def _run(capsys: pytest.CaptureFixture[str], tmp: Path, cfg: Path, *extra: str):
    out_csv = tmp / "live.csv"
    # a safety net for CI: a run that never reaches --seconds is stopped like Ctrl-C
    guard = threading.Timer(60.0, os.kill, (os.getpid(), signal.SIGINT))
    guard.start()
    try:
        rc = main(
            [
                "run",
                "--config",
                str(cfg),
                "--json",
                "--seconds",
                str(STOP_S),
                "--out",
                str(out_csv),
                *extra,
            ]
        )
    finally:
        guard.cancel()
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    events, summary = _events(captured.out)
    return events, summary, read_recording(out_csv), captured


def _strides(events: list[dict[str, Any]], decided: bool = True) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.items() if decided or k != "t_decided_s"}
        for e in events
        if e["type"] == "stride"
    ]


# ----------------------------------------------------------------------------- scan


def test_scan_finds_known_devices_with_signal_battery_and_config_lines(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = [
        _device("open_imu", sim_csv, rssi=-48, advertise_battery=77),
        _device("witmotion", sim_csv, address="C0:FF:EE:00:00:02", rssi=-70),
        # a device of no known profile is not listed
        _device(
            "open_imu",
            sim_csv,
            address="C0:FF:EE:00:00:03",
            name="Headphones",
            advertised_uuids=["0000110b-0000-1000-8000-00805f9b34fb"],
        ),
    ]
    with fake_bluez(env, {"devices": devices}, tmp_path):
        rc = main(["scan", "--seconds", "1.0"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    row = next(line for line in lines if ADDR in line and "dBm" in line)
    assert "OpenIMU-foot" in row and "open_imu" in row and "77%" in row
    assert "-4" in row  # about -48 dBm
    assert any("C0:FF:EE:00:00:02" in line and "witmotion" in line for line in lines)
    assert "C0:FF:EE:00:00:03" not in out
    assert f'address = "{ADDR}"' in out and 'profile = "open_imu"' in out
    # the strongest signal is listed first
    assert lines.index(row) < next(i for i, x in enumerate(lines) if "C0:FF:EE:00:00:02" in x)


def test_scan_without_adapter_is_a_clear_message(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_bluez(env, {"adapter": False, "devices": []}, tmp_path):
        rc = main(["scan", "--seconds", "0.5"])
    err = capsys.readouterr().err
    assert rc == 4
    assert "no usable Bluetooth adapter" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- run


@pytest.mark.parametrize("profile", ["open_imu", "witmotion", "polar_pmd"])
def test_run_gives_the_strides_of_a_replay(
    profile: str, env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, profile)
    periph: dict[str, Any] = {
        "open_imu": {"clock_offset_us": 2**32 - 7_000_000},  # the clock wraps 7 s in
        "witmotion": {},
        # a PMD device with ACC at the gyro rate and a 16 g range (a Verity Sense has
        # 52 Hz and 8 g, which running impacts saturate; see test_ble_profiles.py)
        "polar_pmd": {"acc_decimation": 1, "acc_range_g": 16},
    }[profile]
    speed = 4.0 if profile == "witmotion" else 8.0  # WitMotion: one notification a sample
    dev = _device(profile, sim_csv, peripheral=periph, speed=speed)
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        events, summary, live, _ = _run(capsys, tmp_path, cfg)

    sim = read_recording(sim_csv).data["foot"]
    rec = live.data["foot"]
    # The stream starts at t = 0 with the device's first sample; find which one that is
    # (a Polar device starts ACC and GYRO one after the other, a few samples apart).
    k0 = int(np.argmin(np.abs(sim.gyr[:100] - rec.gyr[0]).sum(axis=1)))
    t0 = float(sim.t_s[k0])
    assert k0 == 0 or profile == "polar_pmd"
    # every sample arrived, on the sensor's clock, with the sensor's resolution
    assert summary["lost_samples"]["foot"] == 0
    n = len(rec)
    assert n == int(np.sum((sim.t_s >= t0) & (sim.t_s - t0 < STOP_S)))
    np.testing.assert_allclose(rec.t_s + t0, sim.t_s[k0 : k0 + n], atol=1e-9)
    acc_fs, gyr_fs = 16 * 9.80665, 2000.0  # the sensors saturate at full scale
    exp_acc = np.clip(sim.acc[k0 : k0 + n], -acc_fs, acc_fs * 32767 / 32768)
    exp_gyr = np.clip(sim.gyr[k0 : k0 + n], -gyr_fs, gyr_fs * 32767 / 32768)
    np.testing.assert_allclose(rec.acc, exp_acc, atol=acc_fs / 32768)
    np.testing.assert_allclose(rec.gyr, exp_gyr, atol=gyr_fs / 32768)

    # replaying the live recording gives exactly the live run's strides ...
    rc = main(["replay", str(tmp_path / "live.csv"), "--fast", "--json", "--config", str(cfg)])
    assert rc == 0
    replay_live, _ = _events(capsys.readouterr().out)
    # (t_decided_s, the stream time a decision was made at, depends on how samples are
    # packed into batches: one per WitMotion notification, 50 ms packets in a replay)
    assert _strides(replay_live, decided=False) == _strides(events, decided=False)
    # ... and replaying the simulator's own recording the same strides, up to the
    # sensor's 16-bit resolution (which can move a contact found on a flat signal by a
    # few samples): same count and labels, nearly all contacts at the same sample
    rc = main(["replay", str(sim_csv), "--fast", "--json", "--config", str(cfg)])
    assert rc == 0
    replay_sim = [
        s
        for s in _strides(_events(capsys.readouterr().out)[0])
        if s["t_end_s"] < STOP_S + t0 and s["t_ic_s"] >= t0 + (0.5 if k0 else 0.0)
    ]
    live_strides = [s for s in _strides(events) if s["t_ic_s"] >= (0.5 if k0 else 0.0)]
    assert len(live_strides) >= 10
    assert len(live_strides) == len(replay_sim)
    same = 0
    for a, b in zip(live_strides, replay_sim, strict=True):
        assert a["label"] == b["label"]
        assert abs(a["t_ic_s"] + t0 - b["t_ic_s"]) <= 0.0201
        same += abs(a["t_ic_s"] + t0 - b["t_ic_s"]) < 1e-6
    assert same >= 0.9 * len(live_strides)


def test_polar_verity_sense_acc_at_52_hz_is_put_on_the_gyro_times(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Verity-like device: ACC at a quarter of the gyro rate, 8 g, delta frames."""
    dev = _device("polar_pmd", sim_csv, peripheral={"acc_decimation": 4}, speed=8.0)
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        events, summary, live, _ = _run(capsys, tmp_path, _config(tmp_path, "polar_pmd"))
    rec = live.data["foot"]
    sim = read_recording(sim_csv).data["foot"]
    k0 = int(np.argmin(np.abs(sim.gyr[:100] - rec.gyr[0]).sum(axis=1)))
    n = len(rec)
    assert summary["lost_samples"]["foot"] == 0
    np.testing.assert_allclose(np.diff(rec.t_s), 0.005, atol=1e-9)  # the gyro's 200 Hz
    np.testing.assert_allclose(rec.gyr, np.clip(sim.gyr[k0 : k0 + n], -2000, 2000), atol=0.07)
    # the accelerometer: exact on its own 50 Hz samples (to 8 g), interpolated between
    fs = 8 * 9.80665
    exp = np.clip(sim.acc[k0 : k0 + n], -fs, fs * 32767 / 32768)
    on_grid = (np.arange(k0, k0 + n) % 4) == 0
    np.testing.assert_allclose(rec.acc[on_grid], exp[on_grid], atol=fs / 32768)
    assert len(_strides(events)) >= 10


def test_lost_notifications_are_gaps_with_the_right_count(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = [30, 31, 32, 200, 401]  # notification numbers (1-based) the link loses
    dev = _device("open_imu", sim_csv, drop=drop, peripheral={"samples_per_packet": 8})
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        _, summary, live, _ = _run(capsys, tmp_path, _config(tmp_path, "open_imu"))
    assert summary["lost_notifications"]["foot"] == len(drop)
    assert summary["lost_samples"]["foot"] == 8 * len(drop)
    t = live.data["foot"].t_s
    steps = np.round(np.diff(t) * 200).astype(int)
    assert sorted(steps[steps > 1].tolist()) == [9, 9, 25]  # 8, 8 and 24 samples missing
    # the gaps sit where the dropped packets were: packet k holds samples 8(k-1) .. 8k-1
    gap_starts = np.round(t[1:][steps > 1] * 200).astype(int).tolist()
    assert gap_starts == [8 * 32, 8 * 200, 8 * 401]


def test_bad_notifications_are_counted_and_skipped_and_the_run_goes_on(
    env: str,
    sim_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = bytes.fromhex("01 01 0000 00000000 8813 10 10") + bytes(12)
    junk = {  # after notification number: what a corrupt firmware or link sends
        "10": "",  # empty
        "50": "0102",  # shorter than a header
        "120": "ff" * 40,  # random bytes
        "300": "02" + good.hex()[2:],  # an unknown format
        "301": good.hex()[:-4],  # a sample cut short
    }
    dev = _device("open_imu", sim_csv, inject=junk, peripheral={"samples_per_packet": 8})
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        _, summary, live, _ = _run(capsys, tmp_path, _config(tmp_path, "open_imu"))
    assert summary["bad_notifications"]["foot"] == len(junk)
    assert summary["lost_samples"]["foot"] == 0
    sim = read_recording(sim_csv).data["foot"]
    rec = live.data["foot"]
    assert len(rec) == int(np.sum(sim.t_s < STOP_S))  # every sample, none invented
    np.testing.assert_allclose(rec.t_s, sim.t_s[: len(rec)], atol=1e-9)
    assert "skipped a bad notification (1 so far): open_imu packet of 0 bytes" in caplog.text


def test_link_drop_reconnects_and_the_recording_continues(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _device("open_imu", sim_csv, drop_link_at_s=12.0, away_s=0.5)
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        cfg = _config(tmp_path, "open_imu", head="[estimator]\nbaseline_strides = 5")
        events, summary, live, _ = _run(capsys, tmp_path, cfg)
    links = [e for e in events if e["type"] == "link"]
    assert [e["up"] for e in links] == [False, True]
    assert summary["reconnects"]["foot"] == 1
    cues = [e["id"] for e in events if e["type"] == "cue"]
    assert "sensor_lost" in cues and "sensor_back" in cues
    # one recording, strictly increasing, with a gap where the link was down, and the
    # samples after it still on the sensor's clock (same values at the same times)
    rec = live.data["foot"]
    sim = read_recording(sim_csv).data["foot"]
    gaps = np.flatnonzero(np.diff(rec.t_s) > 0.05)
    assert len(gaps) == 1
    t_down, t_up = rec.t_s[gaps[0]], rec.t_s[gaps[0] + 1]
    assert 11.9 <= t_down <= 12.1 and t_up > t_down + 0.5 * 8.0 * 0.5
    assert rec.t_s[-1] > STOP_S - 0.1
    idx = np.rint(rec.t_s * 200).astype(int)
    fs = 16 * 9.80665
    exp = np.clip(sim.acc[idx], -fs, fs * 32767 / 32768)
    np.testing.assert_allclose(rec.acc, exp, atol=fs / 32768)
    # strides go on after the reconnect, numbered on, with the relaxed baseline kept
    strides = _strides(events)
    before = [s for s in strides if s["t_end_s"] <= t_down]
    after = [s for s in strides if s["t_ic_s"] >= t_up]
    assert before[-1]["baseline_ready"]
    assert after and all(s["baseline_ready"] for s in after)
    assert after[0]["stride"] > before[-1]["stride"]


def test_a_stalled_stream_is_reconnected(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the sensor stays connected but stops sending at 5 s: after stall_timeout_s (5 s
    # of host time, 15 s of this 3x device) the link is dropped and set up again
    dev = _device("open_imu", sim_csv, stall_at_s=5.0, speed=3.0)
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        events, summary, live, _ = _run(capsys, tmp_path, _config(tmp_path, "open_imu"))
    assert [e["up"] for e in events if e["type"] == "link"] == [False, True]
    assert summary["reconnects"]["foot"] == 1
    t = live.data["foot"].t_s
    gaps = np.flatnonzero(np.diff(t) > 0.05)
    assert len(gaps) == 1 and 4.9 <= t[gaps[0]] <= 5.1
    assert t[-1] > STOP_S - 0.1


def test_wrong_device_is_a_clear_message(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _device("witmotion", sim_csv)  # the pinned address is a WitMotion ...
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        rc = main(
            [
                "run",
                "--config",
                str(_config(tmp_path, "open_imu")),  # ... config: open
                "--out",
                str(tmp_path / "x.csv"),
                "--connect-timeout",
                "5",
            ]
        )
    err = capsys.readouterr().err
    assert rc == 4
    assert f"device {ADDR} is not a open IMU profile (DIY)" in err
    assert "companion scan" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_missing_device_is_a_clear_message(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_bluez(env, {"devices": [_device("open_imu", sim_csv)]}, tmp_path):
        cfg = _config(tmp_path, "open_imu", address="C0:FF:EE:99:99:99")
        rc = main(["run", "--config", str(cfg), "--connect-timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 4
    assert "no device with address C0:FF:EE:99:99:99 found" in err and "Traceback" not in err


@pytest.mark.parametrize("setup", ["no adapter", "BlueZ not running", "no system bus"])
def test_missing_adapter_is_a_clear_message(
    setup: str,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if setup == "no system bus":
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-socket")
    cmd = ["run", "--config", str(_config(tmp_path, "open_imu")), "--connect-timeout", "2",
           "--out", str(tmp_path / "x.csv")]  # fmt: skip
    if setup == "no adapter":
        with fake_bluez(env, {"adapter": False, "devices": []}, tmp_path):
            rc = main(cmd)
    else:  # nothing owns org.bluez on the bus, or there is no bus at all
        rc = main(cmd)
    err = capsys.readouterr().err
    assert rc == 4
    assert "no usable Bluetooth adapter" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_ctrl_c_stops_cleanly_with_a_flushed_recording_and_a_summary(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "ctrl_c.csv"
    seen_rows: list[int] = []

    def runner_presses_ctrl_c() -> None:
        # while the run goes on, the recording on disk already holds recent samples
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if out_csv.exists():
                rows = sum(1 for line in out_csv.open() if line[:1].isdigit())
                if rows > 2000:
                    seen_rows.append(rows)
                    break
        time.sleep(1.2)  # flush_interval_s is at most 1 s
        seen_rows.append(sum(1 for line in out_csv.open() if line[:1].isdigit()))
        os.kill(os.getpid(), signal.SIGINT)

    dev = _device("open_imu", sim_csv, speed=2.0)
    with fake_bluez(env, {"devices": [dev]}, tmp_path):
        timer = threading.Thread(target=runner_presses_ctrl_c, daemon=True)
        timer.start()
        rc = main(["run", "--config", str(_config(tmp_path, "open_imu")), "--out", str(out_csv)])
        timer.join(5)
    out = capsys.readouterr().out
    assert rc == 0
    assert "summary:" in out and "foot link: 0 samples lost" in out
    assert len(seen_rows) == 2 and seen_rows[1] > seen_rows[0]  # flushed while running
    rec = read_recording(out_csv)  # complete: no truncated last line
    assert len(rec.data["foot"]) >= seen_rows[1]
    assert f"recording: {out_csv} ({len(rec.data['foot'])} samples)" in out


def test_two_sensors_stream_together_into_one_recording(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim_csv = running_recording(tmp_path / "two.csv", 16.0, sensors=("left_foot", "right_foot"))
    devices, tables = [], []
    for i, name in enumerate(("left_foot", "right_foot")):
        addr = f"C0:FF:EE:00:02:0{i}"
        dev = _device("open_imu", sim_csv, address=addr, sensor=name)
        devices.append(dev)
        tables.append(f'[[sensors]]\nname = "{name}"\nprofile = "open_imu"\naddress = "{addr}"')
    cfg = tmp_path / "two.toml"
    cfg.write_text('[voice]\noutput = "console"\n' + "\n".join(tables) + "\n")
    with fake_bluez(env, {"devices": devices}, tmp_path):
        rc = main(["run", "--config", str(cfg), "--json", "--seconds", "15.0",
                   "--out", str(tmp_path / "live2.csv")])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    events, summary = _events(captured.out)
    live = read_recording(tmp_path / "live2.csv")
    sim = read_recording(sim_csv)
    assert set(live.data) == {"left_foot", "right_foot"}
    for name in live.data:
        assert summary["lost_samples"][name] == 0
        rec = live.data[name]
        # each sensor on its own clock, shifted onto one time line by < 0.5 s
        offset = rec.t_s[0]
        assert 0.0 <= offset < 0.5
        k = len(rec)
        np.testing.assert_allclose(rec.t_s - offset, sim.data[name].t_s[:k], atol=1e-9)
    assert sum(summary["strides"].values()) >= 8
    rc = main(["replay", str(tmp_path / "live2.csv"), "--fast", "--json", "--config", str(cfg)])
    replay, _ = _events(capsys.readouterr().out)
    assert rc == 0

    def by_sensor(ev: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(_strides(ev, decided=False), key=lambda e: (e["sensor"], e["stride"]))

    assert by_sensor(replay) == by_sensor(events)


def test_run_saves_the_baseline_it_learned_for_the_runners_next_run(
    env: str, sim_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = tmp_path / "profiles"
    head = f'[run]\nprofile_dir = "{profiles}"\n[estimator]\nbaseline_strides = 8'
    cfg = _config(tmp_path, "open_imu", head=head)
    short = tmp_path / "short.csv"
    with fake_bluez(env, {"devices": [_device("open_imu", sim_csv)]}, tmp_path):
        # too short to learn from: one clear error, the recording kept, no profile
        rc = main(["run", "--config", str(cfg), "--seconds", "2", "--out", str(short),
                   "--save-profile", "--runner", "ana"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0 and "no relaxed baseline" in err and str(short) in err
    assert "Traceback" not in err
    assert len(read_recording(short).data["foot"]) > 100
    assert not (profiles / "ana.json").exists()
    with fake_bluez(env, {"devices": [_device("open_imu", sim_csv)]}, tmp_path):
        events, _, _, captured = _run(capsys, tmp_path, cfg, "--save-profile", "--runner", "ana")
    assert (profiles / "ana.json").exists() and "'ana'" in captured.err
    learned = json.loads((profiles / "ana.json").read_text())["learned"]
    assert learned["kind"] == "live run" and learned["source"] == str(tmp_path / "live.csv")
    assert [s["name"] for s in learned["sensors"]] == ["foot"] and learned["recorded_at"]
    learning = _strides(events)
    assert learning and not learning[0]["baseline_ready"]  # this run had a baseline period
    # the runner's next run labels from its first stride
    rc = main(["replay", str(tmp_path / "live.csv"), "--fast", "--json", "--runner", "ana",
               "--config", str(cfg)])  # fmt: skip
    assert rc == 0
    again = _strides(_events(capsys.readouterr().out)[0])
    assert len(again) >= 10 and all(s["baseline_ready"] for s in again)


def test_a_pipeline_that_fell_behind_gets_what_queued_as_one_batch(
    env: str, sim_csv: Path, tmp_path: Path
) -> None:
    from companion.config import config_from_dict
    from companion.source.ble.source import BleSource
    from companion.types import SampleBatch

    cfg = config_from_dict({"sensors": [{"name": "foot", "profile": "open_imu", "address": ADDR}]})

    async def consume() -> tuple[list[int], np.ndarray]:
        source = BleSource(list(cfg.sensors), stop_after_s=3.0)
        sizes: list[int] = []
        times: list[np.ndarray] = []
        try:
            async for item in source.batches():
                if isinstance(item, SampleBatch):
                    sizes.append(len(item))
                    times.append(item.t_s)
                    if len(sizes) == 3:
                        time.sleep(0.5)  # a slow moment: notifications queue up meanwhile
        finally:
            await source.aclose()
        return sizes, np.concatenate(times)

    with fake_bluez(env, {"devices": [_device("open_imu", sim_csv, speed=1.0)]}, tmp_path):
        sizes, t = asyncio.run(consume())
    per_notification = sizes[0]
    assert max(sizes) >= 5 * per_notification  # the queued ones came as one batch
    assert np.all(np.abs(np.diff(t) - 0.005) < 1e-9)  # every sample, in order, none lost
    assert t[-1] >= 2.9
