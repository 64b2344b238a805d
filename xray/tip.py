"""Threat image projection (TIP): put a threat signature into an existing scan, physically.

Transmission multiplies through stacked objects, so log-attenuations add: T_out = T_benign * exp(-a_threat)
at each energy, then clipped at the detector floor (a threat behind saturated steel stays invisible, as it
would on a real scanner). Signatures come from the same threat generators as the renderer, rendered alone
without scanner noise, so they can be projected into raw dual-energy scans of any source, used as a torch-free
training augmentation, and injected as known-answer canaries into live mail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xray.materials import MAX_ATTENUATION, TRANSMISSION_FLOOR
from xray.palettes import att_bin_centres, palette_lut, pseudo_colour, ratio_bin_centres
from xray.solids import rot_z
from xray.stamp import random_pose, stamp_thing
from xray.synth import BELT_WIDTH_MM, DEFAULT_WIDTH
from xray.threats import THREAT_CLASSES, check_classes, pick_variant


@dataclass(frozen=True)
class ThreatSignature:
    """A stand-alone threat: log-attenuation maps (float32, >= 0) of its box, its mask and class."""

    att_high: np.ndarray  # (h, w)
    att_low: np.ndarray  # (h, w)
    mask: np.ndarray  # (h, w) bool: pixels that belong to the threat (for boxes and segmentation)
    class_name: str
    name: str  # `class:variant`
    article: str = ""  # `class:variant:k`: one physical article (its shape); poses of it share the id

    @property
    def shape(self) -> tuple[int, int]:
        return self.att_high.shape  # type: ignore[return-value]

    @property
    def variant(self) -> str:
        return self.name.split(":", 1)[1]


def article_rng(class_name: str, variant: str, article: int) -> np.random.Generator:
    """The generator that fixes article `article` of a variant's shape (sizes, make, contents)."""
    key = [int(b) for b in f"{class_name}:{variant}".encode()]
    return np.random.default_rng([*key, int(article)])


ARTICLE_PARTS = ("training", "certification", "canary")  # disjoint parts of the threat library, by article id


def article_part(article: int) -> str:
    """Which part of the library article `article` belongs to: 70% training, 20% certification, 10% canary (by
    its last digit), so a training library, a certification library and canaries never share an object."""
    digit = int(article) % 10
    return "training" if digit < 7 else "certification" if digit < 9 else "canary"


def pick_article(rng: np.random.Generator, part: str) -> int:
    """A random article id of library part `part` (ARTICLE_PARTS)."""
    digits = {"training": range(0, 7), "certification": range(7, 9), "canary": range(9, 10)}
    if part not in digits:
        raise ValueError(f"unknown library part {part!r}; known: {', '.join(ARTICLE_PARTS)}")
    return int(rng.integers(0, 1 << 26)) * 10 + int(rng.choice(digits[part]))


def render_threat(rng: np.random.Generator, class_name: str, *, image_width: int = DEFAULT_WIDTH,
                  angle: float | None = None, variant_weights: dict[str, float] | None = None,
                  split: str = "train", article: int | None = None, variant: str | None = None,
                  pixel_mm: float | None = None) -> ThreatSignature:
    """A threat of `class_name` at the pixel scale of an image `image_width` pixels across the belt (or
    `pixel_mm` mm per pixel). `split` restricts the variants (train, the default, never draws a held-out
    family; heldout / all, see xray.threats); `variant` fixes one. `article` fixes the object's shape (article_rng): the same article in other poses
    keeps its id, so a library can be split disjointly by article (canaries, training, certification).
    `angle` None draws a random 3D pose (flat, tilted, on an edge or end); a number lays it flat at that angle.
    """
    check_classes([class_name])
    name = variant or pick_variant(rng, class_name, variant_weights, split)
    if name not in THREAT_CLASSES[class_name].variants:
        raise ValueError(f"unknown variant {name!r} of {class_name}; known: {', '.join(THREAT_CLASSES[class_name].variants)}")
    make = THREAT_CLASSES[class_name].variants[name][1]
    k = int(rng.integers(0, 1 << 30)) if article is None else int(article)
    thing = make(article_rng(class_name, name, k))
    ppm = 1.0 / pixel_mm if pixel_mm else image_width / BELT_WIDTH_MM
    pose = random_pose(rng, thing.poses) if angle is None else rot_z(angle)
    side = int(2 * float(np.linalg.norm(thing.half)) * ppm) + 8
    acc = np.zeros((2, side, side), dtype=np.float32)
    hit = stamp_thing(acc, thing, pose, side / 2, side / 2, ppm, rng)
    box, mask = hit if hit is not None else ((0, 0, 0, 0), None)
    if mask is None:  # cannot happen for a stamp centred on its own canvas
        raise RuntimeError(f"threat {thing.name} rendered empty")
    x0, y0, x1, y1 = box
    return ThreatSignature(acc[0, y0:y1, x0:x1].copy(), acc[1, y0:y1, x0:x1].copy(), mask, class_name, thing.name,
                           f"{class_name}:{name}:{k}")


def _region(shape: tuple[int, int], sig_shape: tuple[int, int],
            top_left: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Overlapping slices (image, signature) of a signature placed at top_left=(y, x); may be partial."""
    (H, W), (h, w), (y, x) = shape, sig_shape, top_left
    iy0, ix0, iy1, ix1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    if iy1 <= iy0 or ix1 <= ix0:
        raise ValueError(f"threat of size {h}x{w} at {top_left} lies outside the {H}x{W} image")
    return (slice(iy0, iy1), slice(ix0, ix1)), (slice(iy0 - y, iy1 - y), slice(ix0 - x, ix1 - x))


def project_threat(benign_high: np.ndarray, benign_low: np.ndarray, threat_att_high: np.ndarray,
                   threat_att_low: np.ndarray, top_left: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) with the threat's attenuation added at top_left=(y, x); inputs are not modified.

    Multiplicative in transmission, additive in log-attenuation, clipped at the detector floor. The part of
    the threat outside the image is cut off.
    """
    img, sig = _region(benign_high.shape, threat_att_high.shape, top_left)
    out = []
    for benign, att in ((benign_high, threat_att_high), (benign_low, threat_att_low)):
        t = np.array(benign, dtype=np.float32, copy=True)
        t[img] = np.clip(t[img] * np.exp(-att[sig]), TRANSMISSION_FLOOR, 1.0)
        out.append(t)
    return out[0], out[1]


def random_top_left(rng: np.random.Generator, image_shape: tuple[int, int], sig: ThreatSignature,
                    margin: float = 0.1) -> tuple[int, int]:
    """A placement keeping the whole signature inside the image when it fits (else centred)."""
    (H, W), (h, w) = image_shape, sig.shape
    my, mx = int(H * margin), int(W * margin)
    y = int(rng.integers(my, max(H - h - my, my) + 1)) if H - h - 2 * my > 0 else (H - h) // 2
    x = int(rng.integers(mx, max(W - w - mx, mx) + 1)) if W - w - 2 * mx > 0 else (W - w) // 2
    return y, x


def box_of(sig: ThreatSignature, top_left: tuple[int, int], image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the projected threat's mask, clipped to the image."""
    img, sig_sl = _region(image_shape, sig.shape, top_left)
    m = sig.mask[sig_sl]
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return (img[1].start, img[0].start, img[1].start, img[0].start)
    return (img[1].start + int(cols[0]), img[0].start + int(rows[0]), img[1].start + int(cols[-1]) + 1,
            img[0].start + int(rows[-1]) + 1)


_INVERSE_CACHE: dict[str, tuple[object, np.ndarray]] = {}


def _inverse_palette(palette: str) -> tuple[object, np.ndarray]:
    """A KD-tree over the palette's colours and the (a_high, ratio) each colour stands for."""
    if palette not in _INVERSE_CACHE:
        from scipy.spatial import cKDTree

        lut = palette_lut(palette).reshape(-1, 3).astype(np.float32)
        ratio, att = np.meshgrid(ratio_bin_centres(), att_bin_centres(), indexing="ij")
        physics = np.stack([att.ravel(), ratio.ravel()], axis=1).astype(np.float32)
        _INVERSE_CACHE[palette] = (cKDTree(lut), physics)
    return _INVERSE_CACHE[palette]


def estimate_dual_energy(rgb8: np.ndarray, palette: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    """Approximate (high, low) transmission behind a pseudo-colour image by inverting `palette`.

    Lossy: colours quantised by the palette, JPEG artefacts and an unknown vendor palette all add error; air
    (white) comes back as transmission 1 and black as the detector floor.
    """
    tree, physics = _inverse_palette(palette)
    flat = rgb8.reshape(-1, 3).astype(np.float32)
    _, idx = tree.query(flat)  # type: ignore[attr-defined]
    a_h = physics[idx, 0].reshape(rgb8.shape[:2])
    ratio = physics[idx, 1].reshape(rgb8.shape[:2])
    high = np.exp(-np.minimum(a_h, MAX_ATTENUATION)).astype(np.float32)
    low = np.exp(-np.minimum(a_h * ratio, MAX_ATTENUATION)).astype(np.float32)
    return np.maximum(high, TRANSMISSION_FLOOR), np.maximum(low, TRANSMISSION_FLOOR)


def project_threat_rgb(rgb8: np.ndarray, sig: ThreatSignature, top_left: tuple[int, int],
                       palette: str = "reference") -> np.ndarray:
    """TIP into a pseudo-colour-only image (uint8 H x W x 3): invert the palette inside the threat's box, add
    the threat's attenuation, re-colour with the same palette. Pixels outside the box are left untouched."""
    img, sig_sl = _region(rgb8.shape[:2], sig.shape, top_left)
    patch = rgb8[img]
    high, low = estimate_dual_energy(patch, palette)
    new_h, new_l = project_threat(high, low, sig.att_high[sig_sl], sig.att_low[sig_sl], (0, 0))
    out = rgb8.copy()
    touched = sig.mask[sig_sl] | (sig.att_high[sig_sl] > 1e-3)
    recoloured = pseudo_colour(new_h, new_l, palette)
    out[img][touched] = recoloured[touched]
    return out
