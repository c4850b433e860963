"""Build the two networks. No file or network I/O unless ImageNet weights are asked for.

Both share one shape: a torchvision convolutional backbone (`features`, keys compatible with
torchvision's ImageNet checkpoints) -> global average pool -> dropout -> linear head.

Why a compact head for AlexNet: the stock 9216->4096->4096 classifier holds 55M of AlexNet's
61M parameters (a 228 MB checkpoint) for a 3-class output and overfits a few thousand
images; pooling the 256 conv channels into Linear(256, 3) keeps the checkpoint at ~10 MB
(fp32) and the transferable part (the conv features) intact.

Why ReLUs are not in-place: Grad-CAM hooks the activations, and an in-place ReLU after the
hooked layer (DenseNet's norm5, AlexNet's features) rewrites them during backward.

The model carries its spec (`model.spec`, timm's "the config travels with the model") and
its checkpoint config (`model.config`, a diachestxr.config.CheckpointConfig: thresholds,
metrics; a new network's describes its spec alone): a model and the preprocessing or labels
of another cannot be paired by mistake.
`model.split()` cuts it at the Grad-CAM layer, so maps are explained on the small head
(see diachestxr.explain).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .config import CheckpointConfig
from .registry import ModelSpec, get_spec


class ChestXRayNet(nn.Module):
    """features -> (ReLU) -> global average pool -> dropout -> linear; outputs logits."""

    def __init__(self, features: nn.Module, num_features: int, num_outputs: int,
                 final_relu: bool, head_norm: bool, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = features
        # DenseNet's features end in a BatchNorm; torchvision applies relu in forward().
        self.features_relu = nn.ReLU(inplace=False) if final_relu else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        # AlexNet has no normalisation layer: its pooled features are tiny at initialisation
        # (std ~0.03) and training from scratch stalls at chance; a BatchNorm on the pooled
        # features rescales them (and the gradients flowing back into the backbone).
        self.head_norm = nn.BatchNorm1d(num_features) if head_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_outputs)

        self.spec: ModelSpec | None = None  # set by build_model
        self.config: CheckpointConfig | None = None  # set by build_model, then by diachestxr.weights

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled backbone features (N, num_features) the head classifies."""
        return torch.flatten(self.pool(self.features_relu(self.features(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.head_norm(self.embed(x))))

    def split(self) -> tuple[nn.Sequential, nn.Sequential]:
        """(trunk, head) sharing this model's modules, cut at the spec's Grad-CAM layer:
        trunk(x) is that layer's output and head(trunk(x)) == self(x). A Grad-CAM map needs
        only the gradient at the cut, which depends only on the head."""
        tail = [self.pool, nn.Flatten(1), self.head_norm, self.dropout, self.classifier]
        if self.spec.cam_layer == "features_relu":  # DenseNet: after all of `features`
            return nn.Sequential(self.features, self.features_relu), nn.Sequential(*tail)
        prefix, index = self.spec.cam_layer.split(".")  # AlexNet: inside `features`
        if prefix != "features":
            raise ValueError(f"cannot split at {self.spec.cam_layer!r}")
        cut = int(index) + 1
        return (nn.Sequential(*self.features[:cut]),
                nn.Sequential(*self.features[cut:], self.features_relu, *tail))


def _no_inplace(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return module


def build_model(spec: ModelSpec | str, imagenet: bool = False) -> ChestXRayNet:
    """A network for `spec` with random weights, or ImageNet conv features if `imagenet`
    (downloads torchvision's weights: only for training on a machine that is online)."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    n = len(spec.labels)
    if spec.arch == "alexnet":
        weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1 if imagenet else None
        features = torchvision.models.alexnet(weights=weights).features
        if not imagenet:  # torchvision leaves AlexNet at PyTorch's default (shrinking) init
            for m in features.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        model = ChestXRayNet(_no_inplace(features), 256, n, final_relu=False, head_norm=True,
                             dropout=0.3)
    elif spec.arch == "densenet121":
        weights = torchvision.models.DenseNet121_Weights.IMAGENET1K_V1 if imagenet else None
        features = torchvision.models.densenet121(weights=weights).features
        model = ChestXRayNet(_no_inplace(features), 1024, n, final_relu=True, head_norm=False,
                             dropout=0.2)
    else:
        raise ValueError(f"unknown architecture {spec.arch!r}")
    model.spec = spec
    model.config = CheckpointConfig.for_spec(spec)
    return model
