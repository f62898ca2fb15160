"""The ``companion`` command end to end, as a user runs it (a subprocess, real pipeline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FAULT_WINDOWS = {  # the demo's faults (simulator DEMO_FAULTS) and the cue that answers each
    "relax_ankle": (60.0, 90.0),
    "soft_landing": (100.0, 130.0),
    "heel_down": (140.0, 170.0),
}
# A cue may come at most this long after its fault segment ends (k-of-n strides + a stride).
LATE_S = 5.0


def companion(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "companion", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def console_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config that prints cues instead of playing them (CI has no default sound card)."""
    p = tmp_path_factory.mktemp("cfg") / "console.toml"
    p.write_text('[voice]\noutput = "console"\n')
    return p


@pytest.fixture(scope="module")
def demo_json(console_config: Path) -> list[dict]:
    res = companion("demo", "--fast", "--json", "--config", str(console_config))
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_demo_prints_cues_for_each_fault_and_none_in_the_warm_up(console_config: Path) -> None:
    t0 = time.monotonic()
    res = companion("demo", "--fast", "--config", str(console_config))
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for cue_id in FAULT_WINDOWS:
        assert cue_id in out, f"no {cue_id} cue in:\n{out}"
    assert "summary:" in out and "strides" in out and "cadence" in out
    assert "Traceback" not in res.stderr
    assert elapsed < 60, f"demo --fast took {elapsed:.1f} s"


def test_demo_cues_fall_inside_their_fault_segments(demo_json: list[dict]) -> None:
    cues = [e for e in demo_json if e["type"] == "cue"]
    fault_cues = [c for c in cues if c["id"] in FAULT_WINDOWS]
    assert all(c["t_s"] >= 60.0 for c in cues), f"cue during the relaxed warm-up: {cues}"
    for cue_id, (start, end) in FAULT_WINDOWS.items():
        times = [c["t_s"] for c in fault_cues if c["id"] == cue_id]
        assert times, f"no {cue_id} cue"
        assert all(start <= t <= end + LATE_S for t in times), (cue_id, times)
    assert all(c["text"] for c in cues)
    strides = [e for e in demo_json if e["type"] == "stride"]
    assert len(strides) > 150  # 3 min at ~85 strides/min for one foot
    summary = demo_json[-1]
    assert summary["type"] == "summary" and 150 <= summary["cadence_spm"]["foot"] <= 190


def test_simulate_then_replay_is_byte_identical(tmp_path: Path, console_config: Path) -> None:
    rec = tmp_path / "run.csv"
    res = companion(
        "simulate",
        "--out",
        str(rec),
        "--minutes",
        "1",
        "--seed",
        "3",
        "--faults",
        "rigid@30-60",
    )
    assert res.returncode == 0, res.stderr
    assert rec.exists() and (tmp_path / "run.labels.csv").exists()
    a = companion("replay", str(rec), "--fast", "--json", "--config", str(console_config))
    b = companion("replay", str(rec), "--fast", "--json", "--config", str(console_config))
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    events = [json.loads(x) for x in a.stdout.splitlines()]
    stride = next(e for e in events if e["type"] == "stride")
    for key in ("sensor", "t_ic_s", "t_to_s", "label"):
        assert key in stride


def test_replay_of_a_broken_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "t_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0.0,foot,1,2,x,4,5,6\n0.1,foot,1,2,3,4,5,6\n"
    )
    res = companion("replay", str(bad), "--fast")
    assert res.returncode == 3
    assert "line 2" in res.stderr and "acc_z" in res.stderr
    assert "Traceback" not in res.stderr


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    res = companion("simulate", "--out", str(tmp_path / "x.csv"), "--faults", "wobbly@1-2")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "wobbly" in res.stderr


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[coach]\ncooldown = 3\npersist_k = 0\n[voice]\nvolume = 2.0\n")
    res = companion("check-config", str(cfg))
    assert res.returncode == 2
    assert "coach.cooldown" in res.stdout and "did you mean 'cooldown_s'" in res.stdout
    assert "coach.persist_k = 0" in res.stdout and "voice.volume = 2.0" in res.stdout
    ok = companion("check-config", str(ROOT / "config.example.toml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_simulate_into_a_folder_is_one_clear_error(tmp_path: Path) -> None:
    res = companion("simulate", "--out", str(tmp_path), "--minutes", "0.1")
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr and "cannot write: Is a directory" in res.stderr


def test_simulate_rejects_a_fault_after_the_run_ends(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    res = companion("simulate", "--out", str(out), "--minutes", "0.1", "--faults", "rigid@500-600")
    assert res.returncode == 4 and "starts after the run ends" in res.stderr
    assert not out.exists()


def test_check_config_of_a_binary_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_bytes(b"\xff\xfe\x00\x81")
    res = companion("check-config", str(bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not a text file" in res.stdout


def test_cues_say_a_typo_suggests_the_cue(console_config: Path) -> None:
    res = companion("cues", "say", "relax_ankel", "--config", str(console_config))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "did you mean 'relax_ankle'" in res.stderr
    res = companion("cues", "say", "relax_ankle", "--times", "0", "--config", str(console_config))
    assert res.returncode == 2 and "argument --times: 0: must be between 1 and 100" in res.stderr


def test_replay_warns_when_metadata_rate_contradicts_the_samples(
    tmp_path: Path, console_config: Path
) -> None:
    rec = tmp_path / "r.csv"
    assert (
        companion("simulate", "--out", str(rec), "--minutes", "0.2", "--rate", "50").returncode == 0
    )
    text = rec.read_text().replace("# sensor.foot.rate_hz: 50.0", "# sensor.foot.rate_hz: 1000")
    rec.write_text(text)
    res = companion("replay", str(rec), "--fast", "--config", str(console_config))
    assert res.returncode == 0, res.stderr
    assert "warning:" in res.stderr and "says 1000 Hz" in res.stderr
    assert "delete it to have the rate estimated" in res.stderr


@pytest.mark.parametrize("command", [("demo", "--fast"), ("simulate", "--out", "x.csv")])
def test_a_negative_seed_is_a_usage_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    res = companion(*command, "--seed", "-5", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "argument --seed: -5: must be between 0 and 4294967295" in res.stderr


def test_run_with_a_cue_missing_from_the_library_fails_before_connecting(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[sensors]]\nname = "foot"\n[coach]\ncue_rigid = "relax_ankel"\n')
    res = companion("run", "--config", str(cfg))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "relax_ankel" in res.stderr and "coach.cue_rigid" in res.stderr
    assert "Traceback" not in res.stderr and "connecting" not in res.stdout


def test_replay_of_a_gyro_in_rad_per_s_says_so(tmp_path: Path, console_config: Path) -> None:
    # a common mistake when converting another tool's recording: gyro left in rad/s
    from companion.source.recording import Recording, read_recording, write_recording
    from companion.source.simulator import RunnerParams, simulate
    from companion.types import SampleBatch

    run = simulate(40.0, 100.0, runner=RunnerParams(), seed=5)
    b = run.recording.data["foot"]
    wrong = SampleBatch(b.sensor, b.t_s, b.acc, np.radians(b.gyr))
    rec = tmp_path / "rad.csv"
    write_recording(rec, Recording(run.recording.sensors, {}, {"foot": wrong}))
    assert read_recording(rec).data["foot"].gyr.max() < 40.0
    res = companion("replay", str(rec), "--fast", "--config", str(console_config))
    assert res.returncode == 0, res.stderr
    assert "0 strides" in res.stdout
    assert "rad/s" in res.stdout and "deg/s" in res.stdout


def test_a_saved_profile_labels_the_next_run_from_its_first_stride(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[run]\nrunner = "ana"\nprofile_dir = "{tmp_path / "profiles"}"\n'
        '[voice]\noutput = "console"\n'
    )
    rec = tmp_path / "relaxed.csv"
    assert companion("simulate", "--out", str(rec), "--minutes", "1", "--seed", "4").returncode == 0
    saved = companion("replay", str(rec), "--fast", "--save-profile", "--config", str(cfg))
    assert saved.returncode == 0, saved.stderr
    prof = tmp_path / "profiles" / "ana.json"
    assert prof.exists() and "ana" in saved.stderr
    assert json.loads(prof.read_text())["runner"] == "ana"
    again = companion(
        "replay", str(rec), "--fast", "--json", "--runner", "ana", "--config", str(cfg)
    )
    assert again.returncode == 0, again.stderr
    strides = [e for e in map(json.loads, again.stdout.splitlines()) if e["type"] == "stride"]
    assert strides and all(e["baseline_ready"] for e in strides)
    # saving again learns afresh from the new recording: the saved baseline is replaced
    other = tmp_path / "other.csv"
    assert (
        companion("simulate", "--out", str(other), "--minutes", "1", "--seed", "9").returncode == 0
    )
    before = prof.read_text()
    res = companion("replay", str(other), "--fast", "--save-profile", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert prof.read_text() != before
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(cfg.read_text().replace(str(tmp_path / "profiles"), str(tmp_path / "fresh")))
    companion("replay", str(other), "--fast", "--save-profile", "--config", str(fresh))
    replaced, fresh_saved = (
        json.loads(f.read_text()) for f in (prof, tmp_path / "fresh" / "ana.json")
    )
    for p in (replaced, fresh_saved):  # the same, apart from when each was saved
        assert p["learned"].pop("saved_at")
    assert replaced == fresh_saved
    assert replaced["learned"]["kind"] == "recording"
    assert replaced["learned"]["source"] == str(other)
    assert replaced["learned"]["sensors"][0]["name"] == "foot"
    # too short a recording to learn from: one clear error, no file written
    short = tmp_path / "short.csv"
    assert companion("simulate", "--out", str(short), "--minutes", "0.1").returncode == 0
    res = companion(
        "replay", str(short), "--fast", "--save-profile", "--runner", "ana2", "--config", str(cfg)
    )
    assert res.returncode != 0 and "no relaxed baseline" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "profiles" / "ana2.json").exists()


def test_output_to_a_full_device_is_one_clear_error(tmp_path: Path, console_config: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "companion",
                "demo",
                "--fast",
                "--json",
                "--config",
                str(console_config),
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert res.returncode == 1
    assert "cannot write the output" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["replay", "run.csv"], 0),
        (["-v", "replay", "run.csv"], 1),
        (["replay", "run.csv", "-vv"], 2),
        (["cues", "list", "-v"], 1),
        (["run", "--verbose"], 1),
    ],
)
def test_verbose_works_before_or_after_the_command(argv: list[str], level: int) -> None:
    from companion.cli import build_parser

    assert build_parser().parse_args(argv).verbose == level


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runners", "0"], "argument --runners: 0: must be between 1 and 1000"),
        (
            ["--jitter", "0.9"],
            "argument --jitter: 0.9: must be between 0.0 and 0.45 sample periods",
        ),
    ],
)
def test_evaluate_refuses_bad_arguments_clearly(args: list[str], message: str) -> None:
    res = companion("evaluate", *args)
    assert res.returncode == 2 and message in res.stderr
    assert "Traceback" not in res.stderr
