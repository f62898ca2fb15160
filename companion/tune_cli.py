"""``companion tune RECORDING --set KEY=VALUE [--sweep KEY=A:B:STEP] [--write CONFIG]``:
what other settings would do on a recording, side by side with the current config.

The recording is read once (and its ground truth, when it sits beside it); each setting
then runs only the estimator and the cue policy again, through exactly the pipeline a
replay uses (:func:`companion.replaying.replay_recording`). Values are checked as the
config checks them (type, range, choices, a "did you mean" for a wrong key). Nothing is
written unless ``--write CONFIG`` is given; the file then keeps its comments and layout
(``tomlkit``), only the changed values differ.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from collections import Counter
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import ConfigError

if TYPE_CHECKING:
    from companion.config import Config
    from companion.replaying import Replayed
    from companion.scoring import GroundTruth

MAX_SWEEP_VALUES = 100
"""Most values one ``--sweep`` may take (each is a whole replay)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune",
        help="what other settings would do on a recording: labels, cues (with times) and, "
        "with ground truth beside it, F1 per label, side by side with the current config",
        description=(
            "Replay a recording with changed settings and print, side by side with the "
            "current config, the strides labelled per kind, the cues per kind with their "
            "times and, when ground truth sits beside the recording (NAME.labels.csv), the "
            "F1 per label. --sweep prints one row per value. The recording is read once; "
            "only the estimator and the cue policy run again per setting. Nothing is "
            "written unless --write CONFIG is given."
        ),
        epilog="example: companion tune run.csv --set estimator.forced_dorsiflexion_deg=6",
    )
    p.add_argument("recording", help="a recording (.csv or .csv.gz)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a changed setting, e.g. estimator.forced_dorsiflexion_deg=6 (repeat for more)",
    )
    p.add_argument(
        "--sweep",
        metavar="KEY=A:B:STEP",
        help="one row per value from A to B in steps of STEP, e.g. "
        "estimator.forced_dorsiflexion_deg=4:12:2 (on top of any --set)",
    )
    p.add_argument(
        "--write",
        metavar="CONFIG",
        help="save the --set values into this TOML file (comments and layout kept; a new "
        "file starts from --config)",
    )
    p.add_argument("--config", "-c", metavar="FILE", help="the current config (TOML)")
    p.add_argument("--runner", help="use this runner's saved relaxed baseline")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_tune)


# --------------------------------------------------------------------------- settings
def _value(text: str) -> Any:
    """A TOML value (``6``, ``6.5``, ``true``, ``"x"``, ``[...]``), or a bare word as a
    string (``voice.output=console``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def _sections() -> dict[str, set[str]]:
    """Config section -> its setting names (the tables a --set may change)."""
    from companion.config import Config

    out: dict[str, set[str]] = {}
    for f in fields(Config):
        default = getattr(Config(), f.name)
        if not f.metadata.get("internal") and is_dataclass(default):
            out[f.name] = {g.name for g in fields(default)}
    return out


def split_key(text: str, option: str) -> tuple[str, str]:
    """``KEY=REST`` of one ``--set`` or ``--sweep``; a key is ``section.name``."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise ConfigError(
            f"{option} {text!r}: give KEY=VALUE, e.g. {option} estimator.forced_dorsiflexion_deg=6"
        )
    if "." not in key:
        sections = _sections()
        owners = [s for s, names in sections.items() if key in names]
        hint = f"did you mean {owners[0]}.{key}?" if owners else f"e.g. estimator.{key}"
        if key in sections:
            hint = f"name one of {key}'s settings, e.g. {key}.{sorted(sections[key])[0]}"
        raise ConfigError(f"{option} {text!r}: a key names its section: {hint}")
    if key.split(".", 1)[0] == "sensors":
        raise ConfigError(
            f"{option} {text!r}: sensors are [[sensors]] tables; change them in the config file"
        )
    return key, rest.strip()


def _with(raw: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key, value in changes.items():
        section, name = key.split(".", 1)
        table = out.setdefault(section, {})
        if not isinstance(table, dict):
            table = out[section] = {}
        table[name] = value
    return out


def config_with(base: Config, raw: dict[str, Any], changes: dict[str, Any], what: str) -> Config:
    """``base`` (parsed from ``raw``) with ``changes`` (``section.name`` -> value),
    validated exactly as a config file is; :class:`ConfigError` names ``what`` set it."""
    from dataclasses import replace

    from companion.config import config_from_dict

    cfg = config_from_dict(_with(raw, changes), what)
    return replace(cfg, source_path=base.source_path)


def sweep_values(text: str) -> tuple[str, list[Any]]:
    """``KEY=A:B:STEP`` -> the key and its values A, A+STEP, ... up to B (whole numbers
    stay whole)."""
    key, rest = split_key(text, "--sweep")
    parts = rest.split(":")
    usage = f"--sweep {text!r}: give KEY=A:B:STEP with numbers, e.g. {key}=4:12:2"
    if len(parts) != 3:
        raise ConfigError(usage)
    nums = [_value(p) for p in parts]
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in nums):
        raise ConfigError(usage)
    a, b, step = nums
    if not all(math.isfinite(n) for n in nums) or step <= 0 or b < a:
        raise ConfigError(f"--sweep {text!r}: give A <= B and a STEP above 0")
    n = math.floor((b - a) / step + 1e-9) + 1
    if n > MAX_SWEEP_VALUES:
        raise ConfigError(
            f"--sweep {text!r}: {n} values; give at most {MAX_SWEEP_VALUES} (a larger STEP)"
        )
    whole = all(isinstance(v, int) for v in nums)
    return key, [a + i * step if whole else round(a + i * step, 9) for i in range(n)]


# --------------------------------------------------------------------------- results
@dataclass
class Outcome:
    """What one setting did on the recording."""

    name: str
    changes: dict[str, Any]
    labels: Counter[str] = field(default_factory=Counter)
    cues: dict[str, list[float]] = field(default_factory=dict)
    f1: dict[str, float] | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "changes": self.changes,
            "labels": dict(self.labels),
            "cues": self.cues,
            "f1": None
            if self.f1 is None
            else {k: (None if v != v else round(v, 4)) for k, v in self.f1.items()},
            "summary": self.summary,
        }


def outcome(
    name: str,
    changes: dict[str, Any],
    replayed: Replayed,
    truth: GroundTruth | None,
) -> Outcome:
    from companion.scoring import LABELS, score_events

    out = Outcome(name, changes)
    assert replayed.summary is not None
    out.summary = replayed.summary.as_dict()
    out.labels = Counter({lab: replayed.summary.labels.get(lab, 0) for lab in LABELS})
    for ev in replayed.events:
        if ev["type"] == "cue":
            out.cues.setdefault(ev["id"], []).append(ev["t_s"])
    if truth is not None:
        rec = replayed.recording
        sensors = {n: (i.segment, i.rate_hz) for n, i in rec.sensors.items()}
        score = score_events(name, replayed.events, truth, sensors)
        if score.label_sensor is not None:
            out.f1 = {lab: score.prf(lab)[2] for lab in LABELS}
    return out


def run_settings(
    recording: Any,
    settings: list[tuple[str, dict[str, Any], Config]],
    truth: GroundTruth | None,
    profile: Any,
    progress: Any = None,
) -> list[Outcome]:
    """Replay the (already read) recording once per setting: estimator and policy only."""
    from companion.pipeline import load_checked_library
    from companion.replaying import replay_recording

    libraries: dict[str, Any] = {}
    outs = []
    for name, changes, cfg in settings:
        if progress is not None:
            progress.update(len(outs), note=name)
        key = repr(cfg.voice)  # the library is loaded again only when voice settings change
        if key not in libraries:
            libraries[key] = load_checked_library(cfg)
        done = len(outs)
        rep = replay_recording(
            recording,
            cfg,
            profile=profile,
            library=libraries[key],
            progress=None if progress is None else lambda f, d=done: progress.update(d + f),
        )
        outs.append(outcome(name, changes, rep, truth))
    if progress is not None:
        progress.update(len(outs))
    return outs


# --------------------------------------------------------------------------- output
def _cue_order(outs: list[Outcome], cfg: Config) -> list[str]:
    seen = {c for o in outs for c in o.cues}
    first = [c for c in cfg.coach.cue_ids() if c in seen]
    return first + sorted(seen - set(first))


def _f1(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def _times(ts: list[float]) -> str:
    return " ".join(f"{t:.1f}" for t in ts) if ts else "-"


def format_side_by_side(outs: list[Outcome], cfg: Config) -> list[str]:
    """Two (or more) settings as columns: labels, cues, F1, then each cue's times; a row
    that differs between them ends in ``*``."""
    from companion.scoring import LABELS

    w = max(12, *(len(o.name) for o in outs))

    def row(name: str, cells: list[str]) -> str:
        mark = "  *" if len(set(cells)) > 1 else ""
        return f"  {name:<24}" + "".join(f"{c:>{w + 2}}" for c in cells) + mark

    lines = [f"{'':<26}" + "".join(f"{o.name:>{w + 2}}" for o in outs), "strides labelled"]
    lines += [row(lab, [str(o.labels[lab]) for o in outs]) for lab in LABELS]
    cues = _cue_order(outs, cfg)
    lines.append("cues" + ("" if cues else ": none"))
    lines += [row(c, [str(len(o.cues.get(c, []))) for o in outs]) for c in cues]
    if all(o.f1 is not None for o in outs):
        lines.append("F1 against the ground truth")
        lines += [row(lab, [_f1(o.f1[lab]) for o in outs]) for lab in LABELS]  # type: ignore[index]
    if cues:
        lines.append("cue times (s of stream)")
        for c in cues:
            said = [_times(o.cues.get(c, [])) for o in outs]
            mark = "  *" if len(set(said)) > 1 else ""
            for i, o in enumerate(outs):
                lines.append(f"  {c if i == 0 else '':<24}{o.name:<{w}}  {said[i]}{mark}")
    if any(line.endswith("  *") for line in lines):
        lines.append("* differs from the current config")
    return lines


def format_sweep(key: str, outs: list[Outcome], cfg: Config) -> list[str]:
    """One row per value: labels, cues and F1 per kind; then each value's cue times."""
    from companion.scoring import LABELS

    cues = _cue_order(outs, cfg)
    short = {
        "relaxed": "relaxed",
        "rigid": "rigid",
        "forced_dorsiflexion": "dorsi",
        "forced_plantarflexion": "plantar",
    }
    lab_head = "/".join(short.get(lab, lab) for lab in LABELS)
    cols = [key, f"strides {lab_head}", "cues " + ("/".join(cues) if cues else "(none)")]
    show_f1 = all(o.f1 is not None for o in outs)
    if show_f1:
        cols.append(f"F1 {lab_head}")
    rows = []
    for o in outs:
        row = [
            o.name,
            " / ".join(str(o.labels[lab]) for lab in LABELS),
            " / ".join(str(len(o.cues.get(c, []))) for c in cues) if cues else "-",
        ]
        if show_f1:
            row.append(" / ".join(_f1(o.f1[lab]) for lab in LABELS))  # type: ignore[index]
        rows.append(row)
    widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if cues:
        lines.append("cue times (s of stream)")
        for o in outs:
            said = "; ".join(f"{c} {_times(o.cues[c])}" for c in cues if c in o.cues)
            lines.append(f"  {o.name}: {said or 'none'}")
    return lines


def _show(value: Any) -> str:
    """A value as it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


# --------------------------------------------------------------------------- writing
def write_settings(path: Path, changes: dict[str, Any], template: Path | None) -> None:
    """Put ``changes`` (``section.name`` -> checked value) into the TOML file ``path``,
    keeping its comments and layout (a new file starts as a copy of ``template``)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from companion.config import config_from_dict

    try:
        if path.exists():
            text = path.read_text(encoding="utf-8")
        elif template is not None:
            text = template.read_text(encoding="utf-8")
        else:
            text = ""
        doc = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(f"cannot read it to write the new values ({exc})", str(path)) from None
    for key, value in changes.items():
        section, name = key.split(".", 1)
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc.add(section, table)
        table[name] = value
    new = tomlkit.dumps(doc)
    config_from_dict(tomllib.loads(new), str(path))  # what is written must load
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", str(path)) from None


# --------------------------------------------------------------------------- command
def cmd_tune(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.estimator.profile import find_profile
    from companion.progress import Progress
    from companion.replaying import read_with_warnings
    from companion.scoring import load_truth
    from companion.source.recording import labels_path, truth_path

    if not args.sets and not args.sweep:
        raise ConfigError(
            "give at least one --set KEY=VALUE or a --sweep KEY=A:B:STEP, e.g. "
            "--set estimator.forced_dorsiflexion_deg=6"
        )
    if args.write and args.sweep:
        raise ConfigError(
            "--write saves one setting, not a sweep: pick a value from the sweep and run "
            "again with --set KEY=VALUE --write FILE"
        )
    if args.write and not args.sets:
        raise ConfigError("--write saves the --set values: give the ones to save with --set")
    base = load_config(args.config)
    raw: dict[str, Any] = {}
    if args.config:
        raw = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
    changes: dict[str, Any] = {}
    for text in args.sets:
        key, value = split_key(text, "--set")
        changes[key] = _value(value)
    tuned = config_with(base, raw, changes, "--set")
    # the checked values, in their setting's type (6 -> 6.0 for a number of degrees)
    changes = {k: getattr(getattr(tuned, k.split(".")[0]), k.split(".")[1]) for k in changes}

    def was(key: str) -> Any:
        section, name = key.split(".", 1)
        return getattr(getattr(base, section), name)

    settings: list[tuple[str, dict[str, Any], Config]] = [("current", {}, base)]
    sweep_key = None
    if args.sweep:
        sweep_key, values = sweep_values(args.sweep)
        if sweep_key in changes:
            raise ConfigError(f"--sweep {sweep_key} is also given with --set; give it once")
        problems: list[str] = []
        for v in values:
            try:
                cfg = config_with(base, raw, {**changes, sweep_key: v}, "--sweep")
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                continue
            settings.append((_show(v), {**changes, sweep_key: v}, cfg))
        if problems:
            raise ConfigError(problems, "--sweep")
        settings[0] = (f"current ({_show(was(sweep_key))})", {}, base)
    else:
        settings.append(("tuned", changes, tuned))

    path = Path(args.recording)
    rec, warns = read_with_warnings(path)
    truth = None
    if labels_path(path).exists():
        truth = load_truth(labels_path(path), truth_path(path))
    profile = find_profile(base, args.runner) if args.runner else None
    with Progress(f"tune {path.name}", len(settings), unit="settings") as progress:
        for w in warns:
            progress.print(f"warning: {w}")
        outs = run_settings(rec, settings, truth, profile, progress)
    written = None
    if args.write:
        template = Path(args.config) if args.config else None
        write_settings(Path(args.write), changes, template)
        written = args.write

    if args.json:
        print(
            json.dumps(
                {
                    "recording": str(path),
                    "ground_truth": str(labels_path(path)) if truth else None,
                    "sweep": sweep_key,
                    "settings": [o.as_dict() for o in outs],
                    "written": written,
                },
                indent=2,
            )
        )
        return 0
    sensors = ", ".join(f"{n} {i.rate_hz:g} Hz" for n, i in rec.sensors.items())
    span = outs[0].summary.get("duration_s", 0.0)
    gt = f"ground truth: {labels_path(path).name}" if truth else "no ground truth beside it"
    print(f"tune {path.name}: {span:.0f} s of stream ({sensors}); {gt}")
    if changes:
        print(
            "changed: "
            + ", ".join(f"{k} {_show(was(k))} -> {_show(v)}" for k, v in changes.items())
        )
    if truth is None:
        print(f"(F1 needs the true labels beside the recording: {labels_path(path).name})")
    elif outs[0].f1 is None:
        print("(a shank alone claims no ankle fault: no F1 per label)")
    print()
    lines = format_sweep(sweep_key, outs, base) if sweep_key else format_side_by_side(outs, base)
    for line in lines:
        print(line)
    if written:
        print()
        print(f"wrote {', '.join(f'{k} = {_show(v)}' for k, v in changes.items())} to {written}")
    return 0
