"""The cue library: what the voice says for each cue id, in a file a coach edits.

One TOML file per language in ``cues/`` at the top of the repository
(``cues/en.toml``), or a coach's own file named by path in the config. Every cue
is a table ``[cues.<id>]``::

    [cues.relax_ankle]
    priority = 5                                  # higher cuts a lower one short
    phrases = ["Relax the ankle.", "Let the ankle go soft."]   # rotated in turn
    earcon = [{ hz = 660, ms = 60 }, { hz = 880, ms = 80 }]     # optional tones first

A cue with an earcon and no ``phrases`` is a **tone-only** cue (the landing earcon,
``[voice] landing_earcon``): it is played as its tones alone, softly, and its text is "".

Loading checks everything and raises one :class:`~companion.errors.ConfigError`
naming the file and the key of every problem (unknown field, empty phrase, wrong
type, a cue with no phrases).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import ConfigError
from companion.voice.settings import VoiceSettings

if TYPE_CHECKING:
    from companion.config import Config

CUES_DIR = Path(__file__).resolve().parents[2] / "cues"
"""The repository's ``cues/`` folder (the package is installed editable)."""

_LANG_RE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TOP_KEYS = ("language", "description", "cues")
CUE_KEYS = ("phrases", "priority", "earcon")
TONE_KEYS = ("hz", "ms")
TONE_HZ = (100.0, 4000.0)
TONE_MS = (10.0, 500.0)
MAX_TONES = 4
PRIORITY = (0, 100)


@dataclass(frozen=True, slots=True)
class Tone:
    """One tone of an earcon: a sine at ``hz`` for ``ms`` (synthesised, no audio file)."""

    hz: float
    ms: float


@dataclass(frozen=True, slots=True)
class CueDef:
    """One cue of the library."""

    id: str
    phrases: tuple[str, ...]
    """Empty for a tone-only cue."""
    priority: int
    earcon: tuple[Tone, ...] = ()

    @property
    def tone_only(self) -> bool:
        """No words: the cue is its earcon alone."""
        return not self.phrases


class CueLibrary:
    """The loaded cues of one file; :meth:`next_text` rotates each cue's phrasings."""

    def __init__(self, cues: Iterable[CueDef], path: Path, language: str = "") -> None:
        self.cues: dict[str, CueDef] = {c.id: c for c in cues}
        self.path = path
        self.language = language
        self._turn: dict[str, int] = dict.fromkeys(self.cues, 0)

    @property
    def ids(self) -> list[str]:
        """Cue ids in file order."""
        return list(self.cues)

    def __contains__(self, cue_id: object) -> bool:
        return cue_id in self.cues

    def _get(self, cue_id: str) -> CueDef:
        try:
            return self.cues[cue_id]
        except KeyError:
            raise ConfigError(
                f"cues.{cue_id}: no such cue; add a [cues.{cue_id}] table with its phrases "
                f"(known: {', '.join(self.cues)})",
                str(self.path),
            ) from None

    def priority(self, cue_id: str) -> int:
        return self._get(cue_id).priority

    def phrases(self, cue_id: str) -> tuple[str, ...]:
        return self._get(cue_id).phrases

    def earcon(self, cue_id: str) -> tuple[Tone, ...]:
        """The cue's earcon tones (empty when it has none)."""
        return self._get(cue_id).earcon

    def tone_only(self, cue_id: str) -> bool:
        """True for a cue of tones and no words."""
        return self._get(cue_id).tone_only

    def next_text(self, cue_id: str) -> str:
        """The cue's next phrasing, in turn, so the runner does not hear the same words
        ("" for a tone-only cue)."""
        cue = self._get(cue_id)
        if cue.tone_only:
            return ""
        i = self._turn[cue_id]
        self._turn[cue_id] = (i + 1) % len(cue.phrases)
        return cue.phrases[i]

    def texts(self) -> list[str]:
        """Every distinct phrase of the library (what the renderer renders)."""
        seen: dict[str, None] = {}
        for cue in self.cues.values():
            for p in cue.phrases:
                seen.setdefault(p, None)
        return list(seen)

    def check(self, required_ids: Iterable[str]) -> list[str]:
        """Problems for every id in ``required_ids`` that the library lacks."""
        out = []
        for cid in dict.fromkeys(required_ids):
            if cid not in self.cues:
                close = difflib.get_close_matches(cid, list(self.cues), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.append(
                    f"{self.path}: cues.{cid}: cue {cid!r} is used but not in the library{hint}; "
                    f"add a [cues.{cid}] table with its phrases"
                )
        return out


# --------------------------------------------------------------------------- loading
def library_path(settings: VoiceSettings, resolve: Callable[[str], Path] | None = None) -> Path:
    """The file ``settings.library`` names: ``cues/<code>.toml`` or a coach's own path."""
    name = settings.library.strip()
    if not name:
        raise ConfigError(
            'voice.library is empty; use a language code such as "en" or the path of a cue file'
        )
    if _LANG_RE.match(name):
        return CUES_DIR / f"{name}.toml"
    return resolve(name) if resolve is not None else Path(name).expanduser()


def _unknown(key: str, name: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}: unknown field{hint}; allowed here: {', '.join(allowed)}"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_earcon(key: str, value: Any, problems: list[str]) -> tuple[Tone, ...]:
    if not isinstance(value, list):
        problems.append(
            f"{key} = {value!r}: expected a list of tones like [{{ hz = 660, ms = 60 }}]"
        )
        return ()
    if len(value) > MAX_TONES:
        problems.append(f"{key}: {len(value)} tones; an earcon is short, at most {MAX_TONES}")
    tones = []
    for i, tone in enumerate(value):
        tkey = f"{key}[{i}]"
        if not isinstance(tone, dict):
            problems.append(f"{tkey} = {tone!r}: expected a table {{ hz = 660, ms = 60 }}")
            continue
        bad = False
        for name in tone:
            if name not in TONE_KEYS:
                problems.append(_unknown(f"{tkey}.{name}", name, TONE_KEYS))
                bad = True
        for name, (lo, hi), unit in (("hz", TONE_HZ, "Hz"), ("ms", TONE_MS, "ms")):
            v = tone.get(name)
            if v is None:
                problems.append(f"{tkey}.{name}: missing; give the tone's {name} ({unit})")
                bad = True
            elif not _number(v):
                problems.append(f"{tkey}.{name} = {v!r}: expected a number ({unit})")
                bad = True
            elif not lo <= v <= hi:
                problems.append(f"{tkey}.{name} = {v!r}: must be between {lo:g} and {hi:g} {unit}")
                bad = True
        if not bad:
            tones.append(Tone(float(tone["hz"]), float(tone["ms"])))
    return tuple(tones)


def _parse_cue(cid: str, table: Any, problems: list[str]) -> CueDef | None:
    key = f"cues.{cid}"
    n0 = len(problems)
    if not _ID_RE.match(cid):
        problems.append(
            f"{key}: cue id must be lower-case letters, digits and _ (like relax_ankle)"
        )
    if not isinstance(table, dict):
        problems.append(f"{key} = {table!r}: expected a table [cues.{cid}] with phrases")
        return None
    for name in table:
        if name not in CUE_KEYS:
            problems.append(_unknown(f"{key}.{name}", name, CUE_KEYS))
    phrases: list[str] = []
    raw = table.get("phrases")
    if raw is None and "earcon" not in table:
        problems.append(
            f'{key}.phrases: missing; give one or more, e.g. phrases = ["Easy ankle."] (or '
            "only an earcon, for a cue of tones and no words)"
        )
    elif isinstance(raw, str):
        raw = [raw]
    if raw is not None and not isinstance(raw, list):
        problems.append(f"{key}.phrases = {raw!r}: expected a list of strings")
    elif raw is not None:
        if not raw:
            problems.append(f"{key}.phrases: empty list; give at least one phrase")
        for i, p in enumerate(raw):
            if not isinstance(p, str):
                problems.append(f"{key}.phrases[{i}] = {p!r}: expected a string")
            elif not p.strip() or not re.search(r"\w", p):
                problems.append(f"{key}.phrases[{i}]: empty phrase; write the words or remove it")
            else:
                phrases.append(" ".join(p.split()))
    prio = table.get("priority", 1)
    if isinstance(prio, bool) or not isinstance(prio, int):
        problems.append(f"{key}.priority = {prio!r}: expected an integer")
    elif not PRIORITY[0] <= prio <= PRIORITY[1]:
        problems.append(f"{key}.priority = {prio}: must be between {PRIORITY[0]} and {PRIORITY[1]}")
    earcon = _parse_earcon(f"{key}.earcon", table["earcon"], problems) if "earcon" in table else ()
    if raw is None and "earcon" in table and not earcon and len(problems) == n0:
        problems.append(f"{key}.earcon: empty; a cue without phrases needs at least one tone")
    if len(problems) > n0:
        return None
    return CueDef(cid, tuple(phrases), int(prio), earcon)


def parse_library(data: dict[str, Any], path: Path) -> CueLibrary:
    """Validate a parsed cue file; raise one ConfigError listing every problem."""
    problems: list[str] = []
    for name in data:
        if name not in TOP_KEYS:
            problems.append(_unknown(name, name, TOP_KEYS))
    language = data.get("language", "")
    if not isinstance(language, str):
        problems.append(f"language = {language!r}: expected a string")
        language = ""
    cues_raw = data.get("cues")
    cues: list[CueDef] = []
    if cues_raw is None:
        problems.append("cues: no cues; add [cues.<id>] tables, e.g. [cues.relax_ankle]")
    elif not isinstance(cues_raw, dict):
        problems.append(f"cues = {cues_raw!r}: expected tables [cues.<id>]")
    else:
        if not cues_raw:
            problems.append("cues: no cues; add [cues.<id>] tables, e.g. [cues.relax_ankle]")
        for cid, table in cues_raw.items():
            cue = _parse_cue(cid, table, problems)
            if cue is not None:
                cues.append(cue)
    if problems:
        raise ConfigError(problems, str(path))
    return CueLibrary(cues, path, language)


def load_library(
    settings: VoiceSettings, resolve: Callable[[str], Path] | None = None
) -> CueLibrary:
    """Load the cue library the voice settings name (``resolve`` maps config-relative paths)."""
    path = library_path(settings, resolve)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        have = sorted(p.stem for p in CUES_DIR.glob("*.toml"))
        raise ConfigError(
            f"cue library not found (voice.library = {settings.library!r}); use one of "
            f"{', '.join(have) or 'the files in cues/'} or the path of your own cue file",
            str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the cue library: {exc.strerror}", str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", str(path)) from None
    return parse_library(data, path)


def _missing(library: CueLibrary, ids: Iterable[str]) -> list[str]:
    return [cid for cid in dict.fromkeys(ids) if cid not in library]


def _landing_problems(library: CueLibrary, landing: str, spoken: list[str]) -> list[str]:
    """The landing earcon is tones only and below every spoken cue the policy can emit."""
    key = f"{library.path}: cues.{landing}"
    if not library.tone_only(landing):
        return [
            f"{key}: the landing earcon (coach.cue_landing) plays at every faulty landing, "
            "so it must be tones only: give it an earcon and no phrases"
        ]
    prio = library.priority(landing)
    below = [c for c in spoken if c in library and library.priority(c) <= prio]
    if below:
        lowest = min(below, key=library.priority)
        return [
            f"{key}.priority = {prio}: must be below every spoken cue's ({lowest} has "
            f"{library.priority(lowest)}), or the tone would cut a spoken cue short"
        ]
    return []


def check_config_problems(cfg: Config) -> list[str]:
    """Voice problems ``companion check-config`` reports beyond the config's own validation.

    The library loads cleanly, every cue the cue policy can emit (and that is switched
    on) exists in it, the landing earcon (when on) is tones only and below every spoken
    cue's priority, and every id in ``voice.enabled_cues`` exists too. Each problem
    names its file and key.
    """
    try:
        library = load_library(cfg.voice, cfg.resolve)
    except ConfigError as exc:
        head = f"{exc.source}: " if exc.source else ""
        return [head + p for p in exc.problems]
    src = cfg.source_path or "config"
    keys = {}
    for f in dataclasses.fields(cfg.coach):
        value = getattr(cfg.coach, f.name)
        if f.name.startswith("cue_") and isinstance(value, str):
            keys.setdefault(value, f"coach.{f.name}")
    enabled = set(cfg.voice.enabled_cues)
    landing = cfg.coach.cue_landing
    used = [
        cid
        for cid in cfg.coach.cue_ids()
        if (not enabled or cid in enabled)  # a cue switched off need not exist
        and not (cid == cfg.coach.cue_positive and not cfg.coach.positive_cue)
        and not (cid == landing and not cfg.voice.landing_earcon)
    ]
    problems = []
    for problem, cid in zip(library.check(used), _missing(library, used), strict=True):
        where = keys.get(cid)
        problems.append(f"{problem} (asked for by {src}: {where})" if where else problem)
    if landing in used and landing in library:
        problems.extend(_landing_problems(library, landing, [c for c in used if c != landing]))
    for i, cid in enumerate(cfg.voice.enabled_cues):
        if cid not in library and cid not in used:  # (a used one is reported above)
            close = difflib.get_close_matches(cid, library.ids, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{src}: voice.enabled_cues[{i}] = {cid!r}: not a cue of {library.path}{hint}"
            )
    return problems
