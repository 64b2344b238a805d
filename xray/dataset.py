"""Labelled data sets on disk: images + labels.csv (file,labels) + manifest.parquet (objects, boxes, materials).

Image i is rendered from rng([seed, i]) with the scenario at progress i/(n-1), so a data set is reproducible
byte for byte from its arguments, and any single image can be re-rendered alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xray.scenarios import get_scenario
from xray.simulate import OutputError, ensure_writable
from xray.synth import Parcel, render_parcel
from xray.threats import check_classes
from xray.writers import FORMATS, SUFFIX, encode
from xscreen.errors import ConfigError


def _manifest_row(file: str, parcel: Parcel, fmt: str) -> dict[str, object]:
    return {
        "file": file,
        "labels": parcel.labels,
        "scenario": parcel.scenario,
        "progress": float(parcel.progress),
        "seed": parcel.seed,
        "palette": parcel.palette,
        "format": fmt,
        "scanner_id": parcel.scanner_id,
        "width": int(parcel.high.shape[1]),
        "height": int(parcel.high.shape[0]),
        "objects": [{"name": o.name, "material": o.material, "is_threat": o.is_threat,
                     "class_name": o.class_name, "x0": o.box[0], "y0": o.box[1], "x1": o.box[2], "y1": o.box[3]}
                    for o in parcel.objects],
    }


def _write_manifest(path: Path, rows: list[dict[str, object]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, compression="zstd")


def write_dataset_impl(out: Path, *, n: int, seed: int, classes: Sequence[str], scenario: str = "baseline",
                       fmt: str = "png", threat_rate: float = 0.5, size: tuple[int, int] | None = None,
                       progress_bar: bool = True) -> Path:
    """Write n images, labels.csv (file,labels; labels `|`-separated, empty = benign) and manifest.parquet
    (one row per image: labels, scenario, progress, seed, palette, size, objects with boxes and materials)
    into `out`; returns the labels.csv path. Same arguments, same bytes. fmt: png|jpeg|gray|tiff|npz|dicos."""
    if n < 1:
        raise ConfigError(f"number of images must be at least 1, got {n}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    check_classes(list(classes))
    get_scenario(scenario)
    if not 0.0 <= threat_rate <= 1.0:
        raise ConfigError(f"threat rate must be within [0, 1], got {threat_rate}")
    ensure_writable(out)
    steps = range(n)
    if progress_bar:
        from tqdm import tqdm

        steps = tqdm(steps, unit="img", desc=f"rendering {fmt}")  # type: ignore[assignment]
    rows: list[dict[str, object]] = []
    labels = io.StringIO()
    writer = csv.writer(labels, lineterminator="\n")
    writer.writerow(["file", "labels"])
    for i in steps:
        progress = i / (n - 1) if n > 1 else 0.0
        parcel = render_parcel(np.random.default_rng([seed, i]), classes=classes, scenario=scenario,
                               progress=progress, threat_rate=threat_rate, size=size)
        name = f"scan_{i:05d}{SUFFIX[fmt]}"
        data = encode(fmt, parcel.high, parcel.low, palette=parcel.palette, uid_seed=f"{seed}-{i}")
        try:
            (out / name).write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {out / name} ({exc.strerror or exc})") from None
        writer.writerow([name, "|".join(parcel.labels)])
        rows.append(_manifest_row(name, parcel, fmt))
    (out / "labels.csv").write_text(labels.getvalue(), encoding="utf-8")
    _write_manifest(out / "manifest.parquet", rows)
    return out / "labels.csv"
