"""Cue latency on a real PortAudio stream: pre-rendered cues vs live pyttsx3 synthesis;
and whole runs through the pipeline: underflows, decision and landing to sound at the sink.

    python benchmarks/bench_voice.py            # a private PulseAudio null sink (no sound card)
    python benchmarks/bench_voice.py --device 3 # a real output device instead
    python benchmarks/bench_voice.py --run-minutes 30 --hog 2 --blocks-ms 10,5

Latency is measured from the cue policy's decision (``CuePolicy.on_stride`` returning
the cue, stamped exactly as the pipeline stamps ``Cue.decided_mono``) to the cue's
first sample handed to the stream's callback. Decisions come at random moments
(between 40 and 90 ms apart, so they fall anywhere in a block), each cue is silenced
after a few blocks so the next one finds the voice idle. The same run then decides
the same cues and synthesises each one live with pyttsx3 at decision time (the engine
started ahead; synthesis, reading and resampling on the clock), then hands the clip
over the same way (``submit_clip``: copied into the audio process's shared-memory
mailbox) to the same player. It also prints the output latency PortAudio reports for the
stream, the callback's pace and underflows, and the render/cache start-up times,
and (on the null sink) when the sound reached the sink, for the product's path and
for pyttsx3's own ``say()``. ``--load`` adds a busy Python thread, as a run's
estimator would be; ``--in-process`` measures the stream in this process instead
of the audio process the product uses.

Bar (issue "The voice"): p95 <= 50 ms with a block of 10 ms or less; the speed-up over
live synthesis (p50 against p50 and p95 against p95, same run) is printed as a figure. The
exit code is 0 when the first block measured (the product's default) meets the bar.

``--run-minutes M`` instead plays whole simulated runs (a foot sensor at 200 Hz, a fault
in every minute after the first) at real-time pace through the pipeline (estimator, cue
policy with the landing earcon, recorder) into the audio sink, for each block of
``--blocks-ms``, with ``--hog N`` CPU hogs (busy processes started as another program
would be) competing; it prints the underflows (and per hour), decision to first sample,
decision to first sound at the sink, and landing (the contact that closes a faulty
stride) to the landing tone at the sink. Exit code 0 when every run had no underflow,
p95 <= 50 ms to the first sample and the tone under 100 ms after the contact at p95.

On the null sink the private PulseAudio daemon's threads are raised to SCHED_RR 5 when
this process may (root): a desktop's sound server runs so (PulseAudio and PipeWire get it
from RTKit); ``--no-server-rt`` leaves it at normal priority, where a starved test
daemon, not the product, runs dry under load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from companion.coach.policy import CuePolicy  # noqa: E402
from companion.coach.settings import CoachSettings  # noqa: E402
from companion.types import Label, StrideReport  # noqa: E402

FAULTS = [Label.RIGID, Label.FORCED_DORSIFLEXION, Label.FORCED_PLANTARFLEXION]


def pct(x: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(x), q)) if x else float("nan")


def decide(policy: CuePolicy, i: int) -> list:
    """One stride report through the real cue policy (every fault stride is cued)."""
    t = 60.0 + 0.7 * i
    rep = StrideReport(
        sensor="foot",
        stride=i,
        t_ic_s=t - 0.7,
        t_to_s=t - 0.45,
        t_end_s=t,
        t_decided_s=t,
        label=FAULTS[i % len(FAULTS)],
        confidence=0.9,
        baseline_ready=True,
    )
    return policy.on_stride(rep)


class SinkMonitor:
    """``parec`` on the null sink's monitor, read as it arrives: when did sound reach the sink?

    The arrival times include the monitor's own delay; it is the same for every path
    measured with it, so the paths compare fairly.
    """

    CHUNK = 240  # 5 ms at 48 kHz

    def __init__(self, env: dict[str, str], rate_hz: int) -> None:
        import subprocess
        import threading

        self.rate_hz = rate_hz
        self.times: list[float] = []
        self.peaks: list[float] = []
        self.proc = subprocess.Popen(
            [
                "parec",
                "-d",
                "cuesink.monitor",
                "--format=float32le",
                f"--rate={rate_hz}",
                "--channels=1",
                "--latency-msec=5",
            ],
            env=env,
            stdout=subprocess.PIPE,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.3)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        n = 4 * self.CHUNK
        while True:
            buf = self.proc.stdout.read(n)
            if not buf:
                return
            t = time.monotonic()
            x = np.frombuffer(buf[: len(buf) // 4 * 4], dtype="<f4")
            self.times.append(t)
            self.peaks.append(float(np.abs(x).max()) if len(x) else 0.0)

    def first_sound_after(self, t: float, threshold: float = 1e-3) -> float | None:
        for ti, peak in zip(list(self.times), list(self.peaks), strict=False):
            if ti > t and peak > threshold:
                return ti - t
        return None

    def wait_quiet(self, quiet_s: float = 0.06, timeout_s: float = 3.0) -> None:
        end = time.monotonic() + timeout_s
        need = max(int(quiet_s * self.rate_hz / self.CHUNK), 1)
        while time.monotonic() < end:
            peaks = self.peaks[-need:]
            if len(peaks) == need and max(peaks) < 1e-4:
                return
            time.sleep(0.01)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def measure(
    sink: Any,
    lib: Any,
    policy_settings: CoachSettings,
    n: int,
    seed: int,
    synth: Any = None,
    monitor: SinkMonitor | None = None,
) -> tuple[list[float], list[float]]:
    """Decide ``n`` cues with the real policy; return the latencies (s) from each decision to
    its first sample handed to the callback, and (with ``monitor``) to sound at the sink.

    ``synth(cue_id, text)`` makes the clip at decision time (live path); None = the
    pre-rendered clip, through ``sink.play`` exactly as the pipeline calls it.
    """
    from companion.voice.player import STARTED

    rng = random.Random(seed)
    policy = CuePolicy(policy_settings, priorities={c: lib.priority(c) for c in lib.ids})
    out: list[float] = []
    at_sink: list[float] = []
    sink.drain_events()
    for i in range(n):
        time.sleep(rng.uniform(0.04, 0.09))
        cues = decide(policy, i)
        decided = time.monotonic()
        for cue in cues:
            cue = replace(cue, text=lib.next_text(cue.id), decided_mono=decided)
            if synth is None:
                sink.play(cue)
            else:
                sink.submit_clip(cue, synth(cue.id, cue.text))
        deadline = time.monotonic() + 2.0
        started = False
        while not started and time.monotonic() < deadline:
            for e in sink.drain_events():
                if e.kind == STARTED:
                    out.append(e.latency_s)
                    started = True
            time.sleep(0.002)
        time.sleep(0.02 if monitor is None else 0.15)
        sink.silence()
        time.sleep(0.02)
        if monitor is not None:
            monitor.wait_quiet()
            lat = monitor.first_sound_after(decided)
            if lat is not None:
                at_sink.append(lat)
    sink.wait_idle(2.0)
    return out, at_sink


def measure_say(
    engine: Any, lib: Any, policy_settings: CoachSettings, n: int, seed: int, monitor: SinkMonitor
) -> list[float]:
    """pyttsx3's own way to speak, ``say()`` + ``runAndWait()`` at decision time, to the sink.

    pyttsx3 2.99's espeak driver synthesises to a WAV file and plays it with ``aplay``
    (ALSA's default device: the same PulseAudio sink).
    """
    rng = random.Random(seed)
    policy = CuePolicy(policy_settings, priorities={c: lib.priority(c) for c in lib.ids})
    out = []
    for i in range(n):
        time.sleep(rng.uniform(0.04, 0.09))
        cues = decide(policy, i)
        decided = time.monotonic()
        for cue in cues:
            engine.say(lib.next_text(cue.id))
            engine.runAndWait()
        monitor.wait_quiet()
        lat = monitor.first_sound_after(decided)
        if lat is not None:
            out.append(lat)
    return out


def _live_synth(engine: Any, wav: Path, lib: Any, rate_hz: int, volume: float) -> Any:
    """Synthesise a cue at decision time with pyttsx3, as a product without a cache would."""
    from companion.voice.render import earcon_clip, load_clip

    def synth(cue_id: str, text: str) -> np.ndarray:
        for _attempt in range(3):  # pyttsx3 now and then writes an empty file: try again
            with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints "Audio saved to"
                engine.save_to_file(text, str(wav))
                engine.runAndWait()
            if wav.stat().st_size > 44:
                break
        words = load_clip(wav, rate_hz, volume)
        return np.concatenate([earcon_clip(lib.earcon(cue_id), rate_hz, volume), words])

    return synth


def _busy(stop: Any) -> None:
    """CPU load like the run loop's: pure-Python work and numpy, holding the GIL in turns."""
    rng = np.random.default_rng(0)
    while not stop.is_set():
        x = rng.standard_normal((200, 6))
        np.cumsum(x, axis=0)
        sum(i * i for i in range(20000))


def run(args: argparse.Namespace) -> int:
    import pyttsx3

    from companion.voice.audio import AudioSink
    from companion.voice.audio_proc import ProcessAudioSink
    from companion.voice.library import load_library
    from companion.voice.render import engine_version
    from companion.voice.settings import VoiceSettings

    cache = Path(tempfile.mkdtemp(prefix="companion-bench-cache-"))
    coach = CoachSettings(persist_k=1, persist_n=1, cooldown_s=0.0, repeat_s=0.0)
    blocks_ms = [float(b) for b in args.blocks_ms.split(",")]
    lats = [float(v) for v in str(args.latency_ms).split(",")]
    lats_ms = (lats * len(blocks_ms))[: len(blocks_ms)] if len(lats) == 1 else lats
    rows: list[tuple[str, float, list[float]]] = []
    sink_rows: list[tuple[str, float, list[float]]] = []
    lines: list[str] = []
    engine = pyttsx3.init()  # started ahead: only the synthesis itself is on the clock
    if args.load:
        import threading

        stop_load = threading.Event()
        threading.Thread(target=_busy, args=(stop_load,), daemon=True).start()
    bars_ok = True
    for k, block_ms in enumerate(blocks_ms):
        settings = VoiceSettings(
            cache_dir=str(cache),
            block_ms=block_ms,
            sample_rate_hz=args.rate,
            stale_after_s=0.7,
            latency_ms=lats_ms[k],
            realtime_priority=args.rt,
        )
        lib = load_library(settings)
        t0 = time.perf_counter()
        sink_cls = AudioSink if args.in_process else ProcessAudioSink
        sink = sink_cls(settings, lib, device=args.device)
        open_s = time.perf_counter() - t0
        if k == 0:  # a later start: the same again, now from the cache
            sink.close()
            t0 = time.perf_counter()
            sink = sink_cls(settings, lib, device=args.device)
            cached_s = time.perf_counter() - t0
        warmed = sink.wait_running(5.0)
        st0, t_start = sink.stats(), time.monotonic()
        monitor = (
            args.monitor_env
            and not args.no_monitor
            and k == 0
            and SinkMonitor(args.monitor_env, sink.rate_hz)
        )
        pre, pre_sink = measure(sink, lib, coach, args.n, args.seed, monitor=monitor or None)
        rows.append(("pre-rendered", sink.block / sink.rate_hz, pre))
        if monitor:
            sink_rows.append(("pre-rendered (product)", sink.block / sink.rate_hz, pre_sink))
        bars_ok &= len(pre) == args.n
        if k == 0:
            engine.setProperty("rate", settings.rate_wpm)
            live_clip = _live_synth(engine, cache / "live.wav", lib, sink.rate_hz, settings.volume)
            if monitor:  # first: once save_to_file was used, pyttsx3's say() saves to it too
                said = measure_say(engine, lib, coach, args.say_n, args.seed, monitor)
                sink_rows.append(("live pyttsx3 say()", float("nan"), said))
            live, _ = measure(sink, lib, coach, args.live_n, args.seed, synth=live_clip)
            rows.append(("live pyttsx3", sink.block / sink.rate_hz, live))
            lines.append(
                f"start-up: first start (render {len(lib.texts())} phrases, open the stream): "
                f"{open_s:.2f} s; later start (read the cache, open the stream): {cached_s:.2f} s"
            )
            lines.append(
                f"stream: {args.device}, {sink.rate_hz} Hz; PortAudio output latency "
                f"{1000 * sink.output_latency_s:.1f} ms at a {block_ms:g} ms block"
            )
        if monitor:
            monitor.close()
        elapsed = time.monotonic() - t_start
        st1 = sink.stats()
        nb = st1["blocks"] - st0["blocks"]
        lines.append(
            f"block {block_ms:g} ms: warm-up {'ok' if warmed else 'NOT reached'}, callback pace "
            f"{1000 * elapsed / max(nb, 1):.2f} ms/block over {elapsed:.0f} s, underflows "
            f"{st1['underflows'] - st0['underflows']}, "
            f"output latency {1000 * sink.output_latency_s:.1f} ms"
        )
        if "interval_p50_ms" in st1:
            lines.append(
                f"  callbacks (last {min(nb, 4096)}): interval p50/p95/max "
                f"{st1['interval_p50_ms']:.2f}/{st1['interval_p95_ms']:.2f}/"
                f"{st1['interval_max_ms']:.1f} ms; wait from a random moment to the next "
                f"callback p50/p95 {st1['wait_p50_ms']:.2f}/{st1['wait_p95_ms']:.2f} ms"
            )
        sink.close()

    if args.load:
        stop_load.set()
    print(f"# companion voice benchmark ({engine_version()}); {rt_text(args.rt)}")
    if args.load:
        print("with a busy Python thread (pure Python + numpy) competing for the GIL")
    print(
        "audio sink: " + ("in this process" if args.in_process else "its own process (the default)")
    )
    for line in lines:
        print(line)
    print()
    print("cue latency, cue policy decision -> first sample handed to the audio callback")
    live = next(xs for name, _, xs in rows if name.startswith("live"))
    live50, live95 = pct(live, 50), pct(live, 95)
    print(
        f"| {'path':<14} | {'block ms':>8} | {'cues':>4} | {'p50 ms':>7} | {'p95 ms':>7} "
        f"| {'max ms':>7} | {'live/this p50':>13} | {'live/this p95':>13} |"
    )
    print(
        f"|{'-' * 16}|{'-' * 9}:|{'-' * 5}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 14}:"
        f"|{'-' * 14}:|"
    )
    for name, block_s, xs in rows:
        ms = [1000 * v for v in xs]
        r50 = live50 / pct(xs, 50) if xs else float("nan")
        r95 = live95 / pct(xs, 95) if xs else float("nan")
        print(
            f"| {name:<14} | {1000 * block_s:>8.2g} | {len(ms):>4} | {pct(ms, 50):>7.1f} | "
            f"{pct(ms, 95):>7.1f} | {max(ms, default=float('nan')):>7.1f} | {r50:>12.1f}x "
            f"| {r95:>12.1f}x |"
        )
    if sink_rows:
        print()
        print("decision -> first sound at the null sink (parec on its monitor; same delay for all)")
        print(f"| {'path':<24} | {'cues':>4} | {'p50 ms':>7} | {'p95 ms':>7} | {'max ms':>7} |")
        print(f"|{'-' * 26}|{'-' * 5}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
        for name, _, xs in sink_rows:
            ms = [1000 * v for v in xs]
            print(
                f"| {name:<24} | {len(ms):>4} | {pct(ms, 50):>7.1f} | {pct(ms, 95):>7.1f} | "
                f"{max(ms, default=float('nan')):>7.1f} |"
            )
    print()
    first = True  # the first block measured is the product's (the default)
    for name, block_s, xs in rows:
        if name != "pre-rendered":
            continue
        p50, p95 = pct(xs, 50), pct(xs, 95)
        # issue 13's bar: p95 <= 50 ms; the block is sized for a clean cue (issue 5 also
        # asked for a block of 10 ms or less: said beside it, not a reason to shrink it)
        ok_bar = p95 <= 0.050
        if first:
            bars_ok &= ok_bar  # the speed-up is a figure, not a bar: no reason to shrink blocks
        first = False
        small = "a block of 10 ms or less" if block_s <= 0.0100001 else "a block above 10 ms"
        print(
            f"block {1000 * block_s:g} ms ({small}): p95 <= 50 ms "
            f"{'PASS' if ok_bar else 'FAIL'}; faster than live synthesis "
            f"{live50 / p50:.1f}x at p50, {live95 / p95:.1f}x at p95"
        )
    return 0 if bars_ok else 1


# ----------------------------------------------------------------------------- a whole run
def _hogs(n: int) -> list[Any]:
    """``n`` CPU hogs: busy processes started as another program would be (own session)."""
    import subprocess

    code = "while True: pass"
    return [
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True) for _ in range(n)
    ]


def _fault_schedule(minutes: float) -> list[Any]:
    """Relaxed for the first minute (the baseline), then in every minute 30 s of one fault
    (rigid, toes up, toes pointed in turn) and 30 s relaxed."""
    from companion.source.simulator import FaultSegment

    out = []
    for k in range(1, int(minutes)):
        out.append(FaultSegment(60.0 * k, 60.0 * k + 30.0, FAULTS[(k - 1) % len(FAULTS)]))
    return out


def _onsets(times: np.ndarray, loud: np.ndarray, t: float, quiet_s: float = 0.05) -> float | None:
    """Seconds from ``t`` to the first loud monitor chunk after it, or None when the sink was
    not quiet for ``quiet_s`` before ``t`` (another sound still playing: not measurable)."""
    i = int(np.searchsorted(times, t, side="right"))
    j = int(np.searchsorted(times, t - quiet_s, side="left"))
    if i >= len(times) or loud[j:i].any():
        return None
    k = np.flatnonzero(loud[i:])
    return float(times[i + k[0]] - t) if len(k) else None


def pipeline_run(args: argparse.Namespace, block_ms: float, latency_ms: float) -> dict[str, Any]:
    """A simulated run through the whole pipeline at real-time pace, into the audio sink.

    The foot sensor's samples reach :meth:`Pipeline.feed` in packets of ``--packet-ms`` at
    the moment their last sample "happens" (host time = start + sample time), so the
    landing-to-tone figures start at the contact itself; the recorder writes every sample.
    """
    from companion.config import Config
    from companion.pipeline import Pipeline, load_checked_library
    from companion.source.base import interleave
    from companion.source.recording import RecordingWriter
    from companion.source.simulator import simulate
    from companion.voice.audio_proc import ProcessAudioSink
    from companion.voice.player import STARTED
    from companion.voice.settings import VoiceSettings

    cache = Path(tempfile.mkdtemp(prefix="companion-bench-cache-"))
    voice = VoiceSettings(
        cache_dir=str(cache),
        block_ms=block_ms,
        latency_ms=latency_ms,
        sample_rate_hz=args.rate,
        realtime_priority=args.rt,
        landing_earcon=True,
    )
    cfg = Config(voice=voice)
    lib = load_checked_library(cfg)
    minutes = args.run_minutes
    run = simulate(60.0 * minutes, 200.0, faults=_fault_schedule(minutes), seed=args.seed)
    rec = run.recording
    sink = ProcessAudioSink(voice, lib, device=args.device)
    sink.wait_running(5.0)
    monitor = SinkMonitor(args.monitor_env, sink.rate_hz) if args.monitor_env else None
    landing_cue = cfg.coach.cue_landing
    contact_of: dict[float, float] = {}  # landing tone's t_s -> the contact it answers (t_end_s)
    last_stride: dict[str, Any] = {}

    def on_event(ev: dict[str, Any]) -> None:
        nonlocal last_stride
        if ev["type"] == "stride":
            last_stride = ev
        elif ev["type"] == "cue" and ev["id"] == landing_cue:
            contact_of[ev["t_s"]] = last_stride["t_end_s"]

    out_csv = cache / "run.csv"
    hogs = _hogs(args.hog)
    events: list[Any] = []
    try:
        with RecordingWriter(out_csv, rec.sensors, rec.metadata) as recorder:
            pipeline = Pipeline(
                cfg, rec.sensors, sink, library=lib, on_event=on_event, recorder=recorder
            )
            batches = interleave(rec.data, args.packet_ms / 1000.0)
            t_first = float(batches[0].t_s[0])
            st0 = sink.stats()
            t0 = time.monotonic()
            next_drain = t0
            for batch in batches:
                due = t0 + float(batch.t_s[-1]) - t_first
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pipeline.feed(batch)
                if time.monotonic() > next_drain:
                    events += sink.drain_events()
                    next_drain += 0.5
            pipeline.finish()
            elapsed = time.monotonic() - t0
            sink.wait_idle(3.0)
            time.sleep(0.3)
            st1 = sink.stats()
    finally:
        for h in hogs:
            h.terminate()
            h.wait()
        sink.close()
        if monitor is not None:
            monitor.close()
    events += sink.drain_events()

    started = [e for e in events if e.kind == STARTED]
    tones = [e for e in started if e.cue.id == landing_cue]
    spoken = [e for e in started if e.cue.id != landing_cue]
    res: dict[str, Any] = {
        "block_ms": block_ms,
        "latency_ms": latency_ms,
        "output_latency_ms": 1000 * sink.output_latency_s,
        "minutes": elapsed / 60,
        "hogs": args.hog,
        "underflows": st1["underflows"] - st0["underflows"],
        "pace": {k: v for k, v in st1.items() if k.startswith(("interval", "wait"))},
        "decided": {"tones": len(contact_of), "spoken": int(sum(pipeline.summary.cues.values()))},
        "first_sample_ms": {
            "tones": [1000 * e.latency_s for e in tones],
            "spoken": [1000 * e.latency_s for e in spoken],
        },
        "dropped": sum(e.kind != STARTED and e.kind.startswith("dropped") for e in events),
    }
    res["decided"]["spoken"] -= res["decided"]["tones"]
    if monitor is not None:
        times = np.asarray(monitor.times)
        loud = np.asarray(monitor.peaks) > 1e-3
        at_sink: dict[str, list[float]] = {"tones": [], "spoken": []}
        landing: list[float] = []
        for e in started:
            lat = _onsets(times, loud, e.cue.decided_mono)
            if lat is None:
                continue
            kind = "tones" if e.cue.id == landing_cue else "spoken"
            at_sink[kind].append(1000 * lat)
            if kind == "tones":
                contact = contact_of.get(round(e.cue.t_s, 4))
                if contact is not None:
                    landing.append(1000 * (e.cue.decided_mono + lat - (t0 + contact - t_first)))
        res["at_sink_ms"] = at_sink
        res["landing_to_tone_ms"] = landing
    return res


def _row(name: str, xs: list[float]) -> str:
    return (
        f"| {name:<44} | {len(xs):>5} | {pct(xs, 50):>7.1f} | {pct(xs, 95):>7.1f} | "
        f"{max(xs, default=float('nan')):>7.1f} |"
    )


def rt_text(priority: int) -> str:
    """Whether the audio threads run at real-time priority here."""
    if priority <= 0:
        return "audio threads: normal scheduling (voice.realtime_priority = 0)"
    import resource

    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= priority
    return (
        f"audio threads: SCHED_FIFO {priority}"
        if allowed
        else f"audio threads: normal scheduling (SCHED_FIFO {priority} not allowed here)"
    )


def report_run(res: dict[str, Any]) -> bool:
    """Print one whole-run result; True when it meets the bars (no underflow, p95 <= 50 ms,
    and the landing tone under 100 ms after the contact at p95)."""
    hours = res["minutes"] / 60
    print(
        f"## block {res['block_ms']:g} ms, buffer "
        f"{res['latency_ms'] or 3 * res['block_ms']:g} ms (PortAudio reports "
        f"{res['output_latency_ms']:.1f} ms); {res['minutes']:.1f} min of run, "
        f"{res['hogs']} CPU hog(s)"
    )
    print(
        f"underflows: {res['underflows']} ({res['underflows'] / hours:.1f} per hour); cues "
        f"decided: {res['decided']['spoken']} spoken, {res['decided']['tones']} landing tones; "
        f"dropped (stale or duplicate): {res['dropped']}"
    )
    pace = res["pace"]
    if pace:
        print(
            f"callbacks (last 4096): interval p50/p95/max {pace['interval_p50_ms']:.2f}/"
            f"{pace['interval_p95_ms']:.2f}/{pace['interval_max_ms']:.1f} ms"
        )
    print(f"| {'ms':<44} | {'n':>5} | {'p50':>7} | {'p95':>7} | {'max':>7} |")
    print(f"|{'-' * 46}|{'-' * 6}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    first = res["first_sample_ms"]
    print(_row("decision -> first sample, spoken cues", first["spoken"]))
    print(_row("decision -> first sample, landing tones", first["tones"]))
    ok = res["underflows"] == 0 and pct(first["spoken"] + first["tones"], 95) <= 50.0
    if "at_sink_ms" in res:
        sink = res["at_sink_ms"]
        print(_row("decision -> first sound at the sink, spoken", sink["spoken"]))
        print(_row("decision -> first sound at the sink, tones", sink["tones"]))
        print(_row("decision -> first sound at the sink, all", sink["spoken"] + sink["tones"]))
        print(_row("landing (contact) -> tone at the sink", res["landing_to_tone_ms"]))
        ok &= pct(res["landing_to_tone_ms"], 95) < 100.0
    print()
    return ok


def whole_runs(args: argparse.Namespace) -> int:
    blocks_ms = [float(b) for b in args.blocks_ms.split(",")]
    lats = [float(v) for v in str(args.latency_ms).split(",")]
    lats_ms = (lats * len(blocks_ms))[: len(blocks_ms)] if len(lats) == 1 else lats
    print(
        f"# companion voice, whole runs: simulated foot run at 200 Hz through the pipeline "
        f"(estimator, cue policy with the landing earcon, recorder) at real-time pace, "
        f"{args.hog} CPU hog(s), load average before: {os.getloadavg()[0]:.2f}; " + rt_text(args.rt)
    )
    ok = True
    for block_ms, lat in zip(blocks_ms, lats_ms, strict=True):
        res = pipeline_run(args, block_ms, lat)
        ok &= report_run(res)
        if args.json_out:
            with open(args.json_out, "a", encoding="utf-8") as f:
                f.write(json.dumps(res) + "\n")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


def _server_realtime(pulse: Any) -> str:
    """PulseAudio's threads at SCHED_RR 5, as a desktop's sound server runs (if we may)."""
    try:
        for tid in os.listdir(f"/proc/{pulse.proc.pid}/task"):
            os.sched_setscheduler(int(tid), os.SCHED_RR, os.sched_param(5))
    except (OSError, AttributeError) as exc:
        return f"sound server: normal priority (cannot raise it: {exc})"
    return "sound server: PulseAudio's threads at SCHED_RR 5 (as RTKit gives a desktop's)"


def main() -> int:
    import signal

    # a SIGTERM (kill, a CI time-out) runs the clean-ups: CPU hogs and the test sound server stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", help="a real output device (name or index); default: null sink")
    ap.add_argument("--n", type=int, default=200, help="pre-rendered cues (>= 200)")
    ap.add_argument("--live-n", type=int, default=200, help="live-synthesised cues")
    ap.add_argument(
        "--blocks-ms",
        help="block sizes to measure, ms (live at the first); default: the product's "
        "default, then 1.5 (whole runs: the default only)",
    )
    ap.add_argument("--rate", type=int, default=48000, help="stream rate, Hz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--in-process", action="store_true", help="voice.isolate = false: stream in this process"
    )
    ap.add_argument(
        "--latency-ms",
        default="0",
        help="voice.latency_ms, one value or one per block (0 = the product's default)",
    )
    ap.add_argument(
        "--rt", type=int, help="voice.realtime_priority (default: the product's; 0 = normal)"
    )
    ap.add_argument(
        "--no-monitor", action="store_true", help="skip the at-the-sink figures (quicker)"
    )
    ap.add_argument("--load", action="store_true", help="a busy Python thread runs alongside")
    ap.add_argument(
        "--say-n", type=int, default=50, help="cues spoken with pyttsx3 say() (null sink only)"
    )
    ap.add_argument(
        "--run-minutes",
        type=float,
        default=0.0,
        help="instead: whole simulated runs of this long through the pipeline, per block",
    )
    ap.add_argument("--hog", type=int, default=0, help="CPU hog processes during whole runs")
    ap.add_argument(
        "--packet-ms",
        type=float,
        default=7.5,
        help="sensor packets of whole runs, ms (7.5: BLE's shortest connection interval; not "
        "a multiple of the block, so decisions fall anywhere in a block)",
    )
    ap.add_argument("--json-out", help="append each whole run's figures to this file (JSON)")
    ap.add_argument(
        "--no-server-rt",
        action="store_true",
        help="leave the null sink's PulseAudio daemon at normal priority",
    )
    args = ap.parse_args()
    from companion.voice.settings import VoiceSettings

    default_ms = f"{VoiceSettings().block_ms:g}"
    if args.rt is None:
        args.rt = VoiceSettings().realtime_priority
    if args.blocks_ms is None:
        args.blocks_ms = default_ms if args.run_minutes > 0 else f"{default_ms},1.5"
    args.monitor_env = None
    measure_all = whole_runs if args.run_minutes > 0 else run
    if args.device is not None:
        return measure_all(args)
    from tests._audio_env import PulseNullSink, missing_audio_tools

    why = missing_audio_tools()
    if why:
        print(f"cannot run the benchmark: {why}", file=sys.stderr)
        return 2
    with PulseNullSink(args.rate) as pulse:
        if not args.no_server_rt:
            print(_server_realtime(pulse))
        # PortAudio (imported below, in run) reaches the daemon through ALSA's pulse plugin
        os.environ.update({k: pulse.env[k] for k in ("HOME", "XDG_RUNTIME_DIR")})
        os.environ["PULSE_RUNTIME_PATH"] = pulse.env["PULSE_RUNTIME_PATH"]
        args.device = "pulse"
        args.monitor_env = pulse.env
        rc = measure_all(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
