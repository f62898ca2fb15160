"""The cue policy: turns per-stride labels into a few well-timed cues.

Rules, per sensor and with one voice for the runner:

* **Persistence** – a fault is *active* when it labels at least ``persist_k`` of the
  last ``persist_n`` strides (baseline learned, confidence >= ``min_confidence``).
  One odd stride never triggers a cue.
* **Priorities** – when several faults are active, the cue with the highest
  library priority wins.
* **Cooldown** – after any fault cue no fault cue for ``cooldown_s``; the *same*
  cue is not repeated for ``repeat_s`` while its fault goes on.
* **Positive cue** – once a cued fault has gone (the last ``persist_k`` strides of
  that sensor clearly relaxed: confidence >= ``positive_min_confidence``, so a stride
  just under a fault's threshold is not praised), ``good_ankle`` is said once
  (``positive_cue = true``).
* **Link cues** – ``sensor_lost`` / ``sensor_back`` when a live link drops or
  returns; they bypass the cooldown (the runner must know coaching has paused).
* **Landing earcon** (``landing_earcon``) – per-stride feedback, as in live gait
  retraining: every stride judged faulty (baseline learned, confidence >=
  ``min_confidence``) gets the tone-only cue ``cue_landing`` at its decision, right
  after the landing that closes the stride, no persistence needed, at most one per
  ``landing_cooldown_s``. It is dropped when not started within ``LANDING_STALE_S``
  (it belongs to that landing) and is not added when a spoken fault cue goes out at
  the same stride (that cue starts with its own earcon). With ``spoken_faults =
  False`` the fault cues are decided as always (so the positive cue still follows
  a fault) but the tone goes out in their place.

Pure and clock-free: time is the stream time carried by reports and events, so a
replay decides exactly as the live run did.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from companion.coach.settings import CoachSettings
from companion.types import Cue, Label, LinkEvent, StrideReport

LANDING_STALE_S = 0.2
"""A landing earcon not started this long after its decision is dropped: it would no
longer come with the landing it answers (a stance lasts about 0.2-0.3 s)."""


@dataclass
class _SensorState:
    recent: deque[Label]
    calm: deque[bool]
    """Per recent stride: relaxed with at least ``positive_min_confidence``."""
    cued_fault: Label | None = None
    """The fault last cued for this sensor, until the runner relaxes again."""
    link_up: bool = True


@dataclass
class CuePolicy:
    """Decide cues from stride reports and link events.

    Parameters
    ----------
    settings
        Persistence, cooldowns and the cue id for each fault.
    priorities
        Cue id -> priority (from the cue library); unknown ids get 0.
    enabled
        Cue ids that may be emitted; ``None`` = all.
    landing_earcon
        Emit the landing earcon at each faulty stride (``voice.landing_earcon``).
    spoken_faults
        Emit the spoken fault cues (``voice.spoken_fault_cues``); False = the landing
        earcon in their place.
    """

    settings: CoachSettings = field(default_factory=CoachSettings)
    priorities: Mapping[str, int] = field(default_factory=dict)
    enabled: Iterable[str] | None = None
    landing_earcon: bool = False
    spoken_faults: bool = True

    def __post_init__(self) -> None:
        s = self.settings
        self._cue_for = {
            Label.RIGID: s.cue_rigid,
            Label.FORCED_DORSIFLEXION: s.cue_forced_dorsiflexion,
            Label.FORCED_PLANTARFLEXION: s.cue_forced_plantarflexion,
        }
        self._enabled = set(self.enabled) if self.enabled is not None else None
        self._sensors: dict[str, _SensorState] = {}
        self._last_fault_cue_t = float("-inf")
        self._last_said: dict[str, float] = {}
        self._last_tone_t = float("-inf")

    # ------------------------------------------------------------------ helpers
    def _state(self, sensor: str) -> _SensorState:
        st = self._sensors.get(sensor)
        if st is None:
            n = self.settings.persist_n
            st = _SensorState(deque(maxlen=n), deque(maxlen=n))
            self._sensors[sensor] = st
        return st

    def _is_on(self, cue_id: str) -> bool:
        return self._enabled is None or cue_id in self._enabled

    def _cue(self, cue_id: str, t_s: float, reason: str, stale_after_s: float) -> Cue:
        self._last_said[cue_id] = t_s
        return Cue(
            id=cue_id,
            t_s=t_s,
            priority=int(self.priorities.get(cue_id, 0)),
            reason=reason,
            stale_after_s=stale_after_s,
        )

    # ------------------------------------------------------------------ inputs
    def on_stride(self, report: StrideReport) -> list[Cue]:
        """Feed one stride report; return the cues to say now (zero or one)."""
        s = self.settings
        st = self._state(report.sensor)
        if not report.baseline_ready or report.carried:
            return []  # no judgement of its own: neither a fault nor a relaxed stride
        label = report.label
        if label is not Label.RELAXED and report.confidence < s.min_confidence:
            label = Label.RELAXED
        st.recent.append(label)
        st.calm.append(
            report.label is Label.RELAXED and report.confidence >= s.positive_min_confidence
        )
        t = report.t_decided_s
        spoken = self._spoken(st, t, max(report.t_end_s - report.t_ic_s, 0.3))
        if spoken and (self.spoken_faults or spoken[0].reason == Label.RELAXED.value):
            return spoken
        if label is not Label.RELAXED:
            return self._landing_tone(t, label)
        return []

    def _spoken(self, st: _SensorState, t: float, stride_s: float) -> list[Cue]:
        """The fault cue (persistence, priority, cooldowns) or the positive cue, if due."""
        s = self.settings
        active = [
            f
            for f in self._cue_for
            if sum(1 for x in st.recent if x is f) >= s.persist_k and self._is_on(self._cue_for[f])
        ]
        if active:
            fault = max(
                active,
                key=lambda f: (
                    self.priorities.get(self._cue_for[f], 0),
                    -list(self._cue_for).index(f),
                ),
            )
            cue_id = self._cue_for[fault]
            if t - self._last_fault_cue_t < s.cooldown_s:
                return []
            if t - self._last_said.get(cue_id, float("-inf")) < s.repeat_s:
                return []
            self._last_fault_cue_t = t
            st.cued_fault = fault
            return [self._cue(cue_id, t, fault.value, stride_s)]

        last_k = list(st.calm)[-s.persist_k :]
        if st.cued_fault is not None and len(last_k) == s.persist_k and all(last_k):
            st.cued_fault = None
            if s.positive_cue and self._is_on(s.cue_positive):
                return [self._cue(s.cue_positive, t, Label.RELAXED.value, stride_s)]
        return []

    def _landing_tone(self, t: float, fault: Label) -> list[Cue]:
        """The landing earcon for a stride judged ``fault``, unless off or cooling down."""
        cue_id = self.settings.cue_landing
        if not self.landing_earcon or not self._is_on(cue_id):
            return []
        if t - self._last_tone_t < self.settings.landing_cooldown_s:
            return []
        self._last_tone_t = t
        return [self._cue(cue_id, t, fault.value, LANDING_STALE_S)]

    def on_link(self, event: LinkEvent) -> list[Cue]:
        """A sensor's link dropped or came back: say so once per change."""
        st = self._state(event.sensor)
        if event.up == st.link_up:
            return []
        st.link_up = event.up
        if not event.up:
            st.recent.clear()  # persistence restarts after a gap; the baseline is kept
            st.calm.clear()
        cue_id = self.settings.cue_sensor_back if event.up else self.settings.cue_sensor_lost
        if not self._is_on(cue_id):
            return []
        return [self._cue(cue_id, event.t_s, "link_up" if event.up else "link_down", 5.0)]
