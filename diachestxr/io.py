"""One reader for every entry point: any supported chest X-ray -> one canonical array.

The canonical form is a 2-D uint8 grayscale array (H, W) in display orientation (EXIF applied,
DICOM MONOCHROME1 inverted, DICOM rescale and VOI LUT applied), at most WORK_MAX_SIDE pixels on
its long side. Everything the project does after reading (training, inference, overlays)
starts from it.

What one file may cost is bounded before decoding: the file size, the pixels of one frame, the
bytes a deflated DICOM inflates to, and only the first frame of a multi-frame DICOM is decoded.
Large images are shrunk right after decoding, before any float copy (the models need 224 px).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MIN_SIDE = 32
# 50 megapixels (e.g. 7000x7000) is well above any chest radiograph (CR/DR detectors are at
# most ~4300x4300); a larger header is refused before decoding (decompression bombs).
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 100 * 1024 * 1024
# One decoded frame: a 50-megapixel 16-bit image is 100 MB; a deflated DICOM may not inflate past it.
MAX_DECODED_BYTES = 128 * 1024 * 1024
# Images are shrunk to this long side right after decoding: well above what the models (224 px),
# the overlays (1024 px) and CLAHE need, and a 49 MP upload then costs tens of MB, not GBs.
WORK_MAX_SIDE = 2048
# Mean per-pixel chroma (max-min over RGB, 0..255) above which an RGB image is taken for a
# colour photograph rather than a radiograph saved as RGB (those have chroma ~0).
MAX_MEAN_CHROMA = 12.0

ACCEPTED = "PNG or JPEG (8/16-bit, grayscale/RGB/RGBA/palette) or DICOM (.dcm)"

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


class ImageReadError(ValueError):
    """The input could not be read as a chest X-ray; the message says why and what is accepted."""


def source_name(source: ImageSource) -> str:
    """How messages name a source given without a name: a path by its file name."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    if isinstance(source, np.ndarray):
        return "array"
    return "uploaded bytes" if isinstance(source, (bytes, bytearray, memoryview)) else "image"


def read_xray(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Read a path, bytes, PIL image or numpy array into a (H, W) uint8 grayscale array."""
    name = name or source_name(source)
    if isinstance(source, np.ndarray):
        return _finish(_array_to_gray(source, name), name)
    if isinstance(source, Image.Image):
        return _finish(_pil_to_gray(source, name), name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
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


RASTER_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _is_dicom(data: bytes, name: str) -> bool:
    """By content first: a PNG or JPEG named .dcm is read as what it is."""
    if data[128:132] == b"DICM":
        return True
    return not data.startswith(RASTER_MAGIC) and name.lower().endswith((".dcm", ".dicom"))


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
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image file; expected {ACCEPTED}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(f"{name}: the image is larger than the limit of "
                             f"{MAX_PIXELS // 1_000_000} megapixels") from None
    except (OSError, SyntaxError, ValueError) as e:  # e.g. a text chunk that inflates too far
        raise ImageReadError(f"{name}: the image file is damaged or malformed ({e})") from None
    if img.format not in ("PNG", "JPEG", "MPO"):
        raise ImageReadError(f"{name}: {img.format} images are not supported; expected {ACCEPTED}")
    _check_size(*img.size, name)
    if img.format in ("JPEG", "MPO") and max(img.size) > WORK_MAX_SIDE:
        scale = WORK_MAX_SIDE / max(img.size)  # decode at 1/2, 1/4 or 1/8 scale: far less memory
        img.draft(None, (int(img.size[0] * scale) + 1, int(img.size[1] * scale) + 1))
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{name}: the {img.format} file is damaged or truncated ({e})") from None
    return _pil_to_gray(img, name)


def _pil_to_gray(img: Image.Image, name: str) -> np.ndarray:
    _check_size(*img.size, name)
    if img.mode in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_gray(np.asarray(img), name)
    return _array_to_gray(np.asarray(img.convert("L" if img.mode == "1" else "RGB")), name)  # P, CMYK, YCbCr


def shrink(arr: np.ndarray, max_side: int = WORK_MAX_SIDE) -> np.ndarray:
    """At most `max_side` on the long side (area averaging); integer images keep their dtype."""
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr
    dtype = arr.dtype
    if dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        arr = arr.astype(np.float32)  # int32, big-endian 16-bit, bool: OpenCV resizes floats
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    # integers back to integers: a DICOM modality LUT indexes with them
    return np.rint(out).astype(dtype) if out.dtype != dtype and np.issubdtype(dtype, np.integer) else out


def _array_to_gray(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # gray (+ alpha)
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageReadError(f"{name}: expected a 2-D grayscale or (H, W, 3|4) colour image, "
                             f"got an array of shape {arr.shape}")
    _check_size(arr.shape[1], arr.shape[0], name)
    arr = shrink(arr)  # before any float copy
    if arr.ndim == 3:
        rgb = arr[..., :3]
        _reject_colour_photo(rgb, name)
        arr = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if rgb.dtype == np.uint8:
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr if arr.dtype == np.uint8 else _rescale_to_uint8(arr, name)


def _rescale_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Map the full range of a 16-bit/float image linearly onto 0..255."""
    arr = arr.astype(np.float32)
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


DEFLATED = b"1.2.840.10008.1.2.1.99"


def _read_dicom(data: bytes, name: str) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if DEFLATED in data[:1024]:
        _check_inflated_size(data, name)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as e:  # noqa: BLE001 -- pydicom raises many types for damaged files
        raise ImageReadError(f"{name}: not a readable DICOM file ({e}); expected {ACCEPTED}") from None
    if "PixelData" not in ds:
        raise ImageReadError(f"{name}: the DICOM file has no pixel data (is it a report or a "
                             "structured document?); upload a DICOM image")
    missing = [t for t in ("Rows", "Columns") if not ds.get(t)]
    if missing:
        raise ImageReadError(f"{name}: the DICOM file lacks the {' and '.join(missing)} "
                             "tag(s), so its pixel data cannot be laid out")
    rows, cols = int(ds.Rows), int(ds.Columns)
    _check_size(cols, rows, name)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric.startswith("MONOCHROME") and samples != 1:
        raise ImageReadError(f"{name}: the DICOM header contradicts itself: {photometric} with "
                             f"{samples} samples per pixel (grayscale has 1)")
    frame_bytes = rows * cols * samples * -(-int(ds.get("BitsAllocated", 16) or 16) // 8)
    if frame_bytes > MAX_DECODED_BYTES:
        raise ImageReadError(f"{name}: one frame of this DICOM is {frame_bytes // 2**20} MB "
                             f"decoded; the limit is {MAX_DECODED_BYTES // 2**20} MB")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        # the first frame only (a 20-frame file costs one), and no frames the header does not declare
        ds.pixel_array_options(index=0, allow_excess_frames=False)
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001 -- pydicom raises many types for unsupported/damaged pixel data
        advice = ("; for JPEG/JPEG 2000 compressed files install pylibjpeg"
                  if syntax is not None and syntax.is_compressed else "")
        raise ImageReadError(f"{name}: cannot decode the DICOM pixel data "
                             f"({getattr(syntax, 'name', 'unknown transfer syntax')}): {e}{advice}") from None
    if arr.ndim == (3 if samples > 1 else 2) + 1:  # a decoder that returned every frame
        arr = arr[0]
    if photometric.startswith("MONOCHROME"):
        _check_size(arr.shape[1], arr.shape[0], name)
        arr = shrink(arr)  # before the LUTs' float64 copies
        arr = apply_modality_lut(arr, ds)
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            try:
                arr = apply_voi_lut(arr, ds, index=0)
            except Exception as e:  # noqa: BLE001 -- e.g. WindowWidth 0: fall back to the full range
                log.warning("%s: ignoring an invalid VOI LUT / window (%s); using the full range", name, e)
        gray = _rescale_to_uint8(np.asarray(arr, np.float32), name)
        return 255 - gray if photometric == "MONOCHROME1" else gray
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space
            arr = convert_color_space(shrink(arr), photometric, "RGB")  # shrunk before its float copy
        return _array_to_gray(np.asarray(arr), name)
    raise ImageReadError(f"{name}: DICOM photometric interpretation {photometric} is not supported")


def _check_inflated_size(data: bytes, name: str) -> None:
    """A deflated DICOM is inflated whole by pydicom: refuse one that inflates past the limit
    (a few MB of zeros can inflate to GBs) before it is."""
    import struct
    import zlib

    # preamble (128) + "DICM" + (0002,0000) UL group length, explicit VR: 12 bytes, then the group
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise ImageReadError(f"{name}: a deflated DICOM without a standard file meta header")
    start = 144 + struct.unpack("<I", data[140:144])[0]
    inflater, tail, total = zlib.decompressobj(-zlib.MAX_WBITS), data[start:], 0
    while tail and total <= MAX_DECODED_BYTES:  # count in 16 MB steps, keep nothing
        try:
            total += len(inflater.decompress(tail, 16 * 2**20))
        except zlib.error as e:
            raise ImageReadError(f"{name}: the deflated DICOM data is damaged ({e})") from None
        tail = inflater.unconsumed_tail
    if total > MAX_DECODED_BYTES:
        raise ImageReadError(f"{name}: the deflated DICOM inflates to more than "
                             f"{MAX_DECODED_BYTES // 2**20} MB; the limit is one image of "
                             f"{MAX_PIXELS // 1_000_000} megapixels")


def _finish(gray: np.ndarray, name: str) -> np.ndarray:
    if int(gray.max()) == int(gray.min()):
        raise ImageReadError(f"{name}: the image is blank (every pixel has the same value)")
    return np.ascontiguousarray(gray)
