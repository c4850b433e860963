"""Predictor: the one inference path the app, the CLI and Python callers share.

    from diachestxr import Predictor
    p = Predictor()                      # loads both models (Hub -> bundled), once
    r = p.screen("xray.png")             # r.label, r.confidences, r.overlay
    d = p.diagnose("xray.dcm")           # d.probabilities, d.findings, d.explanations
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from .explain import DEFAULT_ALPHA, CamExplainer, RankedOutputTarget, class_target, overlay, resize_map
from .io import ImageSource, read_xray
from .models import cam_target_layer
from .registry import TASKS
from .transforms import eval_tensor
from .weights import LoadedModel, load_model

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5  # when a checkpoint carries no calibrated thresholds
TOP_FINDINGS = 3  # diagnosis: Grad-CAM maps for this many top-ranked labels by default


@dataclass
class Explanation:
    label: str
    cam: np.ndarray  # (H, W) float32 in [0, 1], the original image's size
    overlay: np.ndarray  # (H, W, 3) uint8 RGB

    @property
    def empty(self) -> bool:
        """True when no region raised the label's score (Grad-CAM's ReLU left nothing): the
        overlay then shows no heatmap, which must not be read as "nothing to see"."""
        return float(self.cam.max()) <= 0.0


@dataclass
class ScreeningResult:
    label: str
    confidences: dict[str, float]  # all classes, summing to 1
    explanations: dict[str, Explanation]  # by class; the predicted class by default
    image: np.ndarray = field(repr=False)  # the canonical (H, W) uint8 radiograph

    @property
    def cam(self) -> np.ndarray | None:
        return self.explanations[self.label].cam if self.label in self.explanations else None

    @property
    def overlay(self) -> np.ndarray | None:
        return self.explanations[self.label].overlay if self.label in self.explanations else None

    def to_dict(self) -> dict:
        return {"task": "screening", "label": self.label, "confidences": self.confidences}


@dataclass
class DiagnosisResult:
    probabilities: dict[str, float]  # all 14 labels, in the registry's order
    thresholds: dict[str, float]
    findings: list[str]  # labels at or above their threshold, most probable first
    explanations: dict[str, Explanation]  # by label
    image: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"task": "diagnosis", "probabilities": self.probabilities,
                "thresholds": self.thresholds, "findings": self.findings}


class Predictor:
    """Loads the models once; `screen` and `diagnose` are safe to call from many threads."""

    def __init__(self, tasks: Iterable[str] = TASKS, weights_dir: str | os.PathLike | None = None,
                 device: str | None = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.models: dict[str, LoadedModel] = {}
        self._explainers: dict[str, CamExplainer] = {}
        for task in tasks:
            loaded = load_model(task, weights_dir)
            loaded.model.to(self.device)
            self.models[task] = loaded
            self._explainers[task] = CamExplainer(loaded.model, cam_target_layer(loaded.model, loaded.spec))

    def _loaded(self, task: str) -> LoadedModel:
        if task not in self.models:
            raise RuntimeError(f"the {task} model is not loaded; create Predictor(tasks=[..., {task!r}])")
        return self.models[task]

    def _run(self, task: str, image: ImageSource, targets: Sequence, alpha: float
             ) -> tuple[np.ndarray, torch.Tensor, dict[str, Explanation]]:
        """Read -> tensor -> one (batched) forward pass with Grad-CAM for `targets`."""
        loaded = self._loaded(task)
        gray = read_xray(image)  # also validates arrays passed in directly
        x = eval_tensor(gray, loaded.spec).to(self.device)
        logits, maps = self._explainers[task].run(x, targets)
        logits = logits.cpu()
        explanations = {}
        for target, cam in zip(targets, maps):
            label = loaded.spec.labels[target.index(logits) if isinstance(target, RankedOutputTarget)
                                       else target.category]
            cam = resize_map(cam, *gray.shape)
            explanations[label] = Explanation(label, cam, overlay(gray, cam, alpha))
        return gray, logits, explanations

    def screen(self, image: ImageSource, explain: str | Sequence[str] = "predicted",
               alpha: float = DEFAULT_ALPHA) -> ScreeningResult:
        """Classify one radiograph as COVID-19 / Pneumonia / Normal.

        explain: "predicted" (default), "all", "none", or a list of class names to map with
        Grad-CAM.
        """
        labels = self._loaded("screening").spec.labels
        targets = [RankedOutputTarget(0)] if explain == "predicted" else _label_targets(explain, labels)
        gray, logits, explanations = self._run("screening", image, targets, alpha)
        probs = logits.softmax(0).numpy().astype(float)
        return ScreeningResult(label=labels[int(np.argmax(probs))],
                               confidences={l: float(p) for l, p in zip(labels, probs)},
                               explanations=explanations, image=gray)

    def diagnose(self, image: ImageSource, thresholds: float | Mapping[str, float] | None = None,
                 explain: str | Sequence[str] = "top", top_k: int = TOP_FINDINGS,
                 alpha: float = DEFAULT_ALPHA) -> DiagnosisResult:
        """Multi-label NIH ChestX-ray14 probabilities for one radiograph.

        thresholds: None (the checkpoint's calibrated per-label ones), one float for all, or
        a {label: threshold} mapping overriding some. explain: "top" (the `top_k` labels
        that stand highest above their thresholds), "all", "none", or a list of labels.
        """
        loaded = self._loaded("diagnosis")
        labels = loaded.spec.labels
        thr = self.thresholds(thresholds)
        thr_vec = torch.tensor([thr[l] for l in labels])
        if explain == "top":
            # rank by margin over each label's own threshold, in probability space
            targets = [RankedOutputTarget(r, key=lambda out: torch.sigmoid(out.float()) - thr_vec.to(out.device))
                       for r in range(min(top_k, len(labels)))]
        else:
            targets = _label_targets(explain, labels)
        gray, logits, explanations = self._run("diagnosis", image, targets, alpha)
        probs = torch.sigmoid(logits).numpy().astype(float)
        probabilities = {l: float(p) for l, p in zip(labels, probs)}
        findings = sorted((l for l in labels if probabilities[l] >= thr[l]),
                          key=lambda l: -probabilities[l])
        return DiagnosisResult(probabilities=probabilities, thresholds=thr, findings=findings,
                               explanations=explanations, image=gray)

    def thresholds(self, override: float | Mapping[str, float] | None = None) -> dict[str, float]:
        """The diagnosis thresholds: calibrated ones from the checkpoint, then `override`."""
        loaded = self._loaded("diagnosis")
        labels = loaded.spec.labels
        thr = {l: float(loaded.config.get("thresholds", {}).get(l, DEFAULT_THRESHOLD)) for l in labels}
        if isinstance(override, (int, float)):
            thr = dict.fromkeys(labels, float(override))
        elif override:
            thr.update({l: float(v) for l, v in override.items() if _check_labels([l], labels)})
        bad = {l: v for l, v in thr.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"thresholds must be between 0 and 1, got {bad}")
        return thr

    def info(self, task: str) -> dict:
        """Which weights are loaded and from where, with the model card's headline numbers."""
        loaded = self._loaded(task)
        return {"task": task, "arch": loaded.spec.arch, "source": loaded.source.kind,
                "location": loaded.source.location, "labels": list(loaded.spec.labels),
                "training_data": loaded.config.get("training_data"),
                "headline_metrics": headline_metrics(loaded.config.get("test_metrics")),
                "test_metrics": loaded.config.get("test_metrics"),
                "adult_check": loaded.config.get("adult_check"),  # screening's shortcut check
                "limitations": loaded.config.get("limitations")}

    def close(self) -> None:
        for explainer in self._explainers.values():
            explainer.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def headline_metrics(metrics: dict | None) -> dict[str, float]:
    """The few numbers a model card leads with, from a `diachestxr evaluate` metrics dict."""
    if not metrics:
        return {}
    if "per_class" in metrics:
        return {"test images": metrics["n"], "accuracy": metrics["accuracy"],
                "macro AUROC": metrics["macro_auroc"],
                **{f"{c} sensitivity": m["sensitivity"] for c, m in metrics["per_class"].items()}}
    return {"test images": metrics["n"], "mean AUROC": metrics["mean_auroc"]}


def _label_targets(explain: str | Sequence[str], labels: Sequence[str]) -> list:
    """Grad-CAM targets for explain="none", "all" or a list of labels."""
    if explain == "none":
        return []
    wanted = labels if explain == "all" else _check_labels(explain, labels)
    return [class_target(labels.index(l)) for l in wanted]


def _check_labels(requested: Sequence[str], labels: Sequence[str]) -> list[str]:
    if isinstance(requested, str):
        requested = [requested]
    unknown = [l for l in requested if l not in labels]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; choose from {list(labels)}")
    return list(requested)
