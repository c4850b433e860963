"""Examples for the radiograph gate (diachestxr.gate): radiographs and the kinds of
non-radiograph a public demo receives, drawn at random.

Positives are the radiographs of ../shared/data, varied the way real uploads vary (exposure,
borders, burnt-in markers, low resolution, JPEG, small tilts). Negatives come from images that
ship with pip packages (scikit-image, scikit-learn, matplotlib sample data) and from generators:
rendered text pages, application screenshots (some with a radiograph inside), noise, gradients
and patterns, negatives (inverted radiographs), rotated ones, crops and lateral-view proxies.

Held-out sets use other sources: other photos, other fonts, val/test radiographs, other seeds
(`split="test"`), so the reported catch rates are not on images the gate trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from diachestxr.gate import KINDS
from diachestxr.transforms import film_artifacts

SIDE = 192  # examples are drawn at this size; the gate squashes them to its input size
FONT_DIRS = ("/usr/share/fonts/truetype",)
WORDS = ("patient report lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         "tempor incididunt ut labore et dolore magna aliqua results findings impression chest "
         "radiograph history comparison technique file edit view help settings upload submit "
         "cancel download share 2024 12.5 mg/dL total page invoice name date signature").split()


# ------------------------------------------------------------------------------ sources
def package_photos(split: str) -> list[np.ndarray]:
    """Grayscale photos and other pictures from pip packages: scikit-image's for training;
    scikit-learn's, matplotlib's and an MRI slice held out for the test."""
    images = []
    if split == "train":
        import skimage.data as sd

        for name in ("astronaut", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
                     "brick", "hubble_deep_field", "immunohistochemistry", "moon", "rocket",
                     "retina", "cell", "clock", "microaneurysms", "horse", "logo", "colorwheel",
                     "shepp_logan_phantom", "cat"):
            try:
                images.append(_gray(getattr(sd, name)()))
            except Exception:  # noqa: BLE001 -- an image that needs a download is skipped
                continue
        faces = np.load(Path(sd.__file__).parent / "lfw_subset.npy")
        images += [_gray(f) for f in faces[:30]]  # tiny faces: a few, not most of the photos
    else:
        import gzip

        import matplotlib
        from sklearn.datasets import load_sample_images

        images += [_gray(im) for im in load_sample_images().images]
        sample = Path(matplotlib.get_data_path()) / "sample_data"
        images += [_gray(np.asarray(Image.open(sample / n))) for n in
                   ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")]
        mri = np.frombuffer(gzip.open(sample / "s1045.ima.gz").read(), np.uint16).reshape(256, 256)
        images.append(_gray(mri))
    return images


def _gray(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY)
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        arr = (255 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-6)).astype(np.uint8)
    return arr


def fonts(split: str) -> list[str]:
    """TrueType fonts on this machine: DejaVu for training, the rest held out (on a machine
    with DejaVu only, the held-out documents reuse it: the report is then less strict)."""
    found = sorted(str(p) for d in FONT_DIRS if os.path.isdir(d)
                   for p in Path(d).rglob("*.ttf"))
    train = [f for f in found if "dejavu" in f.lower()]
    return train if split == "train" else [f for f in found if f not in train] or train


def _font(rng: np.random.Generator, font_files: list[str], size: int) -> ImageFont.FreeTypeFont:
    if font_files and rng.random() < 0.85:
        return ImageFont.truetype(font_files[rng.integers(len(font_files))], size)
    return ImageFont.load_default(size=size)


# --------------------------------------------------------------------- radiograph variants
def vary_radiograph(rng: np.random.Generator, img: np.ndarray, side: int = SIDE) -> np.ndarray:
    """A radiograph as users upload them: still a frontal chest radiograph."""
    h, w = img.shape
    # crop (scale 0.75-1) and a small tilt
    s = rng.uniform(0.75, 1.0)
    ch, cw = int(h * np.sqrt(s) * rng.uniform(0.92, 1.08)), int(w * np.sqrt(s))
    ch, cw = min(ch, h), min(cw, w)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = img[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(out), (side, side), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        m = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-10, 10), 1.0)
        out = cv2.warpAffine(out, m, (side, side), borderMode=cv2.BORDER_CONSTANT,
                             borderValue=int(rng.choice([0, int(out[0, 0])])))
    out = _exposure(rng, out)
    if rng.random() < 0.6:  # letterbox, a film inside the frame, hard exposure, labels
        out = film_artifacts(rng, out)
    return _degrade(rng, out)


def _exposure(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.75, 1.25) + rng.uniform(-0.12, 0.12), 0, 1) ** rng.uniform(0.6, 1.6)
    out = (x * 255).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.createCLAHE(clipLimit=rng.uniform(1.5, 4.0), tileGridSize=(8, 8)).apply(out)
    return out


def _degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    side = img.shape[0]
    if rng.random() < 0.25:  # low resolution, scaled back up
        small = int(rng.integers(48, 128))
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA),
                         (side, side), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(2, 8), img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 90))])
        img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return img


# ---------------------------------------------------------------------- negative kinds
TILTED, TOP_OR_BOTTOM = 4, 3  # the modes of rotated() and partial() that reports single out
def negative(rng, pool):
    return 255 - vary_radiograph(rng, pool[rng.integers(len(pool))])


def rotated(rng, pool, mode: int | None = None):
    """Turned by 90, 180 or 270 degrees, flipped upside down, or tilted by 20-35 degrees (a
    radiograph photographed or scanned askew; real uploads tilt by at most ~10)."""
    img = vary_radiograph(rng, pool[rng.integers(len(pool))])
    choice = rng.integers(5) if mode is None else mode
    if choice == TILTED:
        angle = rng.uniform(20, 35) * rng.choice([-1, 1])
        m = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), angle, rng.uniform(0.8, 1.1))
        return cv2.warpAffine(img, m, (SIDE, SIDE), borderMode=cv2.BORDER_CONSTANT,
                              borderValue=int(rng.choice([0, int(rng.integers(256))])))
    return np.ascontiguousarray(np.rot90(img, int(choice) + 1) if choice < 3 else img[::-1])


def partial(rng, pool, mode: int | None = None):
    """Lateral-view proxies and crops: a vertical strip, one half (one lung and the spine) or
    the top or bottom of the film stretched to the frame, or a close-up of a small region."""
    img = pool[rng.integers(len(pool))]
    h, w = img.shape
    mode = rng.integers(4) if mode is None else mode
    if mode == TOP_OR_BOTTOM:  # the top or bottom 30-45 % of the film, stretched to the frame
        ch = int(h * rng.uniform(0.3, 0.45))
        crop = img[:ch] if rng.random() < 0.5 else img[h - ch:]
    elif mode == 0:  # strip of 20-45 % of the width
        cw = int(w * rng.uniform(0.2, 0.45))
        x = rng.integers(0, w - cw + 1)
        crop = img[:, x:x + cw]
    elif mode == 1:  # one half
        crop = img[:, : w // 2] if rng.random() < 0.5 else img[:, w // 2:]
    else:  # a close-up of 5-25 % of the area
        s = np.sqrt(rng.uniform(0.05, 0.25))
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = img[y:y + ch, x:x + cw]
    out = cv2.resize(np.ascontiguousarray(crop), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    return _degrade(rng, _exposure(rng, out))


def montage(rng, pool):
    """Two to four radiographs side by side or in a grid, as a comparison or a teaching slide."""
    cols, rows = [(2, 1), (2, 1), (3, 1), (2, 2), (1, 2)][rng.integers(5)]
    gap, fill = int(rng.integers(0, 8)), int(rng.choice([0, 255, int(rng.integers(256))]))
    cell = SIDE
    tiles = [vary_radiograph(rng, pool[rng.integers(len(pool))], cell) for _ in range(cols * rows)]
    sheet = np.full((rows * cell + (rows - 1) * gap, cols * cell + (cols - 1) * gap), fill, np.uint8)
    for i, tile in enumerate(tiles):
        y, x = (i // cols) * (cell + gap), (i % cols) * (cell + gap)
        sheet[y:y + cell, x:x + cell] = tile
    return _degrade(rng, _to_side(rng, sheet))


def binary(rng, pool):
    """A radiograph thresholded to black and white (a photocopy, a fax, an over-processed
    export): the outline of a chest without the grays the models read."""
    img = vary_radiograph(rng, pool[rng.integers(len(pool))])
    otsu, _ = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = float(np.clip(otsu + rng.normal(0, 25), 20, 235))
    out = np.where(img > level, 255, 0).astype(np.uint8)
    if rng.random() < 0.3:  # a blurred or resampled copy softens the edges
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    return _degrade(rng, out)


def document(rng, pool, font_files=()):
    """A text page or an application screenshot (half of them with a radiograph inside)."""
    if rng.random() < 0.5:
        return _page(rng, font_files)
    return _screenshot(rng, pool, font_files)


def _page(rng, font_files) -> np.ndarray:
    w, h = int(rng.integers(400, 900)), int(rng.integers(400, 1100))
    dark = rng.random() < 0.15
    bg, fg = (30, 220) if dark else (int(rng.integers(225, 256)), int(rng.integers(0, 80)))
    pil = Image.new("L", (w, h), bg)
    draw = ImageDraw.Draw(pil)
    size = int(rng.integers(10, 28))
    font = _font(rng, list(font_files), size)
    y = int(rng.integers(5, 60))
    columns = 1 if rng.random() < 0.7 else 2
    while y < h - size:
        for c in range(columns):
            x = int(rng.integers(10, 40)) + c * w // columns
            line = " ".join(rng.choice(WORDS, rng.integers(2, 12)))
            draw.text((x, y), line, fill=fg, font=font)
        if rng.random() < 0.1:  # a table rule or a heading gap
            draw.line((10, y + size + 2, w - 10, y + size + 2), fill=fg, width=1)
        y += int(size * rng.uniform(1.2, 2.2))
    return _to_side(rng, np.asarray(pil))


def _screenshot(rng, pool, font_files) -> np.ndarray:
    w, h = int(rng.integers(600, 1400)), int(rng.integers(400, 900))
    dark = rng.random() < 0.3
    base = int(rng.integers(20, 60)) if dark else int(rng.integers(225, 256))
    pil = Image.new("L", (w, h), base)
    draw = ImageDraw.Draw(pil)
    ink = 220 if dark else 30
    bar = int(rng.integers(24, 60))
    draw.rectangle((0, 0, w, bar), fill=int(rng.integers(0, 256)))
    font = _font(rng, list(font_files), int(rng.integers(11, 18)))
    for x in range(10, w - 80, int(rng.integers(70, 140))):
        draw.text((x, bar // 3), str(rng.choice(WORDS)), fill=ink, font=font)
    side_w = int(w * rng.uniform(0, 0.3))
    if side_w:
        draw.rectangle((0, bar, side_w, h), fill=int(np.clip(base + rng.integers(-40, 40), 0, 255)))
        for y in range(bar + 10, h - 20, 28):
            draw.text((10, y), str(rng.choice(WORDS)), fill=ink, font=font)
    for _ in range(rng.integers(2, 8)):  # buttons and panels
        x0, y0 = int(rng.integers(side_w, w - 60)), int(rng.integers(bar, h - 30))
        draw.rounded_rectangle((x0, y0, x0 + int(rng.integers(40, 200)), y0 + int(rng.integers(20, 60))),
                               radius=6, outline=ink, fill=int(rng.integers(0, 256)))
    if pool and rng.random() < 0.6:  # a radiograph shown inside the window
        area = rng.uniform(0.12, 0.45)
        side = int(np.sqrt(area * w * h))
        side = min(side, h - bar - 10, w - side_w - 10)
        xray = cv2.resize(pool[rng.integers(len(pool))], (side, side), interpolation=cv2.INTER_AREA)
        x0 = int(rng.integers(side_w, w - side + 1))
        y0 = int(rng.integers(bar, h - side + 1))
        pil.paste(Image.fromarray(xray), (x0, y0))
    return _to_side(rng, np.asarray(pil))


def photo(rng, photos):
    img = photos[rng.integers(len(photos))]
    h, w = img.shape
    s = np.sqrt(rng.uniform(0.3, 1.0))
    ch, cw = max(16, int(h * s)), max(16, int(w * s))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = cv2.resize(np.ascontiguousarray(img[y:y + ch, x:x + cw]), (SIDE, SIDE),
                     interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.2:
        out = 255 - out
    return _degrade(rng, _exposure(rng, np.ascontiguousarray(out)))


def noise(rng, _pool=None):
    """Noise, gradients, patterns and almost-blank frames."""
    mode = rng.integers(6)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    if mode == 0:
        img = rng.uniform(0, 255, (SIDE, SIDE))
    elif mode == 1:
        img = rng.normal(rng.uniform(60, 200), rng.uniform(5, 60), (SIDE, SIDE))
    elif mode == 2:  # smooth "cloud" noise
        small = rng.uniform(0, 255, (int(rng.integers(3, 24)),) * 2).astype(np.float32)
        img = cv2.resize(small, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    elif mode == 3:  # linear or radial gradient
        a = rng.uniform(0, 2 * np.pi)
        g = np.cos(a) * xx + np.sin(a) * yy if rng.random() < 0.5 else np.hypot(xx - 0.5, yy - 0.5)
        img = 255 * (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    elif mode == 4:  # stripes / checkerboard
        f = rng.uniform(2, 30)
        img = 255 * ((np.sin(xx * f * 6.28) > 0) ^ ((np.sin(yy * f * 6.28) > 0) & (rng.random() < 0.5)))
    else:  # a flat frame with a few specks
        img = np.full((SIDE, SIDE), rng.uniform(0, 255), np.float32)
        for _ in range(rng.integers(1, 30)):
            img[rng.integers(SIDE), rng.integers(SIDE)] = rng.uniform(0, 255)
        img += rng.normal(0, rng.uniform(0, 4), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _to_side(rng, img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------- draw
class GateExamples:
    """Draw (image, kind index) pairs: half radiographs, half spread over the other kinds."""

    def __init__(self, radiographs: list[np.ndarray], split: str, seed: int):
        self.rng = np.random.default_rng(seed)
        self.pool = radiographs
        self.photos = package_photos(split)
        self.fonts = fonts(split)
        self.makers: dict[str, Callable] = {
            "negative": lambda r: negative(r, self.pool),
            "rotated": lambda r: rotated(r, self.pool),
            "partial": lambda r: partial(r, self.pool),
            "document": lambda r: document(r, self.pool, self.fonts),
            "photo": lambda r: photo(r, self.photos),
            "noise": lambda r: noise(r),
            "montage": lambda r: montage(r, self.pool),
            "binary": lambda r: binary(r, self.pool),
        }

    def probes(self) -> dict[str, Callable]:
        """Single modes of a kind, reported apart: the refusals users tried hardest to slip past."""
        return {"rotated_20_35_degrees": lambda r: rotated(r, self.pool, TILTED),
                "top_or_bottom_stretched": lambda r: partial(r, self.pool, TOP_OR_BOTTOM)}

    def draw(self, kind: str | None = None) -> tuple[np.ndarray, int]:
        rng = self.rng
        if kind is None:
            kind = "radiograph" if rng.random() < 0.5 else str(rng.choice(list(self.makers)))
        if kind == "radiograph":
            img = vary_radiograph(rng, self.pool[rng.integers(len(self.pool))])
        else:
            img = self.makers[kind](rng)
        return img, KINDS.index(kind)
