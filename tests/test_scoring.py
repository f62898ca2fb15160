"""``companion score``: matching reports to true strides, the figures, and the command."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from companion.scoring import GroundTruth, TrueStride, load_truth, score_events
from tests.test_cli import companion


def _truth(labels: list[str], t0: float = 10.0, stride_s: float = 0.7) -> GroundTruth:
    strides = [
        TrueStride("foot", i, t0 + i * stride_s, lab, t0 + i * stride_s + 0.25, 5.0)
        for i, lab in enumerate(labels)
    ]
    return GroundTruth({"foot": strides})


def _stride(t: float, label: str, fsa: float = 5.0, ready: bool = True) -> dict:
    return {
        "type": "stride",
        "sensor": "foot",
        "t_ic_s": t,
        "t_to_s": t + 0.25,
        "label": label,
        "baseline_ready": ready,
        "strike_angle_deg": fsa,
    }


SENSORS = {"foot": ("foot", 100.0)}


def test_perfect_reports_score_one() -> None:
    labels = ["relaxed"] * 10 + ["rigid"] * 10 + ["relaxed"] * 10
    truth = _truth(labels)
    events = [_stride(s.t_ic_s + 0.004, s.label) for s in truth.strides["foot"]]
    events.append({"type": "cue", "t_s": 21.0, "id": "relax_ankle", "reason": "rigid"})
    res = score_events("run", events, truth, SENSORS)
    assert res.prf("rigid")[2] == 1.0 and res.prf("relaxed")[2] == 1.0
    foot = res.sensors["foot"]
    assert (foot.found, foot.true_strides, foot.invented) == (30, 30, 0)
    assert all(abs(e - 4.0) < 1e-6 for e in foot.ic_err_ms)
    assert res.spells == 1 and res.spells_cued == 1
    assert res.as_dict()["sensors"]["foot"]["strike_angle_error_deg"]["mean"] == 0.0


def test_misses_inventions_and_wrong_labels_are_counted_against_their_labels() -> None:
    labels = ["relaxed"] * 6 + ["forced_dorsiflexion"] * 4
    truth = _truth(labels)
    ts = [s.t_ic_s for s in truth.strides["foot"]]
    events = [_stride(t, "relaxed") for t in ts[:6]]  # relaxed, right
    events += [_stride(ts[6], "forced_plantarflexion")]  # wrong label
    events += [_stride(ts[7] + 0.15, "forced_dorsiflexion")]  # too far: invented + missed
    events += [_stride(t, "forced_dorsiflexion") for t in ts[8:]]
    res = score_events("run", events, truth, SENSORS)
    foot = res.sensors["foot"]
    assert (foot.found, foot.invented) == (9, 1)
    p, r, _f1, n = res.prf("forced_dorsiflexion")
    assert n == 4 and r == pytest.approx(2 / 4) and p == pytest.approx(2 / 3)
    assert res.prf("forced_plantarflexion")[0] == 0.0
    # the fault spell was never cued
    assert (res.spells, res.spells_cued) == (1, 0)


def test_a_relaxed_run_counts_fault_cues_per_ten_minutes() -> None:
    truth = _truth(["relaxed"] * 200)
    events = [_stride(s.t_ic_s, "relaxed") for s in truth.strides["foot"]]
    events.append({"type": "cue", "t_s": 50.0, "id": "relax_ankle", "reason": "rigid"})
    events.append({"type": "cue", "t_s": 60.0, "id": "good_ankle", "reason": "relaxed"})
    res = score_events("calm", events, truth, SENSORS)
    assert res.relaxed_only and res.fault_cues == 1
    assert res.false_cues_per_10min == pytest.approx(10.0 / (199 * 0.7 / 60.0 + 0.2 / 60.0))


def test_truth_file_adds_toe_off_strike_angle_and_score_flags(tmp_path: Path) -> None:
    (tmp_path / "r.labels.csv").write_text(
        "sensor,stride,t_ic_s,label\nfoot,0,1.0,relaxed\nfoot,1,1.7,relaxed\n"
    )
    (tmp_path / "r.truth.json").write_text(
        json.dumps(
            {
                "setup": "foot",
                "strides": [
                    {"stride": 0, "t_ic_s": 1.0, "t_to_s": 1.25, "fsa_deg": 12.0, "score": False},
                    {"stride": 1, "t_ic_s": 1.7, "t_to_s": 1.95, "fsa_deg": None, "score": True},
                ],
            }
        )
    )
    t = load_truth(tmp_path / "r.labels.csv", tmp_path / "r.truth.json")
    s0, s1 = t.strides["foot"]
    assert (s0.t_to_s, s0.fsa_deg, s0.score) == (1.25, 12.0, False)
    assert math.isnan(s1.fsa_deg) and s1.score


def test_a_broken_truth_file_is_a_recording_error(tmp_path: Path) -> None:
    from companion.errors import RecordingError

    (tmp_path / "r.labels.csv").write_text("sensor,stride,t_ic_s,label\nfoot,0,1.0,relaxed\n")
    (tmp_path / "r.truth.json").write_text("{not json")
    with pytest.raises(RecordingError, match=r"r\.truth\.json"):
        load_truth(tmp_path / "r.labels.csv", tmp_path / "r.truth.json")


@pytest.fixture(scope="module")
def scored_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("score")
    res = companion(
        "simulate",
        "--out",
        str(d / "run.csv"),
        "--minutes",
        "2.5",
        "--rate",
        "100",
        "--faults",
        "rigid@80-110,forced_dorsiflexion@120-145",
    )
    assert res.returncode == 0, res.stderr
    # the same run, gzip-compressed, scores the same
    (d / "packed.csv.gz").write_bytes(gzip.compress((d / "run.csv").read_bytes()))
    (d / "packed.labels.csv").write_bytes((d / "run.labels.csv").read_bytes())
    (d / "packed.truth.json").write_bytes((d / "run.truth.json").read_bytes())
    (d / "no_truth.csv").write_bytes((d / "run.csv").read_bytes())
    return d


def test_score_a_folder_as_a_tester_would(scored_folder: Path) -> None:
    res = companion("score", str(scored_folder), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    runs = {r["name"]: r for r in out["recordings"]}
    assert set(runs) == {"run", "packed"}
    assert any("no_truth.csv" in s for s in out["skipped"])
    run = runs["run"]
    assert run["sensors"] == runs["packed"]["sensors"]
    foot = run["sensors"]["foot"]
    assert foot["found_frac"] >= 0.95 and foot["invented"] <= 2
    assert run["labels"]["rigid"]["f1"] >= 0.8
    assert run["fault_spells"] == 2 and run["fault_spells_cued"] == 2
    text = companion("score", str(scored_folder))
    assert text.returncode == 0, text.stderr
    assert "| **all foot** |" in text.stdout and "run (foot)" in text.stdout


def test_score_without_ground_truth_says_what_is_missing(scored_folder: Path) -> None:
    res = companion("score", str(scored_folder / "no_truth.csv"))
    assert res.returncode == 3
    assert "no_truth.labels.csv is missing" in res.stderr
    assert "Traceback" not in res.stderr
