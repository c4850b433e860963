"""Fit a checkpoint's temperature on the validation split and move its thresholds with it.

    python -m training.calibrate --task screening --weights diachestxr/weights --out runs/cal \
        [--data ../shared/data] [--plot docs/calibration-screening.png]

Reads <task>.safetensors + <task>.json from --weights; writes to --out (which may be the same
folder) the checkpoint with its updated config, its model card <task>.md, the test metrics
<task>_test_metrics.json (+ plots/) and the reliability diagram (--plot, default
--out/calibration-<task>.png). What changes in the config:

- `temperature`: the T (logits / T before the softmax or sigmoid) that minimises the
  validation NLL (diachestxr.calibration.fit_temperature), fitted on the raw logits, so
  calibrating a calibrated checkpoint fits afresh;
- thresholds, which live in probability space: diagnosis's per-label thresholds are mapped
  (logit(t') = logit(t) * T_old / T_new: every call stays as it was), screening's COVID-19
  operating point is re-chosen on the validation adults by training.bundle's rule;
- `calibration`: T, the expected calibration error (15 equal-width bins) and NLL before
  (T = 1) and after, on validation and test, with the bins (the card's table);
- diagnosis: `prevalence`, each label's positives / known cells on the training split (so the
  app can read a probability as "3x this label's usual rate");
- `test_metrics`: re-measured with `diachestxr evaluate` (as training.bundle does).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from diachestxr.calibration import (ECE_BINS, fit_temperature, map_threshold, nll, outcomes,
                                    prevalence, reliability)
from diachestxr.calibration import probabilities as calibrated_probabilities
from diachestxr.card import model_card
from diachestxr.config import CheckpointConfig
from diachestxr.evaluate import evaluate_csv, read_labelled_csv
from diachestxr.inference import Predictor
from diachestxr.metrics import operating_points
from diachestxr.registry import get_spec

from .bundle import covid19_threshold, validation_adults
from .data import evaluate_adults

log = logging.getLogger("training.calibrate")


def _probs(logits: np.ndarray, multilabel: bool, temperature: float) -> np.ndarray:
    """What the inference path returns for these logits (float32 math, as it does)."""
    import torch

    return calibrated_probabilities(torch.as_tensor(logits, dtype=torch.float32), multilabel,
                                    temperature).numpy().astype(float)


def calibration_report(logits: np.ndarray, targets: np.ndarray, multilabel: bool,
                       temperature: float) -> dict:
    """ECE, NLL and reliability bins at T = 1 ("before") and at `temperature` ("after")."""
    out = {"n_images": int(len(logits))}
    for name, t in (("before", 1.0), ("after", temperature)):
        bins = reliability(*outcomes(_probs(logits, multilabel, t), targets, multilabel), ECE_BINS)
        out[name] = {"temperature": t, "ece": bins["ece"], "nll": nll(logits, targets, multilabel, t),
                     "n": bins["n"], "bins": bins["bins"]}
    return out


def map_diagnosis_thresholds(thresholds: dict[str, float], logits: np.ndarray, labels,
                             old_t: float, new_t: float) -> tuple[dict[str, float], float]:
    """The thresholds mapped to the new temperature (see map_threshold), then nudged where
    float32 rounding of the probabilities would flip a validation call (an operating point
    chosen by specificity_threshold sits one float above a validation probability): every
    validation call stays as it was. Returns (thresholds, largest nudge)."""
    before = _probs(logits, True, old_t)
    after = _probs(logits, True, new_t)
    mapped, nudge = {}, 0.0
    for i, label in enumerate(labels):
        t_old = float(thresholds[label])
        t = map_threshold(t_old, old_t, new_t)
        called = before[:, i] >= t_old
        below = after[~called, i]
        if len(below) and below.max() >= t:  # a radiograph not called before would be now
            t = float(np.nextafter(below.max(), np.inf))
        above = after[called, i]
        if len(above) and above.min() < t:  # one called before would not be now
            t = float(above.min())
        nudge = max(nudge, abs(t - map_threshold(t_old, old_t, new_t)))
        mapped[label] = t
    return mapped, nudge


def training_prevalence(csv: Path, labels) -> dict[str, float | None]:
    _, targets = read_labelled_csv(csv, "diagnosis", "train")
    return prevalence(targets, labels)


def calibrate(task: str, weights: Path, out: Path, data: Path, plot: Path | None = None,
              test: bool = True) -> CheckpointConfig:
    """Fit and store the temperature (see the module docstring); returns the new config."""
    spec = get_spec(task)
    weights, out = Path(weights), Path(out)
    csv = data / task / "labels.csv"
    with Predictor(tasks=[task], weights_dir=weights, gate="off") as predictor:
        model = predictor.models[task].model
        config = copy.deepcopy(model.config)  # a copy: the loaded model keeps its own
        old_t = config.temperature
        multilabel = spec.multilabel
        paths, targets = read_labelled_csv(csv, task, "val")
        logits = predictor.logits(paths, task, progress=True)
        new_t = fit_temperature(logits, targets, multilabel)
        log.info("%s: temperature %.4f (was %.4f), fitted on %d validation images", task, new_t,
                 old_t, len(paths))
        report = {"method": "temperature scaling: probabilities of logits / temperature, "
                            "the temperature minimising the validation NLL "
                            + ("(cross-entropy over the classes)" if not multilabel else
                               "(binary cross-entropy over the known label cells)"),
                  "temperature": new_t, "previous_temperature": old_t, "bins": ECE_BINS,
                  "measured_on": ("top-label confidence, the arg-max class's probability, "
                                  "against whether that class is the true one") if not multilabel else
                                 "every known label cell: its probability against its label",
                  "val": calibration_report(logits, targets, multilabel, new_t)}
        changes, before = {}, {}  # before: the replaced values (a side file, not the config)
        if multilabel:
            thresholds, nudge = map_diagnosis_thresholds(config.thresholds,
                                                         logits, spec.labels, old_t, new_t)
            # the rule's own choice on the calibrated validation probabilities, for the record
            rechosen = operating_points(targets, _probs(logits, True, new_t), spec.labels)
            changes["thresholds"] = {
                "rule": "mapped: logit(t') = logit(t) * previous_temperature / temperature "
                        "(the same logits are called)",
                "largest_float_nudge": nudge,
                "largest_difference_to_rechosen": max(abs(thresholds[l] - rechosen[l])
                                                      for l in spec.labels),
                # the stored thresholds against the rule at the previous temperature: 0 when
                # they were chosen on this validation split
                "largest_difference_before_to_rule": max(
                    abs(float(config.thresholds.get(l, 0.5)) - v) for l, v in
                    operating_points(targets, _probs(logits, True, old_t), spec.labels).items())}
            before["thresholds"] = config.thresholds
            config.thresholds = thresholds
            config.prevalence = training_prevalence(csv, spec.labels)
        elif config.covid19_threshold is not None:
            records = validation_adults(data)
            model.config.temperature = old_t  # as loaded: reproduces the stored point
            reproduced = covid19_threshold(predictor, records)
            model.config.temperature = new_t
            rechosen = covid19_threshold(predictor, records)
            changes["covid19_threshold"] = {"before": config.covid19_threshold,
                                            "reproduced_before": reproduced, "after": rechosen,
                                            "rule": "re-chosen on the validation adults by "
                                                    "training.bundle.covid19_threshold"}
            config.covid19_threshold = rechosen
        if test:
            test_paths, test_targets = read_labelled_csv(csv, task, "test")
            report["test"] = calibration_report(predictor.logits(test_paths, task, progress=True),
                                                test_targets, multilabel, new_t)
    config.temperature = new_t
    report["threshold_changes"] = changes
    config.calibration = report

    out.mkdir(parents=True, exist_ok=True)
    for f in (spec.filename,):
        if (weights / f).resolve() != (out / f).resolve():
            shutil.copy(weights / f, out / f)
    config_file = out / spec.config_filename
    config.write(config_file)
    if test:  # thresholds moved: re-measure the test split as training.bundle does
        old_metrics = config.test_metrics
        config.test_metrics = evaluate_csv(task, csv, split="test", weights_dir=out,
                                              out=out / f"{task}_test_metrics.json",
                                              plots_dir=out / "plots", **evaluate_adults(task, data))
        before["test_metrics_changed"] = changed_numbers(old_metrics or {}, config.test_metrics)
        config.write(config_file)
    # what calibration replaced, for the record of this run (not part of the checkpoint)
    (out / f"{task}_calibration_changes.json").write_text(json.dumps(before, indent=2) + "\n")
    (out / f"{task}.md").write_text(model_card(config) + "\n")
    plot_reliability(report, plot or out / f"calibration-{task}.png", task)
    return config


def changed_numbers(old, new, prefix: str = "") -> dict[str, list]:
    """{dotted key: [old, new]} for every number that differs (more than rounding) between
    two metrics dicts."""
    out = {}
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            out.update(changed_numbers(old.get(key), new.get(key), f"{prefix}{key}."))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            out.update(changed_numbers(a, b, f"{prefix}{i}."))
    elif old != new and not (isinstance(old, (int, float)) and isinstance(new, (int, float))
                             and abs(old - new) < 1e-6):
        out[prefix.rstrip(".")] = [old, new]
    return out


def plot_reliability(report: dict, path: Path, task: str) -> Path:
    """Reliability diagram: per split (validation, test), the mean outcome against the mean
    confidence of each bin, before (T = 1) and after temperature scaling."""
    from matplotlib.figure import Figure

    splits = [s for s in ("val", "test") if s in report]
    fig = Figure(figsize=(5.2 * len(splits), 5.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(splits)))
    what = "top-label confidence" if task == "screening" else "label probability (known cells)"
    for ax, split in zip(axes, splits):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        for name, colour in (("before", "tab:red"), ("after", "tab:blue")):
            r = report[split][name]
            bins = [b for b in r["bins"] if b["n"]]
            x = [b["confidence"] for b in bins]
            y = [b["accuracy"] for b in bins]
            sizes = [20 + 180 * b["n"] / r["n"] for b in bins]
            ax.plot(x, y, color=colour, lw=1.5, marker=None)
            ax.scatter(x, y, s=sizes, color=colour, alpha=0.7,
                       label=f"{name}: T = {r['temperature']:.2f}, ECE {r['ece']:.3f}")
        n = report[split]["n_images"]
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel=f"mean {what}",
               ylabel="observed frequency (true class / label present)",
               title=f"{task}, {'validation' if split == 'val' else 'test'} split (n = {n} images)")
        unit = "images" if task == "screening" else "label cells"
        ax.legend(loc="upper left", fontsize=8, title=f"{ECE_BINS} equal-width bins; "
                                                       f"dot area ~ share of {unit}",
                  title_fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=["screening", "diagnosis"])
    parser.add_argument("--weights", required=True, type=Path,
                        help="folder holding <task>.safetensors + <task>.json")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the calibrated checkpoint, card and plots (may be --weights)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--plot", type=Path, default=None,
                        help="reliability diagram PNG (default: --out/calibration-<task>.png)")
    parser.add_argument("--no-test", action="store_true",
                        help="skip the test split (its ECE and the re-measured test metrics)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = calibrate(args.task, args.weights, args.out, args.data, args.plot, not args.no_test)
    cal = config.calibration
    summary = {"task": args.task, "temperature": cal["temperature"],
               **{f"{split}_ece": [cal[split]["before"]["ece"], cal[split]["after"]["ece"]]
                  for split in ("val", "test") if split in cal},
               **{f"{split}_nll": [cal[split]["before"]["nll"], cal[split]["after"]["nll"]]
                  for split in ("val", "test") if split in cal},
               "threshold_changes": cal["threshold_changes"]}
    print(json.dumps(summary, indent=2))
    print(f"replaced values and changed test metrics: {args.out / (args.task + '_calibration_changes.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
