"""`xscreen adapt` end to end with zero labels: a tiny champion trained on our scanners meets a held-out scanner
style; adapting on a plain folder of that scanner's benign scans is measured before and after on independent
renders of that scanner, beside the in-domain figure.

How evaluation avoids shared capture artefacts: the adaptation folder, the evaluation benign scans and the
evaluation threat scans are three separate renders of that scanner (different parcels, different detector noise
draws, seeds 41 / 42 / 43); the threats of the evaluation are the renderer's own threats in that style (not
projections, not library articles), so nothing of the adaptation data, and nothing that marks an image as "a
projection", reaches the evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli import app
from screening import registry
from screening.adapt import AdaptConfig, adapt_model, min_images_needed, read_folder, scored_any
from screening.classifier import Classifier
from screening.evaluate import pd_at_far
from screening.synthetic import render_set
from screening.train import TrainConfig, default_config, train_on
from tests.conftest import free_port
from xray.styles import render_styled, sample_style, style_rng
from xscreen.errors import BadScanError, ModelError
from xscreen.settings import Settings

CLASSES = ["firearm", "knife"]
TINY = {"input_size": 64, "width": 8, "embedding_dim": 8, "seed": 5, "bundled": None, "classes": CLASSES,
        "train_style": "reference"}
SCANNER = sample_style(style_rng(31, 0), "heldout")  # one draw of the held-out family: "a scanner we never saw"


def _scans(seed: int, n: int, threat_rate: float) -> list[np.ndarray]:
    return [render_styled(np.random.default_rng([seed, i]), SCANNER, classes=CLASSES, threat_rate=threat_rate,
                          max_side=128)[1].image for i in range(n)]


def _cfg(**kw: object) -> AdaptConfig:
    # a 64-pixel network has little to freeze (its last stage is a 4x4 map): only the stem is frozen here, the
    # small set is fine-tuned in batches of 8, and half the benign copies carry a decoy, as measured in
    # docs/MODEL.md (the bundled model's defaults are measured by bench/bench_adapt.py)
    return AdaptConfig(**{"epochs": 5, "synthetic_images": 120, "library_articles": 4, "library_poses": 3, "seed": 5,
                          "progress": False, "frozen_stages": 0, "batch_size": 8, "decoy_share": 0.5,
                          **kw})  # type: ignore[arg-type]


def test_too_few_images_is_a_clear_error_naming_how_many_are_needed(settings: Settings) -> None:
    needed = min_images_needed(_cfg(), settings.screening.alpha, settings.screening.delta)
    with pytest.raises(ModelError, match=f"at least {needed} images of the scanner \\(got 12\\)"):
        adapt_model(settings, _scans(1, 12, 0.0), "x", cfg=_cfg())


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny champion trained on the reference scanners (two classes, 64-pixel canvas), and its config file."""
    root = tmp_path_factory.mktemp("adapt")
    config = root / "xscreen.toml"
    config.write_text(f'home = "{root / "home"}"\n[network]\nstore_port = {free_port()}\n'
                      f'[model]\ninput_size = 64\nwidth = 8\nembedding_dim = 8\nseed = 5\nbundled = ""\n'
                      f'classes = {CLASSES!r}\ntrain_style = "reference"\n'.replace("'", '"'))
    from xscreen.settings import load_settings

    settings = load_settings(environ={}, config_file=config)
    data, _ = render_set(240, 21, CLASSES, 64, style="reference", progress=False)
    train_on(settings, data, "champ", default_config(settings), cfg=TrainConfig(epochs=8, seed=5, progress=False),
             promote=True)
    return config


def _measure(settings: Settings, name: str, benign: list[np.ndarray], threats: list[np.ndarray],
             in_domain: object) -> dict[str, float]:
    _, ckpt = registry.load_registered(settings, name)
    clf = Classifier(registry.build_model(ckpt), ckpt)
    pb, pt = scored_any(clf, benign), scored_any(clf, threats)
    scores, labels = np.r_[pb, pt], np.r_[np.zeros(len(pb)), np.ones(len(pt))]
    clear = ckpt.thresholds["any_threat"]["clear"]  # at or above: routed to an officer (uncertain or inspect)
    with torch.inference_mode():
        p_in = clf.scores(in_domain.float_canvases(slice(None)))[0]  # type: ignore[attr-defined]
    return {"pd_at_far5": pd_at_far(scores, labels, 0.05), "benign_routed": float((pb >= clear).mean()),
            "threats_routed": float((pt >= clear).mean()),
            "in_domain_pd_at_far5": pd_at_far(p_in, in_domain.any_labels, 0.05),  # type: ignore[attr-defined]
            "promised_routed": float(ckpt.certificate["expected_workload"])}


@pytest.mark.training
@pytest.mark.timeout(1800)  # about 3 CPU minutes; a shared 2-core machine under load takes several times that
def test_adapting_to_a_held_out_scanner_from_its_unlabelled_folder(champion: Path, tmp_path: Path) -> None:
    from xscreen.settings import load_settings

    settings = load_settings(environ={}, config_file=champion)
    folder = tmp_path / "scanner-x"
    folder.mkdir()
    n = min_images_needed(_cfg(), settings.screening.alpha, settings.screening.delta) + 10
    for i, img in enumerate(_scans(41, n, 0.03)):  # mostly benign, as a real stream; no sidecars
        Path(folder / f"{i:04d}.png").write_bytes(_png(img))
    (folder / "notes.txt").write_text("not a scan")
    images, names = read_folder(folder, max_bytes=2**24, max_pixels=2**24)
    assert len(images) == n and names[0] == "0000.png"
    benign, threats = _scans(42, 60, 0.0), _scans(43, 60, 1.0)
    in_domain, _ = render_set(120, 44, CLASSES, 64, style="reference", progress=False)
    before = _measure(settings, "champ", benign, threats, in_domain)
    result = adapt_model(settings, images, "adapted", scanner="scanner-x", cfg=_cfg(), source=str(folder))
    after = _measure(settings, "adapted", benign, threats, in_domain)
    print({"before": before, "after": after, "summary_before": result.summary["before"],
           "summary_after": result.summary["after"]})
    assert result.record is not None and result.record.state == "candidate" and result.record.parent
    cert = result.checkpoint.certificate
    assert cert["adapted_for_scanner"] == "scanner-x" and "projections" in cert["guarantee_rests_on"]
    assert cert["n_cal_threat"] >= cert["n_threat_needed"]  # enough projected certification articles
    # What is real at this scale (measured 2026-12-01, docs/MODEL.md "Adapting to one scanner"): the champion
    # routes all of this scanner's benign mail to officers (1.00); recalibrated and fine-tuned on its own images,
    # 0.83. On projected certification articles (never trained on) PD at FAR 5% rises (0.17 -> 0.41, AUC 0.62 ->
    # 0.74); on the renderer's own threats in that style it does not (0.07 -> 0.05: a 64-pixel canvas leaves a
    # knife a few pixels), so no detection gain is asserted there. In-domain PD at FAR 5% stays 0.12 because the
    # synthetic renders keep the parent's outputs (adapt.distill_weight 1); without that the same run routes 0.60
    # of the scanner's benign mail but in-domain PD falls to 0.03, the regression the issue forbids.
    assert before["benign_routed"] >= 0.9 and after["benign_routed"] <= before["benign_routed"] - 0.15, (before, after)
    cert_before, cert_after = (result.summary[k]["pd_at_far"]["0.05"] for k in ("before", "after"))
    assert cert_after >= cert_before + 0.15, (cert_before, cert_after)
    # no regression beyond one threat of the ~60 in-domain threats (the issue: 1 point on the original styles)
    assert after["in_domain_pd_at_far5"] >= before["in_domain_pd_at_far5"] - 0.02, (before, after)
    assert result.summary["config"]["distill_weight"] == 1.0  # how it was adapted is stored with the model


def _png(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_cli_adapt_refuses_a_missing_source(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text(f'home = "{tmp_path / "home"}"\n[network]\nstore_port = {free_port()}\n')
    result = CliRunner().invoke(app, ["--config", str(config), "adapt", "--out", "a"])
    assert result.exit_code != 0 and "give --images DIR, --scanner ID, or both" in str(result.exception or result.output)


def test_a_spent_time_budget_leaves_one_short_epoch_and_no_budget_the_full_schedule() -> None:
    from screening.adapt_tail import plan_epochs

    assert plan_epochs(None, 1.0, 50, 5) == (5, 50)
    assert plan_epochs(1000.0, 1.0, 50, 5) == (5, 50)
    assert plan_epochs(120.0, 1.0, 50, 5) == (2, 50)  # two whole epochs fit
    assert plan_epochs(20.0, 1.0, 50, 5) == (1, 20)  # not one: one epoch of what fits
    assert plan_epochs(-5.0, 1.0, 50, 5) == (1, 4)  # nothing left: four steps, so the heads move at all


def test_decoys_are_benign_objects_projected_into_a_share_of_the_benign_backgrounds() -> None:
    from screening.adapt import with_decoys
    from xray.library.catalogue import BENIGN
    from xray.projection import estimate_look
    from xray.threat_library import render_decoys

    decoys = render_decoys(24, seed=3)
    assert len(decoys) >= 20 and all(e.class_name == "benign" and e.part == "training" for e in decoys)
    families = [BENIGN[e.article.split(":")[1]] for e in decoys]
    assert sum(bool(f.resembles) for f in families) >= 6 and not any(f.heldout for f in families)
    backgrounds = _scans(51, 12, 0.0)
    look = estimate_look(backgrounds, seed=1)
    out = with_decoys(backgrounds, look, 0.5, 3, np.random.default_rng(0))
    changed = [i for i, (a, b) in enumerate(zip(backgrounds, out, strict=True)) if not np.array_equal(a, b)]
    assert len(changed) == 6
    for i in changed:  # an object was added: the image only gets darker where it changed, never lighter overall
        assert out[i].shape == backgrounds[i].shape and out[i].astype(int).sum() < backgrounds[i].astype(int).sum()


def test_a_folder_of_large_scans_is_reduced_as_it_is_read(tmp_path: Path) -> None:
    """adapt works at most at max_side_factor x the canvas, so read_folder reduces each scan as it reads it (a few
    hundred large real scans are never held at full size); grey stays grey, colour colour, the aspect kept."""
    rng = np.random.default_rng(0)
    (tmp_path / "big.png").write_bytes(_png(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)))
    (tmp_path / "grey.png").write_bytes(_png(rng.integers(0, 255, (300, 150), dtype=np.uint8)))
    (tmp_path / "small.png").write_bytes(_png(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)))
    images, names = read_folder(tmp_path, max_bytes=2**24, max_pixels=2**24, max_side=200)
    assert names == ["big.png", "grey.png", "small.png"]
    assert [im.shape for im in images] == [(150, 200, 3), (200, 100), (60, 80, 3)]
    full, _ = read_folder(tmp_path, max_bytes=2**24, max_pixels=2**24)
    assert full[0].shape == (900, 1200, 3)


def test_a_folder_is_read_as_predict_reads_it_and_unreadable_scans_are_named(tmp_path: Path) -> None:
    """adapt and predict take the same files of a folder (xray.formats.scan_files: scan suffixes at any depth,
    hidden ones and sidecars left out); a cut file is skipped and handed back with its reason, the others read."""
    rng = np.random.default_rng(1)
    png = _png(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    for rel in ("a.png", "day-2/b.PNG", ".thumbs/c.png", "labels.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(png)
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    refused: list[BadScanError] = []
    images, names = read_folder(tmp_path, max_bytes=2**24, max_pixels=2**24, refused=refused)
    assert names == ["a.png", "day-2/b.PNG"] and len(images) == 2
    assert [(Path(e.path).name, e.reason_code) for e in refused] == [("cut.png", "truncated")]


def test_the_config_takes_every_adapt_setting_it_shares_and_the_overrides() -> None:
    from xscreen.settings import AdaptSettings

    a = AdaptSettings(epochs=5, distill_weight=0.0, frozen_stages=1, library_split="train", decoy_share=0.5)
    cfg = AdaptConfig.from_settings(a, seed=9, epochs=2)
    assert (cfg.epochs, cfg.seed, cfg.distill_weight, cfg.frozen_stages, cfg.library_split, cfg.decoy_share) == (
        2, 9, 0.0, 1, "train", 0.5)
