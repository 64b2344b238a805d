"""The store's API: every operation the domain modules declare (store/ops.py), and `StoreAPI`, the one face that
the in-process `Store` and the HTTP `StoreClient` both have.

`store.queue(officer="ann")` works the same on either: `StoreAPI` looks the name up in `OPERATIONS`, binds the
arguments to the declared signature and hands them to `call(name, **kwargs)`, which each side implements once.
Code that needs the store takes a `StoreAPI` and never cares which one it got (see `store.client.open_store`).
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from typing import Any

from store import (
    analysts,
    audit,
    backup,
    ground_truth,
    ingest,
    labels,
    models,
    monitoring,
    readings,
    scans,
    settings_kv,
    tips,
    triage,
    users,
)
from store.ops import OPERATIONS, Operation
from xscreen.errors import NotFoundError

# The domain modules, each declaring its operations; importing them fills OPERATIONS. A new domain module is added
# here (tests/test_owner.py fails on a module that declares operations and is not); a new operation is not.
DOMAINS = (ingest, scans, triage, labels, readings, models, settings_kv, monitoring, users, audit, analysts, backup,
           ground_truth, tips)


def operation(name: str) -> Operation:
    """The declared operation `name`; NotFoundError naming the known ones otherwise."""
    op = OPERATIONS.get(name)
    if op is None or name.startswith("_"):
        raise NotFoundError(f"no store operation {name!r}")
    return op


class StoreAPI(abc.ABC):
    """Every store operation as a method: `store.<name>(...)` binds the arguments to the operation's declared
    signature and runs `call(name, **kwargs)`. Writes return after COMMIT; reads see committed data only."""

    @abc.abstractmethod
    def call(self, name: str, /, **kwargs: Any) -> Any:
        """Run operation `name` with keyword arguments (bound already): Store runs it on its DuckDB file,
        StoreClient sends it to the owner."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = OPERATIONS.get(name)
        if op is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} has no attribute or store operation {name!r}")

        @functools.wraps(op.fn)
        def method(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, **op.bind(args, kwargs))

        method.__signature__ = op.signature  # type: ignore[attr-defined]  # help() shows the public signature
        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *OPERATIONS})


__all__ = ["DOMAINS", "OPERATIONS", "Operation", "StoreAPI", "operation"]
