"""The ground truth of a simulated run: per-stride events, dense angles, and the files
beside a written recording (``NAME.labels.csv``, ``NAME.truth.json``).

``NAME.truth.json`` has the validation set's shape (``../shared/validation/README.md``),
which :func:`companion.scoring.load_truth` reads: run fields (``setup``, ``rate_hz``,
``side``, ``strike``, ``cadence_spm``, ``speed_mps``, ``fsa_deg``, ``duty``, ``loss``,
``t_run0_s``, ``t_score0_s``, the fault sizes ``k_rom``, ``d_dorsi``, ``d_plantar``,
``heel_up``, ``segments`` as ``[label, first stride, end stride)``, ``relaxed_only``, the
sensors' mountings and ranges) and ``strides[]`` with ``stride``, ``t_ic_s``, ``t_to_s``,
``label``, ``fsa_deg``, ``ankle_rom_deg``, ``heel_up_deg``, ``ok``, ``score``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from companion.source.recording import (
    GroundTruthStride,
    Recording,
    labels_path,
    truth_path,
    write_labels,
    write_recording,
)
from companion.source.sim.kinematics import _Leg, _LegMotion

SCORE_AFTER_S = 60.0
"""A stride counts (``score``) after this much full running (the baseline's minute)."""


@dataclass
class SimulatedRun:
    """A simulated run: the recording plus its ground truth.

    ``events[sensor]`` holds per-stride arrays: ``t_ic_s``, ``t_to_s``,
    ``t_msw_s`` (mid-swing: the peak toes-up foot angular rate in swing; NaN past
    the end), ``label`` (str), ``strike_angle_deg`` (foot angle at IC),
    ``ankle_rom_deg`` / ``foot_rom_deg`` (max - min over IC to next IC),
    ``contact_time_s``, ``midstance_foot_deg`` (foot angle at 45 % of
    contact: 0 = foot flat, negative = heel held off the ground), ``heel_up_deg``
    (the same, as degrees the heel is up) and ``ok`` (full running, past the first
    strides' ramp). Times are on the sensor's own clock (see :meth:`to_clock`).
    ``angles`` is the dense truth of the first sensor's leg on the nominal sample
    grid (true time from the recording's start, before loss): ``t_s``, ``foot_deg``,
    ``shank_deg``, ``ankle_deg``, ``frontal_deg``; with two legs also
    ``<side>_foot_deg`` etc. for each leg. ``info`` holds the run's truth fields of
    ``NAME.truth.json``.
    """

    recording: Recording
    truth: list[GroundTruthStride]
    events: dict[str, dict[str, np.ndarray]]
    angles: dict[str, np.ndarray]
    mounts_rpy_deg: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Per sensor whose clock is not true time: true times and the recording's times."""

    def to_clock(self, t_s: float | np.ndarray, sensor: str | None = None) -> np.ndarray:
        """True time (s from the recording's start) on ``sensor``'s clock (default: the
        first sensor's), the clock its samples and labels are stamped with."""
        name = sensor or next(iter(self.recording.sensors))
        t = np.asarray(t_s, dtype=float)
        return on_clock(t, *self.clocks[name]) if name in self.clocks else t

    def truth_document(self) -> dict[str, Any]:
        """``NAME.truth.json``: the run's fields and the first sensor's strides."""
        name = next(iter(self.recording.sensors))
        ev = self.events[name]
        strides = []
        for i in range(len(ev["t_ic_s"])):
            strides.append(
                {
                    "stride": i,
                    "t_ic_s": _r(ev["t_ic_s"][i], 6),
                    "t_to_s": _r(ev["t_to_s"][i], 6),
                    "label": str(ev["label"][i]),
                    "ok": bool(ev["ok"][i]),
                    "fsa_deg": _r(ev["strike_angle_deg"][i], 2),
                    "ankle_rom_deg": _r(ev["ankle_rom_deg"][i], 2),
                    "heel_up_deg": _r(ev["heel_up_deg"][i], 2),
                    "contact_s": _r(ev["contact_time_s"][i], 4),
                    "score": bool(ev["score"][i]),
                }
            )
        return {**self.info, "strides": strides}


def on_clock(t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Times ``t`` mapped through the samples' true times ``x`` and clock times ``y``
    (linear between samples; outside them, at the clock's mean rate)."""
    out = np.interp(t, x, y)
    slope = (y[-1] - y[0]) / (x[-1] - x[0])
    out = np.where(t < x[0], y[0] + (t - x[0]) * slope, out)
    return np.where(t > x[-1], y[-1] + (t - x[-1]) * slope, out)


def _r(x: float, nd: int) -> float | None:
    """A JSON-safe rounded float (NaN: null)."""
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def stride_events(
    leg: _Leg, mo: _LegMotion, t: np.ndarray, t_begin: float, t_end: float
) -> dict[str, np.ndarray]:
    """True events of the strides whose IC falls in ``[t_begin, t_end)`` (the fine grid
    ``t``'s time), with times from ``t_begin``."""
    k0 = int(np.searchsorted(leg.t_ic, t_begin))
    k1 = int(np.searchsorted(leg.t_ic, t_end))
    n = k1 - k0
    t_ic = leg.t_ic[k0:k1]
    t_to = leg.t_ic + leg.contact
    t_next = np.append(leg.t_ic[1:], np.inf)
    pf = mo.splines[0]
    ankle = mo.foot_deg - mo.shank_deg
    i0 = np.searchsorted(t, leg.t_ic[k0 : k1 + 1])
    i0 = np.minimum(i0, len(t) - 1)
    rom_a = np.full(n, np.nan)
    rom_f = np.full(n, np.nan)
    msw = np.full(n, np.nan)
    i_to = np.searchsorted(t, t_to[k0:k1])
    for k in range(n):
        a, b = int(i0[k]), int(i0[k + 1]) if k + 1 < len(i0) else len(t)
        if t_next[k0 + k] > t[-1] or b - a < 3:
            continue  # stride runs past the end
        rom_a[k] = float(np.ptp(ankle[a:b]))
        rom_f[k] = float(np.ptp(mo.foot_deg[a:b]))
        c = int(i_to[k])
        if c < b:
            msw[k] = float(t[c + int(np.argmax(mo.foot_rate_dps[c:b]))])
    t_to_out = t_to[k0:k1].copy()
    t_to_out[t_to_out > t_end] = np.nan
    contact = leg.contact[k0:k1].copy()
    midstance = pf(t_ic + 0.45 * contact)
    return {
        "t_ic_s": t_ic - t_begin,
        "t_to_s": t_to_out - t_begin,
        "t_msw_s": msw - t_begin,
        "label": np.array([lab.value for lab in leg.label[k0:k1]]),
        "strike_angle_deg": pf(t_ic),
        "ankle_rom_deg": rom_a,
        "foot_rom_deg": rom_f,
        "contact_time_s": contact,
        "midstance_foot_deg": midstance,
        "heel_up_deg": np.maximum(-midstance, 0.0),
        "ok": leg.ramp[k0:k1] >= 1.0 - 1e-9,
    }


def dense_angles(mo: _LegMotion, t_s: np.ndarray, t_out: np.ndarray) -> dict[str, np.ndarray]:
    """The leg's true angles at the fine-grid times ``t_s``, labelled with ``t_out``."""
    pf, ps, pr = mo.splines
    foot, shank = pf(t_s), ps(t_s)
    return {
        "t_s": t_out.copy(),
        "foot_deg": foot,
        "shank_deg": shank,
        "ankle_deg": foot - shank,
        "frontal_deg": pr(t_s),
    }


def score_flags(ev: dict[str, np.ndarray], t_score0_s: float) -> np.ndarray:
    """Strides that count: full running, at least :data:`SCORE_AFTER_S` into it, and not
    next to a change of label (a spell's first and last stride, and the strides just
    before and after it, are in between)."""
    lab = ev["label"]
    same_before = np.concatenate([[True], lab[1:] == lab[:-1]])
    same_after = np.concatenate([lab[:-1] == lab[1:], [True]])
    return ev["ok"] & (ev["t_ic_s"] >= t_score0_s) & same_before & same_after


def segments(labels: np.ndarray) -> list[list[Any]]:
    """Fault spells as ``[label, first stride, end stride)``."""
    out: list[list[Any]] = []
    i = 0
    while i < len(labels):
        j = i
        while j + 1 < len(labels) and labels[j + 1] == labels[i]:
            j += 1
        if labels[i] != "relaxed":
            out.append([str(labels[i]), i, j + 1])
        i = j + 1
    return out


def write_simulation(run: SimulatedRun, out_path: str | Path) -> None:
    """Write the recording to ``out_path`` and its ground truth beside it:
    ``<stem>.labels.csv`` and ``<stem>.truth.json``."""
    out = Path(out_path)
    write_recording(out, run.recording)
    write_labels(labels_path(out), run.truth)
    text = json.dumps(run.truth_document(), indent=None, separators=(", ", ": "))
    truth_path(out).write_text(text + "\n", encoding="utf-8")
