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
# A progressive JPEG has about 10 scans, each decoded over the whole image; thousands of them
# are a CPU-time bomb in a small file.
MAX_JPEG_SCANS = 64

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
    name = printable(name or source_name(source))
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
    """By content first: a PNG or JPEG is read as what it is, whatever its name and whatever
    its bytes 128-131 (a PNG chunk may hold "DICM" there); then DICOM's "DICM" marker; then,
    for a DICOM written without its file meta header, the name."""
    if data.startswith(RASTER_MAGIC):
        return False
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
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image file; expected {ACCEPTED}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(f"{name}: the image is larger than the limit of "
                             f"{MAX_PIXELS // 1_000_000} megapixels") from None
    except (OSError, SyntaxError, ValueError):  # e.g. a text chunk that inflates too far
        raise ImageReadError(f"{name}: the image file is damaged or malformed (its header or a "
                             f"metadata chunk cannot be read); expected {ACCEPTED}") from None
    if img.format not in ("PNG", "JPEG", "MPO"):
        raise ImageReadError(f"{name}: {img.format} images are not supported; expected {ACCEPTED}")
    _check_size(*img.size, name)
    if img.format in ("JPEG", "MPO"):
        _check_jpeg_scans(data, name)
    if img.format in ("JPEG", "MPO") and max(img.size) > WORK_MAX_SIDE:
        scale = WORK_MAX_SIDE / max(img.size)  # decode at 1/2, 1/4 or 1/8 scale: far less memory
        img.draft(None, (int(img.size[0] * scale) + 1, int(img.size[1] * scale) + 1))
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageReadError(f"{name}: the {img.format} file is damaged or truncated (its image "
                             "data ends early or cannot be decoded)") from None
    return _pil_to_gray(img, name)


def _check_jpeg_scans(data: bytes, name: str) -> None:
    """Each scan of a progressive JPEG is decoded over the whole image: thousands of them make
    a small file cost minutes of CPU. Counted from the start-of-scan markers (entropy-coded
    data cannot hold one: an 0xFF there is followed by 0x00)."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageReadError(f"{name}: the JPEG has {scans} scans; a radiograph has fewer than 20 "
                             f"and the limit is {MAX_JPEG_SCANS}; save it again as an ordinary "
                             "JPEG or as PNG")


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
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


def _read_dicom(data: bytes, name: str) -> np.ndarray:
    import pydicom

    if DEFLATED in data[:1024]:
        _check_inflated_size(data, name)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 -- pydicom raises many types for damaged files
        raise ImageReadError(f"{name}: not a readable DICOM file (its header is damaged or it is "
                             f"not DICOM); expected {ACCEPTED}") from None
    rows, cols, samples, photometric = _dicom_layout(ds, name)
    syntax = _transfer_syntax(ds, name)
    if syntax.is_encapsulated:
        _check_first_frame(ds, syntax, rows, cols, samples, name)
    try:
        # the first frame only (a 20-frame file costs one), and no frames the header does not
        # declare; YBR colour comes back as RGB (pydicom converts it: converting again would
        # turn a gray radiograph into a colour image)
        ds.pixel_array_options(index=0, allow_excess_frames=False, as_rgb=True)
        arr = ds.pixel_array
    except Exception:  # noqa: BLE001 -- pydicom raises many types for unsupported/damaged pixel data
        raise ImageReadError(f"{name}: cannot decode the DICOM pixel data ({syntax.name}): it is "
                             "damaged, shorter than its header says, or in a compression this app "
                             "does not read; export the image as uncompressed DICOM, PNG or JPEG") from None
    if arr.ndim == (3 if samples > 1 else 2) + 1:  # a decoder that returned every frame
        arr = arr[0]
    if photometric.startswith("MONOCHROME"):
        return _dicom_gray(arr, ds, photometric, name)
    return _array_to_gray(np.asarray(arr), name)  # colour: RGB by now (as_rgb above)


def _dicom_layout(ds, name: str) -> tuple[int, int, int, str]:
    """Rows, columns, samples per pixel and photometric interpretation, checked: a header
    that lies, or describes more than MAX_DECODED_BYTES a frame, is refused before decoding."""
    if "PixelData" not in ds:
        raise ImageReadError(f"{name}: the DICOM file has no pixel data (is it a report or a "
                             "structured document?); upload a DICOM image")
    missing = [t for t in ("Rows", "Columns") if not ds.get(t)]
    if missing:
        raise ImageReadError(f"{name}: the DICOM file lacks the {' and '.join(missing)} "
                             "tag(s), so its pixel data cannot be laid out")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except Exception:  # noqa: BLE001 -- a value of the wrong type or a damaged element
        raise ImageReadError(f"{name}: the DICOM image tags (Rows, Columns, SamplesPerPixel, "
                             "BitsAllocated) are not valid numbers") from None
    _check_size(cols, rows, name)
    if photometric.startswith("MONOCHROME") and samples != 1:
        raise ImageReadError(f"{name}: the DICOM header contradicts itself: {printable(photometric)} with "
                             f"{samples} samples per pixel (grayscale has 1)")
    if not photometric.startswith("MONOCHROME") and photometric not in COLOUR_PHOTOMETRICS:
        raise ImageReadError(f"{name}: DICOM photometric interpretation {printable(photometric)} is "
                             "not supported; expected MONOCHROME1, MONOCHROME2, RGB or YBR")
    frame_bytes = rows * cols * samples * -(-bits // 8)
    if frame_bytes > MAX_DECODED_BYTES:
        raise ImageReadError(f"{name}: one frame of this DICOM is {frame_bytes // 2**20} MB "
                             f"decoded; the limit is {MAX_DECODED_BYTES // 2**20} MB")
    return rows, cols, samples, photometric


def _dicom_gray(arr: np.ndarray, ds, photometric: str, name: str) -> np.ndarray:
    """A grayscale frame through the DICOM's modality and VOI LUTs, to uint8 (MONOCHROME1
    inverted: bones bright)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    _check_size(arr.shape[1], arr.shape[0], name)
    arr = shrink(arr)  # before the LUTs' float64 copies
    try:
        arr = apply_modality_lut(arr, ds)
    except Exception:  # noqa: BLE001 -- e.g. a RescaleSlope that is not a number
        raise ImageReadError(f"{name}: the DICOM rescale tags (RescaleSlope, RescaleIntercept "
                             "or the modality LUT) are invalid, so its pixel values cannot be read") from None
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        try:
            arr = apply_voi_lut(arr, ds, index=0)
        except Exception as e:  # noqa: BLE001 -- e.g. WindowWidth 0: fall back to the full range
            # (the file's name stays out of logs: a server's log outlives the request)
            log.warning("a DICOM's VOI LUT / window is invalid (%s); using the full range", e)
    gray = _rescale_to_uint8(np.asarray(arr, np.float32), name)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _transfer_syntax(ds, name: str):
    """The dataset's transfer syntax; for a file written without its file meta header, the
    encoding pydicom found it in (native pixel data only: compressed data needs its UID)."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    if syntax is None:
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if implicit is None or ds["PixelData"].is_undefined_length:
            raise ImageReadError(f"{name}: the DICOM file has no file meta header to say how its "
                                 "pixel data is encoded; export it again with the standard header")
        syntax = (ImplicitVRLittleEndian if implicit else
                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        if meta is None:
            from pydicom.dataset import FileMetaDataset
            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    syntax = UID(str(syntax))
    if not syntax.is_transfer_syntax:
        raise ImageReadError(f"{name}: the DICOM transfer syntax {printable(str(syntax))} is not a "
                             "known one; export the image as uncompressed DICOM, PNG or JPEG")
    return syntax


RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_SOF = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0), 0xF7}


def _check_first_frame(ds, syntax, rows: int, cols: int, samples: int, name: str) -> None:
    """What a compressed first frame will cost, bounded before it is decoded: decoders take the
    image size from the codestream, not from the DICOM header, and pydicom's RLE decoder does
    not stop at the size the header declares. So: the codestream's own dimensions must be the
    header's, an RLE frame may not decode to more than Rows x Columns per segment, and a JPEG
    frame may not have more than MAX_JPEG_SCANS scans."""
    from pydicom.encaps import generate_frames

    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        frame = next(generate_frames(ds.PixelData, number_of_frames=n_frames))
    except Exception:  # noqa: BLE001 -- a damaged item structure
        raise ImageReadError(f"{name}: the compressed DICOM pixel data is damaged (its fragments "
                             "cannot be read)") from None
    if str(syntax) == RLE_LOSSLESS:
        _check_rle_frame(frame, rows * cols, name)
        return
    size = codestream_size(frame)
    if size is None:
        raise ImageReadError(f"{name}: the compressed DICOM frame has no image header "
                             f"({syntax.name}); the file is damaged")
    width, height = size
    if (width, height) != (cols, rows):
        raise ImageReadError(f"{name}: the DICOM header says {cols}x{rows} pixels but its "
                             f"compressed image is {width}x{height}; the file is inconsistent")
    if frame.startswith(b"\xff\xd8"):
        _check_jpeg_scans(frame, name)


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) that a JPEG, JPEG-LS or JPEG 2000 codestream declares, read from its
    SOF or SIZ marker segment; None when there is none."""
    import struct

    if frame.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(frame):
            if frame[i] != 0xFF:
                return None
            marker = frame[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker in JPEG_SOF:
                height, width = struct.unpack(">HH", frame[i + 5:i + 9])
                return width, height
            elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                i += 2
            else:
                i += 2 + struct.unpack(">H", frame[i + 2:i + 4])[0]
        return None
    j = frame.find(b"\xff\x4f\xff\x51")  # JPEG 2000: SOC, then SIZ (raw or in a JP2 box)
    if 0 <= j and j + 24 <= len(frame):
        xsiz, ysiz, x0, y0 = struct.unpack(">IIII", frame[j + 8:j + 24])
        return xsiz - x0, ysiz - y0
    return None


def _check_rle_frame(frame: bytes, segment_bytes: int, name: str) -> None:
    """A DICOM RLE frame: a 64-byte header (segment count, 15 offsets), then one PackBits
    segment per byte plane, each of which decodes to Rows x Columns bytes. Counted, never
    decoded: a run header of two bytes may stand for 128 bytes, so a file of tens of MB can
    claim gigabytes."""
    import struct

    if len(frame) < 64:
        raise ImageReadError(f"{name}: the RLE-compressed DICOM frame is too short to be valid")
    count, *offsets = struct.unpack("<16I", frame[:64])
    if not 1 <= count <= 15:
        raise ImageReadError(f"{name}: the RLE-compressed DICOM frame declares {count} segments")
    bounds = [*offsets[:count], len(frame)]
    for start, end in zip(bounds, bounds[1:]):
        if not 64 <= start <= end <= len(frame):
            raise ImageReadError(f"{name}: the RLE-compressed DICOM frame is damaged (its segment "
                                 "offsets are out of order)")
        # slack of one run: an encoder pads a segment to an even length with a zero byte
        if _packbits_length(frame[start:end], segment_bytes + 129) > segment_bytes + 129:
            raise ImageReadError(f"{name}: the RLE-compressed pixel data decodes to more than the "
                                 "image its DICOM header declares; the file is damaged or hostile")


def _packbits_length(segment: bytes, cap: int) -> int:
    """How many bytes a PackBits segment decodes to, counted until it passes `cap`."""
    i, n, total = 0, len(segment), 0
    while i < n and total <= cap:
        header = segment[i]
        if header < 128:  # a literal run of header + 1 bytes
            total += header + 1
            i += header + 2
        elif header > 128:  # one byte repeated 257 - header times
            total += 257 - header
            i += 2
        else:  # 128: no operation
            i += 1
    return total


def printable(text: str, limit: int = 80) -> str:
    """Text from a file (a tag value, a file name) made safe to print in a terminal or a
    message: control characters (newlines, ANSI escapes) shown escaped, and at most `limit`
    characters."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit - 1] + "…"


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
        except zlib.error:
            raise ImageReadError(f"{name}: the deflated DICOM data is damaged (it cannot be "
                                 "inflated)") from None
        tail = inflater.unconsumed_tail
    if total > MAX_DECODED_BYTES:
        raise ImageReadError(f"{name}: the deflated DICOM inflates to more than "
                             f"{MAX_DECODED_BYTES // 2**20} MB; the limit is one image of "
                             f"{MAX_PIXELS // 1_000_000} megapixels")


def quiet_pydicom(verbose: bool = False) -> None:
    """pydicom logs and warns about every odd tag it meets, tracebacks and tag values
    included; the reader turns what matters into its own message, so the rest is noise on a
    user's terminal and patient data in a server's log. The CLI (unless --verbose) and the
    web app call this; a library caller keeps pydicom's logging as configured."""
    if verbose:
        return
    import warnings

    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


def _finish(gray: np.ndarray, name: str) -> np.ndarray:
    if int(gray.max()) == int(gray.min()):
        raise ImageReadError(f"{name}: the image is blank (every pixel has the same value)")
    return np.ascontiguousarray(gray)
