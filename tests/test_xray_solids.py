"""3D solids: chord lengths against closed forms at several poses, volume conservation, edge-on anti-aliasing."""

from __future__ import annotations

import numpy as np
import pytest

from xray.shapes import Wire, block, thing
from xray.solids import box, chord, cylinder, dome, ellipsoid, prism, rod, rot_x, rot_y, rot_z
from xray.stamp import stamp_thing

POSES = {"flat": np.eye(3), "tilted": rot_z(0.7) @ rot_x(0.45) @ rot_y(-0.3), "on edge": rot_x(np.pi / 2),
         "on end": rot_z(1.1) @ rot_y(np.pi / 2), "oblique": rot_z(2.0) @ rot_x(1.2) @ rot_y(0.4)}
SOLIDS = {
    "box": (box(30, 20, 5), 8 * 30 * 20 * 5),
    "cylinder": (cylinder(12, 25), np.pi * 12**2 * 50),
    "rod": (rod(6, 30), np.pi * 6**2 * 60),
    "ellipsoid": (ellipsoid(30, 12, 8), 4 / 3 * np.pi * 30 * 12 * 8),
    "dome": (dome(20, 15, 10), 2 / 3 * np.pi * 20 * 15 * 10),
    "prism": (prism([(-30, -10), (30, -10), (0, 20)], 1.5), 60 * 30 / 2 * 3),
}


def _point(solid: object, q: np.ndarray, x: float, y: float) -> float:
    return float(chord(solid, q, np.array([x], np.float32), np.array([y], np.float32), 0.01)[0, 0])  # type: ignore[arg-type]


@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize("name", SOLIDS)
def test_projected_volume_equals_the_solid_volume_at_every_pose(name: str, pose: str) -> None:
    solid, volume = SOLIDS[name]
    px = 0.25  # mm per pixel
    grid = (np.arange(-200, 201, dtype=np.float32)) * px
    thickness = chord(solid, POSES[pose], grid, grid, px)
    assert thickness.min() >= 0.0
    assert float(thickness.sum()) * px * px == pytest.approx(volume, rel=0.004)


@pytest.mark.parametrize("tilt", [0.0, 0.2, 0.7, 1.3])
def test_box_tilted_about_x_has_the_slab_chord_at_its_centre(tilt: float) -> None:
    # a 60 x 40 x 10 mm box tilted by `tilt`: the central ray crosses min(10 / cos, 40 / sin) mm
    expected = min(10 / np.cos(tilt), 40 / np.sin(tilt)) if tilt else 10.0
    assert _point(box(30, 20, 5), rot_x(tilt), 0.0, 0.0) == pytest.approx(expected, rel=1e-5)


def test_sphere_chord_is_two_root_r2_minus_d2_in_any_pose() -> None:
    for q in POSES.values():
        for d in (0.0, 3.0, 6.0, 9.5):
            assert _point(ellipsoid(10, 10, 10), q, d * 0.6, d * 0.8) == pytest.approx(2 * np.sqrt(100 - d * d), abs=1e-3)


@pytest.mark.parametrize("phi", [0.0, 0.3, 1.0])
def test_rod_tilted_out_of_the_plane_lengthens_every_chord_by_one_over_cos(phi: float) -> None:
    # a rod of radius 5 along x, raised by phi about y: at distance 3 mm from its axis the chord is 2*4/cos(phi)
    q = rot_y(phi)
    assert _point(rod(5, 40), q, 0.0, 0.0) == pytest.approx(10 / np.cos(phi), rel=1e-5)
    assert _point(rod(5, 40), q, 0.0, 3.0) == pytest.approx(8 / np.cos(phi), rel=1e-5)


def test_coin_face_on_is_a_disc_and_on_edge_is_a_thin_dense_bar() -> None:
    coin = cylinder(12.0, 1.0)  # 24 mm across, 2 mm thick
    px = 0.5
    grid = np.arange(-40, 41, dtype=np.float32) * px
    face = chord(coin, np.eye(3), grid, grid, px)
    edge = chord(coin, rot_x(np.pi / 2), grid, grid, px)
    assert face.max() == pytest.approx(2.0, rel=1e-4)
    assert ((face > 1.0).sum() * px * px) == pytest.approx(np.pi * 144, rel=0.03)  # area of the disc
    assert edge.max() == pytest.approx(24.0, rel=0.01)  # the chord across the coin's diameter
    assert (edge.max(axis=1) > 0.5).sum() <= 6  # 2 mm thick: a bar about 4 pixels wide plus its edges


def test_knife_blade_edge_on_keeps_its_mass_in_a_sub_pixel_line() -> None:
    blade = prism([(0, -10), (100, -10), (100, 10), (0, 10)], 1.0)  # a 2 mm plate seen along its flat
    px = 1.2
    grid = np.arange(-60, 61, dtype=np.float32) * px
    edge = chord(blade, rot_x(np.pi / 2), grid + np.float32(50), grid, px)
    assert float(edge.sum()) * px * px == pytest.approx(100 * 20 * 2, rel=0.01)
    assert (edge.max(axis=1) > 0).sum() <= 3  # 2 mm = 1.7 pixels: at most three rows touched


def test_wire_splat_conserves_the_wire_volume() -> None:
    pts = np.array([[-40.0, -10.0, 0.0], [0.0, 15.0, 10.0], [40.0, 0.0, -5.0]])
    wire = thing("wire", [Wire(pts, (("copper", 0.8), ("polyethylene", 2.0)))], "copper")
    acc = np.zeros((2, 160, 160), np.float32)
    ppm = 1.5
    hit = stamp_thing(acc, wire, np.eye(3), 80, 80, ppm, np.random.default_rng(0))
    assert hit is not None
    length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
    from xray.materials import material

    cu, pe = material("copper"), material("polyethylene")
    expected = length * np.pi * (0.8**2 * cu.mu_high + (2.0**2 - 0.8**2) * pe.mu_high)
    assert float(acc[0].sum()) / ppm**2 == pytest.approx(expected, rel=0.01)


def test_a_cavity_subtracts_and_a_closed_shell_conserves_its_wall_volume() -> None:
    from xray.shapes import shell

    can = thing("can", shell("aluminium", 60, 40, 30, 2.0), "aluminium")
    acc = np.zeros((2, 200, 200), np.float32)
    ppm = 2.0
    stamp_thing(acc, can, rot_x(0.4) @ rot_z(0.3), 100, 100, ppm, np.random.default_rng(0))
    from xray.materials import material

    walls = 60 * 40 * 30 - 56 * 36 * 26
    assert float(acc[0].sum()) / ppm**2 / material("aluminium").mu_high == pytest.approx(walls, rel=0.01)
    assert acc[0].min() >= -1e-5


def test_object_box_covers_every_part_that_lands() -> None:
    parts = [block("steel", 40, 10, 3, (-30, 0, 0)), block("paper", 20, 20, 5, (40, 25, 0))]
    obj = thing("two", parts, "steel")
    acc = np.zeros((2, 120, 160), np.float32)
    hit = stamp_thing(acc, obj, rot_z(0.5), 80, 60, 1.0, np.random.default_rng(0))
    assert hit is not None
    (x0, y0, x1, y1), mask = hit
    inside = np.zeros_like(acc[0], dtype=bool)
    inside[y0:y1, x0:x1] = True
    assert (acc[0][~inside] <= 0.002).all() and mask.shape == (y1 - y0, x1 - x0)
