"""Seeded fuzzing of what reaches xscreen from outside: scan files (truncated, bit-flipped, header-forged PNG,
TIFF, JPEG, npz, plain junk) and /v1 requests (path tricks, bad JSON, forged multipart, bad tokens).

`run_file_fuzz` feeds files through the real ingest (real reader, a stand-in scorer) and checks that each one
ends either scored or quarantined with a reason, never an exception, a hang or a silent skip.
`run_request_fuzz` sends requests to the real FastAPI app over a real store owner and checks that each answer
is a well-formed 2xx/4xx, never a 5xx. Both are used by tests/test_fuzz.py (a few thousand cases in CI) and
bench/soak.py (tens of thousands). The same seed gives the same cases.
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class FuzzReport:
    """What a fuzz run tried and found. `crashes` lists (case, error) for every failed expectation."""

    cases: int = 0
    scored: int = 0
    quarantined: int = 0
    answers: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    crashes: list[tuple[str, str]] = field(default_factory=list)
    slowest_s: float = 0.0

    def add(self, other: FuzzReport) -> None:
        self.cases += other.cases
        self.scored += other.scored
        self.quarantined += other.quarantined
        for status, n in other.answers.items():
            self.answers[status] = self.answers.get(status, 0) + n
        self.crashes += other.crashes
        self.slowest_s = max(self.slowest_s, other.slowest_s)


# ---- seed images ------------------------------------------------------------------------------------------


def seed_images(rng: np.random.Generator) -> dict[str, bytes]:
    """One small valid file per format the reader accepts (plus a 16-bit grayscale and a dual-energy TIFF)."""
    import tifffile

    rgb = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    gray16 = rng.integers(0, 65535, (40, 48), dtype=np.uint16)
    out: dict[str, bytes] = {}
    for fmt, suffix, img in (("PNG", "png", Image.fromarray(rgb)), ("JPEG", "jpg", Image.fromarray(rgb)),
                             ("PNG", "g16.png", Image.fromarray(gray16))):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out[suffix] = buf.getvalue()
    for name, pages in (("tif", [rgb]), ("dual.tif", [gray16, gray16 // 2])):
        buf = io.BytesIO()
        with tifffile.TiffWriter(buf) as tif:
            for page in pages:
                tif.write(page, photometric="rgb" if page.ndim == 3 else "minisblack")
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, high=gray16, low=gray16 // 2)
    out["npz"] = buf.getvalue()
    return out


# ---- file mutations ---------------------------------------------------------------------------------------


def _truncate(data: bytes, r: random.Random) -> bytes:
    return data[: r.randrange(0, max(1, len(data)))]


def _bitflip(data: bytes, r: random.Random) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(r.randint(1, 16)):
        i = r.randrange(len(out))
        out[i] ^= 1 << r.randrange(8)
    return bytes(out)


def _overwrite(data: bytes, r: random.Random) -> bytes:
    if not data:
        return r.randbytes(8)
    out = bytearray(data)
    start = r.randrange(len(out))
    out[start: start + r.randint(1, 64)] = r.randbytes(r.randint(1, 64))
    return bytes(out)


def _huge_png_header(data: bytes, r: random.Random) -> bytes:
    """A PNG whose IHDR claims enormous (or zero) dimensions or odd depths, with a valid CRC."""
    width, height = r.choice([(0, 10), (10**5, 10**5), (2**31 - 1, 1), (65535, 65535), (20, 20)])
    depth, colour = r.choice([(8, 2), (16, 6), (1, 0), (16, 0), (8, 3), (8, 9)])
    body = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, r.choice([0, 1]))
    ihdr = struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return b"\x89PNG\r\n\x1a\n" + ihdr + data[33:]


def _tiff_ifd_loop(data: bytes, r: random.Random) -> bytes:
    """A TIFF whose first IFD offset points somewhere arbitrary (past the end, into itself, at 0)."""
    out = bytearray(data[:8] if len(data) >= 8 else b"II*\x00\x08\x00\x00\x00")
    out[4:8] = struct.pack("<I", r.choice([0, 4, 8, len(data) * 2, 2**32 - 1]))
    return bytes(out) + data[8:]


def _junk(data: bytes, r: random.Random) -> bytes:
    return r.choice([b"", b"\x00" * r.randint(1, 4096), r.randbytes(r.randint(1, 4096)),
                     b"\x89PNG\r\n\x1a\n", b"II*\x00", b"\xff\xd8\xff", b"PK\x03\x04" + r.randbytes(100),
                     b"GIF89a" + r.randbytes(50), json.dumps({"not": "an image"}).encode()])


def _append(data: bytes, r: random.Random) -> bytes:
    return data + r.randbytes(r.randint(1, 2048))


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [
    _truncate, _bitflip, _overwrite, _huge_png_header, _tiff_ifd_loop, _junk, _append]


def fuzz_files(seed: int, n: int) -> Iterator[tuple[str, bytes]]:
    """`n` (name, bytes) cases: each a seed image of some format with one or two mutations (or none, 1 in 20)."""
    r = random.Random(seed)
    seeds = seed_images(np.random.default_rng(seed))
    kinds = sorted(seeds)
    for i in range(n):
        kind = r.choice(kinds)
        data = seeds[kind]
        for mutation in r.sample(MUTATIONS, r.choice([0, 1, 1, 1, 2])):
            data = mutation(data, r)
        yield f"f{i}.{kind.rsplit('.', 1)[-1]}", data


def run_file_fuzz(ingest: Any, inbox: Path, seed: int, n: int, batch: int = 16,
                  deadline_s: float = 5.0) -> FuzzReport:
    """Drop `n` fuzzed files into `inbox/fuzz/` and hand them to `ingest` in batches; every file must end scored
    or quarantined with a reason code, and no batch may take longer than `deadline_s`."""
    report = FuzzReport()
    folder = inbox / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    cases = list(fuzz_files(seed, n))
    for start in range(0, len(cases), batch):
        chunk = cases[start: start + batch]
        paths = []
        for name, data in chunk:
            path = folder / name
            path.write_bytes(data)
            paths.append(path)
        began = time.monotonic()
        try:
            result = ingest(paths)
        except Exception as exc:  # noqa: BLE001 -- the finding
            report.crashes.append((f"files {chunk[0][0]}..{chunk[-1][0]}", f"{type(exc).__name__}: {exc}"))
            continue
        report.slowest_s = max(report.slowest_s, time.monotonic() - began)
        report.cases += len(chunk)
        _account(report, chunk, result, deadline_s, time.monotonic() - began)
        for path in paths:
            path.unlink(missing_ok=True)
    return report


def _account(report: FuzzReport, chunk: list[tuple[str, bytes]], result: Any, deadline_s: float,
             took_s: float) -> None:
    by_name: dict[str, str] = {Path(s.source_path).name.split("_", 1)[-1]: "scored" for s in result.scans}
    for q in result.quarantined:
        if not q.reason_code or not q.reason:
            report.crashes.append((Path(q.source_path).name, "quarantined without a reason"))
        by_name[Path(q.source_path).name] = "quarantined"
    dupes = {p.name for p in result.duplicates}
    for name, _ in chunk:
        outcome = by_name.get(name) or ("scored" if name in dupes else None)
        if outcome is None:
            report.crashes.append((name, f"neither scored nor quarantined (retry={len(result.retry)})"))
        elif outcome == "scored":
            report.scored += 1
        else:
            report.quarantined += 1
    if took_s > deadline_s:
        report.crashes.append((chunk[0][0], f"a batch took {took_s:.1f} s (over {deadline_s} s)"))


# ---- requests ---------------------------------------------------------------------------------------------


def _path_trick(r: random.Random) -> str:
    parts = ["..", ".", "", "scanner-a", "scanner-b", "a" * r.choice([10, 255, 256, 400]), "%2e%2e", "\\..\\",
             "x.png", "\x00", "é" * 130, "/etc/passwd", "~", "scanner-a/../../x", "link", "$(id)", "*"]
    return "/".join(r.choice(parts) for _ in range(r.randint(1, 6)))


def fuzz_requests(seed: int, n: int, token: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`n` (method, url, httpx/TestClient keyword arguments) cases against /v1, most with a valid scanner token."""
    r = random.Random(seed)
    seeds = seed_images(np.random.default_rng(seed + 1))
    datas = list(fuzz_files(seed + 2, 64))
    for _ in range(n):
        auth = r.choice([f"Bearer {token}"] * 6 + ["", "Bearer", "Bearer x", "Basic abc", "Bearer " + "t" * 600])
        headers = {"Authorization": auth} if auth else {}
        kind = r.randrange(8)
        if kind == 0:
            yield "POST", "/v1/scans", {"json": {"path": _path_trick(r)}, "headers": headers}
        elif kind == 1:
            body = r.choice([b"{", b"[]", b'{"path": 1}', b'{"path": null}', b'{"path": "a", "x": 1}',
                             b"\xff\xfe", b'{"path": "' + b"a" * 70_000 + b'"}', b"[" * 5000 + b"]" * 5000,
                             json.dumps({"path": ["scanner-a", "x.png"]}).encode()])
            yield "POST", "/v1/scans", {"content": body,
                                        "headers": {**headers, "Content-Type": "application/json"}}
        elif kind == 2:
            name, data = r.choice(datas) if r.random() < 0.7 else r.choice(list(seeds.items()))
            form = {k: v for k, v in (("scanner_id", r.choice(["", "scanner-a", "../x", "b" * 70, "scanner-a"])),
                                      ("item_id", r.choice(["", "RR1", "x" * 5000])),
                                      ("metadata", r.choice(["", "{}", "[1]", "{bad", '{"scanned_at": 5}'])))
                    if v}
            filename = r.choice([name, "../../x.png", "a/b/c.tif", "", "é.jpg", "x" * 300 + ".png"])
            yield "POST", "/v1/scans", {"files": {"file": (filename, data, "image/png")}, "data": form,
                                        "headers": headers}
        elif kind == 3:
            yield "POST", "/v1/scans", {"content": r.randbytes(r.randint(0, 3000)),
                                        "headers": {**headers, "Content-Type": r.choice([
                                            "multipart/form-data; boundary=x", "multipart/form-data",
                                            "application/octet-stream", "text/plain"])}}
        elif kind == 4:
            yield "GET", "/v1/scans/" + r.choice(["x", "0" * 16, "a" * 300, "%00", "..%2f..", "é"]), \
                {"headers": headers}
        elif kind == 5:
            feedback: Any = r.choice([{"scan_id": "x", "decision": "cleared"}, {"scan_id": 1}, {"decision": "seized"},
                                      {"scan_id": "x", "decision": "cleared", "officer": "mallory"}, [], "x"])
            yield "POST", "/v1/feedback", {"json": feedback, "headers": headers}
        elif kind == 6:
            yield "POST", "/v1/login", {"json": r.choice([{"username": "x", "password": "y"}, {}, {"username": 1},
                                                           {"username": "a" * 5000, "password": ""}])}
        else:
            yield "GET", "/v1/queue", {"params": {"limit": r.choice(["-1", "0", "5", "99999999", "x"]),
                                                  "scanner_id": r.choice(["", "a", "'; drop table x"])},
                                       "headers": headers}


def run_request_fuzz(client: Any, seed: int, n: int, token: str) -> FuzzReport:
    """Send `n` fuzzed requests through `client` (a TestClient or httpx.Client); every answer must be < 500."""
    report = FuzzReport()
    for method, url, kwargs in fuzz_requests(seed, n, token):
        began = time.monotonic()
        try:
            response = client.request(method, url, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- the finding
            report.crashes.append((f"{method} {url}", f"{type(exc).__name__}: {exc}"))
            continue
        report.cases += 1
        report.slowest_s = max(report.slowest_s, time.monotonic() - began)
        report.answers[response.status_code] = report.answers.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            report.crashes.append((f"{method} {url} {str(kwargs)[:200]}", f"{response.status_code} {response.text[:300]}"))
    return report


__all__ = ["FuzzReport", "fuzz_files", "fuzz_requests", "run_file_fuzz", "run_request_fuzz", "seed_images"]
