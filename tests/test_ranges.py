"""Bad settings are caught before a run starts: every numeric option has a range.

The tables are not written by hand: config keys come from the settings dataclasses,
command-line options from the argparse parsers, so a new option without a range makes
these tests fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from companion.cli import Bounded, build_parser, main
from companion.config import Config, config_from_dict
from companion.errors import ConfigError

# ----------------------------------------------------------------------------- config


def _numeric_keys(cls: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """``((section, ..., key), field)`` of every int or float setting under ``cls``; a
    list of tables (``[[sensors]]``) is walked through its first table."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        if get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            out += _numeric_keys(get_args(tp)[0], (*path, f.name, "0"))
        elif dataclasses.is_dataclass(tp):
            out += _numeric_keys(tp, (*path, f.name))
        elif tp in (int, float):
            out.append(((*path, f.name), f))
    return out


CONFIG_KEYS = _numeric_keys(Config)


def _table(path: tuple[str, ...], value: object) -> dict[str, Any]:
    """The TOML document that sets ``path`` to ``value`` (a sensor gets its name too)."""
    if "0" in path:
        i = path.index("0")
        return {path[0]: [{"name": "foot", "profile": "open_imu", **_table(path[i + 1 :], value)}]}
    doc: Any = value
    for part in reversed(path):
        doc = {part: doc}
    return doc


def _key(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".0.", "[0].")


def _outside(f: Any, tp: type) -> list[float]:
    lo, hi = f.metadata["min"], f.metadata["max"]
    if tp is int:
        return [lo - 1, hi + 1]
    return [math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)]


def test_the_config_has_numeric_options_to_check() -> None:
    keys = {_key(p) for p, _ in CONFIG_KEYS}
    assert {"sensors[0].rate_hz", "coach.cooldown_s", "voice.block_ms"} <= keys
    assert len(keys) >= 25


@pytest.mark.parametrize(("path", "field"), CONFIG_KEYS, ids=[_key(p) for p, _ in CONFIG_KEYS])
def test_every_numeric_config_option_has_a_range_that_is_enforced(
    path: tuple[str, ...], field: Any
) -> None:
    lo, hi = field.metadata["min"], field.metadata["max"]
    assert lo is not None and hi is not None, f"{_key(path)} has no range: give min= and max="
    tp = type(field.default)
    assert lo <= field.default <= hi, f"{_key(path)}: its default is outside its range"
    for bad in _outside(field, tp):
        with pytest.raises(ConfigError) as exc:
            config_from_dict(_table(path, bad))
        text = str(exc.value)
        assert f"{_key(path)} = {bad!r}: must be between {lo} and {hi}" in text
    for good in (lo, hi):
        try:
            config_from_dict(_table(path, tp(good)))
        except ConfigError as err:  # only a cross-field check may object (persist_k <= n)
            assert "must be between" not in str(err)


@pytest.mark.parametrize(
    ("path", "field"), CONFIG_KEYS[::4], ids=[_key(p) for p, _ in CONFIG_KEYS[::4]]
)
def test_run_refuses_an_out_of_range_config_before_connecting(
    path: tuple[str, ...],
    field: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Table-driven over a quarter of the keys (the check above covers them all): the
    config is refused with the key before a sensor is looked for."""
    import companion.source.ble.source as ble_source

    def no_connection(*_a: object, **_k: object) -> None:
        raise AssertionError("a connection was tried with a config that is out of range")

    monkeypatch.setattr(ble_source, "BleSource", no_connection)
    hi = field.metadata["max"]
    doc = _table(path, hi + 1)
    doc.setdefault("sensors", [{"name": "foot", "profile": "open_imu"}])
    cfg = tmp_path / "bad.toml"
    cfg.write_text(_toml(doc), encoding="utf-8")
    assert main(["run", "--config", str(cfg)]) == ConfigError.exit_code
    assert f"{_key(path)} = " in capsys.readouterr().err


def _toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the documents above (tables, lists of tables, numbers)."""
    lines = []
    for k, v in doc.items():
        if not isinstance(v, dict | list):
            lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            lines += [f"[{name}]", _toml(v, f"{name}.")]
        elif isinstance(v, list):
            for item in v:
                lines += [f"[[{name}]]", _toml(item, f"{name}.")]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _commands(sub, (*path, name))
    return out


def _options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    found = []
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            numeric_default = isinstance(action.default, int | float) and not isinstance(
                action.default, bool
            )
            counted = isinstance(action, argparse._CountAction | argparse._StoreConstAction)
            if action.type is not None or (numeric_default and not counted):
                found.append((path, action))
    return found


OPTIONS = _options()


def _id(path: tuple[str, ...], action: argparse.Action) -> str:
    return " ".join([*path, action.option_strings[-1] if action.option_strings else action.dest])


def _argv(path: tuple[str, ...], action: argparse.Action, value: str) -> list[str]:
    """A command line that sets ``action`` to ``value`` and every required argument."""
    parser = dict(_commands(build_parser()))[path]
    argv = list(path)
    for other in parser._actions:
        if other is action or (not other.required and other.option_strings):
            continue
        if isinstance(other, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if other.option_strings:
            argv += [other.option_strings[0], "x"]
        elif other.nargs is None:
            argv.append("x")
    if action.option_strings:  # --opt=value: a value like -1e-09 is not taken for an option
        return [*argv, f"{action.option_strings[0]}={value}"]
    return [*argv, value]


def test_the_command_line_has_numeric_options_to_check() -> None:
    ids = {_id(p, a) for p, a in OPTIONS}
    assert {"run --seconds", "simulate --rate", "evaluate --jitter", "cues say --times"} <= ids


@pytest.mark.parametrize(("path", "action"), OPTIONS, ids=[_id(p, a) for p, a in OPTIONS])
def test_every_numeric_command_line_option_has_a_range_that_is_enforced(
    path: tuple[str, ...], action: argparse.Action, capsys: pytest.CaptureFixture[str]
) -> None:
    kind = action.type
    assert isinstance(kind, Bounded), f"{_id(path, action)} has no range: use type=Bounded(...)"
    if action.default is not None:
        assert kind.lo <= action.default <= kind.hi, f"{_id(path, action)}: default outside"
    step = 1 if kind.integer else 1e-9 * max(1.0, abs(kind.hi))
    for bad in (kind.lo - step, kind.hi + step, "nan", "lots"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(_argv(path, action, str(bad)))
        assert exc.value.code == 2  # a usage error, before the command runs
        err = capsys.readouterr().err
        assert f"argument {action.option_strings[-1]}" in err
        assert f"between {kind.lo} and {kind.hi}" in err
    for good in (kind.lo, kind.hi):
        args = build_parser().parse_args(_argv(path, action, str(good)))
        assert getattr(args, action.dest) == good
