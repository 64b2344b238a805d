"""One scan file as the ingest sees it: safety checks before reading, the sidecar, and its ScanRecord."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from analytics.records import ImageStats, ScanRecord
from xscreen.errors import BadScanError

log = logging.getLogger(__name__)
# A scanner id names a folder (inbox/<id>/, quarantine/<id>/) and a store column: letters, digits, '.', '_', '-',
# starting with a letter or digit (so never '.', '..', '_unknown' or a path), at most 64 characters.
SCANNER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


def valid_scanner_id(value: str) -> bool:
    """True when `value` matches SCANNER_ID exactly."""
    return SCANNER_ID.fullmatch(value) is not None


def leftover_reason(name: str) -> str | None:
    """Why a file name is not a scan to read (hidden or temporary), or None for an ordinary name."""
    if name.startswith("."):
        return f"hidden file name {name!r} (a dot name is a writer's temporary file, never read as a scan)"
    if name.endswith(TEMP_SUFFIXES):
        return f"temporary file name {name!r} left unchanged (an abandoned write)"
    return None


@dataclass(frozen=True)
class Candidate:
    """A file (or upload) that passed the safety checks: its bytes, content hash and metadata."""

    path: Path
    scanner_id: str
    data: bytes
    sha256: str
    received_at: datetime  # UTC: the file's last write (≈ its writer closing it) or the upload's arrival
    sidecar: dict[str, Any] = field(default_factory=dict)
    origin: Literal["file", "upload"] = "file"


def read_sidecar(image_path: Path) -> dict[str, Any]:
    """The `<stem>.json` written beside an image by the scanner, or {} if absent or unusable."""
    sidecar = image_path.with_name(image_path.stem + ".json")
    try:
        if sidecar.is_symlink() or not sidecar.is_file():
            return {}
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a broken sidecar loses metadata, never the scan
        log.warning("ignoring unreadable sidecar %s: %s", sidecar, exc)
        return {}
    return data if isinstance(data, dict) else {}


class CandidateChecker:
    """Judges a path before its bytes are trusted: where it points, what it is, how big, whose scanner."""

    def __init__(self, inbox: Path, scanner_ids: set[str], max_bytes: int,
                 suffixes: frozenset[str] | None = None) -> None:
        self.inbox = inbox
        self._root = inbox.resolve()
        self._scanner_ids = scanner_ids
        self._max_bytes = max_bytes
        self._suffixes = suffixes

    def scanner_of(self, path: Path, sidecar: dict[str, Any] | None = None) -> str | None:
        """Scanner id from the folder under the inbox, else from the sidecar."""
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            parts = ()
        if len(parts) >= 2:
            return parts[0]
        value = (sidecar or {}).get("scanner_id")
        return str(value) if value else None

    def check(self, path: Path) -> Candidate | BadScanError | None:
        """A Candidate, the reason to quarantine the file, or None if the file has vanished meanwhile."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return BadScanError(str(path), "unreadable", f"cannot stat file: {exc.strerror}")
        sidecar = read_sidecar(path)
        scanner_id = self.scanner_of(path, sidecar)
        problem = self._judge(path, st, scanner_id)
        if problem is not None:
            return problem
        data = self._read(path)
        if isinstance(data, BadScanError):
            return data
        assert scanner_id is not None
        mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
        return Candidate(path, scanner_id, data, hashlib.sha256(data).hexdigest(), mtime, sidecar)

    def check_upload(self, cand: Candidate) -> BadScanError | None:
        """The checks that apply to bytes arriving over HTTP."""
        if not cand.data:
            return BadScanError(str(cand.path), "zero_byte", "upload is empty")
        if len(cand.data) > self._max_bytes:
            return BadScanError(str(cand.path), "too_large",
                                f"upload is {len(cand.data)} bytes, over the {self._max_bytes}-byte limit")
        return self._judge_suffix(cand.path) or self._judge_scanner(cand.path, cand.scanner_id)

    def _judge(self, path: Path, st: os.stat_result, scanner_id: str | None) -> BadScanError | None:
        leftover = leftover_reason(path.name)
        if leftover is not None:
            return BadScanError(str(path), "ignored_name", leftover)
        if stat.S_ISLNK(st.st_mode):
            target = path.resolve()
            if not within(target, self._root):
                return BadScanError(str(path), "symlink_escape",
                                    f"symbolic link points outside the scanner root (to {target})")
            try:
                st = os.stat(path)
            except OSError:
                return BadScanError(str(path), "broken_symlink", "symbolic link points to nothing")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or stream forever when read
            return BadScanError(str(path), "not_regular_file", "not a regular file")
        if st.st_size == 0:
            return BadScanError(str(path), "zero_byte", "file is empty (zero bytes)")
        if st.st_size > self._max_bytes:
            return BadScanError(str(path), "too_large",
                                f"file is {st.st_size} bytes, over the {self._max_bytes}-byte limit")
        return self._judge_suffix(path) or self._judge_scanner(path, scanner_id)

    def _judge_suffix(self, path: Path) -> BadScanError | None:
        if self._suffixes is not None and path.suffix.lower() not in self._suffixes:
            return BadScanError(str(path), "unsupported_format",
                                f"suffix {path.suffix or '(none)'!r} is not a supported scan format "
                                f"({', '.join(sorted(self._suffixes))})")
        return None

    def _judge_scanner(self, path: Path, scanner_id: str | None) -> BadScanError | None:
        if not scanner_id:
            return BadScanError(str(path), "unknown_scanner",
                                "no scanner id: file is not in a scanner folder and has no sidecar scanner_id")
        if not valid_scanner_id(scanner_id):
            return BadScanError(str(path), "bad_scanner_id",
                                f"scanner id {scanner_id[:80]!r} is not valid (letters, digits, '.', '_', '-'; "
                                "starting with a letter or digit; at most 64 characters)")
        if self._scanner_ids and scanner_id not in self._scanner_ids:
            return BadScanError(str(path), "unknown_scanner",
                                f"scanner id {scanner_id!r} is not one of the configured serving.scanner_ids")
        return None

    def _read(self, path: Path) -> bytes | BadScanError:
        try:
            with open(path, "rb") as fh:
                data = fh.read(self._max_bytes + 1)
        except PermissionError:
            return BadScanError(str(path), "unreadable", "permission denied reading the file")
        except OSError as exc:
            return BadScanError(str(path), "unreadable", f"cannot read file: {exc.strerror}")
        if len(data) > self._max_bytes:  # grew after the size check
            return BadScanError(str(path), "too_large", f"file is over the {self._max_bytes}-byte limit")
        if not data:
            return BadScanError(str(path), "zero_byte", "file is empty (zero bytes)")
        return data


def scan_record(cand: Candidate, image: Any, stats: dict[str, float] | Any, location: Path | None = None) -> ScanRecord:
    """The stored description of one scan: identity, source, geometry, sidecar metadata, image statistics.
    `source_path` is where the image is kept: `location` (its archive place) when given, else where it arrived."""
    side = cand.sidecar
    pixels = getattr(image, "rgb8", None)  # the uint8 plane when there is one: .rgb would convert it to float
    height, width = (pixels if pixels is not None else image.rgb).shape[:2]  # (H, W, 3)
    return ScanRecord(
        scan_id=cand.sha256[:16],
        sha256=cand.sha256,
        scanner_id=cand.scanner_id,
        item_id=_str_or_none(side.get("item_id")),
        source_path=str(location or cand.path),
        file_format="upload" if cand.origin == "upload" else str(image.source_format),
        width=int(width),
        height=int(height),
        bit_depth=int(image.bit_depth),
        dual_energy=bool(image.dual_energy),
        received_at=cand.received_at,
        scanned_at=_parse_time(side.get("scanned_at")),
        declared_contents=side.get("declared_contents") if isinstance(side.get("declared_contents"), list) else None,
        stats=ImageStats(**dict(stats)),
        is_canary=bool(side.get("is_canary", False)),
        canary_labels=side.get("canary_labels") if isinstance(side.get("canary_labels"), list) else None,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def within(path: Path, root: Path) -> bool:
    """True when `path` lies under `root` (plain path arithmetic; resolve first where links matter)."""
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
