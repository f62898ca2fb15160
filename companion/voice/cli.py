"""``companion cues list|say|render`` and ``companion audio-devices``."""

from __future__ import annotations

import argparse
import difflib
import time
from typing import Any

from companion.cli import Bounded
from companion.errors import CompanionError


def _out(text: str) -> None:
    print(text, flush=True)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from companion.config import load_config
    from companion.voice.library import load_library

    cfg = load_config(getattr(args, "config", None))
    return cfg, load_library(cfg.voice, cfg.resolve)


def cmd_cues_list(args: argparse.Namespace) -> int:
    cfg, lib = _load(args)
    enabled = set(cfg.voice.enabled_cues) or None
    _out(f"cue library {lib.path} ({len(lib.ids)} cues)")
    for cid in lib.ids:
        tones = lib.earcon(cid)
        ear = " ".join(f"{t.hz:g}Hz/{t.ms:g}ms" for t in tones) if tones else "none"
        off = "" if enabled is None or cid in enabled else "  (off: not in voice.enabled_cues)"
        _out(f"{cid}  priority {lib.priority(cid)}  earcon {ear}{off}")
        for p in lib.phrases(cid) or ("(tones only)",):
            _out(f"    {p}")
    if args.voices:
        from companion.voice.render import list_voices

        _out("voices (voice.voice = id or name):")
        for vid, name in list_voices():
            _out(f"    {vid}  {name}")
    return 0


def cmd_cues_render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from companion.voice.render import Renderer, default_cache_dir

    cfg, lib = _load(args)
    v = cfg.voice
    cache = Path(v.cache_dir).expanduser() if v.cache_dir else default_cache_dir()
    res = Renderer(cache, v.voice, v.rate_wpm).render(lib.texts())
    _out(
        f"{len(res.rendered)} phrases rendered, {len(res.cached)} already cached, "
        f"in {res.seconds:.1f} s ({cache})"
    )
    return 0


def cmd_cues_say(args: argparse.Namespace) -> int:
    from companion.types import Cue
    from companion.voice.sink import make_sink

    cfg, lib = _load(args)
    if args.id not in lib:
        close = difflib.get_close_matches(args.id, list(lib.ids), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CompanionError(
            f"no cue {args.id!r} in {lib.path}{hint}; cues: {', '.join(sorted(lib.ids))}"
            " (`companion cues list` prints them)"
        )
    sink = make_sink(cfg.voice, lib, console=_out, audio_device=args.audio_device)
    try:
        for _ in range(args.times):
            cue = Cue(
                id=args.id,
                t_s=0.0,
                priority=lib.priority(args.id),
                reason="cues say",
                text=lib.next_text(args.id),
                decided_mono=time.monotonic(),
                stale_after_s=5.0,
            )
            sink.play(cue)
            if not cue.text:  # a tone-only cue has no line of its own
                _out(f"{args.id}: (tones only)")
            wait = getattr(sink, "wait_idle", None)
            if wait is not None:
                wait(30.0)
                time.sleep(float(getattr(sink, "output_latency_s", 0.0)) + 0.05)
    finally:
        sink.close()
    return 0


def cmd_audio_devices(args: argparse.Namespace) -> int:
    from companion.voice.audio import output_devices

    devs = output_devices()
    if not devs:
        _out("no audio output devices; cues will be printed (see docs/voice.md)")
        return 0
    _out(" idx  default  channels  rate_hz  host API  name")
    for d in devs:
        mark = "*" if d["default"] else " "
        _out(
            f"{d['index']:4d}  {mark:^7}  {d['channels']:8d}  {d['rate_hz']:7.0f}  "
            f"{d['hostapi']:<8}  {d['name']}"
        )
    _out('pick one with --audio-device NAME|INDEX or voice.audio_device = "NAME"')
    return 0


def register(subparsers: Any) -> None:
    """Add ``cues`` and ``audio-devices`` to the ``companion`` command."""

    def add_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", metavar="FILE", help="TOML config")

    p = subparsers.add_parser("cues", help="the cue library: list, say one, render the cache")
    sub = p.add_subparsers(dest="cues_command", metavar="ACTION", required=True)

    q = sub.add_parser("list", help="print every cue: priority, earcon, phrasings")
    q.add_argument("--voices", action="store_true", help="also list the speech engine's voices")
    add_config(q)
    q.set_defaults(func=cmd_cues_list)

    q = sub.add_parser("say", help="play one cue now (hear how it sounds)")
    q.add_argument("id", help="cue id, e.g. relax_ankle")
    q.add_argument(
        "--times",
        type=Bounded(1, 100, integer=True),
        default=1,
        help="say it N times (rotating phrasings)",
    )
    q.add_argument("--audio-device", help="output device name or index")
    add_config(q)
    q.set_defaults(func=cmd_cues_say)

    q = sub.add_parser("render", help="render every phrasing into the speech cache now")
    add_config(q)
    q.set_defaults(func=cmd_cues_render)

    p = subparsers.add_parser("audio-devices", help="list the audio output devices")
    p.set_defaults(func=cmd_audio_devices)
