"""Validation mean AUROC of diagnosis variants, as JSON: test-time augmentation (TTA),
averaging several checkpoints' outputs (an ensemble: N x the latency) or their weights (a
"soup": one model's latency, for runs fine-tuned from one checkpoint), and each checkpoint on
low-resolution copies of the images (as a downsized or re-saved upload arrives). Chooses
nothing by itself; it measures whether a variant earns its cost (the shipped model is one
checkpoint, one view, unless this says otherwise).

    python benchmarks/diagnosis_variants.py RUN_DIR [RUN_DIR ...] [--split val]

Views for TTA: the whole image, and centre crops of 92 % and 85 % (zoom), each resized as
the model expects; scores are averaged in probability space. Low-resolution copies: the
image shrunk to 128, 96 and 64 px on its long side (INTER_AREA), then predicted as usual.
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
from diachestxr.io import read_xray, shrink  # noqa: E402
from diachestxr.metrics import mean_auroc  # noqa: E402
from diachestxr.weights import load_checkpoint  # noqa: E402
from training.soup import weight_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROPS = (1.0, 0.92, 0.85)
LOW_RES = (128, 96, 64)


def centre_crop(gray: np.ndarray, share: float) -> np.ndarray:
    h, w = gray.shape
    dh, dw = int(h * (1 - share) / 2), int(w * (1 - share) / 2)
    return gray[dh:h - dh, dw:w - dw]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders with diagnosis.safetensors, or such files")
    parser.add_argument("--csv", type=Path, default=ROOT.parent / "shared/data/diagnosis/labels.csv")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    paths, targets = read_labelled_csv(args.csv, "diagnosis", args.split)
    grays = [read_xray(p) for p in paths]

    def score(p: np.ndarray) -> float:
        return round(mean_auroc(targets, p), 4)

    probs = {}  # (run, view) -> (N, 14)
    models = []
    for run in args.runs:
        weights = run if run.suffix == ".safetensors" else run / "diagnosis.safetensors"
        models.append(load_checkpoint(weights, "diagnosis").model)
        predictor = Predictor.from_models(models[-1])
        for crop in CROPS:
            probs[str(run), crop] = predictor.probabilities([centre_crop(g, crop) for g in grays],
                                                           "diagnosis")
        for side in LOW_RES:
            probs[str(run), f"{side}px"] = predictor.probabilities(
                [shrink(g, side) for g in grays], "diagnosis")
    report = {"split": args.split, "n": len(paths), "metric": "mean AUROC", "single": {},
              "tta": {}, "low_resolution": {}}
    for run in args.runs:
        report["single"][str(run)] = score(probs[str(run), 1.0])
        report["tta"][str(run)] = {
            f"{len(CROPS[:k])} views": score(np.mean([probs[str(run), c] for c in CROPS[:k]], 0))
            for k in range(2, len(CROPS) + 1)}
        report["low_resolution"][str(run)] = {f"{side} px": score(probs[str(run), f"{side}px"])
                                              for side in LOW_RES}
    if len(args.runs) > 1:
        report["average_of_outputs"] = score(np.mean([probs[str(run), 1.0] for run in args.runs], 0))
        soup = Predictor.from_models(weight_average(models))
        report["average_of_weights"] = score(soup.probabilities(grays, "diagnosis"))
        report["average_of_weights_low_resolution"] = {
            f"{side} px": score(soup.probabilities([shrink(g, side) for g in grays],
                                                   "diagnosis")) for side in LOW_RES}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
