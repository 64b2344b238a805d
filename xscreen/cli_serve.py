"""CLI commands of the serve area (see xscreen/cli.py for how modules register)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
