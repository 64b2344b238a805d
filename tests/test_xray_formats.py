"""The one reader: every format round-trips; bad files are refused with the right reason code, never a crash."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xray.formats import SUPPORTED_SUFFIXES, image_stats, read_scan, read_scans, scan_files
from xray.palettes import pseudo_colour
from xray.synth import Parcel, render_parcel
from xray.writers import FORMATS, SUFFIX, encode, encode_npz, encode_tiff
from xscreen.errors import BadScanError, XscreenError
from xscreen.settings import DEFAULT_CLASSES

STAT_KEYS = {"mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
             "metal_fraction"}


@pytest.fixture(scope="module")
def parcel() -> Parcel:
    return render_parcel(np.random.default_rng(7), classes=DEFAULT_CLASSES, threat_rate=1.0, size=(160, 128))


def _refused(data: bytes, code: str, **kw: int) -> BadScanError:
    with pytest.raises(BadScanError) as info:
        read_scan(data, name="probe.bin", **kw)
    assert info.value.reason_code == code, info.value.reason
    assert "probe.bin" in str(info.value)
    return info.value


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_through_the_reader(parcel: Parcel, fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"scan{SUFFIX[fmt]}"
    path.write_bytes(encode(fmt, parcel.high, parcel.low, palette=parcel.palette))
    assert path.suffix in SUPPORTED_SUFFIXES
    scan = read_scan(path)
    assert scan.rgb.shape == (128, 160, 3) and scan.rgb.dtype == np.float32
    assert scan.high.shape == (128, 160) and scan.high.dtype == np.float32
    assert 0.0 <= scan.rgb.min() and scan.rgb.max() <= 1.0
    expected_format = {"gray": "png"}.get(fmt, fmt)
    assert scan.source_format == expected_format
    if fmt in ("tiff", "npz", "dicos"):
        assert scan.dual_energy and scan.bit_depth == 16 and scan.low is not None
        np.testing.assert_allclose(scan.high, parcel.high, atol=1e-4)
        np.testing.assert_allclose(scan.low, parcel.low, atol=1e-4)
        np.testing.assert_array_equal(np.round(scan.rgb * 255).astype(np.uint8),
                                      pseudo_colour(scan.high, scan.low, "reference"))
    elif fmt == "gray":
        assert not scan.dual_energy and scan.bit_depth == 8 and scan.low is None
        np.testing.assert_allclose(scan.high, parcel.high, atol=0.5 / 255 + 1e-6)
        np.testing.assert_array_equal(scan.rgb[..., 0], scan.rgb[..., 2])
    elif fmt == "png":
        np.testing.assert_array_equal(np.round(scan.rgb * 255).astype(np.uint8), parcel.rgb())
    else:  # jpeg: lossy
        assert np.abs(scan.rgb - parcel.rgb() / 255.0).mean() < 0.03
    stats = image_stats(scan)
    assert set(stats) == STAT_KEYS
    assert all(np.isfinite(v) and v >= 0 for v in stats.values())
    assert stats["organic_fraction"] + stats["inorganic_fraction"] + stats["metal_fraction"] <= 1.0 + 1e-6


def test_reading_bytes_and_path_agree(parcel: Parcel, tmp_path: Path) -> None:
    data = encode("npz", parcel.high, parcel.low)
    (tmp_path / "a.npz").write_bytes(data)
    np.testing.assert_array_equal(read_scan(data).high, read_scan(tmp_path / "a.npz").high)


def test_grayscale_has_no_material_fractions_and_dual_energy_has_some(parcel: Parcel) -> None:
    gray = image_stats(read_scan(encode("gray", parcel.high, parcel.low)))
    assert gray["organic_fraction"] == gray["inorganic_fraction"] == gray["metal_fraction"] == 0.0
    dual = image_stats(read_scan(encode("tiff", parcel.high, parcel.low)))
    assert dual["organic_fraction"] + dual["inorganic_fraction"] + dual["metal_fraction"] == pytest.approx(1.0)


def test_empty_file_is_zero_byte(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadScanError) as info:
        read_scan(tmp_path / "empty.png")
    assert info.value.reason_code == "zero_byte" and "empty.png" in str(info.value)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff", "npz", "dicos"])
def test_truncated_files_are_refused_as_truncated(parcel: Parcel, fmt: str) -> None:
    data = encode(fmt, parcel.high, parcel.low)
    _refused(data[: len(data) // 2], "truncated")


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(BadScanError) as info:
        read_scan(tmp_path / "nope.png")
    assert info.value.reason_code == "unreadable"


def test_text_and_unsupported_images_are_refused() -> None:
    _refused(b"hello, this is not an image\n" * 10, "not_image")
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="GIF")
    _refused(buf.getvalue(), "unsupported_format")


def _png(width: int, height: int, depth: int, colour: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_16_bit_colour_png_is_a_bad_bit_depth() -> None:
    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 32 for _ in range(32))
    _refused(_png(32, 32, 16, 2, rows), "bad_bit_depth")


def test_8_bit_tiff_claiming_dual_energy_is_a_bad_bit_depth() -> None:
    import tifffile

    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for _ in range(2):
            tif.write(np.zeros((32, 32), dtype=np.uint8))
    _refused(buf.getvalue(), "bad_bit_depth")
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 32, 32), dtype=np.float32))  # one page, two float planes
    _refused(buf.getvalue(), "bad_bit_depth")


def test_float_npz_is_a_bad_bit_depth_and_missing_low_a_bad_shape() -> None:
    buf = io.BytesIO()
    np.savez(buf, high=np.ones((32, 32), np.float32), low=np.ones((32, 32), np.float32))
    _refused(buf.getvalue(), "bad_bit_depth")
    buf = io.BytesIO()
    np.savez(buf, high=np.ones((32, 32), np.uint16))
    _refused(buf.getvalue(), "bad_shape")


def test_png_header_claiming_100000_by_100000_is_too_large_without_decoding() -> None:
    _refused(_png(100_000, 100_000, 8, 2, b"\x00" * 100), "too_large")


def _tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD claims width x height 16-bit pixels, with almost no data."""
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, min(width * height * 2, 2**32 - 1))]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHII", t, typ, n, v) if typ == 4 else struct.pack("<HHIHH", t, typ, n, v, 0)
        for t, typ, n, v in tags) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8 + ifd


def test_tiff_header_claiming_100000_by_100000_is_too_large() -> None:
    _refused(_tiff_claiming(100_000, 100_000), "too_large")


def test_limits_on_bytes_and_pixels_are_configurable(parcel: Parcel) -> None:
    data = encode("png", parcel.high, parcel.low)
    _refused(data, "too_large", max_bytes=len(data) - 1)
    _refused(data, "too_large", max_pixels=160 * 128 - 1)
    read_scan(data, max_pixels=160 * 128)


def test_tiny_images_are_a_bad_shape() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    _refused(buf.getvalue(), "bad_shape")


def test_garbage_after_a_valid_signature_never_escapes_as_a_library_error(parcel: Parcel) -> None:
    rng = np.random.default_rng(0)
    samples = [encode(f, parcel.high, parcel.low) for f in ("png", "jpeg", "tiff", "npz", "dicos")]
    samples.append(encode_tiff(parcel.high, parcel.low))
    samples.append(encode_npz(parcel.high, parcel.low))
    for data in samples:
        for _ in range(6):
            corrupt = bytearray(data)
            start = int(rng.integers(8, min(len(data), 400)))
            corrupt[start:start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            try:
                read_scan(bytes(corrupt))
            except BadScanError as err:
                assert err.reason_code in {"truncated", "corrupt", "bad_shape", "bad_bit_depth", "too_large",
                                           "not_image", "unsupported_format"}


def test_scan_files_expands_folders_to_their_scan_files_and_names_bad_arguments(tmp_path: Path) -> None:
    for rel in ("b.png", "a.JPG", "bay-2/c.tiff", "notes.txt", "labels.csv", ".hidden.png", ".cache/d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    loose = tmp_path / "notes.txt"  # a file named on the command line is taken as given: read_scan judges its bytes
    assert scan_files([tmp_path, loose]) == [tmp_path / "a.JPG", tmp_path / "b.png", tmp_path / "bay-2" / "c.tiff", loose]
    with pytest.raises(XscreenError, match="no such file or folder"):
        scan_files([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(XscreenError, match="no scan files in this folder"):
        scan_files([tmp_path / "empty"])


def test_read_scans_goes_on_past_a_bad_file_and_says_which_and_why(parcel: Parcel, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(encode("png", parcel.high, parcel.low, palette=parcel.palette))
    (tmp_path / "empty.png").write_bytes(b"")
    order = [tmp_path / "empty.png", good, tmp_path / "gone.png"]
    read = list(read_scans(order))
    assert [p for p, _ in read] == order  # every path once, in order
    assert [getattr(r, "reason_code", None) for _, r in read] == ["zero_byte", None, "unreadable"]
    assert read[1][1].rgb.shape == (128, 160, 3)  # type: ignore[union-attr]
