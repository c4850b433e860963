"""The cost of storing one result file as stored results pile up, as JSON.

    python benchmarks/result_storage.py [--stored 50000] [--calls 300] [--repeats 5]

Times `ResultFiles.png` (what every API answer does once or more: a new folder, expired
folders removed, a small PNG written) in a fresh results folder and in one that already holds
--stored result folders (a busy hour of a public demo). Each repeat times --calls calls in
both folders, alternating; the report gives the medians in ms and their ratio (full / empty),
so a noisy machine slows both alike. Goal (issue #20): within 10 %.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diachestxr.web.session import ResultFiles  # noqa: E402


def time_calls(files: ResultFiles, image: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        files.jpeg(image)  # an overlay, as a request stores it
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = ResultFiles(Path(tmp) / "empty"), ResultFiles(Path(tmp) / "full")
        t0 = time.perf_counter()
        for _ in range(args.stored):  # what earlier answers left, through the same class
            full.path("heatmap.png").write_bytes(b"x")
        fill_s = time.perf_counter() - t0
        ms = {"empty": [], "full": []}
        for _ in range(args.repeats):
            ms["empty"].append(time_calls(empty, image, args.calls))
            ms["full"].append(time_calls(full, image, args.calls))
    medians = {k: statistics.median(v) for k, v in ms.items()}
    print(json.dumps({
        "machine": platform.processor() or platform.machine(), "stored": args.stored,
        "calls": args.calls, "repeats": args.repeats, "fill_s": round(fill_s, 1),
        "ms_per_result_file": {k: round(v, 3) for k, v in medians.items()},
        "ratio_full_over_empty": round(medians["full"] / medians["empty"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
