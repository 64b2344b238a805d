"""The `xscreen` console script: one typer app; each area registers its commands from its own module.

The root callback carries the --config option in typer's context (cli/context.py), and each command
builds the settings from it once. Heavy libraries (torch, ray, streamlit) are imported inside the commands, so
`xscreen --help` is fast. Every XscreenError becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli import adapt, admin, config, data, database, model, monitor, serve
from cli.context import Edge
from xscreen.errors import XscreenError

app = typer.Typer(
    name="xscreen",
    help="AI primary screening of international mail on X-ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config_file: Path | None = typer.Option(
        None, "--config", help="TOML settings file (default: $XSCREEN_CONFIG or ./xscreen.toml)."
    ),
) -> None:
    """AI primary screening of international mail on X-ray."""
    ctx.obj = Edge(config_file)


# Each area adds its own commands; the order is the order in --help.
for area in (config, database, admin, data, model, adapt, monitor, serve):
    area.register(app)


def main() -> None:
    """Entry point: click handles usage errors; an XscreenError is one line on stderr and exit 2."""
    try:
        app()
    except XscreenError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
