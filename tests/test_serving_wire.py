"""What the stream sends to a classifier replica: uint8 only where that loses nothing."""

from __future__ import annotations

import numpy as np

from serving.deployments import wire_image
from tests.serving_fakes import png_bytes
from xray.formats import read_scan


def test_8bit_scans_travel_as_uint8_without_loss() -> None:
    scan = read_scan(png_bytes(77, 32), name="a.png")
    wire = wire_image(scan)
    assert wire.dtype == np.uint8 and wire.shape == scan.rgb.shape
    np.testing.assert_allclose(wire.astype(np.float32) / 255, scan.rgb, atol=1e-6)


def test_16bit_grayscale_travels_as_float() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).save(buf, format="PNG")
    scan = read_scan(buf.getvalue(), name="g16.png")
    assert scan.bit_depth == 16
    assert wire_image(scan).dtype == np.float32
