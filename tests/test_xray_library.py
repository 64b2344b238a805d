"""Content library: every family renders, draws are deterministic, held-out families stay out of training,
threat articles are stable ids, and benign mail carries dense metal as often as real mail does."""

from __future__ import annotations

import numpy as np
import pytest

from xray.items import BENIGN_ITEMS, HELDOUT_BENIGN, LOOKALIKES
from xray.library.catalogue import BENIGN, CONTAINERS, THREATS
from xray.materials import RATIO_METAL_MIN
from xray.shapes import Thing
from xray.stamp import random_pose, stamp_thing
from xray.synth import render_parcel
from xray.threats import HELDOUT_VARIANTS, THREAT_CLASSES, variants_in_split
from xray.tip import render_threat
from xscreen.settings import DEFAULT_CLASSES

THREAT_FAMILIES = [(cls, name) for cls, fams in THREATS.items() for name in fams]


def _stamp(thing: Thing, seed: int) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    rng = np.random.default_rng(seed)
    side = int(2.2 * float(np.linalg.norm(thing.half)) * 0.8) + 16
    acc = np.zeros((2, side, side), np.float32)
    pose = random_pose(rng, thing.poses)
    raw = np.zeros_like(acc)  # unclamped: a cavity outside its solid is a modelling error, not an edge effect
    stamp_thing(raw, thing, pose, side / 2, side / 2, 0.8, np.random.default_rng(seed), clamp=False)
    assert raw.min() > -0.03 * max(float(raw.max()), 1.0), f"{thing.name}: a cavity outside its solid"
    hit = stamp_thing(acc, thing, pose, side / 2, side / 2, 0.8, rng)
    assert np.isfinite(acc).all()
    assert acc.min() >= 0.0
    return acc[0], None if hit is None else hit[0]


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_every_benign_family_renders_something_inside_its_box(name: str) -> None:
    for seed in range(3):
        thing = BENIGN_ITEMS[name](np.random.default_rng(seed))
        acc, box = _stamp(thing, seed)
        assert box is not None and acc.max() > 0.002, name
        x0, y0, x1, y1 = box
        outside = acc.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() <= 0.002 + 1e-6, name  # the box covers every core part


@pytest.mark.parametrize(("cls", "name"), THREAT_FAMILIES)
def test_every_threat_variant_renders_and_is_named_class_colon_variant(cls: str, name: str) -> None:
    thing = THREATS[cls][name].make(np.random.default_rng(1))
    assert thing.name == f"{cls}:{name}"
    acc, box = _stamp(thing, 1)
    assert box is not None and acc.max() > 0.05


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_every_container_fits_the_field_of_view_it_is_given(name: str) -> None:
    _, make, _ = CONTAINERS[name]
    for seed in range(5):
        c = make(np.random.default_rng(seed), 300.0, 400.0)
        assert 2 * c.thing.half[0] <= 300.0 + 60 and 2 * c.thing.half[1] <= 400.0 + 60  # wheels, caps may stick out
        assert c.items[0] <= c.items[1] and c.inner[0] > 0 and c.inner[1] > 0


def test_generators_are_deterministic_given_their_rng() -> None:
    for make in [*BENIGN_ITEMS.values(), *(f.make for fams in THREATS.values() for f in fams.values())]:
        a, b = make(np.random.default_rng(7)), make(np.random.default_rng(7))
        assert a.name == b.name and a.half == b.half and len(a.parts) == len(b.parts)


def test_every_class_has_train_and_held_out_variants_and_every_group_has_a_look_alike() -> None:
    for cls in DEFAULT_CLASSES:
        assert variants_in_split(cls, "train") and HELDOUT_VARIANTS[cls]
        assert set(variants_in_split(cls, "heldout")) == set(HELDOUT_VARIANTS[cls])
        assert set(variants_in_split(cls, "all")) == set(THREAT_CLASSES[cls].variants)
        assert cls in LOOKALIKES.values(), f"no benign look-alike of {cls}"
    assert HELDOUT_BENIGN and any(held for _, _, held in CONTAINERS.values())
    assert len(BENIGN) >= 40 and sum(len(f) for f in THREATS.values()) >= 30


def _held_names() -> set[str]:
    held = {f"{c}:{v}" for c, vs in HELDOUT_VARIANTS.items() for v in vs} | set(HELDOUT_BENIGN)
    return held | {f"container:{n}" for n, (_, _, h) in CONTAINERS.items() if h}


def test_held_out_families_never_appear_in_train_draws() -> None:
    held = _held_names()
    for i in range(120):
        parcel = render_parcel(np.random.default_rng([21, i]), classes=DEFAULT_CLASSES, threat_rate=0.8,
                               size=(96, 96))
        assert not {o.name for o in parcel.objects} & held
    for _ in range(40):
        sig = render_threat(np.random.default_rng(_), "knife", image_width=128, split="train")
        assert sig.name not in held


def test_heldout_split_draws_held_out_threats_containers_and_goods() -> None:
    held = _held_names()
    names = [o for i in range(40) for o in render_parcel(np.random.default_rng([22, i]), classes=DEFAULT_CLASSES,
                                                          threat_rate=1.0, size=(96, 96), content_split="heldout").objects]
    assert all(o.name in held for o in names if o.is_threat)
    assert any(o.name.startswith("container:") and o.name in held for o in names)
    assert any(not o.is_threat and not o.name.startswith("container:") and o.name in held for o in names)


def test_a_threat_article_keeps_its_shape_across_poses_and_articles_differ() -> None:
    a = render_threat(np.random.default_rng(1), "firearm", variant="revolver", article=3, angle=0.0)
    b = render_threat(np.random.default_rng(2), "firearm", variant="revolver", article=3, angle=0.0)
    c = render_threat(np.random.default_rng(1), "firearm", variant="revolver", article=4, angle=0.0)
    assert a.article == b.article == "firearm:revolver:3" and c.article != a.article
    np.testing.assert_allclose(a.att_high.sum(), b.att_high.sum(), rtol=1e-5)
    assert abs(float(a.att_high.sum()) - float(c.att_high.sum())) > 1e-3 * float(a.att_high.sum())
    with pytest.raises(ValueError, match="unknown variant"):
        render_threat(np.random.default_rng(1), "firearm", variant="bazooka")


def test_most_benign_parcels_carry_dense_metal() -> None:
    """The shortcut the old renderer taught: dense metal meant a threat. Benign mail must be full of it."""
    with_metal = 0
    for i in range(30):
        p = render_parcel(np.random.default_rng([23, i]), classes=DEFAULT_CLASSES, threat_rate=0.0, size=(256, 256))
        a_h, a_l = -np.log(p.high), -np.log(p.low)
        metal = (a_h > 0.25) & (a_l > RATIO_METAL_MIN * a_h)
        with_metal += int(metal.sum() > 20)
    assert with_metal >= 15


def test_every_benign_family_can_be_declared_on_a_customs_form() -> None:
    from xray.simulate import DECLARATIONS, UNDECLARED

    assert set(DECLARATIONS) == set(BENIGN) - set(UNDECLARED)


def test_the_number_of_objects_does_not_tell_threat_parcels_apart() -> None:
    from xray.scenarios import get_scenario
    from xray.synth import _choose_contents, _layout

    state = get_scenario("baseline").state(0.0)
    counts: dict[bool, list[int]] = {True: [], False: []}
    for i in range(2000):
        rng = np.random.default_rng([24, i])
        container = _layout(rng, (64, 64), None, "train")[3]
        contents = _choose_contents(rng, list(DEFAULT_CLASSES), state, 0.5, container, "train")
        counts[any(cls for _, cls in contents)].append(len(contents))
    assert abs(np.mean(counts[True]) - np.mean(counts[False])) < 0.35


def test_library_parts_draw_disjoint_articles() -> None:
    from xray.tip import ARTICLE_PARTS, article_part, pick_article

    rng = np.random.default_rng(5)
    drawn = {part: {pick_article(rng, part) for _ in range(300)} for part in ARTICLE_PARTS}
    for part, ids in drawn.items():
        assert all(article_part(k) == part for k in ids)
    assert not (drawn["training"] & drawn["certification"]) and not (drawn["canary"] & drawn["training"])
    sig = render_threat(rng, "knife", article=pick_article(rng, "canary"))
    assert article_part(int(sig.article.rsplit(":", 1)[1])) == "canary"
    with pytest.raises(ValueError, match="unknown library part"):
        pick_article(rng, "holdout")


def test_parcels_render_at_any_pitch_size_and_split() -> None:
    rng = np.random.default_rng(9)
    for i in range(40):
        size = None if i % 4 == 0 else (int(rng.integers(64, 400)), int(rng.integers(64, 400)))
        pixel_mm = None if i % 3 == 0 else float(rng.uniform(0.4, 3.5))
        split = ("train", "heldout", "all")[i % 3]
        p = render_parcel(np.random.default_rng([25, i]), classes=DEFAULT_CLASSES, threat_rate=0.7, size=size,
                          pixel_mm=pixel_mm, content_split=split)  # type: ignore[arg-type]
        H, W = p.high.shape
        assert p.high.dtype == np.float32 and 0.0 < p.high.min() and p.high.max() <= 1.0
        for k, o in enumerate(p.objects):
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            if o.is_threat:
                assert p.masks[k].shape == (y1 - y0, x1 - x0) and p.masks[k].any()


@pytest.mark.parametrize("variant,host", [("in_book_spine", "book"), ("in_shoe_sole", "shoes")])
def test_concealed_narcotics_replace_the_host_material_they_hide_in(variant: str, host: str) -> None:
    """A hollowed book or sole holds powder where paper or rubber was: seen face-on, the article is at most as
    much denser than its host as powder is denser than what it replaced, not a parcel's worth of powder on top."""
    from xray.library import contraband, household
    from xray.materials import MATERIALS

    replaced = {"book": "paper", "shoes": "rubber"}[host]
    ratio = MATERIALS["narcotic"].mu_low / MATERIALS[replaced].mu_low  # attenuation per mm, density included
    for seed in range(4):
        concealed = getattr(contraband, variant)(np.random.default_rng(seed))
        alone = getattr(household, host)(np.random.default_rng(seed))  # the same host: drawn first from the rng
        peaks = []
        for thing in (concealed, alone):
            side = int(2.2 * float(np.linalg.norm(thing.half)) * 0.5) + 16
            acc = np.zeros((2, side, side), np.float32)
            stamp_thing(acc, thing, np.eye(3), side / 2, side / 2, 0.5, np.random.default_rng(seed))
            peaks.append(float(np.percentile(acc[1], 99.5)))
        assert peaks[0] <= peaks[1] * max(ratio, 1.0) * 1.1, (variant, seed, peaks)
