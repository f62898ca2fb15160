"""Real audio outputs without a sound card, for the voice's tests and benchmark.

* :class:`PulseNullSink` starts a private PulseAudio daemon (``HOME`` and
  ``XDG_RUNTIME_DIR`` in a temporary folder) with one ``module-null-sink``;
  PortAudio reaches it through ALSA's ``pulse`` plugin, and :class:`PulseCapture`
  (``parec`` on the sink's monitor) reads back what was played. After about a
  second of warm-up the stream callback runs at real-time pace: latency figures
  from it mean something.
* :func:`alsa_file_env` writes an ``asoundrc`` whose ``cuefile`` device is ALSA's
  ``file`` plugin on the ``null`` device: it captures every sample to a WAV file,
  but the callback runs as fast as it can, so it suits content checks only.

sounddevice reads PortAudio's device list when it is imported, so the audio work
runs in a child process started with the right environment (:func:`run_child`);
:func:`child_main` is that child: it opens a real
:class:`~companion.voice.audio.AudioSink`, plays a script of cues and reports what
the stream's callback did.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE_HZ = 48000
SINK = "cuesink"


def missing_audio_tools() -> str:
    """Why the real-audio tests cannot run here ("" when they can)."""
    need = ["pulseaudio", "pactl", "parec", "espeak-ng"]
    gone = [b for b in need if shutil.which(b) is None]
    if gone:
        return (
            f"needs {', '.join(gone)} (apt install pulseaudio pulseaudio-utils espeak-ng "
            "libasound2-plugins libportaudio2)"
        )
    # not `import sounddevice`: it would read the device list before the daemon exists
    import ctypes.util

    if ctypes.util.find_library("portaudio") is None:
        return "needs PortAudio (apt install libportaudio2)"
    return ""


def missing_espeak() -> str:
    return "" if shutil.which("espeak-ng") else "needs espeak-ng (apt install espeak-ng)"


# --------------------------------------------------------------------------- PulseAudio
class PulseNullSink:
    """A private PulseAudio daemon with a mono float32 null sink, started and stopped by us."""

    def __init__(self, rate_hz: int = RATE_HZ) -> None:
        self.rate_hz = rate_hz
        self.dir = Path(tempfile.mkdtemp(prefix="companion-pulse-"))
        (self.dir / "home").mkdir()
        run = self.dir / "run"
        run.mkdir(mode=0o700)
        self.env = {
            **os.environ,
            "HOME": str(self.dir / "home"),
            "XDG_RUNTIME_DIR": str(run),
            "PULSE_RUNTIME_PATH": str(run / "pulse"),
            "PYTHONPATH": str(ROOT),
        }
        self.env.pop("PULSE_SERVER", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> PulseNullSink:
        script = self.dir / "default.pa"
        script.write_text(
            "load-module module-native-protocol-unix\n"
            f"load-module module-null-sink sink_name={SINK} format=float32le "
            f"rate={self.rate_hz} channels=1\n"
            f"set-default-sink {SINK}\n"
        )
        cmd = [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "-n",
            "-F",
            str(script),
            "--log-target=stderr",
            "--log-level=error",
            # audio data over the socket, not shared memory: with memfd blocks, PulseAudio 16.1
            # aborted now and then on an assertion (memblock.c, memblock_replace_import; its
            # issue 824) when a test's parec and player came and went, failing the tests after
            "--disable-shm=yes",
        ]
        if os.geteuid() == 0:  # CI runs as root: a per-user daemon still works with this flag
            cmd.insert(1, "--system=no")
        self._log = open(self.dir / "pulse.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=self._log)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            ok = subprocess.run(["pactl", "info"], env=self.env, capture_output=True, timeout=5)
            if ok.returncode == 0:
                return self
            time.sleep(0.1)
        log = (self.dir / "pulse.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"PulseAudio did not start:\n{log}")

    def check(self) -> None:
        """Fail with the daemon's own log if it has exited (the tests' server, not the product)."""
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.dir / "pulse.log").read_text(errors="replace")
            raise RuntimeError(
                f"the test's PulseAudio daemon exited with {self.proc.returncode}:\n{log}"
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            # it died under the tests: say why (pytest shows this with the failure)
            log = (self.dir / "pulse.log").read_text(errors="replace")
            code = self.proc.returncode
            sys.stderr.write(f"PulseAudio exited with {code} during the tests:\n{log}\n")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PulseNullSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PulseCapture:
    """``parec`` on the null sink's monitor: everything played, float32 mono."""

    def __init__(self, pulse: PulseNullSink) -> None:
        self.path = pulse.dir / f"capture-{time.monotonic_ns()}.raw"
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                "parec",
                "-d",
                f"{SINK}.monitor",
                "--format=float32le",
                f"--rate={pulse.rate_hz}",
                "--channels=1",
                "--latency-msec=20",
            ],
            env=pulse.env,
            stdout=self._f,
        )
        time.sleep(0.3)  # let the recording stream connect before anything plays

    def stop(self) -> np.ndarray:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._f.close()
        data = np.fromfile(self.path, dtype="<f4")
        self.path.unlink(missing_ok=True)
        return data


# --------------------------------------------------------------------------- ALSA file
def alsa_file_env(folder: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ALSA device ``cuefile`` writes everything played to a WAV file."""
    home = folder / "alsa-home"
    home.mkdir(parents=True, exist_ok=True)
    wav = folder / "played.wav"
    (home / ".asoundrc").write_text(
        "pcm.cuefile {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        f'    file "{wav}"\n'
        '    format "wav"\n'
        "}\n"
    )
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER", "PULSE_RUNTIME_PATH"):
        env.pop(k, None)
    return env, wav


def read_wav_any(path: Path) -> tuple[np.ndarray, int]:
    """A WAV written by ALSA's file plugin (16-bit or float32 data) as float32 mono."""
    raw = path.read_bytes()
    fmt_at = raw.find(b"fmt ")
    fmt_tag, ch, rate = np.frombuffer(raw[fmt_at + 8 : fmt_at + 16], dtype="<u2,<u2,<u4")[0]
    bits = int(np.frombuffer(raw[fmt_at + 22 : fmt_at + 24], dtype="<u2")[0])
    data_at = raw.find(b"data") + 8
    body = raw[data_at:]
    if bits == 16:
        x = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32) / 32768
    elif bits == 32:
        # the file plugin labels float32 data as integer PCM (format tag 1): tell them apart
        f = np.frombuffer(body[: len(body) // 4 * 4], dtype="<f4")
        if fmt_tag == 3 or (np.isfinite(f).all() and np.abs(f).max(initial=0.0) <= 2.0):
            x = f
        else:
            x = np.frombuffer(body[: len(body) // 4 * 4], dtype="<i4").astype(np.float32) / 2**31
    else:
        with wave.open(str(path)) as w:
            raise AssertionError(f"unexpected WAV {w.getparams()}")
    return x.reshape(-1, int(ch)).mean(axis=1).astype(np.float32), int(rate)


# --------------------------------------------------------------------------- child
def run_child(job: dict[str, Any], env: dict[str, str], timeout_s: float = 60.0) -> dict[str, Any]:
    """Run :func:`child_main` with ``job`` in a fresh interpreter under ``env``."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from tests._audio_env import child_main; child_main()"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
    )
    if res.returncode != 0:
        raise AssertionError(f"audio child failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _busy(stop: threading.Event) -> None:
    """Keeps the GIL busy the way an estimator does; starves an in-process audio callback."""
    rng = np.random.default_rng(0)
    while not stop.is_set():
        np.cumsum(rng.standard_normal((200, 6)), axis=0)
        sum(i * i for i in range(20000))


def child_main() -> None:
    """Open the audio sink, play ``job["cues"]`` on schedule, print what happened as JSON.

    job: ``settings`` (VoiceSettings fields; the sink comes from ``make_sink``),
    ``device``, ``warm`` (wait for real-time pace), ``busy`` (a GIL-hungry thread runs
    meanwhile), ``cues``: list of {at_s, id, phrase (index), priority, stale_after_s} or
    {at_s, silence: true}, or actions on the PulseAudio daemon of the child's environment:
    {at_s, pactl: [args]}, {at_s, wait_device: timeout_s, up: true} (until the sink says the
    device is back, or with up false gone; later times shift by the wait), {at_s, capture:
    true} (record the sink's monitor from then on, into ``clips_out`` as ``capture``);
    ``clips_out`` (npz path for the clips that were played). The output lists the sink's
    warnings and its device changes.
    """
    import logging
    import types

    from companion.types import Cue
    from companion.voice.library import load_library
    from companion.voice.settings import VoiceSettings
    from companion.voice.sink import make_sink

    warned: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("companion").addHandler(handler)
    job = json.loads(sys.stdin.read())
    settings = VoiceSettings(**{"output": "audio", **job["settings"]})
    lib = load_library(settings)
    lines: list[str] = []
    sink: Any = make_sink(settings, lib, console=lines.append, audio_device=job.get("device"))
    stop_busy = threading.Event()
    if job.get("busy"):  # a run loop hard at work: short numpy calls between Python work
        threading.Thread(target=_busy, args=(stop_busy,), daemon=True).start()
    warm = sink.wait_running(5.0) if job.get("warm") else None
    t0 = time.monotonic()
    shift = 0.0
    capture: PulseCapture | None = None
    for c in job["cues"]:
        delay = t0 + shift + c["at_s"] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if c.get("silence"):
            sink.silence()
            continue
        if "pactl" in c:
            subprocess.run(["pactl", *c["pactl"]], check=True, capture_output=True, timeout=10)
            continue
        if "wait_device" in c:
            t_wait = time.monotonic()
            while (
                sink.device_ok != c.get("up", True) and time.monotonic() < t_wait + c["wait_device"]
            ):
                time.sleep(0.02)
            shift += time.monotonic() - t_wait
            continue
        if c.get("capture"):
            here = types.SimpleNamespace(
                dir=Path(tempfile.mkdtemp()), rate_hz=sink.rate_hz, env=dict(os.environ)
            )
            capture = PulseCapture(here)  # type: ignore[arg-type]
            continue
        phrases = lib.phrases(c["id"])
        text = phrases[c.get("phrase", 0)] if phrases else ""  # "": a tone-only cue
        sink.play(
            Cue(
                id=c["id"],
                t_s=c["at_s"],
                priority=c.get("priority", lib.priority(c["id"])),
                text=text,
                decided_mono=time.monotonic(),
                stale_after_s=c.get("stale_after_s", 5.0),
            )
        )
    idle = sink.wait_idle(30.0)
    time.sleep(sink.output_latency_s + 0.1)
    latency = sink.output_latency_s
    stop_busy.set()
    clips = sink.clips if job.get("clips_out") else {}
    stats = sink.stats()
    recorded = capture.stop() if capture is not None else None
    sink.close()  # drains the last events into sink.history
    events = [
        {
            "kind": e.kind,
            "id": e.cue.id,
            "text": e.cue.text,
            "latency_s": e.latency_s,
            "frame": e.frame,
            "t_s": e.t_mono - t0,
            "cue_t_s": e.cue.t_s,
        }
        for e in sink.history
    ]
    if job.get("clips_out"):
        arrays = {f"{cid}|{text}": clip for (cid, text), clip in clips.items()}
        if recorded is not None:
            arrays["capture"] = recorded
        np.savez(job["clips_out"], **arrays)
    print(
        json.dumps(
            {
                "events": events,
                "rate_hz": sink.rate_hz,
                "block": sink.block,
                "output_latency_s": latency,
                "warm": warm,
                "idle": idle,
                "lines": lines,
                "sink": type(sink).__name__,
                "stats": {k: v for k, v in stats.items() if k != "busy"},
                "warnings": warned,
                "device_changes": [(up, t - t0) for up, t in getattr(sink, "device_changes", [])],
            }
        )
    )


def post_cues(name: str, n: int, clip_every: int = 0) -> int:
    """A run loop in another process: post ``n`` cues to the mailbox ``name`` as fast as the
    ring allows (retrying when it is full), cue k with priority k, t_s k and
    decided_mono k / 1000; every ``clip_every``-th one with its own clip of k samples of
    value k (``post_clip``). Returns how many posts found the ring full."""
    from companion.types import Cue
    from companion.voice.audio_proc import MailboxWriter

    w = MailboxWriter.attach(name)
    full = 0
    try:
        for k in range(n):
            cue = Cue("c", t_s=float(k), priority=k, decided_mono=k / 1000, stale_after_s=0.5)
            while True:
                if clip_every and k % clip_every == 0:
                    ok = w.post_clip(cue, 0, np.full(k % 500 + 1, float(k), np.float32))
                else:
                    ok = w.post(cue, 0)
                if ok:
                    break
                full += 1
                time.sleep(0)
    finally:
        w.close()
    return full
