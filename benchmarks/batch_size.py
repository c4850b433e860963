"""Throughput of `Predictor.predict` per batch size, the measurement behind the default
(`diachestxr.registry.BATCH_SIZE`), as JSON.

    python benchmarks/batch_size.py [--task diagnosis] [--images 32] [--rounds 5]

The first --images radiographs of the task's test split (../shared/data), decoded once; each
round runs every batch size once, in an interleaved order (so a noisy minute hurts every size
alike), without maps and with every label's map. Prints images per second (median over the
rounds) and each size's ratio to batch 32, the default before it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diachestxr import Predictor, read_xray  # noqa: E402
from diachestxr.evaluate import read_csv_rows  # noqa: E402
from diachestxr.registry import BATCH_SIZE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 4, 8, 16, 32)


def test_images(task: str, n: int) -> list:
    csv_path = ROOT.parent / "shared" / "data" / task / "labels.csv"
    return [read_xray(csv_path.parent / r["path"]) for r in read_csv_rows(csv_path, "test")[:n]]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="diagnosis", choices=("screening", "diagnosis"))
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    images = test_images(args.task, args.images)
    cases = [(size, explain) for size in SIZES for explain in ("none", "all")]
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    with Predictor(tasks=[args.task], gate="off") as predictor:
        predictor.predict(images[:2], args.task, explain="all")  # warm-up
        for r in range(args.rounds):
            for size, explain in cases[r % len(cases):] + cases[:r % len(cases)]:
                t0 = time.perf_counter()
                predictor.predict(images, args.task, explain=explain, batch_size=size)
                times[(size, explain)].append(time.perf_counter() - t0)
    img_s = {f"{explain} maps, batch {size}": round(len(images) / statistics.median(t), 1)
             for (size, explain), t in times.items()}
    report = {"task": args.task, "images": len(images), "rounds": args.rounds,
              "default_batch_size": BATCH_SIZE, "torch_threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "load_1min": os.getloadavg()[0],
              "img_per_s": img_s,
              "vs_batch_32": {k: round(v / img_s[k.rsplit(",", 1)[0] + ", batch 32"], 2)
                              for k, v in img_s.items()}}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
