"""Metric helpers shared by training (validation) and `diachestxr evaluate`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .labels import known

# scikit-learn is imported where a metric is computed: `inference` uses this module's
# screening_predictions, and a process that only predicts should not load scikit-learn.


def auroc_or_none(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """AUROC over the known rows (0/1; UNKNOWN rows are left out), or None when they hold
    no positives or no negatives."""
    y_true, score = np.asarray(y_true), np.asarray(score)
    mask = known(y_true)
    y_true, score = y_true[mask], score[mask]
    if not len(y_true) or y_true.min() == y_true.max():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, score))


def mean_auroc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean over columns that have both classes. targets: (N, C) 0/1 or UNKNOWN (left out
    of its column); scores: (N, C)."""
    values = [a for c in range(targets.shape[1])
              if (a := auroc_or_none(targets[:, c], scores[:, c])) is not None]
    return float(np.mean(values)) if values else None


# Diagnosis operating points. Youden's J puts a threshold near each label's base rate, so a
# normal radiograph crosses several of the 14 and reads like a list of diseases. A finding
# should mean "scores higher than 95 % of validation images without this label".
FINDING_SPECIFICITY = 0.95


def specificity_threshold(y_true: np.ndarray, score: np.ndarray,
                          specificity: float = FINDING_SPECIFICITY, default: float = 0.5) -> float:
    """The lowest threshold at which at least `specificity` of the negatives score below it
    (so the share of negatives called positive is at most 1 - specificity). Negatives are
    the rows known to be 0: an UNKNOWN row is no negative."""
    y_true, score = np.asarray(y_true, float), np.asarray(score, float)
    negatives = np.sort(score[y_true == 0])
    if not len(negatives):
        return default
    # the k-th largest negative score, with k the negatives allowed above the threshold
    allowed = int(np.floor((1.0 - specificity) * len(negatives)))
    threshold = np.nextafter(negatives[len(negatives) - 1 - allowed], np.inf)
    return float(np.clip(threshold, 1e-4, 1.0))


def operating_points(targets: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                     specificity: float = FINDING_SPECIFICITY) -> dict[str, float]:
    """Per-label thresholds (see specificity_threshold), chosen on validation data."""
    return {label: specificity_threshold(targets[:, i], probs[:, i], specificity)
            for i, label in enumerate(labels)}


# ------------------------------------------------------------------- per-class reports
# One implementation of the per-class numbers for `diachestxr evaluate` (metrics.json, see
# docs/metrics-json.md) and for training's validation logs.

def _ratio(num: int, den: int) -> float | None:
    return float(num / den) if den else None


def binary_rates(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Sensitivity, specificity and PPV of 0/1 predictions; None where the denominator is 0
    (no positives, no negatives, or nothing predicted positive). UNKNOWN rows are left out."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, bool)
    mask = known(y_true)
    y_true, y_pred = y_true[mask].astype(bool), y_pred[mask]
    tp = int((y_true & y_pred).sum())
    fn = int((y_true & ~y_pred).sum())
    tn = int((~y_true & ~y_pred).sum())
    fp = int((~y_true & y_pred).sum())
    return {"sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
            "ppv": _ratio(tp, tp + fp)}


def _mean_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def screening_predictions(probs: np.ndarray, classes: Sequence[str],
                          covid19_threshold: float | None = None) -> np.ndarray:
    """The class each row is called: the arg-max, or, with an operating point, COVID-19 when
    its probability reaches the threshold and otherwise the more probable of the others.
    One rule for `Predictor.screen`, `evaluate` and the model card."""
    probs = np.asarray(probs, float)
    if covid19_threshold is None:
        return probs.argmax(1)
    covid = list(classes).index("COVID-19")
    others = probs.copy()
    others[:, covid] = -np.inf
    return np.where(probs[:, covid] >= covid19_threshold, covid, others.argmax(1))


def screening_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                      covid19_threshold: float | None = None) -> dict:
    """Single-label report. y_true: (N,) class indices; probs: (N, C) softmax outputs.

    Returns {"n", "classes", "accuracy", "macro_auroc", "per_class": {class: {"n_pos",
    "auroc", "sensitivity", "specificity", "ppv"}}, "confusion_matrix"} (rows true, columns
    predicted). A class without positives or negatives gets auroc None, left out of the mean.
    """
    y_true, probs = np.asarray(y_true, int), np.asarray(probs, float)
    n_classes = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y_true), n_classes):
        raise ValueError(f"probs must have shape ({len(y_true)}, {n_classes}), got {probs.shape}")
    if len(y_true) == 0:
        raise ValueError("no samples to compute metrics on")
    pred = screening_predictions(probs, classes, covid19_threshold)
    per_class = {}
    for c, name in enumerate(classes):
        positive = y_true == c
        per_class[name] = {"n_pos": int(positive.sum()),
                           "auroc": auroc_or_none(positive.astype(int), probs[:, c]),
                           **binary_rates(positive, pred == c)}
    return {"n": int(len(y_true)), "classes": list(classes),
            "accuracy": float((pred == y_true).mean()),
            "macro_auroc": _mean_or_none(v["auroc"] for v in per_class.values()),
            "per_class": per_class,
            "confusion_matrix": _confusion_matrix(y_true, pred, n_classes)}


def _confusion_matrix(y_true: np.ndarray, pred: np.ndarray, n_classes: int) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, pred, labels=list(range(n_classes))).tolist()


def adult_screening_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                            covid19_threshold: float | None = None) -> dict:
    """How a screening model treats adults, where the data's age confound cannot help it.
    y_true: class indices, or -1 (NOT_COVID) for radiographs known not to be COVID-19 only.

    Returns {"n", "n_covid19", "covid19_vs_non_covid19_auroc", "covid19_sensitivity",
    "non_covid19_called_covid19", "normal": {"n", "called_normal", "called_covid19"},
    "pneumonia": {"n", "called_pneumonia", "called_normal"}} (shares; None without cases).
    """
    y_true, probs = np.asarray(y_true, int), np.asarray(probs, float)
    covid, pneumonia, normal = (classes.index(c) for c in ("COVID-19", "Pneumonia", "Normal"))
    called = screening_predictions(probs, classes, covid19_threshold)
    is_covid = y_true == covid

    def share(mask: np.ndarray, cls: int) -> float | None:
        return float((called[mask] == cls).mean()) if mask.any() else None

    return {"n": int(len(y_true)), "n_covid19": int(is_covid.sum()),
            "covid19_vs_non_covid19_auroc": auroc_or_none(is_covid.astype(int), probs[:, covid]),
            "covid19_sensitivity": share(is_covid, covid),
            "non_covid19_called_covid19": share(~is_covid, covid),
            "normal": {"n": int((y_true == normal).sum()), "called_normal": share(y_true == normal, normal),
                       "called_covid19": share(y_true == normal, covid)},
            "pneumonia": {"n": int((y_true == pneumonia).sum()),
                          "called_pneumonia": share(y_true == pneumonia, pneumonia),
                          "called_normal": share(y_true == pneumonia, normal)}}


def balanced_accuracy(report: dict) -> float | None:
    """Mean sensitivity over the classes present, from a `screening_metrics` report."""
    return _mean_or_none(v["sensitivity"] for v in report["per_class"].values())


def diagnosis_metrics(targets: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                      thresholds: Mapping[str, float] | float = 0.5) -> dict:
    """Multi-label report. targets: (N, L) 1/0, or UNKNOWN for a cell left out of that
    label's numbers; probs: (N, L) sigmoid outputs; a label is called positive when its
    probability is >= its threshold (as `Predictor.diagnose` does).

    Returns {"n", "labels", "mean_auroc", "per_label": {label: {"n_pos", "auroc",
    "threshold", "sensitivity", "specificity", "n_unknown"}}, "no_finding": {...}}.
    """
    targets, probs = np.asarray(targets, float), np.asarray(probs, float)
    if targets.shape != probs.shape or targets.ndim != 2 or targets.shape[1] != len(labels):
        raise ValueError(f"targets {targets.shape} and probs {probs.shape} must both be "
                         f"(N, {len(labels)})")
    if len(targets) == 0:
        raise ValueError("no samples to compute metrics on")
    per_label = {}
    thrs = np.array([float(thresholds if isinstance(thresholds, (int, float)) else thresholds[name])
                     for name in labels])
    calls = probs >= thrs
    for i, name in enumerate(labels):
        thr = float(thrs[i])
        rates = binary_rates(targets[:, i], calls[:, i])
        per_label[name] = {"n_pos": int((targets[:, i] > 0.5).sum()),
                           "auroc": auroc_or_none(targets[:, i], probs[:, i]),
                           "threshold": thr, "sensitivity": rates["sensitivity"],
                           "specificity": rates["specificity"],
                           "n_unknown": int((~known(targets[:, i])).sum())}
    no_finding = (targets == 0).all(1)  # every label known to be absent
    return {"n": int(len(targets)), "labels": list(labels),
            "mean_auroc": _mean_or_none(v["auroc"] for v in per_label.values()),
            "per_label": per_label,
            # how a radiograph without any finding reads at these operating points
            "no_finding": {"n": int(no_finding.sum()),
                           "findings_median": float(np.median(calls[no_finding].sum(1)))
                           if no_finding.any() else None,
                           "findings_mean": float(calls[no_finding].sum(1).mean())
                           if no_finding.any() else None}}
