"""The cue library a coach edits: loading, rotation, every mistake reported with file and key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from companion.config import Config, config_from_dict, load_config
from companion.errors import ConfigError
from companion.voice.library import CUES_DIR, check_config_problems, load_library
from companion.voice.settings import VoiceSettings
from companion.voice.sink import ConsoleSink, make_sink

ROOT = Path(__file__).resolve().parents[1]
POLICY_IDS = ["relax_ankle", "soft_landing", "toes_down", "heel_down", "good_ankle"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_english_library_has_every_cue_the_product_uses() -> None:
    lib = load_library(VoiceSettings())
    assert lib.path == CUES_DIR / "en.toml" and lib.path.is_file()
    for cid in [*POLICY_IDS, "sensor_lost", "sensor_back"]:
        assert cid in lib.ids
        assert lib.phrases(cid)
    assert check_config_problems(Config()) == []
    # link cues outrank technique cues; the positive cue yields to a fault cue
    assert lib.priority("sensor_lost") > lib.priority("relax_ankle") > lib.priority("good_ankle")
    assert lib.earcon("good_ankle") and all(100 <= t.hz <= 4000 for t in lib.earcon("good_ankle"))


def test_phrases_are_short_as_the_technique_asks() -> None:
    lib = load_library(VoiceSettings())
    for cid in POLICY_IDS:
        assert len(lib.phrases(cid)) >= 2, (
            f"{cid}: one phrasing only, the runner hears it every time"
        )
        for p in lib.phrases(cid):
            assert len(p.split()) <= 6, f"{cid}: {p!r} is long for a cue mid-stride"


def test_phrasings_rotate_so_the_same_words_do_not_come_every_time() -> None:
    lib = load_library(VoiceSettings())
    phrases = lib.phrases("relax_ankle")
    said = [lib.next_text("relax_ankle") for _ in range(2 * len(phrases))]
    assert said == list(phrases) * 2
    assert all(said[i] != said[i + 1] for i in range(len(said) - 1))


def test_a_coachs_own_file_is_found_relative_to_the_config(tmp_path: Path) -> None:
    write(
        tmp_path / "my_cues.toml",
        """
[cues.relax_ankle]
priority = 4
phrases = ["Shake it loose."]
""",
    )
    cfg_path = write(
        tmp_path / "coach.toml",
        '[voice]\nlibrary = "my_cues.toml"\n[coach]\ncue_rigid = "relax_ankle"\n',
    )
    cfg = load_config(cfg_path)
    lib = load_library(cfg.voice, cfg.resolve)
    assert lib.path == tmp_path / "my_cues.toml"
    assert lib.next_text("relax_ankle") == "Shake it loose." and lib.priority("relax_ankle") == 4
    assert lib.earcon("relax_ankle") == ()
    # the coach's file lacks the other cues the policy uses: each one is reported
    problems = check_config_problems(cfg)
    assert len(problems) == 5
    assert any("cues.soft_landing" in p and "coach.cue_forced_dorsiflexion" in p for p in problems)
    assert all(str(tmp_path / "my_cues.toml") in p for p in problems)
    # ... unless they are switched off: then only the enabled ones must exist
    cfg_path.write_text('[voice]\nlibrary = "my_cues.toml"\nenabled_cues = ["relax_ankle"]\n')
    assert check_config_problems(load_config(cfg_path)) == []


def test_every_mistake_in_a_cue_file_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.toml",
        """
langauge = "en"

[cues.relax_ankle]
priority = "high"
phrase = ["Relax the ankle."]

[cues.soft_landing]
priority = 5
phrases = ["Land soft.", "   ", 7]
earcon = [{ hz = 660 }, { hz = 90000, ms = 50, vol = 1 }]

[cues.heel_down]
phrases = []
""",
    )
    with pytest.raises(ConfigError) as err:
        load_library(VoiceSettings(library=str(path)))
    msg = str(err.value)
    assert str(path) in msg
    expected = [
        "langauge: unknown field (did you mean 'language'?)",
        "cues.relax_ankle.priority = 'high': expected an integer",
        "cues.relax_ankle.phrase: unknown field (did you mean 'phrases'?)",
        "cues.relax_ankle.phrases: missing",
        "cues.soft_landing.phrases[1]: empty phrase",
        "cues.soft_landing.phrases[2] = 7: expected a string",
        "cues.soft_landing.earcon[0].ms: missing",
        "cues.soft_landing.earcon[1].hz = 90000: must be between 100 and 4000 Hz",
        "cues.soft_landing.earcon[1].vol: unknown field",
        "cues.heel_down.phrases: empty list",
    ]
    for e in expected:
        assert e in msg, f"{e!r} not in:\n{msg}"
    assert len(err.value.problems) == len(expected)


def test_a_missing_or_broken_library_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cue library not found .*use one of en"):
        load_library(VoiceSettings(library="xx"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_library(VoiceSettings(library=str(write(tmp_path / "b.toml", "[cues\n"))))
    with pytest.raises(ConfigError, match="no cues"):
        load_library(VoiceSettings(library=str(write(tmp_path / "e.toml", 'language = "en"\n'))))


def test_check_config_names_the_missing_cue_and_the_key_that_asks_for_it(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", '[coach]\ncue_rigid = "loosen_up"\n'))
    (problem,) = check_config_problems(cfg)
    assert "cues.loosen_up" in problem and "coach.cue_rigid" in problem
    assert str(CUES_DIR / "en.toml") in problem and str(tmp_path / "c.toml") in problem
    cfg = load_config(
        write(tmp_path / "d.toml", '[voice]\nenabled_cues = ["relax_ankle", "god_ankle"]\n')
    )
    (problem,) = check_config_problems(cfg)
    assert "voice.enabled_cues[1] = 'god_ankle'" in problem and "'good_ankle'" in problem
    assert str(tmp_path / "d.toml") in problem


def test_companion_check_config_reports_cue_problems(tmp_path: Path) -> None:
    write(tmp_path / "cues.toml", '[cues.relax_ankle]\nphrases = ["Easy."]\nprioity = 3\n')
    cfg = write(tmp_path / "c.toml", '[voice]\nlibrary = "cues.toml"\n')
    res = subprocess.run(
        [sys.executable, "-m", "companion", "check-config", str(cfg)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "cues.relax_ankle.prioity: unknown field (did you mean 'priority'?)" in res.stdout
    assert str(tmp_path / "cues.toml") in res.stdout and "Traceback" not in res.stderr


def test_the_landing_earcon_is_a_soft_tone_only_cue_below_every_spoken_cue() -> None:
    lib = load_library(VoiceSettings())
    assert lib.tone_only("landing_tone") and lib.phrases("landing_tone") == ()
    assert lib.earcon("landing_tone") and lib.next_text("landing_tone") == ""
    assert all(not lib.tone_only(c) for c in lib.ids if c != "landing_tone")
    assert "" not in lib.texts()  # nothing to render for it
    spoken = [c for c in lib.ids if c != "landing_tone"]
    assert lib.priority("landing_tone") < min(lib.priority(c) for c in spoken)
    cfg = config_from_dict({"voice": {"landing_earcon": True, "spoken_fault_cues": False}})
    assert check_config_problems(cfg) == []


def test_check_config_knows_the_landing_earcon(tmp_path: Path) -> None:
    """A tone-only cue needs its tones; the landing cue must exist when the earcon is on (not
    when off), be tones only, and rank below every spoken cue (else it would cut one)."""
    with pytest.raises(ConfigError) as err:
        load_library(
            VoiceSettings(library=str(write(tmp_path / "t.toml", "[cues.tap]\nearcon = []\n")))
        )
    assert "cues.tap.earcon: empty; a cue without phrases needs at least one tone" in str(err.value)
    en = (CUES_DIR / "en.toml").read_text(encoding="utf-8")
    write(tmp_path / "loud.toml", en.replace("priority = 1\n", "priority = 3\n"))

    def problems(doc: str) -> list[str]:
        return check_config_problems(load_config(write(tmp_path / "c.toml", doc)))

    assert problems('[coach]\ncue_landing = "tap"\n') == []  # off: need not exist
    (p,) = problems('[voice]\nlanding_earcon = true\n[coach]\ncue_landing = "tap"\n')
    assert "cues.tap" in p and "coach.cue_landing" in p
    (p,) = problems('[voice]\nlanding_earcon = true\n[coach]\ncue_landing = "sensor_back"\n')
    assert "cues.sensor_back: the landing earcon" in p and "tones only" in p
    (p,) = problems('[voice]\nlanding_earcon = true\nlibrary = "loud.toml"\n')
    assert "cues.landing_tone.priority = 3: must be below every spoken cue's" in p
    assert "good_ankle has 3" in p and str(tmp_path / "loud.toml") in p
    # the words off and the tone off too: no fault would ever be cued
    with pytest.raises(ConfigError, match=r"voice\.spoken_fault_cues = false: with landing_earcon"):
        config_from_dict({"voice": {"spoken_fault_cues": False}})
    with pytest.raises(ConfigError, match=r"coach.landing_cooldown_s = -1.*between 0.0 and 60"):
        config_from_dict({"coach": {"landing_cooldown_s": -1}})


def test_console_sink_prints_stream_time_id_and_words() -> None:
    lines: list[str] = []
    lib = load_library(VoiceSettings())
    sink = make_sink(VoiceSettings(output="console"), lib, console=lines.append)
    assert isinstance(sink, ConsoleSink)
    from companion.types import Cue

    sink.play(Cue("relax_ankle", t_s=63.44, priority=5, text="Relax the ankle."))
    sink.play(Cue("landing_tone", t_s=63.9, priority=1, text=""))  # a tone: sound only
    sink.close()
    assert lines == ["[  63.4 s] relax_ankle: Relax the ankle."]


def test_auto_output_without_a_device_falls_back_to_the_console_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from companion.errors import AudioError

    lib = load_library(VoiceSettings())
    lines: list[str] = []
    with caplog.at_level("WARNING", logger="companion.voice"):
        sink = make_sink(
            VoiceSettings(), lib, console=lines.append, audio_device="no-such-device-xyz"
        )
    assert isinstance(sink, ConsoleSink)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "no-such-device-xyz" in warnings[0] and "companion audio-devices" in warnings[0]
    with pytest.raises(AudioError, match="no-such-device"):
        make_sink(
            VoiceSettings(output="audio"),
            lib,
            console=lines.append,
            audio_device="no-such-device-xyz",
        )
