"""CLI commands of the serve area: `xscreen serve` and `xscreen demo` (the README's main job)."""

from __future__ import annotations

import logging
import secrets
import signal
import time
from types import FrameType
from typing import Any

import typer

DEMO_USERS = [("officer", "officer"), ("supervisor", "supervisor"), ("analyst", "analyst"), ("admin", "admin")]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve_cmd)
    app.command("demo")(demo_cmd)


def serve_cmd(
    address: str | None = typer.Option(None, "--address", help="Ray cluster address; default: start a local instance."),
) -> None:
    """Start the store owner, Ray Serve (classifier + /v1 API) and the scanner-folder watcher until Ctrl-C."""
    from xscreen.cli import State

    _run(State.settings(), address=address, demo=False)


def demo_cmd(
    no_app: bool = typer.Option(False, "--no-app", help="Do not start the Streamlit dashboard."),
    no_simulator: bool = typer.Option(False, "--no-simulator", help="Do not start the scanner simulator."),
) -> None:
    """Everything `serve` starts, plus the default model, demo users, the scanner simulator and the dashboard."""
    from xscreen.cli import State

    _run(State.settings(), address=None, demo=True, app=not no_app, simulator=not no_simulator)


def _run(settings: Any, *, address: str | None, demo: bool, app: bool = True, simulator: bool = True) -> None:
    from serving.runtime import Stack, preflight

    preflight(settings, app=demo and app)
    stack = Stack(settings, address=address)
    previous = _install_signal_handlers()
    try:
        _say(stack.start_owner())
        if demo:
            _prepare_demo(stack)
        _say("starting Ray Serve (first start takes 10-20 s) ...")
        _say(stack.start_serving())
        _install_signal_handlers()  # ray.init replaced our SIGTERM handler with one that just exits
        _say(stack.start_watcher())
        if demo:
            if simulator:
                _say(stack.start_simulator())
            if app:
                _say(stack.start_app())
        _say("running; press Ctrl-C to stop")
        _wait(stack)
    except KeyboardInterrupt:
        _say("stopping ...")
    finally:
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _say("stopped")


def _prepare_demo(stack: Any) -> None:
    """Default model (the bundled one, or trained here when the settings ask for another network) and the four demo
    users with random passwords."""
    from screening.train import ensure_default_model

    _say("checking the default model (registers the bundled one, or trains one when the model settings ask for"
         " another network: several minutes) ...")
    record = ensure_default_model(stack.settings)
    _say(f"model            {record.version} (champion)")
    for line in create_demo_users(stack.store):
        _say(line)


def create_demo_users(store: Any) -> list[str]:
    """Create each missing demo user with a fresh random password; never a default or a repeated one."""
    from xscreen.errors import NotFoundError

    lines = []
    for username, role in DEMO_USERS:
        try:
            store.get_user(username)
            lines.append(f"user             {username} ({role}) exists already; password unchanged")
            continue
        except NotFoundError:
            pass
        password = _random_password()
        store.add_user(username, password, role, actor="demo")
        lines.append(f"user             {username} ({role}) password: {password}   (shown once)")
    return lines


def _random_password() -> str:
    """16 URL-safe random characters (96 bits), never starting with '-' (awkward on a command line)."""
    while True:
        password = secrets.token_urlsafe(12)
        if not password.startswith("-"):
            return password


def _wait(stack: Any) -> None:
    while True:
        time.sleep(1.0)
        dead = stack.check_children()
        if dead:
            logging.getLogger(__name__).error("%s exited unexpectedly; stopping", dead)
            raise KeyboardInterrupt


def _install_signal_handlers() -> dict[int, Any]:
    """SIGTERM and SIGINT both stop the stack in order (SIGINT is explicit: a background start may ignore it)."""
    return {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(line: str) -> None:
    typer.echo(line)
