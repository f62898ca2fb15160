"""The coach's and tester's tools as a user runs them: ``tune``, ``profiles``, and the
progress of long commands (shown on a terminal, never in a pipe)."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from companion import progress as progmod
from companion.cli import main
from companion.estimator.classify import Baseline, FeatureStats, classify
from companion.estimator.profile import RunnerProfile
from companion.estimator.settings import EstimatorSettings
from companion.source.simulator import RunnerParams, parse_faults, simulate, write_simulation

ROOT = Path(__file__).resolve().parents[1]
KEY = "estimator.forced_dorsiflexion_deg"


@pytest.fixture(scope="module")
def run_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100 s foot run with toes held up from 40 to 70 s, and its ground truth."""
    out = tmp_path_factory.mktemp("rec") / "run.csv"
    run = simulate(
        100.0,
        100.0,
        runner=RunnerParams(),
        faults=parse_faults("forced_dorsiflexion@40-70"),
        seed=11,
    )
    write_simulation(run, out)
    return out


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    p = tmp_path / "coach.toml"
    text = (ROOT / "config.example.toml").read_text()
    p.write_text(text.replace('profile_dir = ""', f'profile_dir = "{tmp_path / "profiles"}"'))
    return p


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- tune
def test_tune_shows_what_a_threshold_changes_side_by_side(run_csv, cfg_file, capsys, monkeypatch):
    from companion import replaying

    reads = []
    orig = replaying.read_recording
    monkeypatch.setattr(replaying, "read_recording", lambda p: reads.append(p) or orig(p))
    before = cfg_file.read_bytes()
    code, out, err = _run(capsys, "tune", str(run_csv), "--set", f"{KEY}=40", "-c", str(cfg_file))
    assert code == 0, err
    assert len(reads) == 1
    assert cfg_file.read_bytes() == before  # nothing written without --write
    default = EstimatorSettings().forced_dorsiflexion_deg
    assert f"changed: {KEY} {default} -> 40.0" in out
    assert "ground truth: run.labels.csv" in out
    sections: dict[str, dict[str, list[str]]] = {}
    for line in out.splitlines():
        if line and not line.startswith(" "):
            rows = sections.setdefault(line.split(" (")[0], {})
        elif line.strip():
            rows[line.split()[0]] = line.split()[1:]
    # toes held up: labelled and cued at 8 degrees, not at 40
    labels, cues = sections["strides labelled"], sections["cues"]
    f1 = sections["F1 against the ground truth"]
    assert int(labels["forced_dorsiflexion"][0]) > 10 and labels["forced_dorsiflexion"][1] == "0"
    assert int(cues["soft_landing"][0]) >= 1 and cues["soft_landing"][1] == "0"
    assert float(f1["forced_dorsiflexion"][0]) > 0.9 and f1["forced_dorsiflexion"][1] == "0.000"
    times = out.split("cue times (s of stream)")[1]
    assert "soft_landing" in times and "current" in times and "tuned" in times


def test_tune_sweep_reads_once_and_gives_one_row_per_value(run_csv, capsys, monkeypatch):
    from companion import replaying

    reads = []
    orig = replaying.read_recording
    monkeypatch.setattr(replaying, "read_recording", lambda p: reads.append(p) or orig(p))
    code, out, err = _run(capsys, "tune", str(run_csv), "--sweep", f"{KEY}=4:40:12", "--json")
    assert code == 0, err
    assert len(reads) == 1
    res = json.loads(out)
    names = [s["name"] for s in res["settings"]]
    default = EstimatorSettings().forced_dorsiflexion_deg
    assert names == [f"current ({default})", "4", "16", "28", "40"]
    dorsi = [s["labels"]["forced_dorsiflexion"] for s in res["settings"]]
    assert dorsi[1] >= dorsi[0] >= dorsi[2] >= dorsi[4] == 0  # higher threshold, fewer
    assert res["settings"][0]["f1"]["forced_dorsiflexion"] > 0.9
    assert res["settings"][0]["cues"]["soft_landing"][0] > 40.0  # cued, with its time
    code, out, _ = _run(capsys, "tune", str(run_csv), "--sweep", f"{KEY}=4:40:12")
    assert code == 0
    table = out.splitlines()
    head = next(i for i, line in enumerate(table) if line.startswith(KEY))
    assert [line.split()[0] for line in table[head + 1 : head + 6]] == [
        "current",
        *["4", "16", "28", "40"],
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "estimator.forced_dorsi_deg=6"], "did you mean 'forced_dorsiflexion_deg'"),
        (["--set", "estimatr.forced_dorsiflexion_deg=6"], "did you mean 'estimator'"),
        (["--set", "forced_dorsiflexion_deg=6"], f"did you mean {KEY}?"),
        (["--set", f"{KEY}=60"], "must be between 2.0 and 45.0 deg"),
        (["--set", "estimator.baseline_strides=6.5"], "expected an integer"),
        (["--set", "voice.output=consol"], "did you mean 'console'"),
        (["--set", KEY], "give KEY=VALUE"),
        (["--sweep", f"{KEY}=4:64:20"], "= 64.0: must be between 2.0 and 45.0"),
        (["--sweep", f"{KEY}=10:4:2"], "A <= B"),
        (["--sweep", f"{KEY}=a:b"], "KEY=A:B:STEP"),
        (["--sweep", f"{KEY}=4:8:1", "--set", f"{KEY}=5"], "give it once"),
        (["--sweep", f"{KEY}=4:8:1", "--write", "x.toml"], "pick a value from the sweep"),
        ([], "at least one --set"),
    ],
)
def test_tune_checks_values_as_the_config_does(run_csv, capsys, args, message) -> None:
    code, out, err = _run(capsys, "tune", str(run_csv), *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err


def test_tune_write_keeps_the_file_apart_from_the_changed_value(run_csv, cfg_file, capsys):
    before = cfg_file.read_text().splitlines()
    code, out, err = _run(
        capsys,
        "tune",
        str(run_csv),
        "-c",
        str(cfg_file),
        "--set",
        f"{KEY}=7",
        "--write",
        str(cfg_file),
    )
    assert code == 0, err
    assert f"wrote {KEY} = 7.0 to {cfg_file}" in out
    after = cfg_file.read_text().splitlines()
    assert len(after) == len(before)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("forced_dorsiflexion_deg = 6.0", "forced_dorsiflexion_deg = 7.0")]
    # a setting the file does not have goes into its section; a new file starts from --config
    new = cfg_file.with_name("variant.toml")
    args = ["tune", str(run_csv), "-c", str(cfg_file), "--set", "coach.cooldown_s=4"]
    assert _run(capsys, *args, "--write", str(new))[0] == 0
    lines = new.read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("cooldown_s")] == ["cooldown_s = 4.0"]
    assert "forced_dorsiflexion_deg = 7.0" in lines and lines[0] == after[0]
    from companion.config import load_config

    assert load_config(new).coach.cooldown_s == 4.0


# --------------------------------------------------------------------------- profiles
def _stats() -> dict[str, FeatureStats]:
    return {
        "landing_deg": FeatureStats(18.0, 0.5),
        "landing_peak_deg": FeatureStats(20.0, 0.5),
        "strike_angle_deg": FeatureStats(15.0, 0.5),
        "stride_range_deg": FeatureStats(100.0, 2.0),
        "stance_still_dps": FeatureStats(15.0, 3.0),
        "pushoff_deg": FeatureStats(-80.0, 2.0),
    }


@pytest.mark.parametrize("with_ankle", [False, True])
def test_the_limits_shown_are_the_ones_the_classifier_applies(with_ankle: bool) -> None:
    from companion.profiles_cli import judged_against

    stats = _stats()
    if with_ankle:
        stats["ankle_rom_deg"] = FeatureStats(40.0, 1.0)
    settings = EstimatorSettings()
    limits = judged_against("foot", stats, settings)
    assert {lim.label for lim in limits} == {
        "forced_dorsiflexion",
        "forced_plantarflexion",
        "rigid",
    }
    base = Baseline("foot", 20, dict(stats))
    medians = {k: s.median for k, s in stats.items()}
    assert classify(medians, base, settings).label.value == "relaxed"
    for lim in limits:
        stride = dict(medians)
        if "foot sensor alone" in lim.note:
            del stride["ankle_rom_deg"]  # a run without the shank: no ankle features
        step = 0.01 if lim.above else -0.01
        past = classify({**stride, lim.feature: lim.limit + step}, base, settings)
        short = classify({**stride, lim.feature: lim.limit - step}, base, settings)
        assert past.label.value == lim.label, lim
        assert short.label.value == "relaxed", lim


def test_profiles_list_show_delete(run_csv, cfg_file, capsys, tmp_path) -> None:
    c = ["-c", str(cfg_file)]
    code, out, _ = _run(capsys, "profiles", *c)
    assert code == 0 and "no runner profiles" in out and "--save-profile" in out
    code, _, err = _run(
        capsys, "replay", str(run_csv), "--fast", "--json", "--save-profile", "--runner", "ana", *c
    )
    assert code == 0, err
    folder = tmp_path / "profiles"
    # a profile saved before the note was kept, and a damaged one
    old = {"format": "companion-profile/1", "runner": "bo", "segments": {"foot": {
        "landing_peak_deg": {"median": 10.0, "mad": 1.0}}}, "strides": {"foot": 20}}  # fmt: skip
    (folder / "bo.json").write_text(json.dumps(old))
    (folder / "cy.json").write_text("{ not json")
    code, out, _ = _run(capsys, "profiles", "list", *c)
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert set(lines) == {"ana", "bo", "cy"}
    assert "from the recording" in lines["ana"] and str(run_csv) in lines["ana"]
    assert "foot (foot, right, 100 Hz, simulator)" in lines["ana"]
    assert "not kept" in lines["bo"] and "damaged" in lines["cy"]
    code, out, _ = _run(capsys, "profiles", "show", "ana", *c)
    assert code == 0
    assert "forced_dorsiflexion    landing angle above" in out
    assert "forced_dorsiflexion_deg = 6" in out and "landing_deg" in out
    code, out, _ = _run(capsys, "profiles", "show", "ana", "--json", *c)
    shown = json.loads(out)
    assert shown["learned"]["kind"] == "recording" and shown["learned"]["saved_at"]
    assert {lim["label"] for lim in shown["judged_against"]["foot"]} >= {"rigid"}
    assert RunnerProfile.load(folder / "bo.json").learned is None  # old ones still read
    for bad in ("../ana", "/etc/passwd", "..", "zed"):
        code, _, err = _run(capsys, "profiles", "delete", bad, *c)
        assert code == 2 and "Traceback" not in err, bad
    assert (folder / "ana.json").exists()
    for name in ("ana", "cy"):  # a damaged one can be deleted too
        code, out, _ = _run(capsys, "profiles", "delete", name, *c)
        assert code == 0 and not (folder / f"{name}.json").exists()
    assert (folder / "bo.json").exists()


# --------------------------------------------------------------------------- progress
def test_progress_draws_on_a_terminal_after_a_moment_and_clears() -> None:
    now = [0.0]
    term = Terminal()
    with progmod.Progress("replay x", 200.0, unit="s", stream=term, clock=lambda: now[0]) as p:
        p.update(10)
        assert term.getvalue() == ""  # quick work shows nothing
        now[0] = 1.0
        p.update(100)
        assert "replay x [##########..........]  50% 100/200 s, 0:01 left" in term.getvalue()
        p.print("warning: something")
        assert term.getvalue().endswith("\r\x1b[Kwarning: something\n")
        p.update(150)  # drawn again at once below the line printed
        assert term.getvalue().endswith(
            "\n\r\x1b[Kreplay x [###############.....]  75% 150/200 s, 0:00 left"
        )
    assert term.getvalue().endswith("left\r\x1b[K")  # erased at the end
    piped = io.StringIO()
    with progmod.Progress("replay x", 200.0, stream=piped, clock=lambda: now[0], delay_s=0) as p:
        p.update(100)
        p.print("warning: something")
    assert piped.getvalue() == "warning: something\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "{rec}", "--fast", "--json"],
        ["score", "{dir}"],
        ["tune", "{rec}", "--sweep", f"{KEY}=6:10:2"],
        [
            "evaluate",
            "--runners",
            "1",
            "--minutes",
            "2",
            "--relaxed-minutes",
            "0",
            "--setups",
            "foot",
        ],
    ],
)
def test_long_commands_show_progress_on_a_terminal_only(argv, run_csv, capsys, monkeypatch) -> None:
    monkeypatch.setattr(progmod, "DELAY_S", 0.0)
    monkeypatch.setenv("TERM", "xterm")
    args = [a.format(rec=run_csv, dir=run_csv.parent) for a in argv]
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(args) == 0
    shown = term.getvalue()
    assert f"{argv[0]} " in shown and "%" in shown and shown.endswith("\r\x1b[K"), shown
    out_tty = capsys.readouterr().out
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert main(args) == 0
    assert piped.getvalue() == ""
    assert capsys.readouterr().out == out_tty  # the results do not change


def test_progress_reaches_a_real_terminal_and_not_a_pipe(run_csv, tmp_path) -> None:
    """``companion tune --sweep`` as a user runs it: stderr a pty, then a pipe."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    argv = ["tune", str(run_csv), "--sweep", f"{KEY}=2:44:14"]
    # the command as installed, but showing progress at once (not after DELAY_S)
    code = (
        "import sys, companion.progress as p; p.DELAY_S = 0.0; from companion.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    cmd = [sys.executable, "-c", code, *argv]
    main_fd, sub_fd = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sub_fd, env=env)
    os.close(sub_fd)
    chunks = []
    while True:  # read as it comes (a full pty would stall the command)
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    stdout = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0
    shown = b"".join(chunks).decode()
    assert "tune run.csv [" in shown and "settings" in shown
    piped = subprocess.run(cmd, capture_output=True, env=env, timeout=300, text=True)
    assert piped.returncode == 0 and piped.stderr == ""
    assert piped.stdout == stdout.decode()
