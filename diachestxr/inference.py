"""Predictor: the one inference path the app, the CLI, `evaluate`, training's validation and
Python callers share.

    from diachestxr import Predictor
    p = Predictor()                        # loads both models (Hub -> bundled), once
    r = p.screen("xray.png")               # r.label, r.confidences, r.overlay
    d = p.diagnose("xray.dcm")             # d.probabilities, d.findings, d.explanations
    rs = p.predict(paths, "diagnosis", explain="all", method="gradcam++")   # batched

Each batch runs the network once, up to the Grad-CAM layer (no gradients); the head turns
those activations into the probabilities, and pytorch-grad-cam explains the head alone on the
same activations (see diachestxr.explain), so every map costs a small fraction of a forward.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Iterator, Mapping, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from . import profile
from .card import headline_metrics, held_out_aurocs, outlook, stranger_auroc
from .calibration import logit, probabilities as calibrated_probabilities
from .explain import (DEFAULT_ALPHA, DEFAULT_METHOD, HeadExplainer, check_method, class_target,
                      overlay, resize_map)
from .gate import GateVerdict, RadiographGate, raise_if_refused
from .io import ImageSource, read_xray, shrink, source_name
from .metrics import screening_predictions
from .models import ChestXRayNet
from .registry import BATCH_SIZE, LOW_RESOLUTION_SIDE, TASKS, ModelSpec
from .transforms import eval_tensor
from .weights import LoadedModel, WeightsSource, load_model

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5  # when a checkpoint carries no calibrated thresholds
TOP_FINDINGS = 3  # diagnosis: Grad-CAM maps for this many top-ranked labels by default
DISPLAY_MAX_SIDE = 1024  # results keep the image (and draw overlays) at most this large


@dataclass
class Explanation:
    """One label's map. `cam` is at the model's input size (it covers the whole image,
    squashed, as the model saw it); `overlay` draws it on the result's display image."""

    label: str
    cam: np.ndarray  # (S, S) float32 in [0, 1], S = the model's input size
    image: np.ndarray = field(repr=False)  # the display image it is drawn on
    alpha: float = DEFAULT_ALPHA

    @property
    def empty(self) -> bool:
        """True when no region raised the label's score (Grad-CAM's ReLU left nothing): the
        overlay then shows no heatmap, which must not be read as "nothing to see"."""
        return float(self.cam.max()) <= 0.0

    def cam_at(self, height: int, width: int) -> np.ndarray:
        """The map resized onto an image of this size (e.g. the original's)."""
        return resize_map(self.cam, height, width)

    @cached_property
    def overlay(self) -> np.ndarray:
        """(h, w, 3) uint8 RGB heatmap over the display image, computed on first use."""
        return overlay(self.image, self.cam, self.alpha)


@dataclass
class ScreeningResult:
    label: str
    confidences: dict[str, float]  # all classes, summing to 1
    explanations: dict[str, Explanation]  # by class; the predicted class by default
    image: np.ndarray = field(repr=False)  # the radiograph as read, at most DISPLAY_MAX_SIDE
    gate: GateVerdict | None = None  # the radiograph check's verdict (None: not checked)
    input_shape: tuple[int, int] | None = None  # (height, width) of the image as read
    logits: np.ndarray | None = field(default=None, repr=False)  # raw, before the temperature

    @property
    def cam(self) -> np.ndarray | None:
        return self.explanations[self.label].cam if self.label in self.explanations else None

    @property
    def overlay(self) -> np.ndarray | None:
        return self.explanations[self.label].overlay if self.label in self.explanations else None

    @property
    def scores(self) -> np.ndarray:
        """The probabilities as a vector in the model's label order."""
        return np.array(list(self.confidences.values()))

    def to_dict(self) -> dict:
        return {"task": "screening", "label": self.label, "confidences": self.confidences,
                **_common_dict(self)}


@dataclass
class DiagnosisResult:
    probabilities: dict[str, float]  # all 14 labels, in the registry's order
    thresholds: dict[str, float]
    findings: list[str]  # labels at or above their threshold, in the display order (`ranked`)
    explanations: dict[str, Explanation]  # by label
    image: np.ndarray = field(repr=False)
    gate: GateVerdict | None = None
    input_shape: tuple[int, int] | None = None
    logits: np.ndarray | None = field(default=None, repr=False)  # raw, before the temperature

    @property
    def scores(self) -> np.ndarray:
        return np.array(list(self.probabilities.values()))

    def to_dict(self) -> dict:
        return {"task": "diagnosis", "probabilities": self.probabilities,
                "thresholds": self.thresholds, "findings": self.findings, **_common_dict(self)}


Result = Union[ScreeningResult, DiagnosisResult]
GATE_MODES = ("refuse", "report", "off")


def _common_dict(result: "Result") -> dict:
    """What both tasks' results end with: the warnings (always a list), and the radiograph
    check's verdict where it ran."""
    return {"warnings": input_warnings(result.input_shape),
            **({"radiograph_check": result.gate.to_dict()} if result.gate else {})}


def input_warnings(shape: tuple[int, int] | None) -> list[str]:
    """What a reader of an answer must know about the image itself: a film under
    LOW_RESOLUTION_SIDE px was enlarged to the model's input, and the models were trained
    and tested mostly on larger ones (the diagnosis card reports its 64 px figures)."""
    if shape is None or min(shape) >= LOW_RESOLUTION_SIDE:
        return []
    height, width = shape
    return [f"Low resolution: the image is {width} x {height} px (under {LOW_RESOLUTION_SIDE} "
            "px on its shorter side). The model sees an enlarged blur; treat this answer as "
            "less reliable than one on a full-size radiograph."]
Explain = Union[str, Sequence[str]]


class Predictor:
    """Loads the models once; every method is safe to call from many threads.

    gate: what the radiograph check (diachestxr.gate) does before a model sees an image:
    "refuse" (raise NotARadiographError for what is not a frontal chest radiograph; the
    default), "report" (attach its verdict to each result, refuse nothing: `evaluate`), or
    "off" (models in training, which are validated on known radiographs)."""

    def __init__(self, tasks: Iterable[str] = TASKS, weights_dir: str | os.PathLike | None = None,
                 device: str | None = None, *, models: Iterable[ChestXRayNet] | None = None,
                 gate: str = "refuse", checker: RadiographGate | None = None) -> None:
        if gate not in GATE_MODES:
            raise ValueError(f"gate must be one of {GATE_MODES}, got {gate!r}")
        self.gate_mode = gate
        # checker: a radiograph check already loaded (the app's predictors share one)
        self.gate = (checker or RadiographGate.load(weights_dir)) if gate != "off" else None
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if models is None:
            loaded = [load_model(task, weights_dir) for task in tasks]
            for m in loaded:
                # channels_last: the layout oneDNN's fastest convolutions use (same results)
                m.model.to(self.device, memory_format=torch.channels_last)
        else:  # models built or trained in this process (training's validation, tests)
            loaded = [LoadedModel(m, WeightsSource("memory", "in-memory model")) for m in models]
        self.models: dict[str, LoadedModel] = {m.spec.task: m for m in loaded}
        self._split = {task: m.model.split() for task, m in self.models.items()}
        self._explainers = {task: HeadExplainer(head) for task, (_, head) in self._split.items()}

    @classmethod
    def from_models(cls, *models: ChestXRayNet, device: str | None = None,
                    gate: str = "off") -> "Predictor":
        """A Predictor over models already in memory (on their device); each carries its
        spec (`model.spec`)."""
        return cls(models=models, device=device or str(next(models[0].parameters()).device),
                   gate=gate)

    # ------------------------------------------------------------------ the one path
    def iter_predict(self, images: Sequence[ImageSource], task: str, *, explain: Explain = "default",
                     method: str = DEFAULT_METHOD, thresholds: float | Mapping[str, float] | None = None,
                     top_k: int = TOP_FINDINGS, alpha: float = DEFAULT_ALPHA,
                     batch_size: int = BATCH_SIZE, progress: bool = False,
                     names: Sequence[str] | None = None, refuse: bool | None = None
                     ) -> Iterator[Result]:
        """Results for `images` in order, computed `batch_size` images at a time.

        explain: "default" (screening: the predicted class; diagnosis: the `top_k` top-ranked
        labels), "all", "none", or a list of labels.
        method: the map method, one of diachestxr.explain.CAM_METHODS.
        An unreadable image raises ImageReadError naming it (by `names[i]` if given, else
        by its file name); with gate="refuse", an image that is not a frontal chest
        radiograph raises NotARadiographError (a subclass), and the batch stops there.
        refuse: this call's choice over the gate's mode (False: attach every verdict and
        refuse nothing, so a batch of many files goes on past a refused one).
        """
        model = self._model(task)
        spec = model.spec
        _check_options(method, alpha)
        thr = self.thresholds(thresholds) if spec.multilabel else None
        # the checkpoint's calibration (training.calibrate); thresholds are in its space
        temperature, covid19_threshold = model.config.temperature, model.config.covid19_threshold
        per_result = explain == "default"  # the default maps are known once a batch has run
        targets = [] if per_result else self._targets(spec, explain)
        trunk, head = self._split[task]
        model.eval()
        with tqdm(total=len(images), desc=f"{task}", unit="img", disable=not progress) as bar:
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                with profile.step("read"):
                    grays = [read_xray(im, names[start + i] if names else None)
                             for i, im in enumerate(chunk)]
                with profile.step("gate"):
                    verdicts = self._check(grays, chunk, names[start:] if names else None, refuse)
                with profile.step("model"), torch.no_grad():
                    x = torch.stack([eval_tensor(g, spec) for g in grays]).to(self.device)
                    activations = trunk(x.contiguous(memory_format=torch.channels_last))
                    logits = head(activations).float().cpu()
                probs = calibrated_probabilities(logits, spec.multilabel, temperature
                                                 ).numpy().astype(float)
                called = (None if spec.multilabel
                          else screening_predictions(probs, spec.labels, covid19_threshold))
                per_image = (_default_targets(spec, probs, called, thr, top_k) if per_result
                             else [targets] * len(grays))
                with profile.step("maps"):
                    maps = (self._explainers[task].maps(activations, per_image, spec.input_size,
                                                        method) if any(per_image) else [()] * len(grays))
                for i, gray in enumerate(grays):
                    display = _display_image(gray)
                    explanations = {spec.labels[target.category]: Explanation(
                        spec.labels[target.category], cam, display, alpha)
                        for target, cam in zip(per_image[i], maps[i])}
                    result = (_diagnosis(spec, probs[i], thr, explanations, display) if spec.multilabel
                              else _screening(spec, probs[i], int(called[i]), explanations, display))
                    result.gate, result.input_shape = verdicts[i], gray.shape[:2]
                    result.logits = logits[i].numpy().astype(float)
                    yield result
                bar.update(len(chunk))

    def predict(self, images: Sequence[ImageSource], task: str, **options) -> list[Result]:
        """`iter_predict` as a list (see there for the options)."""
        return list(self.iter_predict(images, task, **options))

    def probabilities(self, images: Sequence[ImageSource], task: str, batch_size: int = BATCH_SIZE,
                      progress: bool = False, names: Sequence[str] | None = None) -> np.ndarray:
        """(N, C) probabilities, no maps: softmax for screening, sigmoid for diagnosis, of
        the logits divided by the checkpoint's temperature (1 when it has none).
        What training's validation and bundling use; memory stays at one batch."""
        return self._rows(images, task, "scores", batch_size, progress, names)

    def logits(self, images: Sequence[ImageSource], task: str, batch_size: int = BATCH_SIZE,
               progress: bool = False, names: Sequence[str] | None = None) -> np.ndarray:
        """(N, C) raw logits, before the checkpoint's temperature (what training.calibrate
        fits it on); the same pass as `probabilities`."""
        return self._rows(images, task, "logits", batch_size, progress, names)

    def _rows(self, images, task: str, field: str, batch_size: int, progress: bool,
              names: Sequence[str] | None) -> np.ndarray:
        results = self.iter_predict(images, task, explain="none", names=names,
                                    batch_size=batch_size, progress=progress)
        return np.stack([getattr(r, field) for r in results]).astype(np.float64)

    def check(self, image: ImageSource, name: str | None = None) -> GateVerdict | None:
        """Read one image and run the radiograph check alone (no model): its verdict, or
        NotARadiographError / ImageReadError. None when the gate is off."""
        return self._check([read_xray(image, name)], [image], [name] if name else None)[0]

    def _check(self, grays: list[np.ndarray], sources: Sequence, names: Sequence[str] | None,
               refuse: bool | None = None):
        if self.gate is None:
            return [None] * len(grays)
        verdicts = self.gate.verdicts(grays)
        if self.gate_mode == "refuse" if refuse is None else refuse:
            for i, verdict in enumerate(verdicts):
                raise_if_refused(verdict, names[i] if names else source_name(sources[i]))
        return verdicts

    # ---------------------------------------------------------------- one image
    def screen(self, image: ImageSource, explain: Explain = "predicted",
               alpha: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD) -> ScreeningResult:
        """Classify one radiograph as COVID-19 / Pneumonia / Normal.

        explain: "predicted" (default), "all", "none", or a list of class names to map.
        """
        return self.predict([image], "screening", explain="default" if explain == "predicted" else explain,
                            alpha=alpha, method=method)[0]

    def diagnose(self, image: ImageSource, thresholds: float | Mapping[str, float] | None = None,
                 explain: Explain = "top", top_k: int = TOP_FINDINGS,
                 alpha: float = DEFAULT_ALPHA, method: str = DEFAULT_METHOD) -> DiagnosisResult:
        """Multi-label NIH ChestX-ray14 probabilities for one radiograph.

        thresholds: None (the checkpoint's calibrated per-label ones), one float for all, or
        a {label: threshold} mapping overriding some. explain: "top" (the `top_k` top-ranked
        labels), "all", "none", or a list of labels.
        """
        return self.predict([image], "diagnosis", explain="default" if explain == "top" else explain,
                            thresholds=thresholds, top_k=top_k, alpha=alpha, method=method)[0]

    # ------------------------------------------------------------------ helpers
    def _model(self, task: str) -> ChestXRayNet:
        if task not in self.models:
            raise RuntimeError(f"the {task} model is not loaded; create Predictor(tasks=[..., {task!r}])")
        return self.models[task].model

    @staticmethod
    def _targets(spec: ModelSpec, explain: Explain) -> list:
        """Map targets shared by every image of a batch (the default ones are per image)."""
        labels = spec.labels
        if explain == "none":
            return []
        wanted = labels if explain == "all" else _check_labels(explain, labels)
        return [class_target(labels.index(l)) for l in wanted]

    def thresholds(self, override: float | Mapping[str, float] | None = None) -> dict[str, float]:
        """The diagnosis thresholds: calibrated ones from the checkpoint, then `override`."""
        model = self._model("diagnosis")
        labels = model.spec.labels
        thr = {l: float(model.config.thresholds.get(l, DEFAULT_THRESHOLD)) for l in labels}
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
        self._model(task)  # a task that is not loaded raises the helpful error
        loaded = self.models[task]
        config = loaded.config
        return {"task": task, "arch": loaded.spec.arch, "source": loaded.source.kind,
                "location": loaded.source.public, "labels": list(loaded.spec.labels),
                "checkpoint_sha256": loaded.checkpoint_id,  # hashed once, when loaded
                # screening's call rule: COVID-19 from this probability (None: the argmax)
                "covid19_threshold": config.covid19_threshold,
                "operating_point": config.operating_point or None,
                "training_data": config.training_data,
                "headline_metrics": headline_metrics(config.test_metrics),
                "test_metrics": config.test_metrics,
                "held_out_hospitals": held_out_aurocs(config.leave_one_hospital_out),
                "outlook": outlook(config),
                "stranger_auroc": stranger_auroc(config),
                # diagnosis: each label's share of training radiographs (training.calibrate)
                "prevalence": dict(config.prevalence),
                "limitations": config.limitations}

    def operating_point(self, task: str) -> dict:
        """How the checkpoint's decision thresholds were chosen (e.g. diagnosis: the
        validation specificity each label's threshold keeps); {} when it does not say."""
        self._model(task)
        return dict(self.models[task].config.operating_point)

    def model_card(self, task: str) -> str:
        """The loaded checkpoint's model card (Markdown, as the Hub shows it)."""
        from .card import model_card

        self._model(task)
        return model_card(self.models[task].config)

    def close(self) -> None:
        """Nothing to release: Grad-CAM hooks live only inside each explain step."""

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_options(method: str, alpha: float) -> None:
    check_method(method)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay opacity must be between 0 and 1, got {alpha}")


def _default_targets(spec: ModelSpec, probs: np.ndarray, called: np.ndarray | None,
                     thresholds: Mapping[str, float] | None, top_k: int) -> list[list]:
    """Each image's default maps: screening, the called class's; diagnosis, those of the
    `top_k` labels first in the display ranking (`ranked`)."""
    if called is not None:
        return [[class_target(int(c))] for c in called]
    return [[class_target(spec.labels.index(l))
             for l in ranked(dict(zip(spec.labels, p)), thresholds)[:top_k]] for p in probs]


def _display_image(gray: np.ndarray) -> np.ndarray:
    """The image as results keep it: at most DISPLAY_MAX_SIDE on its long side, so a 49 MP
    upload does not make 49 MP overlays."""
    return shrink(gray, DISPLAY_MAX_SIDE)


def _screening(spec: ModelSpec, probs: np.ndarray, called: int, explanations: dict,
               image: np.ndarray) -> ScreeningResult:
    return ScreeningResult(label=spec.labels[called],
                           confidences={l: float(p) for l, p in zip(spec.labels, probs)},
                           explanations=explanations, image=image)


def _diagnosis(spec: ModelSpec, probs: np.ndarray, thr: dict[str, float], explanations: dict,
               image: np.ndarray) -> DiagnosisResult:
    probabilities = {l: float(p) for l, p in zip(spec.labels, probs)}
    return DiagnosisResult(probabilities=probabilities, thresholds=thr,
                           findings=findings_at(probabilities, thr),
                           explanations=explanations, image=image)


def ranked(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """The one display ranking of the diagnosis labels (the app's table, picker and gallery,
    the default maps, the CLI's --cam-dir, the API's order): by how far each probability
    sits above its own label's threshold, in log-odds. The findings come first, and a
    5 % score over a 4 % threshold outranks 51 % under 60 %: each label is read against its
    own operating point, not against the others' scales. With one threshold for every label
    it is the order of probability. Ties keep the order of `probabilities`."""
    def margin(label: str) -> float:
        return logit(probabilities[label]) - logit(thresholds[label])
    return sorted(probabilities, key=lambda l: -margin(l))


def findings_at(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """The diagnosis findings: the labels whose probability is at or above their threshold,
    in the display order (`ranked`). The one rule for a result and for re-thresholding
    stored probabilities (the web app's threshold controls)."""
    return [l for l in ranked(probabilities, thresholds) if probabilities[l] >= thresholds[l]]


def against_threshold(result: Mapping, label: str, digits: int = 0) -> tuple[str, str]:
    """A label's probability and its threshold as percentages with the same number of
    decimals, the fewest from `digits` that keep their order: a finding never reads below its
    threshold (29.9% against 30%), nor another label at or above it."""
    p, t = result["probabilities"][label], result["thresholds"][label]
    hit = label in result.get("findings", ())
    for d in range(digits, 5):
        shown_p, shown_t = round(p * 100, d), round(t * 100, d)
        if (shown_p >= shown_t) == hit:
            break
    return f"{shown_p:.{d}f}%", f"{shown_t:.{d}f}%"


def _check_labels(requested: Sequence[str], labels: Sequence[str]) -> list[str]:
    if isinstance(requested, str):
        requested = [requested]
    unknown = [l for l in requested if l not in labels]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; choose from {list(labels)}")
    return list(requested)
