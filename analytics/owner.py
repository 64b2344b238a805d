"""The store owner process: the only process that opens the DuckDB file. FastAPI over a `Store` + the spool.

Protocol (what `StoreClient` speaks): `GET /health`; `POST /api/<method>` with a JSON object of the method's
keyword arguments, for every method of `StoreAPI`, with the owner token, a loopback Host and a JSON content type
(analytics/owner_guard.py); `X-Xscreen-Session` when acting for a signed-in person (analytics/authz.py). Results are JSON, except DataFrames, which travel as an Arrow
IPC stream (`application/vnd.apache.arrow.stream`: typed, zero-parse). Errors are JSON
`{"error": <XscreenError subclass>, "message", "title"}` with 400/401/403/404/409/500/503, and the client
re-raises the same subclass. `ingest` also takes its batch as a binary body (`application/vnd.xscreen.ingest`:
analytics.ingest's Arrow format, decoded without a record per row); JSON bodies still work.
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import typing
from functools import cache
from typing import Any

import pandas as pd
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from analytics import authz
from analytics.api import StoreAPI
from analytics.identity import ensure_home_id, ensure_owner_token
from analytics.ingest import decode
from analytics.migrations import LATEST_VERSION
from analytics.owner_guard import INGEST_BINARY, BodyTooLarge, Guard
from analytics.records import Principal
from analytics.store import Store
from xscreen import errors

log = logging.getLogger(__name__)
ARROW_STREAM = "application/vnd.apache.arrow.stream"
# Every method of the contract is an endpoint; nothing else on Store is reachable over HTTP.
METHODS = sorted(name for name, _ in inspect.getmembers(StoreAPI, inspect.isfunction) if not name.startswith("_"))

STATUS: list[tuple[type[errors.XscreenError], int]] = [
    (errors.NotFoundError, 404), (errors.ConflictError, 409), (errors.AuthError, 401),
    (errors.PermissionDenied, 403), (errors.QueryRefused, 400), (errors.StoreUnavailable, 503),
    (errors.SchemaError, 500), (errors.StoreError, 500), (errors.XscreenError, 400),
]


def status_of(err: errors.XscreenError) -> int:
    return next(code for cls, code in STATUS if isinstance(err, cls))


@cache
def args_model(name: str) -> type[BaseModel]:
    """A pydantic model of a StoreAPI method's keyword arguments, so a request body is parsed and validated in
    one pass by pydantic's Rust JSON parser (an IngestBatch of thousands of verdicts included)."""
    method = getattr(StoreAPI, name)
    hints = typing.get_type_hints(method)
    hints.pop("return", None)
    params = inspect.signature(method).parameters
    fields: dict[str, Any] = {
        k: (hints[k], ... if params[k].default is inspect.Parameter.empty else params[k].default)
        for k in hints if params[k].kind is not inspect.Parameter.VAR_KEYWORD
    }
    if name == "query":  # the named query's own parameters travel as a free-form object
        fields["params"] = (dict[str, Any], {})
    return create_model(f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields)


def decode_args(name: str, body: bytes) -> dict[str, Any]:
    """Keyword arguments for Store.<name> from a JSON request body; XscreenError naming a bad argument."""
    try:
        args = args_model(name).model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        raise errors.XscreenError(f"{name}: bad argument '{where}': {first['msg']}", title="Bad request") from None
    kwargs = {k: getattr(args, k) for k in type(args).model_fields}
    if name == "query":
        kwargs.update(kwargs.pop("params"))
    return kwargs


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

    Creates the home's owner token on first use (analytics.identity); every request passes `Guard` first."""
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
        binary = method == "ingest" and request.headers.get("content-type") == INGEST_BINARY

        def run() -> Response:  # token lookup, parsing, the store call and encoding all block: off the event loop
            principal = _principal(store, request)
            kwargs = {"batch": decode(body)} if binary else decode_args(method, body)
            bound = authz.bind(method, kwargs, principal, settings.auth.require_sessions)
            return encode_result(getattr(store, method)(**bound))

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

    from analytics.spool import SpoolIngester
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
