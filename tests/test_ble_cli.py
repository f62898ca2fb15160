"""`companion run` / `scan` pieces that need no Bluetooth: status line, config mistakes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from companion.cli import main
from companion.source.ble.cli import StatusLine
from companion.source.ble.scan import Found


def test_status_line_only_on_a_terminal() -> None:
    buf = io.StringIO()
    off = StatusLine(buf, enabled=False)
    off.show("foot: up 200.0 Hz")
    off.clear()
    assert buf.getvalue() == ""
    on = StatusLine(buf, enabled=True)
    on.show("foot: up 200.0 Hz")
    on.print_above("[  12.0 s] relax_ankle: Relax the ankle.")
    text = buf.getvalue()
    # the cue is printed on its own line and the status line is drawn again under it
    assert text.endswith("\r\x1b[K[  12.0 s] relax_ankle: Relax the ankle.\nfoot: up 200.0 Hz")


def test_status_line_off_terminal_prints_cues_as_plain_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    StatusLine(io.StringIO(), enabled=False).print_above("[   1.0 s] heel_down: Heel down.")
    assert capsys.readouterr().out == "[   1.0 s] heel_down: Heel down.\n"


def test_status_line_shows_bad_notifications_once_there_are_some() -> None:
    from collections import Counter
    from types import SimpleNamespace

    from companion.source.ble.cli import status_text
    from companion.source.ble.source import LinkStats

    link = SimpleNamespace(
        stats=LinkStats(state="up", battery_pct=71),
        clock=SimpleNamespace(loss_fraction=0.0),
        bad_notifications=0,
    )
    source = SimpleNamespace(links={"foot": link})
    pipeline = SimpleNamespace(last_label={}, summary=SimpleNamespace(strides=Counter()))
    assert "bad" not in status_text(source, pipeline, 0.0)
    link.bad_notifications = 3
    assert "loss  0.0% bad 3 batt 71%" in status_text(source, pipeline, 0.0)


def test_run_without_a_pinned_sensor_says_how_to_pin_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[voice]\noutput = "console"\n')
    assert main(["run", "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert "no sensor is pinned" in err and "companion scan" in err


def test_run_with_an_unknown_profile_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[sensors]]\nname = "foot"\nprofile = "polr_pmd"\n')
    assert main(["run", "--config", str(cfg)]) == 2
    assert "did you mean 'polar_pmd'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [("--connect-timeout", "-3"), ("--seconds", "0")])
def test_run_refuses_a_time_that_is_not_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: tuple[str, str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[sensors]]\nname = "foot"\nprofile = "open_imu"\n[voice]\noutput = "console"\n'
    )
    with pytest.raises(SystemExit) as exc:  # refused as the command line is read
        main(["run", "--config", str(cfg), *flag])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag[0]}: {flag[1]}: must be between" in err


def test_scan_config_lines_pin_the_device() -> None:
    f = Found("OpenIMU-7", "C0:FF:EE:00:00:07", -50, "open_imu", "open IMU", 90)
    assert f.config_lines("left_foot") == [
        "[[sensors]]",
        'name = "left_foot"',
        'profile = "open_imu"',
        'address = "C0:FF:EE:00:00:07"',
        'device_name = "OpenIMU-7"',
    ]
