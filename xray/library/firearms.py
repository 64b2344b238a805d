"""Firearms as articulated parts: self-loading pistols (slide, barrel, recoil spring, frame, trigger guard, grip
with a magazine of cartridges), revolvers (cylinder with chambers, loaded or not) and parts alone.

Object frame: x along the barrel (muzzle at +x), y up (the grip hangs to -y), z across the gun (it lies on its
side). The pocket pistol and the snub revolver are held out of training (xray.threats)."""

from __future__ import annotations

import numpy as np

from xray.library.common import CALIBRES, cartridge, spring
from xray.shapes import Piece, Thing, bar, block, cyl, moved, plate, rot, thing, tube, unrolled

GUN_POSES = (0.6, 0.3, 0.07, 0.03)


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _slide(length: float, height: float, width: float, top: float) -> list[Piece]:
    """A steel slide: a hollow block open below, an ejection port, sights."""
    return [block("steel", length, height, width, (0, top, 0)),
            block("steel", length - 14, height * 0.55, width - 7, (-3, top - height * 0.2, 0), sign=-1.0),
            block("steel", 30, 8, width * 0.4, (-length * 0.1, top + height / 2 - 4, width * 0.25), sign=-1.0),
            block("steel", 6, 5, 4, (length / 2 - 8, top + height / 2 + 2.5, 0)),
            block("steel", 8, 5, width * 0.6, (-length / 2 + 8, top + height / 2 + 2.5, 0))]


def _guard(mat: str, x: float, y: float, w: float, h: float, thick: float) -> list[Piece]:
    """A trigger guard: a loop, outer outline minus inner outline."""
    outer = [(-w / 2, h / 2), (w / 2, h / 2), (w / 2 - 4, -h / 2), (-w / 2 + 10, -h / 2)]
    inner = [(-w / 2 + 5, h / 2), (w / 2 - 5, h / 2), (w / 2 - 8, -h / 2 + 5), (-w / 2 + 13, -h / 2 + 5)]
    return [plate(mat, outer, thick, (x, y, 0)), plate(mat, inner, thick, (x, y, 0), sign=-1.0)]


def _magazine(rng: np.random.Generator, length: float, calibre: str, loaded: bool, double: bool) -> list[Piece]:
    """A magazine hanging along -y from its top at the origin: a sheet-steel box, a base plate, its spring and the
    stacked rounds (a zigzag across the gun when double-stacked), noses forward (+x)."""
    d, case_len, bullet_len = CALIBRES[calibre]
    round_len = case_len + bullet_len * 0.7
    mx, mz = round_len + 4, (d * 1.6 if double else d * 1.05) + 2
    parts: list[Piece] = [block("steel", mx, length, mz, (0, -length / 2, 0)),
                          block("steel", mx - 1.6, length - 4, mz - 1.6, (0, -length / 2 + 1, 0), sign=-1.0),
                          block("polyethylene" if rng.random() < 0.5 else "steel", mx + 4, 5, mz + 4, (0, -length - 2, 0))]
    pitch = d * (0.87 if double else 1.0)
    n = int((length - 14) / pitch) if loaded else 0
    if n > 0:
        zz = d * 0.3 if double else 0.0
        rounds = [(0.0, -6 - k * pitch, zz * (1 if k % 2 else -1)) for k in range(n)]
        rest = tuple((r[0], r[1] - rounds[0][1], r[2] - rounds[0][2]) for r in rounds[1:])
        parts += cartridge(calibre, rounds[0], copies=rest)
    spring_len = length - 10 - n * pitch
    if spring_len > 10:
        parts.append(moved([spring(spring_len, min(mx, mz) * 0.7, 1.0, max(int(spring_len / 6), 2))],
                           (0, -length + spring_len / 2 + 2, 0), rot(az=np.pi / 2))[0])
    return parts


def _pistol(rng: np.random.Generator, name: str, scale: float, frame_mat: str, hammer: bool, double: bool) -> Thing:
    length = _u(rng, 170, 215) * scale
    slide_h = _u(rng, 28, 34) * scale
    width = _u(rng, 22, 30) * max(scale, 0.85)
    grip_len = _u(rng, 95, 125) * scale
    angle = np.deg2rad(_u(rng, 12, 24))
    calibre = str(rng.choice(["9mm", "9mm", "45acp", "380"] if scale > 0.8 else ["380", "22lr"]))
    top = 0.0
    parts: list[Piece] = _slide(length, slide_h, width, top)
    bore = CALIBRES[calibre][0]
    parts += tube("steel", bore + 5, 2.4, length * 0.88, (length * 0.04, top - 2, 0), "x")
    parts.append(block("steel", 22, bore + 9, bore + 9, (-length * 0.1, top - 2, 0)))  # chamber block
    parts.append(spring(length * 0.5, 9, 1.1, 10, (length * 0.18, top - slide_h * 0.55, 0)))
    parts.append(bar("steel", 4, length * 0.5, (length * 0.18, top - slide_h * 0.55, 0)))
    # frame: dust cover under the barrel, rails, the grip outline (hollow for the magazine) and the guard
    fy = top - slide_h / 2 - 7
    parts.append(block(frame_mat, length * 0.75, 14, width - 2, (-length * 0.05, fy, 0)))
    if frame_mat == "polyethylene":
        parts.append(block("steel", 20, 4, width - 4, (length * 0.2, fy + 5, 0), copies=((-length * 0.55, 0.0, 0.0),)))
    gx = -length / 2 + 30 * scale
    grip_w = _u(rng, 30, 36) * scale
    r = rot(az=-angle)
    outline = [(-grip_w / 2, 0), (grip_w / 2, 0), (grip_w / 2 + 2, -grip_len), (-grip_w / 2 - 3, -grip_len)]
    well = grip_w / 2 - 3  # the magazine well inside the grip's walls
    parts += moved([plate(frame_mat, outline, width + 2, texture=("grain", 0.1) if frame_mat == "polyethylene" else None),
                    plate(frame_mat, [(-well, 0), (well, 0), (well, -grip_len), (-well, -grip_len)], width - 4,
                          sign=-1.0)], (gx, fy, 0), r)
    parts += moved(_magazine(rng, grip_len, calibre, rng.random() < 0.7, double), (gx, fy, 0), r)
    parts += _guard(frame_mat, gx + grip_w * 0.5 + 22 * scale, fy - 16 * scale, 44 * scale, 26 * scale, 8)
    parts.append(plate("steel" if rng.random() < 0.6 else frame_mat, [(0, 0), (4, 0), (2, -16), (-2, -16)], 6,
                       (gx + grip_w * 0.5 + 16 * scale, fy - 6, 0)))  # trigger
    parts.append(cyl("steel", 3, width + 2, (gx + grip_w * 0.6, fy, 0), copies=((28.0 * scale, 0.0, 0.0),)))  # pins
    if hammer:
        parts.append(plate("steel", [(0, 0), (10, 0), (6, 16), (-4, 14)], 7, (-length / 2 - 2, top - 4, 0)))
    else:
        parts.append(bar("steel", 4, 30, (-length / 2 + 20, top + 2, 0)))  # striker
    return thing(f"firearm:{name}", parts, "steel", poses=GUN_POSES)


def pistol_service(rng: np.random.Generator) -> Thing:
    """A full-size pistol: polymer or steel frame, hammer if steel, double-stack magazine."""
    frame = "polyethylene" if rng.random() < 0.6 else "steel"
    return _pistol(rng, "pistol_service", _u(rng, 0.95, 1.08), frame, frame == "steel", True)


def pistol_compact(rng: np.random.Generator) -> Thing:
    """A compact pistol: shorter slide and grip, polymer or aluminium frame."""
    frame = "polyethylene" if rng.random() < 0.7 else "aluminium"
    return _pistol(rng, "pistol_compact", _u(rng, 0.8, 0.92), frame, rng.random() < 0.3, True)


def pistol_pocket(rng: np.random.Generator) -> Thing:
    """Held out: a small single-stack pistol with an aluminium or steel frame and an exposed hammer."""
    return _pistol(rng, "pistol_pocket", _u(rng, 0.62, 0.74), "aluminium" if rng.random() < 0.5 else "steel", True,
                   False)


def _revolver(rng: np.random.Generator, name: str, barrel: float, shots: int) -> Thing:
    calibre = "38spl"
    cyl_d, cyl_len = _u(rng, 36, 42) * (shots / 6) ** 0.3, _u(rng, 38, 42)
    loaded = rng.random() < 0.7
    parts: list[Piece] = [cyl("steel", cyl_d, cyl_len, (0, 0, 0), "x")]
    pitch_r = cyl_d * 0.3
    chambers = [(0.0, pitch_r * np.cos(2 * np.pi * k / shots), pitch_r * np.sin(2 * np.pi * k / shots)) for k in range(shots)]
    first, rest = chambers[0], tuple((c[0] - chambers[0][0], c[1] - chambers[0][1], c[2] - chambers[0][2]) for c in chambers[1:])
    parts += unrolled(cyl("steel", 10.0, cyl_len, first, "x", sign=-1.0, copies=rest))
    if loaded:
        n = shots if rng.random() < 0.7 else int(rng.integers(1, shots))
        parts += cartridge(calibre, (-2.0, first[1], first[2]), copies=rest[: n - 1])
    parts += tube("steel", 15, 3.5, barrel, (cyl_len / 2 + barrel / 2 + 2, cyl_d * 0.25, 0), "x")
    parts.append(block("steel", barrel * 0.9, 10, 10, (cyl_len / 2 + barrel / 2, cyl_d * 0.25 - 10, 0)))  # underlug
    parts.append(plate("steel", [(-cyl_len / 2 - 25, -cyl_d * 0.5), (cyl_len / 2 + 6, -cyl_d * 0.5),
                                 (cyl_len / 2 + 6, -cyl_d * 0.5 - 10), (-cyl_len / 2 - 30, -cyl_d * 0.5 - 14)], 14))
    parts.append(plate("steel", [(-cyl_len / 2 - 4, cyl_d * 0.5 + 6), (cyl_len / 2 + 6, cyl_d * 0.5 + 6),
                                 (cyl_len / 2 + 6, cyl_d * 0.5 - 2), (-cyl_len / 2 - 8, cyl_d * 0.5 - 2)], 14))  # top strap
    parts.append(block("steel", 16, cyl_d + 10, 14, (-cyl_len / 2 - 10, 0, 0)))  # recoil shield
    parts.append(plate("steel", [(0, 0), (12, 0), (8, 20), (-4, 18)], 7, (-cyl_len / 2 - 20, cyl_d * 0.4, 0)))  # hammer
    grip_len = _u(rng, 70, 110)
    gmat = "wood" if rng.random() < 0.5 else "rubber"
    r = rot(az=-np.deg2rad(_u(rng, 18, 30)))
    parts += moved([plate(gmat, [(-17, 0), (17, 0), (20, -grip_len), (-17, -grip_len)], 34),
                    plate("steel", [(-6, 0), (6, 0), (6, -grip_len + 8), (-6, -grip_len + 8)], 10)],
                   (-cyl_len / 2 - 25, -cyl_d * 0.5, 0), r)
    parts += _guard("steel", -cyl_len / 2 + 4, -cyl_d * 0.5 - 22, 36, 24, 7)
    parts.append(bar("steel", 5, barrel * 0.8, (cyl_len / 2 + barrel * 0.4, cyl_d * 0.25 - 12, 0)))  # ejector rod
    return thing(f"firearm:{name}", parts, "steel", poses=GUN_POSES)


def revolver(rng: np.random.Generator) -> Thing:
    """A six-shot revolver with a 75-160 mm barrel, loaded or not."""
    return _revolver(rng, "revolver", _u(rng, 75, 160), 6)


def revolver_snub(rng: np.random.Generator) -> Thing:
    """Held out: a five-shot snub-nose revolver."""
    return _revolver(rng, "revolver_snub", _u(rng, 40, 55), 5)


def gun_part(rng: np.random.Generator) -> Thing:
    """One part alone: a slide with its barrel, a bare barrel, a frame with its guard, or a (loaded) magazine."""
    kind = str(rng.choice(["slide", "barrel", "frame", "magazine"]))
    length = _u(rng, 150, 210)
    parts: list[Piece]
    if kind == "slide":
        parts = [*_slide(length, 30, 26, 0.0), *tube("steel", 14, 2.4, length * 0.88, (length * 0.04, -2, 0), "x")]
    elif kind == "barrel":
        parts = [*tube("steel", 14, 2.6, length * 0.7, (0, 0, 0), "x"), block("steel", 24, 20, 20, (-length * 0.35, 0, 0))]
    elif kind == "frame":
        mat = "polyethylene" if rng.random() < 0.5 else "steel"
        parts = [block(mat, length * 0.8, 14, 24), *moved([plate(mat, [(-16, 0), (16, 0), (18, -110), (-18, -110)], 30),
                                                            plate(mat, [(-11, 0), (11, 0), (11, -110), (-11, -110)], 24, sign=-1.0)],
                                                           (-length * 0.3, -7, 0), rot(az=-0.3)),
                 *_guard(mat, -length * 0.02, -24, 44, 26, 8), block("steel", 20, 4, 20, (length * 0.2, 5, 0))]
    else:
        parts = _magazine(rng, _u(rng, 90, 130), "9mm", rng.random() < 0.8, True)
    return thing("firearm:gun_part", parts, "steel", poses=GUN_POSES)
