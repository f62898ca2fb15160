"""``companion report``: the page as a person opens it (real headless Chromium), its
numbers against ``replay --json`` and ``score``, the figures alone, and the mistakes a
user can make."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from companion.config import load_config
from companion.replaying import read_with_warnings, replay_recording
from companion.report.model import build_report, cue_rows, panels_for
from companion.scoring import load_truth, score_events
from companion.source.recording import labels_path, truth_path
from tests.test_cli import companion

FAULTS = "rigid@25-40,forced_dorsiflexion@45-60,forced_plantarflexion@65-80"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHECK_SCRIPT = """
<pre id="companion-test-check"></pre>
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({
    id: i.closest("figure") ? i.closest("figure").id : "",
    complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
    shownWidth: i.getBoundingClientRect().width }));
  const keyed = {};
  document.querySelectorAll("[data-key]").forEach(e => { keyed[e.dataset.key] = e.innerText; });
  const sections = [...document.querySelectorAll("section h2")].map(h => h.innerText);
  document.getElementById("companion-test-check").textContent =
    JSON.stringify({images, keyed, sections, title: document.title});
});
</script>
"""


def chromium() -> str:
    """Debian's chromium (the bootstrap's test set-up installs it); CI must have it."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: run bash scripts/bootstrap.sh test")
        pytest.skip("chromium is not installed (bash scripts/bootstrap.sh test installs it)")
    return path


def open_in_browser(page: Path) -> dict:
    """Load ``page`` in headless Chromium and read back, from the rendered DOM, every
    image's decoded size and the text of every ``data-key`` cell."""
    exe = chromium()
    probe = page.with_name(page.stem + ".probe.html")
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe.write_text(text.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'<pre id="companion-test-check">(.*?)</pre>', res.stdout, re.S)
    assert found and found.group(1), "the page's load event never ran:\n" + res.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A short simulated foot + shank run with each fault, its report (page and PNGs),
    and the same recording through ``replay --json``."""
    d = tmp_path_factory.mktemp("report")
    cfg = d / "c.toml"
    cfg.write_text(f'[run]\nprofile_dir = "{d / "profiles"}"\n[voice]\noutput = "console"\n')
    rec = d / "run.csv"
    res = companion(
        "simulate",
        "--out",
        str(rec),
        "--minutes",
        "1.5",
        "--faults",
        FAULTS,
        "--sensors",
        "foot,shank",
        "--seed",
        "3",
    )
    assert res.returncode == 0, res.stderr
    res = companion(
        "report", str(rec), "--out", str(d / "run.html"), "--png", str(d / "figs"), "-c", str(cfg)
    )
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "Traceback" not in res.stderr
    replay = companion("replay", str(rec), "--fast", "--json", "-c", str(cfg))
    assert replay.returncode == 0, replay.stderr
    events = [json.loads(line) for line in replay.stdout.splitlines()]
    return {"dir": d, "cfg": cfg, "rec": rec, "page": d / "run.html", "events": events}


def test_page_opens_in_a_browser_with_every_figure_and_the_replays_numbers(run: dict) -> None:
    seen = open_in_browser(run["page"])
    assert seen["title"] == "Run report: run"
    assert seen["sections"][:4] == ["Summary", "Timeline", "Gait cycle", "Every cue"]
    ids = sorted(img["id"] for img in seen["images"])
    assert ids == ["gait_cycle_foot", "timeline_foot"]
    for img in seen["images"]:
        assert img["complete"] and img["width"] >= 800 and img["height"] >= 300, img
        assert img["shownWidth"] > 300, img  # laid out, not collapsed
    keyed = seen["keyed"]

    def shown(key: str) -> float:
        assert key in keyed, f"{key} is not on the page"
        return float(keyed[key].split()[0])

    summary = run["events"][-1]
    assert summary["type"] == "summary"
    assert abs(shown("duration_s") - summary["duration_s"]) <= 0.05
    for part in ("samples", "strides", "labels", "cues"):
        assert summary[part], part
        for key, value in summary[part].items():
            assert shown(f"{part}.{key}") == value, (part, key)
    for sensor, cadence in summary["cadence_spm"].items():
        assert shown(f"cadence_spm.{sensor}") == cadence
    assert shown("strides_total") == sum(summary["strides"].values())
    assert shown("cues_total") == sum(summary["cues"].values())
    for sensor in summary["strides"]:
        contact = [
            e["contact_ms"]
            for e in run["events"]
            if e.get("sensor") == sensor and "contact_ms" in e
        ]
        assert abs(shown(f"contact_ms.{sensor}") - statistics.median(contact)) <= 0.5
    # ground truth sits beside the recording: the confusion table is companion score's
    truth = load_truth(labels_path(run["rec"]), truth_path(run["rec"]))
    sensors = {"foot": ("foot", 200.0), "shank": ("shank", 200.0)}
    score = score_events("run", run["events"], truth, sensors)
    cells = {
        k.removeprefix("confusion."): v for k, v in keyed.items() if k.startswith("confusion.")
    }
    assert len(cells) >= 16
    for key, text in cells.items():
        t, p = key.split("->")
        assert int(text) == score.confusion.get((t, p), 0), key
    assert sum(int(v) for v in cells.values()) == sum(score.confusion.values())


def test_png_writes_the_page_figures_alone(run: dict) -> None:
    figs = sorted((run["dir"] / "figs").iterdir())
    assert [f.name for f in figs] == ["gait_cycle_foot.png", "timeline_foot.png"]
    page = run["page"].read_text(encoding="utf-8")
    embedded = re.findall(r'<figure id="([^"]+)"><img src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 2
    for name, data in embedded:
        png = (run["dir"] / "figs" / f"{name}.png").read_bytes()
        assert base64.b64decode(data) == png
        w, h = png_size(png)
        assert w >= 800 and h >= 300
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)
    # --png alone writes no page
    d = run["dir"] / "only_png"
    res = companion("report", str(run["rec"]), "--png", str(d), "-c", str(run["cfg"]))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in d.iterdir()) == ["gait_cycle_foot.png", "timeline_foot.png"]
    assert not (run["dir"] / "run.html.tmp").exists()


def test_every_cue_is_listed_with_the_k_of_n_strides_behind_it(run: dict) -> None:
    cfg = load_config(run["cfg"])
    cues = [e for e in run["events"] if e["type"] == "cue"]
    rows = cue_rows(run["events"], cfg)
    assert [(r.t_s, r.id) for r in rows] == [(c["t_s"], c["id"]) for c in cues]
    reasons = {r.reason for r in rows}
    assert {"rigid", "forced_dorsiflexion", "forced_plantarflexion"} <= reasons
    k = cfg.coach.persist_k
    for r in rows:
        assert r.sensor == "foot"
        assert len(r.strides) >= k, r
        assert all(s["label"] == r.reason and s["sensor"] == "foot" for s in r.strides)
        # the strides came before the cue, the last of them just before it
        assert all(s["t_decided_s"] <= r.t_s for s in r.strides)
        assert r.strides[-1]["t_decided_s"] == r.t_s
    page = run["page"].read_text(encoding="utf-8")
    table = page[page.index('<table class="cues">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == len(cues) + 1
    for r in rows:
        for s in r.strides:
            assert f"foot #{s['stride']} at {s['t_ic_s']:.1f} s" in table


def test_drawn_thresholds_are_where_the_labels_change(tmp_path: Path) -> None:
    """Every stride the estimator gave a fault lies past one of that fault's drawn lines,
    for the foot alone and with a shank (the lines come from the classifier's rules)."""
    from companion.source.recording import write_recording
    from companion.source.simulator import parse_faults, simulate

    cfg = load_config(None)
    for sensors in (("foot",), ("foot", "shank")):
        sim = simulate(90.0, 100.0, faults=parse_faults(FAULTS), sensors=sensors, seed=11)
        path = tmp_path / f"{'_'.join(sensors)}.csv"
        write_recording(path, sim.recording)
        rec, _ = read_with_warnings(path)
        rep = build_report(
            replay_recording(rec, cfg, path=path, keep_curves=True),
            cfg,
            name="x",
            baseline_source="",
        )
        panels = rep.panels["foot"]
        judged = {p.feature for p in panels}
        assert "landing_deg" in judged
        assert ("ankle_rom_deg" in judged) == ("shank" in sensors)
        faults = [r for r in rep.reports["foot"] if r.baseline_ready and r.label.value != "relaxed"]
        assert {r.label.value for r in faults} == {
            "rigid",
            "forced_dorsiflexion",
            "forced_plantarflexion",
        }
        for r in faults:
            past = [
                th
                for p in panels
                for th in p.thresholds
                if th.criterion.label == r.label.value
                and (r.features[p.feature] - th.value) * th.criterion.direction >= -1e-6
            ]
            assert past, (
                sensors,
                r.stride,
                r.label,
                {p.feature: r.features[p.feature] for p in panels},
            )
        # a shank claims no fault: nothing is drawn on it
        assert panels_for("shank", {}, cfg.estimator) == []


def test_a_saved_profile_labels_from_the_first_stride(run: dict) -> None:
    cfg = str(run["cfg"])
    saved = companion(
        "replay", str(run["rec"]), "--fast", "--save-profile", "--runner", "ana", "-c", cfg
    )
    assert saved.returncode == 0, saved.stderr
    out = run["dir"] / "ana.html"
    res = companion("report", str(run["rec"]), "--runner", "ana", "--out", str(out), "-c", cfg)
    assert res.returncode == 0, res.stderr
    page = out.read_text(encoding="utf-8")
    assert "the saved profile of runner &#x27;ana&#x27;" in page
    assert "strides of the baseline period are not drawn" not in page
    missing = companion("report", str(run["rec"]), "--runner", "nobody", "-c", cfg)
    assert missing.returncode == 2 and "no saved profile for runner 'nobody'" in missing.stderr


def test_a_run_without_strides_or_truth_still_gets_a_page(tmp_path: Path) -> None:
    rec = tmp_path / "short.csv"
    assert companion("simulate", "--out", str(rec), "--minutes", "0.05").returncode == 0
    # a broken truth file is a warning and a note, not a failed report
    labels_path(rec).write_text("not,the,header\n")
    res = companion("report", str(rec))
    assert res.returncode == 0, res.stderr
    assert "warning: ground truth not used" in res.stderr and "short.labels.csv" in res.stderr
    assert "could not be read" in (tmp_path / "short.html").read_text(encoding="utf-8")
    labels_path(rec).unlink()
    res = companion("report", str(rec))
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "short.html").read_text(encoding="utf-8")
    assert "No stride was found in this recording" in page
    assert "<img" not in page
    assert "No ground truth beside the recording (short.labels.csv is missing)" in page
    assert "No cue was spoken" in page


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.csv"], 3, "missing.csv"),
        (["{rec}", "--png", "{rec}"], 1, "this is a file; give a folder"),
        (["{rec}", "--out", "{rec}/x.html"], 1, "cannot make the output folder"),
        (["{rec}", "--config", "{rec}"], 2, "run.csv"),
    ],
)
def test_user_mistakes_are_one_clear_message(
    run: dict, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    res = companion("report", *(a.format(rec=run["rec"]) for a in args), cwd=tmp_path)
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and message in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    fake = tmp_path / "shadow" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{Path(__file__).parents[1]}"}
    res = subprocess.run(
        [sys.executable, "-m", "companion", "report", "x.csv"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 1
    assert "pip install 'companion[report]'" in res.stderr and "Traceback" not in res.stderr
