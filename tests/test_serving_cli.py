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


def test_serve_on_a_fresh_home_registers_the_bundled_model(owner: Any, settings: Settings) -> None:
    from screening import registry
    from serving.runtime import ensure_champion
    from xscreen.errors import NotFoundError

    try:
        registry.resolve(settings, "champion")
        raise AssertionError("the fresh home already has a champion")
    except NotFoundError as err:
        assert "xscreen train" in str(err)  # what `xscreen serve` said before issue 12
    version = ensure_champion(settings)
    assert version is not None and registry.resolve(settings, "champion").version == version
    assert ensure_champion(settings) is None  # a champion exists: nothing to do


def test_predict_on_a_non_image_fails_fast_before_importing_torch(tmp_path: Any) -> None:
    import subprocess
    import sys

    notes = tmp_path / "notes.png"
    notes.write_text("not an image at all")
    probe = ("import sys\nfrom xscreen.cli import main\nsys.argv = ['xscreen', 'predict', sys.argv[1]]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code, 'torch' in sys.modules)\n")
    env = {"PATH": "/usr/bin:/bin", "XSCREEN_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", probe, str(notes)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert "exit 2 False" in done.stdout, (done.stdout, done.stderr)
    assert "not_image" in done.stderr or "not an image" in done.stderr


def test_scanners_add_list_revoke_through_the_cli(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from analytics.store import Store

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(XSCREEN_HOME=str(home), XSCREEN_LOG_LEVEL="WARNING", XSCREEN_NETWORK__STORE_PORT="1")

    def xscreen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xscreen.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120, cwd=tmp_path)

    added = xscreen("scanners", "add", "gate-3")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    listed = xscreen("scanners", "list")
    assert "gate-3" in listed.stdout and token not in listed.stdout  # never the token itself
    bad = xscreen("scanners", "add", "../../etc")
    assert bad.returncode == 2 and "not valid" in bad.stderr
    with Store.from_settings(load_settings(environ={}, home=home)) as store:
        assert store.resolve_token(token).scanner_id == "gate-3"
    revoked = xscreen("scanners", "revoke", "gate-3")
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
    with Store.from_settings(load_settings(environ={}, home=home)) as store:
        try:
            store.resolve_token(token)
            raise AssertionError("a revoked token still resolves")
        except Exception as err:  # noqa: BLE001
            assert type(err).__name__ == "AuthError"
