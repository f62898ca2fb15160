"""The report's HTML page: one self-contained file (figures embedded as PNG data URLs,
inline CSS, no script, no network), readable in any browser and printable.

Summary cells carry ``data-key`` attributes naming the ``replay --json`` summary value
they show (``strides.foot``, ``labels.rigid`` ...), so a test can check the page
against the replay.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from companion import __version__
from companion.report.figures import FigureOut
from companion.report.model import (
    LABEL_COLOURS,
    LABEL_NAMES,
    LABEL_ORDER,
    CueRow,
    RunReport,
    feature_title,
    feature_unit,
    mmss,
)
from companion.scoring import LABELS

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  max-width: 1180px; margin: 0 auto; padding: 1rem 1.5rem 3rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #ddd; }
.meta { color: #555; margin-top: 0; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .95rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px;
  margin-right: .35em; vertical-align: baseline; }
figure { margin: 1rem 0 2rem; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: .92rem; max-width: 60rem; }
.note { color: #555; }
.cue-strides { font-size: .88rem; }
@media print { nav { display: none; } figure { break-inside: avoid; } }
"""


def _num(x: float | None, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def _label(lab: str) -> str:
    colour = LABEL_COLOURS.get(lab)
    sw = f'<span class="swatch" style="background:{colour}"></span>' if colour else ""
    return sw + escape(LABEL_NAMES.get(lab, lab))


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    text_cols: Collection[int] = (0,),
    cls: str = "",
) -> str:
    """A table; cells are HTML already (a cell that is a whole ``<td>`` is kept as it
    is); columns not in ``text_cols`` hold numbers and are right-aligned."""
    ths = "".join(
        f"<th>{h}</th>" if i in text_cols else f'<th class="num">{h}</th>'
        for i, h in enumerate(head)
    )
    body = []
    for row in rows:
        tds = []
        for i, cell in enumerate(row):
            if cell.startswith("<td"):
                tds.append(cell)
            elif i in text_cols:
                tds.append(f"<td>{cell}</td>")
            else:
                tds.append(f'<td class="num">{cell}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _keyed(key: str, text: str) -> str:
    return f'<td class="num" data-key="{escape(key)}">{text}</td>'


# --------------------------------------------------------------------------- sections
def summary_section(rep: RunReport) -> str:
    s = rep.summary
    parts = [
        '<section id="summary"><h2>Summary</h2>',
        _table(
            ["duration", "strides", "cues spoken"],
            [
                [
                    _keyed("duration_s", f"{s.duration_s:.1f} s ({mmss(s.duration_s)})"),
                    _keyed("strides_total", str(sum(s.strides.values()))),
                    _keyed("cues_total", str(sum(s.cues.values()))),
                ]
            ],
            text_cols=(),
        ),
        "<h3>Sensors</h3>",
        _table(
            [
                "sensor",
                "segment, side",
                "rate (Hz)",
                "samples",
                "strides",
                "labelled against the baseline",
                "cadence (steps/min)",
                "contact time, median (ms)",
                "link drops",
            ],
            [
                [
                    escape(r.name),
                    escape(f"{r.segment}, {r.side}"),
                    f"{r.rate_hz:g}",
                    _keyed(f"samples.{r.name}", str(r.samples)),
                    _keyed(f"strides.{r.name}", str(r.strides)),
                    str(r.judged),
                    _keyed(f"cadence_spm.{r.name}", _num(r.cadence_spm)),
                    _keyed(f"contact_ms.{r.name}", _num(r.contact_ms, 0)),
                    str(r.link_drops),
                ]
                for r in rep.sensors
            ],
            text_cols=(0, 1),
        ),
        "<h3>Labels</h3>",
        _labels_table(rep),
        "<h3>Cues by kind</h3>",
        _cue_kinds_table(rep),
        "</section>",
    ]
    return "\n".join(parts)


def _labels_table(rep: RunReport) -> str:
    names = [r.name for r in rep.sensors]
    rows = []
    for lab in LABEL_ORDER:
        counts = rep.labels.get(lab, {})
        total = rep.summary.labels.get(lab, 0)
        rows.append(
            [_label(lab)]
            + [str(counts.get(n, 0)) for n in names]
            + [_keyed(f"labels.{lab}", str(total))]
        )
    note = ""
    if any(r.segment == "shank" for r in rep.sensors):
        note = (
            '<p class="note">A shank sensor claims no ankle fault (it never sees the foot): '
            "its strides are all counted as relaxed.</p>"
        )
    return _table(["label"] + [escape(n) for n in names] + ["all sensors"], rows) + note


def _cue_kinds_table(rep: RunReport) -> str:
    if not rep.summary.cues:
        return '<p data-key="cues_none">No cue was spoken.</p>'
    said: dict[str, list[str]] = {}
    why: dict[str, set[str]] = {}
    for c in rep.cues:
        if c.text and c.text not in said.setdefault(c.id, []):
            said[c.id].append(c.text)
        why.setdefault(c.id, set()).add(c.reason)
    rows = [
        [
            f"<code>{escape(cid)}</code>",
            escape(", ".join(LABEL_NAMES.get(r, r) for r in sorted(why.get(cid, ())))),
            escape(" / ".join(f"“{t}”" for t in said.get(cid, []))),
            _keyed(f"cues.{cid}", str(n)),
        ]
        for cid, n in sorted(rep.summary.cues.items())
    ]
    return _table(["cue", "answers", "phrases said", "times"], rows, text_cols=(0, 1, 2))


def _figures(figs: Sequence[FigureOut]) -> str:
    out = []
    for f in figs:
        data = base64.b64encode(f.png).decode("ascii")
        out.append(
            f'<figure id="{escape(f.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(f.alt)}"><figcaption>{escape(f.caption)}</figcaption></figure>'
        )
    return "\n".join(out)


def _thresholds_table(rep: RunReport, sensor: str) -> str:
    rows = []
    for panel in rep.panels.get(sensor, []):
        unit = feature_unit(panel.feature)
        base, band = panel.baseline, panel.band
        base_txt = (
            f"{base.median:.1f} ± {band[1] - base.median:.1f}"
            if base is not None and band is not None
            else "not learned"
        )
        if not panel.thresholds:
            continue
        for th in panel.thresholds:
            c = th.criterion
            setting_unit = "%" if c.scale == "pct" else unit
            rows.append(
                [
                    _label(c.label),
                    escape(feature_title(panel.feature)),
                    escape("above" if c.direction > 0 else "below"),
                    f"<code>estimator.{escape(c.setting)} = {th.setting_value:g}</code> "
                    f"({escape(setting_unit)})",
                    escape(base_txt),
                    escape(f"{th.value:.1f}" + (" (noise guard)" if th.raised else "")),
                ]
            )
    if not rows:
        return (
            f'<p class="note">Nothing is judged on the {escape(sensor)} sensor (or its '
            "baseline was never learned): its strides are all relaxed.</p>"
        )
    return _table(
        [
            "label",
            "judged on",
            "when",
            "threshold setting",
            "this runner's baseline (median ± SD)",
            "threshold here",
        ],
        rows,
        text_cols=(0, 1, 2, 3),
    )


def figures_section(rep: RunReport, figs: Sequence[FigureOut]) -> str:
    timelines = [f for f in figs if f.name.startswith("timeline_")]
    gaits = [f for f in figs if f.name.startswith("gait_cycle_")]
    parts = ['<section id="timeline"><h2>Timeline</h2>']
    if not any(rep.reports.get(s) for s in rep.figure_sensors):
        parts.append('<p class="note">No stride was found in this recording.</p>')
    for sensor in rep.figure_sensors:
        parts.append(f"<h3>{escape(sensor)} sensor</h3>")
        parts.append(_figures([f for f in timelines if f.name == f"timeline_{sensor}"]))
        parts.append(_thresholds_table(rep, sensor))
    parts.append('</section><section id="gait"><h2>Gait cycle</h2>')
    if gaits:
        parts.append(_figures(gaits))
    else:
        parts.append(
            '<p class="note">No labelled stride with angle curves: nothing to draw '
            "(the baseline may not have been learned).</p>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _strides_cell(strides: Sequence[Mapping[str, Any]]) -> str:
    if not strides:
        return "—"
    return ", ".join(
        f"{escape(str(s.get('sensor')))} #{int(s['stride'])} at {float(s['t_ic_s']):.1f} s "
        f"({escape(LABEL_NAMES.get(str(s.get('label')), str(s.get('label'))))})"
        for s in strides
    )


def cues_section(rep: RunReport, persist: tuple[int, int]) -> str:
    k, n = persist
    parts = [
        '<section id="cues"><h2>Every cue</h2>',
        f'<p class="note">A fault cue is said when {k} of the last {n} strides of a sensor '
        "carry its fault; the strides listed are those that made it. The positive cue follows "
        f"{k} clearly relaxed strides after a cued fault.</p>",
    ]
    if not rep.cues:
        parts.append("<p>No cue was spoken.</p>")
    else:
        parts.append(
            _table(
                ["#", "time", "time (s)", "cue", "said", "because of", "strides behind it"],
                [_cue_row(c) for c in rep.cues],
                text_cols=(3, 4, 5, 6),
                cls="cues",
            )
        )
    parts.append("</section>")
    return "\n".join(parts)


def _cue_row(c: CueRow) -> list[str]:
    return [
        str(c.number),
        mmss(c.t_s, 1),
        f"{c.t_s:.2f}",
        f"<code>{escape(c.id)}</code>",
        f"“{escape(c.text)}”",
        _label(c.reason) if c.reason in LABEL_NAMES else escape(c.reason),
        f'<td class="cue-strides">{_strides_cell(c.strides)}</td>',
    ]


def truth_section(rep: RunReport) -> str:
    parts = ['<section id="truth"><h2>Against the ground truth</h2>']
    sc = rep.score
    if sc is None:
        parts.append(f'<p class="note">{escape(rep.truth_note)}</p></section>')
        return "\n".join(parts)
    if sc.label_sensor is None:
        parts.append(
            '<p class="note">A shank alone claims no ankle fault: its strides are scored '
            "on timing only.</p>"
        )
    else:
        parts.append(
            f"<p>Strides of the <b>{escape(sc.label_sensor)}</b> sensor, each matched to the "
            "true stride whose contact is within 0.1 s (as <code>companion score</code> "
            "does). Rows: the true label; columns: what the estimator said.</p>"
        )
        cols = [*LABELS, "missed"]
        rows_from = list(LABELS) + (["none"] if any(t == "none" for t, _ in sc.confusion) else [])
        rows = []
        for t in rows_from:
            head = _label(t) if t != "none" else "no true stride (invented)"
            rows.append(
                [head]
                + [_keyed(f"confusion.{t}->{p}", str(sc.confusion.get((t, p), 0))) for p in cols]
            )
        parts.append(
            _table(
                ["true label \\ reported"]
                + [_label(p) if p != "missed" else "missed" for p in cols],
                rows,
                cls="confusion",
            )
        )
        prf_rows = []
        for lab in LABELS:
            p, r, f, nn = sc.prf(lab)
            prf_rows.append([_label(lab), _num(p, 3), _num(r, 3), _num(f, 3), str(nn)])
        parts.append(_table(["label", "precision", "recall", "F1", "true strides"], prf_rows))
    for s in sc.sensors.values():
        parts.append(
            f"<p>{escape(s.sensor)}: {s.found} of {s.true_strides} true strides found, "
            f"{s.invented} invented.</p>"
        )
    if sc.spells:
        parts.append(
            f"<p>Fault spells cued while they went on: {sc.spells_cued} of {sc.spells}.</p>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def notes_section(rep: RunReport) -> str:
    if not rep.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in rep.notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'


def render_page(rep: RunReport, figs: Sequence[FigureOut], persist: tuple[int, int]) -> str:
    """The whole page as one string."""
    started = rep.metadata.get("start_wall", "")
    meta = [f"recording <code>{escape(str(rep.path))}</code>"]
    if started:
        meta.append(f"started {escape(started)}")
    meta.append(f"config: {escape(rep.config_source)}")
    meta.append(f"baseline: {escape(rep.baseline_source)}")
    sections = [
        summary_section(rep),
        figures_section(rep, figs),
        cues_section(rep, persist),
        truth_section(rep),
        notes_section(rep),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Run report: {escape(rep.name)}</title><style>{CSS}</style></head>\n<body>\n"
        f"<header><h1>Run report: {escape(rep.name)}</h1>"
        f'<p class="meta">{" · ".join(meta)}</p>'
        '<nav><a href="#summary">Summary</a><a href="#timeline">Timeline</a>'
        '<a href="#gait">Gait cycle</a><a href="#cues">Cues</a>'
        '<a href="#truth">Ground truth</a></nav></header>\n'
        + "\n".join(s for s in sections if s)
        + f'\n<footer class="note"><p>Made by companion {escape(__version__)} '
        "<code>companion report</code>: the recording replayed through the same pipeline "
        "as <code>companion replay</code>.</p></footer>\n</body></html>\n"
    )
