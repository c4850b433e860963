"""Grad-CAM through pytorch-grad-cam, and heatmap overlays."""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

DEFAULT_ALPHA = 0.45  # heatmap opacity in overlays


class RankedOutputTarget:
    """Explain the output ranked `rank`-th by `key(outputs)` (0 = highest).

    Lets one batched forward pass serve both the probabilities and the maps of labels that
    are only known after that pass (the predicted class, the top findings): every copy of
    the image in the batch has the same outputs, and copy j explains the j-th ranked label.
    """

    def __init__(self, rank: int, key: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.rank, self.key = rank, key

    def index(self, model_output: torch.Tensor) -> int:
        score = self.key(model_output) if self.key else model_output
        return int(torch.argsort(score.detach(), descending=True)[self.rank])

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output[..., self.index(model_output)]


class CamExplainer:
    """One GradCAM object per model, built once and reused under a lock (its hooks keep
    per-call state, so concurrent calls on one model must not interleave)."""

    def __init__(self, model: torch.nn.Module, target_layer: torch.nn.Module) -> None:
        self.model = model
        self.cam = GradCAM(model=model, target_layers=[target_layer])
        self.lock = threading.Lock()

    def run(self, x: torch.Tensor, targets: Sequence[Callable]) -> tuple[torch.Tensor, np.ndarray]:
        """x: (3, S, S). Returns (logits (C,), maps (len(targets), S, S) in [0, 1]).

        With no targets, a plain forward pass (no gradients) gives the logits alone."""
        with self.lock:
            if not targets:
                with torch.no_grad():
                    return self.model(x.unsqueeze(0))[0].float(), np.zeros((0, *x.shape[1:]), np.float32)
            batch = x.unsqueeze(0).repeat(len(targets), 1, 1, 1)
            maps = self.cam(input_tensor=batch, targets=list(targets))
            logits = self.cam.outputs[0].detach().float()
        return logits, maps.astype(np.float32)

    def close(self) -> None:
        self.cam.__exit__(None, None, None)  # removes the hooks


def class_target(index: int) -> ClassifierOutputTarget:
    return ClassifierOutputTarget(index)


def resize_map(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A model-input-sized map back onto the original image (the transform squashes the
    whole image, so a plain resize maps every pixel back to where it came from)."""
    return np.clip(cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def overlay(gray: np.ndarray, cam: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """(H, W) uint8 radiograph + (H, W) map in [0, 1] -> (H, W, 3) uint8 RGB heatmap overlay."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay opacity must be between 0 and 1, got {alpha}")
    rgb = np.repeat((gray.astype(np.float32) / 255.0)[..., None], 3, axis=2)
    return show_cam_on_image(rgb, cam, use_rgb=True, image_weight=1.0 - alpha)
