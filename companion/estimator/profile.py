"""A runner's saved relaxed baseline (one JSON file per runner).

The profile holds, per sensor segment, the median and MAD of each stride feature
over the runner's relaxed strides. The mounting is *not* saved: a sensor may be
strapped on differently next time, so it is found again from the data.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import ConfigError, RecordingError
from companion.estimator.classify import Baseline, FeatureStats

if TYPE_CHECKING:
    from companion.config import Config

FORMAT = "companion-profile/1"


@dataclass
class RunnerProfile:
    """Relaxed-baseline statistics per segment (``foot``, ``shank``)."""

    runner: str = "runner"
    segments: dict[str, dict[str, FeatureStats]] = field(default_factory=dict)
    strides: dict[str, int] = field(default_factory=dict)
    """How many strides each segment's baseline was learned from."""

    def baseline(self, segment: str, target: int) -> Baseline | None:
        stats = self.segments.get(segment)
        if not stats:
            return None
        return Baseline(segment, target, dict(stats))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "runner": self.runner,
            "segments": {
                seg: {name: s.to_json() for name, s in sorted(stats.items())}
                for seg, stats in sorted(self.segments.items())
            },
            "strides": dict(sorted(self.strides.items())),
        }

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON (creating the folder)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(p)

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
            return cls(str(raw.get("runner", p.stem)), segments, strides)
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


def save_learned(cfg: Config, learned: RunnerProfile | None, runner: str, source: str) -> Path:
    """Save the baseline a run learned (``StreamingEstimator.profile()``) as ``runner``'s.

    ``source`` names the recording the run was (or was recorded to), for the error.
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
    path = profile_path(cfg, runner)
    learned.save(path)
    return path
