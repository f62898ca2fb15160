"""A runner's saved relaxed baseline (one JSON file per runner).

The profile holds, per sensor segment, the median and MAD of each stride feature
over the runner's relaxed strides, and when and from what it was learned (a recording
or a live run, which sensors; profiles saved before that was kept have none). The
mounting is *not* saved: a sensor may be strapped on differently next time, so it is
found again from the data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import ConfigError, RecordingError
from companion.estimator.classify import Baseline, FeatureStats
from companion.files import open_private

if TYPE_CHECKING:
    from companion.config import Config
    from companion.types import SensorInfo

FORMAT = "companion-profile/1"
"""Unchanged by the ``learned`` part (older readers ignore it, older files lack it)."""
SENSOR_KEYS = ("name", "segment", "side", "rate_hz", "model")


@dataclass(frozen=True)
class LearnedFrom:
    """When and from what a profile's baseline was learned."""

    kind: str
    """``recording`` (a replay) or ``live run``."""
    source: str
    """The recording's path (for a live run: the file it was recorded to)."""
    sensors: tuple[dict[str, Any], ...] = ()
    """Each sensor's ``name``, ``segment``, ``side``, ``rate_hz`` and ``model``."""
    recorded_at: str = ""
    """When the recording started (its ``start_wall``), ISO 8601; "" when unknown."""
    saved_at: str = ""
    """When the profile was saved, ISO 8601 UTC."""

    @classmethod
    def of(
        cls,
        kind: str,
        source: str,
        sensors: Mapping[str, SensorInfo],
        metadata: Mapping[str, str] | None = None,
    ) -> LearnedFrom:
        """From a run's sensors and its recording's metadata (``start_wall``)."""
        infos = tuple({k: getattr(info, k) for k in SENSOR_KEYS} for info in sensors.values())
        return cls(kind, source, infos, (metadata or {}).get("start_wall", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "sensors": [dict(s) for s in self.sensors],
            "recorded_at": self.recorded_at,
            "saved_at": self.saved_at,
        }

    @classmethod
    def from_json(cls, raw: Any) -> LearnedFrom | None:
        """Leniently: a profile whose note is odd still has a usable baseline."""
        if not isinstance(raw, dict):
            return None
        sensors = raw.get("sensors")
        return cls(
            str(raw.get("kind", "")),
            str(raw.get("source", "")),
            tuple(
                {k: s[k] for k in SENSOR_KEYS if k in s}
                for s in (sensors if isinstance(sensors, list) else [])
                if isinstance(s, dict)
            ),
            str(raw.get("recorded_at", "")),
            str(raw.get("saved_at", "")),
        )


@dataclass
class RunnerProfile:
    """Relaxed-baseline statistics per segment (``foot``, ``shank``)."""

    runner: str = "runner"
    segments: dict[str, dict[str, FeatureStats]] = field(default_factory=dict)
    strides: dict[str, int] = field(default_factory=dict)
    """How many strides each segment's baseline was learned from."""
    learned: LearnedFrom | None = None
    """When and from what (``None`` in profiles saved before it was kept)."""

    def baseline(self, segment: str, target: int) -> Baseline | None:
        stats = self.segments.get(segment)
        if not stats:
            return None
        return Baseline(segment, target, dict(stats))

    def to_json(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "runner": self.runner,
            "segments": {
                seg: {name: s.to_json() for name, s in sorted(stats.items())}
                for seg, stats in sorted(self.segments.items())
            },
            "strides": dict(sorted(self.strides.items())),
        }
        if self.learned is not None:
            out["learned"] = self.learned.to_json()
        return out

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON, user-only (``0600``, a folder it makes ``0700``).

        A profile that cannot be written raises :class:`ConfigError` naming the path; a
        saved one is replaced whole or not at all.
        """
        p = Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        try:
            fd = open_private(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(self.to_json(), indent=2) + "\n")
            tmp.replace(p)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ConfigError(
                f"runner profile {p} cannot be written ({exc.strerror or exc}); set [run] "
                "profile_dir to a folder you can write to, then replay this run's recording "
                "with --save-profile to save it"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> RunnerProfile:
        """Read a profile; a missing or damaged file raises :class:`ConfigError`."""
        p = Path(path)
        fix = (
            "delete it (the baseline is then learned again from the first strides of the "
            "next run) or restore a good copy"
        )
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"runner profile {p} does not exist; run once without --runner to learn a "
                "baseline, or check [run] profile_dir"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"runner profile {p} cannot be read ({exc}); {fix}") from None
        try:
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"it is not a {FORMAT} file")
            segments: dict[str, dict[str, FeatureStats]] = {}
            for seg, stats in dict(raw["segments"]).items():
                if seg not in ("foot", "shank"):
                    raise ValueError(f"unknown segment {seg!r}")
                segments[seg] = {}
                for name, s in dict(stats).items():
                    med, mad = float(s["median"]), float(s["mad"])
                    if not (math.isfinite(med) and math.isfinite(mad)) or mad < 0:
                        raise ValueError(f"{seg}.{name} has a bad median/MAD")
                    segments[seg][str(name)] = FeatureStats(med, mad)
            strides = {str(k): int(v) for k, v in dict(raw.get("strides", {})).items()}
            learned = LearnedFrom.from_json(raw.get("learned"))
            return cls(str(raw.get("runner", p.stem)), segments, strides, learned)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"runner profile {p} is damaged ({exc}); {fix}") from None


def profile_dir(cfg: Config) -> Path:
    """Where profiles live: ``[run] profile_dir`` or the user data folder."""
    if cfg.run.profile_dir:
        return cfg.resolve(cfg.run.profile_dir)
    try:
        from platformdirs import user_data_dir

        return Path(user_data_dir("companion")) / "profiles"
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return Path.home() / ".local" / "share" / "companion" / "profiles"


def profile_path(cfg: Config, runner: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", runner).strip("._") or "runner"
    return profile_dir(cfg) / f"{safe}.json"


def find_profile(cfg: Config, runner: str | None = None) -> RunnerProfile | None:
    """The saved profile of ``runner`` (default ``[run] runner``), if there is one.

    An explicitly named runner without a profile is a mistake (ConfigError); the
    config's default runner without one just means the baseline is learned live.
    """
    name = runner or cfg.run.runner
    path = profile_path(cfg, name)
    if not path.exists():
        if runner:
            raise ConfigError(
                f"no saved profile for runner {runner!r} at {path}; learn one with a relaxed "
                "run (`companion run --save-profile --runner NAME`, or `companion replay "
                "RECORDING --save-profile --runner NAME`), or check [run] profile_dir"
            )
        return None
    return RunnerProfile.load(path)


def save_learned(
    cfg: Config,
    learned: RunnerProfile | None,
    runner: str,
    source: str,
    learned_from: LearnedFrom | None = None,
) -> Path:
    """Save the baseline a run learned (``StreamingEstimator.profile()``) as ``runner``'s.

    ``source`` names the recording the run was (or was recorded to), for the error;
    ``learned_from`` is kept in the profile, stamped with the time it is saved.
    """
    if learned is None:
        raise RecordingError(
            source,
            None,
            "no relaxed baseline was learned from this run (it needs "
            f"{cfg.estimator.baseline_strides} strides per sensor after the mounting is "
            "found), so no profile was saved; record a longer relaxed run",
        )
    if learned.runner != runner:
        learned = RunnerProfile(runner, learned.segments, learned.strides)
    if learned_from is not None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        learned = replace(learned, learned=replace(learned_from, saved_at=now))
    path = profile_path(cfg, runner)
    learned.save(path)
    return path


def _checked_name(name: str) -> str:
    """A runner's name as given to ``profiles show|delete``: never a path."""
    if not name.strip() or any(c in name for c in "/\\") or name.strip(".") == "":
        raise ConfigError(
            f"{name!r} is not a runner's name (a profile is named after its runner, not a "
            "path); `companion profiles list` shows the saved ones"
        )
    return name


def saved_profiles(cfg: Config) -> list[tuple[Path, RunnerProfile | ConfigError]]:
    """Every saved profile in the profile folder, by file name: the profile, or why it
    cannot be read."""
    folder = profile_dir(cfg)
    out: list[tuple[Path, RunnerProfile | ConfigError]] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        if not path.is_file():
            continue
        try:
            out.append((path, RunnerProfile.load(path)))
        except ConfigError as exc:
            out.append((path, exc))
    return out


def saved_profile_path(cfg: Config, name: str) -> Path:
    """The file of runner ``name``'s saved profile, inside the profile folder.

    Raises :class:`ConfigError` for a name that is a path or has no profile (listing the
    runners that have one).
    """
    path = profile_path(cfg, _checked_name(name))
    if path.is_file() and path.parent.resolve() == profile_dir(cfg).resolve():
        return path
    names = [p.stem for p, _ in saved_profiles(cfg)]
    have = f"saved: {', '.join(names)}" if names else "none is saved yet"
    raise ConfigError(f"no saved profile for runner {name!r} in {profile_dir(cfg)} ({have})")
