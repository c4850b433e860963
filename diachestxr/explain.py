"""Class activation maps through pytorch-grad-cam, explained on the model's head only, and
heatmap overlays.

A gradient-based map of layer L needs the activations A at L and the gradient of the class
score with respect to A. That gradient depends only on the layers after L, so the network is
run once up to L (`trunk`, no gradients) and pytorch-grad-cam explains the small `head`
(ReLU/pool -> [BatchNorm] -> Linear) on the cached activations: k maps cost k rows of a
1024x7x7 batch through a linear layer, not k backward passes through a DenseNet. The maps are
the ones pytorch-grad-cam computes on the whole network (tests check this within 1e-4).

Hooks exist only inside the `with` block of each call, as pytorch-grad-cam intends.
pytorch-grad-cam is imported on the first map, not with this module: its package imports
scikit-learn, scipy and matplotlib (about 1.5 s), which a process that makes no map (the CLI
without --cam-dir, `Predictor.probabilities`) should not pay for.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from .registry import DEFAULT_MAP_METHOD, MAP_METHODS

DEFAULT_ALPHA = 0.45  # heatmap opacity in overlays

# Methods that need only activations and gradients at the target layer, so they work on the
# head alone. (Score-CAM, Ablation-CAM and the like perturb the *input* and do not.) Their
# pytorch-grad-cam classes: cam_class(name).
CAM_METHODS: tuple[str, ...] = MAP_METHODS
_CAM_CLASSES = ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM")
DEFAULT_METHOD = DEFAULT_MAP_METHOD


def check_method(method: str) -> str:
    if method not in CAM_METHODS:
        raise ValueError(f"unknown map method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    return method


def cam_class(method: str) -> type:
    """The pytorch-grad-cam class of a map method (imports pytorch-grad-cam on first use)."""
    import pytorch_grad_cam

    return getattr(pytorch_grad_cam, _CAM_CLASSES[CAM_METHODS.index(check_method(method))])


def class_target(index: int):
    """pytorch-grad-cam's target for output `index`."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return ClassifierOutputTarget(index)


class HeadExplainer:
    """Maps for a model split at its Grad-CAM layer (`ChestXRayNet.split()`)."""

    def __init__(self, head: torch.nn.Module) -> None:
        self.head = head
        # pytorch-grad-cam zeroes and accumulates the head's parameter gradients: calls on
        # one head must not interleave (the trunk, where the time goes, runs outside it)
        self.lock = threading.Lock()

    def maps(self, activations: torch.Tensor, targets: Sequence[Sequence[Callable]],
             size: int, method: str = DEFAULT_METHOD) -> list[np.ndarray]:
        """activations: (N, C, h, w) at the cut; targets: one list per image. Returns, per
        image, (len(targets[i]), size, size) float32 maps in [0, 1]: exactly what
        pytorch-grad-cam gives for the whole network at input size `size`."""
        counts = [len(t) for t in targets]
        if not sum(counts):
            return [np.zeros((0, size, size), np.float32) for _ in counts]
        rows = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        batch = activations.detach()[rows].float().requires_grad_(True)
        flat = [t for per_image in targets for t in per_image]
        # A fresh tap per call: its hooks belong to this call alone and go with the block.
        tap = torch.nn.Identity()
        from pytorch_grad_cam.utils.image import scale_cam_image

        with self.lock, cam_class(method)(
                model=torch.nn.Sequential(tap, self.head), target_layers=[tap]) as cam:
            small = cam(input_tensor=batch, targets=flat)  # (sum k, h, w), min-max scaled
        # The rest of pytorch-grad-cam's pipeline on the whole network: scale to the input
        # size, then min-max again (bilinear resizing moves the extremes).
        full = scale_cam_image(scale_cam_image(small, (size, size)))
        return np.split(full.astype(np.float32), np.cumsum(counts)[:-1])


CENTRAL_MARGIN = 0.1  # central_mass: the box leaves out this share of each side


def central_mass(cam: np.ndarray, margin: float = CENTRAL_MARGIN) -> float | None:
    """The share of a map's mass inside the image's central box (the middle 80 % of width
    and height by default, 64 % of the area, where a frontal chest radiograph has the
    lungs), or None for an empty map. A map spread evenly scores 0.64; one drawn to the
    borders, corners and burnt-in markers scores less."""
    total = float(cam.sum())
    if total <= 0.0:
        return None
    h, w = cam.shape
    return float(cam[int(margin * h):h - int(margin * h), int(margin * w):w - int(margin * w)].sum()) / total


def resize_map(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A model-input-sized map back onto the image (the transform squashes the whole image,
    so a plain resize maps every pixel back to where it came from)."""
    return np.clip(cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def overlay(gray: np.ndarray, cam: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """(H, W) uint8 radiograph + a map in [0, 1] (any size; resized to the image) ->
    (H, W, 3) uint8 RGB heatmap overlay."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay opacity must be between 0 and 1, got {alpha}")
    rgb = np.repeat((gray.astype(np.float32) / 255.0)[..., None], 3, axis=2)
    if float(cam.max()) <= 0.0:
        # An empty map: the colour map would paint the whole image its "cold" blue, which
        # reads as a finding of its own. Show the radiograph as it is; callers say "empty".
        return np.rint(rgb * 255).astype(np.uint8)
    if cam.shape != gray.shape:
        cam = resize_map(cam, *gray.shape)
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(rgb, cam, use_rgb=True, image_weight=1.0 - alpha)
