"""How a store operation is declared, once: `@read`, `@write` or `@composite` on a plain function of a domain module.

The declaration is the whole contract. From it the in-process `Store` runs the operation (a read on a fresh cursor,
a write inside the writer's group commit), the owner serves it as `POST /api/<name>` (its arguments parsed and
checked from the signature, who may call it from `action`/`actor`), and the client calls it and turns the answer
back into the declared return type. Adding an operation is a function in its domain module and its test.

The function's first parameter is the cursor (read, write) or the `Engine` (composite: work in the caller's
thread plus reads and writes, e.g. hashing a password before the write). Keyword parameters named `now` (the
store's clock; for a write, its transaction's time) and `cfg` (the `StoreConfig`) are supplied by the store and
are not part of the API. Every other parameter, and the return value, must be annotated with types pydantic can
carry over JSON (or a DataFrame, which travels as Arrow). A read or write function stays a plain function of a
cursor, so a notebook can call it on a snapshot: `triage.queue(con, officer="ann", now=...)`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import duckdb

from store.audit_sampling import AuditDesign
from xscreen.errors import XscreenError
from xscreen.records import IngestBatch
from xscreen.settings import DEFAULT_CLASSES

Kind = Literal["read", "write", "composite"]
INJECTED = frozenset({"now", "cfg"})
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Cursor = duckdb.DuckDBPyConnection


@dataclass(frozen=True)
class StoreConfig:
    """What operations may know of the store they run in (from the store.* settings)."""

    path: Path
    home_id: str | None = None
    claim_ttl_s: float = 600.0
    session_ttl: timedelta = timedelta(minutes=480)
    snapshots_dir: Path | None = None
    snapshot_max_age_s: float = 30.0
    sql_row_limit: int = 10_000
    sql_timeout_s: float = 30.0
    backups_dir: Path | None = None
    models_dir: Path | None = None
    audit: AuditDesign = field(default_factory=AuditDesign)  # the random audit of cleared mail (off by default)
    # which relabel items are high risk and need two blind readings (store/readings.py; off when both are empty)
    double_read_min_score: float | None = None
    double_read_classes: tuple[str, ...] = ()
    threat_classes: tuple[str, ...] = tuple(DEFAULT_CLASSES)  # what a seizure may be marked as (model.classes)


class Engine(Protocol):
    """What a composite operation may use of the store it runs in (the in-process `Store` provides it)."""

    config: StoreConfig

    def now(self) -> datetime: ...
    def read(self, fn: Callable[..., T], *args: Any) -> T: ...
    def write(self, fn: Callable[[Cursor, datetime], T], weight: int = 1) -> T: ...
    def exclusive(self, fn: Callable[[Cursor, datetime], T]) -> T: ...
    def write_batch(self, batch: Any, weight: int) -> Any: ...
    def login_limiter(self) -> Any: ...


@dataclass(frozen=True)
class Operation:
    """One store operation: its function, how it runs, and who may call it over HTTP (store/authz.py).

    `action`: the xscreen.roles.ACTION_ROLES entry a signed-in person's role must allow (None: any person).
    `actor`: the argument that names who acts; a person's session fills it in or must match it.
    `people`: other arguments naming people (a decision's officer, labels' authors), which must be the person.
    `check`: a further rule for a person's call (a password change). `process_only`: never for a person.
    `weight`: records a write carries, counted against the group commit's size."""

    name: str
    fn: Callable[..., Any]
    kind: Kind
    action: str | None = None
    actor: str | None = None
    people: Callable[[Mapping[str, Any]], list[tuple[str, Any]]] | None = None
    check: Callable[[Mapping[str, Any], Any], None] | None = None
    process_only: bool = False
    weight: Callable[[Mapping[str, Any]], int] | None = None
    doc: str = field(default="", compare=False)

    @cached_property
    def signature(self) -> inspect.Signature:
        """The public signature: without the cursor/engine and the injected `now`/`cfg`."""
        params = list(inspect.signature(self.fn).parameters.values())[1:]
        return inspect.Signature([p for p in params if p.name not in INJECTED])

    @cached_property
    def hints(self) -> dict[str, Any]:
        """Resolved annotations of the public parameters and of the result (`return`)."""
        hints = typing.get_type_hints(self.fn)
        keep = set(self.signature.parameters) | {"return"}
        return {k: v for k, v in hints.items() if k in keep}

    @cached_property
    def batch_arg(self) -> str | None:
        """The argument that travels in the binary ingest format over HTTP (an IngestBatch: store/wire.py)."""
        return next((k for k, v in self.hints.items() if k != "return" and v is IngestBatch), None)

    @cached_property
    def injected(self) -> frozenset[str]:
        return frozenset(inspect.signature(self.fn).parameters) & INJECTED

    def default(self, arg: str) -> Any:
        return self.signature.parameters[arg].default

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Positional and keyword arguments as keywords (TypeError for a wrong call, as a method would)."""
        bound = self.signature.bind(*args, **kwargs)
        return dict(bound.arguments)

    def run(self, engine: Engine, kwargs: Mapping[str, Any]) -> Any:
        """Run in-process: reads on a fresh cursor, writes in a group commit, composites in this thread."""
        if self.kind == "composite":
            return self.fn(engine, **kwargs)
        if self.kind == "read":
            extra = self._extra(engine.now(), engine.config)
            return engine.read(lambda cur: self.fn(cur, **kwargs, **extra))
        weight = self.weight(kwargs) if self.weight else 1
        return engine.write(lambda cur, now: self.fn(cur, **kwargs, **self._extra(now, engine.config)), weight)

    def _extra(self, now: datetime, cfg: StoreConfig) -> dict[str, Any]:
        values = {"now": now, "cfg": cfg}
        return {k: values[k] for k in self.injected}


OPERATIONS: dict[str, Operation] = {}


def _declare(kind: Kind, **meta: Any) -> Callable[[F], F]:
    def register(fn: F) -> F:
        name = fn.__name__
        if name in OPERATIONS and OPERATIONS[name].fn is not fn:
            raise XscreenError(f"store operation {name!r} is declared twice ({OPERATIONS[name].fn.__module__} and "
                               f"{fn.__module__})")
        OPERATIONS[name] = Operation(name=name, fn=fn, kind=kind, doc=inspect.getdoc(fn) or "", **meta)
        return fn

    return register


def read(*, action: str | None = None, actor: str | None = None) -> Callable[[F], F]:
    """A read: `fn(cursor, ...)` on a fresh cursor, seeing committed data only."""
    return _declare("read", action=action, actor=actor)


def write(*, action: str | None = None, actor: str | None = None,
          people: Callable[[Mapping[str, Any]], list[tuple[str, Any]]] | None = None, process_only: bool = False,
          weight: Callable[[Mapping[str, Any]], int] | None = None,
          check: Callable[[Mapping[str, Any], Any], None] | None = None) -> Callable[[F], F]:
    """A write: `fn(cursor, ...)` inside the writer's transaction; returns after COMMIT. It must check first and
    raise an XscreenError before writing anything, so a refusal does not spoil the rest of its group commit.
    `check(kwargs, principal)`: a further rule for a signed-in person's call (an adjudication label needs a
    supervisor)."""
    return _declare("write", action=action, actor=actor, people=people, process_only=process_only, weight=weight,
                    check=check)


def composite(*, action: str | None = None, actor: str | None = None,
              check: Callable[[Mapping[str, Any], Any], None] | None = None,
              process_only: bool = False) -> Callable[[F], F]:
    """Work in the caller's thread around reads and writes: `fn(engine, ...)` (password hashing, file copies)."""
    return _declare("composite", action=action, actor=actor, check=check, process_only=process_only)
