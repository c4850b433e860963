"""Wall time of `python -m diachestxr --help` and `--version` in fresh processes, as JSON.

    python benchmarks/cli_startup.py [--runs 5] [--repo PATH]

--repo runs another checkout's CLI (e.g. a `git worktree` of an older commit) with this
interpreter, for before/after figures on the same machine. Medians of --runs processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall_s(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "diachestxr", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args()
    report = {"benchmark": "cli_startup", "repo": str(args.repo), "runs": args.runs, "unit": "s"}
    for flag in ("--help", "--version"):
        try:
            times = [wall_s([flag], args.repo) for _ in range(args.runs)]
        except subprocess.CalledProcessError as e:  # an old CLI without --version
            report[flag] = f"failed (exit {e.returncode})"
            continue
        report[flag] = {"median_s": round(statistics.median(times), 3),
                        "min_s": round(min(times), 3), "max_s": round(max(times), 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
