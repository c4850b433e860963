"""How often a model's answer changes when a test film looks like another hospital's.

    python -m training.robustness --task screening [--weights DIR] [--data ../shared/data]

Every test radiograph of the task (screening: with the NIH adults; --adults-only keeps the
adults), as read and then with each of diachestxr.transforms.FILM_ARTIFACTS applied (a scan's
letterbox, a film inside a frame, hard exposure, burnt-in labels) and with all four: the share
whose called class changes (screening, at the checkpoint's operating point) or the mean
absolute change of the probabilities (both tasks). None of these changes the anatomy, so a
model that generalises across hospitals barely moves. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from diachestxr.inference import Predictor
from diachestxr.io import read_xray
from diachestxr.metrics import screening_predictions
from diachestxr.transforms import FILM_ARTIFACTS, film_artifacts

from .data import task_records


def robustness(task: str, weights_dir: Path | None, data: Path, adults_only: bool, seed: int = 0,
               limit: int = 0) -> dict:
    """The report above; `limit`: only the first N radiographs (smoke tests)."""
    records = task_records(data, task, "test")  # screening: with the NIH adults
    if adults_only:
        records = [r for r in records if r.group == "adult"]
    records = records[:limit] if limit else records
    grays = [read_xray(r.path) for r in records]
    rng = np.random.default_rng(seed)
    variants = {name: [artifact(rng, g) for g in grays] for name, (artifact, _) in FILM_ARTIFACTS.items()}
    variants["all_four"] = [film_artifacts(rng, g, every=True) for g in grays]
    with Predictor(tasks=[task], weights_dir=weights_dir, gate="off") as predictor:
        loaded = predictor.models[task]
        threshold = loaded.config.covid19_threshold

        def answer(images):
            probs = predictor.probabilities(images, task)
            called = None if task == "diagnosis" else screening_predictions(probs, loaded.spec.labels, threshold)
            return probs, called

        base_probs, base_called = answer(grays)
        report = {"task": task, "weights": str(loaded.source), "n": len(grays), "adults_only": adults_only,
                  "by_artifact": {}}
        for name, images in variants.items():
            probs, called = answer(images)
            entry = {"mean_abs_probability_change": round(float(np.abs(probs - base_probs).mean()), 4)}
            if called is not None:
                entry["called_class_changed"] = round(float((called != base_called).mean()), 4)
            report["by_artifact"][name] = entry
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("screening", "diagnosis"), default="screening")
    parser.add_argument("--weights", type=Path, help="a folder with <task>.safetensors (default: the usual order)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--adults-only", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(robustness(args.task, args.weights, args.data, args.adults_only), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
