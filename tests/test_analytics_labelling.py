"""Label conflicts and the training-set export (read back by screening's own reader)."""

import csv
from pathlib import Path

import pandas as pd
import pytest

from analytics import labelling


def _row(author: str, labels: list[str], source: str = "relabel") -> dict:
    return {"author": author, "labels": labels, "source": source}


def test_two_authors_disagreeing_is_a_conflict() -> None:
    assert labelling.label_conflict([_row("ann", ["knife"]), _row("bob", [])])
    # bob's newest label agrees with ann: his older one does not count
    assert not labelling.label_conflict([_row("ann", ["knife"]), _row("bob", ["knife"]), _row("bob", [])])


def test_adjudication_settles_a_conflict() -> None:
    history = [_row("sup", ["knife"], "adjudication"), _row("ann", ["knife"]), _row("bob", [])]
    assert not labelling.label_conflict(history)


def test_export_writes_labels_csv_and_images_and_names_missing(tmp_path: Path) -> None:
    img = tmp_path / "a.PNG"
    img.write_bytes(b"png-bytes")
    rows = pd.DataFrame({"scan_id": ["s1", "s2", "s3"], "source_path": [str(img), str(img), str(tmp_path / "gone.png")],
                         "labels": [["knife", "ammunition"], [], ["threat"]]})
    res = labelling.export_training_set(rows, tmp_path / "out", make_zip=True)
    assert (res.exported, res.missing) == (2, ("s3",))
    with res.labels_csv.open() as fh:
        assert list(csv.reader(fh)) == [["file", "labels"], ["images/s1.png", "ammunition|knife"], ["images/s2.png", ""]]
    assert (tmp_path / "out" / "images" / "s1.png").read_bytes() == b"png-bytes"
    assert res.archive is not None and res.archive.is_file()


def test_export_of_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(labelling.ExportError, match="no labelled scans"):
        labelling.export_training_set(pd.DataFrame({"scan_id": [], "source_path": [], "labels": []}), tmp_path)


def test_export_folder_is_one_new_plain_name_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    assert labelling.export_folder(root, "week-47_v2.1") == root / "week-47_v2.1"
    for bad in ["../up", "/abs/path", "a/b", "a\\b", "..", ".hidden", "", "x" * 101, "a..b", "name with space"]:
        with pytest.raises(labelling.ExportError, match=f"is not allowed.*exports are written under {root}"):
            labelling.export_folder(root, bad)
    (root / "taken").mkdir(parents=True)
    with pytest.raises(labelling.ExportError, match="already exists"):
        labelling.export_folder(root, "taken")
