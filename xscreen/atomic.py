"""Replace a file whole: write a temporary name beside it, then rename it in, so a reader sees the old file or the
new one and never half of either (a rename within one folder is atomic on POSIX).

Every writer whose file someone else reads while it runs uses this: the spool (the owner ingests what lands),
scanner drop files (the watcher picks them up), kept uploads (the viewer shows them), the supervisor's state and
the monitoring status (`/healthz` reads them). `durable=True` also fsyncs the data and the folder's entry, for
files that must survive a power cut once the call returns (the spool, where a returned write is a promise that
the verdicts are safe).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def temp_name(path: Path) -> Path:
    """A dot-name beside `path`, unique per process and thread (two writers of one file never share a temp), and
    skipped by every folder scan in xscreen (they ignore dot-names)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def write_bytes(path: Path, data: bytes, *, durable: bool = False, tmp: Path | None = None) -> None:
    """Replace `path` with `data` whole. `tmp` (default `temp_name(path)`) must be on the same filesystem; it is
    removed when the write fails, and the OSError goes to the caller, who knows what the file was for."""
    tmp = tmp if tmp is not None else temp_name(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_text(path: Path, text: str, *, durable: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), durable=durable)


def fsync_dir(folder: Path) -> None:
    """Make the entries of `folder` (a rename into it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
