"""Every family of the library with its kind, weight, threat class and split: the one place that says what
the renderer can draw and what training never sees."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xray.library import Family, blades, containers, contraband, electronics, firearms, household, metalware
from xray.library.containers import Container
from xray.shapes import Thing


def _benign(make: Callable[[np.random.Generator], Thing], weight: float, group: str, resembles: str | None = None,
            heldout: bool = False) -> Family:
    name = make.__name__
    return Family(name, "benign", make, weight, None, heldout, resembles, group, (make.__doc__ or "").split("\n")[0])


BENIGN: dict[str, Family] = {f.name: f for f in (
    # clothing, paper, household
    _benign(household.clothing, 3.0, "soft goods"), _benign(household.shoes, 1.2, "soft goods"),
    _benign(household.book, 1.2, "paper"), _benign(household.paper_stack, 0.8, "paper", "currency"),
    _benign(household.notebook, 0.5, "paper"), _benign(household.bottle, 1.2, "liquids"),
    _benign(household.spray_can, 0.4, "liquids"), _benign(household.tin, 0.5, "food"),
    _benign(household.food_pack, 1.0, "food"), _benign(household.powder_bag, 0.5, "food", "narcotics"),
    _benign(household.toy, 0.8, "toys"), _benign(household.toy_car, 0.3, "toys"),
    _benign(household.toy_gun, 0.25, "toys", "firearm"), _benign(household.lipstick, 0.4, "cosmetics", "ammunition"),
    _benign(household.cosmetics_kit, 0.6, "cosmetics"), _benign(household.mug, 0.4, "household"),
    _benign(household.candle_jar, 0.3, "household"), _benign(household.packing, 1.5, "packing"),
    _benign(household.medicine, 0.5, "household", "narcotics"), _benign(household.sewing_kit, 0.25, "household"),
    _benign(household.wallet, 0.4, "household", "currency"),
    _benign(household.umbrella, 0.4, "household", heldout=True), _benign(household.thermos, 0.4, "household", heldout=True),
    # electronics
    _benign(electronics.phone, 1.0, "electronics", "lithium_battery"), _benign(electronics.tablet, 0.5, "electronics"),
    _benign(electronics.laptop, 0.6, "electronics", "lithium_battery"), _benign(electronics.charger, 1.0, "electronics"),
    _benign(electronics.cable, 1.0, "electronics"), _benign(electronics.headphones, 0.6, "electronics"),
    _benign(electronics.earbuds, 0.4, "electronics"), _benign(electronics.speaker, 0.4, "electronics", "lithium_battery"),
    _benign(electronics.smartwatch, 0.0, "electronics"), _benign(electronics.vape, 0.0, "electronics"),
    _benign(electronics.game_controller, 0.4, "electronics"), _benign(electronics.torch, 0.4, "electronics", "lithium_battery"),
    _benign(electronics.hair_clipper, 0.3, "electronics", "knife"), _benign(electronics.router, 0.5, "electronics"),
    _benign(electronics.e_reader, 0.3, "electronics"), _benign(electronics.drone, 0.2, "electronics", "lithium_battery"),
    _benign(electronics.camera, 0.4, "electronics", heldout=True), _benign(electronics.power_drill, 0.3, "tools", heldout=True),
    _benign(electronics.keyboard, 0.3, "electronics", heldout=True),
    # dense metal
    _benign(metalware.cutlery, 0.6, "metalware", "knife"), _benign(metalware.screwdriver, 0.4, "tools", "knife"),
    _benign(metalware.pliers, 0.4, "tools", "firearm"), _benign(metalware.scissors, 0.5, "tools", "knife"),
    _benign(metalware.spanner, 0.4, "tools", "firearm"), _benign(metalware.hammer, 0.2, "tools"),
    _benign(metalware.tape_measure, 0.3, "tools"), _benign(metalware.toolset, 0.3, "tools", "ammunition"),
    _benign(metalware.keys, 0.7, "metalware"), _benign(metalware.padlock, 0.3, "metalware"),
    _benign(metalware.coins, 0.6, "metalware"), _benign(metalware.coin_roll, 0.2, "metalware", "ammunition"),
    _benign(metalware.jewellery, 0.5, "metalware"), _benign(metalware.watch, 0.5, "metalware"),
    _benign(metalware.metal_pen, 0.5, "metalware", "ammunition"), _benign(metalware.letter_opener, 0.2, "metalware", "knife"),
    _benign(metalware.belt, 0.4, "metalware"), _benign(metalware.bike_lock, 0.2, "metalware"),
    _benign(metalware.glasses, 0.4, "metalware"), _benign(metalware.aa_batteries, 0.4, "metalware", "lithium_battery"),
    _benign(metalware.fasteners, 0.3, "tools"), _benign(metalware.bike_parts, 0.2, "metalware"),
)}
NEW_GOODS = ("vape", "smartwatch")  # weight 0 at baseline: the new_goods scenario brings them

ContainerMaker = Callable[[np.random.Generator, float, float], Container]
# name -> (weight, generator, held out)
CONTAINERS: dict[str, tuple[float, ContainerMaker, bool]] = {
    "envelope": (0.14, containers.envelope, False), "padded_bag": (0.12, containers.padded_bag, False),
    "poly_mailer": (0.12, containers.poly_mailer, False), "carton": (0.34, containers.carton, False),
    "soft_bag": (0.1, containers.soft_bag, False), "backpack": (0.06, containers.backpack, False),
    "suitcase": (0.12, containers.suitcase, False),
    "tube_mailer": (0.05, containers.tube_mailer, True), "hard_case": (0.08, containers.hard_case, True),
}


def _threat(cls: str, make: Callable[[np.random.Generator], Thing], weight: float, heldout: bool = False) -> Family:
    name = make.__name__
    variant = {"ammo_loose": "loose", "ammo_box": "box", "ammo_belt": "belt", "currency_bundle": "bundle",
               "currency_roll": "roll", "currency_in_book": "in_book"}.get(name, name)
    return Family(variant, "threat", make, weight, cls, heldout, None, cls, (make.__doc__ or "").split("\n")[0])


THREATS: dict[str, dict[str, Family]] = {}
for _f in (
    _threat("firearm", firearms.pistol_service, 0.4), _threat("firearm", firearms.pistol_compact, 0.25),
    _threat("firearm", firearms.revolver, 0.15), _threat("firearm", firearms.gun_part, 0.2),
    _threat("firearm", firearms.pistol_pocket, 0.5, True), _threat("firearm", firearms.revolver_snub, 0.5, True),
    _threat("knife", blades.kitchen, 0.3), _threat("knife", blades.folding, 0.25),
    _threat("knife", blades.utility_cutter, 0.15), _threat("knife", blades.bare_blade, 0.1),
    _threat("knife", blades.dagger, 0.1), _threat("knife", blades.hunting, 0.1),
    _threat("knife", blades.cleaver, 0.5, True), _threat("knife", blades.balisong, 0.5, True),
    _threat("ammunition", contraband.ammo_loose, 0.45), _threat("ammunition", contraband.ammo_box, 0.35),
    _threat("ammunition", contraband.ammo_belt, 0.2),
    _threat("ammunition", contraband.stripper_clip, 0.5, True), _threat("ammunition", contraband.shotgun_shells, 0.5, True),
    _threat("narcotics", contraband.powder_pack, 0.35), _threat("narcotics", contraband.pills, 0.25),
    _threat("narcotics", contraband.liquid, 0.05), _threat("narcotics", contraband.in_cosmetics, 0.2),
    _threat("narcotics", contraband.in_food, 0.15), _threat("narcotics", contraband.in_book_spine, 0.0),
    _threat("narcotics", contraband.in_shoe_sole, 0.0),
    _threat("narcotics", contraband.in_tin, 0.35, True), _threat("narcotics", contraband.in_electronics, 0.3, True),
    _threat("narcotics", contraband.vacuum_pouch, 0.35, True),
    _threat("currency", contraband.currency_bundle, 0.7), _threat("currency", contraband.loose_notes, 0.3),
    _threat("currency", contraband.currency_roll, 0.5, True), _threat("currency", contraband.currency_in_book, 0.5, True),
    _threat("lithium_battery", contraband.loose_cells, 0.35), _threat("lithium_battery", contraband.cell_pack, 0.3),
    _threat("lithium_battery", contraband.power_bank, 0.35),
    _threat("lithium_battery", contraband.pouch_cells, 1.0, True),
):
    THREATS.setdefault(_f.class_name or "", {})[_f.name] = _f
