"""Small stand-ins for serving tests: a PNG reader shaped like xray's, a scorer, and a list-backed spool."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

from analytics.records import IngestBatch
from xscreen.errors import BadScanError

STATS = {"mean_attenuation": 0.5, "noise_level": 0.01, "dynamic_range": 2.0,
         "organic_fraction": 0.3, "inorganic_fraction": 0.2, "metal_fraction": 0.1}


def fake_reader(data: bytes, *, name: str, max_bytes: int, max_pixels: int, **_: Any) -> Any:
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


def tiny_model(classes: list[str], version: str = "tiny-1", seed: int = 0) -> Any:
    """A real, untrained, seeded few-channel model as a Checkpoint (builds in milliseconds)."""
    from screening.network import NetConfig, build_network
    from screening.registry import Checkpoint

    config = NetConfig(classes=tuple(classes), input_size=64, width=4, embedding_dim=8)
    thresholds = {c: {"clear": 0.3, "inspect": 0.7} for c in [*classes, "any_threat"]}
    return Checkpoint(version, config, build_network(config, seed=seed).state_dict(), {"any_threat": 1.0},
                      thresholds, {"alpha": 0.05}, {})


def tiny_checkpoint(folder: Path, classes: list[str], version: str = "tiny-1", seed: int = 0) -> Any:
    """tiny_model saved as a verified checkpoint file; returns its ModelRef (no store needed)."""
    from screening.registry import save_checkpoint
    from serving.deployments import ModelRef

    path = folder / version / "model.pt"
    digest = save_checkpoint(tiny_model(classes, version, seed), path)
    return ModelRef(str(path), digest, version)


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in found]
        found.update(children)
        frontier.extend(children)
    return found


def _hex_ip(text: str) -> str:
    import ipaddress
    import socket
    import struct

    if len(text) == 8:  # IPv4, little-endian
        return socket.inet_ntoa(struct.pack("<I", int(text, 16)))
    words = [struct.pack("<I", int(text[i : i + 8], 16)) for i in range(0, 32, 8)]
    address = ipaddress.IPv6Address(b"".join(words))
    return str(address.ipv4_mapped or address)  # ::ffff:127.0.0.1 is IPv4 loopback


def listening_addresses(root_pid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of TCP listeners owned by `root_pid` and its descendants (Linux /proc)."""
    owner: dict[str, str] = {}
    for pid in _descendants(root_pid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owner[link[8:-1]] = f"{name}[{pid}]"
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in owner:  # 0A = LISTEN
                host, port = cols[1].split(":")
                found.append((_hex_ip(host), int(port, 16), owner[cols[9]]))
    return found
