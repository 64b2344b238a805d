"""The project's one error hierarchy: every failure a user can cause carries a message and a UI title."""

from __future__ import annotations


class XscreenError(Exception):
    """Base of every error the system raises on purpose.

    `title` is short and shown as a heading by the UI; `str(err)` is one line naming what was wrong.
    Library exceptions are translated into these in the module that called the library.
    """

    title = "xscreen error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title


class ConfigError(XscreenError):
    """A setting is unknown, of the wrong type, or unusable (unwritable path, port in use)."""

    title = "Invalid configuration"


class StoreError(XscreenError):
    """The DuckDB store refused or failed an operation."""

    title = "Store error"


class SchemaError(StoreError):
    """The database file is foreign, corrupt, or newer than this code."""

    title = "Database schema mismatch"


class StoreUnavailable(StoreError):
    """The store owner process cannot be reached."""

    title = "Store owner unavailable"


class ConflictError(StoreError):
    """A write conflicts with the current state (item already decided, claimed by another officer, ...)."""

    title = "Conflict"


class NotFoundError(XscreenError):
    """A scan, model version, user or other named thing does not exist."""

    title = "Not found"


class QueryRefused(XscreenError):
    """Analyst SQL that is not a read-only query, or that touches files on the host."""

    title = "Query refused"


class BadScanError(XscreenError):
    """An input file is not a usable X-ray image. `reason_code` is a stable machine-readable tag."""

    title = "Unreadable scan"

    def __init__(self, path: str, reason_code: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason_code = reason_code
        self.reason = reason


class ModelError(XscreenError):
    """A checkpoint is missing, corrupt, or incompatible with the configured classes/architecture."""

    title = "Model error"


class AuthError(XscreenError):
    """Login failed or the session expired."""

    title = "Not signed in"


class PermissionDenied(XscreenError):
    """The signed-in user's role does not allow this page or action."""

    title = "Not allowed"


class WrongStore(StoreError):
    """The store owner (or database file) reached belongs to another home than the caller's."""

    title = "Wrong store"
