"""Renderer: determinism by seed, label/box consistency, configurable classes, and what each scenario moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from xray.dataset import write_dataset_impl as write_dataset
from xray.formats import ScanImage, image_stats
from xray.items import NEW_GOODS
from xray.scenarios import SCENARIOS, UnknownScenarioError
from xray.synth import Parcel, render_parcel
from xray.threats import THREAT_CLASSES, UnknownClassError
from xray.writers import FORMATS
from xscreen.errors import ConfigError
from xscreen.settings import DEFAULT_CLASSES

SMALL = (128, 128)


def _parcels(n: int, *, seed: int = 0, **kw: object) -> list[Parcel]:
    kw.setdefault("classes", DEFAULT_CLASSES)
    kw.setdefault("size", SMALL)
    return [render_parcel(np.random.default_rng([seed, i]), **kw) for i in range(n)]  # type: ignore[arg-type]


def test_default_classes_all_have_generators() -> None:
    assert set(DEFAULT_CLASSES) <= set(THREAT_CLASSES)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_seed_gives_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    def files(out: Path, seed: int) -> dict[str, bytes]:
        write_dataset(out, n=2, seed=seed, classes=DEFAULT_CLASSES, fmt=fmt, size=(96, 80), progress_bar=False)
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    first, again, other = files(tmp_path / "a", 5), files(tmp_path / "b", 5), files(tmp_path / "c", 6)
    assert first == again
    assert {"labels.csv", "manifest.parquet"} <= set(first)
    images = [k for k in first if k.startswith("scan_")]
    assert len(images) == 2 and any(first[k] != other[k] for k in images)


def test_parcel_is_rebuilt_from_its_own_seed() -> None:
    parcel = render_parcel(np.random.default_rng(3), classes=DEFAULT_CLASSES, size=SMALL)

    class SeedOnly:  # a generator whose first integer is the parcel seed
        def integers(self, *_: object) -> int:
            return parcel.seed

    again = render_parcel(SeedOnly(), classes=DEFAULT_CLASSES, size=SMALL)  # type: ignore[arg-type]
    np.testing.assert_array_equal(parcel.high, again.high)


def test_every_threat_label_has_a_box_inside_the_image_and_benign_parcels_have_none() -> None:
    parcels = _parcels(40, seed=1, threat_rate=0.6, size=(160, 144))
    assert any(p.labels for p in parcels) and any(not p.labels for p in parcels)
    for p in parcels:
        H, W = p.high.shape
        threats = [o for o in p.objects if o.is_threat]
        assert p.labels == sorted({o.class_name for o in threats})  # type: ignore[type-var]
        for idx, obj in enumerate(p.objects):
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H, obj
            if obj.is_threat:
                mask = p.masks[idx]
                assert mask.shape == (y1 - y0, x1 - x0) and mask.any()
                assert -np.log(p.high[y0:y1, x0:x1][mask]).mean() > 0.01  # something is really there
        assert set(p.masks) == {i for i, o in enumerate(p.objects) if o.is_threat}


def test_manifest_and_labels_csv_agree(tmp_path: Path) -> None:
    labels = write_dataset(tmp_path, n=6, seed=2, classes=["knife", "currency"], threat_rate=0.7, size=SMALL,
                           progress_bar=False)
    lines = labels.read_text().splitlines()
    assert lines[0] == "file,labels" and len(lines) == 7
    rows = pq.read_table(tmp_path / "manifest.parquet").to_pylist()
    for line, row in zip(lines[1:], rows, strict=True):
        file, joined = line.split(",")
        assert row["file"] == file and "|".join(row["labels"]) == joined
        assert set(row["labels"]) <= {"knife", "currency"}
        assert {o["class_name"] for o in row["objects"] if o["is_threat"]} == set(row["labels"])


def test_class_list_is_configuration() -> None:
    only_knives = _parcels(15, seed=3, classes=["knife"], threat_rate=1.0)
    assert all(p.labels == ["knife"] for p in only_knives)
    assert all(not p.labels for p in _parcels(5, seed=3, classes=[], threat_rate=1.0))
    with pytest.raises(UnknownClassError, match="'bomb'"):
        _parcels(1, classes=["knife", "bomb"])


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(UnknownScenarioError, match="known: baseline"):
        _parcels(1, scenario="winter")
    with pytest.raises(ConfigError, match="threat rate"):
        _parcels(1, threat_rate=1.5)
    with pytest.raises(ConfigError, match="progress"):
        _parcels(1, progress=2.0)
    with pytest.raises(ConfigError, match="size"):
        _parcels(1, size=(10, 10))


def test_default_size_is_512_wide_with_variable_height() -> None:
    heights = {p.high.shape[0] for p in _parcels(6, seed=4, size=None)}
    assert all(p.high.shape[1] == 512 for p in _parcels(2, seed=4, size=None))
    assert len(heights) > 1


def _share(parcels: list[Parcel], predicate: object) -> float:
    return float(np.mean([predicate(p) for p in parcels]))  # type: ignore[operator]


def test_new_goods_brings_item_types_never_seen_at_the_start() -> None:
    def has_new(p: Parcel) -> bool:
        return any(o.name in NEW_GOODS for o in p.objects)

    start = _share(_parcels(60, seed=5, scenario="new_goods", progress=0.0, threat_rate=0.0), has_new)
    end = _share(_parcels(60, seed=5, scenario="new_goods", progress=1.0, threat_rate=0.0), has_new)
    assert start == 0.0 and end > 0.5


def test_new_concealment_moves_narcotics_into_books_and_shoes() -> None:
    def hidden(p: Parcel) -> bool:
        return any(o.name in ("narcotics:in_book_spine", "narcotics:in_shoe_sole") for o in p.objects)

    kw = {"classes": ["narcotics"], "threat_rate": 1.0, "scenario": "new_concealment"}
    start = _share(_parcels(50, seed=6, progress=0.0, **kw), hidden)
    end = _share(_parcels(50, seed=6, progress=1.0, **kw), hidden)
    assert start == 0.0 and end > 0.6
    assert all(p.labels == ["narcotics"] for p in _parcels(10, seed=6, progress=1.0, **kw))


def test_seasonal_mix_changes_class_proportions() -> None:
    def festive(p: Parcel) -> bool:
        return bool({"lithium_battery", "currency"} & set(p.labels))

    kw = {"threat_rate": 1.0, "scenario": "seasonal_mix", "size": (64, 64)}
    start = _share(_parcels(120, seed=7, progress=0.0, **kw), festive)
    end = _share(_parcels(120, seed=7, progress=1.0, **kw), festive)
    assert end > start + 0.2


def _stats(p: Parcel) -> dict[str, float]:
    scan = ScanImage(p.rgb() / np.float32(255), p.high, p.low, "npz", 16, True)
    return image_stats(scan)


def test_scanner_ageing_raises_noise_and_shifts_attenuation_on_one_scanner_only() -> None:
    kw = {"scenario": "scanner_ageing", "size": (192, 192), "threat_rate": 0.3}
    fresh = [_stats(p) for p in _parcels(8, seed=8, progress=0.0, **kw)]
    aged = [_stats(p) for p in _parcels(8, seed=8, progress=1.0, **kw)]
    other = [_stats(p) for p in _parcels(8, seed=8, progress=1.0, scanner_id="scanner-2", **kw)]
    noise = [np.median([s["noise_level"] for s in group]) for group in (fresh, aged, other)]
    mean_att = [np.mean([s["mean_attenuation"] for s in group]) for group in (fresh, aged, other)]
    assert noise[1] > 1.5 * noise[0]
    assert mean_att[1] > mean_att[0] + 0.03
    assert noise[2] == pytest.approx(noise[0], rel=0.05) and mean_att[2] == pytest.approx(mean_att[0], abs=1e-3)


def test_scanner_ageing_is_visible_in_pseudo_colour_files_too() -> None:
    from xray.formats import read_scan
    from xray.writers import encode

    def png_stats(progress: float) -> list[dict[str, float]]:
        parcels = _parcels(6, seed=8, progress=progress, scenario="scanner_ageing", size=(192, 192))
        return [image_stats(read_scan(encode("png", p.high, p.low, palette="reference"))) for p in parcels]

    fresh, aged = png_stats(0.0), png_stats(1.0)
    assert np.median([s["noise_level"] for s in aged]) > 1.5 * np.median([s["noise_level"] for s in fresh])
    # the same parcels, aged: every image darker (gain down, offset up), by over 10% in the median; paired,
    # because packed parcels differ far more from each other than the ageing shifts any one of them
    rise = np.array([a["mean_attenuation"] / f["mean_attenuation"] for a, f in zip(aged, fresh, strict=True)])
    assert (rise > 1.0).all() and np.median(rise) > 1.1


def test_baseline_does_not_drift() -> None:
    start = [_stats(p)["mean_attenuation"] for p in _parcels(6, seed=9, progress=0.0)]
    end = [_stats(p)["mean_attenuation"] for p in _parcels(6, seed=9, progress=1.0)]
    np.testing.assert_allclose(start, end)
    assert set(SCENARIOS) == {"baseline", "new_goods", "new_concealment", "scanner_ageing", "seasonal_mix"}


def test_train_split_never_draws_held_out_families_and_heldout_draws_them() -> None:
    from xray.items import HELDOUT_BENIGN
    from xray.threats import HELDOUT_VARIANTS

    held = {f"{c}:{v}" for c, vs in HELDOUT_VARIANTS.items() for v in vs} | set(HELDOUT_BENIGN)
    train = _parcels(40, seed=10, threat_rate=1.0, content_split="train")
    assert not [o.name for p in train for o in p.objects if o.name in held]
    heldout = _parcels(40, seed=10, threat_rate=1.0, content_split="heldout")
    threats = [o.name for p in heldout for o in p.objects if o.is_threat]
    assert threats and all(name in held for name in threats)
    assert any(o.name in held for p in heldout for o in p.objects if not o.is_threat)
    with pytest.raises(ConfigError, match="content split"):
        _parcels(1, content_split="test")


def test_pixel_mm_sets_the_apparent_size_of_objects() -> None:
    def median_side(pixel_mm: float) -> float:
        parcels = _parcels(30, seed=11, classes=["knife"], threat_rate=1.0, size=(256, 256), pixel_mm=pixel_mm)
        return float(np.median([max(o.box[2] - o.box[0], o.box[3] - o.box[1])
                                for p in parcels for o in p.objects if o.is_threat]))

    assert 0.35 < median_side(2.4) / median_side(1.2) < 0.65
    with pytest.raises(ConfigError, match="pixel size"):
        _parcels(1, pixel_mm=0.01)
