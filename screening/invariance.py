"""Do a model's scores follow image size, hue calibration or compression? Measured on benign-only sets.

The same benign parcels are shown to the model as one calibrated scanner exports them (the reference palette,
the whole belt, native size, lossless: the base presentation) and as scanners that differ in one thing only
(export size, padding, cropping, a hue calibration off by some degrees, grey single energy, JPEG quality). A
screener that has learned threats, not the renderer, gives benign parcels the same scores whichever way they are
shown. Per presentation we report how the any-threat score distribution moved against the base: the two-sample
Kolmogorov-Smirnov statistic, the mean shift, and the share of these benign parcels sent to an officer at the
model's certified operating point. The figures are a report (bench/eval_synthetic.py --invariance); what counts
as invariant enough is the lead's gate, not a constant here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.stats import ks_2samp

from screening.calibration import verdicts
from screening.classifier import Classifier
from screening.preprocess import letterbox_uint8
from xray.palettes import PALETTES
from xray.styles import DisplayMapping, ScannerStyle, apply_style, rotate_palette_hue
from xray.synth import render_parcel

Presentation = Callable[[ScannerStyle], ScannerStyle]  # see PRESENTATIONS


@dataclass(frozen=True)
class ScoreShift:
    """How one presentation moved the any-threat scores of the same benign parcels against the base."""

    name: str
    n: int
    ks: float  # two-sample Kolmogorov-Smirnov statistic, in [0, 1]
    ks_p_value: float
    mean_shift: float  # mean(scores) - mean(base scores), in probability units
    routed_base: float  # share of the parcels not cleared at the operating point, base presentation
    routed: float  # ... in this presentation


def score_shift(name: str, base: np.ndarray, scores: np.ndarray, base_routed: np.ndarray,
                routed: np.ndarray) -> ScoreShift:
    """The shift statistics of paired score arrays (same parcels, same order); routed arrays are bools (not clear)."""
    base, scores = np.asarray(base, float), np.asarray(scores, float)
    if base.shape != scores.shape or base.ndim != 1 or len(base) == 0:
        raise ValueError(f"paired 1-D score arrays expected, got {base.shape} and {scores.shape}")
    ks = ks_2samp(scores, base)
    return ScoreShift(name, len(base), float(ks.statistic), float(ks.pvalue), float(scores.mean() - base.mean()),
                      float(np.mean(base_routed)), float(np.mean(routed)))


def _rotate_hue(degrees: float) -> Presentation:
    def present(style: ScannerStyle) -> ScannerStyle:
        palette = style.display.palette or PALETTES["reference"]
        return replace(style, display=replace(style.display, palette=rotate_palette_hue(palette, degrees)))

    return present


def _geometry(**changes: object) -> Presentation:
    def present(style: ScannerStyle) -> ScannerStyle:
        return replace(style, geometry=replace(style.geometry, **changes))  # type: ignore[arg-type]

    return present


def _jpeg(quality: int) -> Presentation:
    def present(style: ScannerStyle) -> ScannerStyle:
        return replace(style, jpeg_quality=quality)

    return present


def _grey(style: ScannerStyle) -> ScannerStyle:
    return replace(style, display=DisplayMapping("grey"))


# name -> change of the base presentation; grouped by what the issue asks about
PRESENTATIONS: dict[str, Presentation] = {
    "size x0.5": _geometry(long_side=256),
    "size x2": _geometry(long_side=1024),
    "padded to x2": _geometry(field="padded", margin=(0.5, 0.5, 0.5, 0.5)),
    "cropped to the parcel": _geometry(field="parcel", margin=(0.03, 0.03, 0.03, 0.03)),
    "hue -30 deg": _rotate_hue(-30.0),
    "hue +30 deg": _rotate_hue(30.0),
    "hue +60 deg": _rotate_hue(60.0),
    "grey": _grey,
    "JPEG q90": _jpeg(90),
    "JPEG q60": _jpeg(60),
    "JPEG q30": _jpeg(30),
}


def base_style() -> ScannerStyle:
    """The base presentation: the reference palette, whole belt, native size, lossless, nothing added."""
    return ScannerStyle("invariance", display=DisplayMapping("colour", PALETTES["reference"]))


def _scores(clf: Classifier, images: Sequence[np.ndarray], batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated any-threat scores and routed flags (verdict not `clear`) of uint8 images."""
    anys, routed = [], []
    for i in range(0, len(images), batch):
        canvases = np.stack([letterbox_uint8(im, clf.input_size)[0] for im in images[i:i + batch]])
        p_any, p_cls, _ = clf.scores(torch.from_numpy(canvases).float().div_(255.0))
        anys.append(p_any)
        routed.append(verdicts(p_any, p_cls, clf.classes, clf.point) != "clear")
    return np.concatenate(anys), np.concatenate(routed)


@dataclass(frozen=True)
class InvarianceReport:
    base_scores: np.ndarray  # (n,) calibrated any-threat scores of the base presentation
    scores: dict[str, np.ndarray]  # presentation -> (n,) scores of the same parcels
    shifts: dict[str, ScoreShift]


def benign_images(n: int, seed: int, classes: Sequence[str],
                  presentations: dict[str, Presentation]) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """n benign parcels of rng([seed, i]) (threat rate 0), as base images and in every presentation."""
    base = base_style()
    styles = {name: present(base) for name, present in presentations.items()}
    base_images: list[np.ndarray] = []
    shown: dict[str, list[np.ndarray]] = {name: [] for name in presentations}
    for i in range(n):
        parcel = render_parcel(np.random.default_rng([seed, i]), classes=classes, threat_rate=0.0)
        base_images.append(apply_style(parcel, base).image)
        for name, style in styles.items():
            shown[name].append(apply_style(parcel, style).image)
    return base_images, shown


def invariance_report(clf: Classifier, n: int, seed: int,
                      presentations: dict[str, Presentation] | None = None) -> InvarianceReport:
    """Score n benign parcels in the base presentation and in each of `presentations` (default PRESENTATIONS)."""
    base_images, shown = benign_images(n, seed, clf.classes, presentations or PRESENTATIONS)
    base, base_routed = _scores(clf, base_images)
    scores, shifts = {}, {}
    for name, images in shown.items():
        s, routed = _scores(clf, images)
        scores[name] = s
        shifts[name] = score_shift(name, base, s, base_routed, routed)
    return InvarianceReport(base, scores, shifts)


def format_report(report: InvarianceReport) -> str:
    """A markdown table: one row per presentation."""
    lines = ["| presentation of the same benign parcels | KS vs base | mean shift of any-threat score | "
             "sent to an officer (base -> this) |", "| --- | --- | --- | --- |"]
    for s in report.shifts.values():
        lines.append(f"| {s.name} | {s.ks:.3f} | {s.mean_shift:+.3f} | {s.routed_base:.1%} -> {s.routed:.1%} |")
    return "\n".join(lines)
