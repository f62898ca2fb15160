"""Cues on a real PortAudio stream, read back from where they were played.

A private PulseAudio daemon with a null sink (started and stopped here) is the
"earbuds": ``parec`` on its monitor records exactly what the stream played, so the
tests check the samples themselves: the rendered clip, whole, unclipped, without
gaps or repeats; a higher-priority cue cutting a lower one; a stale cue dropped.
ALSA's ``file`` plugin is a second, independent output for a content check.
No mocks: real espeak-ng speech, real sounddevice, real PortAudio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from companion.voice.render import PEAK
from tests._audio_env import (
    RATE_HZ,
    ROOT,
    SINK,
    PulseCapture,
    PulseNullSink,
    alsa_file_env,
    missing_audio_tools,
    read_wav_any,
    run_child,
)

pytestmark = [
    pytest.mark.audio,
    pytest.mark.skipif(bool(missing_audio_tools()), reason=missing_audio_tools() or "ok"),
]

FADE_MS = 8.0


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseNullSink]:
    with PulseNullSink(RATE_HZ) as p:
        yield p


def settings(cache_dir: Path, **kw: Any) -> dict[str, Any]:
    return {
        "cache_dir": str(cache_dir),
        "sample_rate_hz": RATE_HZ,
        "fade_ms": FADE_MS,
        "stale_after_s": 5.0,
        **kw,
    }


def ncc(x: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``clip`` at every offset of ``x`` (1.0 = identical)."""
    from scipy.signal import correlate

    x64, c64 = x.astype(np.float64), clip.astype(np.float64)
    num = correlate(x64, c64, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(x64**2)])
    win = energy[len(c64) :] - energy[: len(energy) - len(c64)]
    return num / (np.sqrt(np.maximum(win, 1e-12)) * np.linalg.norm(c64))


def locate(x: np.ndarray, clip: np.ndarray) -> tuple[int, float]:
    r = ncc(x, clip)
    i = int(np.argmax(r))
    return i, float(r[i])


def n_matches(x: np.ndarray, clip: np.ndarray, threshold: float = 0.9) -> int:
    """How many separate places of ``x`` hold ``clip``."""
    hits = np.flatnonzero(ncc(x, clip) > threshold)
    return int(len(hits) > 0) + int((np.diff(hits) > len(clip) // 2).sum())


def played(pulse: PulseNullSink, job: dict[str, Any], tmp: Path) -> tuple[np.ndarray, dict, Any]:
    pulse.check()
    cap = PulseCapture(pulse)
    try:
        out = run_child({**job, "clips_out": str(tmp / "clips.npz"), "device": "pulse"}, pulse.env)
    except AssertionError:
        pulse.check()  # the daemon's log, when it was the daemon that died
        raise
    finally:
        x = cap.stop()
    return x, out, np.load(tmp / "clips.npz")


def kinds(out: dict) -> list[tuple[str, str]]:
    return [(e["kind"], e["id"]) for e in out["events"]]


def test_a_cue_reaches_the_stream_as_the_rendered_clip_whole_and_once(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    job = {
        "settings": settings(cache_dir, volume=0.8),
        "warm": True,
        "cues": [{"at_s": 0.1, "id": "relax_ankle", "phrase": 0}],
    }
    x, out, clips = played(pulse, job, tmp_path)
    clip = clips["relax_ankle|Relax the ankle."]
    assert kinds(out) == [("started", "relax_ankle"), ("finished", "relax_ankle")]
    assert out["sink"] == "ProcessAudioSink"  # the default: audio in its own process
    assert out["lines"] == ["[   0.1 s] relax_ankle: Relax the ankle."]  # echoed for the runner
    assert out["rate_hz"] == RATE_HZ and out["block"] == 720 and out["output_latency_s"] > 0
    i, score = locate(x, clip)
    assert score > 0.999, f"the played audio does not match the clip (ncc {score:.3f})"
    n = len(clip)
    # sample for sample: no gap, no stutter, the right length
    assert np.abs(x[i : i + n] - clip).max() < 1e-4
    assert np.abs(x[max(i - RATE_HZ // 10, 0) : i]).max() < 1e-4  # silence before
    assert np.abs(x[i + n : i + n + RATE_HZ // 5]).max() < 1e-4  # and after: played once
    assert n_matches(x, clip) == 1
    # no clipping: the loudest sample is the clip's own, below full scale
    assert np.abs(x).max() == pytest.approx(0.8 * PEAK, abs=1e-3) and np.abs(x).max() < 1.0
    # the clip is earcon + words: it starts with the earcon's tone
    first = clip[: int(0.05 * RATE_HZ)]
    f = np.fft.rfftfreq(len(first), 1 / RATE_HZ)
    assert abs(f[np.argmax(np.abs(np.fft.rfft(first)))] - 660) < 30


def test_preemption_waiting_staleness_and_duplicates_on_a_real_stream(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    job = {
        "settings": settings(cache_dir),
        "warm": True,
        "cues": [
            {"at_s": 0.0, "id": "good_ankle", "phrase": 0},  # priority 3
            {"at_s": 0.3, "id": "sensor_lost", "phrase": 0},  # 9: cuts good_ankle short
            {"at_s": 0.4, "id": "relax_ankle", "phrase": 0, "stale_after_s": 0.3},  # 5: waits,
            # then stale before sensor_lost ends (~2 s) -> dropped
            {"at_s": 0.5, "id": "sensor_back", "phrase": 0},  # 8: waits, then plays
            {"at_s": 0.6, "id": "sensor_lost", "phrase": 0},  # already playing: dropped
        ],
    }
    x, out, clips = played(pulse, job, tmp_path)
    good = clips["good_ankle|Good, relaxed."]
    lost = clips["sensor_lost|Sensor lost. Coaching paused."]
    back = clips["sensor_back|Sensor back."]
    relax = clips["relax_ankle|Relax the ankle."]
    ev = kinds(out)
    assert ev == [
        ("started", "good_ankle"),
        ("preempted", "good_ankle"),
        ("started", "sensor_lost"),
        ("dropped_duplicate", "sensor_lost"),
        ("dropped_stale", "relax_ankle"),
        ("finished", "sensor_lost"),
        ("started", "sensor_back"),
        ("finished", "sensor_back"),
    ], ev
    rate = RATE_HZ
    i_good, s_good = locate(x, good[: int(0.25 * rate)])
    i_lost, s_lost = locate(x, lost)
    i_back, s_back = locate(x, back)
    assert s_good > 0.999 and s_lost > 0.99 and s_back > 0.999
    # good_ankle played from its start until sensor_lost cut in, about 0.3 s later
    cut = i_lost - i_good
    assert 0.25 * rate < cut < 0.36 * rate, cut / rate
    assert np.abs(x[i_good:i_lost] - good[:cut]).max() < 1e-4
    # after a short fade only sensor_lost is heard, whole (the fade is under its first ms)
    fade = int(FADE_MS / 1000 * rate)
    assert np.abs(x[i_lost + fade : i_lost + len(lost)] - lost[fade:]).max() < 1e-4
    mix = x[i_lost : i_lost + fade] - lost[:fade]  # the fading tail of good_ankle
    assert np.abs(mix).max() > 1e-3 and np.abs(mix[-10:]).max() < 0.05
    # sensor_back waited and followed with no gap; the stale relax_ankle was never played
    assert i_back == i_lost + len(lost)
    assert np.abs(x[i_back : i_back + len(back)] - back).max() < 1e-4
    _, s_relax = locate(x, relax)
    assert s_relax < 0.5, f"relax_ankle seems to have played (ncc {s_relax:.2f})"
    assert np.abs(x).max() < 1.0


def test_a_busy_run_loop_does_not_put_gaps_in_the_cues(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    """The audio runs in its own process: the run's GIL-hungry work cannot starve it.

    (With ``isolate = false`` the same script comes out with gaps: ncc 0.3-0.8.)
    """
    said = {
        "sensor_lost": (0, "Sensor lost. Coaching paused."),
        "relax_ankle": (2, "Let the ankle move."),
        "soft_landing": (1, "Let the foot land under you."),
    }
    job = {
        "settings": settings(cache_dir),
        "warm": True,
        "busy": True,
        "cues": [
            {"at_s": 0.2 + 0.1 * k, "id": cid, "phrase": ph}
            for k, (cid, (ph, _)) in enumerate(said.items())
        ],
    }
    x, out, clips = played(pulse, job, tmp_path)
    assert [cid for kind, cid in kinds(out) if kind == "started"] == list(said)
    for cid, (_, text) in said.items():
        clip = clips[f"{cid}|{text}"]
        i, score = locate(x, clip)
        assert score > 0.999, f"{cid}: ncc {score:.3f}"
        assert np.abs(x[i : i + len(clip)] - clip).max() < 1e-4, f"gap or glitch in {cid}"


def test_two_cues_decided_together_both_come_out_whole_at_the_default_block(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    """The product's defaults (15 ms blocks, a three-block buffer, the shared-memory
    mailbox): two cues written in the same instant both reach the callback, in order, and
    are heard back to back, sample for sample."""
    job = {
        # the defaults, but for the staleness limit (the second cue waits for the first)
        "settings": {"cache_dir": str(cache_dir), "sample_rate_hz": RATE_HZ, "stale_after_s": 5},
        "warm": True,
        "cues": [
            {"at_s": 0.1, "id": "toes_down", "phrase": 0},
            {"at_s": 0.1, "id": "heel_down", "phrase": 0},  # same priority: waits, follows
        ],
    }
    x, out, clips = played(pulse, job, tmp_path)
    assert out["sink"] == "ProcessAudioSink" and out["block"] == 720  # 15 ms at 48 kHz
    assert out["output_latency_s"] == pytest.approx(0.045, abs=4e-3)  # three blocks
    assert kinds(out) == [
        ("started", "toes_down"),
        ("finished", "toes_down"),
        ("started", "heel_down"),
        ("finished", "heel_down"),
    ]
    assert out["stats"]["taken"] == 2
    toes = clips["toes_down|Let the toes drop."]
    heel = clips["heel_down|Let the heel down."]
    i, score = locate(x, toes)
    assert score > 0.999 and np.abs(x[i : i + len(toes)] - toes).max() < 1e-4
    j = i + len(toes)  # no gap: the second starts on the sample after the first ends
    assert np.abs(x[j : j + len(heel)] - heel).max() < 1e-4
    assert n_matches(x, toes) == 1 and n_matches(x, heel) == 1


def test_the_mailbox_ring_wraps_around_on_a_real_stream(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    """More cues and silences than the mailbox has slots (64), a few ms apart: every one
    reaches the callback, and the last cue is still heard whole."""
    cues: list[dict[str, Any]] = []
    for k in range(40):
        cues.append({"at_s": 0.1 + 0.008 * k, "id": ("relax_ankle", "good_ankle")[k % 2]})
        cues.append({"at_s": 0.104 + 0.008 * k, "silence": True})
    cues.append({"at_s": 0.5, "id": "sensor_back", "phrase": 0})
    job = {"settings": {"cache_dir": str(cache_dir), "sample_rate_hz": RATE_HZ}, "warm": True}
    x, out, clips = played(pulse, {**job, "cues": cues}, tmp_path)
    assert out["stats"]["taken"] == 81  # 41 cues and 40 silences, through 64 slots
    seen = {e["cue_t_s"] for e in out["events"] if e["id"] != "sensor_back"}
    assert seen == {c["at_s"] for c in cues if "id" in c and c["id"] != "sensor_back"}
    assert kinds(out)[-2:] == [("started", "sensor_back"), ("finished", "sensor_back")]
    back = clips["sensor_back|Sensor back."]
    i, score = locate(x, back)
    assert score > 0.999 and np.abs(x[i : i + len(back)] - back).max() < 1e-4


def test_the_alsa_file_plugin_captures_the_rendered_clip(cache_dir: Path, tmp_path: Path) -> None:
    env, wav = alsa_file_env(tmp_path)
    out = run_child(
        {
            "settings": settings(cache_dir, isolate=False),  # the in-process sink, too
            "device": "cuefile",
            "warm": False,
            "cues": [{"at_s": 0.0, "id": "heel_down", "phrase": 1}],
            "clips_out": str(tmp_path / "clips.npz"),
        },
        env,
    )
    clip = np.load(tmp_path / "clips.npz")["heel_down|Heel can touch."]
    assert out["sink"] == "AudioSink" and ("started", "heel_down") in kinds(out)
    x, rate = read_wav_any(wav)
    assert rate == RATE_HZ
    # this output runs faster than real time: keep the part around the cue (+- 2 s)
    start = next(e["frame"] for e in out["events"] if e["kind"] == "started")
    lo = max(start - 2 * RATE_HZ, 0)
    x = x[lo : start + len(clip) + 2 * RATE_HZ]
    i, score = locate(x, clip)
    assert score > 0.999
    assert np.abs(x[i : i + len(clip)] - clip).max() < 1e-3  # at most 16-bit rounding
    assert n_matches(x, clip) == 1


def test_cues_say_plays_one_cue_and_prints_it(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "say.toml"
    cfg.write_text(
        f'[voice]\ncache_dir = "{cache_dir}"\nsample_rate_hz = {RATE_HZ}\nearcons = false\n'
    )
    cap = PulseCapture(pulse)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "companion", "cues", "say", "soft_landing", "-c", str(cfg)],
            capture_output=True,
            text=True,
            env={**pulse.env, "PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")},
            timeout=60,
        )
    finally:
        x = cap.stop()
    assert res.returncode == 0, res.stderr
    assert "soft_landing: Land soft, under you." in res.stdout
    assert "WARNING" not in res.stderr  # it found the device: no console fallback
    from companion.voice.render import Renderer, load_clip

    r = Renderer(cache_dir)
    clip = load_clip(r.path_for("Land soft, under you."), RATE_HZ, 0.9)
    i, score = locate(x, clip)
    assert score > 0.999 and np.abs(x[i : i + len(clip)] - clip).max() < 1e-4


def test_the_landing_earcon_is_heard_soft_and_never_cuts_a_spoken_cue(
    pulse: PulseNullSink, cache_dir: Path, tmp_path: Path
) -> None:
    """The tone alone is heard whole and soft; a tone decided while a spoken cue plays does
    not cut it or sound over it: it waits, and is dropped once too late for its landing."""
    from companion.coach.policy import LANDING_STALE_S

    tone = {"id": "landing_tone", "stale_after_s": LANDING_STALE_S}
    job = {
        "settings": settings(cache_dir),
        "warm": True,
        "cues": [
            {"at_s": 0.1, **tone},
            {"at_s": 0.5, "id": "soft_landing", "phrase": 1},
            {"at_s": 0.8, **tone},  # during the words
        ],
    }
    x, out, clips = played(pulse, job, tmp_path)
    assert kinds(out) == [
        ("started", "landing_tone"),
        ("finished", "landing_tone"),
        ("started", "soft_landing"),
        ("dropped_stale", "landing_tone"),
        ("finished", "soft_landing"),
    ]
    assert out["lines"] == ["[   0.5 s] soft_landing: Let the foot land under you."]
    beep, words = clips["landing_tone|"], clips["soft_landing|Let the foot land under you."]
    i, score = locate(x, beep)
    assert score > 0.999 and np.abs(x[i : i + len(beep)] - beep).max() < 1e-4
    assert n_matches(x, beep) == 1  # the second one never sounded
    assert np.abs(beep).max() < 0.35 * np.abs(words).max()  # soft, under the words
    j, score = locate(x, words)
    assert score > 0.999 and np.abs(x[j : j + len(words)] - words).max() < 1e-4  # whole


@pytest.mark.parametrize("isolate", [True, False], ids=["audio-process", "in-process"])
def test_cues_fall_back_to_the_console_while_the_device_is_gone_and_come_back_with_it(
    cache_dir: Path, tmp_path: Path, isolate: bool
) -> None:
    """The earbuds switched off and on mid-run: the PulseAudio sink removed and added again.
    Meanwhile the cues are printed (and said once, as a warning), the run goes on; when the
    sink is back the stream is opened again and the next cue is heard whole."""
    null_sink = [
        "load-module",
        "module-null-sink",
        f"sink_name={SINK}",
        "format=float32le",
        f"rate={RATE_HZ}",
        "channels=1",
    ]
    job = {
        "settings": settings(cache_dir, isolate=isolate),
        "device": "pulse",
        "warm": True,
        "clips_out": str(tmp_path / "clips.npz"),
        "cues": [
            {"at_s": 0.1, "id": "good_ankle", "phrase": 0},
            {"at_s": 1.0, "pactl": ["unload-module", "module-null-sink"]},
            {"at_s": 1.0, "wait_device": 5.0, "up": False},  # noticed within 0.25 s
            {"at_s": 1.6, "id": "heel_down", "phrase": 0},  # the device is gone: printed
            {"at_s": 1.8, "id": "good_ankle", "phrase": 1},
            {"at_s": 2.0, "pactl": null_sink},
            {"at_s": 2.0, "wait_device": 20.0},
            {"at_s": 2.0, "capture": True},
            {"at_s": 2.4, "id": "sensor_back", "phrase": 0},
        ],
    }
    with PulseNullSink(RATE_HZ) as own:  # its own daemon: the others keep their sink
        out = run_child(job, own.env, timeout_s=90)
    assert out["lines"] == [
        "[   0.1 s] good_ankle: Good, relaxed.",
        "[   1.6 s] heel_down: Let the heel down.",
        "[   1.8 s] good_ankle: Nice and easy.",
        "[   2.4 s] sensor_back: Sensor back.",
    ]
    (gone, t_gone), (back, t_back) = out["device_changes"]
    assert (gone, back) == (False, True) and 1.0 < t_gone < t_back
    assert any("is gone; cues are printed" in w for w in out["warnings"])
    assert any("is back; cues are spoken" in w for w in out["warnings"])
    assert kinds(out) == [
        ("started", "good_ankle"),
        ("finished", "good_ankle"),
        ("started", "sensor_back"),
        ("finished", "sensor_back"),
    ]
    assert out["stats"]["reopens"] == 1 and out["stats"]["device_ok"]
    data = np.load(tmp_path / "clips.npz")
    x, back_clip = data["capture"], data["sensor_back|Sensor back."]
    i, score = locate(x, back_clip)
    assert score > 0.999 and np.abs(x[i : i + len(back_clip)] - back_clip).max() < 1e-4
