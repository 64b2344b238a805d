"""Every setting is documented: a description on each field, and docs/SETTINGS.md equal to the generated text."""

from __future__ import annotations

from pathlib import Path

from cli.config import settings_markdown
from xscreen.settings import iter_setting_docs

SETTINGS_MD = Path(__file__).resolve().parents[1] / "docs" / "SETTINGS.md"


def test_every_setting_has_a_description() -> None:
    missing = [name for name, _, description in iter_setting_docs() if not description.strip()]
    assert missing == [], f"settings without a description: {missing}"


def test_settings_doc_is_up_to_date() -> None:
    assert SETTINGS_MD.read_text().rstrip("\n") == settings_markdown().rstrip("\n"), (
        "docs/SETTINGS.md is out of date: run `.venv/bin/xscreen config --docs > docs/SETTINGS.md`")
