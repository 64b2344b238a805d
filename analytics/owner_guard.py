"""The owner's door: what every HTTP request must show before a store method runs (issue 12, item 5).

- `Host` must name this loopback port (127.0.0.1, localhost, [::1], or the configured bind address): a web page
  that rebinds its own domain name to 127.0.0.1 still sends its own Host, and gets 421.
- `POST /api/*` needs `Authorization: Bearer <owner token>` (compared in constant time), else 401;
- a JSON body (`Content-Type: application/json`; the ingest binary type for `ingest`), else 415: a browser page
  cannot send that type across origins without a CORS preflight, which the owner never answers;
- a body no larger than `store.max_request_mb`, else 413 (checked on Content-Length and while reading).
`GET /health` needs only the Host check: it tells status, schema version and the home's identity, no secret.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

JSON = "application/json"
INGEST_BINARY = "application/vnd.xscreen.ingest"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def refusal(status: int, error: str, message: str, title: str) -> JSONResponse:
    """The owner's error shape (`StoreClient` re-raises `error` as the XscreenError subclass of that name)."""
    return JSONResponse({"error": error, "message": message, "title": title}, status_code=status)


class BodyTooLarge(Exception):
    """The request body passed the size limit while it was being read."""


@dataclass(frozen=True)
class Guard:
    token: str
    hosts: frozenset[str]
    max_body: int

    @classmethod
    def from_settings(cls, settings: Any, token: str) -> Guard:
        port = settings.network.store_port
        names = {*LOOPBACK_NAMES, settings.network.host}
        return cls(token=token, hosts=frozenset(f"{n}:{port}" for n in names),
                   max_body=int(settings.store.max_request_mb * 2**20))

    def host_refusal(self, request: Request) -> JSONResponse | None:
        host = request.headers.get("host", "")
        if host.lower() in self.hosts:
            return None
        return refusal(421, "XscreenError", f"the store owner answers only to Host {sorted(self.hosts)[0]} and its "
                       f"loopback aliases, not {host[:100]!r}", "Request refused")

    def api_refusal(self, method: str, request: Request) -> JSONResponse | None:
        """Why a POST /api/<method> is refused before its body is read, or None."""
        refused = self.host_refusal(request)
        if refused is not None:
            return refused
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return refusal(401, "AuthError", "the store owner needs its token (Authorization: Bearer, from "
                           "HOME/secrets/owner.token)", "Not authorised")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != JSON and not (method == "ingest" and kind == INGEST_BINARY):
            return refusal(415, "XscreenError", f"the store owner takes {JSON} bodies, not {kind or 'none'!r}",
                           "Request refused")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return self.too_large()
        return None

    def too_large(self) -> JSONResponse:
        return refusal(413, "XscreenError", f"request body over {self.max_body} bytes (store.max_request_mb)",
                       "Request refused")

    async def read_body(self, request: Request) -> bytes:
        """The body, or BodyTooLarge as soon as it passes the limit (chunked bodies have no Content-Length)."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)
