"""Recordings as a cheaper sensor and a lossy link would give them.

Each recording of a folder (with its ground truth) is written again: its samples averaged
in groups of ``--factor`` (a sensor's output filter at a lower rate: 200 Hz averaged in
fours gives 50 Hz), then whole packets of ``--packet`` samples dropped with probability
``--loss`` (lost BLE notifications), seeded so every run is the same. What the issue asks
of the estimator on real running ("decimated to 50 Hz and with lost packets") is then

    python benchmarks/realdata/degrade.py REAL_DIR OUT_DIR --factor 4 --packet 8 --loss 0.04
    companion score OUT_DIR
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from companion.source.recording import (
    Recording,
    labels_path,
    read_recording,
    truth_path,
    write_recording,
)
from companion.types import SampleBatch


def degrade(rec: Recording, factor: int, packet: int, loss: float, seed: int) -> Recording:
    rng = np.random.default_rng(seed)
    data: dict[str, SampleBatch] = {}
    sensors = {}
    for name, b in rec.data.items():
        n = len(b.t_s) // factor * factor

        def mean(x: np.ndarray, n: int = n) -> np.ndarray:
            return x[:n].reshape(n // factor, factor, *x.shape[1:]).mean(axis=1)

        t, acc, gyr = mean(b.t_s), mean(b.acc), mean(b.gyr)
        keep = np.ones(len(t), dtype=bool)
        for p0 in range(0, len(t), packet):
            if rng.random() < loss:
                keep[p0 : p0 + packet] = False
        data[name] = SampleBatch(name, t[keep], acc[keep], gyr[keep])
        sensors[name] = replace(rec.sensors[name], rate_hz=rec.sensors[name].rate_hz / factor)
    return Recording(sensors, dict(rec.metadata), data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--factor", type=int, default=4, help="samples averaged into one")
    ap.add_argument("--packet", type=int, default=8, help="samples per packet (after averaging)")
    ap.add_argument("--loss", type=float, default=0.0, help="share of packets lost (0..1)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(args.src.glob("*.csv*"))):
        if f.name.endswith(".labels.csv"):
            continue
        rec = degrade(read_recording(f), args.factor, args.packet, args.loss, args.seed + i)
        out = args.out / f.name.replace(".csv.gz", ".csv")
        write_recording(out, rec)
        shutil.copy(labels_path(f), labels_path(out))
        if truth_path(f).exists():
            shutil.copy(truth_path(f), truth_path(out))
        print(out)


if __name__ == "__main__":
    main()
