"""Settings: layered sources, unknown keys refused, and every bad value is one clear line naming the setting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from xscreen.errors import ConfigError
from xscreen.settings import check_port_free, ensure_home, load_settings


def test_paths_derive_from_home_and_layers_override_in_order(tmp_path: Path) -> None:
    toml = tmp_path / "xscreen.toml"
    toml.write_text("[store]\nwrite_batch_max = 10\nsql_row_limit = 20\n")
    s = load_settings(toml, environ={"XSCREEN_HOME": str(tmp_path / "h"), "XSCREEN_STORE__SQL_ROW_LIMIT": "30"},
                      log_level="DEBUG")
    assert s.db_path == tmp_path / "h" / "xscreen.duckdb" and s.spool_dir == tmp_path / "h" / "spool"
    assert (s.store.write_batch_max, s.store.sql_row_limit, s.log_level) == (10, 30, "DEBUG")


def test_unknown_key_in_toml_is_named(tmp_path: Path) -> None:
    toml = tmp_path / "xscreen.toml"
    toml.write_text("[store]\nwrite_batch_maximum = 10\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'store.write_batch_maximum'"):
        load_settings(toml, environ={})


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="XSCREEN_STORE__WRITE_BATCH_MAXIMUM"):
        load_settings(environ={"XSCREEN_STORE__WRITE_BATCH_MAXIMUM": "3"})


def test_the_loopback_variable_serving_sets_for_ray_is_not_an_unknown_setting() -> None:
    """start_ray leaves XSCREEN_RAY_BIND_HOST set in its process; a CLI command run there later (one pytest
    process: `make test`) was refused with "unknown setting in environment variable XSCREEN_RAY_BIND_HOST"."""
    from serving.ray_loopback import BIND_ENV

    assert load_settings(environ={BIND_ENV: "127.0.0.1"}).network.host == "127.0.0.1"


def test_wrong_type_names_the_setting_and_the_value() -> None:
    with pytest.raises(ConfigError, match=r"setting 'store.write_batch_max'.*'lots'"):
        load_settings(environ={"XSCREEN_STORE__WRITE_BATCH_MAX": "lots"})


def test_unwritable_path_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    s = load_settings(environ={}, home=tmp_path / "h", paths={"spool": blocker / "spool"})
    with pytest.raises(ConfigError, match=r"setting 'paths.spool'.*not writable"):
        ensure_home(s)


def test_port_in_use_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = load_settings(environ={}, home=tmp_path, network={"store_port": port})
        with pytest.raises(ConfigError, match=rf"setting 'network.store_port': port {port}.*in use"):
            check_port_free(s, "store_port")


def _xscreen(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          env={**clean, **env}, cwd=tmp_path, timeout=60)


def test_config_prints_effective_settings_with_environment_override(tmp_path: Path) -> None:
    out = _xscreen(tmp_path, "config", XSCREEN_STORE__WRITE_BATCH_MAX="77", XSCREEN_HOME=str(tmp_path / "h"))
    assert out.returncode == 0, out.stderr
    assert "store.write_batch_max = 77" in out.stdout.splitlines()
    assert f"paths.db = '{tmp_path / 'h' / 'xscreen.duckdb'}'" in out.stdout


def test_bad_setting_at_the_cli_is_one_line_without_traceback(tmp_path: Path) -> None:
    out = _xscreen(tmp_path, "config", XSCREEN_STORE__SQL_TIMEOUT_S="-1")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "setting 'store.sql_timeout_s'" in out.stderr


def test_port_in_use_at_store_owner_start_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = _xscreen(tmp_path, "store-owner", XSCREEN_HOME=str(tmp_path / "h"),
                       XSCREEN_NETWORK__STORE_PORT=str(port))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: setting 'network.store_port': port {port} on 127.0.0.1 is already in use")


class _WatchedEnviron(dict):  # type: ignore[type-arg]
    """os.environ that records every change (another thread reading it mid-change would see the wrong one)."""

    def __init__(self, initial: dict[str, str]) -> None:
        super().__init__(initial)
        self.changes: list[str] = []

    def __setitem__(self, key: str, value: str) -> None:
        self.changes.append(f"set {key}")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.changes.append(f"del {key}")
        super().__delitem__(key)

    def clear(self) -> None:
        self.changes.append("clear")
        super().clear()

    def update(self, *args: object, **kw: object) -> None:  # type: ignore[override]
        self.changes.append("update")
        super().update(*args, **kw)  # type: ignore[arg-type]


def test_an_explicit_environment_is_read_without_touching_the_process_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    watched = _WatchedEnviron({"XSCREEN_LOG_LEVEL": "ERROR", "PATH": os.environ.get("PATH", "")})
    monkeypatch.setattr(os, "environ", watched)
    s = load_settings(environ={"XSCREEN_LOG_LEVEL": "DEBUG", "XSCREEN_SERVING__SCANNER_IDS": '["a", "b"]'},
                      home=tmp_path)
    assert s.log_level == "DEBUG" and s.serving.scanner_ids == ["a", "b"]  # the given environment, parsed
    assert watched.changes == [] and watched["XSCREEN_LOG_LEVEL"] == "ERROR"  # before: cleared and refilled
    assert load_settings(home=tmp_path).log_level == "ERROR"  # without `environ`: the process's, read only
