"""`xscreen demo` users: random passwords shown once, existing users left alone; settings reach child processes."""

from __future__ import annotations

import re
from typing import Any

from serving.runtime import absolute_settings, settings_env
from xscreen.cli_serve import DEMO_USERS, create_demo_users
from xscreen.settings import Settings, load_settings


def test_demo_users_get_distinct_random_passwords_once(store: Any) -> None:
    lines = create_demo_users(store)
    passwords = [re.search(r"password: (\S+)", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert len(set(passwords)) == len(DEMO_USERS) and all(len(p) >= 16 for p in passwords)
    for (username, role), password in zip(DEMO_USERS, passwords, strict=True):
        assert store.authenticate(username, password).role == role
    again = create_demo_users(store)
    assert all("exists already" in line for line in again)
    assert store.authenticate("officer", passwords[0]).username == "officer"  # unchanged


def test_settings_travel_to_child_processes_through_the_environment(settings: Settings) -> None:
    settings.serving.scanner_ids = ["a", "b"]
    settings.serving.batch_wait_s = 0.02
    env = settings_env(absolute_settings(settings))
    rebuilt = load_settings(environ=env)
    assert rebuilt.serving.scanner_ids == ["a", "b"] and rebuilt.serving.batch_wait_s == 0.02
    assert rebuilt.network == settings.network
    assert rebuilt.db_path == settings.db_path.resolve() and rebuilt.db_path.is_absolute()
