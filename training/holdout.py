"""Leave-one-hospital-out: how a screening run does on adult sources it never saw.

    python -m training.train --task screening ... --holdout mhh_covid --out runs/loho-mhh
    python -m training.holdout runs/loho-mhh --out runs/loho-mhh/holdout.json
    python -m training.holdout diachestxr/weights --sources covid19_radiography  # a model that
                                                                 # never saw that source anyway

A test split from the training hospitals flatters a model that learned what a hospital's films
look like; a hospital it never saw does not. For each held-out source, every radiograph of it
(all splits: none was trained on) is scored, and its COVID-19 radiographs are ranked against
adult non-COVID radiographs the run never trained on: the source's own and the test-split
adults of the other sources (`against_unseen_adults`; the only comparison for a source with
COVID-19 alone), and the source's own only (`within_source`, where it has both).
The COVID-19 operating point is fitted as `training.bundle` fits it, on the validation adults
of the sources the run did see.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from diachestxr.inference import Predictor
from diachestxr.metrics import adult_screening_metrics

from .bundle import covid19_threshold, validation_adults
from .data import from_sources, task_records
from .push_to_hub import find_checkpoints

MIN_WITHIN = 10  # a source needs this many COVID-19 and non-COVID radiographs of its own


def holdout_report(weights_dir: Path, sources: list[str], data: Path) -> dict:
    """The metrics above, per held-out source (see the module docstring)."""
    every = task_records(data, "screening")
    left_out = set(sources)
    unseen_adults = [r for r in every if r.group == "adult" and r.meta.get("split") == "test"
                     and not from_sources(r, left_out)]
    report = {"weights": str(weights_dir), "held_out": sources, "by_source": {}}
    with Predictor(tasks=["screening"], weights_dir=weights_dir, gate="off") as predictor:
        classes = list(predictor.models["screening"].spec.labels)
        covid = classes.index("COVID-19")
        threshold = covid19_threshold(predictor, validation_adults(data, frozenset(left_out)))
        report["covid19_threshold"] = threshold
        unseen_negatives = [r for r in unseen_adults if int(r.target) != covid]
        for source in sources:
            own = [r for r in every if from_sources(r, {source})]
            if not own:
                raise SystemExit(f"--sources: no radiograph has source {source!r}")
            rows = own + unseen_negatives
            probs = predictor.probabilities([r.path for r in rows], "screening")
            y = np.array([int(r.target) for r in rows])
            mine = np.arange(len(rows)) < len(own)
            entry = {"n": len(own), "n_covid19": int((y[mine] == covid).sum()),
                     "against_unseen_adults": adult_screening_metrics(y, probs, classes, threshold)}
            if min((y[mine] == covid).sum(), (y[mine] != covid).sum()) >= MIN_WITHIN:
                entry["within_source"] = adult_screening_metrics(y[mine], probs[mine], classes, threshold)
            report["by_source"][source] = entry
    report["unseen_adult_negatives"] = len(unseen_negatives)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sources", default="",
                        help="comma-separated sources (default: the run's --holdout)")
    parser.add_argument("--out", type=Path, help="also write the report (JSON) here")
    parser.add_argument("--name", help="what the model card calls the run (default: its folder)")
    args = parser.parse_args(argv)
    sources = args.sources
    if not sources:
        _, _, config = find_checkpoints(args.run_dir)["screening"]
        sources = config.training.get("config", {}).get("holdout", "")
    if not sources:
        raise SystemExit("no held-out source: the run has no --holdout; name them with --sources")
    report = {"name": args.name or args.run_dir.name,
              **holdout_report(args.run_dir, sources.split(","), args.data)}
    text = json.dumps(report, indent=2) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
