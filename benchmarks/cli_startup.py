"""Wall time of the CLI in fresh processes, as JSON: `--help`, `--version`, and `predict` on
one sample image per task (the whole process: imports, weights, reading, the model).

    python benchmarks/cli_startup.py [--runs 5] [--repo PATH] [--against PATH]

--repo runs another checkout's CLI (e.g. a `git worktree` of an older commit) with this
interpreter; --against measures a second checkout in the same run, the two interleaved
process by process, and adds the ratios (repo / against), so a noisy machine slows both
alike. Medians of --runs processes. The Hub is skipped (HF_HUB_OFFLINE=1): the bundled
weights, as on a machine without network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {"screening": "4fed5061.jpg", "diagnosis": "00001968_000.jpg"}  # in examples/
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "DIACHESTXR_HUB_REPO": "none"}


def commands() -> dict[str, list[str]]:
    cases = {"--help": ["--help"], "--version": ["--version"]}
    for task, name in SAMPLES.items():
        cases[f"predict {task}, 1 image"] = ["predict", "--task", task, "-q",
                                             str(ROOT / "examples" / name)]
    return cases


def wall_s(args: list[str], cwd: Path) -> float | None:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "diachestxr", *args], cwd=cwd, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0 if done.returncode == 0 else None  # e.g. no --version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--against", type=Path, default=None)
    args = parser.parse_args()
    repos = {"repo": args.repo, **({"against": args.against} if args.against else {})}
    report = {"benchmark": "cli_startup", **{k: str(v) for k, v in repos.items()},
              "runs": args.runs, "unit": "s", "load_1min_before": round(os.getloadavg()[0], 2)}
    for case, argv in commands().items():
        times = {name: [] for name in repos}
        for _ in range(args.runs):
            for name, repo in repos.items():
                times[name].append(wall_s(argv, repo))
        row = {}
        for name, t in times.items():
            t = [x for x in t if x is not None]
            row[name] = {"median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3),
                         "max_s": round(max(t), 3)} if t else "failed"
        if args.against and all(isinstance(v, dict) for v in row.values()):
            row["ratio"] = round(row["repo"]["median_s"] / row["against"]["median_s"], 2)
        report[case] = row
    report["load_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
