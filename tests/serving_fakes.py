"""Small stand-ins for serving tests: a PNG reader shaped like xray's, a scorer, and a list-backed spool."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

from analytics.records import IngestBatch
from xscreen.errors import BadScanError

STATS = {"mean_attenuation": 0.5, "noise_level": 0.01, "dynamic_range": 2.0,
         "organic_fraction": 0.3, "inorganic_fraction": 0.2, "metal_fraction": 0.1}


def fake_reader(data: bytes, *, name: str, max_bytes: int, max_pixels: int) -> Any:
    """Stands in for xray.formats.read_scan: decodes a PNG or raises BadScanError like the real reader."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            raise BadScanError(name, "too_many_pixels", f"{img.width}x{img.height} is over {max_pixels} pixels")
        img.load()
    except BadScanError:
        raise
    except Exception as exc:
        raise BadScanError(name, "not_image", f"not a decodable image ({exc})") from None
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return SimpleNamespace(rgb=rgb, source_format="png", bit_depth=8, dual_energy=False)


class FakeScorer:
    """Records each call; scores by mean brightness so results differ per image."""

    def __init__(self, version: str = "m1", fail_times: int = 0) -> None:
        self.calls: list[int] = []
        self.version = version
        self.fail_times = fail_times

    def __call__(self, images: list[Any]) -> list[dict[str, Any]]:
        self.calls.append(len(images))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("replica died")
        out = []
        for im in images:
            p = float(im.rgb.mean())
            out.append({"model_version": self.version, "verdict": "inspect" if p > 0.5 else "clear",
                        "any_threat": p, "scores": {"knife": p}, "top_class": "knife" if p > 0.5 else None,
                        "thresholds": {"knife": {"clear": 0.2, "inspect": 0.5}}, "embedding": [p, 1 - p]})
        return out


class ListSpool:
    def __init__(self, folder: Path) -> None:
        self.batches: list[IngestBatch] = []
        self.folder = folder

    def __call__(self, batch: IngestBatch) -> Path:
        self.batches.append(batch)
        path = self.folder / f"{batch.batch_id}.json"
        path.write_text(batch.model_dump_json())
        return path


def png_bytes(value: int, size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_checkpoint(folder: Path, classes: list[str], version: str = "tiny-1", seed: int = 0) -> Any:
    """A real, untrained, seeded few-channel model saved as a verified checkpoint; returns its ModelRef."""
    from screening.network import NetConfig, build_network
    from screening.registry import Checkpoint, save_checkpoint
    from serving.deployments import ModelRef

    config = NetConfig(classes=tuple(classes), input_size=64, width=4, embedding_dim=8)
    thresholds = {c: {"clear": 0.3, "inspect": 0.7} for c in [*classes, "any_threat"]}
    ckpt = Checkpoint(version, config, build_network(config, seed=seed).state_dict(), {"any_threat": 1.0},
                      thresholds, {"alpha": 0.05}, {})
    path = folder / version / "model.pt"
    digest = save_checkpoint(ckpt, path)
    return ModelRef(str(path), digest, version)
