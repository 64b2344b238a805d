"""CLI commands of the serve area: `xscreen serve` and `xscreen demo` (the README's main job)."""

from __future__ import annotations

import secrets
import signal
from types import FrameType
from typing import Any

import typer

from cli.context import cli_actor, settings_of

DEMO_USERS = [("officer", "officer"), ("supervisor", "supervisor"), ("analyst", "analyst"), ("admin", "admin")]


scanners_app = typer.Typer(help="Tokens of scanner clients of the /v1 API (one scanner id per token).",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve_cmd)
    app.command("demo")(demo_cmd)
    app.add_typer(scanners_app, name="scanners")


@scanners_app.command("add")
def scanners_add(ctx: typer.Context, scanner_id: str = typer.Argument(..., help="The scanner's id (its inbox folder name).")) -> None:
    """Issue a token for a scanner; it is printed once (the store keeps only its hash)."""
    from serving.scanfile import valid_scanner_id
    from store.client import open_store
    from xscreen.errors import XscreenError

    if not valid_scanner_id(scanner_id):
        raise XscreenError(f"scanner id {scanner_id!r} is not valid (letters, digits, '.', '_', '-'; starting with a "
                           "letter or digit; at most 64 characters)", title="Bad scanner id")
    with open_store(settings_of(ctx)) as store:
        token = store.issue_scanner_token(scanner_id, actor=cli_actor())
    _say(f"token for scanner {scanner_id} (shown once; send it as 'Authorization: Bearer <token>'):\n{token}")


@scanners_app.command("revoke")
def scanners_revoke(ctx: typer.Context, which: str = typer.Argument(..., help="A scanner id (all its tokens), a token id or a token.")
                    ) -> None:
    """Revoke a scanner's tokens (or one token); the API refuses them within seconds."""
    from store.client import open_store

    with open_store(settings_of(ctx)) as store:
        count = store.revoke_token(which, actor=cli_actor())
    _say(f"revoked {count} token(s)")


@scanners_app.command("list")
def scanners_list(ctx: typer.Context, all_tokens: bool = typer.Option(False, "--all", help="Include revoked tokens.")) -> None:
    """Scanner tokens: id, scanner, created, last used, revoked (never the token itself)."""
    from store.client import open_store

    with open_store(settings_of(ctx)) as store:
        rows = store.list_tokens(kind="scanner", include_revoked=all_tokens)
    _say(f"{'token id':<14} {'scanner':<24} {'created':<20} {'last used':<20} revoked")
    for r in rows:
        used = f"{r.last_seen_at:%Y-%m-%d %H:%M:%S}" if r.last_seen_at else "-"
        revoked = f"{r.revoked_at:%Y-%m-%d %H:%M:%S}" if r.revoked_at else "-"
        _say(f"{r.token_id:<14} {r.scanner_id or '-':<24} {r.created_at:%Y-%m-%d %H:%M:%S}  {used:<20} {revoked}")


def serve_cmd(
    ctx: typer.Context,
    address: str | None = typer.Option(None, "--address", help="Ray cluster address; default: start a local instance."),
) -> None:
    """Start the store owner, Ray Serve (classifier + /v1 API) and the scanner-folder watcher until Ctrl-C."""

    _run(settings_of(ctx), address=address, demo=False)


def demo_cmd(
    ctx: typer.Context,
    no_app: bool = typer.Option(False, "--no-app", help="Do not start the Streamlit dashboard."),
    no_simulator: bool = typer.Option(False, "--no-simulator", help="Do not start the scanner simulator."),
) -> None:
    """Everything `serve` starts, plus the default model, demo users, the scanner simulator and the dashboard."""

    _run(settings_of(ctx), address=None, demo=True, app=not no_app, simulator=not no_simulator)


def _run(settings: Any, *, address: str | None, demo: bool, app: bool = True, simulator: bool = True) -> None:
    """Supervise the stack until SIGTERM or SIGINT (both stop it in order, at any point of the start-up too)."""
    import threading

    from serving.parts import preflight, start_simulator
    from serving.supervisor import Supervisor

    supervisor = Supervisor(settings, address=address, demo=demo, app=app)
    line = supervisor.take_over()  # a killed earlier run of this home: adopt its live children, or free its ports
    if line:
        _say(line)
    try:
        preflight(settings, app=demo and app, held=supervisor.held_ports())
    except Exception:
        supervisor.stop()  # adopted children: stopped in order rather than left to their orphan guards
        raise
    running, stopping = threading.Event(), threading.Event()
    previous = _install_signal_handlers(supervisor, running, stopping)
    sim_stop, sim_thread = threading.Event(), None
    try:
        supervisor.start(_say, prepare=(lambda store: _prepare_demo(supervisor)) if demo else None)
        if demo and simulator:
            sim_thread, sim_line = start_simulator(supervisor.settings, sim_stop)
            _say(sim_line)
        running.set()
        _say("running; Ctrl-C or SIGTERM stops everything in order (services that die are restarted)")
        supervisor.run()
        _say("stopping ...")
    except KeyboardInterrupt:
        _say("stopping ...")
    finally:
        stopping.set()  # from here on a second signal changes nothing: the stop runs to its end
        sim_stop.set()
        if sim_thread is not None:
            sim_thread.join(15)
        supervisor.stop()
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


def _install_signal_handlers(supervisor: Any, running: Any, stopping: Any) -> dict[int, Any]:
    """SIGTERM and SIGINT both stop everything in order. While running, the handler only asks the supervision
    loop to stop; during the start-up it also interrupts whatever is being waited for. This process never calls
    ray.init, so no Ray signal handler stands in the way (serving/supervisor.py)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        supervisor.request_stop()
        if not running.is_set() and not stopping.is_set():
            raise KeyboardInterrupt

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def _say(line: str) -> None:
    typer.echo(line)
