"""``companion profiles [list|show NAME|delete NAME]``: the saved runner baselines.

``show`` gives the numbers each label is judged against: the runner's relaxed medians and
spreads, and the limits they make with the config's thresholds (the rules of
:func:`companion.estimator.classify.classify`; a test holds the two together), and when
and from what the baseline was learned.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from companion.errors import ConfigError

if TYPE_CHECKING:
    from companion.config import Config
    from companion.estimator.classify import FeatureStats
    from companion.estimator.profile import LearnedFrom, RunnerProfile
    from companion.estimator.settings import EstimatorSettings

SAVE_HINT = (
    "save one from a relaxed run: `companion replay RECORDING --save-profile --runner NAME` "
    "or `companion run --save-profile --runner NAME`"
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "profiles",
        help="the saved runner baselines: list, show NAME (what each label is judged "
        "against), delete NAME",
        description=(
            "The runners' saved relaxed baselines (profiles). list: every saved runner "
            "with its sensors and when and from what the baseline was learned; show NAME: "
            "the baseline's medians and spreads and the limit each label is judged against "
            "with the config's thresholds; delete NAME: remove a runner's profile (the "
            "next run learns the baseline again). Without a command: list."
        ),
    )
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config ([run] profile_dir)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_list)
    sub = p.add_subparsers(dest="profiles_command", metavar="list|show|delete")

    def leaf(name: str, help: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help)
        # given after the command too; SUPPRESS keeps a value given before it
        q.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS)
        return q

    q = leaf("list", "every saved runner profile")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_list)
    q = leaf("show", "one runner's baseline and what each label is judged against")
    q.add_argument("name", help="the runner's name")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_show)
    q = leaf("delete", "remove one runner's profile (asks nothing)")
    q.add_argument("name", help="the runner's name")
    q.set_defaults(func=cmd_delete)


# --------------------------------------------------------------------------- judged against
@dataclass(frozen=True)
class Limit:
    """A stride gets ``label`` when ``feature`` goes past ``limit`` (``above`` or below)."""

    label: str
    feature: str
    above: bool
    limit: float
    baseline: float
    threshold: float
    """The coach's threshold, in the feature's unit (a percentage already applied)."""
    guard: float
    """The noise guard: ``noise_guard_mads`` robust SDs of the relaxed spread."""
    setting: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def judged_against(
    segment: str, stats: dict[str, FeatureStats], settings: EstimatorSettings
) -> list[Limit]:
    """The limit each label is judged against, for a baseline of ``segment``: each rule
    of the classifier's published :data:`~companion.estimator.classify.CRITERIA`, past the
    coach's threshold *and* past the noise guard, from the runner's relaxed median."""
    from companion.estimator.classify import CRITERIA, guard_width, rule_threshold

    if segment != "foot":
        return []
    out: list[Limit] = []
    for label, feature, direction, setting, scale, needs in CRITERIA:
        st = stats.get(feature)
        if st is None:
            continue
        threshold = rule_threshold(setting, scale, st, settings)
        if threshold is None:
            continue
        guard = guard_width(st, settings)
        margin = max(threshold, guard)
        above = direction > 0
        limit = st.median + margin if above else st.median - margin
        note = WITH_SHANK if needs == "ankle" else ""
        out.append(Limit(label, feature, above, limit, st.median, threshold, guard, setting, note))
    return out


WITH_SHANK = "with the shank sensor on the same leg"

FEATURE_WORDS = {
    "landing_deg": "landing angle",
    "landing_peak_deg": "approach's highest angle",
    "strike_angle_deg": "strike angle",
    "ankle_rom_deg": "ankle range of motion",
    "stance_still_dps": "foot's turning rate over its stillest 20 ms of stance",
}


def _unit(feature: str) -> str:
    for suffix, unit in (
        ("_deg", "deg"),
        ("_dps", "deg/s"),
        ("_ms", "ms"),
        ("_s", "s"),
        ("_g", "g"),
    ):
        if feature.endswith(suffix):
            return unit
    return ""


# --------------------------------------------------------------------------- output
def _when(iso: str) -> str:
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.utcoffset() is not None and t.utcoffset().total_seconds() == 0:  # type: ignore[union-attr]
        return t.strftime("%Y-%m-%d %H:%M UTC")
    return t.strftime("%Y-%m-%d %H:%M %z").strip()


def _sensor_text(s: dict[str, Any]) -> str:
    bits = [str(s.get(k)) for k in ("segment", "side") if s.get(k) not in (None, "", "unknown")]
    if s.get("rate_hz"):
        bits.append(f"{float(s['rate_hz']):g} Hz")
    if s.get("model") not in (None, "", "unknown"):
        bits.append(str(s["model"]))
    return f"{s.get('name', '?')} ({', '.join(bits)})" if bits else str(s.get("name", "?"))


def learned_text(learned: LearnedFrom | None) -> str:
    """When and from what, in one line."""
    if learned is None:
        return "when and from what: not kept (saved before profiles kept it)"
    what = {"recording": "the recording", "live run": "a live run recorded to"}.get(
        learned.kind, learned.kind
    )
    out = f"learned {_when(learned.saved_at)} from {what} {learned.source}"
    if learned.recorded_at:
        out += f" (started {_when(learned.recorded_at)})"
    if learned.sensors:
        out += "; sensors: " + ", ".join(_sensor_text(s) for s in learned.sensors)
    return out


def _segments(prof: RunnerProfile) -> str:
    return ", ".join(
        f"{seg} ({prof.strides.get(seg, '?')} strides)" for seg in sorted(prof.segments)
    )


def cmd_list(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.estimator.profile import profile_dir, saved_profiles

    cfg = load_config(args.config)
    found = saved_profiles(cfg)
    if args.json:
        rows = []
        for path, prof in found:
            if isinstance(prof, ConfigError):
                rows.append({"name": path.stem, "path": str(path), "error": str(prof)})
            else:
                rows.append({"name": path.stem, "path": str(path), **prof.to_json()})
        print(json.dumps({"profile_dir": str(profile_dir(cfg)), "profiles": rows}, indent=2))
        return 0
    if not found:
        print(f"no runner profiles in {profile_dir(cfg)}; {SAVE_HINT}")
        return 0
    print(f"runner profiles in {profile_dir(cfg)}:")
    w = max(len(p.stem) for p, _ in found)
    for path, prof in found:
        if isinstance(prof, ConfigError):
            print(f"  {path.stem:<{w}}  damaged: {prof}")
            continue
        print(f"  {path.stem:<{w}}  {_segments(prof)}; {learned_text(prof.learned)}")
    return 0


def _load(cfg: Config, name: str) -> tuple[Any, RunnerProfile]:
    from companion.estimator.profile import RunnerProfile, saved_profile_path

    path = saved_profile_path(cfg, name)
    return path, RunnerProfile.load(path)


def cmd_show(args: argparse.Namespace) -> int:
    from companion.config import load_config

    cfg = load_config(args.config)
    path, prof = _load(cfg, args.name)
    est = cfg.estimator
    limits = {seg: judged_against(seg, stats, est) for seg, stats in prof.segments.items()}
    if args.json:
        out = {"name": path.stem, "path": str(path), **prof.to_json()}
        out["judged_against"] = {s: [lim.as_dict() for lim in v] for s, v in limits.items()}
        out["config"] = cfg.source_path or None
        print(json.dumps(out, indent=2))
        return 0
    print(f"runner {prof.runner!r}: {path}")
    print(learned_text(prof.learned))
    src = cfg.source_path or "the defaults (no --config)"
    guard = f"noise guard {est.noise_guard_mads:g} robust SDs of the relaxed spread"
    for seg in sorted(prof.segments):
        stats = prof.segments[seg]
        print()
        print(f"{seg}: baseline of {prof.strides.get(seg, '?')} relaxed strides")
        if limits[seg]:
            print(f"  each label is judged against (thresholds from {src}; {guard}):")
            for lim in limits[seg]:
                unit = _unit(lim.feature)
                word = FEATURE_WORDS.get(lim.feature, lim.feature)
                sign = "+" if lim.above else "-"
                margin = max(lim.threshold, lim.guard)
                which = "threshold" if lim.threshold >= lim.guard else "noise guard"
                print(
                    f"    {lim.label:<22} {word} {'above' if lim.above else 'below'} "
                    f"{lim.limit:.1f} {unit} = baseline {lim.baseline:.1f} {sign} {margin:.1f} "
                    f"({which}; {lim.setting} = {getattr(est, lim.setting):g})"
                )
                if lim.note:
                    print(f"    {'':<22} ({lim.note})")
        else:
            print(
                "  a shank alone claims no ankle fault: its strides are all relaxed (timing only)"
            )
        print(f"  {'feature':<22} {'median':>9} {'MAD':>8}")
        for name in sorted(stats):
            st = stats[name]
            print(f"  {name:<22} {st.median:9.2f} {st.mad:8.2f}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.estimator.profile import saved_profile_path

    cfg = load_config(args.config)
    path = saved_profile_path(cfg, args.name)
    try:
        path.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot delete {path}: {exc.strerror or exc}") from None
    print(f"deleted {path}: runner {args.name!r}'s next run learns the baseline again")
    return 0
