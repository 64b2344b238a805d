"""Shared fixtures: isolated settings, a real Store on a temporary file, and a real owner over HTTP.

- `settings`: load_settings(home=tmp_path, environ={}) with free ports, so nothing leaks from the developer's
  environment and two tests never share a port or a file.
- `now`: a fixed UTC time; `store`: Store opened on settings.db_path with clock=now (closed after).
- `owner_client`: the owner FastAPI app under uvicorn in a background thread on a free 127.0.0.1 port, yielding a
  StoreClient (server stopped and store closed after). `owner` gives (client, store) when a test needs both.
- Seed data with `from tests.seeding import seed_store`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from store.client import StoreClient
from store.engine import Store
from xscreen.settings import Settings, load_settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings rooted at `home` with free ports and no environment; overrides are top-level fields.

    The random audit is off (screening.audit_rate 0) unless a test turns it on: its draws are keyed on the
    home's random id, so a queue would otherwise hold a varying handful of audited cleared items."""
    network = {"host": "127.0.0.1", "api_port": free_port(), "store_port": free_port(), "app_port": free_port(),
               "metrics_port": free_port()}
    overrides["screening"] = {"audit_rate": 0.0, **overrides.get("screening", {})}
    return load_settings(environ={}, home=home, network=network, **overrides)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its production cost (64 MiB, 3 passes; ~0.2 s a hash or a check on 2 cores) would spend
    minutes of the suite on the hundreds of users tests add and sign in. In this process only, hashes are made
    at the library's lowest cost; a check reads the cost from the hash it is given, so nothing else changes.
    Processes a test starts (an owner, `xscreen serve`) keep the production cost, and
    test_store_users.py checks that cost."""
    from argon2 import PasswordHasher

    from store import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def store(settings: Settings, now: datetime) -> Iterator[Store]:
    with Store.from_settings(settings, clock=lambda: now) as s:
        yield s


class UvicornThread:
    """An ASGI app under uvicorn in a daemon thread on 127.0.0.1:`port`: `with` starts it and waits until it
    listens, and stops it."""

    def __init__(self, app: Any, port: int, name: str) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.thread.name} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class OwnerThread(UvicornThread):
    """The real owner app under uvicorn in a thread (the same code `xscreen store-owner` runs)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        from store.owner import create_app

        super().__init__(create_app(store, settings), settings.network.store_port, "owner-under-test")


@pytest.fixture
def owner(store: Store, settings: Settings) -> Iterator[tuple[StoreClient, Store]]:
    with OwnerThread(store, settings), StoreClient.from_settings(settings) as client:
        yield client, store


@pytest.fixture
def owner_client(owner: tuple[StoreClient, Store]) -> StoreClient:
    return owner[0]
