"""``companion score RECORDING|FOLDER``: replay recordings and score them against the
ground truth beside them (see :mod:`companion.scoring`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from companion.errors import RecordingError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="replay recordings and score them against their ground truth (labels, timing, "
        "strike angle, cues)",
        description=(
            "Replay each recording through the live pipeline and score it against the "
            "ground truth beside it (NAME.labels.csv, and NAME.truth.json when there is one): "
            "per-label precision / recall / F1, strides found and invented, contact and "
            "toe-off error, strike-angle error, fault spells cued while on, and false cues "
            "per 10 minutes on relaxed runs. A folder is scored recording by recording, "
            "then summed up per sensor set-up. Reads .csv and .csv.gz."
        ),
    )
    p.add_argument("path", help="a recording (.csv or .csv.gz) or a folder of them")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--runner", help="use this runner's saved relaxed baseline")
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config (thresholds, policy)")
    p.set_defaults(func=cmd_score)


def _is_recording(p: Path) -> bool:
    name = p.name.lower()
    if name.endswith((".labels.csv", ".truth.json")):
        return False
    return name.endswith((".csv", ".csv.gz"))


def find_scorable(path: Path) -> tuple[list[Path], list[str]]:
    """The recordings to score under ``path`` and, for a folder, notes on those skipped."""
    from companion.source.recording import labels_path

    if not path.exists():
        raise RecordingError(str(path), None, "no such file or folder")
    if path.is_file():
        if not labels_path(path).exists():
            raise RecordingError(
                str(path),
                None,
                f"no ground truth beside it ({labels_path(path).name} is missing); score "
                "needs the true strides (sensor,stride,t_ic_s,label)",
            )
        return [path], []
    found, skipped = [], []
    for p in sorted(path.iterdir()):
        if not p.is_file() or not _is_recording(p):
            continue
        if labels_path(p).exists():
            found.append(p)
        else:
            skipped.append(f"{p.name}: no {labels_path(p).name} beside it, not scored")
    if not found:
        raise RecordingError(
            str(path), None, "no recording with ground truth (NAME.labels.csv) in this folder"
        )
    return found, skipped


def cmd_score(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.estimator.profile import find_profile
    from companion.pipeline import load_checked_library
    from companion.progress import Progress
    from companion.replaying import read_with_warnings, replay_recording
    from companion.scoring import format_run, format_summary, load_truth, score_events
    from companion.source.recording import labels_path, truth_path

    cfg = load_config(args.config)
    library = load_checked_library(cfg)
    profile = find_profile(cfg, args.runner) if args.runner else None
    paths, skipped = find_scorable(Path(args.path))
    runs = []
    with Progress(f"score {args.path}", len(paths), unit="recordings") as progress:
        for p in paths:
            progress.update(len(runs), note=p.name)
            truth = load_truth(labels_path(p), truth_path(p))
            rec, warns = read_with_warnings(p)
            for w in warns:
                progress.print(f"warning: {w}")
            done = len(runs)
            rep = replay_recording(
                rec,
                cfg,
                profile=profile,
                path=p,
                library=library,
                progress=lambda f, done=done: progress.update(done + f),
            )
            sensors = {n: (info.segment, info.rate_hz) for n, info in rec.sensors.items()}
            name = p.name.removesuffix(".gz").removesuffix(".csv")
            runs.append(score_events(name, rep.events, truth, sensors))
    if args.json:
        out: dict[str, Any] = {"recordings": [r.as_dict() for r in runs]}
        if skipped:
            out["skipped"] = skipped
        print(json.dumps(out, indent=2))
        return 0
    for r in runs:
        print(format_run(r))
        print()
    for s in skipped:
        print(f"skipped: {s}")
    if len(runs) > 1:
        print(format_summary(runs))
    return 0
