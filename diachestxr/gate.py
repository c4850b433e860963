"""The radiograph gate: refuse what is not a frontal chest radiograph before a model sees it.

The two task models answer for any image (uniform noise is "COVID-19 1.00" to them), so every
entry point runs this check first. It is a small CNN of its own (0.1 M parameters, 128 px
grayscale, about a millisecond), trained by `training/train_gate.py` on the train-split
radiographs of ../shared/data against non-radiographs from pip packages and generated ones.
Its classes are kinds of input, so a refusal says what the image looks like; the score a user
sees is its probability of "radiograph". The threshold is chosen on the val split's
radiographs and travels with the weights in `weights/gate.json`, as a model's config does.
Two cheap rules run before it: a strip (aspect ratio beyond MAX_ASPECT) and an image with
almost no contrast are refused without asking the network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .io import ImageReadError
from .registry import GATE_FILES
from .transforms import resize_gray
from .weights import WeightsError, resolve_weights

log = logging.getLogger(__name__)

GATE_NAME = GATE_FILES.filename.split(".")[0]
KINDS = ("radiograph", "negative", "rotated", "partial", "document", "photo", "noise", "montage",
         "binary")
INPUT_SIZE = 128
# Chest radiographs are close to square (0.6-1.6 in ../shared/data); a long strip is a
# crop or a montage, and squashing it to a square would show the models a distorted chest.
MAX_ASPECT = 2.0
# The 1st-99th percentile spread (gray levels of 255) below which an image is "almost blank":
# a dark frame with a few bright pixels passes a min != max test but shows nothing.
MIN_CONTRAST = 10
WHY = {
    "negative": "it looks like a negative (inverted) radiograph, with dark bones; invert it "
                "(bones and heart bright, lungs dark) and upload it again",
    "rotated": "it looks rotated, tilted or upside down; upload the radiograph upright and "
               "straight (head at the top)",
    "partial": "it looks like a lateral (side) view or only part of a chest; the models read "
               "whole frontal (PA/AP) chest radiographs",
    "document": "it looks like a document or a screenshot; upload the radiograph itself, "
                "cropped to the image, not a page or an application window",
    "photo": "it looks like a photograph, not a radiograph",
    "noise": "it looks like noise or a pattern, not a radiograph",
    "montage": "it looks like several images side by side; upload one radiograph at a time",
    "binary": "it has only black and white, without the shades of gray of a radiograph (a "
              "thresholded copy or a photocopy); upload the original image",
}
ACCEPTS = "a frontal (PA or AP) chest radiograph"


class NotARadiographError(ImageReadError):
    """The image was read but is not a frontal chest radiograph; the message says why."""


@dataclass(frozen=True)
class GateVerdict:
    score: float  # the network's probability of a frontal chest radiograph (0..1); 0 by a rule
    kind: str  # the most likely kind (one of KINDS)
    threshold: float
    reason: str = ""  # why it was refused; empty when accepted
    by_rule: bool = False  # refused by a rule (strip, almost blank), without the network

    @property
    def accepted(self) -> bool:
        return not self.reason

    def message(self, name: str) -> str:
        """The refusal as users read it (empty when accepted)."""
        if self.accepted:
            return ""
        score = "" if self.by_rule else (f" (radiograph score {self.score:.2f}; the check "
                                         f"accepts {self.threshold:.2f} or more)")
        return f"{name}: not accepted as {ACCEPTS}: {self.reason}{score}"

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "threshold": self.threshold, "kind": self.kind,
                "accepted": self.accepted}


class GateNet(nn.Module):
    """Four stride-2 conv blocks, then a 4x4 average grid: the layout (two lungs side by side,
    text lines, a window's frame) matters as much as the texture."""

    def __init__(self, n_kinds: int = len(KINDS), width: int = 16):
        super().__init__()
        layers, c_in = [], 1
        for c_out in (width, width * 2, width * 4, width * 8):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(c_in * 16, n_kinds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def gate_tensor(gray: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """(1, size, size) float tensor: squashed to a square like the models' input, scaled to
    about zero mean and unit spread. Training builds its inputs with this same function."""
    small = resize_gray(gray, size)
    return torch.from_numpy((small.astype(np.float32) - 128.0) / 64.0)[None]


def _rule(gray: np.ndarray) -> tuple[str, str] | None:
    """The cheap refusals, before the network: (kind, reason) or None."""
    h, w = gray.shape
    if max(h, w) / min(h, w) > MAX_ASPECT:
        return "partial", (f"it is {w}x{h} pixels, a strip rather than a chest radiograph "
                           f"(at most {MAX_ASPECT:g}:1); upload the whole frontal radiograph")
    step = max(1, max(h, w) // 256)
    lo, hi = np.percentile(gray[::step, ::step], (1, 99))
    if hi - lo < MIN_CONTRAST:
        return "noise", (f"it is almost blank (the middle 98 % of its pixels span only "
                         f"{hi - lo:.0f} of 255 gray levels)")
    return None


class RadiographGate:
    """`check(gray, name)` returns a GateVerdict or raises NotARadiographError."""

    def __init__(self, net: GateNet, config: dict):
        self.net = net.eval()
        self.config = config
        self.threshold = float(config["threshold"])
        self.kinds = tuple(config["kinds"])
        self.input_size = int(config["input_size"])

    @classmethod
    def load(cls, weights_dir: str | Path | None = None) -> "RadiographGate":
        """The check from the first place that has it, as the models are resolved: weights_dir
        (when it holds one), the Hub (or its cache), the bundled one. A missing or damaged
        file is a WeightsError: the app reports it, never crashes."""
        from safetensors.torch import load_file

        weights_file, source = resolve_weights(GATE_FILES, weights_dir)
        files = weights_file, weights_file.with_name(GATE_FILES.config_filename)
        if not files[1].is_file():
            raise WeightsError(f"radiograph check weights missing: {files[1]}; "
                               "reinstall the package or train them with `python -m training.train_gate`")
        try:
            config = json.loads(files[1].read_text())
            net = GateNet(len(config["kinds"]), int(config.get("width", 16)))
            net.load_state_dict({k: v.float() for k, v in load_file(str(files[0])).items()})
        except Exception as e:  # noqa: BLE001 -- damaged JSON or safetensors, wrong shapes
            raise WeightsError(f"{files[0]}: the radiograph check's weights cannot be loaded ({e}); "
                               "reinstall the package") from None
        log.info("radiograph check loaded from %s", source)
        return cls(net, config)

    @torch.inference_mode()
    def verdicts(self, grays: Sequence[np.ndarray]) -> list[GateVerdict]:
        """One verdict per image (batched); refusals carry their reason."""
        ruled = [_rule(g) for g in grays]  # the rules first; the network sees the rest
        asked = [g for g, r in zip(grays, ruled) if r is None]
        probs = iter(self.net(torch.stack([gate_tensor(g, self.input_size) for g in asked]))
                     .float().softmax(1).numpy() if asked else [])
        out = []
        for rule in ruled:
            if rule:
                out.append(GateVerdict(0.0, rule[0], self.threshold, rule[1], by_rule=True))
                continue
            p = next(probs)
            score = float(p[self.kinds.index("radiograph")])
            if score >= self.threshold:
                kind, reason = "radiograph", ""
            else:
                kind = max((q, k) for q, k in zip(p, self.kinds) if k != "radiograph")[1]
                reason = WHY[kind]
            out.append(GateVerdict(score, kind, self.threshold, reason))
        return out

    def check(self, gray: np.ndarray, name: str = "image") -> GateVerdict:
        """The verdict for one image; raises NotARadiographError when it is refused."""
        verdict = self.verdicts([gray])[0]
        raise_if_refused(verdict, name)
        return verdict


def raise_if_refused(verdict: GateVerdict, name: str) -> None:
    if not verdict.accepted:
        raise NotARadiographError(verdict.message(name))
