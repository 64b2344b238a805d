"""The public /v1 HTTP API as a plain FastAPI app over an injected backend (the Serve ingress supplies one).

POST /v1/scans takes either a multipart upload (`file`, form fields `scanner_id`, `item_id`, `metadata` JSON)
or JSON `{"path": "<scanner-id>/<file>"}` naming a file inside the scanner root. Refusals are recorded in the
store (quarantine table) and answered with a 4xx naming the reason. No Ray here: tests run it with TestClient.

A path from a request is relative, made of plain components (no '..', none over 255 bytes), starts with a valid
scanner id, resolves under the scanner root without leaving it through a link, and names a regular file: a
folder is never scored, moved or quarantined. JSON bodies over `max_json_bytes` are refused with 413 before
they are read.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from analytics.records import DecisionRecord, DecisionValue, Principal, utcnow
from serving.api_auth import ANONYMOUS, Authenticator, queue_view, require_user, scan_view, scanner_for_upload
from serving.http_limits import JsonBodyLimit
from serving.ingest import Ingest, IngestReport
from serving.metrics import ServingMetrics
from serving.scanfile import valid_scanner_id, within
from xscreen.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    StoreUnavailable,
    XscreenError,
)

log = logging.getLogger(__name__)
STATUS_BY_REASON = {"path_traversal": 400, "bad_path": 400, "not_a_file": 400, "bad_scanner_id": 400,
                    "symlink_escape": 403, "not_found": 404, "too_large": 413, "unsupported_format": 415}
NAME_MAX = 255  # bytes per path component (Linux NAME_MAX): longer is refused, never handed to the OS
PATH_MAX_CHARS = 1024


@dataclass
class ApiBackend:
    """What the routes need: the ingest (scoring through the classifier), the store, metrics, health."""

    ingest: Ingest
    store: Any  # analytics.api.StoreAPI (a StoreClient in production)
    metrics: ServingMetrics
    max_upload_bytes: int
    health: Callable[[], dict[str, Any]] = field(default=lambda: {})
    extra_metrics: Callable[[], bytes] = field(default=lambda: b"")
    max_json_bytes: int = 64 * 1024
    api_auth: bool = True  # serving.api_auth: bearer tokens on /v1 (off only explicitly)
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(lambda token: self.store.resolve_token(token), self.api_auth)

    def store_for(self, principal: Principal, authorization: str | None) -> Any:
        """The store as this caller: a signed-in person's calls carry their session, so the owner checks
        their role and records them as the actor."""
        if principal is ANONYMOUS or principal.kind != "user":
            return self.store
        from serving.api_auth import bearer_token

        return self.store.as_user(bearer_token(authorization))


class Feedback(BaseModel):
    """An officer's decision on a verdict, posted by a screening station signed in as that officer. `officer`
    may be left out; when given it must be the signed-in person."""

    model_config = ConfigDict(extra="forbid")
    scan_id: str
    officer: str | None = None
    decision: DecisionValue
    threat_class: str | None = None
    note: str | None = None


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str


class PathScan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str


def _path_shape(text: str) -> tuple[str, str] | None:
    """(reason_code, reason) when the text cannot be a relative '<scanner-id>/.../<file>' path, else None."""
    shown = repr(text[:120]) + ("..." if len(text) > 120 else "")
    if not text or "\x00" in text or "\\" in text or len(text) > PATH_MAX_CHARS:
        return "bad_path", f"path {shown} is empty, too long or malformed"
    if text.startswith("/"):
        return "path_traversal", f"path {shown} is absolute; give it relative to the scanner root"
    parts = text.split("/")
    if ".." in parts:
        return "path_traversal", f"path {shown} climbs out with '..'"
    if any(len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts):
        return "bad_path", f"path {shown} has a component over {NAME_MAX} bytes"
    if len(parts) < 2 or any(p in ("", ".") for p in parts):
        return "bad_path", f"path {shown} must be '<scanner-id>/<file>' with no empty or '.' parts"
    if not valid_scanner_id(parts[0]):
        return "bad_scanner_id", f"path {shown} does not start with a valid scanner id"
    return None


def resolve_inbox_path(inbox: Path, text: str) -> tuple[Path | None, str, str]:
    """(path, reason_code, reason): a regular file (or a link the ingest will judge) inside the scanner root, or
    None with why it was refused. Nothing outside the root is ever touched, not even stat'ed through a link."""
    problem = _path_shape(text)
    if problem is not None:
        return None, *problem
    candidate = inbox / text
    root = inbox.resolve()
    try:
        parent = candidate.parent.resolve()
        if not within(parent, root):  # a symlinked folder inside the root that leads outside it
            return None, "symlink_escape", f"path {text!r} leads outside the scanner root through a symbolic link"
        st = os.stat(candidate, follow_symlinks=False)
    except FileNotFoundError:
        return None, "not_found", f"no file {text!r} in the scanner root"
    except (OSError, RuntimeError) as exc:  # name too long, loops, permissions: a 4xx, never a 500
        return None, "bad_path", f"path {text!r} cannot be used ({getattr(exc, 'strerror', None) or exc})"
    if stat.S_ISLNK(st.st_mode):
        if not within(candidate.resolve(), root):
            return None, "symlink_escape", f"path {text!r} is a symbolic link leading outside the scanner root"
    elif not stat.S_ISREG(st.st_mode):
        return None, "not_a_file", f"path {text!r} is not a regular file (a folder is never scanned or moved)"
    return candidate, "", ""


def report_response(report: IngestReport) -> JSONResponse:
    """201 scored / 200 duplicate / 4xx refused with its reason / 503 when the classifier is unavailable."""
    if report.verdicts:
        v = next(x for x in report.verdicts if x.role == "champion")
        body = {"status": "scored", "scan_id": v.scan_id, "verdict": v.verdict, "any_threat": v.any_threat,
                "top_class": v.top_class, "scores": v.scores, "model_version": v.model_version,
                "latency_ms": v.latency_ms}
        return JSONResponse(body, status_code=201)
    if report.duplicate_ids:
        return JSONResponse({"status": "duplicate", "scan_id": report.duplicate_ids[0]}, status_code=200)
    if report.quarantined:
        q = report.quarantined[0]
        return refusal(q.reason_code, q.reason)
    if report.retry:
        return JSONResponse({"detail": "classifier unavailable; the scan was not scored"}, status_code=503)
    return JSONResponse({"detail": "nothing to score (the file vanished)"}, status_code=404)


def refusal(reason_code: str, reason: str) -> JSONResponse:
    status = STATUS_BY_REASON.get(reason_code, 422)
    return JSONResponse({"detail": {"reason_code": reason_code, "reason": reason}}, status_code=status)


def create_api(backend: ApiBackend) -> FastAPI:
    """The FastAPI app; every route is a thin call into the backend."""
    app = FastAPI(title="xscreen", version="1", docs_url="/docs", redoc_url=None)
    app.add_middleware(JsonBodyLimit, max_bytes=backend.max_json_bytes)

    @app.exception_handler(XscreenError)
    async def _xscreen_error(_: Request, err: XscreenError) -> JSONResponse:
        status = 404 if isinstance(err, NotFoundError) else 409 if isinstance(err, ConflictError) else \
            503 if isinstance(err, StoreUnavailable) else 401 if isinstance(err, AuthError) else \
            403 if isinstance(err, PermissionDenied) else 400
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(err), "title": err.title}, status_code=status, headers=headers)

    async def caller(request: Request) -> Principal:
        return await run_in_threadpool(backend.auth.principal, request.headers.get("authorization"))

    @app.post("/v1/login")
    async def login(body: Login, request: Request) -> dict[str, Any]:
        source = f"api:{request.client.host if request.client else '?'}"
        grant = await run_in_threadpool(backend.store.login, body.username, body.password, source)
        return {"token": grant.token, "expires_at": grant.expires_at.isoformat(), "username": grant.user.username,
                "role": grant.user.role}

    @app.post("/v1/logout", status_code=204)
    async def logout(request: Request) -> Response:
        from serving.api_auth import bearer_token

        token = bearer_token(request.headers.get("authorization"))
        backend.auth.forget(token)
        await run_in_threadpool(backend.store.logout, token)
        return Response(status_code=204)

    @app.post("/v1/scans")
    async def post_scan(request: Request) -> Response:
        principal = await caller(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            return await _scan_by_path(backend, request, principal)
        return await _scan_upload(backend, request, principal)

    @app.get("/v1/scans/{scan_id}")
    async def get_scan(scan_id: str, request: Request) -> Any:
        principal = await caller(request)
        store = backend.store_for(principal, request.headers.get("authorization"))
        return scan_view(await run_in_threadpool(store.get_scan, scan_id), principal)

    @app.get("/v1/queue")
    async def get_queue(request: Request, limit: int = 50, scanner_id: str | None = None) -> Any:
        principal = require_user(await caller(request))
        store = backend.store_for(principal, request.headers.get("authorization"))
        frame = await run_in_threadpool(store.queue, principal.name, min(max(limit, 1), 1000), scanner_id)
        return json.loads(queue_view(frame, principal).to_json(orient="records", date_format="iso"))

    @app.post("/v1/feedback", status_code=201)
    async def post_feedback(body: Feedback, request: Request) -> dict[str, str]:
        principal = require_user(await caller(request))
        if body.officer not in (None, principal.name) and principal is not ANONYMOUS:
            raise PermissionDenied(f"signed in as {principal.name}, so the officer must be {principal.name}, "
                                   f"not {body.officer!r}")
        fields = body.model_dump()
        fields["officer"] = body.officer if principal is ANONYMOUS and body.officer else principal.name
        decision = DecisionRecord(decision_id=uuid.uuid4().hex, decided_at=utcnow(), **fields)
        store = backend.store_for(principal, request.headers.get("authorization"))
        await run_in_threadpool(store.record_decision, decision)
        return {"status": "recorded", "decision_id": decision.decision_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        # ok | degraded (with reasons) | down; the parts may wait on a Serve handle and the store: off the loop
        return {"status": "ok", **await run_in_threadpool(backend.health)}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if not (host.startswith("127.") or host in ("::1", "localhost", "testclient")):
            return JSONResponse({"detail": "metrics are served to loopback clients only"}, status_code=403)
        # Gauges read the store at scrape time: keep those blocking calls off the event loop.
        body = await run_in_threadpool(lambda: backend.metrics.render() + backend.extra_metrics())
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _scan_by_path(backend: ApiBackend, request: Request, principal: Principal) -> Response:
    try:
        body = PathScan.model_validate(await request.json())
    except (ValueError, RecursionError) as exc:  # RecursionError: '[[[[...' nested thousands deep (found by fuzzing)
        raise HTTPException(422, f"body must be JSON {{\"path\": \"<scanner-id>/<file>\"}}: {str(exc)[:300]}") from None
    ingest = backend.ingest
    problem = _path_shape(body.path)
    if problem is None:  # the shape is sound: a scanner may name files of its own folder only
        scanner_for_upload(principal, body.path.split("/", 1)[0])
    path, code, reason = resolve_inbox_path(ingest.inbox, body.path)
    if path is None:
        if code != "not_found":
            await run_in_threadpool(ingest.record_refusal, f"api:{body.path}", code, reason)
        return refusal(code, reason)
    report = await run_in_threadpool(ingest, [path])
    return report_response(report)


async def _scan_upload(backend: ApiBackend, request: Request, principal: Principal) -> Response:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > backend.max_upload_bytes + 64 * 1024:
        reason = f"upload of {declared} bytes is over the {backend.max_upload_bytes}-byte limit"
        await run_in_threadpool(backend.ingest.record_refusal, "api:upload", "too_large", reason)
        return refusal("too_large", reason)  # refused before the body is read
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise HTTPException(422, "multipart field 'file' (the image) is required")
    data = await upload.read(backend.max_upload_bytes + 1)
    requested = form.get("scanner_id")
    scanner_id = scanner_for_upload(principal, str(requested) if requested else None)
    item_id = form.get("item_id")
    metadata = _metadata(form.get("metadata"))
    report = await run_in_threadpool(
        backend.ingest.ingest_bytes, data, name=upload.filename or "upload.png", scanner_id=scanner_id,
        item_id=str(item_id) if item_id else None, metadata=metadata,
    )
    return report_response(report)


def _metadata(value: Any) -> dict[str, Any]:
    if not value or not isinstance(value, str):
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        raise HTTPException(422, "form field 'metadata' must be a JSON object") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "form field 'metadata' must be a JSON object")
    allowed = {"scanned_at", "declared_contents", "item_id"}  # the sidecar fields an upload may carry
    return {k: v for k, v in data.items() if k in allowed}
