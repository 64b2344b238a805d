"""Ammunition (loose, boxed, belted; stripper clips and shotgun shells held out), narcotics (taped powder bricks,
blister pills, loose pills, liquid, concealed in goods; tins, electronics and vacuum pouches held out), currency
(strapped bundles, loose notes; rolls and notes in a book held out) and lithium batteries (loose cells, packs,
power banks; pouch packs held out)."""

from __future__ import annotations

import numpy as np

from xray.library import electronics, household
from xray.library.common import CALIBRES, board, cartridge, cell, corners, screws, with_copies
from xray.shapes import (
    Part,
    Piece,
    Thing,
    as_carrier,
    ball,
    block,
    cyl,
    grid,
    moved,
    polyline,
    rot,
    shell,
    spread,
    thing,
    tube,
)
from xray.solids import Vec3


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


# ---- ammunition ----

def ammo_loose(rng: np.random.Generator) -> Thing:
    """Loose rounds of one calibre, at any angle, a few on end."""
    calibre = str(rng.choice(list(CALIBRES)))
    n = int(rng.integers(2, 11))
    parts: list[Piece] = []
    for _ in range(n):
        tilt = rot(ax=_u(rng, -0.3, 0.3), ay=_u(rng, -1.4, 1.4) if rng.random() < 0.2 else 0.0, az=_u(rng, 0, 6.3))
        parts += cartridge(calibre, (_u(rng, -45, 45), _u(rng, -45, 45), 0.0), rot=tilt)
    return thing("ammunition:loose", parts, "brass")


def ammo_box(rng: np.random.Generator) -> Thing:
    """A carton of 20 to 50 rounds standing upright in a plastic tray: a grid of dense discs."""
    calibre = str(rng.choice(["9mm", "45acp", "22lr", "380", "38spl", "556"]))
    d = CALIBRES[calibre][0]
    nx, ny = int(rng.integers(4, 11)), int(rng.integers(3, 6))
    pitch = d + _u(rng, 1.0, 3.0)
    first, rest = spread(list(grid(nx, ny, pitch, pitch)))
    parts: list[Piece] = cartridge(calibre, first, rot=rot(ay=-np.pi / 2), copies=rest)
    w, h = nx * pitch + 8, ny * pitch + 8
    parts += as_carrier([*shell("cardboard", w, h, 45, 1.5), block("polyethylene", w - 4, h - 4, 2.0, (0, 0, -10))])
    return thing("ammunition:box", parts, "brass")


def ammo_belt(rng: np.random.Generator) -> Thing:
    """Rounds side by side in steel links: a long row of parallel cartridges."""
    calibre = str(rng.choice(["556", "762"]))
    n = int(rng.integers(6, 25))
    pitch = CALIBRES[calibre][0] + 2.5
    first, rest = spread([(0.0, (i - n / 2) * pitch, 0.0) for i in range(n)])
    parts: list[Piece] = cartridge(calibre, first, copies=rest)
    parts.append(block("steel", 12, pitch * 0.7, CALIBRES[calibre][0] + 3, (-8.0, first[1], 0.0), copies=rest))
    parts.append(block("steel", 11, pitch * 0.7 - 1, CALIBRES[calibre][0] + 1, (-8.0, first[1], 0.0), sign=-1.0,
                       copies=rest))
    curve = rot(az=_u(rng, -0.3, 0.3))
    return thing("ammunition:belt", moved(parts, rot=curve), "brass")


def stripper_clip(rng: np.random.Generator) -> Thing:
    """Held out: five to ten rifle rounds held by their rims in a spring-steel clip, one or a few clips."""
    calibre = str(rng.choice(["556", "762"]))
    n = int(rng.integers(5, 11))
    clips = int(rng.integers(1, 4))
    pitch = CALIBRES[calibre][0] + 0.3
    pos = [(0.0, (i - n / 2) * pitch + c * (n * pitch + 15), 0.0) for c in range(clips) for i in range(n)]
    first, rest = spread(pos)
    parts: list[Piece] = cartridge(calibre, first, copies=rest)
    base = -(CALIBRES[calibre][1] + CALIBRES[calibre][2] * 0.7) / 2
    for c in range(clips):
        parts.append(block("steel", 4, n * pitch + 4, 14, (base, -pitch / 2 + c * (n * pitch + 15), 0)))
    return thing("ammunition:stripper_clip", parts, "brass")


def shotgun_shells(rng: np.random.Generator) -> Thing:
    """Held out: 12-gauge shells: plastic hull, brass head, a load of lead shot (grainy), in a box or loose."""
    n = int(rng.integers(3, 26))
    boxed = n > 8
    parts: list[Piece] = []
    if boxed:
        nx = int(np.ceil(np.sqrt(n)))
        first, rest = spread(list(grid(nx, int(np.ceil(n / nx)), 21.0, 21.0)))
        r = rot(ay=-np.pi / 2)
    else:
        pos = [(_u(rng, -50, 50), _u(rng, -50, 50), 0.0) for _ in range(n)]
        first, rest = spread(pos)
        r = rot(az=_u(rng, 0, 3))
    shell_parts: list[Piece] = [*tube("polyethylene", 20, 0.8, 70, axis="x"), *tube("brass", 20.5, 0.5, 16, (-27, 0, 0), "x", closed=True),
                                cyl("lead", 18, 22, (15, 0, 0), "x", texture=("grain", 0.5)),
                                cyl("polyethylene", 18, 10, (-5, 0, 0), "x")]
    parts = with_copies(moved(shell_parts, first, r), rest)
    if boxed:
        parts += as_carrier(shell("cardboard", 130, 110, 75, 1.5))
    return thing("ammunition:shotgun_shells", parts, "lead")


# ---- narcotics ----

def _brick(rng: np.random.Generator, w: float, h: float, t: float, at: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list[Piece]:
    """A taped brick of compressed powder: dense, uniform, sharp-edged, wound with layers of tape."""
    parts: list[Piece] = [block("narcotic", w, h, t, at, texture=("grain", 0.03)),
                          *as_carrier(shell("polyethylene", w + 6, h + 6, t + 6, 1.5, at))]
    for k in range(int(rng.integers(1, 4))):  # strips of tape wound round it: a band, hollow where the brick is
        turn = rot(az=_u(rng, -0.4, 0.4))
        band_at = (at[0], at[1] + (k - 1) * h / 4, at[2])
        parts.append(block("polyethylene", w + 8, 20, t + 8, band_at, turn, core=False))
        parts.append(block("polyethylene", w + 6, 20, t + 6, band_at, turn, sign=-1.0, core=False))
    return parts


def powder_pack(rng: np.random.Generator) -> Thing:
    """One to three taped bricks of compressed powder (about a kilo each)."""
    n = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    w, h, t = _u(rng, 80, 160), _u(rng, 110, 220), _u(rng, 25, 60)
    parts: list[Piece] = []
    for i in range(n):
        parts += _brick(rng, w, h, t, (0.0, i * (h + 10) - (n - 1) * (h + 10) / 2, 0.0))
    return thing("narcotics:powder_pack", parts, "narcotic")


def vacuum_pouch(rng: np.random.Generator) -> Thing:
    """Held out: flat vacuum-sealed pouches of powder, several overlapping."""
    n = int(rng.integers(1, 5))
    parts: list[Piece] = []
    for _ in range(n):
        w, h, t = _u(rng, 80, 200), _u(rng, 80, 200), _u(rng, 6, 18)
        at = (_u(rng, -30, 30), _u(rng, -30, 30), 0.0)
        parts += [block("narcotic", w, h, t, at, rot(az=_u(rng, -0.5, 0.5)), texture=("grain", 0.05)),
                  block("polyethylene", w + 12, h + 12, 0.4, at, rot(az=0.0), core=False)]
    return thing("narcotics:vacuum_pouch", parts, "narcotic")


def pills(rng: np.random.Generator) -> Thing:
    """Blister sheets stacked (a regular grid of pills under aluminium foil), or loose pills in a plastic bag."""
    if rng.random() < 0.6:
        sheets = int(rng.integers(2, 10))
        pitch = _u(rng, 11, 16)
        nx, ny = int(rng.integers(3, 7)), int(rng.integers(2, 5))
        first, rest = spread(list(grid(nx, ny, pitch, pitch)))
        d = pitch * 0.7
        parts: list[Piece] = [cyl("narcotic", d, 5.0 * sheets, first, copies=rest),
                              block("aluminium", nx * pitch + 6, ny * pitch + 6, 0.03 * sheets),
                              block("polyethylene", nx * pitch + 6, ny * pitch + 6, 0.3 * sheets)]
        return thing("narcotics:pills", parts, "narcotic")
    n = int(rng.integers(30, 150))
    pos = [(_u(rng, -35, 35), _u(rng, -25, 25), _u(rng, -5, 5)) for _ in range(n)]
    first, rest = spread(pos)
    d = _u(rng, 7, 11)
    parts = [ball("narcotic", d, d, d * 0.45, first, copies=rest), block("polyethylene", 90, 70, 0.2, core=False)]
    return thing("narcotics:pills", parts, "narcotic")


def liquid(rng: np.random.Generator) -> Thing:
    """Dissolved drugs in a bottle: full to the neck with no air gap, sealed in an inner pouch and taped."""
    host = household.bottle(rng)
    parts: list[Piece] = as_carrier([p for p in host.parts if getattr(p, "material", "") != "water"])
    length, d = host.half[0] * 2, host.half[1] * 2
    parts.append(cyl("narcotic", d - 8, length * 0.75, (-length * 0.08, 0, 0), "x"))
    parts += as_carrier(shell("polyethylene", length * 0.85, d + 4, d + 4, 1.2))
    return thing("narcotics:liquid", parts, "narcotic", poses=host.poses)


def _concealed(rng: np.random.Generator, variant: str, host: Thing, core: list[Piece]) -> Thing:
    return thing(f"narcotics:{variant}", [*as_carrier(host.parts), *core], "narcotic", poses=host.poses)


def in_cosmetics(rng: np.random.Generator) -> Thing:
    """Powder in a bottle instead of its liquid (the bottle is the carrier)."""
    host = household.bottle(rng)
    length, d = host.half[0] * 2, host.half[1] * 2
    return _concealed(rng, "in_cosmetics", host, [cyl("narcotic", d * 0.8, length * 0.6, (0, 0, 0), "x")])


def in_food(rng: np.random.Generator) -> Thing:
    """A block of powder inside a food pack."""
    host = household.food_pack(rng)
    w, h, t = (2 * v for v in host.half)
    return _concealed(rng, "in_food", host, [block("narcotic", w * 0.7, h * 0.7, max(t * 0.5, 20), texture=("grain", 0.03))])


def _hollowed(host: Part, size: Vec3, offset: Vec3 = (0.0, 0.0, 0.0)) -> list[Piece]:
    """Powder where the host's own material was cut out: a cavity of the host's material (it removes what was
    there) filled with the same volume of narcotic, centred `offset` from the host part's centre. Concealment
    replaces material; it does not add a parcel's worth of powder on top of it (which made hidden drugs the
    densest thing in a book, easier to see than loose ones)."""
    at = (host.at[0] + offset[0], host.at[1] + offset[1], host.at[2] + offset[2])
    return [block(host.material, *size, at, host.rot, sign=-1.0, core=False),
            block("narcotic", *size, at, host.rot, texture=("grain", 0.03))]


def in_book_spine(rng: np.random.Generator) -> Thing:
    """Powder in a hollowed book: a compartment cut into the paper block next to the spine and filled (scenario
    new_concealment)."""
    host = household.book(rng)
    pages = host.parts[0]  # the paper block (w, h, t), centred
    assert isinstance(pages, Part) and pages.material == "paper"
    w, h, t = (2 * v for v in pages.solid.half)
    cut = (min(w * 0.45, 60.0), h * 0.85, t * _u(rng, 0.6, 0.85))
    return _concealed(rng, "in_book_spine", host, _hollowed(pages, cut, (-w * 0.25, 0.0, 0.0)))


def in_shoe_sole(rng: np.random.Generator) -> Thing:
    """Flat packs in both soles of a pair of shoes, each in a cavity cut into the rubber (scenario
    new_concealment)."""
    host = household.shoes(rng)
    soles = [p for p in host.parts if isinstance(p, Part) and p.material == "rubber"]
    core: list[Piece] = []
    for sole in soles:
        length, width, thick = (2 * v for v in sole.solid.half)
        core += _hollowed(sole, (length * 0.55, min(45.0, width * 0.6), min(20.0, thick * 0.7)))
    return _concealed(rng, "in_shoe_sole", host, core)


def in_tin(rng: np.random.Generator) -> Thing:
    """Held out: a sealed food tin holding powder instead of food."""
    d, h = _u(rng, 70, 110), _u(rng, 60, 120)
    return thing("narcotics:in_tin", [*as_carrier(tube("steel", d, 0.25, h, closed=True)),
                                      cyl("narcotic", d - 2, h * 0.95, texture=("grain", 0.03))], "narcotic",
                 poses=(0.5, 0.2, 0.3, 0.0))


def in_electronics(rng: np.random.Generator) -> Thing:
    """Held out: a speaker or charger housing with its insides replaced by packs of powder."""
    host = electronics.speaker(rng) if rng.random() < 0.5 else electronics.router(rng)
    shell_only = [p for p in host.parts if getattr(p, "material", "") in ("polyethylene", "steel")][:3]
    w, h, t = (2 * v for v in host.half)
    return thing("narcotics:in_electronics", [*as_carrier(shell_only),
                                              block("narcotic", w * 0.6, h * 0.6, t * 0.6)], "narcotic")


# ---- currency ----

def _notes(w: float, h: float, t: float, at: tuple[float, float, float], thread_x: float, strap: bool) -> list[Piece]:
    parts: list[Piece] = [block("paper", w, h, t, at),
                          block("aluminium", 1.2, h, t * 0.04, (at[0] + thread_x, at[1], at[2]))]  # security threads
    if strap:
        parts += [block("paper", 30, h + 2, t + 2, at, core=False), block("paper", 30, h, t, at, sign=-1.0, core=False)]
    return parts


def currency_bundle(rng: np.random.Generator) -> Thing:
    """Strapped bundles of notes (paper strap, film wrap), security threads in line."""
    n = int(rng.choice([1, 1, 2, 3, 4]))
    w, h = _u(rng, 120, 165), _u(rng, 60, 80)
    tx = w * _u(rng, -0.3, 0.3)
    parts: list[Piece] = []
    for i in range(n):
        parts += _notes(w, h, _u(rng, 10, 60), (0.0, (i - (n - 1) / 2) * (h + 3), 0.0), tx, True)
    if rng.random() < 0.5:
        parts.append(block("polyethylene", w + 4, n * (h + 3) + 4, 0.3, core=False))
    return thing("currency:bundle", parts, "paper", poses=(0.7, 0.2, 0.1, 0.0))


def loose_notes(rng: np.random.Generator) -> Thing:
    """Unstrapped notes, slightly fanned, often in an envelope."""
    w, h = _u(rng, 120, 165), _u(rng, 60, 80)
    layers = int(rng.integers(2, 6))
    tx = w * _u(rng, -0.3, 0.3)
    parts: list[Piece] = []
    for k in range(layers):
        parts += _notes(w, h, _u(rng, 2, 8), (_u(rng, -8, 8), _u(rng, -8, 8), k * 6.0), tx, False)
        parts[-2:] = moved(parts[-2:], rot=rot(az=_u(rng, -0.15, 0.15)))
    if rng.random() < 0.5:
        parts.append(block("paper", w + 40, h + 60, 0.25, core=False))
    return thing("currency:loose_notes", parts, "paper", poses=(0.85, 0.15, 0.0, 0.0))


def currency_roll(rng: np.random.Generator) -> Thing:
    """Held out: notes rolled tight and held by rubber bands, a few rolls."""
    n = int(rng.integers(1, 5))
    w = _u(rng, 60, 80)
    parts: list[Piece] = []
    for i in range(n):
        d = _u(rng, 25, 50)
        at = (0.0, i * 55.0, 0.0)
        parts += [cyl("paper", d, w, at, "x"), cyl("paper", 6, w, at, "x", sign=-1.0),
                  *tube("rubber", d + 3, 1.5, 6, (w * 0.25, i * 55.0, 0.0), "x", core=False)]
    return thing("currency:roll", parts, "paper")


def currency_in_book(rng: np.random.Generator) -> Thing:
    """Held out: notes laid between the pages of a book."""
    host = household.book(rng)
    w, h, t = (2 * v for v in host.half)
    core = _notes(min(w * 0.8, 150), min(h * 0.5, 75), max(t * 0.3, 8), (0, 0, 0), 20.0, False)
    return thing("currency:in_book", [*as_carrier(host.parts), *core], "paper", poses=host.poses)


# ---- lithium batteries ----

def loose_cells(rng: np.random.Generator) -> Thing:
    """Loose 18650/21700 cells, side by side or scattered."""
    kind = "18650" if rng.random() < 0.7 else "21700"
    n = int(rng.integers(1, 9))
    parts: list[Piece] = []
    if rng.random() < 0.5:  # side by side
        d = 19.0 if kind == "18650" else 21.5
        parts += cell(kind, (0.0, -(n - 1) / 2 * d, 0.0), "x", tuple((0.0, i * d, 0.0) for i in range(1, n)))
    else:
        for _ in range(n):
            parts += moved(cell(kind), (_u(rng, -40, 40), _u(rng, -40, 40), 0.0), rot(az=_u(rng, 0, 6.3)))
    return thing("lithium_battery:loose_cells", parts, "li_cell")


def cell_pack(rng: np.random.Generator) -> Thing:
    """A tool, e-bike or laptop pack: cells in rows and columns, nickel strips, a management board, shrink wrap."""
    kind = "18650" if rng.random() < 0.8 else "21700"
    d = 18.6 if kind == "18650" else 21.3
    nx, ny = int(rng.integers(1, 4)), int(rng.integers(2, 9))
    length = 65.0 if kind == "18650" else 70.0
    first, rest = spread([(i * (length + 2), j * d, 0.0) for i in range(nx) for j in range(ny)])
    parts: list[Piece] = [*cell(kind, first, "x", rest)]
    span_y = ny * d
    for i in range(nx + 1):
        parts.append(block("steel", 0.3, span_y, 8, (first[0] - length / 2 - 1 + i * (length + 2), first[1] + span_y / 2 - d / 2, 0)))
    parts += as_carrier(board(rng, 25, span_y * 0.6, (first[0] + nx * (length + 2) - length / 2 + 14, first[1] + span_y / 2, 0)))
    parts.append(block("polyethylene", nx * (length + 2) + 10, span_y + 4, d + 2, (first[0] + (nx - 1) * (length + 2) / 2, first[1] + span_y / 2 - d / 2, 0), core=False))
    return thing("lithium_battery:cell_pack", parts, "li_cell")


def power_bank(rng: np.random.Generator) -> Thing:
    """A power bank: a row of 18650 cells or a pouch cell, a board, a plastic or aluminium shell."""
    w, h = _u(rng, 60, 90), _u(rng, 95, 160)
    t = _u(rng, 14, 28)
    parts: list[Piece] = as_carrier([*shell("aluminium" if rng.random() < 0.4 else "polyethylene", h, w, t, 1.2)])
    if t > 21 and rng.random() < 0.7:
        n = max(int(w // 19), 1)
        parts += cell("18650", (-h * 0.1, -(n - 1) / 2 * 19.0, 0.0), "x", tuple((0.0, i * 19.0, 0.0) for i in range(1, n)))
    else:
        parts.append(block("li_cell", h * 0.75, w * 0.85, t * 0.6, (-h * 0.08, 0, 0)))
    parts += as_carrier(board(rng, h * 0.18, w * 0.8, (h * 0.38, 0, 0)))
    parts.append(screws(corners(h, w, 4), 1.5, 3))
    return thing("lithium_battery:power_bank", parts, "li_cell")


def pouch_cells(rng: np.random.Generator) -> Thing:
    """Held out: loose lithium-polymer pouches (RC or drone packs): flat foil cells with tabs and leads."""
    n = int(rng.integers(1, 4))
    parts: list[Piece] = []
    for i in range(n):
        w, h, t = _u(rng, 30, 55), _u(rng, 70, 140), _u(rng, 8, 25)
        at = (0.0, i * (w + 8), 0.0)
        parts += [block("li_cell", h, w, t, at), block("aluminium", 6, w * 0.6, 0.3, (h / 2 + 3, i * (w + 8), 0)),
                  polyline([(h / 2, i * (w + 8), 0), (h / 2 + 40, i * (w + 8) + 10, 0), (h / 2 + 70, i * (w + 8), 0)],
                           [("copper", 0.8), ("rubber", 2.0)])]
    return thing("lithium_battery:pouch_cells", parts, "li_cell")
