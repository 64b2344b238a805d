"""Adapt a model to one scanner from its own unlabelled images: library threats projected into its benign mail.

Almost every parcel a scanner sees is benign, so its stream is a free supply of real backgrounds: its palette,
tone curve, blur, noise, pitch and clutter. `adapt` drops the threat-looking tail of those images (the parent
model's highest scores), keeps a held-out part for certification, estimates the scanner's look from the rest
(xray.projection), projects training-part library threats into them (a benign copy and a projected copy of each
background, so the background never tells the label), fine-tunes the parent on that mixed with the original
synthetic data (so other scanners do not regress) the fast way of screening.adapt_tail (first stages frozen with
their BatchNorm statistics re-estimated on this data, their features cached, only the last stages and the heads
trained), and recalibrates and re-certifies on the held-out part:
benign = the scanner's own held-out images, threats = certification-part library articles (never trained on)
projected into them. The certificate says that its miss-rate guarantee rests on those projections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from screening import registry
from screening.calibration import n_threat_needed
from screening.classifier import Classifier
from screening.data import LabelledSet, LabelRow, _manifest_hash, split_indices, targets
from screening.preprocess import Geometry, letterbox_uint8
from screening.train import TrainConfig, calibrated_checkpoint, calibrated_metrics
from xray.projection import ScannerLook, estimate_look, project_colour, project_transmission
from xray.threat_library import LibraryEntry, ThreatLibrary, build_library
from xscreen.errors import BadScanError, ConfigError, ModelError
from xscreen.records import ModelRecord
from xscreen.settings import AdaptSettings, Settings

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class AdaptConfig:
    """How to adapt (defaults: the `adapt` settings)."""

    epochs: int = 2
    drop_quantile: float = 0.05  # share of images with the parent's highest threat scores left out (likely threats)
    holdout_fraction: float = 0.3  # share of the kept images held out to recalibrate and certify
    synthetic_images: int = 600  # original synthetic renders mixed in, so other scanners do not regress
    library_articles: int = 8  # articles per class and library part
    library_poses: int = 3  # poses per article
    library_split: str = "all"  # renderer content split the library's threat variants come from
    min_images: int = 60
    time_budget_s: float | None = None  # fine-tuning epochs are cut to fit (None: no limit)
    seed: int = 1234
    progress: bool = True
    max_side_factor: float = 2.0  # images larger than this x the canvas are reduced first (the letterbox would)
    frozen_stages: int = 3  # stages after the stem kept frozen and cached (screening.adapt_tail); the rest trains
    views: int = 2  # cached views per training image: as it is plus augmented ones
    adabn: bool = True  # re-estimate the frozen stages' BatchNorm statistics on the adaptation data
    decoy_share: float = 0.0  # share of the benign training copies with a benign object projected in (a decoy)
    batch_size: int = 32  # fine-tuning batch: a step of the tail on cached features costs little more at 32 than at 8
    distill_weight: float = 1.0  # pull the synthetic renders' outputs towards the parent's (adapt_tail.distillation_loss)

    @classmethod
    def from_settings(cls, a: AdaptSettings, seed: int, **overrides: Any) -> AdaptConfig:
        """The `adapt` settings as a config: every field the two share by name (`overrides`: any field, for a CLI
        option or a benchmark's variant)."""
        shared = {f.name for f in fields(cls)} & set(type(a).model_fields)
        return cls(**{**{name: getattr(a, name) for name in shared}, "seed": seed, **overrides})


@dataclass
class AdaptResult:
    checkpoint: registry.Checkpoint
    record: ModelRecord | None
    summary: dict[str, Any] = field(default_factory=dict)


def min_images_needed(cfg: AdaptConfig, alpha: float, delta: float) -> int:
    """Images a scanner must supply: enough after dropping the tail for the look, training and a held-out part
    with at least n_threat_needed(alpha, delta) / 3 backgrounds (each takes up to three certification threats)."""
    held = int(np.ceil(n_threat_needed(alpha, delta) / 3))
    return max(cfg.min_images, int(np.ceil(held / cfg.holdout_fraction / (1 - cfg.drop_quantile))))


def read_folder(folder: Path, *, max_bytes: int, max_pixels: int, max_side: int | None = None,
                refused: list[BadScanError] | None = None) -> tuple[list[np.ndarray], list[str]]:
    """The scans of a folder as uint8 colour (H, W, 3) or grey (H, W) pixels, and their paths under it. The files
    are those `xscreen predict` scores for a folder (xray.formats.scan_files: scan suffixes, at any depth, hidden
    ones skipped); no sidecars are needed or read. A file that is not a readable scan is skipped: appended to
    `refused` when it is given, else logged as a warning. `max_side`: each image is reduced as it is read to at
    most this longer side (adapt_model would reduce it anyway), so a folder of large scans is never held at full
    size."""
    from xray.formats import scan_files

    if not folder.is_dir():
        raise ConfigError(f"--images: {folder} is not a folder")
    paths = scan_files([folder])
    read = _read_named(paths, max_bytes, max_pixels, max_side, refused)
    return [img for _, img in read], [str(p.relative_to(folder)) for p, _ in read]


def read_paths(paths: Sequence[Path], *, max_bytes: int, max_pixels: int, max_side: int | None = None,
               refused: list[BadScanError] | None = None) -> list[np.ndarray]:
    """The pixels of the given scan files; unreadable ones skipped as in read_folder; `max_side` as read_folder."""
    return [img for _, img in _read_named(paths, max_bytes, max_pixels, max_side, refused)]


def _read_named(paths: Sequence[Path], max_bytes: int, max_pixels: int, max_side: int | None,
                refused: list[BadScanError] | None) -> list[tuple[Path, np.ndarray]]:
    from xray.formats import read_scans

    read: list[tuple[Path, np.ndarray]] = []
    for path, scan in read_scans(paths, max_bytes=max_bytes, max_pixels=max_pixels):
        if isinstance(scan, BadScanError):
            if refused is not None:  # the caller names it (the CLI on stderr)
                refused.append(scan)
            else:
                log.warning("skipping %s: %s", path, scan.reason)
            continue
        pixels = _pixels(scan)
        read.append((path, pixels if max_side is None else _reduce(pixels, max_side)))
    return read


def reading_side(input_size: int, cfg: AdaptConfig | None = None) -> int:
    """The longest side adapt_model works at for a model of `input_size` (what read_folder may reduce to)."""
    return round((cfg or AdaptConfig()).max_side_factor * input_size)


def _pixels(scan: Any) -> np.ndarray:
    rgb = np.clip(np.round(scan.rgb * 255.0), 0, 255).astype(np.uint8)
    grey = bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))
    return rgb[..., 0].copy() if grey else rgb


def _reduce(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its longer side at most `max_side` (box filter), as the letterbox would see it anyway."""
    H, W = image.shape[:2]
    f = max_side / max(H, W)
    if f >= 1.0:
        return image
    return np.asarray(Image.fromarray(image).resize((max(2, round(W * f)), max(2, round(H * f))), Image.Resampling.BOX))


# ------------------------------------------------------------------------------------------------ data sets


def scored_any(clf: Classifier, images: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
    """Calibrated any-threat probability of each image under `clf`."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            canv = torch.stack([torch.from_numpy(letterbox_uint8(im, clf.input_size)[0].copy())
                                for im in images[i:i + batch]]).float().div_(255.0)
            out.append(clf.scores(canv)[0])
    return np.concatenate(out) if out else np.zeros(0)


def build_set(images: Sequence[np.ndarray], labels: Sequence[tuple[str, ...]], boxes: Sequence[list[tuple[str, Box]]],
              classes: Sequence[str], size: int, prefix: str) -> LabelledSet:
    """A LabelledSet of in-memory images (virtual names `prefix_00000`...), boxes as image fractions."""
    canvases = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    geos: list[Geometry] = []
    rows, box_map = [], {}
    for i, (im, lab, bx) in enumerate(zip(images, labels, boxes, strict=True)):
        c, g = letterbox_uint8(im, size)
        canvases[i] = torch.from_numpy(np.ascontiguousarray(c))
        geos.append(g)
        name = f"{prefix}_{i:05d}"
        rows.append(LabelRow(Path(name), tuple(lab)))
        if bx:
            box_map[name] = list(bx)
    any_y, cls_y = targets(rows, classes)
    files = [r.path for r in rows]
    return LabelledSet(list(classes), files, canvases, None, geos, any_y, cls_y, _manifest_hash(files, cls_y), box_map)


def concat_sets(sets: Sequence[LabelledSet]) -> LabelledSet:
    """One LabelledSet of several (no dual-energy planes: adaptation works on displayed pixels)."""
    files = [f for s in sets for f in s.files]
    cls_y = np.concatenate([s.class_labels for s in sets])
    return LabelledSet(list(sets[0].classes), files, torch.cat([s.canvases for s in sets]), None,
                       [g for s in sets for g in s.geometries], np.concatenate([s.any_labels for s in sets]), cls_y,
                       _manifest_hash(files, cls_y), {k: v for s in sets for k, v in s.boxes.items()})


def projected(backgrounds: Sequence[np.ndarray], entries: Sequence[LibraryEntry], look: ScannerLook, n: int,
              rng: np.random.Generator) -> tuple[list[np.ndarray], list[tuple[str, ...]], list[list[tuple[str, Box]]]]:
    """`n` images: library entries (cycled, shuffled) projected into the backgrounds (cycled) through `look`
    (attenuation entries), or pasted as they are (a seizure's transmission map: the backgrounds' own scanner's)."""
    if not entries:
        raise ConfigError("the threat library part is empty: nothing to project")
    order = rng.permutation(len(entries))
    images: list[np.ndarray] = []
    labels: list[tuple[str, ...]] = []
    boxes: list[list[tuple[str, Box]]] = []
    for i in range(n):
        bg, e = backgrounds[i % len(backgrounds)], entries[order[i % len(entries)]]
        # a seizure's transmission map is this scanner's own look already: pasted as it is, never re-coloured
        img, (x0, y0, x1, y1), _ = (project_transmission(bg, e, rng) if e.kind == "transmission"
                                    else project_colour(bg, e, look, rng))
        H, W = img.shape[:2]
        images.append(img)
        labels.append((e.class_name,))
        boxes.append([(e.class_name, (x0 / W, y0 / H, x1 / W, y1 / H))])
    return images, labels, boxes


def with_decoys(backgrounds: Sequence[np.ndarray], look: ScannerLook, share: float, seed: int,
                rng: np.random.Generator) -> list[np.ndarray]:
    """The backgrounds, a random `share` of them with a rendered benign object (xray.threat_library.render_decoys)
    projected in through the same look as the threats: still benign, so a projection's own artefacts (its edges,
    its tone, its blur) tell the model nothing; only what is projected does."""
    out = list(backgrounds)
    n = int(round(share * len(out)))
    if n == 0:
        return out
    from xray.threat_library import render_decoys

    picks = rng.choice(len(out), n, replace=False)
    images, _, _ = projected([out[i] for i in picks], render_decoys(n, seed=seed), look, n, rng)
    for i, img in zip(picks, images, strict=True):
        out[i] = img
    return out


def reduction(originals: Sequence[np.ndarray], reduced: Sequence[np.ndarray]) -> float:
    """The median factor by which the images were reduced (1.0: none): a seizure cut at the scanner's full size is
    reduced by it, so it keeps its size relative to the backgrounds it is pasted into."""
    return float(np.median([r.shape[1] / o.shape[1] for o, r in zip(originals, reduced, strict=True)]))


def with_seizures(library: ThreatLibrary, seizures: Sequence[LibraryEntry], factor: float,
                  fits: tuple[int, int] | None = None) -> ThreatLibrary:
    """The library plus the seizure signatures (transmission maps reduced by `factor`), each in its own part;
    a transmission map larger than `fits` (the smallest background's height, width) is left out with a warning:
    it is pasted as it is and could not lie inside. So is one reduced under MIN_SEIZURE_SIDE pixels a side: pasted,
    it would label a threat that is not visibly there."""
    from xray.seizures import rescaled
    from xscreen.records import MIN_SEIZURE_SIDE

    entries = []
    for e in (rescaled(s, factor) for s in seizures):
        if e.kind == "transmission" and min(e.shape) < MIN_SEIZURE_SIDE:
            log.warning("seizure %s is %dx%d once reduced by %.3g: too small to paste, left out", e.article,
                        *e.shape, factor)
            continue
        entries.append(e)
    if fits is not None:
        small = [e for e in entries if e.kind != "transmission" or (e.shape[0] <= fits[0] and e.shape[1] <= fits[1])]
        for e in entries:
            if not any(e is k for k in small):
                log.warning("seizure %s (%dx%d) is larger than the smallest image: left out", e.article, *e.shape)
        entries = small
    return replace(library, entries=(*library.entries, *entries)) if entries else library


# ------------------------------------------------------------------------------------------------ adaptation


class _Stages:
    """The stage progress bar, and the wall seconds of each stage (kept in the summary: where the budget went)."""

    def __init__(self, total: int, progress: bool) -> None:
        self.bar = tqdm(total=total, desc="adapt", unit="stage", disable=not progress)
        self.seconds: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def next(self, what: str) -> None:
        self._stop()
        self.bar.set_description(what)
        self.bar.update(1)
        self._current = (what, time.perf_counter())

    def close(self) -> None:
        self._stop()
        self.bar.close()

    def _stop(self) -> None:
        if self._current is not None:
            self.seconds[self._current[0]] = round(time.perf_counter() - self._current[1], 1)


def adapt_model(settings: Settings, images: Sequence[np.ndarray], out: str, *, from_model: str = "champion",
                scanner: str | None = None, cfg: AdaptConfig | None = None, library: ThreatLibrary | None = None,
                seizures: Sequence[LibraryEntry] = (), register: bool = True, source: str = "images",
                actor: str = "system") -> AdaptResult:
    """Adapt `from_model` to the scanner that made `images` (uint8 colour or grey scans, mostly benign) and
    register the result as candidate `out` (see the module docstring), in the audit log under `actor` (a process
    name such as `cli:<user>`: the store owner refuses a bare name, which would claim to be a person).
    `seizures`: signatures cut from this scanner's real seizures (xray.seizures.seizure_entries, each already in
    its part), added to the rendered library; transmission maps are reduced with the images."""
    cfg = cfg or AdaptConfig()
    t_start = time.perf_counter()
    registry.check_version_name(out)
    s = settings.screening
    needed = min_images_needed(cfg, s.alpha, s.delta)
    if len(images) < needed:
        raise ModelError(f"adapting needs at least {needed} images of the scanner (got {len(images)}): enough for "
                         f"the look, fine-tuning and {int(np.ceil(n_threat_needed(s.alpha, s.delta) / 3))} held-out "
                         f"backgrounds for the certificate (alpha {s.alpha}, delta {s.delta})")
    _, parent = registry.load_registered(settings, from_model)
    clf = Classifier(registry.build_model(parent), parent)
    size = parent.config.input_size
    classes = list(parent.config.classes)
    rng = np.random.default_rng(cfg.seed)
    bar = _Stages(9, cfg.progress)
    imgs = [_reduce(im, reading_side(size, cfg)) for im in images]
    bar.next("scoring with the parent")
    t_score = time.perf_counter()
    p_before = scored_any(clf, imgs)
    per_image_s = (time.perf_counter() - t_score) / len(imgs)  # one letterbox + forward: sizes what certifying costs
    keep = np.flatnonzero(p_before <= np.quantile(p_before, 1.0 - cfg.drop_quantile))
    order = rng.permutation(keep)
    n_hold = int(round(cfg.holdout_fraction * len(order)))
    held, train_bg = [imgs[i] for i in order[:n_hold]], [imgs[i] for i in order[n_hold:]]
    bar.next("estimating the scanner's look")
    look = estimate_look(train_bg, seed=cfg.seed)
    bar.next("rendering the threat library")
    library = library or build_library(classes, articles=cfg.library_articles, poses=cfg.library_poses,
                                       seed=cfg.seed, split=cfg.library_split, parts=("training", "certification"))
    library = with_seizures(library, seizures, reduction(images, imgs),
                            (min(im.shape[0] for im in imgs), min(im.shape[1] for im in imgs)))
    bar.next("projecting threats")
    t_imgs, t_labels, t_boxes = projected(train_bg, library.part("training", classes), look, len(train_bg), rng)
    negatives = with_decoys(train_bg, look, cfg.decoy_share, cfg.seed, rng)
    target = build_set([*negatives, *t_imgs], [*[()] * len(train_bg), *t_labels], [*[[]] * len(train_bg), *t_boxes],
                       classes, size, "target")
    n_cert = max(n_threat_needed(s.alpha, s.delta), len(held))
    c_imgs, c_labels, c_boxes = projected(held, library.part("certification", classes), look, n_cert, rng)
    cert = build_set([*held, *c_imgs], [*[()] * len(held), *c_labels], [*[[]] * len(held), *c_boxes], classes, size,
                     "certify")
    bar.next("rendering synthetic data")
    parts = [target]
    if cfg.synthetic_images > 0:
        from screening.synthetic import render_set

        synth, _ = render_set(cfg.synthetic_images, cfg.seed, classes, size, style=settings.model.train_style,
                              for_training=True, progress=False)
        parts.append(synth)
    data = concat_sets(parts)
    anchored = np.arange(len(data)) >= len(target)  # the synthetic renders: the styles the parent already knows
    deadline = None
    if cfg.time_budget_s is not None:  # leave time to certify: calibration and the before/after figures
        deadline = t_start + cfg.time_budget_s - per_image_s * (3 * len(cert) + 0.15 * len(data))
    ckpt, history = _fine_tune(settings, parent, data, anchored, cert, out, cfg, deadline, bar)
    summary = _summary(parent, ckpt, cert, look, len(images), len(keep), len(train_bg), len(held), n_cert,
                       library, scanner, source, time.perf_counter() - t_start)
    summary["config"] = {k: v for k, v in asdict(cfg).items() if k != "progress"}  # how it was adapted: lineage
    bar.close()
    summary["stage_seconds"] = bar.seconds
    ckpt = replace(ckpt, certificate={**ckpt.certificate, **_basis(summary)},
                   metrics={**ckpt.metrics, "adaptation": summary, "history": history})
    record = registry.register(settings, ckpt, state="candidate", actor=actor) if register else None
    return AdaptResult(ckpt, record, summary)


def _fine_tune(settings: Settings, parent: registry.Checkpoint, data: LabelledSet, anchored: np.ndarray,
               cert: LabelledSet, out: str, cfg: AdaptConfig, deadline: float | None,
               bar: _Stages) -> tuple[registry.Checkpoint, list[dict[str, float]]]:
    """Fine-tune the parent's tail on `data` (screening.adapt_tail; early stopping on a validation split of it,
    epochs planned to end by `deadline`), calibrate on `cert`. `anchored` marks the images of `data` (the
    synthetic renders) whose outputs are kept near the parent's when cfg.distill_weight > 0."""
    from screening.adapt_tail import TailConfig, adabn, cache_features, fit_tail, freeze_trunk

    tcfg = TrainConfig(epochs=cfg.epochs, seed=cfg.seed, box_weight=settings.model.box_weight, progress=cfg.progress,
                       batch_size=cfg.batch_size)
    # the `train --from` rate (lr / 3 at batch 8), scaled by the square root of the batch (Adam)
    lr = TrainConfig.lr / 3 * (cfg.batch_size / TrainConfig.batch_size) ** 0.5
    tail = TailConfig(frozen_stages=cfg.frozen_stages, views=cfg.views, adabn=cfg.adabn,
                      distill_weight=cfg.distill_weight)
    train_idx, val_idx = split_indices(data.any_labels, [tcfg.val_fraction], cfg.seed)
    train, val = data.subset(train_idx), data.subset(val_idx)
    net = registry.build_model(parent)
    params = freeze_trunk(net, tail.frozen_stages)
    bar.next("re-estimating normalisation (AdaBN)")
    if tail.adabn:  # a random share is enough for means and variances, and the stage then costs little
        share = np.random.default_rng(cfg.seed).permutation(len(train))[:tail.adabn_images]
        adabn(net, train.subset(np.sort(share)), tail.frozen_stages, tail.batch)
    bar.next("caching the frozen stages' features")
    boxes = None
    if tcfg.box_weight > 0 and train.boxes:
        from screening.boxes import box_targets

        boxes = box_targets(train.files, train.geometries, train.class_labels, train.boxes, train.classes,
                            net.config.feature_size)
    # The parent as it was (its own BatchNorm statistics), on the anchors' views: what distillation keeps.
    teacher = registry.build_model(parent) if tail.distill_weight > 0 else None
    cache = cache_features(net, train, tail, tcfg, boxes, cfg.seed, teacher=teacher, anchored=anchored[train_idx])
    val_cache = cache_features(net, val, replace(tail, views=1), tcfg, None, cfg.seed)
    bar.next("fine-tuning the last stages")
    history = fit_tail(net, params, train, cache, val, val_cache, tcfg, tail.frozen_stages, lr=lr, deadline=deadline,
                       distill_weight=tail.distill_weight)
    net.requires_grad_(True)
    bar.next("certifying")
    ckpt = calibrated_checkpoint(settings, net, out, parent.config, train=train, val=val, cal=cert, history=history,
                                 parent=parent.version)
    return ckpt, history


def _summary(parent: registry.Checkpoint, ckpt: registry.Checkpoint, cert: LabelledSet, look: ScannerLook,
             n_images: int, n_kept: int, n_train: int, n_held: int, n_cert: int, library: ThreatLibrary,
             scanner: str | None, source: str, seconds: float) -> dict[str, Any]:
    """Before/after figures on the certification set and how it was made (stored with the model)."""
    def op(c: registry.Checkpoint) -> dict[str, Any]:
        m = calibrated_metrics(registry.build_model(c), cert, c.temperatures, c.thresholds)
        return {"pd_at_far": m.get("any_threat", {}).get("pd_at_far", {}),
                "auc": m.get("any_threat", {}).get("auc"), "operating_point": m.get("operating_point", {}),
                "classes": {k: v.get("ap") for k, v in m.get("classes", {}).items()}}

    return {"scanner": scanner, "source": source, "images": n_images, "kept": n_kept, "adaptation_backgrounds": n_train,
            "held_out_backgrounds": n_held, "certification_projections": n_cert, "library_version": library.version,
            "library_articles": {p: len({e.article for e in library.part(p)}) for p in ("training", "certification")},
            "seizure_signatures": {p: sum(e.article.startswith("seizure:") for e in library.part(p))
                                   for p in ("training", "certification")},
            "look": {"mode": look.mode, "blur_sigma": look.blur_sigma, "noise": look.noise, "scale": list(look.scale)},
            "before": op(parent), "after": op(ckpt), "seconds": seconds}


def _basis(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "adapted_for_scanner": summary["scanner"],
        "guarantee_rests_on": (
            f"benign: {summary['held_out_backgrounds']} held-out images of this scanner (never trained on); threats: "
            f"{summary['certification_projections']} projections of {summary['library_articles']['certification']} "
            f"certification-part library articles ({summary['seizure_signatures']['certification']} of them cut "
            f"from real seizures; library v{summary['library_version']}, never trained on) into "
            "those images through the scanner's estimated look. Not on real threats of this scanner: projection "
            "cannot show real concealment, real clutter over a threat or the scanner's own edge processing (docs/MODEL.md); "
            "random audits of cleared items check real mail."),
    }


