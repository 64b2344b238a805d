"""xscreen.atomic: a file is replaced whole or not at all, and a failed write leaves neither half a file nor a
temp file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xscreen import atomic


def test_write_replaces_the_file_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    atomic.write_text(path, "new", durable=True)
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")

    def no_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space"):
        atomic.write_bytes(path, b"new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_temp_names_are_hidden_beside_the_file_and_differ_per_thread(tmp_path: Path) -> None:
    import threading

    names: list[Path] = [atomic.temp_name(tmp_path / "a.bin")]
    t = threading.Thread(target=lambda: names.append(atomic.temp_name(tmp_path / "a.bin")))
    t.start()
    t.join()
    assert all(n.parent == tmp_path and n.name.startswith(".a.bin.") for n in names)
    assert names[0] != names[1]
