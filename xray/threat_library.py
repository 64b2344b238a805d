"""The threat library: versioned threat signatures with provenance, split by article into canary / training /
certification parts, rendered from the renderer's threat variants or cut from confirmed real seizures.

Airport threat-image-projection libraries keep their images apart by use: the threats that teach a model, the
threats that certify it and the known-answer canaries injected into live mail are different physical articles, so
a certificate never measures an article the model was taught. Here an article is one object's shape
(`xray.tip.article_rng`); all poses of an article share its id and therefore its part (`xray.tip.article_part`).

Two kinds of signature:
- `attenuation`: log-attenuation at high and low energy (>= 0) and a mask, from the renderer or from a seizure
  scanned with raw dual-energy data; projects into any scanner (xray.projection);
- `transmission`: a per-channel transmission map (the seized item's pixels over the background behind it, in
  [0, 1]) cut from a pseudo-colour or grey image; projects only into images of the scanner it came from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from xray.materials import TRANSMISSION_FLOOR
from xray.threats import check_classes, variants_in_split
from xray.tip import ARTICLE_PARTS, ThreatSignature, article_part, pick_article, render_threat
from xscreen.errors import ConfigError

LIBRARY_VERSION = "1"  # bump when the renderer's threat shapes change: signatures of another version differ
SignatureKind = Literal["attenuation", "transmission"]
REFERENCE_PIXEL_MM = 620.0 / 512.0  # rendered signatures are at the default renderer pitch (mm per pixel)


@dataclass(frozen=True)
class LibraryEntry:
    """One signature of the library: its pixels, class, article, part and where it came from."""

    kind: SignatureKind
    class_name: str
    article: str  # `class:variant:k` (rendered) or `seizure:<id>` (cut from a real scan)
    part: str  # canary | training | certification
    provenance: str  # how it was made, enough to make it again (rendered) or to find the scan (seizure)
    version: str  # library version the signature was made with
    mask: np.ndarray  # (h, w) bool: the threat's own pixels
    att_high: np.ndarray | None = None  # (h, w) float32 log-attenuation (kind attenuation)
    att_low: np.ndarray | None = None
    transmission: np.ndarray | None = None  # (h, w, C) float32 in [0, 1] (kind transmission)
    pixel_mm: float = REFERENCE_PIXEL_MM  # mm per pixel of the signature (None-free: seizures give their scan's)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]

    def signature(self) -> ThreatSignature:
        """The attenuation signature as xray.tip takes it (ConfigError for a transmission entry)."""
        if self.att_high is None or self.att_low is None:
            raise ConfigError(f"library entry {self.article} is a transmission map: it projects only into images of "
                              "its own scanner (xray.projection.paste_transmission)")
        return ThreatSignature(self.att_high, self.att_low, self.mask, self.class_name,
                               self.article.rsplit(":", 1)[0], self.article)


@dataclass(frozen=True)
class ThreatLibrary:
    """Entries and the library version; `part(name)` selects one disjoint part."""

    entries: tuple[LibraryEntry, ...]
    version: str = LIBRARY_VERSION

    def part(self, name: str, classes: Sequence[str] | None = None) -> list[LibraryEntry]:
        if name not in ARTICLE_PARTS:
            raise ConfigError(f"unknown library part {name!r}; known: {', '.join(ARTICLE_PARTS)}")
        return [e for e in self.entries if e.part == name and (classes is None or e.class_name in classes)]

    def classes(self) -> list[str]:
        return sorted({e.class_name for e in self.entries})


def render_entries(class_name: str, part: str, *, articles: int, poses: int, seed: int,
                   split: str = "all") -> list[LibraryEntry]:
    """`articles` articles of `class_name` drawn for library part `part` (ids whose part is `part`), each in
    `poses` random 3D poses, over the variants of content split `split`. Deterministic given the arguments."""
    check_classes([class_name])
    variants = variants_in_split(class_name, split)
    if not variants:
        raise ConfigError(f"{class_name} has no variants in content split {split!r}")
    rng = np.random.default_rng([seed, *class_name.encode(), ARTICLE_PARTS.index(part)])
    out = []
    for a in range(articles):
        article = pick_article(rng, part)
        variant = variants[a % len(variants)]  # every variant of the split, in turn
        for p in range(poses):
            sig = render_threat(np.random.default_rng([seed, article, p]), class_name, variant=variant, article=article)
            out.append(LibraryEntry(
                "attenuation", class_name, sig.article, article_part(article),
                f"rendered: xray.tip.render_threat(class={class_name}, variant={variant}, article={article}, "
                f"pose_seed=[{seed}, {article}, {p}])", LIBRARY_VERSION, sig.mask, sig.att_high, sig.att_low))
    return out


def build_library(classes: Sequence[str], *, articles: int = 6, poses: int = 4, seed: int = 0,
                  split: str = "all", parts: Sequence[str] = ARTICLE_PARTS) -> ThreatLibrary:
    """A rendered library: for every class and part, `articles` articles in `poses` poses each."""
    entries = [e for c in classes for part in parts
               for e in render_entries(c, part, articles=articles, poses=poses, seed=seed, split=split)]
    return ThreatLibrary(tuple(entries))


def render_decoys(n: int, *, seed: int, lookalike_share: float = 0.5, split: str = "train") -> list[LibraryEntry]:
    """`n` benign objects rendered alone like library threats (class `benign`, part `training`): projected into a
    scanner's benign images as negatives, they make "an object was projected here" no cue for a threat. About
    `lookalike_share` of them are lookalikes (a toy gun, a powder bag, a phone), the rest any benign family of
    content split `split` (`train`: never a held-out family) in proportion to the renderer's weights."""
    from xray.library.catalogue import BENIGN
    from xray.stamp import random_pose, stamp_thing
    from xray.synth import BELT_WIDTH_MM, DEFAULT_WIDTH

    families = [f for f in BENIGN.values() if f.weight > 0 and (split != "train" or not f.heldout)]
    lookalikes = [f for f in families if f.resembles]
    weights = np.array([f.weight for f in families])
    rng = np.random.default_rng([seed, 7])
    ppm = DEFAULT_WIDTH / BELT_WIDTH_MM
    out = []
    for i in range(n):
        fam = (lookalikes[int(rng.integers(len(lookalikes)))] if rng.random() < lookalike_share
               else families[int(rng.choice(len(families), p=weights / weights.sum()))])
        thing = fam.make(np.random.default_rng([seed, 7, i]))
        side = int(2 * float(np.linalg.norm(thing.half)) * ppm) + 8
        acc = np.zeros((2, side, side), dtype=np.float32)
        hit = stamp_thing(acc, thing, random_pose(rng, thing.poses), side / 2, side / 2, ppm, rng)
        if hit is None or hit[1] is None:
            continue
        (x0, y0, x1, y1), mask = hit[0], hit[1]
        out.append(LibraryEntry("attenuation", "benign", f"decoy:{fam.name}:{i}", "training",
                                f"rendered: benign family {fam.name}, seed [{seed}, 7, {i}]", LIBRARY_VERSION, mask,
                                acc[0, y0:y1, x0:x1].copy(), acc[1, y0:y1, x0:x1].copy()))
    return out


# ---------------------------------------------------------------------------------------------- real seizures


def _check_box(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    H, W = shape[:2]
    if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H) or x1 - x0 < 3 or y1 - y0 < 3:
        raise ConfigError(f"seizure box {box} must lie inside the {W}x{H} image and be at least 3 pixels a side")
    return x0, y0, x1, y1


def _ring_median(img: np.ndarray, box: tuple[int, int, int, int], width: int = 3) -> np.ndarray:
    """Median value (per channel) of a ring of `width` pixels just outside the box: the background behind it."""
    x0, y0, x1, y1 = box
    H, W = img.shape[:2]
    ox0, oy0 = max(x0 - width, 0), max(y0 - width, 0)
    outer = img[oy0:min(y1 + width, H), ox0:min(x1 + width, W)]
    ring = np.ones(outer.shape[:2], dtype=bool)
    ring[y0 - oy0:y1 - oy0, x0 - ox0:x1 - ox0] = False
    pixels = outer[ring] if ring.any() else outer.reshape(-1, *img.shape[2:])
    return np.median(pixels, axis=0)


def seizure_from_image(image: np.ndarray, box: tuple[int, int, int, int], class_name: str, *, scan_id: str,
                       part: str = "certification", pixel_mm: float = REFERENCE_PIXEL_MM) -> LibraryEntry:
    """A transmission signature cut from a pseudo-colour (H, W, 3) or grey (H, W) uint8 image of a confirmed
    seizure: the box's pixels divided by the median of the ring around it (what lies behind, per channel), so
    multiplying another image of that scanner by it puts the seized item there. The mask is where any channel
    is darker than the background by more than 4%."""
    check_classes([class_name])
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ConfigError(f"a seizure image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    x0, y0, x1, y1 = _check_box(image.shape, box)
    img = image.astype(np.float32)[..., None] if image.ndim == 2 else image.astype(np.float32)
    background = np.maximum(_ring_median(img, (x0, y0, x1, y1)), 1.0)
    trans = np.clip(img[y0:y1, x0:x1] / background, TRANSMISSION_FLOOR, 1.0).astype(np.float32)
    mask = (trans < 0.96).any(axis=-1)
    return LibraryEntry("transmission", class_name, f"seizure:{scan_id}", part,
                        f"seizure: scan {scan_id}, box {[x0, y0, x1, y1]}, pseudo-colour transmission",
                        LIBRARY_VERSION, mask, transmission=trans, pixel_mm=pixel_mm)


def seizure_from_dual_energy(high: np.ndarray, low: np.ndarray, box: tuple[int, int, int, int], class_name: str,
                             *, scan_id: str, part: str = "certification",
                             pixel_mm: float = REFERENCE_PIXEL_MM) -> LibraryEntry:
    """An attenuation signature cut from a raw dual-energy scan (transmissions in (0, 1]) of a confirmed seizure:
    the box's log-attenuation minus that of the background ring around it, per energy (clipped at 0)."""
    check_classes([class_name])
    if high.shape != low.shape or high.ndim != 2:
        raise ConfigError(f"high {high.shape} and low {low.shape} must be equal 2-D shapes")
    x0, y0, x1, y1 = _check_box(high.shape, box)
    maps = []
    for t in (high, low):
        a = -np.log(np.clip(t.astype(np.float32), TRANSMISSION_FLOOR, 1.0))
        maps.append(np.maximum(a[y0:y1, x0:x1] - float(_ring_median(a, (x0, y0, x1, y1))), 0.0).astype(np.float32))
    mask = maps[0] > 0.02
    return LibraryEntry("attenuation", class_name, f"seizure:{scan_id}", part,
                        f"seizure: scan {scan_id}, box {[x0, y0, x1, y1]}, raw dual energy", LIBRARY_VERSION, mask,
                        maps[0], maps[1], pixel_mm=pixel_mm)


# ----------------------------------------------------------------------------------------------------- storage


def save_library(library: ThreatLibrary, folder: Path) -> Path:
    """Write the library as folder/library.json (entries, provenance, version) + folder/arrays.npz."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    rows = []
    for i, e in enumerate(library.entries):
        for name in ("mask", "att_high", "att_low", "transmission"):
            value = getattr(e, name)
            if value is not None:
                arrays[f"{i}_{name}"] = value
        rows.append({"kind": e.kind, "class_name": e.class_name, "article": e.article, "part": e.part,
                     "provenance": e.provenance, "version": e.version, "pixel_mm": e.pixel_mm, "meta": e.meta})
    np.savez_compressed(folder / "arrays.npz", **arrays)  # type: ignore[arg-type]
    path = folder / "library.json"
    path.write_text(json.dumps({"version": library.version, "entries": rows}, indent=1), encoding="utf-8")
    return path


def load_library(folder: Path) -> ThreatLibrary:
    """The library save_library wrote (ConfigError when the folder holds none)."""
    path = folder / "library.json"
    if not path.is_file() or not (folder / "arrays.npz").is_file():
        raise ConfigError(f"{folder}: no threat library (library.json and arrays.npz)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    with np.load(folder / "arrays.npz") as z:
        entries = tuple(LibraryEntry(**row, **{name: z[f"{i}_{name}"] for name in
                                               ("mask", "att_high", "att_low", "transmission") if f"{i}_{name}" in z})
                        for i, row in enumerate(doc["entries"]))
    return ThreatLibrary(entries, doc["version"])
