"""Speech rendered ahead of time with the real engine (pyttsx3 + espeak-ng), and its cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.errors import ConfigError
from companion.voice.library import Tone
from companion.voice.render import (
    PEAK,
    Renderer,
    earcon_clip,
    engine_version,
    load_clip,
    read_wav,
)
from tests._audio_env import missing_espeak

pytestmark = pytest.mark.skipif(bool(missing_espeak()), reason=missing_espeak() or "ok")

PHRASES = ["Relax the ankle.", "Soft ankle.", "Let the foot land under you."]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_each_phrase_renders_to_real_speech_of_a_plausible_length(tmp_path: Path) -> None:
    r = Renderer(tmp_path, rate_wpm=175)
    res = r.render(PHRASES)
    assert res.rendered == PHRASES and res.cached == []
    for text in PHRASES:
        raw, rate_in = read_wav(r.path_for(text))
        assert rate_in >= 16000
        clip = load_clip(r.path_for(text), 48000, volume=1.0)
        words = len(text.split())
        seconds = len(clip) / 48000
        # 175 words/min is ~0.34 s a word; allow espeak-ng's own pacing and the pauses
        assert 0.15 * words < seconds < 0.5 * words + 0.3, (text, seconds)
        assert seconds < len(raw) / rate_in  # engine padding trimmed
        assert np.abs(clip).max() == pytest.approx(PEAK, abs=1e-3)  # loud, never clipped
        # speech, not a tone or noise floor: energy in most 50 ms frames of the clip
        frames = clip[: len(clip) // 2400 * 2400].reshape(-1, 2400)
        loud = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) > 0.02
        assert loud.mean() > 0.5 and rms(clip) > 0.05
        # speech energy sits in the voice band
        spec = np.abs(np.fft.rfft(clip)) ** 2
        f = np.fft.rfftfreq(len(clip), 1 / 48000)
        assert spec[(f > 80) & (f < 4000)].sum() > 0.8 * spec.sum()


def test_a_faster_rate_gives_shorter_speech(tmp_path: Path) -> None:
    text = "Let the foot land under you."
    slow, fast = Renderer(tmp_path, rate_wpm=120), Renderer(tmp_path, rate_wpm=260)
    slow.render([text])
    fast.render([text])
    n_slow = len(load_clip(slow.path_for(text), 48000, 1.0))
    n_fast = len(load_clip(fast.path_for(text), 48000, 1.0))
    assert n_fast < 0.75 * n_slow


def test_unchanged_phrases_are_never_rendered_again_changed_ones_are(tmp_path: Path) -> None:
    r = Renderer(tmp_path, rate_wpm=175)
    r.render(PHRASES)
    mtimes = {t: r.path_for(t).stat().st_mtime_ns for t in PHRASES}
    again = r.render(PHRASES)
    assert again.rendered == [] and again.cached == PHRASES
    assert {t: r.path_for(t).stat().st_mtime_ns for t in PHRASES} == mtimes
    edited = [PHRASES[0], "Soft, easy ankle.", PHRASES[2]]
    res = r.render(edited)
    assert res.rendered == ["Soft, easy ankle."]
    assert r.path_for(PHRASES[0]).stat().st_mtime_ns == mtimes[PHRASES[0]]
    # another rate or voice is another key: rendered afresh, the first set kept
    other = Renderer(tmp_path, rate_wpm=200)
    assert other.render(PHRASES).rendered == PHRASES
    assert all(r.path_for(t).is_file() for t in PHRASES)
    assert len({r.path_for(PHRASES[0]), other.path_for(PHRASES[0])}) == 2
    assert "espeak" in engine_version().lower()


def test_clips_are_resampled_to_the_device_rate(tmp_path: Path) -> None:
    r = Renderer(tmp_path)
    r.render([PHRASES[0]])
    a = load_clip(r.path_for(PHRASES[0]), 48000, 0.5)
    b = load_clip(r.path_for(PHRASES[0]), 44100, 0.5)
    assert a.dtype == np.float32 and b.dtype == np.float32
    assert len(a) / 48000 == pytest.approx(len(b) / 44100, rel=0.01)
    assert np.abs(a).max() == pytest.approx(0.5 * PEAK, abs=1e-3)  # the volume setting


def test_an_unknown_voice_is_a_config_error_that_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"voice.voice = 'no-such-voice'.*cues list --voices"):
        Renderer(tmp_path, voice="no-such-voice").render(["Hello."])
    assert not list(tmp_path.glob("*.wav"))


def test_earcon_is_its_tones_then_a_short_gap() -> None:
    clip = earcon_clip([Tone(660, 60), Tone(990, 80)], 48000, volume=1.0)
    assert len(clip) == int(0.060 * 48000) + int(0.080 * 48000) + int(0.060 * 48000)
    first = clip[: int(0.060 * 48000)]
    f = np.fft.rfftfreq(len(first), 1 / 48000)
    assert abs(f[np.argmax(np.abs(np.fft.rfft(first)))] - 660) < 20
    assert first[0] == 0.0 and abs(first[-1]) < 0.01  # soft edges: no click
    assert not clip[-int(0.05 * 48000) :].any()


def test_the_landing_earcon_is_a_short_soft_tone_with_no_gap(tmp_path: Path) -> None:
    """Tones only: played even with voice.earcons off, at landing_earcon_volume of the cue
    volume (under the words), swelling in and dying away (no click), no trailing silence."""
    from companion.voice.audio import prepare_clips
    from companion.voice.library import load_library
    from companion.voice.settings import VoiceSettings

    settings = VoiceSettings(cache_dir=str(tmp_path), earcons=False, volume=0.8)
    lib = load_library(settings)
    lib.cues = {c: lib.cues[c] for c in ("landing_tone", "heel_down")}  # less to render
    clips = prepare_clips(lib, settings, 48000)
    tone = clips[("landing_tone", "")]
    (spec,) = lib.earcon("landing_tone")
    assert len(tone) == round(spec.ms * 48) and tone[0] == 0.0 and abs(tone[-1]) < 1e-3
    peak = 0.5 * PEAK * 0.8 * settings.landing_earcon_volume
    assert np.abs(tone).max() == pytest.approx(peak, rel=0.02)
    words = clips[("heel_down", "Let the heel down.")]
    assert np.abs(tone).max() < 0.5 * np.abs(words).max()  # soft, under the words
    f = np.fft.rfftfreq(len(tone), 1 / 48000)
    assert abs(f[np.argmax(np.abs(np.fft.rfft(tone)))] - spec.hz) < 20
    assert np.abs(tone[:96]).max() < 0.3 * peak  # swells in over 8 ms: 2 ms in, still low


def test_the_speech_cache_is_written_for_the_user_alone(tmp_path: Path) -> None:
    """Folders made for the cache are 0700 and every clip 0600, whatever the umask; a folder
    that already existed (it may be shared on purpose) is left as it was."""
    import os
    import stat

    cache = tmp_path / "shared" / "companion" / "speech"
    (tmp_path / "shared").mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        Renderer(cache).render([PHRASES[1]])
    finally:
        os.umask(old)
    for folder in (cache, cache.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755
    (wav,) = cache.glob("*.wav")
    assert stat.S_IMODE(wav.stat().st_mode) == 0o600
    assert not list(cache.glob(".render-*"))  # the temporary folder is gone
