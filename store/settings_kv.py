"""Settings in force, kept in the store (`settings_kv`): values the running system shares and changes at run time.

Keys refused through `put_setting`: `home_id` (the home this file belongs to, kept by store/engine.py), and
`champion` and `thresholds`, which live in the `models` rows only (store/models.py: promote a model or call
`set_thresholds`), so that no second copy can disagree with what serving follows.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from store.audit import audit_row, loads, to_json
from store.fetch import first
from store.ops import read, write
from xscreen.errors import PermissionDenied

STORE_SETTINGS = frozenset({"champion", "thresholds", "home_id"})


def check_setting_key(key: str) -> None:
    if key in STORE_SETTINGS:
        raise PermissionDenied(f"setting {key!r} is kept by the store itself (promote a model to change the "
                               "champion and its thresholds)")


def set_value(cur: duckdb.DuckDBPyConnection, key: str, value: Any, actor: str, now: datetime) -> None:
    """Store `value` under `key` (no checks, no audit: for the store's own keys)."""
    cur.execute("INSERT INTO settings_kv VALUES (?, ?::JSON, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                [key, to_json(value), now, actor])


@read()
def get_setting(cur: duckdb.DuckDBPyConnection, key: str) -> Any:
    """The JSON value stored under `key`, or None."""
    row = first(cur, "SELECT value FROM settings_kv WHERE key = ?", [key])
    return loads(row[0]) if row else None


@write(action="change_settings", actor="actor")
def put_setting(cur: duckdb.DuckDBPyConnection, key: str, value: Any, actor: str, *, now: datetime) -> None:
    """Set a setting in force, audited with its old and new value. Keys the store keeps itself (champion,
    thresholds, home_id) are refused: promote a model instead."""
    check_setting_key(key)
    old = first(cur, "SELECT value FROM settings_kv WHERE key = ?", [key])
    set_value(cur, key, value, actor, now)
    audit_row(cur, now, actor, "setting", key, old=json.loads(old[0]) if old and old[0] else None, new=value)
