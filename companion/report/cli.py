"""``companion report RECORDING``: replay a recording and write one self-contained HTML
page with the run's summary, timeline, gait cycle, cues and (with ground truth beside
it) the confusion table; ``--png DIR`` writes the figures alone."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import CompanionError

if TYPE_CHECKING:
    from companion.replaying import Replayed
    from companion.scoring import RunScore

INSTALL_HINT = (
    "companion report draws its figures with matplotlib, which is not installed here; "
    "install it with: pip install 'companion[report]' (or pip install matplotlib), or run "
    "bash scripts/bootstrap.sh shell"
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="an HTML run report with plots (summary, timeline, gait cycle, cues, truth)",
        description=(
            "Replay a recording through the live pipeline and write one self-contained HTML "
            "file (figures embedded; opens offline in any browser): the summary, a timeline "
            "of the features each label is judged on with the runner's baseline and the "
            "thresholds, the gait cycle by label, every cue with the strides behind it, and "
            "the confusion table when ground truth (NAME.labels.csv) sits beside the "
            "recording. Reads .csv and .csv.gz."
        ),
    )
    p.add_argument("recording", help="recording (.csv or .csv.gz)")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        help="HTML file to write (default: NAME.html beside the recording; a folder: "
        "NAME.html in it)",
    )
    p.add_argument(
        "--png",
        metavar="DIR",
        help="write the figures alone, as PNG files in DIR (the page too only with --out)",
    )
    p.add_argument("--runner", help="use this runner's saved relaxed baseline")
    p.add_argument("--config", "-c", metavar="FILE", help="TOML config (thresholds, policy)")
    p.set_defaults(func=cmd_report)


def recording_name(path: Path) -> str:
    """``run.csv.gz`` -> ``run``."""
    from companion.source.recording import recording_stem

    return recording_stem(path).name


def html_path(recording: Path, out: str | None) -> Path:
    """Where the page goes: ``--out`` (a folder: NAME.html in it), else beside the recording."""
    name = recording_name(recording) + ".html"
    if out is None:
        return recording.with_name(name)
    p = Path(out)
    return p / name if p.is_dir() else p


def _make_folder(folder: Path) -> None:
    """Make an output folder before the work starts, or say why it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompanionError(
            f"cannot make the output folder {folder}: {exc.strerror or exc}; choose another path"
        ) from None


def _write(path: Path, data: bytes, what: str) -> None:
    """Write a file whole (a temporary file renamed), or say why it cannot be."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CompanionError(
            f"cannot write the {what} {path}: {exc.strerror or exc}; choose another path"
        ) from None


def cmd_report(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise CompanionError(f"{INSTALL_HINT} ({exc})") from None
    from companion.config import load_config
    from companion.estimator.profile import find_profile
    from companion.replaying import read_with_warnings, replay_recording
    from companion.report.figures import all_figures
    from companion.report.model import build_report
    from companion.report.page import render_page

    recording = Path(args.recording)
    png_dir = Path(args.png) if args.png else None
    if png_dir is not None and png_dir.exists() and not png_dir.is_dir():
        raise CompanionError(f"--png {png_dir}: this is a file; give a folder for the figures")
    cfg = load_config(args.config)
    profile = find_profile(cfg, args.runner)
    rec, warns = read_with_warnings(recording)
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    # the output folders before the work: a wrong path is said at once
    out = html_path(recording, args.out) if png_dir is None or args.out is not None else None
    for folder in (png_dir, out.parent if out is not None else None):
        if folder is not None:
            _make_folder(folder)
    replayed = replay_recording(rec, cfg, profile=profile, path=recording, keep_curves=True)
    if profile is not None:
        baseline = f"the saved profile of runner {profile.runner!r}"
    else:
        baseline = (
            f"learned from the first {cfg.estimator.baseline_strides} strides of each sensor "
            "in this recording"
        )
    score, truth_labels, truth_note = _score(recording, replayed)
    report = build_report(
        replayed,
        cfg,
        name=recording_name(recording),
        baseline_source=baseline,
        score=score,
        truth_labels=truth_labels,
        truth_note=truth_note,
        warnings=warns,
    )
    figs = all_figures(report)
    if png_dir is not None:
        for f in figs:
            _write(png_dir / f"{f.name}.png", f.png, "figure")
        print(f"wrote {len(figs)} figure(s) to {png_dir}")
    if out is not None:
        page = render_page(report, figs, (cfg.coach.persist_k, cfg.coach.persist_n))
        data = page.encode("utf-8")
        _write(out, data, "report")
        print(f"wrote {out} ({len(figs)} figures, {len(data) // 1024} kB): open it in any browser")
    return 0


def _score(
    recording: Path, replayed: Replayed
) -> tuple[RunScore | None, dict[str, list[tuple[float, str]]], str]:
    """The replay scored against the ground truth beside the recording, when there is
    one: ``(RunScore or None, true labels per sensor, why there is no score)``. A truth
    file that cannot be read is a note on the page and a warning, not the end of the report."""
    from companion.scoring import load_truth, score_events
    from companion.source.recording import labels_path, truth_path

    lp = labels_path(recording)
    if not lp.exists():
        return (
            None,
            {},
            (
                f"No ground truth beside the recording ({lp.name} is missing), so there is no "
                "confusion table. Simulated runs (companion simulate) write one."
            ),
        )
    try:
        truth = load_truth(lp, truth_path(recording))
    except CompanionError as exc:
        print(f"warning: ground truth not used: {exc}", file=sys.stderr)
        return None, {}, f"The ground truth beside the recording could not be read: {exc}"
    rec = replayed.recording
    sensors = {n: (info.segment, info.rate_hz) for n, info in rec.sensors.items()}
    score = score_events(recording_name(recording), replayed.events, truth, sensors)
    labels = {s: [(t.t_ic_s, t.label) for t in v] for s, v in truth.strides.items()}
    return score, labels, ""
