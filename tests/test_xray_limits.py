"""Decoded-size limits by bytes (from the header, before any pixel is decoded) and TIFF page counts."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import tifffile

from xray.formats import read_scan
from xscreen.errors import BadScanError


def _tiff(*pages: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page in pages:
            tif.write(page, photometric="minisblack" if page.ndim == 2 else "rgb")
    return buf.getvalue()


def test_float64_four_channel_tiff_is_refused_by_decoded_bytes_before_decoding() -> None:
    # 1000 x 1000 px is far under the pixel limit, but float64 x 4 channels decodes to 32 MB.
    data = _tiff(np.zeros((1000, 1000, 4), np.float64))
    tracemalloc.start()
    try:
        with pytest.raises(BadScanError) as err:
            read_scan(data, name="f64.tif", max_bytes=len(data) + 1, max_decoded_bytes=16 * 2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.reason_code == "too_large" and "would decode to 32000000 bytes" in err.value.reason
    assert peak < 8 * 2**20  # refused from the header: the 32 MB array was never allocated


@pytest.mark.parametrize("kind", ["png16", "jpeg", "npz"])
def test_decoded_limit_applies_to_every_format(kind: str) -> None:
    from PIL import Image

    buf = io.BytesIO()
    if kind == "png16":
        Image.fromarray(np.zeros((300, 300), np.uint16)).save(buf, format="PNG")  # 180,000 bytes decoded
    elif kind == "jpeg":
        Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(buf, format="JPEG")  # 270,000 bytes
    else:
        np.savez(buf, high=np.zeros((300, 300), np.uint16), low=np.zeros((300, 300), np.uint16))  # 360,000
    data = buf.getvalue()
    with pytest.raises(BadScanError) as err:
        read_scan(data, name=f"x.{kind}", max_decoded_bytes=100_000)
    assert err.value.reason_code == "too_large"
    read_scan(data, name=f"x.{kind}", max_decoded_bytes=400_000)  # under the limit: decodes


def test_three_page_tiff_is_refused_not_scored_from_page_zero() -> None:
    pages = [np.full((64, 64), v, np.uint16) for v in (100, 200, 300)]
    with pytest.raises(BadScanError) as err:
        read_scan(_tiff(*pages), name="stack.tif")
    assert err.value.reason_code == "bad_shape" and "3 pages" in err.value.reason
    assert read_scan(_tiff(*pages[:2]), name="dual.tif").dual_energy  # two pages: dual energy, as before
    assert not read_scan(_tiff(pages[0]), name="one.tif").dual_energy
