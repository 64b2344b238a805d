"""In-memory synthetic training sets: the same parcels as write_dataset, reproducible, parallel = serial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from screening.synthetic import render_set, render_styled_set
from screening.train import ensure_default_model
from xray.synth import render_parcel
from xscreen.errors import ConfigError
from xscreen.settings import DEFAULT_CLASSES, Settings

SMALL = (96, 96)


def test_rendered_set_matches_the_renderer_and_is_the_same_in_parallel() -> None:
    serial, boxes = render_set(8, 3, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False)
    parallel, boxes2 = render_set(8, 3, DEFAULT_CLASSES, 64, workers=2, image_size=SMALL, progress=False)
    assert torch.equal(serial.canvases, parallel.canvases) and boxes == boxes2
    assert serial.manifest_sha256 == parallel.manifest_sha256
    for i in range(8):
        parcel = render_parcel(np.random.default_rng([3, i]), classes=DEFAULT_CLASSES, progress=i / 7, size=SMALL)
        expected = [1 if c in parcel.labels else 0 for c in DEFAULT_CLASSES]
        assert serial.class_labels[i].tolist() == expected
        assert serial.any_labels[i] == int(bool(parcel.labels))
        assert {c for c, _ in boxes.get(f"scan_{i:05d}", [])} == set(parcel.labels)
    assert all(0 <= v <= 1 for bx in boxes.values() for _, b in bx for v in b)


def test_another_seed_is_another_set() -> None:
    a, _ = render_set(4, 3, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False)
    b, _ = render_set(4, 4, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False)
    assert not torch.equal(a.canvases, b.canvases) and a.manifest_sha256 != b.manifest_sha256


@pytest.mark.training  # trains a model
def test_default_model_trains_from_memory_and_records_its_training_set(settings: Settings) -> None:
    model = settings.model.model_copy(update={"input_size": 64, "width": 4, "embedding_dim": 8, "seed": 5,
                                              "default_train_images": 60, "default_epochs": 1})
    small = settings.model_copy(update={"model": model})
    record = ensure_default_model(small, progress=False)
    assert record.version == "default-5"
    folder = small.home / "data" / "default-train-5"
    written = json.loads((folder / "manifest.json").read_text())
    assert written["n"] == 60 and written["seed"] == 5 and written["scenario"] == "baseline"
    assert written["style"] == "train"  # model.train_style: randomised scanner styles, one per image, listed
    styles = [json.loads(line) for line in (folder / "styles.jsonl").read_text().splitlines()]
    assert [s["file"] for s in styles] == [f"scan_{i:05d}" for i in range(60)]
    assert {s["style"]["family"] for s in styles} == {"train"}
    assert not list(folder.glob("*.png"))  # no image files: the set lives in memory
    assert ensure_default_model(small, progress=False).version == "default-5"  # a champion exists: no retraining


def test_styled_set_in_memory_is_what_xscreen_synth_writes(tmp_path: Path) -> None:
    import pandas as pd

    from screening.preprocess import letterbox_uint8
    from xray.dataset import write_dataset_impl
    from xray.formats import read_scan
    from xray.styles import ScannerStyle

    data, boxes, styles = render_styled_set(6, 8, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False,
                                            style="train")
    write_dataset_impl(tmp_path, n=6, seed=8, classes=DEFAULT_CLASSES, size=SMALL, progress_bar=False, style="train")
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    for i, row in manifest.iterrows():
        assert ScannerStyle.from_dict(json.loads(row["style"])) == styles[int(i)]  # type: ignore[call-overload]
        scan = read_scan(tmp_path / row["file"])
        pixels = np.round(scan.rgb * 255).astype(np.uint8)  # PNG lossless; JPEG: the same bytes, decoded
        assert np.array_equal(letterbox_uint8(pixels, 64)[0], data.canvases[int(i)].numpy())  # type: ignore[call-overload]
    assert {s.family for s in styles} == {"train"} and len({s.to_json() for s in styles}) == 6
    reference, _ = render_set(6, 8, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False)
    assert data.manifest_sha256 != reference.manifest_sha256


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown style 'sepia'"):
        render_set(2, 1, DEFAULT_CLASSES, 64, workers=1, image_size=SMALL, progress=False, style="sepia")


def test_training_sets_work_at_the_canvas_scale_and_keep_the_truth() -> None:
    from xray.styles import apply_style, sample_style, style_rng

    exact, exact_boxes = render_set(6, 8, DEFAULT_CLASSES, 64, workers=1, progress=False, style="train")
    fast, fast_boxes = render_set(6, 8, DEFAULT_CLASSES, 64, workers=1, progress=False, style="train", for_training=True)
    assert np.array_equal(exact.class_labels, fast.class_labels) and exact_boxes.keys() == fast_boxes.keys()
    for name, bx in exact_boxes.items():  # the same boxes, as image fractions, to a work pixel
        for (c0, b0), (c1, b1) in zip(bx, fast_boxes[name], strict=True):
            assert c0 == c1 and np.allclose(b0, b1, atol=0.03)
    parcel = render_parcel(np.random.default_rng([8, 0]), classes=DEFAULT_CLASSES, progress=0.0)
    scan = apply_style(parcel, sample_style(style_rng(8, 0), "train"), max_side=80)
    assert max(scan.image.shape[:2]) <= 80
    assert fast.manifest_sha256 != exact.manifest_sha256  # not the same pixels: not the same set
