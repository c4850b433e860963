"""One reader for every entry point: any supported chest X-ray -> one canonical array.

The canonical form is a 2-D uint8 grayscale array (H, W) in display orientation (EXIF applied,
DICOM MONOCHROME1 inverted, DICOM rescale and VOI LUT applied). Everything the project does
after reading (training, inference, overlays) starts from it.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MIN_SIDE = 32
# 50 megapixels (e.g. 7000x7000) is well above any chest radiograph (CR/DR detectors are at
# most ~4300x4300); a larger header is refused before decoding (decompression bombs).
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 100 * 1024 * 1024
# Mean per-pixel chroma (max-min over RGB, 0..255) above which an RGB image is taken for a
# colour photograph rather than a radiograph saved as RGB (those have chroma ~0).
MAX_MEAN_CHROMA = 12.0

ACCEPTED = "PNG or JPEG (8/16-bit, grayscale/RGB/RGBA/palette) or DICOM (.dcm)"

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


class ImageReadError(ValueError):
    """The input could not be read as a chest X-ray; the message says why and what is accepted."""


def read_xray(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Read a path, bytes, PIL image or numpy array into a (H, W) uint8 grayscale array."""
    if isinstance(source, np.ndarray):
        return _finish(_array_to_gray(source, name or "array"), name or "array")
    if isinstance(source, Image.Image):
        return _finish(_pil_to_gray(source, name or "image"), name or "image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or "uploaded bytes"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise ImageReadError(f"{name}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageReadError(f"{name}: file is larger than {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    else:
        raise TypeError(f"cannot read an image from {type(source).__name__}; "
                        "pass a path, bytes, a PIL image or a numpy array")
    if not data:
        raise ImageReadError(f"{name}: the file is empty; expected {ACCEPTED}")
    if _is_dicom(data, name):
        return _finish(_read_dicom(data, name), name)
    return _finish(_read_raster(data, name), name)


def _is_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise ImageReadError(f"{name}: {width}x{height} pixels is larger than the limit of "
                             f"{MAX_PIXELS // 1_000_000} megapixels; downscale the image first")
    if min(width, height) < MIN_SIDE:
        raise ImageReadError(f"{name}: {width}x{height} pixels is too small to be a radiograph; "
                             f"both sides must be at least {MIN_SIDE} px")


def _read_raster(data: bytes, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        if isinstance(e, UnidentifiedImageError):
            raise ImageReadError(f"{name}: not a recognised image file; expected {ACCEPTED}") from None
        raise ImageReadError(f"{name}: the image is larger than the limit of "
                             f"{MAX_PIXELS // 1_000_000} megapixels") from None
    if img.format not in ("PNG", "JPEG", "MPO"):
        raise ImageReadError(f"{name}: {img.format} images are not supported; expected {ACCEPTED}")
    _check_size(*img.size, name)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{name}: the {img.format} file is damaged or truncated ({e})") from None
    return _pil_to_gray(ImageOps.exif_transpose(img), name)


def _pil_to_gray(img: Image.Image, name: str) -> np.ndarray:
    _check_size(*img.size, name)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_gray(np.asarray(img), name)
    if img.mode == "L":
        return np.asarray(img)
    if img.mode == "LA" or img.mode == "1":
        return np.asarray(img.convert("L"))
    return _array_to_gray(np.asarray(img.convert("RGB")), name)  # RGB, RGBA, P, CMYK, YCbCr


def _array_to_gray(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3]
        _reject_colour_photo(rgb, name)
        arr = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if rgb.dtype == np.uint8:
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ImageReadError(f"{name}: expected a 2-D grayscale or (H, W, 3|4) colour image, "
                             f"got an array of shape {arr.shape}")
    _check_size(arr.shape[1], arr.shape[0], name)
    return arr if arr.dtype == np.uint8 else _rescale_to_uint8(arr, name)


def _rescale_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Map the full range of a 16-bit/float image linearly onto 0..255."""
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ImageReadError(f"{name}: the image contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)  # caught as "blank" by _finish
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _reject_colour_photo(rgb: np.ndarray, name: str) -> None:
    step = max(1, max(rgb.shape[:2]) // 256)  # a subsample is enough and keeps this cheap
    small = rgb[::step, ::step].astype(np.float32)
    if rgb.dtype != np.uint8:
        span = float(small.max() - small.min()) or 1.0
        small = (small - small.min()) * (255.0 / span)
    chroma = float((small.max(axis=2) - small.min(axis=2)).mean())
    if chroma > MAX_MEAN_CHROMA:
        raise ImageReadError(f"{name}: this looks like a colour photograph, not a radiograph "
                             f"(mean colour saturation {chroma:.0f}/255); upload a chest X-ray")


def _read_dicom(data: bytes, name: str) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as e:
        raise ImageReadError(f"{name}: not a readable DICOM file ({e}); expected {ACCEPTED}") from None
    if "PixelData" not in ds:
        raise ImageReadError(f"{name}: the DICOM file has no pixel data (is it a report or a "
                             "structured document?); upload a DICOM image")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    _check_size(cols, rows, name)
    try:
        arr = ds.pixel_array
    except Exception as e:  # pydicom raises many types for unsupported/damaged pixel data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", "unknown transfer syntax")
        raise ImageReadError(f"{name}: cannot decode the DICOM pixel data ({syntax_name}): {e}. "
                             "Uncompressed DICOM is always supported; for JPEG/JPEG 2000 "
                             "compressed files install pylibjpeg") from None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric.startswith("MONOCHROME"):
        arr = apply_modality_lut(arr, ds)
        arr = apply_voi_lut(arr, ds, index=0) if ("WindowCenter" in ds or "VOILUTSequence" in ds) else arr
        gray = _rescale_to_uint8(np.asarray(arr, np.float64), name)
        return 255 - gray if photometric == "MONOCHROME1" else gray
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space
            arr = convert_color_space(arr, photometric, "RGB")
        return _array_to_gray(np.asarray(arr), name)
    raise ImageReadError(f"{name}: DICOM photometric interpretation {photometric} is not supported")


def _finish(gray: np.ndarray, name: str) -> np.ndarray:
    if int(gray.max()) == int(gray.min()):
        raise ImageReadError(f"{name}: the image is blank (every pixel has the same value)")
    return np.ascontiguousarray(gray)
