"""docs/DATA.md documents every material (with the code's numbers), palette, scenario, class and format."""

from __future__ import annotations

import re
from pathlib import Path

from xray.materials import MATERIALS
from xray.palettes import PALETTES
from xray.scenarios import SCENARIOS
from xray.threats import THREAT_CLASSES
from xray.writers import FORMATS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "DATA.md").read_text(encoding="utf-8")


def test_material_table_matches_the_code() -> None:
    for m in MATERIALS.values():
        row = re.search(rf"^\| {m.name} \| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", DOC, re.M)
        assert row, f"material {m.name} missing from docs/DATA.md"
        family, low, high, density, _ = row.groups()
        assert (family, float(low), float(high), float(density)) == (m.family, m.mass_att_low, m.mass_att_high,
                                                                     m.density), m.name


def test_every_palette_scenario_class_and_format_is_documented() -> None:
    for name in [*PALETTES, *SCENARIOS, *THREAT_CLASSES, *FORMATS]:
        assert f"`{name}`" in DOC, name
