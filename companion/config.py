"""Load and validate the TOML config.

The whole config is one :class:`Config` of section dataclasses; each section is
defined beside the code it configures (``companion/*/settings.py``). Validation
collects every problem (unknown keys with a "did you mean", wrong types, values
out of range or not among the choices) and raises one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from companion.coach.settings import CoachSettings
from companion.errors import ConfigError
from companion.estimator.settings import EstimatorSettings
from companion.settings import range_text, setting
from companion.source.settings import RecordingSettings, RunSettings, SensorSettings
from companion.voice.settings import VoiceSettings


@dataclass(frozen=True)
class Config:
    """The whole configuration; every section has working defaults."""

    run: RunSettings = setting(RunSettings(), "Who runs and how the run is driven.")
    sensors: list[SensorSettings] = setting([], "Pinned BLE sensors, one [[sensors]] table each.")
    recording: RecordingSettings = setting(RecordingSettings(), "Where live runs are recorded.")
    estimator: EstimatorSettings = setting(EstimatorSettings(), "Stride detection and thresholds.")
    coach: CoachSettings = setting(CoachSettings(), "When labels become cues.")
    voice: VoiceSettings = setting(VoiceSettings(), "Cue library, speech and audio output.")
    source_path: str = dataclasses.field(default="", metadata={"internal": True})
    """Absolute path of the file it was loaded from ("" for defaults); not a TOML key."""

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        if p.is_absolute() or not self.source_path:
            return p
        return Path(self.source_path).parent / p


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (item,) = get_args(tp)
        if dataclasses.is_dataclass(item):
            return "a list of tables"
        return f"a list of {_type_name(item)}"
    if origin is dict:
        return f"a table of {_type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, key: str, problems: list[str]) -> Any:
    """Check ``value`` against type ``tp``; return the converted value or append a problem."""
    origin = get_origin(tp)
    bad = object()
    if origin in (types.UnionType, typing.Union):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            sub: list[str] = []
            out = _convert(value, arg, key, sub)
            if not sub:
                return out
        problems.append(f"{key} = {value!r}: expected {_type_name(tp)}")
        return bad
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            hint = f", one [[{key}]] table each" if dataclasses.is_dataclass(item_tp) else ""
            problems.append(f"{key} = {value!r}: expected {_type_name(tp)}{hint}")
            return bad
        return [_convert(v, item_tp, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key} = {value!r}: expected {_type_name(tp)}")
            return bad
        _, val_tp = get_args(tp)
        return {k: _convert(v, val_tp, f"{key}.{k}", problems) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{key} = {value!r}: expected a table ([{key}])")
            return bad
        return _build(tp, value, key, problems)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key} = {value!r}: expected a number")
            return bad
        if not math.isfinite(value):
            problems.append(f"{key} = {value!r}: expected a finite number")
            return bad
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{key} = {value!r}: expected an integer")
            return bad
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key} = {value!r}: expected true or false")
            return bad
        return value
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{key} = {value!r}: expected a string")
            return bad
        return value
    raise TypeError(f"unsupported setting type {tp!r} for {key}")


def _build(cls: Any, table: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(fields))
            problems.append(f"{key}: unknown key{hint}; allowed here: {allowed}")
            continue
        field = fields[name]
        n_before = len(problems)
        out = _convert(value, hints[name], key, problems)
        if len(problems) > n_before:
            continue
        meta = field.metadata
        if meta.get("choices") is not None and out not in meta["choices"]:
            close = difflib.get_close_matches(str(out), [str(c) for c in meta["choices"]], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            opts = ", ".join(repr(c) for c in meta["choices"])
            problems.append(f"{key} = {out!r}: must be one of {opts}{hint}")
            continue
        lo, hi = meta.get("min"), meta.get("max")
        is_num = isinstance(out, (int, float)) and not isinstance(out, bool)
        if is_num and ((lo is not None and out < lo) or (hi is not None and out > hi)):
            allowed = range_text(lo, hi, meta.get("unit", ""))
            problems.append(f"{key} = {out!r}: must be {allowed}")
            continue
        kwargs[name] = out
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a section's own cross-field check
        problems.append(f"{prefix or 'config'}: {exc}")
        return cls()
    check = getattr(obj, "problems", None)
    if callable(check):
        problems.extend(f"{prefix}.{p}" if prefix else p for p in check())
    return obj


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    cfg = _build(Config, data, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load_config(path: str | Path | None) -> Config:
    """Load ``path`` (or the defaults when ``None``) and validate it."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found; pass a config path that exists (start from config.example.toml)",
            str(p),
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            "not a text file (a config is TOML text, see config.example.toml)", str(p)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", str(p)) from None
    cfg = config_from_dict(data, str(p))
    return dataclasses.replace(cfg, source_path=str(p.resolve()))
