"""Average the weights of runs fine-tuned from one checkpoint into one model (a "model soup":
one network's cost at inference, where an ensemble of outputs costs N forward passes).

    python -m training.soup runs/dx18-ignore runs/dx18-posw --out runs/dx18-soup

Writes <task>.safetensors + <task>.json into --out; the config is the first run's, with the
runs averaged recorded under "training.soup_of" (and their validation scores under
"training.soup_validation"). Its operating points are the first run's
until `python -m training.bundle` re-fits them on validation (it always does). Only
meaningful for runs that share their starting weights (otherwise the average is noise).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from diachestxr.weights import load_checkpoint, save_checkpoint

from .push_to_hub import find_checkpoints


def weight_average(models: list[torch.nn.Module]) -> torch.nn.Module:
    """A new model whose floating-point tensors are the mean of `models`' (same architecture;
    integer buffers such as BatchNorm's step count are the first model's)."""
    soup = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    soup.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype)
                          if v.is_floating_point() else v for k, v in states[0].items()})
    return soup


def soup(runs: list[Path], out: Path) -> Path:
    checkpoints = [find_checkpoints(run) for run in runs]
    tasks = {task for found in checkpoints for task in found}
    if len(tasks) != 1 or any(len(found) != 1 for found in checkpoints):
        raise SystemExit(f"each run must hold one checkpoint of the same task; found {tasks}")
    task = tasks.pop()
    loaded = [load_checkpoint(found[task][0], task) for found in checkpoints]
    # the first run's record, less its validation scores: the average has not been scored
    # (training.bundle re-scores it); each run's are kept under "soup_validation"
    config = loaded[0].config.replace(validation=None, training={
        **loaded[0].config.training, "soup_of": [str(r) for r in runs],
        "soup_validation": [m.config.validation for m in loaded]})
    return save_checkpoint(weight_average([m.model for m in loaded]), config, out,
                           loaded[0].model.spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps({"written": str(soup(args.runs, args.out))}))


if __name__ == "__main__":
    main()
