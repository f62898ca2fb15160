"""Speech rendered ahead of time: every phrasing to a WAV once, cached on disk, loaded at start.

The hot path never synthesises. :class:`Renderer` renders the phrases that are not
in the cache with pyttsx3 (espeak-ng on Linux) in a child process (pyttsx3 misbehaves
when driven from several threads, and a hung engine cannot stall a run), under a key
made of the text, the voice, the rate and the engine's version, so a changed phrase
is rendered again and an unchanged one never is. :func:`load_clip` reads a cached
clip into a float32 array at the output device's rate (``scipy.signal.resample_poly``),
trimmed of leading silence and scaled to the cue volume; :func:`earcon_clip`
synthesises a cue's tones.

Run as ``python -m companion.voice.render`` it is the child process: a JSON request
on stdin (``voice``, ``rate_wpm``, ``items`` of ``[text, wav_path]``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from companion.errors import AudioError, ConfigError
from companion.files import FILE_MODE, make_private_dirs
from companion.voice.library import Tone

RENDER_TIMEOUT_S = 120.0
SILENCE_DBFS = -45.0
"""Leading/trailing samples quieter than this are trimmed (espeak-ng pads its output)."""
KEEP_MS = 5.0
"""Silence kept before the first sound so the onset is not cut."""
PEAK = 0.89
"""Clip peak at volume 1.0 (-1 dBFS): loud, never clipping, equal across cues."""
EARCON_GAP_MS = 60.0
"""Silence between an earcon's last tone and the words."""


@functools.cache
def engine_version() -> str:
    """``pyttsx3 <v>; <espeak-ng --version>``: part of every cache key."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        py = version("pyttsx3")
    except PackageNotFoundError:
        py = "missing"
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    eng = "no-espeak"
    if espeak:
        try:
            out = subprocess.run(
                [espeak, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
            first = out.strip().splitlines()[0] if out.strip() else ""
            eng = first.split(" Data at")[0].strip() or eng
        except (OSError, subprocess.SubprocessError):
            pass
    return f"pyttsx3 {py}; {eng}"


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("companion")) / "speech"


def cache_key(text: str, voice: str, rate_wpm: int, engine: str) -> str:
    """A file-name-safe key that changes when any of the four changes."""
    blob = json.dumps([text, voice, int(rate_wpm), engine], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass
class RenderResult:
    rendered: list[str]
    cached: list[str]
    seconds: float


class Renderer:
    """Renders phrases to cached WAV files.

    Parameters
    ----------
    cache_dir
        Folder of the cache (created when needed).
    voice
        pyttsx3 voice id or name; empty = the engine's default.
    rate_wpm
        Speaking rate, words per minute.
    """

    def __init__(self, cache_dir: Path | str, voice: str = "", rate_wpm: int = 175) -> None:
        self.cache_dir = Path(cache_dir)
        self.voice = voice
        self.rate_wpm = int(rate_wpm)

    def path_for(self, text: str) -> Path:
        return self.cache_dir / (
            cache_key(text, self.voice, self.rate_wpm, engine_version()) + ".wav"
        )

    def missing(self, texts: Iterable[str]) -> list[str]:
        return [t for t in dict.fromkeys(texts) if not self.path_for(t).is_file()]

    def render(self, texts: Iterable[str]) -> RenderResult:
        """Render every text not yet cached (one child process for all); return what it did."""
        t0 = time.perf_counter()
        texts = list(dict.fromkeys(texts))
        todo = self.missing(texts)
        cached = [t for t in texts if t not in todo]
        if todo:
            try:
                make_private_dirs(self.cache_dir)  # the cache is the user's alone
            except OSError as exc:
                raise AudioError(
                    f"cannot create the speech cache {self.cache_dir}: {exc.strerror}; "
                    "set voice.cache_dir to a writable folder"
                ) from None
            with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".render-") as tmp:
                items = [[t, str(Path(tmp) / f"{i}.wav")] for i, t in enumerate(todo)]
                _run_worker(self.voice, self.rate_wpm, items)
                for (text, tmp_path), final in zip(
                    items, (self.path_for(t) for t in todo), strict=True
                ):
                    _check_wav(Path(tmp_path), text)
                    os.chmod(tmp_path, FILE_MODE)
                    os.replace(tmp_path, final)  # atomic: a half-written clip is never cached
        return RenderResult(todo, cached, time.perf_counter() - t0)


def _run_worker(voice: str, rate_wpm: int, items: list[list[str]]) -> None:
    req = json.dumps({"voice": voice, "rate_wpm": rate_wpm, "items": items})
    try:
        res = subprocess.run(
            [sys.executable, "-m", "companion.voice.render"],
            input=req,
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
    except subprocess.TimeoutExpired:
        raise AudioError(
            f"speech rendering took over {RENDER_TIMEOUT_S:.0f} s and was stopped; "
            "check that `espeak-ng 'hello'` works"
        ) from None
    if res.returncode == 2:
        raise ConfigError(res.stderr.strip().splitlines()[-1])
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise AudioError(
            f"the speech engine failed: {tail}; install espeak-ng (apt install espeak-ng) "
            "and pyttsx3, then run `companion cues render`"
        )


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[2])
    old = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + old if old else "")


def _check_wav(path: Path, text: str) -> None:
    if not path.is_file() or path.stat().st_size <= 44:
        raise AudioError(f"the speech engine wrote no audio for {text!r}; check espeak-ng")


# --------------------------------------------------------------------------- clips
def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as mono float32 in [-1, 1] and its rate."""
    with wave.open(str(path), "rb") as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        raise AudioError(f"{path}: {8 * width}-bit audio; expected 16-bit PCM")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``), float32 out."""
    if rate_in == rate_out:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    f = Fraction(rate_out, rate_in).limit_denominator(1000)
    return resample_poly(x, f.numerator, f.denominator).astype(np.float32)


def trim_silence(x: np.ndarray, rate_hz: int, threshold_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """Cut the engine's leading and trailing silence, keeping ``KEEP_MS`` before the onset."""
    thr = 10.0 ** (threshold_dbfs / 20.0)
    loud = np.flatnonzero(np.abs(x) > thr)
    if len(loud) == 0:
        return x[:0]
    keep = int(KEEP_MS * rate_hz / 1000)
    return x[max(loud[0] - keep, 0) : min(loud[-1] + keep + 1, len(x))]


def _raised_cosine(n: int) -> np.ndarray:
    """A rise from 0 to 1 over ``n`` samples (half a cosine period)."""
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n))).astype(np.float32)


def fade_edges(x: np.ndarray, rate_hz: int, ms: float = 3.0) -> np.ndarray:
    """Short raised-cosine fades at both ends so a clip starts and stops without a click."""
    n = min(int(ms * rate_hz / 1000), len(x) // 2)
    if n > 0:
        ramp = _raised_cosine(n)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def load_clip(path: Path, rate_hz: int, volume: float) -> np.ndarray:
    """A cached rendering as float32 at ``rate_hz``: trimmed, faded, peak ``PEAK * volume``."""
    x, rate_in = read_wav(path)
    x = trim_silence(resample(x, rate_in, rate_hz), rate_hz)
    if len(x) == 0:
        raise AudioError(f"{path}: the rendered speech is silent; delete it and render again")
    x = fade_edges(x.copy(), rate_hz)
    x *= np.float32(PEAK * volume / max(float(np.max(np.abs(x))), 1e-9))
    return x


def earcon_clip(
    tones: Iterable[Tone], rate_hz: int, volume: float, *, soft: bool = False
) -> np.ndarray:
    """The earcon's tones back to back (each with soft edges), then a short gap.

    ``soft`` (a tone-only cue: the landing earcon) gives each tone a gentle swell and a
    decay over its second half instead of short edges, and no gap after it.
    """
    parts = []
    for tone in tones:
        n = round(tone.ms * rate_hz / 1000)
        t = np.arange(n, dtype=np.float64) / rate_hz
        x = (np.sin(2 * math.pi * tone.hz * t) * (0.5 * PEAK * volume)).astype(np.float32)
        if soft:
            rise, fall = min(int(8.0 * rate_hz / 1000), n // 4), n // 2
            x[:rise] *= _raised_cosine(rise)
            x[n - fall :] *= _raised_cosine(fall)[::-1]
            parts.append(x)
        else:
            parts.append(fade_edges(x, rate_hz, ms=min(5.0, tone.ms / 4)))
    if not parts:
        return np.zeros(0, np.float32)
    if not soft:
        parts.append(np.zeros(int(EARCON_GAP_MS * rate_hz / 1000), np.float32))
    return np.concatenate(parts)


# --------------------------------------------------------------------------- worker
def _pick_voice(engine: object, wanted: str) -> str:
    voices = engine.getProperty("voices")  # type: ignore[attr-defined]
    for v in voices:
        if wanted in (v.id, v.name):
            return v.id
    low = wanted.lower()
    for v in voices:
        if low in (v.id.lower(), v.name.lower()):
            return v.id
    some = ", ".join(f"{v.id} ({v.name})" for v in voices[:8])
    raise LookupError(
        f"voice.voice = {wanted!r}: no such voice; pick one of `companion cues list --voices` "
        f"(e.g. {some})"
    )


def list_voices() -> list[tuple[str, str]]:
    """(id, name) of every voice of the speech engine (a child process)."""
    code = (
        "import json, pyttsx3; e = pyttsx3.init(); "
        "print(json.dumps([[v.id, v.name] for v in e.getProperty('voices')]))"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AudioError(f"cannot start the speech engine: {exc}") from None
    if res.returncode != 0:
        raise AudioError("the speech engine did not start; install espeak-ng and pyttsx3")
    return [tuple(v) for v in json.loads(res.stdout.strip().splitlines()[-1])]


def _worker_main() -> int:
    req = json.loads(sys.stdin.read())
    try:
        import pyttsx3

        engine = pyttsx3.init()
    except Exception as exc:  # any engine start-up failure is one message for the parent
        print(f"cannot start pyttsx3: {exc}", file=sys.stderr)
        return 1
    if req.get("voice"):
        try:
            engine.setProperty("voice", _pick_voice(engine, req["voice"]))
        except LookupError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    engine.setProperty("rate", int(req["rate_wpm"]))
    engine.setProperty("volume", 1.0)
    for text, path in req["items"]:  # one at a time: queued saves overwrite each other
        for _attempt in range(3):  # pyttsx3's espeak driver now and then ends without writing
            engine.save_to_file(text, path)
            engine.runAndWait()
            if os.path.isfile(path) and os.path.getsize(path) > 44:
                break
        else:
            print(f"no audio written for {text!r} after 3 attempts", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
