"""Labelled data sets on disk: images + labels.csv (file,labels) + manifest.parquet (objects, boxes, materials).

Image i is rendered from rng([seed, i]) with the scenario at progress i/(n-1), and its scanner style (xray.styles)
drawn from rng([seed, i, STYLE_STREAM]) (or one style for the whole set), so a data set is reproducible byte for
byte from its arguments, and any single image can be re-rendered alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xray.scenarios import get_scenario
from xray.simulate import OutputError, ensure_writable
from xray.styles import (
    FAMILIES,
    REFERENCE_STYLE,
    ScannerStyle,
    StyledScan,
    content_split_for,
    render_styled,
    sample_style,
    style_rng,
)
from xray.synth import CONTENT_SPLITS, Parcel, render_parcel
from xray.threats import check_classes
from xray.writers import FORMATS, SUFFIX, encode
from xscreen.errors import ConfigError


def _manifest_row(file: str, parcel: Parcel, fmt: str, content_split: str,
                  scan: StyledScan | None = None) -> dict[str, object]:
    """One image's row: the parcel's truth, with boxes and size as the file holds them (after the style)."""
    labels, objects, palette, style = parcel.labels, parcel.objects, parcel.palette, REFERENCE_STYLE
    height, width = parcel.high.shape
    if scan is not None:
        labels, objects, palette, style = scan.labels, scan.objects, scan.palette, scan.style
        height, width = scan.image.shape[:2]
    return {
        "file": file,
        "labels": labels,
        "scenario": parcel.scenario,
        "progress": float(parcel.progress),
        "seed": parcel.seed,
        "palette": palette,
        "format": fmt,
        "scanner_id": parcel.scanner_id,
        "width": int(width),
        "height": int(height),
        "objects": [{"name": o.name, "material": o.material, "is_threat": o.is_threat,
                     "class_name": o.class_name, "x0": o.box[0], "y0": o.box[1], "x1": o.box[2], "y1": o.box[3]}
                    for o in objects],
        "content_split": content_split,
        "style_family": style.family,
        "style": style.to_json(),  # every parameter of the scanner style: ScannerStyle.from_dict(json.loads(...))
    }


def check_style(style: str, fmt: str) -> None:
    """A known style family, and a format it can write (a style decides PNG or JPEG, colour or grey itself)."""
    if style not in FAMILIES:
        raise ConfigError(f"unknown style {style!r}; known: {', '.join(FAMILIES)}")
    if style != "reference" and fmt != "png":
        raise ConfigError(f"--style {style} writes what such a scanner exports (the style chooses PNG or JPEG, "
                          f"colour or grey): use --format png (the default), or --style reference for {fmt}")


def _render(rng: np.random.Generator, style: ScannerStyle | None, fmt: str, uid_seed: str, split: str,
            **render: Any) -> tuple[Parcel, bytes, str, StyledScan | None]:
    """(parcel, file bytes, format, styled scan or None for the reference rendering) of one image."""
    if style is None:
        parcel = render_parcel(rng, content_split=split, **render)  # type: ignore[arg-type]
        return parcel, encode(fmt, parcel.high, parcel.low, palette=parcel.palette, uid_seed=uid_seed), fmt, None
    parcel, scan = render_styled(rng, style, content_split=split, **render)
    return parcel, scan.encode(), style.file_format, scan


def _write_manifest(path: Path, rows: list[dict[str, object]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, compression="zstd")


def write_dataset_impl(out: Path, *, n: int, seed: int, classes: Sequence[str], scenario: str = "baseline",
                       fmt: str = "png", threat_rate: float = 0.5, size: tuple[int, int] | None = None,
                       progress_bar: bool = True, style: str = "reference", one_style: bool = False,
                       content_split: str | None = None) -> Path:
    """Write n images, labels.csv (file,labels; labels `|`-separated, empty = benign) and manifest.parquet
    (one row per image: labels, scenario, progress, seed, style, size, objects with boxes and materials)
    into `out`; returns the labels.csv path. Same arguments, same bytes. fmt: png|jpeg|gray|tiff|npz|dicos.
    `style` is a family of xray.styles, drawn per image, or once for the whole set with `one_style` (one
    scanner); `content_split` the renderer's object families (default: the style family's,
    xray.styles.content_split_for)."""
    if n < 1:
        raise ConfigError(f"number of images must be at least 1, got {n}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    check_style(style, fmt)
    split = content_split or content_split_for(style)
    if split not in CONTENT_SPLITS:
        raise ConfigError(f"unknown content split {split!r}; known: {', '.join(CONTENT_SPLITS)}")
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
        drawn = None if style == "reference" else sample_style(style_rng(seed, 0 if one_style else i), style)
        parcel, data, file_fmt, scan = _render(np.random.default_rng([seed, i]), drawn, fmt, f"{seed}-{i}", split,
                                               classes=classes, scenario=scenario, progress=progress,
                                               threat_rate=threat_rate, size=size)
        name = f"scan_{i:05d}{SUFFIX[file_fmt]}"
        try:
            (out / name).write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {out / name} ({exc.strerror or exc})") from None
        writer.writerow([name, "|".join(scan.labels if scan else parcel.labels)])
        rows.append(_manifest_row(name, parcel, file_fmt, split, scan))
    (out / "labels.csv").write_text(labels.getvalue(), encoding="utf-8")
    _write_manifest(out / "manifest.parquet", rows)
    return out / "labels.csv"
