"""Real running recordings for ``companion score``: the PyShoe VICON dataset's running trials.

The PyShoe VICON dataset (Wagstaff, Peretroukhin & Kelly, "Robust Data-Driven Zero-Velocity
Detection for Foot-Mounted Inertial Navigation", IEEE Sensors J. 20(2), 2019; data: IEEE
DataPort doi:10.21227/v1z6-9z84) has one IMU on top of the right shoe at 200 Hz and the
Vicon position of that IMU on the same clock. This script turns its 17 running trials into
companion recordings (``NAME.csv.gz``) with a stride reference (``NAME.labels.csv``,
``NAME.truth.json``) that ``companion score`` reads.

The reference is kinematic, not a force plate: a stance starts when the IMU's own speed
(Vicon position, median filter over 9 samples, 10 Hz low-pass, differentiated) falls below
0.5 m/s. That is when the foot comes to rest, 30-40 ms after the IMU's impact peak and more
after the true contact, so a contact error of -40 to -70 ms against it is what a correct
contact gives. Every placement is listed (a detection there is not counted as invented);
only clean running strides (stance 80-450 ms, over 2 m/s before and after) are scored. The
trials are overground in a 3 x 3 m volume: the runners circle, turning 30-100 deg a stride.
Nobody was asked to fault: every stride is ``relaxed``.

Input: the trials' ``data/vicon/processed/<trial>.mat`` files (``imu`` N x 6 in m/s² and
rad/s, ``ts``, ``gt`` N x 3 m), as on IEEE DataPort or redistributed unchanged in
github.com/mtahakoroglu/gait-driven-inertial-navigation-dataset. Treat the data as research
data: cite the paper; it is not shipped with companion.

    python benchmarks/realdata/convert_pyshoe.py DIR_WITH_THE_MAT_FILES OUT_DIR
    companion score OUT_DIR
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import scipy.io as sio
from scipy.signal import butter, filtfilt, medfilt

FS = 200.0
AT_REST_MPS = 0.5
"""A stance starts when the foot's speed falls below this ..."""
MOVING_MPS = 1.0
"""... and lasts until it next exceeds this."""
RUN_TRIALS = (
    "2017-11-27-11-11-24",
    "2017-11-27-11-11-53",
    "2017-11-27-11-12-18",
    "2017-11-27-11-13-41",
    "2017-11-27-11-14-03",
    "2017-11-27-11-14-52",
    "2017-11-27-11-17-28",
    "2017-11-27-11-18-11",
    "2017-11-27-11-19-16",
    "2017-11-27-11-22-22",
    "2017-11-27-11-23-18",
    "2017-11-27-11-24-07",
    "2017-11-27-11-25-12",
    "2017-12-15-18-01-18",
    "2017-12-15-18-01-51",
    "2017-12-15-18-02-28",
    "2017-12-15-18-03-05",
)
"""The trials that are running (stance 170-225 ms, stride 0.72-0.81 s, duty factor
0.23-0.29, from the Vicon trajectory); the others of the dataset are walking or mixed."""


def foot_speed(gt_m: np.ndarray, fs: float = FS, cutoff_hz: float = 10.0) -> np.ndarray:
    """Speed (m/s) of the tracked point: median filter, zero-phase low-pass, gradient."""
    g = np.column_stack([medfilt(gt_m[:, i], 9) for i in range(3)])
    b, a = butter(2, cutoff_hz / (fs / 2))
    g = filtfilt(b, a, g, axis=0)
    return np.linalg.norm(np.gradient(g, 1 / fs, axis=0), axis=1)


def crossings(speed: np.ndarray, level: float, falling: bool) -> np.ndarray:
    """Sub-sample indices where ``speed`` crosses ``level`` (falling or rising)."""
    a, b = speed[:-1], speed[1:]
    idx = np.where((a >= level) & (b < level) if falling else (a < level) & (b >= level))[0]
    return idx + (a[idx] - level) / (a[idx] - b[idx])


def stances(speed: np.ndarray) -> list[tuple[float, float, bool]]:
    """``(onset, rest_end, scored)`` per foot placement, in sub-sample indices."""
    onsets = crossings(speed, AT_REST_MPS, falling=True)
    rises = crossings(speed, AT_REST_MPS, falling=False)
    moving = crossings(speed, MOVING_MPS, falling=False)
    out: list[tuple[float, float, bool]] = []
    busy_until = -1.0
    for ic in onsets:
        if ic < busy_until or (out and ic - out[-1][0] < 0.35 * FS):
            continue  # inside a stance, or too soon after the last onset
        later = moving[moving > ic]
        stop = later[0] if len(later) else len(speed) - 1.0
        busy_until = stop
        ups = rises[(rises > ic) & (rises <= stop)]
        rest_end = ups[-1] if len(ups) else np.nan
        i0 = int(ic)
        i1 = int(rest_end) if np.isfinite(rest_end) else len(speed) - 1
        before = speed[max(0, i0 - int(0.8 * FS)) : i0]
        if i1 - i0 < int(0.03 * FS) or not len(before) or before.max() < 1.0:
            continue  # not a placement after a swing
        after = speed[i1 : i1 + int(0.6 * FS)]
        dur = (i1 - ic) / FS
        scored = bool(
            0.08 <= dur <= 0.45
            and len(after)
            and before.max() > 2.0
            and after.max() > 2.0
            and np.isfinite(rest_end)
        )
        out.append((float(ic), float(rest_end), scored))
    return out


def convert(mat: Path, out_dir: Path) -> tuple[str, int, int]:
    trial = mat.stem
    d = sio.loadmat(mat)
    imu, ts, gt = d["imu"], d["ts"].ravel().astype(float), d["gt"].astype(float)
    if not np.all(np.diff(ts) > 0):
        raise SystemExit(f"{mat}: time stamps do not increase")
    placements = stances(foot_speed(gt))
    at = np.arange(len(ts))
    name = f"pyshoe_vicon_run_{trial}"
    acc, gyr = imu[:, :3], np.rad2deg(imu[:, 3:])
    header = [
        "# format: companion-recording/1",
        f"# source: PyShoe VICON dataset trial {trial} (Wagstaff, Peretroukhin & Kelly 2019; "
        "IEEE DataPort doi:10.21227/v1z6-9z84)",
        "# activity: running (overground, a ~3x3 m Vicon volume: the runners circle)",
        f"# sensor.right_foot.rate_hz: {FS}",
        "# sensor.right_foot.segment: foot",
        "# sensor.right_foot.side: right",
        "# sensor.right_foot.mount: auto",
        "# sensor.right_foot.model: IMU on top of the right shoe (PyShoe)",
        "t_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z",
    ]
    with gzip.open(out_dir / f"{name}.csv.gz", "wt", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(header) + "\n")
        for i in range(len(ts)):
            a, g = acc[i], gyr[i]
            fh.write(
                f"{ts[i]:.6f},right_foot,{a[0]:.5f},{a[1]:.5f},{a[2]:.5f},"
                f"{g[0]:.4f},{g[1]:.4f},{g[2]:.4f}\n"
            )
    t_ic = [float(np.interp(ic, at, ts)) for ic, _, _ in placements]
    with open(out_dir / f"{name}.labels.csv", "w", encoding="utf-8") as fh:
        fh.write("sensor,stride,t_ic_s,label\n")
        for k, t in enumerate(t_ic):
            fh.write(f"right_foot,{k},{t:.4f},relaxed\n")
    truth = {
        "reference": "foot at rest: the IMU's Vicon speed falls below 0.5 m/s (lags the contact)",
        "strides": [
            {
                "stride": k,
                "t_ic_s": round(t, 4),
                "t_to_s": None,
                "fsa_deg": None,
                "label": "relaxed",
                "score": scored,
            }
            for k, (t, (_, _, scored)) in enumerate(zip(t_ic, placements, strict=True))
        ],
    }
    (out_dir / f"{name}.truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return name, len(placements), sum(1 for p in placements if p[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mat_dir", type=Path, help="folder with the trials' .mat files")
    ap.add_argument("out_dir", type=Path, help="where the recordings go")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for trial in RUN_TRIALS:
        mat = args.mat_dir / f"{trial}.mat"
        if not mat.exists():
            raise SystemExit(f"{mat} is missing: point mat_dir at data/vicon/processed")
        name, placed, scored = convert(mat, args.out_dir)
        print(f"{name}: {placed} placements, {scored} scored")


if __name__ == "__main__":
    main()
