"""Score runs and their ensemble on the validation split, by the score training selects with:
each run alone, then all of them together (the mean of their probabilities). An ensemble that
wins is worth distilling into one model: `training.train --teacher RUN,RUN,...`.

    python -m training.ensemble --task diagnosis diachestxr/weights runs/a runs/b
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .bundle import ensemble_score, validation_outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders holding <task>.safetensors")
    parser.add_argument("--task", default="diagnosis")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    outputs = []
    for run in args.runs:
        outputs.append(validation_outputs(args.task, run, args.data))
        print(f"{ensemble_score(args.task, outputs[-1:]):.4f}  {run}", flush=True)
    if len(outputs) > 1:
        print(f"{ensemble_score(args.task, outputs):.4f}  ensemble of all {len(outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
