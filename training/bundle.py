"""Bundle a trained run into diachestxr/weights/ (what a fresh install and the app use).

    python -m training.bundle runs/screening --data ../shared/data [--note "..."] [--force]

Replaces the bundled checkpoint only when the run scores higher than it on the current
validation split (both are re-scored there, so a change of split cannot favour either; the
test split never chooses a model). For diagnosis it sets the per-label operating points on
the validation split (diachestxr.metrics.operating_points). Evaluates the run on the test split with
`diachestxr evaluate`, adds those metrics, the training data and limitations to the config,
and writes the model card <task>.md beside the weights. For screening it also measures the
age/hospital shortcut on adult radiographs from another hospital: the NIH test images,
all taken before COVID-19 existed, so every COVID-19 call on them is a false positive.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from diachestxr.card import DATA, model_card
from diachestxr.evaluate import evaluate_csv, read_labelled_csv
from diachestxr.inference import Predictor
from diachestxr.labels import SCREENING_CLASSES
from diachestxr.metrics import operating_points
from diachestxr.weights import BUNDLED_DIR, load_checkpoint

from .data import read_labels_csv
from .push_to_hub import find_checkpoints
from .train import OPERATING_POINT

SCORE = {"screening": "macro_auroc", "diagnosis": "mean_auroc"}  # reported on the test split


def adult_check(weights_file: Path, data: Path) -> dict:
    """How the screening model treats adult non-COVID radiographs it never trained on."""
    predictor = Predictor.from_models(load_checkpoint(weights_file, "screening").model)
    paths, targets = read_labelled_csv(data / "diagnosis" / "labels.csv", "diagnosis", "test")
    pred = predictor.probabilities(paths, "screening").argmax(1)
    no_finding = targets.sum(1) == 0
    covid, normal = SCREENING_CLASSES.index("COVID-19"), SCREENING_CLASSES.index("Normal")
    return {
        "data": "NIH ChestX-ray14 test split of ../shared/data/diagnosis: adults, NIH Clinical "
                "Center, 1992-2015 (before COVID-19: any COVID-19 call is a false positive)",
        "n": int(len(paths)),
        "called_covid19": int((pred == covid).sum()),
        "called_covid19_rate": round(float((pred == covid).mean()), 4),
        "no_finding_n": int(no_finding.sum()),
        "no_finding_called_normal": int((pred[no_finding] == normal).sum()),
        "no_finding_called_covid19": int((pred[no_finding] == covid).sum()),
    }


def recall_by_source(weights_file: Path, data: Path) -> dict:
    """Test-split recall per source and class: a hospital whose COVID-19 images are all
    recognised while another's are missed points at a hospital shortcut."""
    records = read_labels_csv(data / "screening" / "labels.csv", "screening", "test")
    predictor = Predictor.from_models(load_checkpoint(weights_file, "screening").model)
    pred = predictor.probabilities([r.path for r in records], "screening").argmax(1)
    out = {}
    for record, p in zip(records, pred):
        target = int(record.target)
        row = out.setdefault(f"{record.meta.get('source', '')} / {SCREENING_CLASSES[target]}",
                             {"n": 0, "correct": 0})
        row["n"] += 1
        row["correct"] += int(p == target)
    return dict(sorted(out.items()))


def set_operating_points(weights: Path, config_file: Path, config: dict, data: Path) -> dict:
    """Diagnosis thresholds chosen on the validation split, written into the run's config."""
    model = load_checkpoint(weights, "diagnosis").model
    paths, targets = read_labelled_csv(data / "diagnosis" / "labels.csv", "diagnosis", "val")
    probs = Predictor.from_models(model).probabilities(paths, "diagnosis")
    config["thresholds"] = operating_points(targets, probs, model.spec.labels)
    config["operating_point"] = OPERATING_POINT
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    return config


def validation_score(task: str, weights_dir: Path, data: Path) -> float:
    return evaluate_csv(task, data / task / "labels.csv", split="val", weights_dir=weights_dir,
                        out=None)[SCORE[task]]


def bundle(run_dir: Path, data: Path, notes: list[str], force: bool = False) -> list[Path]:
    written = []
    for task, (weights, config_file, config) in find_checkpoints(run_dir).items():
        score = SCORE[task]
        current = BUNDLED_DIR / weights.name
        if task == "diagnosis":
            config = set_operating_points(weights, config_file, config, data)
        if current.is_file() and not force:
            old, new = validation_score(task, BUNDLED_DIR, data), validation_score(task, run_dir, data)
            if new <= old:
                print(f"{task}: validation {score} {new:.4f} is not above the bundled model's "
                      f"{old:.4f}; kept the bundled checkpoint (use --force to replace it)")
                continue
            notes = [f"Chosen over the previously bundled checkpoint on the validation split: "
                     f"{score} {new:.3f} against {old:.3f}."] + notes
        config["test_metrics"] = evaluate_csv(task, data / task / "labels.csv", split="test",
                                              weights_dir=run_dir, out=run_dir / f"{task}_test_metrics.json",
                                              plots_dir=run_dir / "plots")
        config["training_data"] = DATA[task]
        if task == "screening":
            config["adult_check"] = check = adult_check(weights, data)
            notes = [f"Shortcut check: of {check['n']} adult NIH test radiographs (another "
                     f"hospital, taken before COVID-19) the model calls {check['called_covid19']} "
                     f"COVID-19 ({check['called_covid19_rate']:.0%}); of the {check['no_finding_n']} "
                     f"with no finding it calls {check['no_finding_called_normal']} Normal and "
                     f"{check['no_finding_called_covid19']} COVID-19."] + notes
            config["test_recall_by_source"] = by_source = recall_by_source(weights, data)
            notes.append("Test-split recall by source / class (correct of n): " + "; ".join(
                f"{k} {v['correct']}/{v['n']}" for k, v in by_source.items()) + ".")
        config["limitations"] = notes
        BUNDLED_DIR.mkdir(exist_ok=True)
        shutil.copy(weights, BUNDLED_DIR / weights.name)
        (BUNDLED_DIR / weights.with_suffix(".json").name).write_text(json.dumps(config, indent=2) + "\n")
        (BUNDLED_DIR / f"{task}.md").write_text(model_card(config) + "\n")
        written += [BUNDLED_DIR / weights.name, BUNDLED_DIR / f"{task}.md"]
        print(f"{task}: bundled {weights} (test {score} {config['test_metrics'][score]})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--note", action="append", default=[],
                        help="a limitation or observation for the model card (repeatable)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    bundle(args.run_dir, args.data, args.note, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
