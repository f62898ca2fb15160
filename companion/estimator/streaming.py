"""The streaming estimator: sample batches in, labelled strides out.

One :class:`~companion.estimator.track.SensorTrack` per sensor measures its strides (see
there for the parts each stride goes through); :class:`StreamingEstimator` routes
batches to them and, for a foot sensor with a shank sensor on the same leg, holds the
foot's reports until the shank's samples cover them and adds the ankle angle (foot minus
shank) before the stride is labelled.

Every decision is a function of the samples up to a fixed look-ahead after the event,
never of where batches begin or end, so any chunking of the same stream gives exactly the
same reports.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from companion.estimator.classify import SUPPORTED_LABELS
from companion.estimator.profile import RunnerProfile
from companion.estimator.settings import EstimatorSettings
from companion.estimator.track import SensorTrack
from companion.types import CURVE_POINTS, Label, SampleBatch, SensorInfo, StrideReport

__all__ = ["WAIT_S", "SensorTrack", "StreamingEstimator"]

WAIT_S = 0.5
"""Longest a foot report waits for its shank partner's samples."""
ANKLE_STILL_DPS = 30.0
"""An ankle turning slower than this in stance counts towards ``ankle_still_ms``."""


Trace = tuple[np.ndarray, np.ndarray, int, int, float, float]


def _ankle(trace: Trace, shank: SensorTrack, t_limit: float) -> np.ndarray | None:
    """The ankle angle (foot minus shank, dorsiflexion positive, deg) at the trace's times.

    The shank's tilt is anchored by the closure of the cycle between the foot's two
    mid-stance anchors (the same phase of two strides of the same leg), else by the
    shank's own last anchor.
    """
    t, foot, _, _, t_prev, t_anchor = trace
    if len(t) < 3:
        return None
    shank_deg = None
    if np.isfinite(t_prev):
        shank_deg = shank.sagittal_by_cycle(t_prev, t_anchor, t_limit, t)
    if shank_deg is None:
        shank_deg = shank.sagittal_at(float(t[0]), float(t[-1]), t_limit, t)
    return None if shank_deg is None else foot - shank_deg


def ankle_features(trace: Trace, ankle: np.ndarray) -> dict[str, float]:
    """The ankle over one stride (from its IC to the next; the trace starts a little
    before the IC): its angle at contact, range, stance dorsiflexion and stillness."""
    t, _, i_ic, i_to, _, _ = trace
    stride = ankle[i_ic:]
    stance = ankle[i_ic : i_to + 1]
    dt = np.diff(t[i_ic : i_to + 1])
    rate = np.abs(np.diff(stance)) / np.maximum(dt, 1e-6)
    return {
        "ankle_ic_deg": float(ankle[i_ic]),
        "ankle_rom_deg": float(np.ptp(stride)),
        "ankle_stance_df_deg": float(stance.max() - stance[0]),
        "ankle_still_ms": 1000.0 * float(np.sum(dt[rate < ANKLE_STILL_DPS])),
    }


class StreamingEstimator:
    """Labelled strides from sample batches of any size, one track per sensor.

    Parameters
    ----------
    sensors
        The source's sensors by name.
    settings
        Estimator settings (thresholds, windows).
    profile
        A saved relaxed baseline for this runner; without it the baseline is
        learned from the first ``settings.baseline_strides`` strides.
    keep_curves
        Attach each stride's angle curves to its report (for reports and plots).
    """

    def __init__(
        self,
        sensors: dict[str, SensorInfo],
        settings: EstimatorSettings,
        profile: RunnerProfile | None = None,
        *,
        keep_curves: bool = False,
    ) -> None:
        self.settings = settings
        self._profile_in = profile
        self.keep_curves = keep_curves
        self.tracks: dict[str, SensorTrack] = {}
        for name, info in sensors.items():
            base = None
            if profile is not None:
                base = profile.baseline(info.segment, settings.baseline_strides)
            track = SensorTrack(info, settings, base)
            track.keep_curves = keep_curves
            self.tracks[name] = track
        # a foot sensor with a shank sensor of the same leg (or of an unknown side) gets
        # the ankle angle: its reports wait until the shank's samples cover them
        self._partner: dict[str, str] = {}
        shanks = [t for t in self.tracks.values() if t.info.segment == "shank"]
        for name, track in self.tracks.items():
            if track.info.segment != "foot":
                continue
            for sh in shanks:
                if "unknown" in (sh.info.side, track.info.side) or sh.info.side == track.info.side:
                    self._partner[name] = sh.info.name
                    track.defer = True
                    break
        self._pending: list[StrideReport] = []

    def push(self, batch: SampleBatch) -> list[StrideReport]:
        """Feed one batch (any size); return the strides it completed."""
        track = self.tracks.get(batch.sensor)
        if track is None:
            return []
        reps = track.push(batch)
        if track.defer:
            self._pending.extend(reps)
            reps = []
        if self._pending:
            reps.extend(self._release(final=False))
        return reps

    def finish(self) -> list[StrideReport]:
        """End of stream; strides whose closing contact was not confirmed are dropped."""
        out = self._release(final=True)
        for track in self.tracks.values():
            out.extend(track.finish())
        return out

    def _release(self, final: bool) -> list[StrideReport]:
        """Finish the foot reports whose shank samples have arrived (or never will)."""
        out: list[StrideReport] = []
        keep: list[StrideReport] = []
        for rep in self._pending:
            foot = self.tracks[rep.sensor]
            shank = self.tracks[self._partner[rep.sensor]]
            shank_t, foot_t = shank.last_t_s, foot.last_t_s
            if not (final or shank_t >= rep.t_decided_s or foot_t > rep.t_decided_s + WAIT_S):
                keep.append(rep)
                continue
            trace = foot.traces.pop(rep.stride, None)
            feats = dict(rep.features)
            curves = dict(rep.curves)
            ankle = None if trace is None else _ankle(trace, shank, rep.t_decided_s)
            if trace is not None and ankle is not None:
                feats.update(ankle_features(trace, ankle))
                if self.keep_curves:
                    curves["ankle_deg"] = np.interp(
                        np.linspace(rep.t_ic_s, rep.t_end_s, CURVE_POINTS), trace[0], ankle
                    )
            out.append(foot.finalize(replace(rep, features=feats, curves=curves)))
        self._pending = keep
        return out

    def profile(self) -> RunnerProfile | None:
        """The learned (or loaded) relaxed baseline per segment, to save."""
        prof = RunnerProfile(self._profile_in.runner if self._profile_in else "runner")
        for track in self.tracks.values():
            seg = track.info.segment
            if track.baseline.ready and seg not in prof.segments:
                prof.segments[seg] = dict(track.baseline.stats)
                prof.strides[seg] = track.baseline.target
        return prof if prof.segments else None

    def hints(self) -> list[str]:
        """Likely causes, per sensor that gave no strides (units, mounting)."""
        return [h for track in self.tracks.values() for h in track.hints()]

    def supported_labels(self, sensor: str) -> set[Label]:
        """The labels this sensor's set-up can see (see docs/estimator.md)."""
        track = self.tracks.get(sensor)
        if track is None:
            return set()
        return set(SUPPORTED_LABELS[track.info.segment])
