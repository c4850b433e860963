"""One ModelSpec per task: everything that must travel with a model (timm-style)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .labels import NIH_LABELS, SCREENING_CLASSES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The Hub repo that holds the published checkpoints. Deployments point elsewhere with
# DIACHESTXR_HUB_REPO (and DIACHESTXR_HUB_REVISION): docs/deployment.md, "Deploy your own Space".
DEFAULT_HUB_REPO = "diachestxr/diachestxr-models"
DEFAULT_HUB_REVISION = "v1"  # a tag, so a push to main never changes a deployed app silently

# Said wherever a result is shown or kept: the app, its API answers, the PDF report.
DISCLAIMER = "Research demo — not for clinical use."


# Under this many px on its shorter side an upload's answer carries a low-resolution warning
LOW_RESOLUTION_SIDE = 128

# The Grad-CAM target layer of each architecture (dotted module name in ChestXRayNet).
CAM_LAYERS = {
    "alexnet": "features.11",  # ReLU after the last conv: 13x13 at 224 px
    "densenet121": "features_relu",  # the (not in-place) ReLU after features.norm5: 7x7
}
ARCH_NAMES = {"alexnet": "AlexNet", "densenet121": "DenseNet-121"}  # as people write them


class HubFiles:
    """Where a checkpoint's two files are found (diachestxr.weights.resolve_weights): their
    names, bundled and on the Hub, and the Hub repo and revision (the environment first)."""
    task: str
    filename: str  # safetensors file name, bundled and on the Hub; the config is <stem>.json
    hub_repo: str
    hub_revision: str

    @property
    def config_filename(self) -> str:
        return self.filename.rsplit(".", 1)[0] + ".json"

    @property
    def resolved_hub_repo(self) -> str:
        return os.environ.get("DIACHESTXR_HUB_REPO") or self.hub_repo

    @property
    def resolved_hub_revision(self) -> str:
        return os.environ.get("DIACHESTXR_HUB_REVISION") or self.hub_revision


@dataclass(frozen=True)
class ModelSpec(HubFiles):
    task: str
    arch: str
    labels: tuple[str, ...]
    multilabel: bool
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    cam_layer: str  # dotted module name of the Grad-CAM target layer
    filename: str  # safetensors file name, bundled and on the Hub; the config is <stem>.json
    # CLAHE on the resized radiograph, in training and inference alike: hospitals' exposure
    # styles look more alike (a shortcut less); stored in the checkpoint config
    equalize: bool = False
    # Crop to the body before resizing, in training and inference alike: black frames, and
    # markers and text outside the body, go; a child's small body no longer sits in a wide frame
    crop: bool = False
    hub_repo: str = DEFAULT_HUB_REPO
    hub_revision: str = DEFAULT_HUB_REVISION


@dataclass(frozen=True)
class GateFiles(HubFiles):
    task: str = "gate"  # the radiograph check (diachestxr.gate), resolved as the models are
    filename: str = "gate.safetensors"
    hub_repo: str = DEFAULT_HUB_REPO
    hub_revision: str = DEFAULT_HUB_REVISION


GATE_FILES = GateFiles()


SPECS: dict[str, ModelSpec] = {
    "screening": ModelSpec(
        task="screening",
        arch="alexnet",
        labels=SCREENING_CLASSES,
        multilabel=False,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        cam_layer=CAM_LAYERS["alexnet"],
        filename="screening.safetensors",
    ),
    "diagnosis": ModelSpec(
        task="diagnosis",
        arch="densenet121",
        labels=NIH_LABELS,
        multilabel=True,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        cam_layer=CAM_LAYERS["densenet121"],
        filename="diagnosis.safetensors",
    ),
}

TASKS: tuple[str, ...] = tuple(SPECS)

# Class activation map methods (pytorch-grad-cam) that work on the head alone: they need only
# the activations and gradients at the target layer (see diachestxr.explain).
MAP_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam")
DEFAULT_MAP_METHOD = "gradcam"
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
                "hirescam": "HiResCAM", "layercam": "LayerCAM"}

# Images per forward pass by default (Predictor, the CLI, evaluate). Measured on a 2-core CPU
# (benchmarks/batch_size.py): DenseNet121 throughput peaks at 8 and falls above it as the
# activations outgrow the cache (58.6 img/s at 8, 30.3 at 32 without maps).
BATCH_SIZE = 8

# Overlays written as PNG (the app's files, the CLI's --cam-dir): zlib level 1 encodes ~4x
# faster than Pillow's default 6 for a slightly larger file.
PNG_COMPRESS_LEVEL = 1


def get_spec(task: str) -> ModelSpec:
    try:
        return SPECS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None
