"""Metrics of a model over a labelled CSV: `python -m diachestxr evaluate`.

    from diachestxr.evaluate import evaluate_csv
    m = evaluate_csv("screening", "../shared/data/screening/labels.csv", split="test",
                     out="runs/eval/metrics.json")   # also writes ROC / confusion-matrix PNGs

The CSV has the layout of ../shared/data: `path` (relative to the CSV's folder, or absolute),
`label` for screening or the 14 NIH label columns (1, 0, or -1/empty: unknown) for
diagnosis, and optionally `split`. metrics.json follows the contract in docs/metrics-json.md; tools outside
the project read it, so its keys do not change without a format note there.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from .explain import CENTRAL_MARGIN, central_mass
from .io import shrink
from .labels import (DIAGNOSIS_SOURCE_GROUPS, PEDIATRIC_SOURCES, UNKNOWN, known,
                     screening_target_of_nih)
from .metrics import adult_screening_metrics, diagnosis_metrics, mean_auroc, screening_metrics
from .registry import BATCH_SIZE, get_spec

log = logging.getLogger(__name__)

# Every evaluation also scores copies of the images shrunk to this long side (then predicted
# as usual): how a downsized, re-saved upload arrives, and the size of NIH's own low-resolution
# release (the diagnosis data's nih_lowres64 rows). The diagnosis model is chosen on the mean
# of the two scores over the broad-sample rows (training.train.selection_score).
LOW_RESOLUTION_SIDE = 64


def read_csv_rows(csv_path: str | os.PathLike, split: str | None = None,
                  needed: Sequence[str] = ()) -> list[dict[str, str]]:
    """The one reader of the labels.csv format (UTF-8, a BOM allowed; image paths relative to
    its folder): its rows, those of `split` if given, each with the `needed` columns.
    Raises FileNotFoundError / ValueError naming the file and what is wrong."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: no such CSV file")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; it needs {list(needed)}"
                         " (see ../shared/data/README.md)")
    if split is not None:
        if "split" not in columns:
            raise ValueError(f"{csv_path}: --split {split} given but the CSV has no 'split' column")
        present = sorted({r["split"] for r in rows})
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise ValueError(f"{csv_path}: no rows with split == {split!r}; splits present: {present}")
    if not rows:
        raise ValueError(f"{csv_path}: the CSV has no rows")
    return rows


def read_labelled_csv(csv_path: str | os.PathLike, task: str, split: str | None = None
                      ) -> tuple[list[Path], np.ndarray]:
    """Image paths and targets of a labels.csv: (N,) class indices for screening, (N, 14)
    floats for diagnosis: 1 present, 0 absent, UNKNOWN (-1) for a cell of -1 or empty.
    Raises ValueError naming the row for anything malformed."""
    spec = get_spec(task)
    csv_path = Path(csv_path)
    rows = read_csv_rows(csv_path, split,
                         needed=["path"] + (list(spec.labels) if spec.multilabel else ["label"]))

    paths = [csv_path.parent / r["path"] for r in rows]
    if not spec.multilabel:
        for r in rows:
            r["label"] = (r["label"] or "").strip()
        bad = sorted({r["label"] for r in rows} - set(spec.labels))
        if bad:
            first = next(i for i, r in enumerate(rows) if r["label"] in bad)
            raise ValueError(f"{csv_path}: label(s) {bad} (first at {rows[first]['path']}) are not "
                             f"{task} classes; expected one of {list(spec.labels)}")
        return paths, np.array([spec.labels.index(r["label"]) for r in rows], int)
    targets = np.zeros((len(rows), len(spec.labels)), np.float32)
    for i, r in enumerate(rows):
        for j, label in enumerate(spec.labels):
            value = (r[label] or "").strip()
            if value not in _CELLS:
                raise ValueError(f"{csv_path}: {label}={value!r} for {r['path']}; label columns "
                                 "must be 1 (present), 0 (absent), or -1 or empty (unknown)")
            targets[i, j] = _CELLS[value]
    return paths, targets


# A diagnosis label cell as read: -1 and an empty cell are unknown (CheXpert's convention)
_CELLS = {"1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "-1": UNKNOWN, "-1.0": UNKNOWN, "": UNKNOWN}


def evaluate_csv(task: str, csv: str | os.PathLike, split: str | None = None,
                 weights_dir: str | os.PathLike | None = None,
                 out: str | os.PathLike | None = Path("metrics.json"),
                 plots_dir: str | os.PathLike | None = None, *, limit: int | None = None,
                 batch_size: int = BATCH_SIZE,
                 extra_adults: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Evaluate the `task` model (resolved like everywhere else: --weights, Hub, bundled) on
    a labelled CSV; write metrics.json to `out` and ROC / confusion-matrix PNGs to
    `plots_dir` (default: `out`'s folder), ROC and precision-recall curves alike. `limit`
    keeps the first N rows (quick checks). Screening: `extra_adults`, a diagnosis labels.csv
    of NIH radiographs (adults, before COVID-19), adds the "adult" block: the CSV's adult
    rows and those NIH rows (same split) as Normal / Pneumonia / not COVID-19.
    Returns the metrics dict that was written. out=None writes nothing."""
    from .inference import Predictor

    paths, targets = read_labelled_csv(csv, task, split)
    if limit:
        paths, targets = paths[:limit], targets[:limit]
    # "report": every row is predicted (metrics need them all); the radiograph check's
    # refusals are counted, so its false refusals on any labelled set are on record too
    predictor = Predictor(tasks=[task], weights_dir=weights_dir, gate="report")
    loaded = predictor.models[task]
    log.info("evaluating the %s model from %s on %d images of %s", task, loaded.source,
             len(paths), csv)
    labels, multilabel = loaded.spec.labels, loaded.spec.multilabel
    # The maps cost little (see diachestxr.explain). Diagnosis: every label's, to count the
    # true findings whose map is empty (no region raised the score); screening: the
    # predicted class's, to measure how much of it lies in the central box (where the lungs
    # are) rather than on borders and markers.
    results = predictor.iter_predict(paths, task, explain="all" if multilabel else "default",
                                     batch_size=batch_size, progress=progress,
                                     names=[str(p) for p in paths])
    probs, maps_non_empty, central, refused, small = _collect(results, paths, targets, labels)
    metrics = {"task": task, **_metrics(task, targets, probs, predictor)}
    score = "mean_auroc" if multilabel else "macro_auroc"
    low_probs = low_resolution_probabilities(predictor, small, task, batch_size)
    metrics["low_resolution"] = {"side": LOW_RESOLUTION_SIDE,
                                 score: _metrics(task, targets, low_probs, predictor)[score]}
    if multilabel:
        metrics["maps"] = {"method": "gradcam", "true_findings": len(maps_non_empty),
                           "non_empty_share": float(np.mean(maps_non_empty)) if maps_non_empty else None}
    metrics["radiograph_check"] = {
        "threshold": predictor.gate.threshold, "refused": len(refused),
        "refused_share": len(refused) / len(paths), "refused_files": dict(refused[:20])}
    sources = _column(csv, "source", split)[:len(paths)]
    if extra_adults and not multilabel:
        metrics["adult"] = _adult_block(predictor, targets, probs, central, sources, extra_adults,
                                        split, batch_size, progress)
    if any(sources):
        metrics.update(_by_source(task, targets, probs, low_probs, np.array(sources), predictor))
    metrics = _rounded(metrics)
    if out is not None:
        _write(metrics, targets, probs, labels, Path(out), plots_dir)
    return metrics


def _collect(results: Iterable, paths: Sequence[Path], targets: np.ndarray,
             labels: Sequence[str]) -> tuple[np.ndarray, list, list, list, list]:
    """From the results as they stream: the probabilities; diagnosis, whether each true
    finding's map is non-empty; screening, the map's central mass; the refused files; and
    each image's low-resolution copy (from the image as read: no second decoding)."""
    probs, maps_non_empty, central, refused, small = [], [], [], [], []
    for path, result, target in zip(paths, results, targets):
        probs.append(result.scores)
        small.append(shrink(result.image, LOW_RESOLUTION_SIDE))
        if result.gate and not result.gate.accepted:
            refused.append((Path(path).name, result.gate.kind))
        if targets.ndim == 2:
            maps_non_empty += [not result.explanations[l].empty
                               for l, y in zip(labels, target) if y > 0.5]
        else:
            central.append(central_mass(result.cam))
    return np.stack(probs), maps_non_empty, central, refused, small


def _by_source(task: str, targets: np.ndarray, probs: np.ndarray, low_probs: np.ndarray,
               sources: np.ndarray, predictor) -> dict:
    """`by_source`, and for diagnosis `by_source_group`: the broad samples apart from the
    easy No Finding / Pneumonia rows, each also on its rows shrunk to LOW_RESOLUTION_SIDE."""
    out = {"by_source": {source: _subset(task, targets, probs, sources == source, predictor)
                         for source in sorted(set(sources))}}
    if targets.ndim == 2:
        out["by_source_group"] = {
            group: {**_subset(task, targets, probs, mask, predictor),
                    "low_resolution_mean_auroc": mean_auroc(targets[mask], low_probs[mask])}
            for group, members in DIAGNOSIS_SOURCE_GROUPS.items()
            if (mask := np.isin(sources, members)).any()}
    return out


def _write(metrics: dict, targets: np.ndarray, probs: np.ndarray, labels: Sequence[str],
           out: Path, plots_dir: str | os.PathLike | None) -> None:
    """metrics.json, and the ROC / precision-recall (and screening's confusion) plots."""
    task, n = metrics["task"], len(probs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    plots = Path(plots_dir) if plots_dir is not None else out.parent
    plots.mkdir(parents=True, exist_ok=True)
    multilabel = targets.ndim == 2
    written = [plot_curves(targets, probs, labels, multilabel, plots / f"{task}_{kind}.png",
                           kind, title=f"{task} {kind.upper()} (n={n})") for kind in ("roc", "pr")]
    if not multilabel:
        written.append(plot_confusion(metrics["confusion_matrix"], labels,
                                      plots / f"{task}_confusion.png",
                                      title=f"{task} confusion matrix (n={n})"))
    log.info("wrote %s and %s", out, ", ".join(map(str, written)))


def low_resolution_probabilities(predictor, images: Sequence, task: str,
                                 batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The model's outputs on copies of `images` (paths or arrays) shrunk to
    LOW_RESOLUTION_SIDE px on their long side."""
    from .io import read_xray

    return predictor.probabilities(
        [shrink(read_xray(i) if isinstance(i, (str, os.PathLike)) else i, LOW_RESOLUTION_SIDE)
         for i in images], task, batch_size=batch_size)


def _metrics(task: str, targets: np.ndarray, probs: np.ndarray, predictor) -> dict:
    labels = get_spec(task).labels
    if get_spec(task).multilabel:
        # The checkpoint's calibrated per-label thresholds, exactly as `diagnose` uses them.
        return diagnosis_metrics(targets, probs, labels, predictor.thresholds())
    return screening_metrics(targets, probs, labels, _covid19_threshold(predictor))


def _subset(task: str, targets: np.ndarray, probs: np.ndarray, mask: np.ndarray, predictor) -> dict:
    """The headline metrics of some rows (a source, a group of sources)."""
    return {k: v for k, v in _metrics(task, targets[mask], probs[mask], predictor).items()
            if k in ("n", "accuracy", "macro_auroc", "mean_auroc", "per_class", "per_label",
                     "no_finding")}


def _covid19_threshold(predictor) -> float | None:
    """The screening checkpoint's COVID-19 operating point, if it has one."""
    return predictor.models["screening"].config.covid19_threshold


def _adult_block(predictor, targets: np.ndarray, probs: np.ndarray, central: list,
                 sources: list[str], nih_csv: str | os.PathLike, split: str | None,
                 batch_size: int, progress: bool) -> dict:
    """Screening metrics on adults: the CSV's non-pediatric rows plus the NIH rows."""
    nih_paths, nih_findings = read_labelled_csv(nih_csv, "diagnosis", split)
    nih = list(predictor.iter_predict(nih_paths, "screening", batch_size=batch_size,
                                      progress=progress, names=[str(p) for p in nih_paths]))
    nih_probs = np.stack([r.scores for r in nih])
    nih_targets = np.array([screening_target_of_nih(f) for f in nih_findings])
    adult = np.array([s not in PEDIATRIC_SOURCES for s in sources])
    labels = get_spec("screening").labels
    threshold = _covid19_threshold(predictor)
    block = adult_screening_metrics(np.concatenate([targets[adult], nih_targets]),
                                    np.concatenate([probs[adult], nih_probs]), labels, threshold)
    block["nih_only"] = adult_screening_metrics(nih_targets, nih_probs, labels, threshold)
    shares = [c for c in [*np.array(central, dtype=object)[adult], *(central_mass(r.cam) for r in nih)]
              if c is not None]
    block["maps"] = {"method": "gradcam", "class": "predicted", "n": len(shares),
                     "central_box_share_median": float(np.median(shares)) if shares else None,
                     "uniform_map_share": (1 - 2 * CENTRAL_MARGIN) ** 2}
    block["data"] = (f"the screening CSV's adult rows ({int(adult.sum())}) and {len(nih_paths)} NIH "
                     f"rows of {Path(nih_csv).name} (no finding: Normal; Pneumonia: Pneumonia; "
                     "other findings: not COVID-19)")
    return block


def _column(csv_path: str | os.PathLike, column: str, split: str | None) -> list[str]:
    """One column of a labels.csv for the rows `read_labelled_csv` returns ("" if absent)."""
    return [r.get(column) or "" for r in read_csv_rows(csv_path, split)]


def _rounded(value, digits: int = 6):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


# ------------------------------------------------------------------------------- plots
def _figure(size=(6.4, 6.0)):
    # A bare Figure renders with Agg and touches no pyplot global state (thread-safe, headless).
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def plot_curves(targets: np.ndarray, probs: np.ndarray, labels: Sequence[str], multilabel: bool,
                path: Path, kind: str = "roc", title: str = "ROC") -> Path:
    """All classes/labels' one-vs-rest ROC (kind "roc") or precision-recall ("pr") curves on
    one plot; classes without both positives and negatives are listed as n/a. PR curves show
    what ROC hides for rare labels: how many of the flagged images are real positives."""
    import matplotlib

    onehot = targets if multilabel else np.eye(len(labels))[targets]
    fig, ax = _figure((7.5, 6.5) if multilabel else (6.4, 6.0))
    colours = matplotlib.colormaps["tab20" if len(labels) > 10 else "tab10"]
    for i, label in enumerate(labels):
        rows = known(onehot[:, i])  # unknown cells are no negatives
        y, p = onehot[rows, i] > 0.5, probs[rows, i]
        if y.all() or not y.any():
            ax.plot([], [], color=colours(i), label=f"{label}: n/a ({int(y.sum())} pos)")
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, color=colours(i), lw=1.6,
                    label=f"{label}: AUROC {auc(fpr, tpr):.3f} ({int(y.sum())} pos)")
        else:
            precision, recall, _ = precision_recall_curve(y, p)
            ax.plot(recall, precision, color=colours(i), lw=1.6, drawstyle="steps-post",
                    label=f"{label}: AP {average_precision_score(y, p):.3f} "
                          f"(prevalence {y.mean():.2f})")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        ax.set(xlabel="1 - specificity (false positive rate)", ylabel="sensitivity (true positive rate)")
    else:
        ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=title, aspect="equal")
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7 if multilabel else 9)
    fig.savefig(path, dpi=110)
    return path


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path,
                   title: str = "confusion matrix") -> Path:
    """Counts with row percentages; rows are the true class, columns the predicted one."""
    m = np.asarray(matrix)
    rows = m.sum(1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros(m.shape, float), where=rows > 0)
    fig, ax = _figure((5.6, 4.8))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{m[i, j]}\n{share[i, j]:.0%}" if rows[i, 0] else "0"  # no such rows
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=10)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels,
           yticklabels=labels, xlabel="predicted", ylabel="true", title=title)
    fig.savefig(path, dpi=110)
    return path
