"""A heatmap crosses three owners (the classifier writes it, the store keeps it, the viewer draws it) in one frame:
the peak the model found on a wide 1000 x 300 scan is the peak the officer sees, over the threat, in-process and
over HTTP. Before the frame was defined once, the viewer cropped the stored map again as if it covered the
model's letterboxed canvas, and a peak near the top or bottom was shown at the edge."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from analytics import triage
from screening.classifier import Classifier, Prediction, verdict_fields
from screening.preprocess import canvas_batch, prepare
from store.client import StoreClient
from store.engine import Store
from xray.formats import image_stats, read_scan
from xscreen.records import (
    ImageStats,
    IngestBatch,
    ScanDetail,
    ScanRecord,
    VerdictRecord,
    decode_heatmap,
    encode_heatmap,
    heatmap_on_image,
    heatmap_peak,
)
from xscreen.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / ModelSettings().bundled  # type: ignore[operator]
SAMPLE = ROOT / "sample_data/baseline_png"
PARCEL, THREAT = "scan_00043.png", "currency"  # a parcel with currency low down (sample_data/baseline_png/manifest.parquet)
WIDTH, HEIGHT, AT_X = 1000, 300, 700  # the parcel at the right end of a long belt image


def wide_scan(folder: Path) -> tuple[Path, tuple[float, float, float, float]]:
    """The sample parcel scaled to the belt's height at its right end: a 1000 x 300 PNG, and the threat's box
    (x0, y0, x1, y1) in image fractions."""
    parcel = Image.open(SAMPLE / PARCEL).convert("RGB")
    f = HEIGHT / parcel.height
    belt = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))  # an empty beam: white
    belt.paste(parcel.resize((round(parcel.width * f), HEIGHT), Image.Resampling.BILINEAR), (AT_X, 0))
    path = folder / "belt-1000x300.png"
    belt.save(path)
    objects = pd.read_parquet(SAMPLE / "manifest.parquet").set_index("file").loc[PARCEL, "objects"]
    o = next(o for o in objects if o["class_name"] == THREAT)
    return path, ((o["x0"] * f + AT_X) / WIDTH, o["y0"] * f / HEIGHT, (o["x1"] * f + AT_X) / WIDTH, o["y1"] * f / HEIGHT)


def canvas_peak(clf: Classifier, image: np.ndarray, cls: str) -> tuple[float, float, float, float]:
    """(x, y) image fractions of the network's own evidence peak for `cls`: the argmax of its class CAM over the
    letterboxed canvas, mapped back through the letterbox geometry (not through any heatmap code); and the size
    of one CAM cell in image fractions (x, y)."""
    prepared = prepare(image, clf.input_size)
    with torch.inference_mode():
        cams = clf.scores(canvas_batch([prepared]))[2].class_cams
    cam = cams[0, clf.classes.index(cls)].float().numpy().copy()  # (h, w)
    geo = prepared.geometry
    top, bottom = geo.top / geo.size * cam.shape[0], (geo.top + geo.new_h) / geo.size * cam.shape[0]
    rows = np.arange(cam.shape[0]) + 0.5
    cam[(rows < top) | (rows > bottom)] = -np.inf  # the padding is not the image
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    x, y, _, _ = geo.canvas_box_to_image(((c + 0.5) / cam.shape[1], (r + 0.5) / cam.shape[0], 0.0, 0.0))
    return x, y, geo.size / cam.shape[1] / geo.new_w, geo.size / cam.shape[0] / geo.new_h


def shown_peak(scan: ScanDetail) -> tuple[float, float]:
    """Where the viewer draws the overlay's peak: the default class's map, from the verdict the store gave, blended
    as pages/_viewer.py blends it onto a picture the size of the scan read from the store's path (a uniform grey
    one, so the overlay's strength can be read back from the green channel it darkens)."""
    verdict = scan["verdicts"][0]
    rgb = read_scan(scan["image"]["path"]).rgb
    heat = triage.class_heat(verdict, triage.overlay_default(verdict))
    assert heat is not None
    shown = triage.heatmap_overlay(np.full_like(rgb, 0.5), heat)  # (H, W, 3)
    strength = 0.5 - shown[:, :, 1]  # (H, W): the overlay darkens green in proportion to the heat
    r, c = np.unravel_index(int(np.argmax(strength)), strength.shape)
    return c / strength.shape[1], r / strength.shape[0]


def stored_scan(path: Path, prediction: Prediction, now: datetime) -> IngestBatch:
    image = read_scan(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    scan = ScanRecord(scan_id=sha[:16], sha256=sha, scanner_id="belt-1", source_path=str(path), file_format="png",
                      width=WIDTH, height=HEIGHT, bit_depth=8, dual_energy=False, received_at=now,
                      stats=ImageStats(**image_stats(image)))
    verdict = VerdictRecord(scan_id=scan.scan_id, scored_at=now, **verdict_fields(prediction))
    return IngestBatch(batch_id="belt", scans=[scan], verdicts=[verdict])


def test_the_peak_the_model_found_is_the_peak_the_officer_sees_on_a_wide_scan(
        owner: tuple[StoreClient, Store], tmp_path: Path, now: datetime) -> None:
    client, store = owner
    path, threat_box = wide_scan(tmp_path)
    clf = Classifier.from_checkpoint(MODEL)
    pixels = read_scan(path)
    prediction = clf.predict([pixels])[0]
    cls = prediction.top_class
    assert cls == THREAT and cls in prediction.heatmaps
    g = prediction.heatmaps[cls].shape[0]

    # The classifier's stored map is in the image frame: its peak is the network's canvas peak, mapped back.
    model_x, model_y = heatmap_peak(prediction.heatmaps[cls])
    cam_x, cam_y, cell_x, cell_y = canvas_peak(clf, pixels.rgb, cls)
    assert abs(model_x - cam_x) <= cell_x and abs(model_y - cam_y) <= cell_y  # within one CAM cell
    assert not 0.34 <= model_y <= 0.66, "the test needs a peak away from the middle rows the old viewer kept"

    batch = stored_scan(path, prediction, now)
    client.ingest(batch)
    scan_id = batch.scans[0].scan_id
    for scan in (store.get_scan(scan_id), client.get_scan(scan_id)):
        x, y = shown_peak(scan)
        # a peak cell of the stored map (8-bit: cells of a broad peak may tie, and the viewer shows one of them)
        stored = decode_heatmap(scan["verdicts"][0]["heatmaps"][cls], g)
        row, col = min(int(y * g), g - 1), min(int(x * g), g - 1)
        assert stored[row, col] >= stored.max() - 1 / 255
        x0, y0, x1, y1 = threat_box
        cell = 1 / g  # the map's resolution: the viewer's brightest pixel lies somewhere in the peak cell
        assert x0 - cell <= x <= x1 + cell and y0 - cell <= y <= y1 + cell  # and that cell is on the threat


def test_the_frame_places_cells_by_the_images_own_proportions() -> None:
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[0, 3] = 1.0  # top-right cell
    on_image = heatmap_on_image(decode_heatmap(encode_heatmap(grid), 4), 300, 1000)
    assert on_image.shape == (300, 1000)
    rows, cols = np.nonzero(on_image)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 74, 750, 999)  # a quarter of each side
    assert heatmap_peak(grid) == (0.875, 0.125)


def test_a_heatmap_of_the_wrong_size_or_encoding_is_a_clear_error() -> None:
    from xscreen.errors import XscreenError

    with pytest.raises(XscreenError, match="expected 3x3"):
        decode_heatmap(encode_heatmap(np.zeros((2, 2))), 3)
    with pytest.raises(XscreenError, match="not valid base64"):
        decode_heatmap("not base64!", 2)
