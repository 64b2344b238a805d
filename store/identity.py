"""A home's identity and its service secrets: `HOME/home_id` (a UUID), `HOME/secrets/owner.token` and
`HOME/secrets/ray.token` (Ray's cluster token, see `ensure_ray_token`).

The store owner creates both on first start. Every client reads them from its own home: the token to be let in
(`Authorization: Bearer`), the home id to check that the owner it reached serves this home and not another
one on the same port (issue 12, item 9). The token never leaves the host's processes: it is a file readable by
the user running xscreen only (folder 0700, file 0600), never an argument, setting or log line.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from xscreen.errors import StoreError

HOME_ID_FILE = "home_id"
SECRETS_DIR = "secrets"
OWNER_TOKEN_FILE = "owner.token"
RAY_TOKEN_FILE = "ray.token"
TOKEN_BYTES = 32


def home_id_path(home: Path) -> Path:
    return Path(home) / HOME_ID_FILE


def owner_token_path(home: Path) -> Path:
    return Path(home) / SECRETS_DIR / OWNER_TOKEN_FILE


def ray_token_path(home: Path) -> Path:
    return Path(home) / SECRETS_DIR / RAY_TOKEN_FILE


def _create_exclusive(path: Path, text: str, mode: int) -> bool:
    """Write `text` to a new file with `mode`; False when it already exists (another process won the race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _read(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", title="Home unreadable") from None
    return value or None


def read_home_id(home: Path) -> str | None:
    """This home's id, or None when no owner has started on it yet."""
    return _read(home_id_path(home))


def ensure_home_id(home: Path) -> str:
    """This home's id, created (a random UUID) the first time."""
    path = home_id_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    _create_exclusive(path, str(uuid.uuid4()), 0o644)
    found = read_home_id(home)
    if found is None:
        raise StoreError(f"{path} is empty; delete it to let the store owner create a new home id",
                         title="Home unreadable")
    return found


def read_owner_token(home: Path) -> str | None:
    """The owner's service token, or None when no owner has started on this home yet."""
    return _read(owner_token_path(home))


def _ensure_secret(path: Path, make: str, what: str) -> str:
    """The secret in `path`, created from `make` the first time (folder 0700, file 0600); refused if others can
    read it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)  # mkdir's mode is masked by the umask, and the folder may predate us
    _create_exclusive(path, make, 0o600)
    if path.stat().st_mode & 0o077:
        raise StoreError(f"{path} is readable by other users (mode {path.stat().st_mode & 0o777:o}); "
                         f"run `chmod 600 {path}`", title=f"{what} exposed")
    token = _read(path)
    if token is None:
        raise StoreError(f"{path} is empty; delete it to let xscreen create a new one", title="Home unreadable")
    return token


def ensure_owner_token(home: Path) -> str:
    """The owner's service token, created (32 random bytes, urlsafe base64) the first time; folder 0700, file 0600.

    An existing token file readable by other users is refused: anyone who can read it can act as any process."""
    return _ensure_secret(owner_token_path(home), secrets.token_urlsafe(TOKEN_BYTES), "Owner token")


def ensure_ray_token(home: Path) -> Path:
    """The file holding this home's Ray cluster token (64 hex digits, the form `ray get-auth-token --generate`
    writes), created the first time; folder 0700, file 0600. The supervisor starts its Ray head and worker with
    RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH set to this file: `ray start` never creates a token, so without
    one a fresh machine (no ~/.ray/auth_token) could not start Ray at all, and a token per home keeps one home's
    Ray closed to another's processes."""
    path = ray_token_path(home)
    _ensure_secret(path, secrets.token_hex(TOKEN_BYTES), "Ray token")
    return path
