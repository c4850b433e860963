"""Bundle a trained run into diachestxr/weights/ (what a fresh install and the app use).

    python -m training.bundle runs/screening --data ../shared/data [--note "..."] [--force]

Replaces the bundled checkpoint only when the run scores higher than it on the current
validation split, by the score training selects with (training.train.selection_score; both
are re-scored there, so a change of split cannot favour either; the test split never chooses
a model; for diagnosis the score is the broad-sample rows'). For diagnosis it sets
the per-label operating points on the validation split (diachestxr.metrics.operating_points),
for screening the COVID-19 operating point on the validation adults.
Evaluates the run on the test split with `diachestxr evaluate`, adds those metrics, the training data and limitations to the config,
and writes the model card <task>.md beside the weights. For screening it also measures the
age/hospital shortcut on adults (`evaluate --extra-adults`): the NIH test images, from
another hospital and taken before COVID-19 existed, join the screening data's adults.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from diachestxr.card import DATA, model_card
from diachestxr.config import CheckpointConfig
from diachestxr.evaluate import evaluate_csv, low_resolution_probabilities, read_labelled_csv
from diachestxr.inference import Predictor
from diachestxr.metrics import operating_points, specificity_threshold
from diachestxr.weights import load_checkpoint

from .data import Record, evaluate_adults, from_sources, task_records
from .push_to_hub import find_checkpoints
from .train import OPERATING_POINT, selection_score, validation_score

SCORE = {"screening": "macro_auroc", "diagnosis": "mean_auroc"}  # reported on the test split
ADULT_SPECIFICITY = 0.95  # screening: adult non-COVID radiographs not called COVID-19


def set_operating_points(task: str, weights: Path, config_file: Path, config: CheckpointConfig,
                         data: Path) -> CheckpointConfig:
    """Operating points chosen on the validation split, written into the run's config.
    Diagnosis: per label, 95 % specificity. Screening: COVID-19 is called from the lowest
    probability at which at most 5 % of adult non-COVID radiographs (the screening data's
    adults and the NIH ones) are called COVID-19 -- the arg-max would let the age shortcut
    and the class balance of training set that trade-off."""
    model = load_checkpoint(weights, task).model
    predictor = Predictor.from_models(model)
    if task == "diagnosis":
        paths, targets = read_labelled_csv(data / "diagnosis" / "labels.csv", "diagnosis", "val")
        config.thresholds = operating_points(targets, predictor.probabilities(paths, task),
                                             model.spec.labels)
        config.operating_point = OPERATING_POINT
    else:
        records = validation_adults(data)
        config.covid19_threshold = covid19_threshold(predictor, records)
        config.operating_point = {
            "rule": "COVID-19 when its probability reaches covid19_threshold, else the more "
                    "probable of the other classes; the threshold keeps this share of adult "
                    "non-COVID validation radiographs from being called COVID-19",
            "adult_specificity": ADULT_SPECIFICITY, "split": "val",
            "adult_validation_images": len(records)}
    config.write(config_file)
    return config


def validation_adults(data: Path, left_out: frozenset[str] = frozenset()) -> list[Record]:
    """The adult validation radiographs the COVID-19 operating point is fitted on: the
    screening data's adults and the NIH ones, less the sources in `left_out`."""
    return [r for r in task_records(data, "screening", "val")
            if r.group == "adult" and not from_sources(r, left_out)]


def covid19_threshold(predictor: Predictor, records: list[Record]) -> float:
    """The lowest COVID-19 probability at which at most 1 - ADULT_SPECIFICITY of the adult
    non-COVID radiographs among `records` are called COVID-19."""
    covid = predictor.models["screening"].spec.labels.index("COVID-19")
    p_covid = predictor.probabilities([r.path for r in records], "screening")[:, covid]
    is_covid = np.array([int(r.target) == covid for r in records])
    return specificity_threshold(is_covid, p_covid, ADULT_SPECIFICITY)


def rescore_on_validation(task: str, weights_dir: Path, data: Path) -> float:
    """The score training selects epochs by (training.train.selection_score), re-measured on
    the current validation split from the original files."""
    return ensemble_score(task, [validation_outputs(task, weights_dir, data)])


def validation_outputs(task: str, weights_dir: Path, data: Path) -> dict:
    """A checkpoint's probabilities on the validation split (and, multi-label, on copies
    shrunk to LOW_RESOLUTION_SIDE px), with the records and the model's spec."""
    records = task_records(data, task, "val")  # screening: with the NIH adults
    paths = [r.path for r in records]
    with Predictor(tasks=[task], weights_dir=weights_dir, gate="off") as predictor:
        spec = predictor.models[task].spec
        low = low_resolution_probabilities(predictor, paths, task) if spec.multilabel else None
        return {"spec": spec, "records": records, "probs": predictor.probabilities(paths, task),
                "low": low}


def ensemble_score(task: str, outputs: Sequence[dict]) -> float:
    """The selection score of the mean of several validation_outputs (one: its own score)."""
    first = outputs[0]
    low = None if first["low"] is None else np.mean([o["low"] for o in outputs], 0)
    scores = validation_score(first["spec"], np.mean([o["probs"] for o in outputs], 0),
                              first["records"], low)
    return selection_score(scores, SCORE[task], train_loss=0.0)


def bundle(run_dir: Path, data: Path, notes: list[str], force: bool = False,
           holdout_reports: list[Path] = (), *, out: Path) -> list[Path]:
    """Evaluate a run's checkpoints and write each (weights, config, card) into `out`,
    unless the checkpoint already there scores as well on validation (`force`: replace it
    anyway). The files written."""
    written = []
    for task, (weights, config_file, config) in find_checkpoints(run_dir).items():
        score = SCORE[task]
        current = out / weights.name
        config = set_operating_points(task, weights, config_file, config, data)
        if current.is_file() and not force:
            old = rescore_on_validation(task, out, data)
            new = rescore_on_validation(task, run_dir, data)
            if new <= old:
                print(f"{task}: validation score {new:.4f} is not above {current}'s "
                      f"{old:.4f}; kept that checkpoint (use --force to replace it)")
                continue
            notes = [f"Chosen over the previously bundled checkpoint on the validation split "
                     f"(the training selection score): {new:.3f} against {old:.3f}."] + notes
        # the test metrics hold, for screening, the adult block (COVID-19 against adult
        # radiographs of another hospital taken before COVID-19) and recall per source
        config.test_metrics = evaluate_csv(task, data / task / "labels.csv", split="test",
                                              weights_dir=run_dir, out=run_dir / f"{task}_test_metrics.json",
                                              plots_dir=run_dir / "plots", **evaluate_adults(task, data))
        config.training_data = DATA[task]
        config.limitations = notes
        if holdout_reports and task == "screening":  # training/holdout.py, shown first in the card
            config.leave_one_hospital_out = [json.loads(Path(f).read_text()) for f in holdout_reports]
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(weights, out / weights.name)
        config.write(out / weights.with_suffix(".json").name)
        (out / f"{task}.md").write_text(model_card(config) + "\n")
        written += [out / weights.name, out / f"{task}.md"]
        print(f"{task}: bundled {weights} (test {score} {config.test_metrics[score]})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True,
                        help="where the checkpoint goes: a folder for DIACHESTXR_WEIGHTS_DIR or "
                             "the Hub, or diachestxr/weights in a checkout to ship it with the app")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--note", action="append", default=[],
                        help="a limitation or observation for the model card (repeatable)")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--holdout-report", action="append", default=[], type=Path,
                        help="screening: a training/holdout.py report (JSON) of a run of this "
                             "recipe without a source; repeatable; shown first in the card")
    args = parser.parse_args(argv)
    bundle(args.run_dir, args.data, args.note, args.force, args.holdout_report, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
