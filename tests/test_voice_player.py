"""The callback's cue logic block by block: start, wait, preempt with a fade, drop stale/repeats.

These drive :meth:`CuePlayer.callback` exactly as PortAudio does (same signature, a
``(frames, channels)`` float32 buffer) with a controlled clock; the real-stream
versions of the same behaviours are in test_voice_audio.py.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from companion.types import Cue
from companion.voice.audio_proc import HEADER_BYTES, MailboxReader, MailboxWriter
from companion.voice.player import (
    DUPLICATE,
    FINISHED,
    PREEMPTED,
    SILENCED,
    STALE,
    STARTED,
    CuePlayer,
)

RATE = 48000
BLOCK = 480  # 10 ms


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def tone(hz: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = amp * np.sin(2 * np.pi * hz * t)
    n = int(0.003 * RATE)  # soft edges, as rendered clips have
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
    x[:n] *= ramp
    x[-n:] *= ramp[::-1]
    return x.astype(np.float32)


def cue(cid: str, prio: int, clock: Clock, stale_s: float = 1.0) -> Cue:
    return Cue(cid, t_s=0.0, priority=prio, text=cid, decided_mono=clock.t, stale_after_s=stale_s)


def run_blocks(player: CuePlayer, clock: Clock, n: int, channels: int = 1) -> np.ndarray:
    out = []
    for _ in range(n):
        buf = np.full((BLOCK, channels), np.nan, np.float32)
        player.callback(buf, BLOCK, None, None)
        out.append(buf.copy())
        clock.t += BLOCK / RATE
    return np.concatenate(out)


def kinds(player: CuePlayer) -> list[tuple[str, str]]:
    return [(e.kind, e.cue.id) for e in player.events]


def test_a_cue_starts_in_the_next_callback_and_plays_whole() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock)
    a = tone(440, 0.25)
    p.submit(cue("a", 5, clock), a)
    out = run_blocks(p, clock, 30, channels=2)[:, :]
    assert np.array_equal(out[: len(a), 0], a) and np.array_equal(out[: len(a), 1], a)
    assert not out[len(a) :].any()
    assert kinds(p) == [(STARTED, "a"), (FINISHED, "a")]
    assert p.events[0].latency_s == 0.0 and not p.busy


def test_an_equal_priority_cue_waits_then_follows_without_a_gap() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, stale_after_s=5.0)
    a, b = tone(440, 0.205), tone(660, 0.1)
    p.submit(cue("a", 5, clock), a)
    run_blocks(p, clock, 3)
    p.submit(cue("b", 5, clock), b)
    out = run_blocks(p, clock, 30)[:, 0]
    start_a = 3 * BLOCK
    # "b" starts on the very sample after "a" ends, even in the middle of a block
    assert np.array_equal(out[: len(a) - start_a], a[start_a:])
    assert np.array_equal(out[len(a) - start_a : len(a) - start_a + len(b)], b)
    assert kinds(p) == [(STARTED, "a"), (FINISHED, "a"), (STARTED, "b"), (FINISHED, "b")]
    assert p.events[2].latency_s > 0.1  # it waited for "a"


def test_a_higher_priority_cue_cuts_a_lower_one_with_a_fade_not_a_click() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, fade_ms=8.0)
    low = tone(287, 1.0, amp=0.8)  # loud (not at a zero crossing) where it is cut
    high = tone(500, 0.3, amp=0.8)
    p.submit(cue("low", 3, clock), low)
    head = run_blocks(p, clock, 10)[:, 0]
    p.submit(cue("high", 9, clock), high)
    out = run_blocks(p, clock, 40)[:, 0]
    fade_n = int(0.008 * RATE)
    # the high cue starts at once; the low one is gone after the fade
    assert np.allclose(out[fade_n : len(high)], high[fade_n:], atol=1e-6)
    assert not out[len(high) :].any()
    assert kinds(p)[:3] == [(STARTED, "low"), (PREEMPTED, "low"), (STARTED, "high")]
    # no click: the largest step sample to sample is no bigger than the clips' own
    joined = np.concatenate([head, out])
    own = max(np.abs(np.diff(low)).max(), np.abs(np.diff(high)).max())
    assert np.abs(np.diff(joined)).max() <= own * 1.5
    # a hard cut would have jumped: the low tone was loud where it was cut
    assert abs(low[len(head)]) > 5 * own


def test_a_lower_priority_cue_waits_and_the_best_waiting_goes_first() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, stale_after_s=5.0)
    p.submit(cue("a", 5, clock), tone(440, 0.1))
    run_blocks(p, clock, 1)
    p.submit(cue("low", 2, clock), tone(330, 0.05))
    p.submit(cue("mid", 4, clock), tone(550, 0.05))
    run_blocks(p, clock, 40)
    started = [cid for k, cid in kinds(p) if k == STARTED]
    assert started == ["a", "mid", "low"]
    assert (PREEMPTED, "a") not in kinds(p)


def test_a_cue_that_waited_past_its_limit_is_dropped_not_played_late() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, stale_after_s=0.7)
    a, late, fresh = tone(440, 0.5), tone(880, 0.1), tone(660, 0.1)
    p.submit(cue("a", 5, clock), a)
    run_blocks(p, clock, 1)
    p.submit(cue("late", 5, clock, stale_s=0.2), late)  # the cue asks for less than 0.7 s
    p.submit(cue("fresh", 5, clock, stale_s=1.0), fresh)  # capped at the player's 0.7 s
    out = run_blocks(p, clock, 80)[:, 0]
    assert (STALE, "late") in kinds(p)
    assert [cid for k, cid in kinds(p) if k == STARTED] == ["a", "fresh"]
    stale = next(e for e in p.events if e.kind == STALE)
    assert stale.latency_s > 0.2
    # what was heard: the rest of "a", then "fresh", nothing of "late"
    rest = len(a) - BLOCK
    assert np.array_equal(out[rest : rest + len(fresh)], fresh)


def test_the_same_cue_is_never_queued_twice() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, stale_after_s=5.0)
    p.submit(cue("a", 5, clock), tone(440, 0.2))
    p.submit(cue("b", 5, clock), tone(660, 0.1))
    run_blocks(p, clock, 2)
    p.submit(cue("a", 5, clock), tone(440, 0.2))  # playing
    p.submit(cue("b", 5, clock), tone(660, 0.1))  # waiting
    run_blocks(p, clock, 60)
    assert kinds(p).count((DUPLICATE, "a")) == 1 and kinds(p).count((DUPLICATE, "b")) == 1
    assert [cid for k, cid in kinds(p) if k == STARTED] == ["a", "b"]


def test_silence_fades_out_and_forgets_waiting_cues() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, fade_ms=5.0, stale_after_s=5.0)
    p.submit(cue("a", 5, clock), tone(440, 1.0, amp=0.8))
    p.submit(cue("b", 5, clock), tone(660, 0.1))
    run_blocks(p, clock, 5)
    p.silence()
    out = run_blocks(p, clock, 5)[:, 0]
    assert not out[int(0.005 * RATE) :].any()
    assert np.abs(out[:20]).max() > 0.1  # faded, not cut
    assert {(SILENCED, "a"), (SILENCED, "b")} <= set(kinds(p)) and not p.busy


def test_overlapping_fade_never_clips() -> None:
    clock = Clock()
    p = CuePlayer(RATE, clock=clock, fade_ms=20.0)
    p.submit(cue("low", 1, clock), np.full(RATE, 0.95, np.float32))
    run_blocks(p, clock, 2)
    p.submit(cue("high", 9, clock), np.full(RATE // 10, 0.95, np.float32))
    out = run_blocks(p, clock, 5)
    assert out.max() <= 1.0


# --------------------------------------------------------------------------- the mailbox
# The audio process's hand-over: the run loop writes a cue to shared memory, the
# callback reads it at its next block (audio_proc.MailboxWriter / MailboxReader).


def mailbox_player(
    clock: Clock, clips: list[np.ndarray], slots: int = 4, **kw: float
) -> tuple[MailboxWriter, MailboxReader, CuePlayer]:
    keys = [(f"k{i}", f"text {i}") for i in range(len(clips))]
    w = MailboxWriter(slots=slots, area_samples=RATE)
    r = MailboxReader(w.name, keys, clips)
    p = CuePlayer(RATE, clock=clock, **kw)
    p.mailbox = r
    return w, r, p


def test_two_cues_written_in_the_same_block_both_play_back_to_back() -> None:
    clock = Clock()
    a, b = tone(440, 0.1), tone(660, 0.1)
    w, r, p = mailbox_player(clock, [a, b], stale_after_s=5.0)
    try:
        assert w.post(cue("k0", 5, clock), 0) and w.post(cue("k1", 5, clock), 1)
        assert p.busy  # written, not taken yet: the callback has not run
        out = run_blocks(p, clock, 30)[:, 0]
        assert kinds(p) == [(STARTED, "k0"), (FINISHED, "k0"), (STARTED, "k1"), (FINISHED, "k1")]
        assert np.array_equal(out[: len(a)], a) and np.array_equal(out[len(a) : len(a) + len(b)], b)
        first = p.events[0]
        assert first.cue.text == "text 0" and first.cue.priority == 5 and first.latency_s == 0.0
        assert not p.busy and w.pending() == 0
    finally:
        r.close()
        w.close()


def test_the_mailbox_ring_wraps_around_and_never_overwrites_an_unread_slot() -> None:
    clock = Clock()
    clips = [tone(440 + 10 * i, 0.004) for i in range(3)]  # shorter than a block
    w, r, p = mailbox_player(clock, clips, slots=4, stale_after_s=5.0)

    def nth(k: int) -> Cue:  # cue k, known by its t_s
        return Cue(f"k{k % 3}", t_s=float(k), priority=5, decided_mono=clock.t, stale_after_s=5)

    try:
        for k in range(4):  # fill the ring: the callback has not taken any yet
            assert w.post(nth(k), k % 3)
        assert not w.post(nth(99), 0) and w.dropped == 1  # full: refused, nothing overwritten
        run_blocks(p, clock, 1)
        assert r.taken == 4
        # 25 more, with a silence after every other one: the 4 slots are reused 9 times over
        for k in range(4, 29):
            assert w.post(nth(k), k % 3)
            if k % 2:
                assert w.post_silence()
            run_blocks(p, clock, 1)
        run_blocks(p, clock, 3)
        assert r.taken == 4 + 25 + 12 and w.pending() == 0 and not p.busy
        # every cue written reached the player (played, dropped as a repeat, or silenced)
        assert {e.cue.t_s for e in p.events} == {float(k) for k in range(29)}
        assert [e.cue.t_s for e in p.events if e.kind == STARTED][-1] == 28.0
    finally:
        r.close()
        w.close()


def test_a_full_ring_never_touches_the_clips_waiting_in_it() -> None:
    """Clips made at run time (post_clip) wait in the shared area until taken: posts refused
    because the ring is full, however many, must not wrap the area onto them."""
    w = MailboxWriter(slots=2, area_samples=100)
    r = MailboxReader(w.name, [("c", "C.")], [np.zeros(4, np.float32)])
    try:
        for k in (1, 2):
            assert w.post_clip(Cue("c", t_s=float(k), priority=k), 0, np.full(40, k, np.float32))
        for _ in range(10):  # the reader is stalled: a writer retrying finds the ring full
            assert not w.post_clip(Cue("c", t_s=9.0, priority=9), 0, np.full(40, 9, np.float32))
        got: deque = deque()
        r.take(got)
        assert [(c.t_s, clip.tolist()) for c, clip in got] == [
            (1.0, [1.0] * 40),
            (2.0, [2.0] * 40),
        ]
    finally:
        r.close()
        w.close()


def test_a_slot_that_is_not_wholly_visible_yet_is_taken_at_the_next_block() -> None:
    """A slot whose crc does not match (a write the reader's CPU sees only in part) waits."""
    clock = Clock()
    a = tone(440, 0.02)
    w, r, p = mailbox_player(clock, [a])
    try:
        assert w.post(cue("k0", 5, clock), 0)
        at = HEADER_BYTES  # slot 0
        good = bytes(w.shm.buf[at : at + 8])
        w.shm.buf[at : at + 8] = (12345).to_bytes(8, "little")  # its seq, torn
        run_blocks(p, clock, 2)
        assert r.taken == 0 and not p.events
        w.shm.buf[at : at + 8] = good
        run_blocks(p, clock, 1)
        assert r.taken == 1 and kinds(p) == [(STARTED, "k0")]
    finally:
        r.close()
        w.close()


def test_a_run_loop_in_another_process_loses_no_cue_and_tears_none() -> None:
    """The writer in its own process posts as fast as it can; the reader takes while it does."""
    import multiprocessing
    from collections import deque

    from tests._audio_env import post_cues

    n = 3000
    w = MailboxWriter(slots=8, area_samples=RATE)
    r = MailboxReader(w.name, [("c", "C.")], [np.zeros(4, np.float32)])
    got: deque = deque()
    k = 0
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(1) as pool:
            res = pool.apply_async(post_cues, (w.name, n, 7))
            while k < n and not (res.ready() and not r.pending()):
                r.take(got)
                while got:  # check each at once: a taken clip lives in a ring of its own
                    c, clip = got.popleft()
                    assert (c.priority, c.t_s, c.decided_mono) == (k, float(k), k / 1000)
                    if k % 7 == 0:
                        assert len(clip) == k % 500 + 1 and np.all(clip == k)
                    k += 1
            full = res.get(timeout=60)
        assert k == n
        assert full > 0  # the ring did fill up now and then: the writer waited, lost nothing
    finally:
        r.close()
        w.close()


def test_pace_reports_how_regularly_the_callback_runs() -> None:
    """Callbacks in pairs every 2 ms make a cue wait as long as 2 ms blocks would."""
    clock = Clock()
    p = CuePlayer(RATE, clock=clock)
    buf = np.zeros((BLOCK, 1), np.float32)
    for _ in range(200):  # regular: one every 10 ms
        p.callback(buf, BLOCK, None, None)
        clock.t += 0.010
    pace = p.pace()
    assert abs(pace["interval_p50_ms"] - 10.0) < 1e-6 and abs(pace["wait_p50_ms"] - 5.0) < 0.3
    assert 9.0 < pace["wait_p95_ms"] <= 10.0
    p.pace_from = clock.t  # only what comes next
    for _ in range(200):  # in pairs: two back to back every 20 ms
        p.callback(buf, BLOCK, None, None)
        clock.t += 0.0001
        p.callback(buf, BLOCK, None, None)
        clock.t += 0.0199
    pace = p.pace()
    assert pace["interval_max_ms"] > 19.0
    assert 9.0 < pace["wait_p50_ms"] < 11.0 and pace["wait_p95_ms"] > 18.0
