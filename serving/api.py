"""The public /v1 HTTP API as a plain FastAPI app over an injected backend (the Serve ingress supplies one).

POST /v1/scans takes either a multipart upload (`file`, form fields `scanner_id`, `item_id`, `metadata` JSON)
or JSON `{"path": "<scanner-id>/<file>"}` naming a file inside the scanner root. Refusals are recorded in the
store (quarantine table) and answered with a 4xx naming the reason. No Ray here: tests run it with TestClient.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from analytics.records import DecisionRecord, DecisionValue, utcnow
from serving.ingest import Ingest, IngestReport
from serving.metrics import ServingMetrics
from serving.scanfile import within
from xscreen.errors import ConflictError, NotFoundError, StoreUnavailable, XscreenError

log = logging.getLogger(__name__)
STATUS_BY_REASON = {"path_traversal": 400, "symlink_escape": 403, "not_found": 404, "too_large": 413,
                    "unsupported_format": 415}


@dataclass
class ApiBackend:
    """What the routes need: the ingest (scoring through the classifier), the store, metrics, health."""

    ingest: Ingest
    store: Any  # analytics.api.StoreAPI (a StoreClient in production)
    metrics: ServingMetrics
    max_upload_bytes: int
    health: Callable[[], dict[str, Any]] = field(default=lambda: {})
    extra_metrics: Callable[[], bytes] = field(default=lambda: b"")


class Feedback(BaseModel):
    """An officer's decision on a verdict, posted by a screening station."""

    model_config = ConfigDict(extra="forbid")
    scan_id: str
    officer: str
    decision: DecisionValue
    threat_class: str | None = None
    note: str | None = None


class PathScan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str


def resolve_inbox_path(inbox: Path, text: str) -> tuple[Path | None, str, str]:
    """(path, reason_code, reason): a path inside the scanner root, or None with why it was refused."""
    raw = Path(text)
    if not text or "\x00" in text:
        return None, "path_traversal", "empty or malformed path"
    if ".." in raw.parts:
        return None, "path_traversal", f"path {text!r} climbs out with '..'"
    candidate = raw if raw.is_absolute() else inbox / raw
    if not within(candidate, inbox):
        return None, "path_traversal", f"path {text!r} is outside the scanner root"
    parent = candidate.parent.resolve()
    if not within(parent, inbox.resolve()):  # a symlinked folder inside the root that leads outside it
        return None, "symlink_escape", f"path {text!r} leads outside the scanner root through a symbolic link"
    if not candidate.exists() and not candidate.is_symlink():
        return None, "not_found", f"no file {text!r} in the scanner root"
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

    @app.exception_handler(XscreenError)
    async def _xscreen_error(_: Request, err: XscreenError) -> JSONResponse:
        status = 404 if isinstance(err, NotFoundError) else 409 if isinstance(err, ConflictError) else \
            503 if isinstance(err, StoreUnavailable) else 400
        return JSONResponse({"detail": str(err), "title": err.title}, status_code=status)

    @app.post("/v1/scans")
    async def post_scan(request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            return await _scan_by_path(backend, request)
        return await _scan_upload(backend, request)

    @app.get("/v1/scans/{scan_id}")
    async def get_scan(scan_id: str) -> Any:
        return await run_in_threadpool(backend.store.get_scan, scan_id)

    @app.get("/v1/queue")
    async def get_queue(officer: str = "api", limit: int = 50, scanner_id: str | None = None) -> Any:
        frame = await run_in_threadpool(backend.store.queue, officer, min(max(limit, 1), 1000), scanner_id)
        return json.loads(frame.to_json(orient="records", date_format="iso"))

    @app.post("/v1/feedback", status_code=201)
    async def post_feedback(body: Feedback) -> dict[str, str]:
        decision = DecisionRecord(decision_id=uuid.uuid4().hex, decided_at=utcnow(), **body.model_dump())
        await run_in_threadpool(backend.store.record_decision, decision)
        return {"status": "recorded", "decision_id": decision.decision_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", **await run_in_threadpool(backend.health)}  # may wait on a Serve handle

    @app.get("/metrics")
    async def metrics() -> Response:
        # Gauges read the store at scrape time: keep those blocking calls off the event loop.
        body = await run_in_threadpool(lambda: backend.metrics.render() + backend.extra_metrics())
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _scan_by_path(backend: ApiBackend, request: Request) -> Response:
    try:
        body = PathScan.model_validate(await request.json())
    except ValueError as exc:
        raise HTTPException(422, f"body must be JSON {{\"path\": ...}}: {exc}") from None
    ingest = backend.ingest
    path, code, reason = resolve_inbox_path(ingest.inbox, body.path)
    if path is None:
        if code != "not_found":
            await run_in_threadpool(ingest.record_refusal, f"api:{body.path}", code, reason)
        return refusal(code, reason)
    report = await run_in_threadpool(ingest, [path])
    return report_response(report)


async def _scan_upload(backend: ApiBackend, request: Request) -> Response:
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
    scanner_id = str(form.get("scanner_id") or "api")
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
