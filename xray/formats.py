"""The one reader of scans: any supported file -> ScanImage, or BadScanError with a stable reason code.

Formats are recognised by their magic bytes, not their suffix. Sizes are checked from the header before any
pixel is decoded (a 100000 x 100000 PNG is refused in microseconds). Bit-depth rules:

- pseudo-colour (RGB/RGBA/palette) must be 8-bit: a 16-bit colour image is `bad_bit_depth`;
- raw dual energy (two TIFF pages, npz `high`/`low`, two DICOS frames) must be 16-bit unsigned: 8-bit or float
  data that claims dual energy is `bad_bit_depth`;
- single-channel grayscale (single energy) may be 8- or 16-bit; 1/2/4-bit or float is `bad_bit_depth`.

Memory is bounded before decoding too: the bytes the decoded arrays will take (pixels x channels x bytes per
sample, read from the header: a float64 4-channel TIFF under the pixel limit is still 1.2 GB) must stay under
`max_decoded_bytes`, else `too_large`. A TIFF holds exactly one page (grayscale, RGB or 2-plane dual energy)
or two (dual energy); more pages are refused (`bad_shape`), never scored from page 0.

Reason codes: zero_byte, truncated, corrupt, not_image, unsupported_format, bad_bit_depth, too_large,
bad_shape, unreadable. No library exception escapes read_scan.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from xray.materials import RATIO_METAL_MIN, RATIO_ORGANIC_MAX, TRANSMISSION_FLOOR
from xray.palettes import pseudo_colour
from xscreen.errors import BadScanError, XscreenError

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npz", ".dcm"})
MIN_SIDE = 16
DEFAULT_MAX_DECODED_BYTES = 512 * 2**20  # serving.max_decoded_bytes sets it for the stream


class ScanImage:
    """A decoded scan. 8-bit sources keep their uint8 planes (`rgb8`, `high8`); the float views `rgb` and `high`
    are made from them on first use (values identical to converting at decode time), so a serving ingest that
    only letterboxes the uint8 pixels and takes statistics on subsamples never converts a whole image to float.
    """

    def __init__(self, rgb: np.ndarray | None, high: np.ndarray | None, low: np.ndarray | None, source_format: str,
                 bit_depth: int, dual_energy: bool, rgb8: np.ndarray | None = None,
                 high8: np.ndarray | None = None) -> None:
        if (rgb is None and rgb8 is None) or (high is None and high8 is None):
            raise ValueError("ScanImage needs rgb or rgb8, and high or high8")
        self._rgb, self._high = rgb, high
        self.low = low  # float32 (H, W) low-energy transmission, dual-energy sources only
        self.source_format = source_format  # png | jpeg | tiff | npz | dicos
        self.bit_depth = bit_depth  # 8 or 16
        self.dual_energy = dual_energy
        # uint8 (H, W, 3) with rgb == rgb8 / 255 exactly, where the pseudo-colour is 8-bit (8-bit sources and
        # palette-rendered dual energy); None for 16-bit grayscale. Letterboxing and the wire to replicas use it.
        self.rgb8 = rgb8
        self.high8 = high8  # uint8 (H, W) with high == high8 / 255 exactly (8-bit sources), else None

    @property
    def rgb(self) -> np.ndarray:
        """float32 (H, W, 3) in [0, 1]: the pseudo-colour a screening station shows."""
        if self._rgb is None:
            assert self.rgb8 is not None
            self._rgb = _unit(self.rgb8)
        return self._rgb

    @property
    def high(self) -> np.ndarray:
        """float32 (H, W) transmission in [0, 1] (1 = empty beam); gray/255 for grayscale."""
        if self._high is None:
            assert self.high8 is not None
            self._high = _unit(self.high8)
        return self._high

    @property
    def height(self) -> int:
        return int((self.high8 if self.high8 is not None else self.high).shape[0])

    @property
    def width(self) -> int:
        return int((self.high8 if self.high8 is not None else self.high).shape[1])

    def high_sub(self, rows: slice, cols: slice) -> np.ndarray:
        """high[rows, cols] without converting the whole plane (same values)."""
        return _unit(self.high8[rows, cols]) if self.high8 is not None else self.high[rows, cols]

    def rgb_sub(self, rows: slice, cols: slice) -> np.ndarray:
        """rgb[rows, cols] without converting the whole image (same values)."""
        return _unit(self.rgb8[rows, cols]) if self.rgb8 is not None else self.rgb[rows, cols]


def scan_files(paths: Iterable[Path]) -> list[Path]:
    """The files to score for command-line arguments: a file as given (whatever its suffix: read_scan judges its
    bytes), a folder as the scan files under it (SUPPORTED_SUFFIXES, any case, at any depth, hidden ones skipped),
    in sorted order. XscreenError names an argument that does not exist or a folder holding no scan file."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise XscreenError(f"{path}: no scan files in this folder ({', '.join(sorted(SUPPORTED_SUFFIXES))})",
                                  title="Bad argument")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise XscreenError(f"{path}: no such file or folder", title="Bad argument")
    return files


def _unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], the one conversion every 8-bit plane goes through (k * float32(1/255))."""
    return pixels.astype(np.float32) * np.float32(1 / 255)


class _Refuse(Exception):
    """Raised inside decoders; read_scan turns it into BadScanError with the file's name."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _check_dims(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise _Refuse("bad_shape", f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise _Refuse("too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels}")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _Refuse("bad_shape", f"{width}x{height} is smaller than {MIN_SIDE} pixels on a side")


def _check_decoded(nbytes: int, max_decoded: int, what: str) -> None:
    """Refuse before decoding when the arrays the header announces would take more than `max_decoded` bytes."""
    if nbytes > max_decoded:
        raise _Refuse("too_large", f"{what} would decode to {nbytes} bytes, over the limit of {max_decoded}")


def _from_dual(high_u16: np.ndarray, low_u16: np.ndarray, fmt: str) -> ScanImage:
    if high_u16.shape != low_u16.shape:
        raise _Refuse("bad_shape", f"high {high_u16.shape} and low {low_u16.shape} differ in shape")
    high = high_u16.astype(np.float32) * np.float32(1 / 65535)
    low = low_u16.astype(np.float32) * np.float32(1 / 65535)
    rgb8 = pseudo_colour(high, low, "reference")  # uint8 (H, W, 3)
    return ScanImage(None, high, low, fmt, 16, True, rgb8)


def _from_gray(gray: np.ndarray, fmt: str) -> ScanImage:
    if gray.dtype == np.uint8:
        return ScanImage(None, None, None, fmt, 8, False, np.repeat(gray[:, :, None], 3, axis=2), gray)
    if gray.dtype == np.uint16:
        high = gray.astype(np.float32) * np.float32(1 / 65535)
        return ScanImage(np.repeat(high[:, :, None], 3, axis=2), high, None, fmt, 16, False)
    raise _Refuse("bad_bit_depth", f"grayscale must be 8- or 16-bit unsigned, got {gray.dtype}")


def _from_rgb(rgb8: np.ndarray, fmt: str) -> ScanImage:
    if rgb8.dtype != np.uint8:
        raise _Refuse("bad_bit_depth", f"pseudo-colour must be 8-bit, got {rgb8.dtype}")
    rgb8 = np.ascontiguousarray(rgb8[:, :, :3])
    # pseudo-colour keeps no physical transmission; brightness (HSV value) is a monotone proxy of it.
    # Channel max on uint8 gives the same values ~20x faster than a float reduce over the last axis.
    value8 = np.maximum(np.maximum(rgb8[:, :, 0], rgb8[:, :, 1]), rgb8[:, :, 2])
    return ScanImage(None, None, None, fmt, 8, False, rgb8, value8)


# PNG colour type -> samples per pixel as decoded (a palette image becomes RGB).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _png_header(data: bytes, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> int:
    """Check the IHDR; returns the PNG colour type."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _Refuse("truncated", "PNG ends before its header is complete")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    _check_dims(width, height, max_pixels)
    samples = _PNG_SAMPLES.get(colour, 4)
    _check_decoded(width * height * samples * max(1, depth // 8), max_decoded, f"{width}x{height} PNG")
    if colour in (2, 6) and depth != 8:
        raise _Refuse("bad_bit_depth", f"{depth}-bit colour PNG: pseudo-colour must be 8-bit "
                      "(raw 16-bit dual energy comes as 2-page TIFF, npz or DICOS)")
    if colour in (0, 4) and depth not in (8, 16):
        raise _Refuse("bad_bit_depth", f"{depth}-bit grayscale PNG: single energy must be 8- or 16-bit")
    return int(colour)


# PNG colour type -> the array shape imagecodecs must return for the fast path: gray (H, W), RGB, RGBA.
_FAST_PNG_CHANNELS = {0: None, 2: 3, 6: 4}


def _decode_png(data: bytes, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    """Gray, RGB and RGBA PNGs through imagecodecs (libpng + zlib-ng: ~1.5x faster than Pillow here, same
    pixels: PNG is lossless); palette and gray+alpha PNGs, and any file imagecodecs rejects, go through Pillow,
    whose errors give the refusal its reason code and message."""
    colour = _png_header(data, max_pixels, max_decoded)
    if colour in _FAST_PNG_CHANNELS:
        try:
            import imagecodecs

            arr = imagecodecs.png_decode(data)
        except Exception:  # noqa: BLE001 -- truncated or corrupt: let Pillow name the problem
            arr = None
        channels = _FAST_PNG_CHANNELS[colour]
        if arr is not None and arr.shape[2:] == (() if channels is None else (channels,)):
            if arr.ndim == 2:
                return _from_gray(arr, "png")
            return _from_rgb(arr, "png")
    return _decode_pil(data, "png", max_pixels, max_decoded)


# Pillow mode -> bytes per pixel once loaded (and once converted to RGB for the colour modes).
_PIL_PIXEL_BYTES = {"1": 1, "L": 1, "LA": 2, "P": 3, "I;16": 2, "I;16B": 2, "I": 4, "F": 4, "RGB": 3, "RGBA": 4,
                    "CMYK": 4, "YCbCr": 3}


def _decode_pil(data: bytes, fmt: str, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    from PIL import Image

    if fmt == "png":
        _png_header(data, max_pixels, max_decoded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: we apply our own limit below
        img = Image.open(io.BytesIO(data))
        _check_dims(img.width, img.height, max_pixels)
        per_pixel = _PIL_PIXEL_BYTES.get(img.mode, 4)
        _check_decoded(img.width * img.height * per_pixel, max_decoded, f"{img.width}x{img.height} {fmt} ({img.mode})")
        img.load()
    if img.mode in ("L", "LA"):
        return _from_gray(np.asarray(img.convert("L")), fmt)
    if img.mode in ("I;16", "I;16B", "I"):
        return _from_gray(np.asarray(img).astype(np.uint16), fmt)
    if img.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
        return _from_rgb(np.asarray(img.convert("RGB")), fmt)
    raise _Refuse("bad_bit_depth", f"unsupported pixel mode {img.mode} ({fmt})")


def _tiff_hw(shape: tuple[int, ...]) -> tuple[int, int]:
    """(H, W) of a TIFF page shaped (H, W), (H, W, C) or (C, H, W) with C <= 4 channels or planes."""
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if len(shape) == 3 and shape[-1] <= 4:
        return int(shape[0]), int(shape[1])
    if len(shape) == 3 and shape[0] <= 4:
        return int(shape[1]), int(shape[2])
    raise _Refuse("bad_shape", f"TIFF page of shape {shape}")


def _tiff_ifds_inside(data: bytes) -> None:
    """Walk a classic TIFF's IFD chain; `truncated` if an IFD lies past the end of the data."""
    if data[:2] not in (b"II", b"MM") or data[2:4] not in (b"*\x00", b"\x00*"):
        return  # BigTIFF: left to tifffile
    endian = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        raise _Refuse("truncated", "TIFF ends inside its header")
    offset, seen = struct.unpack(endian + "I", data[4:8])[0], 0
    while offset and seen < 64:
        if offset + 2 > len(data):
            raise _Refuse("truncated", f"TIFF directory at byte {offset} lies past the end ({len(data)} bytes)")
        count = struct.unpack(endian + "H", data[offset:offset + 2])[0]
        end = offset + 2 + 12 * count + 4
        if end > len(data):
            raise _Refuse("truncated", f"TIFF directory at byte {offset} runs past the end ({len(data)} bytes)")
        offset, seen = struct.unpack(endian + "I", data[end - 4:end])[0], seen + 1


def _decode_tiff(data: bytes, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    import tifffile

    _tiff_ifds_inside(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        pages = list(tif.pages)
        if len(pages) not in (1, 2):  # a third page is not ours to guess at: never score page 0 of a stack
            raise _Refuse("bad_shape", f"TIFF with {len(pages)} pages (expected 1, or 2 for dual energy)")
        shapes = [tuple(p.shape) for p in pages]  # type: ignore[union-attr]
        for shape in shapes:
            height, width = _tiff_hw(shape)
            _check_dims(width, height, max_pixels)
        nbytes = sum(int(np.prod(p.shape)) * np.dtype(p.dtype).itemsize for p in pages)  # type: ignore[union-attr]
        _check_decoded(nbytes, max_decoded, f"TIFF of {len(pages)} page(s) {shapes} {pages[0].dtype}")  # type: ignore[union-attr]
        for page in pages:
            end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)), default=0)  # type: ignore[union-attr]
            if end > len(data):
                raise _Refuse("truncated", f"TIFF pixel data ends at byte {end} but the file has {len(data)}")
        dtypes = [np.dtype(p.dtype) for p in pages]  # type: ignore[union-attr]
        if len(pages) == 2:
            if any(d != np.uint16 for d in dtypes):
                raise _Refuse("bad_bit_depth", f"2-page TIFF claims dual energy but holds {dtypes[0]}; "
                              "raw dual energy must be 16-bit unsigned")
            return _from_dual(pages[0].asarray(), pages[1].asarray(), "tiff")  # type: ignore[union-attr]
        arr = pages[0].asarray()  # type: ignore[union-attr]
    if arr.ndim == 3 and arr.shape[0] == 2:
        if arr.dtype != np.uint16:
            raise _Refuse("bad_bit_depth", f"2-plane TIFF claims dual energy but holds {arr.dtype}; "
                          "raw dual energy must be 16-bit unsigned")
        return _from_dual(arr[0], arr[1], "tiff")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return _from_rgb(arr, "tiff")
    if arr.ndim == 2:
        return _from_gray(arr, "tiff")
    raise _Refuse("bad_shape", f"TIFF of shape {arr.shape} is neither grayscale, RGB nor dual energy")


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(fh)
    return shape, dtype


def _decode_npz(data: bytes, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _Refuse("truncated", f"npz archive is incomplete ({exc})") from None
    with zf:
        names = set(zf.namelist())
        if not {"high.npy", "low.npy"} <= names:
            raise _Refuse("bad_shape", f"npz must hold arrays 'high' and 'low', has {sorted(names)}")
        nbytes = 0
        for member in ("high.npy", "low.npy"):
            shape, dtype = _npy_header(zf, member)
            if len(shape) != 2:
                raise _Refuse("bad_shape", f"npz array {member[:-4]} has shape {shape}, expected (H, W)")
            _check_dims(shape[1], shape[0], max_pixels)
            if dtype != np.uint16:
                raise _Refuse("bad_bit_depth", f"npz array {member[:-4]} is {dtype}; raw dual energy must be uint16")
            nbytes += shape[0] * shape[1] * dtype.itemsize
        _check_decoded(nbytes, max_decoded, "npz high/low")
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        return _from_dual(arrays["high"], arrays["low"], "npz")


def _decode_dicos(data: bytes, max_pixels: int, max_decoded: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    head = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    syntax = head.file_meta.get("TransferSyntaxUID")
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        raise _Refuse("unsupported_format", f"DICOS transfer syntax {syntax} (compressed) is not supported")
    rows, cols = int(head.get("Rows", 0)), int(head.get("Columns", 0))
    frames, bits = int(head.get("NumberOfFrames", 1) or 1), int(head.get("BitsAllocated", 0))
    _check_dims(cols, rows, max_pixels)
    if int(head.get("SamplesPerPixel", 1)) != 1 or frames not in (1, 2):
        raise _Refuse("bad_shape", f"DICOS with {frames} frames of {head.get('SamplesPerPixel')} samples")
    if bits not in (8, 16) or (frames == 2 and bits != 16):
        raise _Refuse("bad_bit_depth", f"DICOS with {frames} frame(s) of {bits} bits")
    _check_decoded(rows * cols * frames * bits // 8, max_decoded, f"DICOS {cols}x{rows}x{frames}")
    ds = pydicom.dcmread(io.BytesIO(data))
    need = rows * cols * frames * bits // 8
    raw = ds.get("PixelData", b"") or b""
    if len(raw) < need:
        raise _Refuse("truncated", f"DICOS pixel data has {len(raw)} of {need} bytes")
    pix = np.frombuffer(raw[:need], dtype=np.uint16 if bits == 16 else np.uint8).reshape(frames, rows, cols)
    return _from_dual(pix[0], pix[1], "dicos") if frames == 2 else _from_gray(pix[0].copy(), "dicos")


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "npz"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicos"
    if data[:4] in (b"GIF8", b"RIFF") or data[:2] == b"BM" or data[4:12] in (b"ftypavif", b"ftypheic"):
        raise _Refuse("unsupported_format", "image format not accepted (PNG, JPEG, TIFF, npz or DICOS)")
    raise _Refuse("not_image", "not an image file (no PNG, JPEG, TIFF, npz or DICOS signature)")


_TRUNCATION_HINTS = ("truncat", "end of file", "unexpected end", "eof", "not enough", "incomplete", "too short")


def _decode(data: bytes, max_pixels: int, max_decoded: int) -> ScanImage:
    fmt = _sniff(data)
    decoders: dict[str, Callable[[], ScanImage]] = {
        "png": lambda: _decode_png(data, max_pixels, max_decoded),
        "jpeg": lambda: _decode_pil(data, "jpeg", max_pixels, max_decoded),
        "tiff": lambda: _decode_tiff(data, max_pixels, max_decoded),
        "npz": lambda: _decode_npz(data, max_pixels, max_decoded),
        "dicos": lambda: _decode_dicos(data, max_pixels, max_decoded),
    }
    try:
        return decoders[fmt]()
    except _Refuse:
        raise
    except MemoryError:
        raise _Refuse("too_large", f"{fmt} image does not fit in memory") from None
    except Exception as exc:  # noqa: BLE001 -- every library failure becomes a typed refusal
        text = f"{type(exc).__name__}: {exc}"
        code = "truncated" if isinstance(exc, EOFError) or any(h in text.lower() for h in _TRUNCATION_HINTS) \
            else "corrupt"
        raise _Refuse(code, f"cannot decode {fmt} ({text[:200]})") from None


def read_scan(source: Path | bytes, *, name: str | None = None, max_bytes: int = 64 * 2**20,
              max_pixels: int = 40_000_000, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> ScanImage:
    """Read a scan from a path or bytes. Raises BadScanError(path_or_name, reason_code, reason).

    Limits: `max_bytes` of file, `max_pixels` per image, `max_decoded_bytes` of decoded arrays (from the header)."""
    label = name or (str(source) if isinstance(source, Path | str) else "<bytes>")
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            path = Path(source)
            size = path.stat().st_size
            if size > max_bytes:
                raise _Refuse("too_large", f"{size} bytes exceeds the limit of {max_bytes}")
            data = path.read_bytes()
        if not data:
            raise _Refuse("zero_byte", "file is empty (0 bytes)")
        if len(data) > max_bytes:
            raise _Refuse("too_large", f"{len(data)} bytes exceeds the limit of {max_bytes}")
        return _decode(data, max_pixels, max_decoded_bytes)
    except _Refuse as refusal:
        raise BadScanError(label, refusal.code, refusal.reason) from None
    except OSError as exc:
        raise BadScanError(label, "unreadable", f"cannot read file ({exc.strerror or exc})") from None


def read_scans(paths: Iterable[Path], *, max_bytes: int = 64 * 2**20, max_pixels: int = 40_000_000,
               max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> Iterator[tuple[Path, ScanImage | BadScanError]]:
    """Each path with its decoded scan, or with the BadScanError that says why it cannot be read, one at a time
    (a folder of large scans is never held whole). The one loop of every reader of many files (predict, adapt,
    the gate): a bad file is named and the others are still read; what the caller does with it is its own."""
    for path in paths:
        try:
            yield path, read_scan(path, max_bytes=max_bytes, max_pixels=max_pixels,
                                  max_decoded_bytes=max_decoded_bytes)
        except BadScanError as exc:
            yield path, exc


def _material_fractions(scan: ScanImage, sub: tuple[slice, slice]) -> tuple[float, float, float]:
    if scan.dual_energy and scan.low is not None:
        a_h = -np.log(np.clip(scan.high_sub(*sub), TRANSMISSION_FLOOR, 1.0))
        a_l = -np.log(np.clip(scan.low[sub], TRANSMISSION_FLOOR, 1.0))
        objects = a_h > 0.05
        n = int(objects.sum())
        if n == 0:
            return 0.0, 0.0, 0.0
        ratio = a_l[objects] / a_h[objects]
        saturated = a_l[objects] > -np.log(TRANSMISSION_FLOOR) * 0.97  # low channel black: dense metal
        organic = float(((ratio < RATIO_ORGANIC_MAX) & ~saturated).sum()) / n
        metal = float(((ratio >= RATIO_METAL_MIN) | saturated).sum()) / n
        return organic, 1.0 - organic - metal, metal
    rgb = scan.rgb_sub(slice(None, None, 4), slice(None, None, 4))  # a 4x subsample is plenty for a fraction and keeps this under a few ms
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    if not np.any(mx - mn > 0.02):  # grayscale: no material information
        return 0.0, 0.0, 0.0
    objects = mn < 0.9
    n = int(objects.sum())
    if n == 0:
        return 0.0, 0.0, 0.0
    r, g, b = rgb[..., 0][objects], rgb[..., 1][objects], rgb[..., 2][objects]
    dark = mx[objects] < 0.08
    organic = float(((r >= g) & (r > b) & ~dark).sum()) / n  # reference hues: orange / green / blue
    metal = float(((b > r) & (b >= g) | dark).sum()) / n
    return organic, max(1.0 - organic - metal, 0.0), metal


def _channel_mean(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 -> (H, W) mean of the channels, bit-identical to rgb.mean(axis=2)."""
    total = rgb[:, :, 0] + rgb[:, :, 1]
    total += rgb[:, :, 2]
    return total / np.float32(rgb.shape[2])


# -log(transmission) of each 8-bit level, computed as image_stats computes it per pixel of a float plane.
_ATT8 = -np.log(np.clip(np.arange(256, dtype=np.float32) * np.float32(1 / 255), TRANSMISSION_FLOOR, 1.0))
_ATT8_ORDER = np.argsort(_ATT8, kind="stable")  # levels by increasing attenuation


def _attenuation8(high8: np.ndarray) -> tuple[float, float, float]:
    """(mean, p1, p99) of attenuation over an 8-bit plane from its 256-level histogram: the order statistics
    np.percentile picks, interpolated as it does (linear); equal to the per-pixel float computation to ~1e-6."""
    counts = np.bincount(high8.ravel(), minlength=256)
    n = int(counts.sum())
    cum = np.cumsum(counts[_ATT8_ORDER])

    def ranked(i: int) -> float:  # the i-th smallest attenuation (0-based)
        return float(_ATT8[_ATT8_ORDER[int(np.searchsorted(cum, i, side="right"))]])

    quantiles = []
    for q in (1.0, 99.0):
        pos = q / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        a, b = ranked(lo), ranked(min(lo + 1, n - 1))
        quantiles.append(a + (b - a) * (pos - lo))
    return float(counts @ _ATT8.astype(np.float64)) / n, quantiles[0], quantiles[1]


def _noise8(rgb8: np.ndarray) -> float:
    """Noise of an 8-bit pseudo-colour subsample in integer channel sums s = r + g + b (0..765): the float
    version's thresholds mean > 0.02 and mean < 0.97 are exactly s >= 16 and s <= 742 (15.3 and 742.05)."""
    total = rgb8[:, :, 0].astype(np.int16) + rgb8[:, :, 1]
    total += rgb8[:, :, 2]  # (h, W)
    left, right = total[:, :-1], total[:, 1:]
    flat = (left >= 16) & (left <= 742) & (right >= 16) & (right <= 742)  # unclipped, not saturated
    diffs = np.abs(left[flat] - right[flat])
    return float(1.4826 * (np.median(diffs) / 765.0) / np.sqrt(2.0)) if diffs.size >= 100 else 0.0


def image_stats(scan: ScanImage) -> dict[str, float]:
    """Cheap drift statistics of one scan (see xscreen.records.ImageStats); computed on a 2x subsample.

    8-bit scans take an integer route (a 256-level histogram for the attenuation statistics, channel sums for
    the noise), equal to the float computation to ~1e-6 (tested); 16-bit and dual-energy scans the float one."""
    sub = (slice(None, None, 2), slice(None, None, 2))
    organic, inorganic, metal = _material_fractions(scan, sub)
    materials = {"organic_fraction": organic, "inorganic_fraction": inorganic, "metal_fraction": metal}
    if scan.high8 is not None and scan.rgb8 is not None and not scan.dual_energy:
        mean, p1, p99 = _attenuation8(scan.high8[sub])
        return {"mean_attenuation": mean, "noise_level": _noise8(scan.rgb8[::4]), "dynamic_range": p99 - p1,
                **materials}
    att = -np.log(np.clip(scan.high_sub(*sub), TRANSMISSION_FLOOR, 1.0))
    p1, p99 = np.percentile(att, [1.0, 99.0])
    # Pseudo-colour hides noise in brightness (flat near air) but not in saturation: use the channel mean there.
    # (r + g + b) / 3 is what .mean(axis=2) computes (float32, summed in order) at a quarter of its cost.
    every = slice(None)
    rows = scan.high_sub(slice(None, None, 2), every) if scan.dual_energy else \
        _channel_mean(scan.rgb_sub(slice(None, None, 4), every))
    left, right = rows[:, :-1], rows[:, 1:]
    flat = (left > 0.02) & (left < 0.97) & (right > 0.02) & (right < 0.97)  # unclipped, not saturated
    diffs = np.abs(left[flat] - right[flat])
    noise = float(1.4826 * np.median(diffs) / np.sqrt(2.0)) if diffs.size >= 100 else 0.0
    return {"mean_attenuation": float(att.mean()), "noise_level": noise, "dynamic_range": float(p99 - p1),
            **materials}
