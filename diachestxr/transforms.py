"""Canonical grayscale array -> model tensor, for inference and training alike."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from .registry import ModelSpec

# Training images are cached at this multiple of the input size so random crops have margin.
TRAIN_CACHE_SCALE = 256 / 224


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """Squash to size x size: the models were trained on whole, un-cropped radiographs."""
    interp = cv2.INTER_AREA if min(gray.shape) >= size else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)


CLAHE_CLIP = 2.0  # contrast limit of the adaptive histogram equalisation (8x8 tiles)


def equalize(gray: np.ndarray) -> np.ndarray:
    """CLAHE of a (H, W) uint8 radiograph (spec.equalize): local contrast made alike across
    detectors and exposure settings. Applied after resizing, by both transforms below."""
    return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(8, 8)).apply(gray)


BODY_SIDE = 256  # the body outline is found on a copy this large: the same box at any resolution
BODY_MIN_AREA = 0.3  # a "body" smaller than this share of the image is not trusted: no crop
BODY_MARGIN = 0.03  # kept around the body's box, as a share of each side


def crop_to_body(gray: np.ndarray) -> np.ndarray:
    """The bounding box of the body (spec.crop): the largest bright region after Otsu's
    threshold on a blurred copy, plus a small margin. Black frames, and markers and text
    outside the body, are cut away; without a clear body the image is returned whole."""
    h, w = gray.shape
    s = BODY_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    _, mask = cv2.threshold(cv2.GaussianBlur(small, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return gray
    x, y, bw, bh = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]
    if bw * bh < BODY_MIN_AREA * small.shape[0] * small.shape[1]:
        return gray
    mx, my = BODY_MARGIN * small.shape[1], BODY_MARGIN * small.shape[0]
    x0, y0 = max(0, int((x - mx) / s)), max(0, int((y - my) / s))
    x1, y1 = min(w, int(np.ceil((x + bw + mx) / s))), min(h, int(np.ceil((y + bh + my) / s)))
    return gray[y0:y1, x0:x1]


def _normalize(x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """(..., 1, H, W) float in [0, 1] -> (..., 3, H, W) normalised like ImageNet inputs."""
    x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    mean = torch.tensor(spec.mean, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype).view(3, 1, 1)
    return (x - mean) / std


def eval_tensor(gray: np.ndarray, spec: ModelSpec) -> torch.Tensor:
    """(H, W) uint8 -> (3, S, S) float tensor, S = spec.input_size."""
    small = resize_gray(crop_to_body(gray) if spec.crop else gray, spec.input_size)
    if spec.equalize:
        small = equalize(small)
    return _normalize(torch.from_numpy(small).float().div_(255).unsqueeze(0), spec)


class Augment(NamedTuple):
    """How strongly training varies an image: crop scale range, rotation degrees, shift,
    brightness/contrast, gamma range, probability of masking the borders, probability of
    a low-resolution round trip."""
    crop: tuple[float, float]
    degrees: float
    shift: float
    jitter: float
    gammas: tuple[float, float]
    borders: float = 0.0
    lowres: float = 0.0
    film: float = 0.0  # probability of film_artifacts (another hospital's scan, labels, exposure)


# "light" lets a DenseNet fit 1,200 images in a CPU budget; "lowres" adds a round trip
# through 1/4-3/4 of the input size, as a downsized or re-saved upload arrives; "borders" is
# for the screening model, whose hospitals differ in what lies along the image border
# (markers, text, collimation, black frames): masked at random, the border stops telling one
# hospital (and so one class) from another; "contrastive" makes the two views of
# self-supervised pre-training (training/pretrain_ssl.py) differ enough to be a task;
# "hospital" adds film_artifacts: what films from hospitals outside the training data show.
AUGMENT = {
    "none": None,
    "light": Augment((0.85, 1.0), 5, 0.02, 0.15, (0.85, 1.2)),
    "lowres": Augment((0.85, 1.0), 5, 0.02, 0.15, (0.85, 1.2), lowres=0.5),
    "default": Augment((0.65, 1.0), 10, 0.04, 0.3, (0.7, 1.4)),
    "borders": Augment((0.65, 1.0), 10, 0.04, 0.3, (0.7, 1.4), borders=0.7),
    "hospital": Augment((0.65, 1.0), 10, 0.04, 0.3, (0.7, 1.4), borders=0.5, film=0.6),
    "contrastive": Augment((0.35, 1.0), 10, 0.05, 0.4, (0.6, 1.6), borders=0.3, lowres=0.3),
}
MAX_BORDER = 0.15  # a masked band covers up to this share of the side


def train_transform(spec: ModelSpec, strength: str = "default"):
    """Augmentation for radiographs: mild crops, rotation, shift, exposure changes.

    No horizontal flips (the heart's side is diagnostic) and no colour jitter beyond
    brightness/contrast (radiographs are grayscale). Input: (1, H, W) uint8 tensor cached at
    TRAIN_CACHE_SCALE x input size; output: (3, S, S) float tensor. strength "none" gives
    the eval transform's centre view (the whole image, resized).
    """
    if strength not in AUGMENT:
        raise ValueError(f"unknown augmentation {strength!r}; choose one of {', '.join(AUGMENT)}")
    def prepared(img: torch.Tensor) -> torch.Tensor:  # the cached image, cropped and equalised if asked
        if not (spec.crop or spec.equalize):
            return img
        gray = img[0].numpy()
        if spec.crop:  # squashed back to the cached square, as eval_tensor squashes the crop
            gray = resize_gray(crop_to_body(gray), gray.shape[0])
        return torch.from_numpy(np.ascontiguousarray(equalize(gray) if spec.equalize else gray)).unsqueeze(0)

    if AUGMENT[strength] is None:
        resize = v2.Resize((spec.input_size, spec.input_size), antialias=True)
        return lambda img: _normalize(resize(prepared(img)).float().div_(255), spec)
    a = AUGMENT[strength]
    augment = v2.Compose([
        v2.RandomResizedCrop(spec.input_size, scale=a.crop, ratio=(0.8, 1.25), antialias=True),
        v2.RandomAffine(degrees=a.degrees, translate=(a.shift, a.shift), scale=(0.95, 1.05)),
        v2.ColorJitter(brightness=a.jitter, contrast=a.jitter),
        v2.ToDtype(torch.float32, scale=True),
    ])

    def apply(img: torch.Tensor) -> torch.Tensor:
        if a.film and float(torch.rand(1)) < a.film:  # before CLAHE, as a real film's would be
            rng = np.random.default_rng(int(torch.randint(2**31, (1,))))  # torch's seed rules
            img = torch.from_numpy(film_artifacts(rng, img[0].numpy())).unsqueeze(0)
        x = augment(prepared(img))
        if a.lowres and float(torch.rand(1)) < a.lowres:
            x = low_resolution(x)
        # random gamma: exposure and detector response differ between hospitals
        gamma = float(torch.empty(1).uniform_(*a.gammas))
        x = x.clamp_(0, 1).pow_(gamma)
        if a.borders and float(torch.rand(1)) < a.borders:
            x = mask_borders(x)
        return _normalize(x, spec)

    return apply


def low_resolution(x: torch.Tensor) -> torch.Tensor:
    """Shrink a (C, S, S) image to a random 1/4-3/4 of its side and enlarge it back: the
    detail a small or re-saved copy of a radiograph has lost."""
    side = x.shape[-1]
    small = int(torch.randint(side // 4, 3 * side // 4 + 1, (1,)))
    x = torch.nn.functional.interpolate(x[None], size=(small, small), mode="area")
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear",
                                           align_corners=False)[0]


def mask_borders(x: torch.Tensor) -> torch.Tensor:
    """Fill a band of random width (0 to MAX_BORDER of the side) along each edge of a
    (C, H, W) image in [0, 1] with one random gray level."""
    h, w = x.shape[-2:]
    top, bottom = (int(float(torch.rand(1)) * MAX_BORDER * h) for _ in range(2))
    left, right = (int(float(torch.rand(1)) * MAX_BORDER * w) for _ in range(2))
    fill = float(torch.rand(1))
    x[..., :top, :] = fill
    x[..., h - bottom:, :] = fill
    x[..., :, :left] = fill
    x[..., :, w - right:] = fill
    return x


# Burnt-in text of real films: side markers, projection and position labels.
FILM_LABELS = ("R", "L", "PA", "AP", "PA ERECT", "AP PORTABLE", "SUPINE", "ERECT", "PORTABLE",
               "AP SITTING", "12/03/2019")


def letterbox(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """The scan's letterbox: a dark (sometimes light) band of 5-35 % of the upload along one
    or two sides, squashed with the film as the models squash every upload."""
    h, w = gray.shape
    band = int(rng.integers(0, 40)) if rng.random() < 0.8 else int(rng.integers(200, 256))
    pads = [0, 0, 0, 0]  # top, bottom, left, right
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        share = rng.uniform(0.05, 0.35)  # of the upload's side
        pads[side] = int(share / (1 - share) * (h if side < 2 else w))
    out = cv2.copyMakeBorder(gray, *pads, cv2.BORDER_CONSTANT, value=band)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def in_frame(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """A film that does not fill the frame: a dark margin of 3-15 % all round."""
    h, w = gray.shape
    m = [int(rng.uniform(0.03, 0.15) * s) for s in (h, h, w, w)]
    out = cv2.copyMakeBorder(gray, *m, cv2.BORDER_CONSTANT, value=int(rng.integers(0, 30)))
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def hard_exposure(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """High contrast (the darks clipped to black around the shoulders, some lights to white)
    and a strong gamma."""
    x = gray.astype(np.float32) / 255
    lo, hi = rng.uniform(0.0, 0.3), rng.uniform(0.75, 1.0)
    x = np.clip((x - lo) / (hi - lo), 0, 1) ** rng.uniform(0.5, 2.0)
    return (x * 255).astype(np.uint8)


def burnt_labels(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """One to three burnt-in labels: white boxes with dark text ("PA ERECT") or white letters
    ("R"), most near the top or bottom edge."""
    from PIL import Image, ImageDraw, ImageFont

    pil = Image.fromarray(gray)
    draw = ImageDraw.Draw(pil)
    h, w = gray.shape
    for _ in range(int(rng.integers(1, 4))):
        text = str(rng.choice(FILM_LABELS))
        size = max(6, int(min(h, w) * rng.uniform(0.03, 0.08)))
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + size // 2, bottom - top + size // 2
        x, y = int(rng.integers(0, max(1, w - tw))), int(rng.integers(0, max(1, h - th)))
        if rng.random() < 0.7:  # near the top or the bottom edge
            edge = int(rng.integers(0, max(1, h // 6)))
            y = edge if rng.random() < 0.5 else max(0, h - th - edge)
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + tw, y + th), fill=int(rng.integers(220, 256)))
            draw.text((x + size // 4 - left, y + size // 4 - top), text,
                      fill=int(rng.integers(0, 40)), font=font)
        else:
            draw.text((x - left, y - top), text, fill=int(rng.integers(220, 256)), font=font)
    return np.asarray(pil).copy()


# What films from hospitals outside the training data show and ours rarely do, with the
# probability film_artifacts applies each (in this order: the frame, then the exposure of
# the whole upload, then labels printed on top).
FILM_ARTIFACTS = {"letterbox": (letterbox, 0.5), "in_frame": (in_frame, 0.3),
                  "hard_exposure": (hard_exposure, 0.5), "burnt_labels": (burnt_labels, 0.6)}


def film_artifacts(rng: np.random.Generator, gray: np.ndarray, every: bool = False) -> np.ndarray:
    """A (H, W) uint8 radiograph as a hospital outside the training data may send it (same
    size out): each of FILM_ARTIFACTS at random (every=True: all of them, as reports test). The screening model trains on these (the
    "hospital" augmentation) so that they do not tell one class from another, and the
    radiograph gate learns them as radiographs, not documents or photos (training/gate_data.py)."""
    for artifact, p in FILM_ARTIFACTS.values():
        if every or rng.random() < p:
            gray = artifact(rng, gray)
    return gray
