"""What every command gets from the root of the `xscreen` command line: the settings, built once per invocation at
this edge and carried in typer's context (never a global or a class attribute), and the name the CLI acts under."""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import typer

from xscreen.settings import Settings, load_settings


@dataclass
class Edge:
    """The root options of one invocation; `settings` are built on first use (`xscreen --help` and
    `xscreen config --docs` never need them)."""

    config_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
            logging.basicConfig(level=self._settings.log_level,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings of this invocation (from the root command's context)."""
    edge = ctx.find_root().obj
    if not isinstance(edge, Edge):  # a command invoked without the root callback (tests calling it directly)
        edge = ctx.find_root().obj = Edge()
    return edge.settings


def cli_actor() -> str:
    """The name CLI commands act under in the audit log: `cli:<OS user>` (never a person's username: a person
    acts through a session in the app or /v1)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        user = str(os.getuid())
    return f"cli:{user}"
