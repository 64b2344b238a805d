"""Threat classes as a registry of procedural shape generators: adding a class = a config entry + a generator.

Each class has variants (make, pose, carrier) with default weights; scenarios may re-weight variants (the
`new_concealment` scenario moves narcotics into book spines and shoe soles). Concealed variants draw their
carrier as non-core parts, so the threat's box and mask cover only the threat itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xray import items
from xray.shapes import Frame, ObjectSpec, Part, texture
from xscreen.errors import ConfigError

VariantGenerator = Callable[[np.random.Generator], ObjectSpec]


class UnknownClassError(ConfigError):
    """A threat class in the configuration that has no shape generator."""

    title = "Unknown threat class"


@dataclass(frozen=True)
class ThreatClass:
    name: str
    variants: dict[str, tuple[float, VariantGenerator]]  # variant -> (default weight, generator)


def _handgun(rng: np.random.Generator, parts_only: bool = False) -> ObjectSpec:
    length = rng.uniform(150, 210)
    height = length * rng.uniform(0.62, 0.75)
    polymer = rng.random() < 0.5
    grip_angle = np.deg2rad(rng.uniform(12, 22))
    keep = rng.choice(["slide", "barrel", "magazine"]) if parts_only else "all"
    loaded = rng.random() < 0.6

    def draw(f: Frame) -> list[Part]:
        top = -height / 2 + 16
        slide = f.rect(length, 30, 14, cy=top, r=3) + f.rect(8, 6, 6, cx=length * 0.45, cy=top - 14)  # + sight
        barrel = f.cylinder(length * 0.8, 7, cx=length * 0.08, cy=top, inner=4.5)
        gx, gy = -length * 0.28, top + height * 0.42  # the grip's top is hidden under the slide
        grip = f.rect(32, height * 0.72, 28, cx=gx, cy=gy, angle=grip_angle, r=4)
        mag = f.rect(20, height * 0.68, 22, cx=gx, cy=gy + 4, angle=grip_angle) - \
            f.rect(17, height * 0.66, 20, cx=gx, cy=gy + 4, angle=grip_angle)
        guard = f.ellipse(24, 16, 8, cx=-length * 0.02, cy=top + 28) - f.ellipse(18, 11, 8, cx=-length * 0.02,
                                                                                   cy=top + 28)
        if keep == "slide":
            return [Part("steel", slide)]
        if keep == "barrel":
            return [Part("steel", barrel * 1.0 + f.rect(30, 16, 10, cx=-length * 0.3, cy=top))]
        if keep == "magazine":
            return [Part("steel", np.maximum(mag, 0)), Part("brass", f.rect(9, height * 0.5, 9, cx=gx,
                                                                              cy=gy, angle=grip_angle))]
        frame_mat = "polyethylene" if polymer else "steel"
        parts = [Part("steel", slide + barrel + f.rect(4, 14, 6, cx=-length * 0.04, cy=top + 30, angle=0.3)),
                 Part(frame_mat, grip), Part("steel", np.maximum(mag, 0) * 0.4),
                 Part(frame_mat, np.maximum(guard, 0))]
        if loaded:  # rounds stacked in the magazine, along the grip
            ca, sa = np.cos(grip_angle), np.sin(grip_angle)
            for k in range(int(height * 0.5 / 10)):
                off = -height * 0.25 + k * 10.0
                parts.append(Part("brass", f.ellipse(7, 4.5, 9, cx=gx - sa * off, cy=gy + 4 + ca * off, dome=True,
                                                     angle=grip_angle)))
        return parts

    name = "firearm:" + ("part_" + str(keep) if parts_only else ("polymer_pistol" if polymer else "steel_pistol"))
    return ObjectSpec(name, (length / 2 + 5, height / 2 + 20), draw, "steel")


def _revolver(rng: np.random.Generator) -> ObjectSpec:
    barrel_len = rng.uniform(60, 150)
    grip_angle = np.deg2rad(rng.uniform(15, 30))
    loaded = rng.random() < 0.6

    def draw(f: Frame) -> list[Part]:
        drum = f.ellipse(19, 19, 38, cx=0, cy=0) * 0.55  # a 38 mm steel cylinder seen end-on, mostly chambers
        chambers = np.zeros_like(f.u)
        for k in range(6):
            a = k * np.pi / 3
            chambers += f.ellipse(5, 5, 38, cx=11 * np.cos(a), cy=11 * np.sin(a))
        parts = [Part("steel", np.maximum(drum - chambers * 0.5, 0)),
                 Part("steel", f.cylinder(barrel_len, 8, cx=19 + barrel_len / 2, inner=4.5)),
                 Part("steel", f.rect(60, 24, 12, cx=-8, cy=-8)),  # frame and hammer
                 Part("wood", f.rect(30, 80, 30, cx=-40, cy=40, angle=grip_angle, r=8)),
                 Part("steel", f.rect(8, 78, 6, cx=-40, cy=40, angle=grip_angle)),  # frame strap in the grip
                 Part("steel", np.maximum(f.ellipse(16, 12, 6, cx=-6, cy=24) - f.ellipse(11, 8, 6, cx=-6, cy=24), 0))]
        if loaded:
            parts.append(Part("lead", chambers * 0.4))
        return parts

    return ObjectSpec("firearm:revolver", (barrel_len / 2 + 70, 90.0), draw, "steel")


def _knife(rng: np.random.Generator, kind: str) -> ObjectSpec:
    blade = rng.uniform(80, 200) if kind == "kitchen" else rng.uniform(60, 100)
    width = rng.uniform(12, 22)
    handle = rng.uniform(90, 130) if kind == "kitchen" else blade * 1.1
    metal_handle = kind == "folding" or rng.random() < 0.3

    def draw(f: Frame) -> list[Part]:
        x0 = -(blade + handle) / 2 + handle
        parts = [Part("steel", f.taper(blade, width, rng.uniform(1.8, 3.0), cx=x0, power=2.2))]
        hmat = "steel" if metal_handle else ("wood" if rng.random() < 0.5 else "polyethylene")
        t_handle = 2.5 if metal_handle else 16.0
        parts.append(Part(hmat, f.rect(handle, width * 1.2, t_handle, cx=x0 - handle / 2, r=5)))
        parts.append(Part("steel", f.rect(4, width * 1.4, 4, cx=x0)))  # bolster / pivot
        return parts

    return ObjectSpec(f"knife:{kind}", ((blade + handle) / 2 + 2, width * 1.2), draw, "steel")


def _cartridge(f: Frame, cx: float, cy: float, angle: float, length: float, radius: float) -> list[Part]:
    case = f.cylinder(length * 0.68, radius, cx=cx, cy=cy, angle=angle, inner=radius - 0.6)
    dx, dy = np.cos(angle) * length * 0.42, np.sin(angle) * length * 0.42
    bullet = f.ellipse(length * 0.2, radius * 0.95, 2 * radius, cx=cx + dx, cy=cy + dy, angle=angle, dome=True)
    powder = f.cylinder(length * 0.6, radius - 0.7, cx=cx, cy=cy, angle=angle)
    return [Part("brass", case), Part("lead", bullet), Part("polyethylene", powder * 0.8)]  # propellant


def _ammunition(rng: np.random.Generator, boxed: bool) -> ObjectSpec:
    length, radius = rng.uniform(25, 45), rng.uniform(4.5, 6.0)
    n = int(rng.integers(6, 21)) if boxed else int(rng.integers(2, 8))
    if boxed:
        cols = int(np.ceil(np.sqrt(n)))
        pos = [((i % cols) * radius * 2.3, (i // cols) * radius * 2.3, 0.0) for i in range(n)]
    else:
        pos = [(rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(0, np.pi)) for _ in range(n)]
    arr = np.array([(p[0], p[1]) for p in pos])
    centre = arr.mean(axis=0)
    ext = float(np.abs(arr - centre).max()) + length

    def draw(f: Frame) -> list[Part]:
        parts: list[Part] = []
        for x, y, ang in pos:
            if boxed:  # standing upright in a carton: seen end-on as discs
                parts.append(Part("brass", f.ellipse(radius, radius, length * 0.7, cx=x - centre[0], cy=y - centre[1])))
                parts.append(Part("lead", f.ellipse(radius * 0.8, radius * 0.8, length * 0.3, cx=x - centre[0],
                                                    cy=y - centre[1])))
            else:
                parts += _cartridge(f, x - centre[0], y - centre[1], ang, length, radius)
        if boxed:
            parts.append(Part("cardboard", f.rect(2 * ext, 2 * ext, 40), core=False))
        return parts

    return ObjectSpec("ammunition:" + ("box" if boxed else "loose"), (ext, ext), draw, "brass")


def _powder(f: Frame, w: float, h: float, t: float, rng: np.random.Generator, cx: float = 0, cy: float = 0) -> np.ndarray:
    # compressed powder: a dense, homogeneous slab with sharp pressed edges (no fabric folds, no food grain),
    # so on the scanner it is a uniformly dark organic block, far denser than clothes or snacks of its size
    return f.rect(w, h, t, cx=cx, cy=cy, r=3) * (0.97 + 0.03 * texture("grain", f.u.shape, rng))


def _taped_brick(f: Frame, w: float, h: float, t: float, rng: np.random.Generator, cx: float = 0, cy: float = 0,
                 angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(powder, wrapping) of one taped brick: layers of packing tape fold over its rim and cross its faces."""
    powder = f.rect(w, h, t, cx=cx, cy=cy, r=3, angle=angle)
    rim = np.maximum(f.rect(w + 6, h + 6, 4.0, cx=cx, cy=cy, r=4, angle=angle)
                     - f.rect(w - 6, h - 6, 4.0, cx=cx, cy=cy, r=2, angle=angle), 0)
    tape = rim + f.rect(w + 6, h + 6, 1.5, cx=cx, cy=cy, r=4, angle=angle)
    for k in range(int(rng.integers(2, 5))):  # strips of tape wound around the brick
        tape += f.rect(w + 8, 20, 2.0, cx=cx, cy=cy + (k - 1.5) * h / 4, angle=angle + rng.uniform(-0.5, 0.5))
    return powder, tape


def _pills(f: Frame, w: float, h: float, rng: np.random.Generator) -> list[Part]:
    """Blister sheets stacked: a regular grid of dense discs under an aluminium foil (inorganic) layer."""
    sheets = int(rng.integers(2, 7))
    pitch = rng.uniform(11, 15)
    cols, rows = max(int(w // pitch), 2), max(int(h // pitch), 2)
    pills = np.zeros_like(f.u)
    for i in range(cols):
        for j in range(rows):
            pills += f.ellipse(4.5, 4.5, 6.0 * sheets, cx=(i - (cols - 1) / 2) * pitch, cy=(j - (rows - 1) / 2) * pitch,
                               dome=True)
    sw, sh = cols * pitch + 6, rows * pitch + 6
    return [Part("narcotic", pills), Part("aluminium", f.rect(sw, sh, 0.25 * sheets, r=3)),
            Part("polyethylene", f.rect(sw, sh, 0.6 * sheets, r=3))]


def _narcotics(rng: np.random.Generator, carrier: str) -> ObjectSpec:
    w, h, t = rng.uniform(90, 150), rng.uniform(110, 200), rng.uniform(35, 60)  # about a kilo brick
    if carrier == "pills":
        pw, ph = rng.uniform(50, 110), rng.uniform(70, 130)
        return ObjectSpec("narcotics:pills", (pw / 2 + 6, ph / 2 + 6), lambda f: _pills(f, pw, ph, rng), "narcotic")
    if carrier == "powder_pack":
        def draw(f: Frame) -> list[Part]:
            powder, tape = _taped_brick(f, w, h, t, rng)
            return [Part("narcotic", powder), Part("polyethylene", tape)]
        return ObjectSpec("narcotics:powder_pack", (w / 2 + 6, h / 2 + 6), draw, "narcotic")
    host = {"in_cosmetics": items.cosmetics_bottle, "in_food": items.food_pack, "in_book_spine": items.book,
            "in_shoe_sole": items.shoes}[carrier](rng)

    def draw_hidden(f: Frame) -> list[Part]:
        outer = [Part(p.material, p.thickness, core=False) for p in host.draw(f)]
        hw, hh = host.half_extent
        if carrier == "in_book_spine":  # a hollowed spine strip packed with powder
            core = _powder(f, 24, hh * 1.7, 30, rng, cx=-hw + 14)
        elif carrier == "in_shoe_sole":  # flat packs in both soles
            core = _powder(f, hw * 1.1, 45, 22, rng, cy=-hh * 0.5) + _powder(f, hw * 1.1, 45, 22, rng, cy=hh * 0.5)
        else:  # replaces most of the liquid or food
            core = _powder(f, hw * 1.2, hh * 1.2, max(min(hh, 40.0), 30.0), rng)
        return outer + [Part("narcotic", core)]

    return ObjectSpec(f"narcotics:{carrier}", host.half_extent, draw_hidden, "narcotic")


def _currency(rng: np.random.Generator, bundles: int) -> ObjectSpec:
    w, h = rng.uniform(150, 160), rng.uniform(65, 78)  # banknote size (mm)
    thick = rng.uniform(30, 70, size=bundles)  # bricks of strapped bundles (100 notes = about 11 mm)
    thread_x = w * rng.uniform(0.05, 0.3) * (1 if rng.random() < 0.5 else -1)

    def draw(f: Frame) -> list[Part]:
        paper = np.zeros_like(f.u)
        band = np.zeros_like(f.u)
        thread = np.zeros_like(f.u)
        for i, t in enumerate(thick):
            cy = (i - (bundles - 1) / 2) * (h + 3)
            paper += f.rect(w, h, t, cy=cy)  # uniform, sharp-edged paper stack
            band += f.rect(30, h + 2, 6.0, cy=cy) + f.rect(w + 2, h + 2, 0.8, cy=cy)  # strap + film wrap
            # metallised security threads of every note lie on one line through the stack
            thread += f.rect(1.6, h, 0.04 * t, cx=thread_x, cy=cy)
        return [Part("paper", paper), Part("polyethylene", band), Part("aluminium", thread)]

    return ObjectSpec(f"currency:{bundles}_bundle", (w / 2 + 1, bundles * (h + 3) / 2 + 1), draw, "paper")


def _lithium(rng: np.random.Generator, kind: str) -> ObjectSpec:
    n = int(rng.integers(2, 7)) if kind == "loose_cells" else int(rng.integers(2, 5))
    length, radius = (65.0, 9.0) if rng.random() < 0.7 else (70.0, 10.5)  # 18650 or 21700
    pos = [(rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(0, np.pi)) for _ in range(n)] \
        if kind == "loose_cells" else [(0.0, (i - (n - 1) / 2) * 2 * radius, 0.0) for i in range(n)]

    def draw(f: Frame) -> list[Part]:
        parts: list[Part] = []
        for x, y, ang in pos:
            parts.append(Part("steel", f.cylinder(length, radius, cx=x, cy=y, angle=ang, inner=radius - 0.3)))
            parts.append(Part("li_cell", f.cylinder(length - 4, radius - 0.3, cx=x, cy=y, angle=ang, inner=1.5)))
            parts.append(Part("steel", f.cylinder(3, radius * 0.7, cx=x + np.cos(ang) * length / 2,
                                                  cy=y + np.sin(ang) * length / 2, angle=ang)))  # cap
        if kind == "power_bank":
            parts.append(Part("polyethylene", f.rect(length + 14, n * 2 * radius + 12, 3, r=6), core=False))
            parts += [Part(p.material, p.thickness, core=False) for p in
                      items._board(f, 25, n * 2 * radius, rng, cx=length / 2 + 12)]
        return parts

    ext = (length / 2 + 40, 50.0) if kind == "loose_cells" else (length / 2 + 30, n * radius + 8)
    return ObjectSpec(f"lithium_battery:{kind}", ext, draw, "li_cell")


THREAT_CLASSES: dict[str, ThreatClass] = {
    "firearm": ThreatClass("firearm", {"pistol": (0.55, lambda r: _handgun(r)),
                                       "revolver": (0.2, _revolver),
                                       "gun_part": (0.25, lambda r: _handgun(r, parts_only=True))}),
    "knife": ThreatClass("knife", {k: (w, (lambda kk: lambda r: _knife(r, kk))(k))
                                   for k, w in (("kitchen", 0.4), ("folding", 0.35), ("dagger", 0.25))}),
    "ammunition": ThreatClass("ammunition", {"loose": (0.6, lambda r: _ammunition(r, False)),
                                             "box": (0.4, lambda r: _ammunition(r, True))}),
    "narcotics": ThreatClass("narcotics", {c: (w, (lambda cc: lambda r: _narcotics(r, cc))(c)) for c, w in (
        ("powder_pack", 0.4), ("pills", 0.25), ("in_cosmetics", 0.2), ("in_food", 0.15),
        ("in_book_spine", 0.0), ("in_shoe_sole", 0.0))}),
    "currency": ThreatClass("currency", {f"{b}_bundle": (w, (lambda bb: lambda r: _currency(r, bb))(b))
                                         for b, w in ((1, 0.5), (2, 0.3), (3, 0.2))}),
    "lithium_battery": ThreatClass("lithium_battery", {"loose_cells": (0.5, lambda r: _lithium(r, "loose_cells")),
                                                       "power_bank": (0.5, lambda r: _lithium(r, "power_bank"))}),
}


def check_classes(classes: list[str] | tuple[str, ...]) -> None:
    """UnknownClassError naming the first class without a generator."""
    for name in classes:
        if name not in THREAT_CLASSES:
            raise UnknownClassError(f"unknown threat class {name!r}: no shape generator; "
                                    f"known: {', '.join(THREAT_CLASSES)}")


# Variants never drawn for training (content split "train"); "heldout" draws only these.
HELDOUT_VARIANTS: dict[str, tuple[str, ...]] = {
    "firearm": ("revolver",), "knife": ("dagger",), "ammunition": ("box",), "narcotics": ("pills",),
    "currency": ("3_bundle",), "lithium_battery": ("power_bank",),
}


def make_threat(rng: np.random.Generator, class_name: str, variant_weights: dict[str, float] | None = None,
                split: str = "all") -> ObjectSpec:
    """One threat object of `class_name`; `variant_weights` overrides the class's default variant mix; `split`
    "train" leaves out HELDOUT_VARIANTS, "heldout" keeps only them, "all" draws every variant."""
    check_classes([class_name])
    cls = THREAT_CLASSES[class_name]
    held = HELDOUT_VARIANTS.get(class_name, ())
    names = [n for n in cls.variants if split == "all" or (n in held) == (split == "heldout")]
    weights = np.array([(variant_weights or {}).get(n, cls.variants[n][0]) for n in names], dtype=float)
    if weights.sum() <= 0:
        weights = np.ones(len(names))
    variant = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return cls.variants[variant][1](rng)
