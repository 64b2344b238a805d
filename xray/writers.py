"""Encoders: a rendered dual-energy pair -> file bytes as real scanners deliver them. Same input, same bytes.

- png / jpeg: 8-bit pseudo-colour RGB in a vendor palette (what a screening station shows and exports)
- gray: 8-bit single-energy grayscale PNG (older single-view scanners): the high-energy transmission
- tiff: raw dual energy, two 16-bit pages (page 0 high, page 1 low), JSON description naming the pages
- npz: raw dual energy, uint16 arrays `high` and `low`, zip entries with a fixed timestamp
- dicos: DICOS (DICOM for security screening) Digital X-Ray, 2 frames of 16 bits (high, low)
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image

from xray.palettes import pseudo_colour

FORMATS = ("png", "jpeg", "gray", "tiff", "npz", "dicos")
SUFFIX = {"png": ".png", "jpeg": ".jpg", "gray": ".png", "tiff": ".tiff", "npz": ".npz", "dicos": ".dcm"}
# DICOS Digital X-Ray Image Storage - For Processing (NEMA IIC 1 v04-2010; DICOM PS3.4 SOP class 501.2.2)
DICOS_DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.501.2.2"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def to_uint16(trans: np.ndarray) -> np.ndarray:
    """Transmission in [0, 1] -> detector counts 0..65535 (rounded)."""
    return np.round(np.clip(trans, 0.0, 1.0) * 65535.0).astype(np.uint16)


def encode_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB" if rgb.ndim == 3 else "L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_tiff(high: np.ndarray, low: np.ndarray, meta: dict[str, object] | None = None) -> bytes:
    import tifffile

    buf = io.BytesIO()
    desc = json.dumps({"xscreen": "dual-energy", "pages": ["high", "low"], **(meta or {})}, sort_keys=True)
    with tifffile.TiffWriter(buf) as tif:
        for page in (high, low):
            tif.write(to_uint16(page), photometric="minisblack", compression="zlib", description=desc,
                      metadata=None, software="xscreen")
            desc = None  # type: ignore[assignment]  # description on the first page only
    return buf.getvalue()


def encode_npz(high: np.ndarray, low: np.ndarray) -> bytes:
    """np.savez_compressed stamps the current time into the zip; we write the same layout with a fixed one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in (("high", to_uint16(high)), ("low", to_uint16(low))):
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def encode_dicos(high: np.ndarray, low: np.ndarray, uid_seed: str) -> bytes:
    """A minimal DICOS DX object: 2 frames (high, low), 16-bit unsigned, explicit VR little endian."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(DICOS_DX_PROCESSING)
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid_seed, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = UID(DICOS_DX_PROCESSING)
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[uid_seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[uid_seed, "series"])
    ds.Modality = "DX"
    ds.Manufacturer = "xscreen synthetic"
    ds.ImageComments = "frames: high, low (dual energy transmission x 65535)"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = 2
    ds.Rows, ds.Columns = high.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.stack([to_uint16(high), to_uint16(low)]).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def encode(fmt: str, high: np.ndarray, low: np.ndarray, *, palette: str = "reference", uid_seed: str = "0",
           meta: dict[str, object] | None = None) -> bytes:
    """File bytes of one scan in `fmt` (one of FORMATS)."""
    if fmt == "png":
        return encode_png(pseudo_colour(high, low, palette))
    if fmt == "jpeg":
        return encode_jpeg(pseudo_colour(high, low, palette))
    if fmt == "gray":
        return encode_png(np.round(np.clip(high, 0, 1) * 255).astype(np.uint8))
    if fmt == "tiff":
        return encode_tiff(high, low, meta)
    if fmt == "npz":
        return encode_npz(high, low)
    if fmt == "dicos":
        return encode_dicos(high, low, uid_seed)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
