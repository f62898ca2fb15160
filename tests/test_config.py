"""Config validation: each mistake gives a problem naming key, value and what is allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from companion.config import Config, config_from_dict, load_config
from companion.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        config_from_dict(data, "t.toml")
    return exc.value.problems


def test_defaults_are_valid() -> None:
    cfg = config_from_dict({})
    assert cfg == Config()
    assert cfg.coach.persist_k <= cfg.coach.persist_n


def test_example_config_is_valid_and_sets_every_key() -> None:
    path = ROOT / "config.example.toml"
    cfg = load_config(path)
    data = tomllib.loads(path.read_text())
    # every section of Config is documented in the example
    for section in ("run", "recording", "estimator", "coach", "voice"):
        assert section in data, f"config.example.toml lacks [{section}]"
        documented = set(data[section])
        known = set(getattr(cfg, section).__dataclass_fields__)
        assert documented == known, f"[{section}] example keys differ: {documented ^ known}"
    assert data.get("sensors"), "example should show a [[sensors]] table"


def test_unknown_key_has_did_you_mean() -> None:
    (p,) = problems_of({"coach": {"cooldown": 5}})
    assert "coach.cooldown" in p and "did you mean 'cooldown_s'" in p


def test_unknown_section() -> None:
    (p,) = problems_of({"voices": {}})
    assert "voices" in p and "did you mean 'voice'" in p


def test_wrong_type() -> None:
    (p,) = problems_of({"voice": {"rate_wpm": "fast"}})
    assert "voice.rate_wpm = 'fast'" in p and "integer" in p


def test_bool_is_not_a_number() -> None:
    (p,) = problems_of({"coach": {"cooldown_s": True}})
    assert "coach.cooldown_s" in p and "number" in p


def test_out_of_range_names_unit_and_limits() -> None:
    (p,) = problems_of({"estimator": {"forced_dorsiflexion_deg": 90}})
    assert "estimator.forced_dorsiflexion_deg = 90.0" in p
    assert "between 2.0 and 45.0 deg" in p


def test_bad_choice() -> None:
    (p,) = problems_of({"voice": {"output": "speaker"}})
    assert "voice.output = 'speaker'" in p and "'console'" in p


def test_cross_field_check() -> None:
    (p,) = problems_of({"coach": {"persist_k": 5, "persist_n": 3}})
    assert "persist_k = 5" in p and "persist_n" in p


def test_sensor_tables_are_checked_each() -> None:
    probs = problems_of(
        {"sensors": [{"name": "foot", "profile": "polar_pmd"}, {"name": "x", "rate_hz": 5}]}
    )
    assert any("sensors[1].rate_hz = 5.0" in p for p in probs)


def test_a_sensor_mount_is_checked_before_a_run() -> None:
    good = {"name": "foot", "mount": "x=-si,y=ap,z=-ml"}
    probs = problems_of({"sensors": [good, {"name": "shank", "mount": "sideways"}]})
    assert len(probs) == 1
    assert "sensors[1].mount: sensor mount 'sideways' is not understood" in probs[0]
    assert 'mount = "ap,ml,si"' in probs[0]  # says how to write one


def test_every_problem_is_reported_at_once() -> None:
    probs = problems_of({"coach": {"cooldown_s": -1, "persist_k": "x"}, "voice": {"volume": 3}})
    assert len(probs) == 3


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[coach\npersist_k = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_relative_paths_resolve_next_to_the_config(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[recording]\ndir = "runs"\n')
    cfg = load_config(f)
    assert cfg.resolve(cfg.recording.dir) == tmp_path / "runs"


def test_a_binary_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_rejected(value: float) -> None:
    (prob,) = problems_of({"coach": {"cooldown_s": value}})
    assert prob.startswith("coach.cooldown_s") and "expected a finite number" in prob


def test_sensors_as_a_single_table_says_to_use_double_brackets() -> None:
    (prob,) = problems_of({"sensors": {"name": "foot"}})
    assert "one [[sensors]] table each" in prob
