"""The store owner process: the only process that opens the DuckDB file. FastAPI over a `Store` + the spool.

Protocol (what `StoreClient` speaks): `GET /health`; `POST /api/<name>` with a JSON object of the operation's
keyword arguments, for every operation the domains declare (store/api.py) and nothing else, with the owner
token, a loopback Host and a JSON content type (store/owner_guard.py); `X-Xscreen-Session` when acting for a
signed-in person (store/authz.py). Arguments are parsed and checked against the declared signature. Results are
JSON, except DataFrames, which travel as an Arrow IPC stream (`application/vnd.apache.arrow.stream`: typed,
zero-parse). Errors are JSON `{"error": <XscreenError subclass>, "message", "title"}` with
400/401/403/404/409/500/503, and the client re-raises the same subclass. An IngestBatch argument also comes as a
binary body (`application/vnd.xscreen.ingest`: store/wire.py's Arrow format, decoded without a record per row);
JSON bodies still work.
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
from functools import cache
from typing import Any

import pandas as pd
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from store import authz
from store.api import OPERATIONS, operation
from store.engine import Store
from store.identity import ensure_home_id, ensure_owner_token
from store.migrations import LATEST_VERSION
from store.owner_guard import INGEST_BINARY, BodyTooLarge, Guard
from store.wire import decode
from xscreen import errors
from xscreen.records import Principal

log = logging.getLogger(__name__)
ARROW_STREAM = "application/vnd.apache.arrow.stream"
# Every declared operation is an endpoint; nothing else on Store is reachable over HTTP.
METHODS = sorted(OPERATIONS)

STATUS: list[tuple[type[errors.XscreenError], int]] = [
    (errors.NotFoundError, 404), (errors.ConflictError, 409), (errors.AuthError, 401),
    (errors.PermissionDenied, 403), (errors.QueryRefused, 400), (errors.StoreUnavailable, 503),
    (errors.SchemaError, 500), (errors.StoreError, 500), (errors.XscreenError, 400),
]


def status_of(err: errors.XscreenError) -> int:
    return next(code for cls, code in STATUS if isinstance(err, cls))


@cache
def args_model(name: str) -> type[BaseModel]:
    """A pydantic model of an operation's keyword arguments, so a request body is parsed and validated in one
    pass by pydantic's Rust JSON parser (an IngestBatch of thousands of verdicts included)."""
    op = operation(name)
    fields: dict[str, Any] = {
        k: (op.hints[k], ... if p.default is inspect.Parameter.empty else p.default)
        for k, p in op.signature.parameters.items()
    }
    return create_model(f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields)


def decode_args(name: str, body: bytes) -> dict[str, Any]:
    """Keyword arguments for operation `name` from a JSON request body; XscreenError naming a bad argument."""
    try:
        args = args_model(name).model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        raise errors.XscreenError(f"{name}: bad argument '{where}': {first['msg']}", title="Bad request") from None
    return {k: getattr(args, k) for k in type(args).model_fields}


def encode_result(value: Any) -> Response:
    if isinstance(value, pd.DataFrame):
        table = pa.Table.from_pandas(value, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(content=sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    return JSONResponse(to_jsonable_python(value))


def error_response(err: errors.XscreenError) -> JSONResponse:
    return JSONResponse({"error": type(err).__name__, "message": str(err), "title": err.title},
                        status_code=status_of(err))


SESSION_HEADER = "x-xscreen-session"  # a signed-in person's token, when a process acts for them


def _principal(store: Store, request: Request) -> Principal | None:
    token = request.headers.get(SESSION_HEADER)
    return store.resolve_token(token) if token else None


def create_app(store: Store, settings: Any) -> FastAPI:
    """The owner's HTTP face over `store`. Store calls run in the thread pool, never on the event loop.

    Creates the home's owner token on first use (store.identity); every request passes `Guard` first."""
    guard = Guard.from_settings(settings, ensure_owner_token(settings.home))
    home_id = store.home_id or ensure_home_id(settings.home)
    app = FastAPI(title="xscreen store owner", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health(request: Request) -> Response:
        refused = guard.host_refusal(request)
        return refused or JSONResponse({"status": "ok", "schema_version": LATEST_VERSION, "home_id": home_id,
                                        "db": str(store.path)})

    @app.post("/api/{method}")
    async def call(method: str, request: Request) -> Response:
        refused = guard.api_refusal(method, request)
        if refused is not None:
            return refused
        if method not in METHODS:
            return error_response(errors.NotFoundError(f"no store method {method!r}"))
        try:
            body = await guard.read_body(request)
        except BodyTooLarge:
            return guard.too_large()
        batch_arg = OPERATIONS[method].batch_arg
        binary = batch_arg is not None and request.headers.get("content-type") == INGEST_BINARY

        def run() -> Response:  # token lookup, parsing, the store call and encoding all block: off the event loop
            principal = _principal(store, request)
            kwargs = {batch_arg: decode(body)} if binary and batch_arg else decode_args(method, body)
            bound = authz.bind(method, kwargs, principal, settings.auth.require_sessions)
            return encode_result(store.call(method, **bound))

        try:
            return await run_in_threadpool(run)
        except errors.XscreenError as err:
            return error_response(err)

    return app


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_owner(settings: Any) -> None:
    """Run the owner in the foreground until interrupted: migrate, drain the spool, watch it, serve HTTP."""
    import uvicorn

    from store.spool import SpoolIngester
    from xscreen.settings import check_port_free, ensure_home

    ensure_home(settings)
    check_port_free(settings, "store_port")
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM and then re-raises it; by default that kills the process before
        # the `finally` below closes the store. Turn it into SystemExit so the spool watcher and the file close.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    store = Store.from_settings(settings)
    ingester = SpoolIngester(settings.spool_dir, store.ingest)
    try:
        ingester.start()
        log.info("store owner: %s on %s (spool %s)", store.path, settings.store_url, settings.spool_dir)
        config = uvicorn.Config(create_app(store, settings), host=settings.network.host,
                                port=settings.network.store_port, log_level="warning", access_log=False)
        uvicorn.Server(config).run()
    finally:
        ingester.stop()
        store.close()
