"""Who may call which store operation over HTTP, and under which name it is recorded (used by the owner only).

What each operation needs is declared with it (store/ops.py: `action`, `actor`, `people`, `check`,
`process_only`); this module applies those declarations. Two kinds of caller reach the owner, both holding the
owner token (store/identity.py):
- a host process acting as itself (CLI `cli:<os user>`, serving, setup): trusted like the OS user that runs
  xscreen, who could open the database file anyway; the actor it names is recorded;
- a process acting for a signed-in person, with `X-Xscreen-Session: <token>`: the owner resolves the token to a
  `Principal`, checks that the person's role may take the operation's action (xscreen.roles.ACTION_ROLES), and
  records the person as the actor. An `actor`/`officer`/`author` argument naming someone else is refused
  (PermissionDenied), one left at its default is replaced.
Scanner tokens are for /v1 only: forwarded to the owner, they may call nothing. With `auth.require_sessions`, a
caller without a session may act only under a process name (`cli:<user>`, `system`, ...), never a person's.
"""

from __future__ import annotations

from typing import Any

from store.api import operation
from store.ops import Operation
from store.passwords import is_process_name
from xscreen.errors import PermissionDenied
from xscreen.records import Principal, Role
from xscreen.roles import require_action


def _same_person(principal: Principal, given: Any, what: str) -> None:
    """PermissionDenied unless `given` (an actor, officer or author) is the signed-in person."""
    if given != principal.name:
        raise PermissionDenied(f"signed in as {principal.name}, so {what} must be {principal.name}, not {given!r}")


def check_role(name: str, role: Role | None) -> None:
    """PermissionDenied unless `role` may call operation `name` (set_password is further checked: self or admin)."""
    op = operation(name)
    if op.process_only:
        raise PermissionDenied(f"{name} is for the serving processes, not for a signed-in person")
    if op.action is not None:
        require_action(role, op.action)


def _names_in(op: Operation, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(what, name) of everyone the arguments say is acting: the actor argument, and the people it declares."""
    names = []
    if op.actor is not None:
        names.append((op.actor, kwargs.get(op.actor, op.default(op.actor))))
    if op.people is not None:
        names += op.people(kwargs)
    return names


def _as_process(op: Operation, kwargs: dict[str, Any]) -> None:
    """With auth.require_sessions: a caller without a session may act only under a process name."""
    for what, name in _names_in(op, kwargs):
        if isinstance(name, str) and not is_process_name(name):
            raise PermissionDenied(f"{what} {name!r} names a person: act for a person with their session "
                                   "(X-Xscreen-Session), or as a process (cli:<user>, system, serving)")


def bind(name: str, kwargs: dict[str, Any], principal: Principal | None,
         require_sessions: bool = False) -> dict[str, Any]:
    """The arguments to call operation `name` with for `principal` (None: a host process acting as itself)."""
    op = operation(name)
    if principal is None:
        if require_sessions:
            _as_process(op, kwargs)
        return kwargs
    if principal.kind != "user":
        raise PermissionDenied(f"a scanner token may not call {name} on the store")
    check_role(name, principal.role)
    if op.check is not None:
        op.check(kwargs, principal)
    arg = op.actor
    for what, who in _names_in(op, kwargs):
        if not (what == arg and who == op.default(arg)):  # a default actor is replaced, not refused
            _same_person(principal, who, what)
    return {**kwargs, arg: principal.name} if arg is not None else kwargs
