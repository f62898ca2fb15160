"""Sensor profiles: decoders against documented packets, encoder round trips, the clock."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from _fuzz import started
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.errors import SensorError
from companion.source.ble.clock import ClockMap, SensorClock
from companion.source.ble.profiles import PROFILES, get_profile
from companion.source.ble.profiles import open_imu as oi
from companion.source.ble.profiles import witmotion as wm
from companion.source.ble.profiles.base import Frame
from companion.types import G_MPS2

ACC_LSB_16G = 16 * G_MPS2 / 32768
GYR_LSB_2000 = 2000 / 32768


def _samples(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 200.0
    acc = rng.uniform(-15 * G_MPS2, 15 * G_MPS2, (n, 3))
    gyr = rng.uniform(-1900, 1900, (n, 3))
    return t, acc, gyr


# ----------------------------------------------------------------------------- open profile


def test_open_imu_documented_example_packet() -> None:
    """The worked example in docs/open-imu-profile.md ("Example"), byte for byte."""
    data = bytes.fromhex(
        "01 02 0700 40420f00 8813 10 10"  # header: fmt 1, n 2, seq 7, t0 1 s, 5 ms, 16 g, 2000
        " 0000 0000 0008 0000 0000 0000"  # sample 0: az = 2048 -> +1 g; still
        " 0000 0000 0008 0010 0000 00f0"  # sample 1: gx = 4096 -> 250 dps, gz = -4096
    )
    p = oi.decode_packet(data)
    assert (p.seq, p.t0_us, p.period_us, p.acc_fs_g, p.gyr_fs_dps) == (7, 1_000_000, 5000, 16, 2000)
    (frame,) = oi.OpenImuDecoder().feed(oi.DATA_UUID, data)
    assert frame.ticks.tolist() == [1_000_000, 1_005_000]
    np.testing.assert_allclose(frame.acc_mps2[:, 2], [G_MPS2, G_MPS2])
    np.testing.assert_allclose(frame.gyr_dps[1], [250.0, 0.0, -250.0])
    assert frame.seq == 7


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 19),
    seq=st.integers(0, 65535),
    t0=st.integers(0, 2**32 - 1),
    period=st.integers(1000, 40000),
    fs=st.sampled_from([(2, 250), (4, 500), (8, 1000), (16, 2000), (32, 4000)]),
)
def test_open_imu_round_trip(n: int, seq: int, t0: int, period: int, fs: tuple[int, int]) -> None:
    _, acc, gyr = _samples(n, seed=n + seq)
    acc = np.clip(acc, -fs[0] * G_MPS2 * 0.99, fs[0] * G_MPS2 * 0.99)
    gyr = np.clip(gyr, -fs[1] * 0.99, fs[1] * 0.99)
    data = oi.encode_packet(seq, t0, period, acc, gyr, acc_fs_g=fs[0], gyr_fs_dps=fs[1])
    assert len(data) == 12 + 12 * n
    (frame,) = oi.OpenImuDecoder().feed(oi.DATA_UUID, data)
    assert frame.seq == seq
    assert frame.ticks[0] == t0
    assert np.all(frame.ticks == (t0 + period * np.arange(n)) % 2**32)
    np.testing.assert_allclose(frame.acc_mps2, acc, atol=fs[0] * G_MPS2 / 32768 * 0.51)
    np.testing.assert_allclose(frame.gyr_dps, gyr, atol=fs[1] / 32768 * 0.51)


def test_open_imu_saturates_at_full_scale() -> None:
    acc = np.array([[40 * G_MPS2, -40 * G_MPS2, 0.0]])
    gyr = np.array([[3000.0, -3000.0, 0.0]])
    (frame,) = oi.OpenImuDecoder().feed(oi.DATA_UUID, oi.encode_packet(0, 0, 5000, acc, gyr))
    assert frame.acc_mps2[0, 0] == pytest.approx(32767 * ACC_LSB_16G)
    assert frame.acc_mps2[0, 1] == pytest.approx(-16 * G_MPS2)
    assert frame.gyr_dps[0, 1] == pytest.approx(-2000.0)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x01\x02", "shorter than its 12-byte header"),
        (bytes([2, 1, 0, 0, 0, 0, 0, 0, 0x88, 0x13, 16, 16]) + bytes(12), "format 0x02"),
        (bytes([1, 2, 0, 0, 0, 0, 0, 0, 0x88, 0x13, 16, 16]) + bytes(12), "says 2 samples"),
        (bytes([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 16, 16]) + bytes(12), "zero sample period"),
    ],
)
def test_open_imu_malformed_packets_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(SensorError, match=why):
        oi.decode_packet(data)


def test_reference_peripheral_packets_follow_the_stream() -> None:
    t, acc, gyr = _samples(100)
    p = oi.OpenImuPeripheral(t, acc, gyr, samples_per_packet=8, clock_offset_us=123)
    assert p.advance(20) == []  # not started: samples are not sent
    p.write(oi.CONTROL_UUID, bytes([oi.CMD_START]) + struct.pack("<H", 200))
    notes = p.advance(60)
    assert len(notes) == 5  # samples 20..59 in packets of 8
    first = oi.decode_packet(notes[0][1])
    assert first.seq == 0 and first.t0_us == 123 + 20 * 5000
    notes += p.advance(100)  # the end flushes the last, shorter packet
    assert sum(len(oi.decode_packet(d).raw) for _, d in notes) == 80


# ----------------------------------------------------------------------------- WitMotion


def test_witmotion_packet_from_the_datasheet_formulas() -> None:
    """WT901BLECL datasheet 6.1.1: 0x55 0x61, then ax ay az wx wy wz roll pitch yaw,
    int16 low byte first; acc = raw/32768*16 g, gyro = raw/32768*2000 deg/s,
    angle = raw/32768*180 deg. Raw values chosen so each result is exact."""
    data = bytes.fromhex("5561 0008 00f8 0010 0010 00f0 0000 0040 00c0 0020")
    acc, gyr, ang = wm.decode_packets(data)
    np.testing.assert_allclose(acc[0], np.array([1.0, -1.0, 2.0]) * G_MPS2)
    np.testing.assert_allclose(gyr[0], [250.0, -250.0, 0.0])
    np.testing.assert_allclose(ang[0], [90.0, -90.0, 45.0])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (bytes.fromhex("5561") + bytes(14), "not a whole number of 20-byte packets"),
        (bytes.fromhex("aa61") + bytes(18), "starts with 0xaa"),
        (bytes.fromhex("5551") + bytes(18), "flag 0x51"),
    ],
)
def test_witmotion_malformed_notifications_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(SensorError, match=why):
        wm.decode_packets(data)


def test_witmotion_round_trip_and_register_replies_skipped() -> None:
    _, acc, gyr = _samples(5)
    ang = np.array([10.0, -20.0, 170.0])
    data = b"".join(wm.encode_packet(acc[i], gyr[i], ang) for i in range(5))
    reply = bytes.fromhex("5571 3a00 6801 6900 7a00") + bytes(10)  # a 0x71 register answer
    acc2, gyr2, ang2 = wm.decode_packets(data[:40] + reply + data[40:])
    np.testing.assert_allclose(acc2, acc, atol=ACC_LSB_16G * 0.51)
    np.testing.assert_allclose(gyr2, gyr, atol=GYR_LSB_2000 * 0.51)
    np.testing.assert_allclose(ang2[0], ang, atol=180 / 32768)


def test_witmotion_rate_command() -> None:
    assert wm.rate_command(200) == bytes.fromhex("ffaa030a00")
    assert wm.rate_command(100) == bytes.fromhex("ffaa030900")
    assert wm.rate_command(60) == bytes.fromhex("ffaa030800")  # nearest: 50 Hz


# ----------------------------------------------------------------------------- registry


def test_every_profile_decodes_what_its_peripheral_sends() -> None:
    t, acc, gyr = _samples(400)
    acc = np.clip(acc, -7.9 * G_MPS2, 7.9 * G_MPS2)  # inside every profile's range
    for key in PROFILES:
        prof = get_profile(key)
        rate = prof.actual_rate_hz(200.0)
        kw = {"acc_decimation": 1} if key == "polar_pmd" else {}
        periph = prof.peripheral(t, acc, gyr, **kw)
        answers = started(prof, periph, rate)
        dec = prof.decoder(rate)
        if key == "polar_pmd":  # the factors come in the start answers
            from companion.source.ble.profiles import polar_pmd as pp

            factors = [pp.parse_response(d).settings.get(pp.SET_FACTOR) for d in answers]
            acc_f, gyr_f = (f[0] for f in factors if f)
            dec.configure(200.0, 200.0, acc_f, gyr_f)  # type: ignore[attr-defined]
        frames = [f for cu, d in periph.advance(400) for f in dec.feed(cu, d)]
        got_acc = np.concatenate([f.acc_mps2 for f in frames])
        assert len(got_acc) == 400, key
        np.testing.assert_allclose(got_acc, acc, atol=0.02, err_msg=key)


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(SensorError, match="unknown sensor profile 'polr'"):
        get_profile("polr")


# ----------------------------------------------------------------------------- clock


def _frame(t0: int, n: int, period: int, seq: int | None, modulus: int = 2**32) -> Frame:
    ticks = (t0 + period * np.arange(n, dtype=np.int64)) % modulus
    return Frame(ticks, np.zeros((n, 3)), np.zeros((n, 3)), float(period), seq)


def test_clock_counts_lost_notifications_as_gaps() -> None:
    clk = SensorClock(1e6, 2**32, 2**16)
    times = []
    for k in range(20):
        if k in (5, 6, 13):
            continue  # lost notifications
        placed = clk.place(_frame(k * 8 * 5000, 8, 5000, k), host_mono=k * 0.04)
        times.append(placed.t_s)
    t = np.concatenate(times)
    assert clk.lost_frames == 3
    assert clk.lost_samples == 24
    steps = np.round(np.diff(t) / 0.005).astype(int)
    assert sorted(steps[steps > 1].tolist()) == [9, 17]  # 8 and 16 samples missing
    np.testing.assert_allclose(t[0], 0.0)


def test_clock_unwraps_the_device_clock() -> None:
    clk = SensorClock(1e6, 2**32, 2**16)
    start = 2**32 - 3 * 40_000  # wraps after 3 packets
    t = np.concatenate(
        [clk.place(_frame(start + k * 40_000, 8, 5000, k), k * 0.04).t_s for k in range(10)]
    )
    np.testing.assert_allclose(np.diff(t), 0.005)
    assert clk.lost_samples == 0


def test_clock_drops_repeated_samples() -> None:
    clk = SensorClock(1e6, 2**32, 2**16)
    clk.place(_frame(0, 8, 5000, 0), 0.0)
    again = clk.place(_frame(0, 8, 5000, 0), 0.01)
    assert not again.keep.any() and clk.lost_frames == 0


def test_clock_after_reconnect_uses_host_time_for_wraps_and_resets() -> None:
    # device clock keeps running through a 5-minute outage (more than half a wrap at 1 kHz
    # ticks modulo 2**16 would be ambiguous from ticks alone)
    clk = SensorClock(1000.0, 2**16, None)
    for k in range(100):
        clk.place(_frame(k * 40, 8, 5, None, 2**16), k * 0.04)
    clk.resume()
    placed = clk.place(_frame((100 * 40 + 300_000) % 2**16, 8, 5, None, 2**16), 99 * 0.04 + 300.0)
    assert placed.t_s[0] == pytest.approx(100 * 0.04 + 300.0)
    # a device that restarted its clock: re-anchored on host time, line stays increasing
    clk.resume()
    last = clk.last_t_s
    placed = clk.place(_frame(0, 8, 5, None, 2**16), 99 * 0.04 + 310.0)
    assert placed.t_s[0] == pytest.approx(last + 10.0, abs=0.05)


def test_counted_clock_finds_gaps_from_late_arrivals() -> None:
    clk = SensorClock(100.0, None, None, counted=True)
    for k in range(400):
        host = k * 0.01 + (1.0 if k >= 300 else 0.0)  # one second of silence at k = 300
        clk.place(Frame(np.array([k]), np.zeros((1, 3)), np.zeros((1, 3)), 1.0), host)
    assert clk.lost_samples == pytest.approx(100, abs=2)


def test_clock_map_estimates_offset_and_drift() -> None:
    rng = np.random.default_rng(1)
    cm = ClockMap()
    for k in range(3000):
        t = k * 0.02
        cm.add(t, 50.0 + t * (1 + 40e-6) + 0.01 + rng.exponential(0.015))
    assert cm.drift == pytest.approx(40e-6, abs=15e-6)
    assert cm.to_host(60.0) == pytest.approx(50.0 + 60.0 * (1 + 40e-6) + 0.01, abs=0.003)


# ----------------------------------------------------------------------------- Polar PMD
# Vectors from Polar's own SDK tests (polarofficial/polar-ble-sdk), taken sample for
# sample (the bytes and the values the SDK's tests expect; the code here is ours):
#  [iOS]  sources/iOS/ios-communications/Tests/iOSCommunicationsTests/
#         iOSCommunicationsTests.swift, testPmdDeltaFrameDecoder
#  [GYR0] sources/Android/.../gatt/client/pmd/model/GyrDataTest.kt,
#         "process gyro compressed data type 0"
#  [GYR1] .../pmd/model/GyrDataTest.kt, "process gyro compressed data type 1" (and
#         "... with factor")
#  [ACC0] .../pmd/model/AccDataTest.kt, "process acc compressed data type 0"
#  [ACC1] .../pmd/model/AccDataTest.kt, "process acc raw data frame type 1"
#  [ACCC1] .../pmd/model/AccDataTest.kt, "process acc compressed data type 1"
#  [PARSE] .../pmd/BlePmdClientParsersTest.kt (reference samples, 32-bit and multi-block
#         delta frames)
#  [SET]  .../pmd/PmdSettingTest.kt
#  [TIME] .../pmd/model/PmdTimeStampUtilsTest.kt

from companion.source.ble.profiles import polar_pmd as pp  # noqa: E402

ACC0_CONTENT = bytes.fromhex(
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F 92 BF"
    " EE 4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E 7B 2F 8B E3"
    " CE 8B E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC 18 FE 3B 2F 84 03"
    " BF CB E0 C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7 F1 B9 FC 7D BC 2E 7D 27"
    " 9F 4B DF CA EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3 92 F7 F3 B8 E0 0D FD 2D 77 4B"
    " 7F CB DD D2 DF 62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B"
    " 4F 4B DC DC D3 F2 36 F7 B4 BC DD FD 2C 6F 7B 3F 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F"
    " 1F CB DA E3 C7 A2 76 F9"
)
ACC1_CONTENT = bytes.fromhex(  # 36 samples of int16 mG
    "f7ffffffe703f8fffeffe503f9ffffffe503faffffffe603fafffeffe603f9ffffffe503f8ffffffe603"
    "f8fffeffe603faffffffe503faffffffe703faffffffe503f8ffffffe603f7ffffffe603f8fffeffe603"
    "f9fffeffe703f9ff0000e603f9ffffffe603f7fffeffe503f9ffffffe503f9ffffffe503faff0000e603"
    "f9fffeffe603f8ffffffe603f8ffffffe503f9ffffffe603f9ffffffe503faffffffe603f9ffffffe503"
    "f9ffffffe503f8fffeffe603f9ffffffe603f9ffffffe603f9ff0000e503f9fffeffe603f8fffeffe603"
    "f7fffeffe603"
)
TS_2S = bytes.fromhex("00 94 35 77 00 00 00 00")  # 2_000_000_000 ns
GYR1_CONTENT = bytes.fromhex(
    "00 00 80 3F 00 00 20 41 00 00 A0 41 1C 01 00 00 A0 01 00 00 08 CD CC EC 0D"
)
DELTA32_REAL = bytes.fromhex(  # [PARSE] test_parseDeltaFrameAllSamples_withResolution32_realVector1
    "0000803f000020410000a0411c060000a001000008cdccec0d000008cdccec3d33331acdccec3d33331a"
    "0000c03033331a0000c0a09999da0000c0a09999da6666a6a19999da6666a60100000e20036666a601"
    "0000e000426c450e0000e000426c450e2bf8ed21000060fdbe93baf0939b4ccf1c060000a001000008"
    "cdccec0d000008cdccec3d33331acdccec3d33331a0000c03033331a0000c0a09999da0000c0a09999"
    "da6666a6a19999da6666a60100000e20036666a6010000e000426c450e0000e000426c450e2bf8ed21"
    "000060fdbe93baf0939b4ccf"
)
DELTA32 = bytes.fromhex(  # [PARSE] test_parseDeltaFrameAllSamples_withResolution32
    "02000000193299e900dafeff2011173299e9e7a7651638db0646e7a7651638db064673413bb87a2604"
    "01c90aff597707d13287bf019f213e0d91e50176ad213e0d91e50176ad920138cde50176ad920138cd"
    "00548487920138cd0054848778cbee400054848778cbee40f1decc8b78cbee40f1decc8b173299e9f1"
    "decc8b173299e9e7a76516173299e9e7a7651638db0646e7a7651638db064673413bb87a260401c90a"
    "ff597707d13287bf019f213e0d91e50176ad213e0d91e50176ad920138cde50176ad920138cd005484"
    "87920138cd0054848778cbee40"
)
DELTA16_MULTI = bytes.fromhex(  # [PARSE] test_parseDeltaFrameAllSamples_multipleDeltas
    "c9ff12001100030941fe2b0f9c0bbf15004f00041ef1ef00f0c123e4edf4d1f1f1f5ff22de3100f1fe"
    "21021f0e2b1f00e220000e02e11e20fff1f102c5d002e0e102030a312efbba902baa0e23409e030414"
    "e3eff30f021f01e00f049e13e2d004e222e2c20e200f2002fe000f1c32ee030a890007087c00ce2fe8"
    "3a9e03041e010011194f002f12fd13ff0e100000f1c012e4ef21000001f1ffff0210102b510b4e31fc"
    "2ebf3114ec0e2f52ef030a069e040e02a888eee0079a00040a1f211e4e2efec6c002ef030102ee1103"
    "0af8130000f040bfa5e7007600"
)


def _i32(x: int) -> int:
    """An integer as Kotlin's 32-bit ``Int`` holds it."""
    return (x + 2**31) % 2**32 - 2**31


def _f32(bits: int) -> float:
    """Kotlin's ``intBitsToFloat``."""
    return struct.unpack("<f", struct.pack("<I", bits % 2**32))[0]


def test_polar_delta_decoder_ios_vector() -> None:
    """[iOS]: 6 samples from a reference and two 3-bit blocks."""
    data = bytes.fromhex("FF FF FF FF FF FF 03 03 AA AA CC CF 03 02 AA AA CC")
    s = pp.decode_delta(data)
    assert s.tolist() == [[-1, -1, -1], [1, -4, 1], [-2, -2, 2], [1, -4, 1], [3, -7, 3], [0, -5, 4]]


def test_polar_reference_sample_vector() -> None:
    """[PARSE] "parse reference sample when resolution16": four signed 16-bit channels."""
    s = pp.decode_delta(bytes.fromhex("FF FF 00 00 FF 7F 00 80"), channels=4)
    assert s.tolist() == [[-1, 0, 32767, -32768]]


def test_polar_multi_block_delta_vector() -> None:
    """[PARSE] "multipleDeltas": 1 + 9 + 30 + 10 + 20 + 10 + 30 + 10 + 10 + 10 samples."""
    s = pp.decode_delta(DELTA16_MULTI)
    assert len(s) == 1 + 9 + 30 + 10 + 20 + 10 + 30 + 10 + 10 + 10
    assert s[:2].tolist() == [[-55, 18, 17], [-54, 18, 18]]


@pytest.mark.parametrize(
    ("content", "n", "first", "second"),
    [
        (
            DELTA32_REAL,
            1 + 6 + 3 + 6 + 3,
            [0x3F800000, 0x41200000, 0x41A00000],
            [0x3F800000 + 0x1A00000, 0x41200000 + 0x0800000, 0x41A00000 + 0xFDECCCCD],
        ),
        (
            DELTA32,
            18,
            [0x00000002, 0xE9993219, 0xFFFEDA00],
            [0x00000002 + 0xE9993217, 0xE9993219 + 0x1665A7E7, 0xFFFEDA00 + 0x4606DB38],
        ),
    ],
)
def test_polar_32_bit_delta_vectors(content: bytes, n: int, first: list, second: list) -> None:
    """[PARSE] 32-bit reference samples and deltas, summed as 32-bit integers (wrapping)."""
    s = pp.decode_delta(content, ref_bytes=4)
    assert len(s) == n
    assert s[0].tolist() == [_i32(v) for v in first]
    assert s[1].tolist() == [_i32(v) for v in second]


def test_polar_gyro_compressed_frame_vector() -> None:
    """[GYR0]: type 5, timestamp 2**63 - 1, frame type 0x80, one 3-bit delta, factor 1."""
    data = bytes.fromhex("05 FF FF FF FF FF FF FF 7F 80 EA FF 08 00 0D 00 03 01 DF 00")
    f = pp.decode_frame(data)
    assert (f.kind, f.timestamp_ns, f.compressed) == (pp.GYRO, 2**63 - 1, True)
    assert f.samples.tolist() == [[-22, 8, 13], [-23, 11, 16]]
    assert f.scaled(1.0).tolist() == [[-22.0, 8.0, 13.0], [-23.0, 11.0, 16.0]]
    assert pp.times_after(100, f.timestamp_ns, 2)[-1] == 2**63 - 1  # the last at the stamp


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_polar_gyro_float_frame_vector(factor: float) -> None:
    """[GYR1]: delta type 1, float32 values delta-coded as 32-bit integers, × factor."""
    f = pp.decode_frame(bytes([pp.GYRO]) + TS_2S + bytes([0x81]) + GYR1_CONTENT)
    assert f.timestamp_ns == 2_000_000_000 and f.frame_type == 0x81
    want = [
        [_f32(0x3F800000), _f32(0x41200000), _f32(0x41A00000)],
        [
            _f32(0x3F800000 + 0x1A00000),
            _f32(0x41200000 + 0x0800000),
            _f32(0x41A00000 + 0xFDECCCCD),
        ],
    ]
    assert want[0] == [1.0, 10.0, 20.0]
    assert f.scaled(factor).tolist() == [[factor * v for v in row] for row in want]
    assert pp.times_after(100, f.timestamp_ns, 2)[-1] == 2_000_000_000


def test_polar_acc_compressed_frame_vector() -> None:
    """[ACC0]: 1 + 56 samples of 10-bit deltas; factor 2.44e-4 g, range 8 g; previous
    frame at 100 ns."""
    data = bytes([pp.ACC]) + TS_2S + bytes([0x80]) + ACC0_CONTENT
    f = pp.decode_frame(data)
    assert f.timestamp_ns == 2_000_000_000
    assert len(f.samples) == 57
    assert f.samples[0].tolist() == [1905, 27376, -29282]
    assert f.samples[1].tolist() == [1905 + 190, 27376 - 105, -29282 - 85]
    factor = float(np.float32(2.44e-4))  # as the start answer carries it: a float32
    mg = f.scaled(factor) / G_MPS2 * 1000.0
    # the SDK's milli-g: (factor * sample * 1000f).toInt(), in float32, truncated
    sdk = (np.float32(factor) * f.samples[:2].astype(np.float32) * np.float32(1000)).astype(int)
    np.testing.assert_array_equal(np.trunc(mg[:2]).astype(int), sdk)
    assert np.all(np.abs(mg) <= 8 * 1000)
    times = pp.times_after(100, f.timestamp_ns, 57)
    assert times[0] == round(100 + (2_000_000_000 - 100) / 57)
    assert times[-1] == 2_000_000_000


def test_polar_acc_compressed_type_1_vector() -> None:
    """[ACCC1]: delta type 1 carries milli-g × factor (factor 1 here); two samples spread
    over (100, 101] ns: at 100 (100.5, ties to even) and 101."""
    data = bytes.fromhex("02 65 00 00 00 00 00 00 00 81 F1 FF 14 00 F0 03 06 01 7B 0F 08")
    f = pp.decode_frame(data)
    assert f.samples.tolist() == [[-15, 20, 1008], [-20, 17, 1008]]
    mg = f.scaled(1.0) / G_MPS2 * 1000.0
    np.testing.assert_allclose(mg, [[-15, 20, 1008], [-20, 17, 1008]], rtol=1e-12)
    assert pp.times_after(100, f.timestamp_ns, 2).tolist() == [100, 101]


def test_polar_acc_raw_frame_vector() -> None:
    """[ACC1]: raw frame type 1, int16 mG, 36 samples; first frame of the stream (no
    previous one), 52 Hz: times back from the stamp at 1/52 s."""
    f = pp.decode_frame(bytes([pp.ACC]) + TS_2S + bytes([0x01]) + ACC1_CONTENT)
    assert not f.compressed and len(f.samples) == len(ACC1_CONTENT) // 6 == 36
    assert f.samples[:2].tolist() == [[-9, -1, 999], [-8, -2, 997]]
    want = [struct.unpack_from("<3h", ACC1_CONTENT, 6 * i) for i in range(36)]
    assert f.samples.tolist() == [list(w) for w in want]
    times = pp.times_from_rate(f.timestamp_ns, 36, 1e9 / 52)
    assert times[-1] == 2_000_000_000
    np.testing.assert_allclose(np.diff(times), 1e9 / 52, atol=1)
    # through the decoder: mG to m/s², put on the gyroscope's sample times
    dec = pp.PolarDecoder(52.0, 52.0)
    dec.feed(pp.DATA_UUID, bytes([pp.ACC]) + TS_2S + bytes([0x01]) + ACC1_CONTENT[:24])
    gyro = pp.encode_frame(pp.GYRO, 2_000_000_000, np.zeros((4, 3), int), compressed=True)
    (frame,) = dec.feed(pp.DATA_UUID, gyro)
    assert frame.acc_mps2[-1].tolist() == pytest.approx(
        [-0.006 * G_MPS2, -0.001 * G_MPS2, 0.998 * G_MPS2]
    )


def test_polar_settings_vectors() -> None:
    """[SET]: a settings answer (rate, resolution, four ranges, channels), and range in
    milli-units read signed (``FF FF FF FF`` is -1), as the Android SDK reads it."""
    got = pp.parse_settings(
        bytes.fromhex("00 01 34 00 01 01 10 00 02 04 F5 00 F4 01 E8 03 D0 07 04 01 03")
    )
    assert got == {
        pp.SET_RATE: [52],
        pp.SET_RESOLUTION: [16],
        pp.SET_RANGE: [245, 500, 1000, 2000],
        pp.SET_CHANNELS: [3],
    }
    got = pp.parse_settings(bytes.fromhex("03 02 FF FF FF FF FF 00 00 00 01 01 0E 00"))
    assert got == {pp.SET_RANGE_MILLI: [-1, 255], pp.SET_RESOLUTION: [14]}
    # the SDK's serialisation test: RANGE_MILLIUNIT Int.MAX_VALUE survives a round trip
    sel = {pp.SET_RATE: [0x7FFF], pp.SET_RANGE: [15], pp.SET_RANGE_MILLI: [2**31 - 1]}
    assert pp.parse_settings(pp.build_settings(sel)) == sel


@pytest.mark.parametrize(
    ("prev", "ts", "n", "rate_hz", "want"),
    [
        # "samples time stamps based on frequency"
        (None, 10_000_000_000, 10, 1, [k * 1_000_000_000 for k in range(1, 11)]),
        # "... based on frequency only one sample"
        (None, 1_000_000_000, 1, 1, [1_000_000_000]),
        # "... based on previous time stamp test 1"
        (1_000_000_000, 11_000_000_000, 10, 1, [k * 1_000_000_000 for k in range(2, 12)]),
        # "... test 2": (2000000000 - 100) / 3 apart, rounded
        (100, 2_000_000_000, 3, 1, [666666733, 1333333367, 2_000_000_000]),
        # "... based on previous time stamp only one sample"
        (1_000_000_000, 2_000_000_000, 1, 1, [2_000_000_000]),
    ],
)
def test_polar_sample_times_vectors(
    prev: int | None, ts: int, n: int, rate_hz: float, want: list[int]
) -> None:
    """[TIME]: a frame's sample times, sample for sample."""
    if prev is None:
        got = pp.times_from_rate(ts, n, 1e9 / rate_hz)
    else:
        got = pp.times_after(prev, ts, n)
    assert got.tolist() == want
    # the decoder's own timing gives the same for consecutive frames of one stream
    stream = pp._Stream(1e9 / rate_hz, prev_ts=prev)
    assert stream.times(ts, n).tolist() == want


# ----------------------------------------------------------------------------- Polar defects


def test_polar_frame_without_samples_after_a_frame_is_skipped_not_a_crash() -> None:
    """An empty raw frame after an earlier frame of the same stream used to divide by zero
    in the stream's timing (a ZeroDivisionError, which escaped the notification handler)."""
    dec = pp.PolarDecoder(52.0, 52.0)
    head = bytes([pp.ACC]) + TS_2S + bytes([0x01])
    dec.feed(pp.DATA_UUID, head + ACC1_CONTENT[:24])
    later = bytes([pp.ACC]) + struct.pack("<Q", 2_100_000_000) + bytes([0x01])
    with pytest.raises(SensorError, match="carries no samples"):
        dec.feed(pp.DATA_UUID, later)
    # and the stream goes on: the next frame is placed after the first
    dec.feed(pp.DATA_UUID, later + ACC1_CONTENT[24:48])
    assert dec._acc.prev_ts == 2_100_000_000


def test_polar_raw_acc_frames_are_read_at_their_own_width() -> None:
    """The raw frame type says the integer width: int8 (0), int16 (1), int24 (2) mG. An
    18-byte int8 frame is six samples, not three int16 ones."""
    vals = [[-128, 127, 1], [0, -1, 64], [5, 6, 7], [-5, -6, -7], [100, -100, 0], [1, 2, 3]]
    content = bytes(v & 0xFF for row in vals for v in row)
    f = pp.decode_frame(bytes([pp.ACC]) + TS_2S + bytes([0x00]) + content)
    assert f.samples.tolist() == vals
    vals24 = [[-8_388_608, 8_388_607, -2], [1000, -1000, 65536]]
    content = b"".join(v.to_bytes(3, "little", signed=True) for row in vals24 for v in row)
    f = pp.decode_frame(bytes([pp.ACC]) + TS_2S + bytes([0x02]) + content)
    assert f.samples.tolist() == vals24
    np.testing.assert_allclose(f.scaled(1.0)[1], np.array([1.0, -1.0, 65.536]) * G_MPS2)


@pytest.mark.parametrize(
    ("kind", "ftype", "why"),
    [
        (pp.GYRO, 0x00, "gyroscope frame type 0x00 \\(raw type 0\\)"),
        (pp.GYRO, 0x01, "gyroscope frame type 0x01"),
        (pp.ACC, 0x03, "accelerometer frame type 0x03 \\(raw type 3\\)"),
        (pp.ACC, 0x82, "accelerometer frame type 0x82 \\(delta type 2\\)"),
        (pp.GYRO, 0xFF, "gyroscope frame type 0xff"),
        (1, 0x00, "measurement type 1"),  # PPG: never started by this host
    ],
)
def test_polar_frame_types_not_in_the_sdk_are_refused(kind: int, ftype: int, why: str) -> None:
    with pytest.raises(SensorError, match=why):
        pp.decode_frame(bytes([kind]) + TS_2S + bytes([ftype]) + bytes(18))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=1, max_size=60),
    st.integers(1, 255),
)
def test_polar_delta_round_trip(rows: list[tuple[int, int, int]], block: int) -> None:
    s = np.array(rows, dtype=np.int64)
    assert pp.decode_delta(pp.encode_delta(s, block=block)).tolist() == s.tolist()


@pytest.mark.parametrize(("kind", "compressed", "number"), sorted(pp.FORMATS))
def test_polar_frame_round_trip(kind: int, compressed: bool, number: int) -> None:
    fmt = pp.FORMATS[(kind, compressed, number)]
    rng = np.random.default_rng(kind + number)
    if fmt.floats:
        s = rng.uniform(-2000, 2000, (20, 3)).astype(np.float32).astype(np.float64)
    else:
        lim = 2 ** (8 * fmt.value_bytes - 1)
        s = rng.integers(-lim, lim, (20, 3))
    data = pp.encode_frame(kind, 123_456_789_012, s, compressed=compressed, frame_type=number)
    f = pp.decode_frame(data)
    assert (f.kind, f.timestamp_ns, f.compressed) == (kind, 123_456_789_012, compressed)
    assert f.samples.tolist() == s.tolist()
    with pytest.raises(ValueError, match="no Polar PMD frame type"):
        pp.encode_frame(pp.GYRO, 0, s, compressed=False)


def test_polar_settings_round_trip_and_start_request() -> None:
    # The SDK's ACC start request for 52 Hz, 16 bit, 8 g (BlePmdClient examples)
    assert pp.start_request(pp.ACC, 52, 16, 8) == bytes.fromhex(
        "02 02 00 01 34 00 01 01 10 00 02 01 08 00"
    )
    raw = pp.build_settings({pp.SET_RATE: [26, 52, 104, 208], pp.SET_FACTOR: [0.061]})
    got = pp.parse_settings(raw)
    assert got[pp.SET_RATE] == [26, 52, 104, 208]
    assert got[pp.SET_FACTOR][0] == pytest.approx(0.061)


def test_polar_decoder_puts_acc_on_gyro_times_and_finds_lost_frames() -> None:
    n = 400
    t = np.arange(n) / 208.0
    acc = np.column_stack([np.sin(2 * t), np.cos(3 * t), 9.8 + 0 * t])
    gyr = np.column_stack([100 * np.sin(5 * t), 0 * t, 50 + 0 * t])
    prof = pp.PolarPmdProfile()
    periph = prof.peripheral(t, acc, gyr, acc_decimation=4)
    dec = prof.decoder(208.0)
    dec.configure(52.0, 208.0, 8 / 32768, 2000 / 32768)
    for c in pp.start_commands(208.0):
        periph.write(pp.CONTROL_UUID, c)
    # notifications as a device sends them over time, ACC and GYRO frames interleaved
    notes = [note for i in range(0, n + 7, 7) for note in periph.advance(i)]
    gyro_notes = [i for i, (_, d) in enumerate(notes) if d[0] == pp.GYRO]
    lost = gyro_notes[5]
    frames = [f for i, (cu, d) in enumerate(notes) if i != lost for f in dec.feed(cu, d)]
    clk = SensorClock(1e9, None)
    t_out = np.concatenate([clk.place(f, 0.0).t_s for f in frames])
    a_out = np.concatenate([f.acc_mps2 for f in frames])
    assert clk.lost_samples == 18  # one gyro frame of 18 samples
    idx = np.rint(t_out * 208).astype(int)
    np.testing.assert_allclose(t_out, idx / 208.0, atol=1e-6)  # ns rounding of 208 Hz
    # acc interpolated from 52 Hz: close to the true signal (slow here), on gyro times
    np.testing.assert_allclose(a_out, acc[idx], atol=0.01)


class _PolarClient:
    """Just enough of a BleakClient for ``PolarPmdProfile.start`` against a peripheral;
    ``tamper`` changes the device's control point answers on the way."""

    def __init__(self, periph: pp.PolarPeripheral, tamper: object = None) -> None:
        self.periph = periph
        self.tamper = tamper
        self.handlers: dict[str, object] = {}

    async def start_notify(self, uuid: str, handler: object) -> None:
        self.handlers[uuid] = handler

    async def write_gatt_char(self, uuid: str, data: bytes, response: bool = True) -> None:
        for cu, payload in self.periph.write(uuid, bytes(data)):
            if self.tamper is not None:
                payload = self.tamper(payload)  # type: ignore[operator]
            self.handlers[cu](None, bytearray(payload))  # type: ignore[operator]


def _polar_start(tamper: object = None) -> pp.PolarDecoder:
    import asyncio

    t, acc, gyr = _samples(50)
    prof = pp.PolarPmdProfile()
    prof.response_timeout_s = 0.5
    client = _PolarClient(prof.peripheral(t, acc, gyr), tamper)
    asyncio.run(prof.start(client, 200.0, lambda _u, _d: None))  # type: ignore[arg-type]
    assert prof._decoder is not None
    return prof._decoder


def test_polar_start_takes_rates_and_factors_from_the_device() -> None:
    dec = _polar_start()
    assert (dec.acc_rate_hz, dec.gyr_rate_hz) == (50.0, 200.0)
    assert dec.acc_factor == pytest.approx(8 / 32768) and dec.gyr_factor == pytest.approx(
        2000 / 32768
    )


def _set_factor(value: float) -> object:
    def tamper(answer: bytes) -> bytes:
        if answer[1] == pp.OP_START:
            return answer[:5] + pp.build_settings({pp.SET_FACTOR: [value]})
        return answer

    return tamper


@pytest.mark.parametrize("factor", [float("nan"), float("inf"), 0.0, -0.5, 1e9])
def test_polar_start_refuses_a_scale_factor_that_cannot_be_right(factor: float) -> None:
    with pytest.raises(SensorError, match="scale factor of"):
        _polar_start(_set_factor(factor))


def test_polar_start_says_when_an_answer_cannot_be_read() -> None:
    def cut(answer: bytes) -> bytes:  # a settings record cut short
        return answer[:-1] if answer[1] == pp.OP_GET_SETTINGS else answer

    with pytest.raises(SensorError, match="answer to the accelerometer request cannot be read"):
        _polar_start(cut)


def test_polar_start_ignores_settings_values_that_cannot_be_meant() -> None:
    def zero_rates(answer: bytes) -> bytes:  # rates 0 and 65535 Hz, ranges 0 only
        if answer[1] != pp.OP_GET_SETTINGS:
            return answer
        bad = {pp.SET_RATE: [0, 65535], pp.SET_RANGE: [0], pp.SET_SECURITY: [7]}
        return answer[:5] + pp.build_settings(bad)

    dec = _polar_start(zero_rates)  # the defaults instead: no division by zero, no log(0)
    assert (dec.acc_rate_hz, dec.gyr_rate_hz) == (52.0, 200.0)
