"""The one image reader: what it accepts, what it refuses, and how it says so."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from diachestxr.io import MAX_PIXELS, ImageReadError, read_xray
from tests.hostile import encapsulated_dicom, progressive_jpeg_with_scans, rle_bomb
from tests.images import chest_like, dicom_file, jpeg_bytes, png_bytes, png_header_only


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"this is a text file, not an image\n" * 20, "not a recognised image"),
    ("empty.png", b"", "empty"),
    ("tiny.png", png_bytes(np.full((1, 1), 128, np.uint8)), "too small"),
    ("small.png", png_bytes(chest_like(31, 200)), "at least 32 px"),
    ("blank.png", png_bytes(np.full((64, 64), 7, np.uint8)), "blank"),
])
def test_refusals_name_the_problem(tmp_path, name, data, message):
    with pytest.raises(ImageReadError, match=message) as err:
        read_xray(write(tmp_path, name, data))
    assert name in str(err.value)


def test_other_formats_are_refused(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(chest_like()).save(buf, format="GIF")
    with pytest.raises(ImageReadError, match="GIF images are not supported; expected PNG or JPEG"):
        read_xray(write(tmp_path, "scan.gif", buf.getvalue()))


def test_truncated_jpeg(tmp_path):
    data = jpeg_bytes(chest_like(512, 512))
    with pytest.raises(ImageReadError, match="damaged or truncated"):
        read_xray(write(tmp_path, "cut.jpg", data[: len(data) // 2]))


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    path = write(tmp_path, "bomb.png", png_header_only(100_000, 100_000))
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match="megapixels"):
        read_xray(path)
    assert time.perf_counter() - start < 1.0  # 10 gigapixels were not decoded


def test_just_over_the_pixel_limit_is_refused(tmp_path):
    side = int(MAX_PIXELS ** 0.5) + 1
    with pytest.raises(ImageReadError, match="larger than the limit"):
        read_xray(write(tmp_path, "big.png", png_header_only(side, side)))


def test_colour_photograph_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    with pytest.raises(ImageReadError, match="colour photograph"):
        read_xray(write(tmp_path, "holiday.jpg", jpeg_bytes(photo)))


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_xray(tmp_path / "nope.png")
    with pytest.raises(TypeError):
        read_xray(12345)


# ----------------------------------------------------------------------------- formats
def test_png_jpeg_bytes_pil_numpy_agree(tmp_path):
    gray = chest_like()
    expected = read_xray(gray)
    assert expected.dtype == np.uint8 and expected.shape == gray.shape
    np.testing.assert_array_equal(read_xray(write(tmp_path, "a.png", png_bytes(gray))), expected)
    np.testing.assert_array_equal(read_xray(png_bytes(gray)), expected)
    np.testing.assert_array_equal(read_xray(Image.fromarray(gray)), expected)
    jpeg = read_xray(write(tmp_path, "a.jpg", jpeg_bytes(gray)))
    assert np.abs(jpeg.astype(int) - gray).mean() < 8  # JPEG loss on noise


def test_rgb_rgba_palette_grayscale_radiographs(tmp_path):
    gray = chest_like()
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(gray.shape + (1,), 255, np.uint8)], axis=2)
    for arr in (rgb, rgba):
        out = read_xray(write(tmp_path, "c.png", png_bytes(arr)))
        np.testing.assert_allclose(out.astype(int), gray, atol=1)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert np.abs(read_xray(buf.getvalue()).astype(int) - gray).mean() < 3


def test_16bit_png_uses_the_full_range(tmp_path):
    gray16 = (chest_like().astype(np.uint16) * 64 + 1000).astype(np.uint16)  # 12-bit-like data
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = read_xray(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    # linear: same ordering and proportions as the 16-bit data
    expected = (gray16 - gray16.min()) / (gray16.max() - gray16.min()) * 255
    assert np.abs(out - expected).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    gray = chest_like(200, 120)
    out = read_xray(write(tmp_path, "rot.jpg", jpeg_bytes(gray, exif_orientation=6)))
    assert out.shape == (120, 200)  # rotated 90 degrees into display orientation


# ------------------------------------------------------------------------------- DICOM
def test_dicom_monochrome2_with_rescale_and_window(tmp_path):
    raw = chest_like().astype(np.uint16) * 10  # stored values 0..2550
    path = dicom_file(tmp_path / "m2.dcm", raw, slope=2.0, intercept=-1000.0, window=(1550.0, 3000.0))
    out = read_xray(path)
    hu = raw * 2.0 - 1000.0
    windowed = np.clip((hu - (1550 - 0.5)) / (3000 - 1) + 0.5, 0, 1)
    expected = (windowed - windowed.min()) / (windowed.max() - windowed.min()) * 255
    assert out.shape == raw.shape
    assert np.abs(out.astype(float) - expected).max() <= 2


def test_dicom_monochrome1_is_inverted(tmp_path):
    raw = chest_like().astype(np.uint16) * 10
    m1 = read_xray(dicom_file(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1"))
    m2 = read_xray(dicom_file(tmp_path / "m2.dcm", raw, photometric="MONOCHROME2"))
    np.testing.assert_array_equal(m1, 255 - m2)


def test_dicom_detected_by_content_not_name(tmp_path):
    raw = chest_like().astype(np.uint16)
    path = dicom_file(tmp_path / "scan.dcm", raw)
    renamed = path.rename(tmp_path / "scan.bin")
    assert read_xray(renamed).shape == raw.shape


def test_dicom_without_pixel_data(tmp_path):
    with pytest.raises(ImageReadError, match="no pixel data"):
        read_xray(dicom_file(tmp_path / "report.dcm", None))


def test_damaged_dicom(tmp_path):
    data = dicom_file(tmp_path / "ok.dcm", chest_like().astype(np.uint16)).read_bytes()
    with pytest.raises(ImageReadError, match="DICOM"):
        read_xray(write(tmp_path, "cut.dcm", data[: len(data) // 3]))


# ------------------------------------------------ bounded decoders, colour, odd headers
def test_rle_that_decodes_past_its_header_is_refused_before_decoding(tmp_path):
    from pydicom.uid import RLELossless

    path = encapsulated_dicom(tmp_path / "rle_bomb.dcm", rle_bomb(200 * 2**20), 64, 64, RLELossless)
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match="RLE-compressed pixel data decodes to more"):
        read_xray(path)
    assert time.perf_counter() - start < 2  # counted up to the declared size, not decoded


def test_rle_radiograph_still_reads(tmp_path):
    import pydicom
    from pydicom.uid import RLELossless

    raw = chest_like().astype(np.uint16) * 16
    path = dicom_file(tmp_path / "plain.dcm", raw)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    assert np.array_equal(read_xray(tmp_path / "rle.dcm"), read_xray(path))


def test_compressed_frame_larger_than_its_header_is_refused(tmp_path):
    from pydicom.uid import JPEGBaseline8Bit

    frame = jpeg_bytes(chest_like(600, 500))
    path = encapsulated_dicom(tmp_path / "liar.dcm", frame, 64, 64, JPEGBaseline8Bit)
    with pytest.raises(ImageReadError, match="says 64x64 pixels but its compressed image is 500x600"):
        read_xray(path)
    honest = encapsulated_dicom(tmp_path / "honest.dcm", frame, 600, 500, JPEGBaseline8Bit)
    assert read_xray(honest).shape == (600, 500)


def test_codestream_sizes_of_jpeg_and_jpeg2000():
    import struct

    from diachestxr.io import codestream_size

    assert codestream_size(jpeg_bytes(chest_like(40, 70))) == (70, 40)
    siz = b"\xff\x4f\xff\x51" + struct.pack(">HH4I", 41, 0, 3000, 2000, 100, 50)
    assert codestream_size(siz + b"\0" * 40) == (2900, 1950)
    assert codestream_size(b"no header here") is None


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding(tmp_path):
    from diachestxr.io import MAX_JPEG_SCANS

    assert read_xray(progressive_jpeg_with_scans(chest_like(256, 256), 0)).shape == (256, 256)  # ~10 scans: fine
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match=f"scans; a radiograph has fewer than 20 and the limit is {MAX_JPEG_SCANS}"):
        read_xray(write(tmp_path, "scans.jpg", progressive_jpeg_with_scans(chest_like(256, 256), 2000)))
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("photometric", ["YBR_FULL", "YBR_FULL_422"])
def test_ybr_dicom_radiograph_is_read_as_gray_once(tmp_path, photometric):
    """pydicom returns YBR as RGB: converting it again turned gray films into "colour photos"."""
    from pydicom.uid import JPEGBaseline8Bit

    gray = chest_like(128, 128)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95,
                              subsampling=2 if photometric.endswith("422") else 0)
    path = encapsulated_dicom(tmp_path / "ybr.dcm", buf.getvalue(), 128, 128, JPEGBaseline8Bit,
                               photometric=photometric, samples=3)
    out = read_xray(path)
    assert np.abs(out.astype(int) - gray).mean() < 3


def test_native_ybr_full_dicom(tmp_path):
    import pydicom
    from pydicom.pixels import convert_color_space

    gray = chest_like(64, 64)
    ybr = convert_color_space(np.repeat(gray[..., None], 3, axis=2), "RGB", "YBR_FULL")
    path = dicom_file(tmp_path / "ybr_native.dcm", gray.astype(np.uint16))
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = ybr.astype(np.uint8).tobytes()
    ds.save_as(path)
    assert np.abs(read_xray(path).astype(int) - gray).mean() < 3


def test_dicom_without_file_meta_header(tmp_path):
    import pydicom

    raw = chest_like().astype(np.uint16) * 16
    ds = pydicom.dcmread(dicom_file(tmp_path / "with_meta.dcm", raw))
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)  # the data set alone: no preamble, no "DICM", no file meta
    bare = write(tmp_path, "bare.dcm", fp.getvalue())
    assert bare.read_bytes()[128:132] != b"DICM"
    assert np.array_equal(read_xray(bare), read_xray(tmp_path / "with_meta.dcm"))


def test_png_holding_dicm_at_byte_128_is_read_as_png(tmp_path):
    import struct
    import zlib

    png = png_bytes(chest_like())
    pad = 128 - 33 - 8  # after the signature and IHDR (33 bytes) and a chunk's length and type
    data = b"keyword\0" + b"x" * (pad - 8) + b"DICM" + b"y" * 16
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    mixed = png[:33] + chunk + png[33:]
    assert mixed[128:132] == b"DICM"
    assert read_xray(write(tmp_path, "mixed.dcm", mixed)).shape == chest_like().shape


@pytest.mark.parametrize("change, message", [
    (dict(RescaleSlope="abc"), "rescale tags"),
    (dict(PhotometricInterpretation='<a href="x">click</a>'), "photometric interpretation"),
])
def test_bad_dicom_values_are_our_refusals(tmp_path, change, message):
    import pydicom

    path = dicom_file(tmp_path / "odd.dcm", chest_like().astype(np.uint16))
    ds = pydicom.dcmread(path)
    for key, value in change.items():
        ds[key].value = value if key != "RescaleSlope" else None
        if key == "RescaleSlope":
            from pydicom.dataelem import DataElement
            ds[key] = DataElement(0x00281053, "LO", value)
    ds.save_as(path)
    with pytest.raises(ImageReadError, match=message):
        read_xray(path)


def test_unknown_transfer_syntax_is_our_refusal(tmp_path):
    import pydicom

    path = dicom_file(tmp_path / "odd.dcm", chest_like().astype(np.uint16))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5"
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="transfer syntax 1.2.3.4.5 is not a known one"):
        read_xray(path)


def test_control_characters_of_a_file_name_are_escaped(tmp_path):
    path = write(tmp_path, "x.png", b"not an image")
    with pytest.raises(ImageReadError) as err:
        read_xray(path, name="evil\x1b[31m\nname.png")
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)
    assert "evil\\x1b[31m\\nname.png" in str(err.value)


# -------------------------------------------------------------------- real radiographs
def test_every_example_reads(examples_dir):
    files = sorted(p for p in examples_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(files) >= 10
    for path in files:
        gray = read_xray(path)
        assert gray.ndim == 2 and gray.dtype == np.uint8 and min(gray.shape) >= 200


def test_no_real_radiograph_is_taken_for_a_photo(data_dir):
    """The colour-photo check must not refuse real radiographs saved as RGB (Kermany's are)."""
    import csv

    for task in ("screening", "diagnosis"):
        csv_path = data_dir / task / "labels.csv"
        rows = [r for r in csv.DictReader(csv_path.open()) if r["split"] == "test"]
        for r in rows:
            read_xray(csv_path.parent / r["path"])
