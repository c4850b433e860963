"""Validation mean AUROC of diagnosis variants that cost more at inference, as JSON: test-time
augmentation (TTA) and averaging several checkpoints. Chooses nothing by itself; it measures
whether a variant earns its latency (the shipped model is one checkpoint, one view, unless
this says otherwise).

    python benchmarks/diagnosis_variants.py RUN_DIR [RUN_DIR ...] [--split val]

Views for TTA: the whole image, and centre crops of 92 % and 85 % (zoom), each resized as
the model expects; scores are averaged in probability space.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diachestxr.evaluate import read_labelled_csv  # noqa: E402
from diachestxr.inference import Predictor  # noqa: E402
from diachestxr.io import read_xray  # noqa: E402
from diachestxr.metrics import mean_auroc  # noqa: E402
from diachestxr.weights import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROPS = (1.0, 0.92, 0.85)


def centre_crop(gray: np.ndarray, share: float) -> np.ndarray:
    h, w = gray.shape
    dh, dw = int(h * (1 - share) / 2), int(w * (1 - share) / 2)
    return gray[dh:h - dh, dw:w - dw]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with diagnosis.safetensors")
    parser.add_argument("--csv", type=Path, default=ROOT.parent / "shared/data/diagnosis/labels.csv")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    paths, targets = read_labelled_csv(args.csv, "diagnosis", args.split)
    grays = [read_xray(p) for p in paths]
    probs = {}  # (run, crop) -> (N, 14)
    for run in args.runs:
        predictor = Predictor.from_models(load_checkpoint(run / "diagnosis.safetensors", "diagnosis").model)
        for crop in CROPS:
            probs[run.name, crop] = predictor.probabilities([centre_crop(g, crop) for g in grays],
                                                           "diagnosis")
    report = {"split": args.split, "n": len(paths), "metric": "mean AUROC", "single": {},
              "tta": {}}
    for run in args.runs:
        report["single"][run.name] = round(mean_auroc(targets, probs[run.name, 1.0]), 4)
        report["tta"][run.name] = {
            f"{len(CROPS[:k])} views": round(mean_auroc(targets, np.mean(
                [probs[run.name, c] for c in CROPS[:k]], 0)), 4) for k in range(2, len(CROPS) + 1)}
    if len(args.runs) > 1:
        report["average_of_runs"] = round(mean_auroc(targets, np.mean(
            [probs[run.name, 1.0] for run in args.runs], 0)), 4)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
