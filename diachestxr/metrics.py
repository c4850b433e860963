"""Metric helpers shared by training (validation) and `diachestxr evaluate`."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def auroc_or_none(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """AUROC, or None when the column has no positives or no negatives."""
    y_true = np.asarray(y_true)
    if y_true.min() == y_true.max():
        return None
    return float(roc_auc_score(y_true, score))


def mean_auroc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean over columns that have both classes. targets: (N, C) 0/1; scores: (N, C)."""
    values = [a for c in range(targets.shape[1])
              if (a := auroc_or_none(targets[:, c], scores[:, c])) is not None]
    return float(np.mean(values)) if values else None


def youden_threshold(y_true: np.ndarray, score: np.ndarray, default: float = 0.5) -> float:
    """The threshold maximising sensitivity + specificity - 1 (Youden's J) on one label."""
    if np.min(y_true) == np.max(y_true):
        return default
    fpr, tpr, thr = roc_curve(y_true, score)
    best = int(np.argmax(tpr - fpr))
    return float(np.clip(thr[best], 1e-4, 1.0))
