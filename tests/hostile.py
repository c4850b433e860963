"""A hostile-input corpus, written on the fly (no binary files are committed): what a public
demo receives from people and from scripts. Used by the tests (reader, CLI, API) and by
benchmarks/memory.py.

`write_corpus(folder, radiograph)` writes every case and returns {file name: Case}; a case
expects either a refusal whose message contains `refusal`, or a prediction (`refusal=None`).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tests.images import dicom_file, png_bytes


@dataclass(frozen=True)
class Case:
    kind: str  # what it stands for, for reports
    refusal: str | None  # a substring of the expected message; None: a prediction is expected
    heavy: bool = False  # large decoded size: kept out of the per-request API loop


def _text_page(h: int = 1000, w: int = 800) -> np.ndarray:
    pil = Image.new("L", (w, h), 250)
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default(size=18)
    for i, y in enumerate(range(30, h - 30, 30)):
        draw.text((40, y), f"Line {i}: the patient report continues here with more words.", fill=20, font=font)
    return np.asarray(pil)


def _screenshot(xray: np.ndarray) -> np.ndarray:
    pil = Image.new("L", (1280, 800), 240)
    draw = ImageDraw.Draw(pil)
    draw.rectangle((0, 0, 1280, 40), fill=60)
    draw.rectangle((0, 40, 260, 800), fill=215)
    font = ImageFont.load_default(size=16)
    for i, y in enumerate(range(60, 780, 36)):
        draw.text((16, y), f"Menu item {i}", fill=30, font=font)
    for x in range(300, 1200, 150):
        draw.rounded_rectangle((x, 700, x + 120, 740), radius=6, outline=40, fill=200)
        draw.text((x + 20, 710), "Button", fill=30, font=font)
    draw.text((20, 10), "Image viewer - study 12345", fill=250, font=font)
    pil.paste(Image.fromarray(cv2.resize(xray, (560, 560), interpolation=cv2.INTER_AREA)), (480, 80))
    return np.asarray(pil)


def _gray_photo() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return cv2.cvtColor(load_sample_images().images[0], cv2.COLOR_RGB2GRAY)  # a temple


def _png_with_text_bomb(arr: np.ndarray) -> bytes:
    """A valid PNG with a zTXt chunk that inflates to 64 MB (past Pillow's text limit)."""
    data = png_bytes(arr)
    body = b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 2**20), 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + body))
    return data[:33] + chunk + data[33:]  # after the 8-byte signature and the 25-byte IHDR


def _deflated_bomb(path: Path, side: int = 7000, frames: int = 20) -> None:
    """7000x7000 16-bit, 20 frames of zeros, deflated: 2 MB on disk, 1.96 GB inflated.
    The deflate stream is written in chunks, so making it costs no more memory than reading
    it should."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import DeflatedExplicitVRLittleEndian, DigitalXRayImageStorageForPresentation, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames, ds.SamplesPerPixel, ds.PhotometricInterpretation = frames, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    n = side * side * 2 * frames
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, n)
    deflater = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(16 * 2**20)
    with path.open("wb") as f:
        f.write(b"\0" * 128 + b"DICM" + head.getvalue())
        f.write(deflater.compress(body.getvalue() + pixel_header))
        for start in range(0, n, len(zeros)):
            f.write(deflater.compress(zeros[: min(len(zeros), n - start)]))
        f.write(deflater.flush())


def _dicom_variant(path: Path, pixels: np.ndarray, **changes) -> None:
    dicom_file(path, pixels.astype(np.uint16) * 16)
    import pydicom

    ds = pydicom.dcmread(path)
    extra = changes.pop("extra_bytes", 0)
    for tag in changes.pop("delete", ()):
        delattr(ds, tag)
    for key, value in changes.items():
        setattr(ds, key, value)
    if extra:
        ds.PixelData = ds.PixelData + bytes(extra)
    if "NumberOfFrames" in changes:
        ds.PixelData = ds.PixelData * int(changes["NumberOfFrames"])
    ds.save_as(str(path))


def encapsulated_dicom(path, frame: bytes, rows: int, cols: int, syntax, photometric="MONOCHROME2",
                        samples: int = 1, bits: int = 8):
    """A DICOM whose pixel data is one compressed frame, with the header's Rows/Columns."""
    import pydicom
    from pydicom.encaps import encapsulate

    dicom_file(path, np.ones((8, 8), np.uint16))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, samples, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    if samples > 1:
        ds.PlanarConfiguration = 0
    for tag in ("RescaleSlope", "RescaleIntercept"):
        delattr(ds, tag)
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def rle_bomb(decoded: int) -> bytes:
    """An RLE frame of one segment: a header, then repeat runs of 128 bytes adding up to
    `decoded` bytes (2 bytes on disk per 128)."""
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    return header + b"\x81\x07" * (decoded // 128)


def progressive_jpeg_with_scans(image: np.ndarray, extra: int) -> bytes:
    """A valid progressive JPEG, then its last scan repeated `extra` times before the end."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra + b"\xff\xd9"


def jpeg_claiming(image: np.ndarray, width: int, height: int) -> bytes:
    """A JPEG of `image` whose frame header (SOF) claims width x height: a decoder allocates
    the claimed size."""
    data = bytearray(_jpeg(image))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _ybr_dicom(path: Path, gray: np.ndarray) -> None:
    """A colour DICOM as many archives export radiographs: JPEG baseline, YBR_FULL_422."""
    from pydicom.uid import JPEGBaseline8Bit

    buf = io.BytesIO()
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(buf, format="JPEG", quality=92,
                                                                 subsampling=2)
    encapsulated_dicom(path, buf.getvalue(), *gray.shape, JPEGBaseline8Bit,
                       photometric="YBR_FULL_422", samples=3)


def _without_file_meta(path: Path, pixels: np.ndarray) -> None:
    """A DICOM data set written alone: no preamble, no "DICM", no file meta header."""
    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = pydicom.dcmread(dicom_file(path, pixels.astype(np.uint16) * 16))
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    path.write_bytes(fp.getvalue())


def _png_with_dicm_at_128(arr: np.ndarray) -> bytes:
    """A PNG with a text chunk that puts "DICM" at byte 128, where DICOM has its marker."""
    data = png_bytes(arr)
    text = b"keyword\0" + b"x" * (128 - 41 - 8) + b"DICM" + b"y" * 16
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
    return data[:33] + chunk + data[33:]


def write_corpus(folder: Path, radiograph: np.ndarray) -> dict[str, Case]:
    """Write every hostile case into `folder`; `radiograph` is a real frontal chest X-ray."""
    folder.mkdir(parents=True, exist_ok=True)
    xray = radiograph
    rng = np.random.default_rng(0)
    rasters: dict[str, tuple[Callable[[], bytes], Case]] = {
        "noise_gray.png": (lambda: png_bytes(rng.integers(0, 256, (512, 512), dtype=np.uint8)),
                           Case("noise", "noise")),
        "photo_gray.jpg": (lambda: _jpeg(_gray_photo()), Case("photo", "photograph")),
        "document.png": (lambda: png_bytes(_text_page()), Case("document", "document")),
        "screenshot.png": (lambda: png_bytes(_screenshot(xray)), Case("screenshot", "screenshot")),
        "near_black_one_pixel.png": (lambda: png_bytes(_one_bright_pixel()), Case("near-blank", "almost blank")),
        "negative.png": (lambda: png_bytes(255 - xray), Case("negative", "negative")),
        "strip.png": (lambda: png_bytes(cv2.resize(xray, (200, 800))), Case("lateral proxy", "strip")),
        "lateral_proxy.png": (lambda: png_bytes(_half_stretched(xray)), Case("lateral proxy", "lateral")),
        "text_as.png": (lambda: b"just some text pretending to be an image\n" * 50,
                        Case("not an image", "not a recognised image")),
        "text_chunk_bomb.png": (lambda: _png_with_text_bomb(xray), Case("PNG text bomb", "damaged or malformed")),
        "png_named.dcm": (lambda: png_bytes(xray), Case("PNG named .dcm", None)),
        "montage.png": (lambda: png_bytes(np.hstack([_middle(xray), _middle(xray)[:, ::-1]])),
                        Case("two radiographs side by side", "several images")),
        "binarised.png": (lambda: png_bytes(np.where(xray > np.median(xray), 255, 0).astype(np.uint8)),
                          Case("thresholded radiograph", "black and white")),
        "rotated_25.png": (lambda: png_bytes(_rotated(xray, 25)), Case("radiograph tilted 25°", "rotated")),
        "top_40_stretched.png": (lambda: png_bytes(cv2.resize(xray[: xray.shape[0] * 2 // 5], xray.shape[::-1])),
                                 Case("top 40 % of a film, stretched", "part of a chest")),
        "blank_7000.png": (lambda: png_bytes(np.zeros((7000, 7000), np.uint8)),
                           Case("49 MP blank PNG", "blank", heavy=True)),
        "radiograph_6000.png": (lambda: png_bytes(cv2.resize(xray, (6000, 6000))),
                                Case("36 MP radiograph PNG", None, heavy=True)),
        "radiograph_6000.jpg": (lambda: _jpeg(cv2.resize(xray, (6000, 6000))),
                                Case("36 MP radiograph JPEG", None, heavy=True)),
    }
    corpus = {}
    for name, (make, case) in rasters.items():
        (folder / name).write_bytes(make())
        corpus[name] = case
    pixels = cv2.resize(xray, (512, 512)) if max(xray.shape) > 512 else xray
    dicoms = {
        "long_pixels.dcm": (dict(extra_bytes=2**20), Case("DICOM pixel data 1 MB too long", None)),
        "short_pixels.dcm": (None, Case("DICOM pixel data too short", "cannot decode")),
        "rgb_as_mono2.dcm": (dict(SamplesPerPixel=3), Case("DICOM 3 samples, MONOCHROME2", "contradicts")),
        "window_zero.dcm": (dict(WindowCenter=2048, WindowWidth=0), Case("DICOM WindowWidth 0", None)),
        "no_rows.dcm": (dict(delete=("Rows", "Columns")), Case("DICOM without Rows/Columns", "lacks the Rows")),
        "multiframe.dcm": (dict(NumberOfFrames=3), Case("DICOM 3 frames", None)),
    }
    for name, (changes, case) in dicoms.items():
        path = folder / name
        if changes is None:
            dicom_file(path, pixels.astype(np.uint16) * 16)
            data = path.read_bytes()
            path.write_bytes(data[:-1000])  # the pixel data ends early
        else:
            _dicom_variant(path, pixels, **changes)
        corpus[name] = case
    from pydicom.uid import JPEGBaseline8Bit, RLELossless

    side = pixels.shape
    encapsulated_dicom(folder / "rle_bomb.dcm", rle_bomb(2**30), *side, RLELossless)
    corpus["rle_bomb.dcm"] = Case("RLE DICOM decoding to 1 GB", "decodes to more than", heavy=True)
    encapsulated_dicom(folder / "codestream_liar.dcm", jpeg_claiming(pixels, 12000, 12000), *side,
                       JPEGBaseline8Bit)
    corpus["codestream_liar.dcm"] = Case("DICOM whose JPEG claims 12000x12000", "compressed image is 12000x12000")
    (folder / "scans_bomb.jpg").write_bytes(progressive_jpeg_with_scans(pixels, 3000))
    corpus["scans_bomb.jpg"] = Case("progressive JPEG, 3000 extra scans", "scans")
    _ybr_dicom(folder / "ybr_full_422.dcm", pixels)
    corpus["ybr_full_422.dcm"] = Case("YBR_FULL_422 JPEG DICOM", None)
    _without_file_meta(folder / "no_file_meta.dcm", pixels)
    corpus["no_file_meta.dcm"] = Case("DICOM without file meta", None)
    (folder / "png_with_dicm.dcm").write_bytes(_png_with_dicm_at_128(xray))
    corpus["png_with_dicm.dcm"] = Case("PNG with DICM at byte 128", None)
    _deflated_bomb(folder / "deflated_bomb.dcm")
    corpus["deflated_bomb.dcm"] = Case("deflated DICOM, 20 x 49 MP", "inflates to more than", heavy=True)
    return corpus


def _middle(xray: np.ndarray) -> np.ndarray:
    """The middle 90 % of the width: two side by side stay under the 2:1 strip rule."""
    w = xray.shape[1]
    return xray[:, w // 20: w - w // 20]


def _rotated(xray: np.ndarray, degrees: float) -> np.ndarray:
    h, w = xray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(xray, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _one_bright_pixel() -> np.ndarray:
    arr = np.full((512, 512), 3, np.uint8)
    arr[200, 300] = 255
    return arr


def _half_stretched(xray: np.ndarray) -> np.ndarray:
    """One side of the chest stretched to the frame: one lung and the spine, as a lateral
    view shows one silhouette (a proxy: no real lateral radiograph is available here)."""
    half = xray[:, : xray.shape[1] * 2 // 5]
    return cv2.resize(np.ascontiguousarray(half), (xray.shape[1], xray.shape[0]))
