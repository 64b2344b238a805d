"""ASGI middleware bounding JSON request bodies (plain Starlette; no Ray)."""

from __future__ import annotations

import json
from typing import Any


class JsonBodyLimit:
    """ASGI middleware: a JSON request body over `max_bytes` is answered 413 before it is read (declared length)
    or as soon as it passes the limit (chunked). Multipart uploads have their own limit in the route."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes, send)
            return
        seen, exceeded, answered = 0, False, False

        async def limited() -> dict[str, Any]:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                exceeded = True
                raise _BodyTooLarge()
            return dict(message)

        async def guarded_send(message: dict[str, Any]) -> None:
            # The framework turns a failed body read into its own 400: answer the 413 in its place.
            nonlocal answered
            if not exceeded:
                await send(message)
            elif not answered and message["type"] == "http.response.start":
                answered = True
                await _too_large(self.max_bytes, send)

        try:
            await self.app(scope, limited, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not answered:
            await _too_large(self.max_bytes, send)


class _BodyTooLarge(Exception):
    pass


def _is_json(scope: dict[str, Any]) -> bool:
    kind = dict(scope.get("headers") or []).get(b"content-type", b"")
    return kind.split(b";")[0].strip().lower().endswith(b"json")


async def _too_large(limit: int, send: Any) -> None:
    body = json.dumps({"detail": {"reason_code": "too_large",
                                  "reason": f"JSON body over the {limit}-byte limit"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["JsonBodyLimit"]
