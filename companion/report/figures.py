"""The report's figures: a timeline and a gait cycle per sensor, as PNG.

matplotlib's object API on the Agg canvas (no pyplot, no display, no global state), so
figures render the same on a server, a laptop or CI.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from matplotlib import patheffects
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator
from matplotlib.transforms import blended_transform_factory

from companion.report.model import (
    LABEL_COLOURS,
    LABEL_NAMES,
    LABEL_ORDER,
    CueRow,
    Panel,
    RunReport,
    Threshold,
    feature_title,
    feature_unit,
    mmss,
)
from companion.types import CURVE_POINTS, Label, StrideReport

DPI = 120
WIDTH_IN = 11.0
LEARNING_COLOUR = "#A0A0A0"
LINK_COLOUR = "#333333"
CUE_LABEL_GAP = 0.02
"""Cues closer than this fraction of the time axis share one number label."""
MAX_BAR_S = 2.0
"""A true stride's bar in the label strip ends at the next contact, or this long after."""
CURVE_TITLES: dict[str, str] = {
    "foot_sagittal_deg": "foot angle to the ground (deg, toes up +)",
    "ankle_deg": "ankle angle (deg, dorsiflexion +)",
    "shank_sagittal_deg": "shank angle to vertical (deg)",
}
CURVE_NAMES: dict[str, str] = {
    "foot_sagittal_deg": "Foot",
    "ankle_deg": "Ankle",
    "shank_sagittal_deg": "Shank",
}


@dataclass(frozen=True)
class FigureOut:
    """One rendered figure, for the page and for ``--png``."""

    name: str
    """File stem: ``timeline_foot``, ``gait_cycle_foot`` ..."""
    caption: str
    alt: str
    png: bytes


def render_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _time_step_s(span_s: float) -> float:
    """Tick spacing of a time axis: whole quarter, half or full minutes (and longer)."""
    for step in (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0):
        if span_s / step <= 10:
            return step
    return 1800.0


def _label_colour(label: str) -> str:
    return LABEL_COLOURS.get(label, LINK_COLOUR)


def _short_label(label: str) -> str:
    return LABEL_NAMES.get(label, label).split(" (")[0]


# --------------------------------------------------------------------------- timeline
def _label_strip(ax: Axes, rows: Sequence[tuple[str, list[tuple[float, float, str]]]]) -> None:
    """One row of coloured bars per source of labels (the estimator, the ground truth)."""
    for y, (_name, spans) in enumerate(rows):
        by_colour: dict[str, list[tuple[float, float]]] = {}
        for t0, t1, colour in spans:
            by_colour.setdefault(colour, []).append((t0, max(t1 - t0, 1e-3)))
        for colour, bars in by_colour.items():
            ax.broken_barh(bars, (y - 0.4, 0.8), facecolors=colour, edgecolors="none")
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _robust_limits(values: np.ndarray, extra: Sequence[float]) -> tuple[float, float]:
    """y-limits that show the thresholds, the band and nearly every stride, without one
    wild stride squashing the rest (strides past them are drawn as arrows at the edge)."""
    finite = values[np.isfinite(values)]
    pts = list(extra)
    if len(finite):
        lo, hi = np.percentile(finite, [1.0, 99.0])
        spread = max(hi - lo, 1e-6)
        pts += [max(finite.min(), lo - 0.5 * spread), min(finite.max(), hi + 0.5 * spread)]
    if not pts:
        return 0.0, 1.0
    lo, hi = min(pts), max(pts)
    pad = 0.08 * max(hi - lo, 1e-6)
    return lo - pad, hi + pad


def _feature_panel(
    ax: Axes,
    panel: Panel,
    strides: Sequence[StrideReport],
) -> None:
    unit = feature_unit(panel.feature)
    t = np.array([r.t_ic_s for r in strides])
    v = np.array([r.features.get(panel.feature, math.nan) for r in strides], dtype=float)
    extra: list[float] = [th.value for th in panel.thresholds]
    band = panel.band
    if band is not None and panel.baseline is not None:
        extra += [band[0], band[1], panel.baseline.median]
    lo, hi = _robust_limits(v, extra)
    if band is not None and panel.baseline is not None:
        ax.axhspan(band[0], band[1], color=LABEL_COLOURS["relaxed"], alpha=0.13, lw=0)
        ax.axhline(
            panel.baseline.median, color=LABEL_COLOURS["relaxed"], lw=1.0, ls=":", zorder=3.5
        )
    groups = [("learning", [not r.baseline_ready for r in strides], LEARNING_COLOUR)]
    groups += [
        (lab, [r.baseline_ready and r.label.value == lab for r in strides], LABEL_COLOURS[lab])
        for lab in LABEL_ORDER
    ]
    for _lab, mask_list, colour in groups:
        mask = np.array(mask_list, dtype=bool) & np.isfinite(v)
        if not mask.any():
            continue
        inside = mask & (v >= lo) & (v <= hi)
        ax.scatter(t[inside], v[inside], s=13, color=colour, lw=0, zorder=3)
        for edge, marker, sel in ((hi, "^", mask & (v > hi)), (lo, "v", mask & (v < lo))):
            if sel.any():
                ax.scatter(
                    t[sel],
                    np.full(sel.sum(), edge),
                    s=22,
                    marker=marker,
                    color=colour,
                    lw=0,
                    zorder=3,
                    clip_on=False,
                )
    to_axes = blended_transform_factory(ax.transAxes, ax.transData)
    for th in panel.thresholds:
        ax.axhline(th.value, color=_label_colour(th.criterion.label), lw=1.5, ls="--", zorder=2)
        ax.text(
            0.995,
            th.value,
            threshold_text(th, unit),
            transform=to_axes,
            ha="right",
            va="bottom" if th.criterion.direction > 0 else "top",
            fontsize=8,
            color=_label_colour(th.criterion.label),
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.0},
            zorder=4,
        )
    ax.set_ylim(lo, hi)
    ax.set_ylabel(unit)
    ax.set_title(feature_title(panel.feature), loc="left", fontsize=10)
    ax.grid(axis="y", color="#E5E5E5", lw=0.6)
    ax.yaxis.set_major_locator(MaxNLocator(5))


def threshold_text(th: Threshold, unit: str) -> str:
    """A threshold line's label: the label, where it starts, and the setting behind it."""
    c = th.criterion
    above = c.direction > 0
    if c.scale == "pct":
        why = f"{th.setting_value:g} % {'over' if above else 'under'} baseline"
    else:
        why = f"baseline {'+' if above else '−'} {th.setting_value:g} {unit}"
    text = f"{_short_label(c.label)} {'above' if above else 'below'} {th.value:.1f} {unit} ({why}"
    if th.raised:
        text += f", raised to {th.delta:.3g} {unit} by this runner's own spread"
    return text + ")"


def _cue_marks(axes: Sequence[Axes], cues: Sequence[CueRow]) -> None:
    """Every cue as a vertical line through all panels, numbered at the top as in the
    page's cue table; cues too close to number apart share one label ("1-5")."""
    top = axes[0]
    to_top = blended_transform_factory(top.transData, top.transAxes)
    lo, hi = top.get_xlim()
    min_gap_s = CUE_LABEL_GAP * (hi - lo)
    groups: list[list[CueRow]] = []
    for cue in cues:
        colour = _label_colour(cue.reason)
        style = ":" if cue.reason == Label.RELAXED.value else "-"
        for ax in axes:
            ax.axvline(cue.t_s, color=colour, lw=1.1, ls=style, alpha=0.9, zorder=1)
        if groups and cue.t_s - groups[-1][-1].t_s < min_gap_s:
            groups[-1].append(cue)
        else:
            groups.append([cue])
    for group in groups:
        first, last = group[0], group[-1]
        colours = {_label_colour(c.reason) for c in group}
        top.text(
            (first.t_s + last.t_s) / 2,
            1.04,
            str(first.number) if len(group) == 1 else f"{first.number}–{last.number}",
            transform=to_top,
            ha="center",
            va="bottom",
            fontsize=8,
            fontweight="bold",
            color=colours.pop() if len(colours) == 1 else LINK_COLOUR,
            clip_on=False,
        )


def _legend_handles(labels: Sequence[str], learning: bool, panels: bool) -> list[Artist]:
    handles: list[Artist] = [
        Patch(color=LABEL_COLOURS[lab], label=LABEL_NAMES[lab]) for lab in labels
    ]
    if learning:
        handles.append(Patch(color=LEARNING_COLOUR, label="while the baseline was learned"))
    if panels:
        handles.append(
            Patch(color=LABEL_COLOURS["relaxed"], alpha=0.25, label="relaxed baseline ± 1 SD")
        )
        handles.append(
            Line2D([], [], color="#555555", ls="--", label="threshold (its label's colour)")
        )
    handles.append(Line2D([], [], color="#555555", lw=1.1, label="cue spoken (number: cue table)"))
    return handles


def timeline_figure(report: RunReport, sensor: str) -> Figure:
    """Stride by stride: the label (and the true one), each feature a label is judged on
    with the baseline band and the thresholds, and every cue where it was spoken."""
    strides = report.reports.get(sensor, [])
    panels = list(report.panels.get(sensor, []))
    if not panels:
        # nothing is judged on this sensor (a shank alone): show its contact time
        panels = [Panel("contact_ms", None)]
    truth = report.truth_labels.get(sensor)
    rows: list[tuple[str, list[tuple[float, float, str]]]] = [
        (
            "estimator",
            [
                (
                    r.t_ic_s,
                    r.t_end_s,
                    _label_colour(r.label.value) if r.baseline_ready else LEARNING_COLOUR,
                )
                for r in strides
            ],
        )
    ]
    if truth:
        # a true stride lasts to the next contact (at most a long stride: not over a pause)
        ends = [min(t1, t0 + MAX_BAR_S) for (t0, _), (t1, _) in pairwise(truth)]
        ends.append(truth[-1][0] + 0.7)
        rows.append(
            (
                "ground truth",
                [(t, e, _label_colour(lab)) for (t, lab), e in zip(truth, ends, strict=True)],
            )
        )
    strip_h = 0.45 * len(rows) + 0.3
    fig = Figure(figsize=(WIDTH_IN, 1.7 + strip_h + 2.4 * len(panels)), layout="constrained")
    axes = fig.subplots(
        1 + len(panels),
        1,
        sharex=True,
        gridspec_kw={"height_ratios": [strip_h] + [2.4] * len(panels)},
    )
    _label_strip(axes[0], rows)
    axes[0].set_title("label of each stride", loc="left", fontsize=10, pad=16)
    for ax, panel in zip(axes[1:], panels, strict=True):
        _feature_panel(ax, panel, strides)
    last = axes[-1]
    last.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: mmss(t)))
    last.set_xlabel("time in the recording (min:s)")
    if strides:
        t0, t1 = min(r.t_ic_s for r in strides) - 2.0, max(r.t_end_s for r in strides) + 2.0
        last.set_xlim(t0, t1)
        last.xaxis.set_major_locator(MultipleLocator(_time_step_s(t1 - t0)))
    _cue_marks(axes, [c for c in report.cues if c.sensor in (sensor, None)])
    present = [
        lab
        for lab in LABEL_ORDER
        if any(r.label.value == lab and r.baseline_ready for r in strides)
    ]
    if truth:
        present = [lab for lab in LABEL_ORDER if lab in present or any(t == lab for _, t in truth)]
    learning = any(not r.baseline_ready for r in strides)
    fig.suptitle(
        f"Timeline of the {sensor} sensor: what each stride is judged on",
        fontsize=13,
        fontweight="bold",
    )
    fig.legend(
        handles=_legend_handles(present, learning, any(p.thresholds for p in panels)),
        loc="outside lower center",
        ncols=4,
        fontsize=8.5,
        frameon=False,
    )
    return fig


def gait_figure(report: RunReport, sensor: str) -> Figure | None:
    """The angle curves over 0-100 % of the stride, each label in its colour, with the
    median curve of each label drawn bold. None when there is nothing to draw."""
    strides = [r for r in report.reports.get(sensor, []) if r.baseline_ready and r.curves]
    kinds = [k for k in CURVE_TITLES if any(k in r.curves for r in strides)]
    if not kinds:
        return None
    x = np.linspace(0.0, 100.0, CURVE_POINTS)
    fig = Figure(figsize=(WIDTH_IN, 5.0), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    outline = [patheffects.withStroke(linewidth=4.2, foreground="white")]
    handles: dict[str, Line2D] = {}
    toe_off = [
        100.0 * (r.t_to_s - r.t_ic_s) / (r.t_end_s - r.t_ic_s)
        for r in strides
        if r.t_end_s > r.t_ic_s
    ]
    for ax, kind in zip(axes, kinds, strict=True):
        for lab in LABEL_ORDER:
            curves = [r.curves[kind] for r in strides if r.label.value == lab and kind in r.curves]
            if not curves:
                continue
            arr = np.vstack(curves)
            colour = LABEL_COLOURS[lab]
            alpha = float(np.clip(6.0 / len(arr), 0.05, 0.5))
            segs = np.stack([np.broadcast_to(x, arr.shape), arr], axis=-1)
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=0.7, alpha=alpha))
            ax.plot(x, np.median(arr, axis=0), color=colour, lw=2.4, path_effects=outline, zorder=4)
            handles.setdefault(
                lab,
                Line2D(
                    [], [], color=colour, lw=2.4, label=(f"{LABEL_NAMES[lab]}: {len(arr)} strides")
                ),
            )
        ax.autoscale_view()
        if toe_off:
            to = float(np.median(toe_off))
            ax.axvline(to, color="#555555", ls="--", lw=1.0)
            to_top = blended_transform_factory(ax.transData, ax.transAxes)
            for x_at, y_at, text, ha, va in (
                (to / 2, 0.98, "stance", "center", "top"),
                ((to + 100) / 2, 0.98, "swing", "center", "top"),
                (to, 0.02, f" toe-off ({to:.0f} %)", "left", "bottom"),
            ):
                ax.text(
                    x_at, y_at, text, transform=to_top, ha=ha, va=va, fontsize=8.5, color="#555555"
                )
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of the stride (0 = foot contact, 100 = next contact)")
        ax.set_ylabel(CURVE_TITLES[kind])
        ax.set_title(f"{CURVE_NAMES[kind]} angle", loc="left", fontsize=10)
        ax.grid(color="#E5E5E5", lw=0.6)
    fig.suptitle(
        f"Gait cycle of the {sensor} sensor: every labelled stride (thin) and each label's "
        "median (bold)",
        fontsize=13,
        fontweight="bold",
    )
    fig.legend(
        handles=[handles[lab] for lab in LABEL_ORDER if lab in handles],
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=8.5,
        frameon=False,
    )
    return fig


def all_figures(report: RunReport) -> list[FigureOut]:
    """Every figure of the report, rendered."""
    out: list[FigureOut] = []
    for sensor in report.figure_sensors:
        if not report.reports.get(sensor):
            continue
        fig = timeline_figure(report, sensor)
        out.append(
            FigureOut(
                f"timeline_{sensor}",
                "Each dot is one stride, at the time its foot touched down, in the colour of "
                "its label. The green band is this runner's relaxed range (median ± one "
                "robust SD of the baseline strides); a dashed line is a threshold: a stride "
                "past it gets that line's label. Vertical lines are the cues spoken, numbered "
                "as in the cue table. Grey strides came while the baseline was learned.",
                f"Timeline of the {sensor} sensor: stride labels, judged features with "
                "baseline and thresholds, and cues",
                render_png(fig),
            )
        )
        gait = gait_figure(report, sensor)
        learning = sum(1 for r in report.reports.get(sensor, []) if not r.baseline_ready)
        if gait is None:
            continue
        note = f" The {learning} strides of the baseline period are not drawn." if learning else ""
        out.append(
            FigureOut(
                f"gait_cycle_{sensor}",
                "One thin line per stride from its foot contact (0 %) to the next (100 %), "
                "in the colour of its label; the bold line is the median stride of each "
                f"label. The dashed line is the median toe-off.{note}",
                f"Gait cycle of the {sensor} sensor: angle curves over the stride, by label",
                render_png(gait),
            )
        )
    return out
