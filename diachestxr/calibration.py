"""Temperature scaling: one scalar T per checkpoint, fitted on validation, applied at inference.

    p = softmax(logits / T)      screening (T > 1 softens an overconfident model)
    p = sigmoid(logits / T)      diagnosis (one T for all 14 labels)

A positive T keeps every ranking (the arg-max, the order of a label's scores, so every AUROC
and every Grad-CAM target) and changes only how much a probability claims. T lives in the
checkpoint config (`temperature`); a config without it means T = 1, the raw outputs.
`probabilities` is the one place logits become probabilities (diachestxr.inference uses it);
training.calibrate fits T (`fit_temperature`) and reports the expected calibration error
(`reliability`) before and after.

No scikit-learn here: inference imports this module, and a process that only predicts should
not load it. The bins follow sklearn.calibration.calibration_curve(strategy="uniform")
(tests check that they agree).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .labels import known

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo et al. 2017)


def probabilities(logits: torch.Tensor, multilabel: bool, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) over the classes, or sigmoid(logits / T) per label. T = 1 returns
    exactly what the uncalibrated path returned (no division is done)."""
    if temperature != 1.0:
        logits = logits / temperature
    return torch.sigmoid(logits) if multilabel else logits.softmax(-1)


def nll(logits: np.ndarray, targets: np.ndarray, multilabel: bool, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood at `temperature`: cross-entropy over the classes
    (targets: class indices), or binary cross-entropy over the known label cells (targets:
    1, 0 or UNKNOWN; unknown cells are left out)."""
    z, y, mask = _tensors(logits, targets, multilabel)
    return float(_loss(z / temperature, y, mask, multilabel))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, multilabel: bool,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T that minimises the validation NLL (see `nll`), by L-BFGS on log T (so T stays
    positive), clipped to `bounds`. Only known cells count: an UNKNOWN cell changes nothing."""
    z, y, mask = _tensors(logits, targets, multilabel)
    if not mask.any():
        raise ValueError("no known targets to fit a temperature on")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _loss(z / log_t.exp(), y, mask, multilabel)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.clip(math.exp(float(log_t.detach())), *bounds))


def _tensors(logits, targets, multilabel: bool):
    z = torch.as_tensor(np.asarray(logits, np.float64))
    if multilabel:
        y = torch.as_tensor(np.asarray(targets, np.float64))
        if y.shape != z.shape:
            raise ValueError(f"targets {tuple(y.shape)} and logits {tuple(z.shape)} must match")
        return z, y.clamp(min=0), known(y)
    y = torch.as_tensor(np.asarray(targets, np.int64))
    if z.ndim != 2 or y.shape != z.shape[:1]:
        raise ValueError(f"logits must be (N, C) and targets (N,), got {tuple(z.shape)}, {tuple(y.shape)}")
    return z, y, torch.ones_like(y, dtype=torch.bool)


def _loss(z: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, multilabel: bool) -> torch.Tensor:
    if multilabel:
        cells = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
        return cells[mask].mean()
    return torch.nn.functional.cross_entropy(z, y)


# ------------------------------------------------------------------- calibration error
def outcomes(probs: np.ndarray, targets: np.ndarray, multilabel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, outcome 0/1) pairs that the calibration error is measured on. Screening:
    the top-label confidence (the arg-max's probability) and whether the arg-max is the true
    class. Diagnosis: every known label cell's probability and its label."""
    probs, targets = np.asarray(probs, float), np.asarray(targets)
    if multilabel:
        mask = known(targets)
        return probs[mask], (targets[mask] > 0.5).astype(float)
    return probs.max(1), (probs.argmax(1) == targets).astype(float)


def reliability(confidence: np.ndarray, outcome: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Equal-width bins of `confidence` in [0, 1]: {"ece", "n", "bins": [{"lower", "upper",
    "n", "confidence", "accuracy"}, ...]} (empty bins have n 0 and None for the means).
    ECE = sum over bins of (n_bin / n) * |mean outcome - mean confidence|."""
    confidence, outcome = np.asarray(confidence, float), np.asarray(outcome, float)
    if confidence.shape != outcome.shape or not len(confidence):
        raise ValueError("confidence and outcome must be non-empty and of one shape")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # sklearn.calibration.calibration_curve's binning: a value on an inner edge joins the
    # lower bin, 0.0 the first and 1.0 the last
    ids = np.searchsorted(edges[1:-1], confidence)
    bins, ece = [], 0.0
    for b in range(n_bins):
        in_bin = ids == b
        n = int(in_bin.sum())
        conf = float(confidence[in_bin].mean()) if n else None
        acc = float(outcome[in_bin].mean()) if n else None
        if n:
            ece += n / len(confidence) * abs(acc - conf)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "n": n,
                     "confidence": conf, "accuracy": acc})
    return {"ece": float(ece), "n": int(len(confidence)), "bins": bins}


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, multilabel: bool,
                               n_bins: int = ECE_BINS) -> float:
    """ECE of a task's probabilities (see `outcomes` for what is measured)."""
    return reliability(*outcomes(probs, targets, multilabel), n_bins)["ece"]


# ----------------------------------------------------------------- thresholds and rates
def map_threshold(threshold: float, old_temperature: float, new_temperature: float) -> float:
    """A sigmoid probability threshold that calls exactly the same logits after T changes:
    logit(t') = logit(t) * T_old / T_new. 0 and 1 stay where they are."""
    if threshold <= 0.0 or threshold >= 1.0 or old_temperature == new_temperature:
        return float(threshold)
    return float(1.0 / (1.0 + math.exp(-logit(threshold) * old_temperature / new_temperature)))


def logit(p: float, eps: float = 1e-7) -> float:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps] (0 and 1 stay finite)."""
    p = min(max(float(p), eps), 1.0 - eps)
    return math.log(p) - math.log1p(-p)


def prevalence(targets: np.ndarray, labels: Sequence[str]) -> dict[str, float | None]:
    """Per label, positives / known cells (None where no cell is known): a label's usual
    rate, so a probability can be read as "3x this label's usual rate"."""
    targets = np.asarray(targets, float)
    out = {}
    for i, label in enumerate(labels):
        cells = targets[known(targets[:, i]), i]
        out[label] = float((cells > 0.5).mean()) if len(cells) else None
    return out

