"""A library threat projected into a decoded scan: the image of a known-answer item. Canaries (serving/canaries.py)
and the promotion gate's canary items (screening/gate.py) make them the same way: a canary-part article
(xray.tip.ARTICLE_PARTS: never used for training or certification) projected physically into the raw
high/low transmissions of a dual-energy scan, the grey level of a grey one, or through the inverted reference
palette of a pseudo-colour one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Projected:
    """A canary image before scoring: the image, the class projected and the library article."""

    image: Any
    class_name: str
    article: str
    top_left: tuple[int, int]


def project_canary(image: Any, class_name: str, rng: np.random.Generator) -> Projected:
    """A copy of the decoded scan `image` (xray.formats.ScanImage) with a canary-library threat of `class_name`
    projected in at a random place; dual-energy scans keep their raw planes, pseudo-colour ones are re-coloured."""
    from xray.tip import pick_article, render_threat

    sig = render_threat(rng, class_name, image_width=image.width, article=pick_article(rng, "canary"))
    return project_signature(image, sig, sig.article, rng)


def project_signature(image: Any, sig: Any, article: str, rng: np.random.Generator) -> Projected:
    """A copy of `image` with the attenuation signature `sig` (xray.tip.ThreatSignature) projected in at a random
    place: into the raw planes of a dual-energy scan, the grey level of a grey one, else through the inverted
    reference palette."""
    from xray.formats import ScanImage
    from xray.palettes import pseudo_colour
    from xray.tip import project_threat, project_threat_rgb, random_top_left

    top_left = random_top_left(rng, (image.height, image.width), sig)
    if image.dual_energy and image.low is not None:
        high, low = project_threat(image.high, image.low, sig.att_high, sig.att_low, top_left)
        out = ScanImage(None, high, low, image.source_format, image.bit_depth, True, pseudo_colour(high, low))
    elif image.rgb8 is None or _is_gray(image.rgb8):  # grayscale: the grey level is the high-energy transmission
        high, _ = project_threat(image.high, image.high, sig.att_high, sig.att_high, top_left)
        gray = np.rint(high * 255).astype(np.uint8)  # (H, W)
        out = ScanImage(None, None, None, image.source_format, 8, False, np.repeat(gray[:, :, None], 3, axis=2), gray)
    else:
        new = project_threat_rgb(image.rgb8, sig, top_left)  # (H, W, 3) uint8
        out = ScanImage(None, None, None, image.source_format, 8, False, new, new.max(axis=2))  # value = the reader's
    return Projected(out, sig.class_name, article, top_left)


def _is_gray(rgb8: np.ndarray) -> bool:
    return bool((rgb8[..., 0] == rgb8[..., 1]).all() and (rgb8[..., 1] == rgb8[..., 2]).all())
