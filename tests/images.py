"""Synthetic test images, written on the fly (no image files are committed)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def chest_like(h: int = 256, w: int = 224, seed: int = 0) -> np.ndarray:
    """A uint8 grayscale image with structure (two dark 'lungs' in a bright body)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 180 - 60 * np.exp(-(((xx - w * 0.3) / (w * 0.12)) ** 2 + ((yy - h * 0.5) / (h * 0.25)) ** 2))
    img -= 60 * np.exp(-(((xx - w * 0.7) / (w * 0.12)) ** 2 + ((yy - h * 0.5) / (h * 0.25)) ** 2))
    return np.clip(img + rng.normal(0, 8, (h, w)), 0, 255).astype(np.uint8)


def png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray, exif_orientation: int | None = None) -> bytes:
    img = Image.fromarray(arr)
    buf = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, format="JPEG", exif=exif.tobytes())
    else:
        img.save(buf, format="JPEG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds almost no data (a 'bomb')."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def dicom_file(path: Path, pixels: np.ndarray | None, photometric: str = "MONOCHROME2",
               slope: float = 1.0, intercept: float = 0.0,
               window: tuple[float, float] | None = None) -> Path:
    """Write a minimal uncompressed DICOM file (Explicit VR Little Endian)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName = "DX", "Test^Synthetic"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        if window:
            ds.WindowCenter, ds.WindowWidth = window
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path
