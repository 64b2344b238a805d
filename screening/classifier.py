"""The plain-PyTorch Classifier serving wraps: images in, calibrated Predictions (verdict, heatmaps, embedding) out."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from screening.calibration import OperatingPoint, verdicts
from screening.network import ScreeningNet
from screening.preprocess import Geometry, PreparedScan, canvas_batch, prepare
from screening.registry import Checkpoint, build_model, load_checkpoint, load_registered
from xscreen.records import ANY_THREAT, encode_heatmap
from xscreen.settings import Settings

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]


class HasRgb(Protocol):
    @property
    def rgb(self) -> np.ndarray: ...


@dataclass
class Prediction:
    """One scan's prediction. Probabilities are calibrated, in [0, 1]; boxes are (x0, y0, x1, y1) image fractions."""

    scores: dict[str, float]
    any_threat: float
    verdict: str  # inspect | clear | uncertain
    top_class: str | None  # highest-scoring class, None if no class reaches its clear threshold
    thresholds: dict[str, dict[str, float]]
    embedding: np.ndarray  # (D,) float32, L2-normalised
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # class -> (g, g) float32 in [0, 1] over the image
    peak_boxes: dict[str, Box] = field(default_factory=dict)
    model_version: str = ""

    def peak(self, cls: str) -> tuple[float, float]:
        """(x, y) image fractions of the heatmap's maximum (cell centre)."""
        hm = self.heatmaps[cls]
        r, c = np.unravel_index(int(np.argmax(hm)), hm.shape)
        return (c + 0.5) / hm.shape[1], (r + 0.5) / hm.shape[0]


def peak_box(hm: np.ndarray, level: float = 0.5) -> Box:
    """Bounding box (image fractions) of the connected region >= level * max that contains the maximum."""
    g_h, g_w = hm.shape
    r, c = np.unravel_index(int(np.argmax(hm)), hm.shape)
    regions, _ = ndimage.label(hm >= level * hm.max())
    rows, cols = np.nonzero(regions == regions[r, c])
    return (float(cols.min() / g_w), float(rows.min() / g_h), float((cols.max() + 1) / g_w), float((rows.max() + 1) / g_h))


def image_heatmap(cam: torch.Tensor, geo: Geometry, grid: int) -> np.ndarray:
    """Canvas CAM (h, w) -> (grid, grid) map over the image only (padding cropped), scaled to [0, 1]."""
    up = F.interpolate(cam[None, None], size=(geo.size, geo.size), mode="bilinear", align_corners=False)[0, 0]
    crop = up[geo.top : geo.top + geo.new_h, geo.left : geo.left + geo.new_w]
    hm = F.interpolate(crop[None, None], size=(grid, grid), mode="bilinear", align_corners=False)[0, 0]
    hm = hm - hm.min()  # evidence relative to the least suspicious part of the image
    top = float(hm.max())
    return (hm / top if top > 0 else hm).numpy().astype(np.float32)


@functools.lru_cache(maxsize=1024)
def _lerp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of F.interpolate's 1-D linear resize (align_corners=False, no antialias), float64."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)  # source coordinate of each output
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


@functools.lru_cache(maxsize=1024)
def _axis_map(n_cam: int, size: int, start: int, length: int, grid: int) -> np.ndarray:
    """(grid, n_cam): upsample n_cam -> size (the canvas), keep [start, start + length) (the image), resize to
    grid: image_heatmap's three steps along one axis, composed into one linear map."""
    return _lerp_matrix(length, grid) @ _lerp_matrix(n_cam, size)[start : start + length]


def batch_heatmaps(cams: torch.Tensor, geos: Sequence[Geometry], grid: int) -> np.ndarray:
    """Canvas CAMs (N, h, w), one Geometry each -> (N, grid, grid) float32, equal to image_heatmap item by item
    (to float32 rounding: a few ulps, < 3e-6).

    Bilinear resizes are linear and separable, so upsample -> crop -> resize is R @ cam @ C.T with small
    (grid, h) and (grid, w) matrices per geometry: two batched matmuls instead of a (S, S) upsampling per map."""
    n, h, w = cams.shape
    if n == 0:
        return np.zeros((0, grid, grid), np.float32)
    rows = torch.from_numpy(np.stack([_axis_map(h, g.size, g.top, g.new_h, grid) for g in geos]))  # (N, grid, h)
    cols = torch.from_numpy(np.stack([_axis_map(w, g.size, g.left, g.new_w, grid) for g in geos]))  # (N, grid, w)
    out = (rows @ cams.double() @ cols.transpose(1, 2)).float()  # (N, grid, grid)
    out -= out.amin(dim=(1, 2), keepdim=True)  # evidence relative to the least suspicious part of each image
    peak = out.amax(dim=(1, 2), keepdim=True)  # (N, 1, 1)
    return torch.where(peak > 0, out / torch.where(peak > 0, peak, 1.0), out).numpy()


class Classifier:
    """Loads one model version and predicts batches of scans. No Ray here: serving wraps exactly this class."""

    def __init__(self, net: ScreeningNet, ckpt: Checkpoint, device: str = "cpu", *, heatmap_size: int = 32,
                 heatmap_classes: int = 2, batch_size: int = 32) -> None:
        self.device = torch.device(device)
        # channels_last doubles CPU convolution throughput with oneDNN and is the fast layout on GPUs too.
        self.net = net.to(self.device, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
        self.ckpt = ckpt
        self.classes = list(ckpt.config.classes)
        self.version = ckpt.version
        self.point = OperatingPoint(ckpt.thresholds)
        self.heatmap_size = heatmap_size
        self.heatmap_classes = heatmap_classes
        self.batch_size = batch_size
        t = ckpt.temperatures
        self._t_class = torch.tensor([t.get(c, 1.0) for c in self.classes], device=self.device)
        self._t_any = float(t.get(ANY_THREAT, 1.0))

    def with_thresholds(self, thresholds: dict[str, dict[str, float]]) -> Classifier:
        """The same network and calibration under another operating point (the thresholds in force changed):
        a new object, so a batch being scored keeps the point it started with; no weights are reloaded."""
        other = copy.copy(self)
        other.point = OperatingPoint(thresholds)
        return other

    @staticmethod
    def pick_device(device: str) -> str:
        """`cuda` only when requested and available; anything else runs on the CPU."""
        if device.startswith("cuda") and not torch.cuda.is_available():
            log.warning("CUDA requested but not available: using the CPU")
            return "cpu"
        return device

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu", expected_classes: list[str] | None = None,
                        expected_sha256: str | None = None, **kwargs: Any) -> Classifier:
        ckpt = load_checkpoint(Path(path), expected_sha256=expected_sha256, expected_classes=expected_classes)
        return cls(build_model(ckpt), ckpt, cls.pick_device(device), **kwargs)

    @classmethod
    def from_registry(cls, settings: Settings, name: str = "champion", device: str = "cpu") -> Classifier:
        _, ckpt = load_registered(settings, name)
        return cls(build_model(ckpt), ckpt, cls.pick_device(device), heatmap_size=settings.screening.heatmap_size)

    @property
    def input_size(self) -> int:
        return self.ckpt.config.input_size

    @torch.inference_mode()
    def predict(self, images: Sequence[HasRgb | np.ndarray | PreparedScan]) -> list[Prediction]:
        """Predictions in input order. Arrays are (H, W, 3) RGB or (H, W) gray in [0, 1] (or uint8); scans with
        .rgb8/.rgb; or PreparedScans letterboxed to this model's input_size (serving prepares them where the
        file is decoded, so a replica only stacks canvases)."""
        out: list[Prediction] = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            out.extend(self._predict_batch([prepare(im, self.input_size, i + j) for j, im in enumerate(chunk)]))
        return out

    @torch.inference_mode()  # callable directly (a notebook): no autograd graph, no numpy() on a grad tensor
    def scores(self, canvases: torch.Tensor) -> tuple[np.ndarray, np.ndarray, Any]:
        """Calibrated (any (B,), classes (B, K)) and the raw NetOutput for letterboxed canvases (B, 3, S, S)."""
        x = canvases.to(self.device).contiguous(memory_format=torch.channels_last)
        o = self.net(x)
        p_any = torch.sigmoid(o.any_logit / self._t_any).cpu().numpy()
        p_cls = torch.sigmoid(o.class_logits / self._t_class).cpu().numpy()
        return p_any.astype(np.float64), p_cls.astype(np.float64), o

    def _predict_batch(self, prepared: list[PreparedScan]) -> list[Prediction]:
        geos = [p.geometry for p in prepared]
        p_any, p_cls, o = self.scores(canvas_batch(prepared, self.device))  # (B, 3, S, S) channels-last
        v = verdicts(p_any, p_cls, self.classes, self.point)
        emb = o.embedding.float().cpu().numpy()
        # Heatmaps of the top `heatmap_classes` classes of each scan only (the ones stored), in one batched call.
        k = min(self.heatmap_classes, len(self.classes))
        order = np.argsort(-p_cls, axis=1, kind="stable")  # (B, K) classes by descending score
        top = torch.from_numpy(order[:, :k].copy())  # (B, k)
        cams = o.class_cams.float().cpu()  # (B, K, h, w)
        picked = cams[torch.arange(len(prepared))[:, None], top]  # (B, k, h, w)
        maps = batch_heatmaps(picked.flatten(0, 1), [g for g in geos for _ in range(k)], self.heatmap_size)
        maps = maps.reshape(len(prepared), k, self.heatmap_size, self.heatmap_size)  # (B, k, g, g)
        return [self._one(p_any[b], p_cls[b], str(v[b]), order[b, :k], maps[b], emb[b]) for b in range(len(prepared))]

    def _one(self, p_any: float, p_cls: np.ndarray, verdict: str, top: np.ndarray, maps: np.ndarray,
             emb: np.ndarray) -> Prediction:
        scores = {c: float(p_cls[j]) for j, c in enumerate(self.classes)}
        best = self.classes[int(top[0])] if len(top) else self.classes[int(np.argmax(p_cls))]
        top_class = best if scores[best] >= self.point.thresholds[best]["clear"] else None
        heatmaps = {self.classes[int(j)]: maps[i] for i, j in enumerate(top)}
        boxes = {c: peak_box(hm) for c, hm in heatmaps.items()}
        return Prediction(scores, float(p_any), verdict, top_class, self.point.thresholds, emb.astype(np.float32),
                          heatmaps, boxes, self.version)


def verdict_fields(pred: Prediction) -> dict[str, Any]:
    """The VerdictRecord fields a Prediction provides (the caller adds scan_id, role, scored_at, latency). Heatmaps
    are already in the image frame xscreen.records defines (canvas padding cropped by image_heatmap)."""
    size = next(iter(pred.heatmaps.values())).shape[0] if pred.heatmaps else 0
    return {
        "model_version": pred.model_version,
        "verdict": pred.verdict,
        "any_threat": pred.any_threat,
        "scores": pred.scores,
        "top_class": pred.top_class,
        "thresholds": pred.thresholds,
        "embedding": [float(x) for x in pred.embedding],
        "heatmaps": {c: encode_heatmap(h) for c, h in pred.heatmaps.items()},
        "heatmap_size": size,
        "peak_boxes": {c: list(b) for c, b in pred.peak_boxes.items()},
    }
