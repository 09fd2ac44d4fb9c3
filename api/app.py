"""The HTTP API and the web page: ``create_app`` builds the FastAPI app.

    uvicorn --factory api.app:create_app          # or: make serve

``create_app(services=..., settings=...)`` takes ready services (tests hand in small ones);
without them the catalog, index and models load in a background thread after start-up, and
``/readyz`` answers 503 until they are in. Runs are stored in SQLite (``SOURCING_RUNS_DB``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.context import Services
from api.jobs import RunQueue
from api.security import AccessGuard
from api.settings import Settings, get_settings
from api.state import AppState
from api.store import RunStore

log = logging.getLogger("sourcing.http")
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                           default=None)
RESULT_SCHEMA = Path(__file__).resolve().parent / "schemas" / "result.schema.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when sane), returns it in the
    ``X-Request-ID`` header and logs one line per request with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("request_id=%s %s %s -> %s in %.0f ms", request_id, scope["method"],
                     scope["path"], status, (time.perf_counter() - start) * 1000)
            request_id_var.reset(token)


BODY_LIMIT_BARE = "Content Too Large"  # what Starlette's body limit answers with


def body_limit_message(limit: int) -> str:
    """The 413 text for a body over ``limit``: it names the limit, so a client knows how far
    to shrink the upload (Starlette's own text says only "Content Too Large")."""
    return (f"{BODY_LIMIT_BARE}: the request body is over the limit of {limit:,} bytes "
            "(SOURCING_MAX_BODY_BYTES)")


class BodyLimitMessageMiddleware:
    """Rewrites the bare text/plain 413 of Starlette's body limit into ``body_limit_message``,
    keeping the status and content type. That answer is sent from middleware FastAPI places
    outside the app's own (``add_middleware``), so this wraps the whole stack
    (``SourcingAPI``); other 413s (a photo over its limits) are JSON and pass untouched."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.body = body_limit_message(limit).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # a text/plain 413 start, sent once its body is seen

        async def send_named(message: Message) -> None:
            nonlocal held
            if (message["type"] == "http.response.start" and message["status"] == 413
                    and _header(message, b"content-type").startswith(b"text/plain")):
                held = message
                return
            if held is not None:
                start, held = held, None
                if (message["type"] == "http.response.body" and not message.get("more_body")
                        and message.get("body", b"") == BODY_LIMIT_BARE.encode()):
                    start = {**start, "headers": [
                        *((k, v) for k, v in start.get("headers", [])
                          if k.lower() != b"content-length"),
                        (b"content-length", str(len(self.body)).encode())]}
                    message = {**message, "body": self.body}
                await send(start)
            await send(message)

        await self.app(scope, receive, send_named)


def _header(message: Message, name: bytes) -> bytes:
    return next((v for k, v in message.get("headers", []) if k.lower() == name), b"")


class SourcingAPI(FastAPI):
    """FastAPI whose outermost layers name the body limit in its 413 and give every answer,
    that 413 and unexpected 500s included, a request id: both answers are produced outside
    the middleware ``add_middleware`` installs."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.max_body_size is not None:
            stack = BodyLimitMessageMiddleware(stack, self.max_body_size)
        return RequestIdMiddleware(stack)


def _problem(request: Request, status: int, detail: Any,
             headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code=status,
                        headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        limit = getattr(request.app, "max_body_size", None)
        if exc.status_code == 413 and detail == BODY_LIMIT_BARE and limit is not None:
            detail = body_limit_message(limit)  # a body sent without a length, cut off
        return _problem(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = json.loads(json.dumps(exc.errors(), default=str))
        for error in detail:
            error.pop("input", None)  # never echo uploaded bytes back
            error.pop("ctx", None)
        return _problem(request, 422, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request_id=%s failed", getattr(request.state, "request_id", None))
        return _problem(request, 500, "internal error; quote the request id when reporting it")


def _load_services(state: AppState, settings: Settings) -> None:
    """Build the real services and warm them up (in a thread: start-up stays quick)."""
    from agents.graph import build_graph
    from agents.run import SourcingRunner
    from api.services import build_services, may_build_missing_index

    try:
        # a missing index is built only for the default demo setup; anywhere else readyz says
        # where it is missing and how to build it
        services = build_services(settings, progress=False,
                                  build_index_if_missing=may_build_missing_index(settings))
        SourcingRunner(services, graph=state.graph or build_graph()).warm_up()
    except Exception as exc:  # readyz reports it; the process keeps answering
        log.exception("loading services failed")
        state.load_error = f"loading failed: {exc}"
        return
    state.services = services


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    result = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
    for key in ("$schema", "$id"):
        result.pop(key, None)
    schema.setdefault("components", {}).setdefault("schemas", {})["SourcingResult"] = result
    app.openapi_schema = schema
    return schema


def _settings_or_exit() -> Settings:
    """The settings from the environment, or exit with one line per bad variable: uvicorn
    would otherwise print a long pydantic traceback that names the Python field only."""
    from pydantic import ValidationError

    from api.settings import settings_error_message

    try:
        return get_settings()
    except ValidationError as exc:
        raise SystemExit(f"error: invalid settings:\n{settings_error_message(exc)}") from None


def create_app(services: Services | None = None, settings: Settings | None = None,
               graph: Any = None) -> FastAPI:
    """The app. ``services`` ready-made (tests) or ``None`` to load them from ``settings``."""
    from agents.graph import build_graph

    settings = settings or _settings_or_exit()
    store = RunStore(settings.runs_db)
    if store.recovered:
        log.warning("%d run(s) interrupted by a previous stop marked failed: %s",
                    len(store.recovered), ", ".join(store.recovered))
    state = AppState(settings=settings, store=store,
                     queue=RunQueue(store, settings.run_workers), guard=AccessGuard(settings),
                     services=services, graph=graph or build_graph())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.services is None:
            threading.Thread(target=_load_services, args=(state, settings), daemon=True,
                             name="sourcing-load").start()
        yield
        await to_thread.run_sync(state.queue.shutdown)  # started runs get their grace
        store.cancel_queued()

    app = SourcingAPI(
        title="Sourcing agent API", version="1",
        description="One product photo in, a grounded shortlist of factories out. Runs are "
                    "stored; progress streams as server-sent events. The bundled supplier "
                    "catalog is synthetic demo data.",
        lifespan=lifespan, max_body_size=settings.max_body_bytes)
    app.state.sourcing = state
    _install_error_handlers(app)

    from api.routes import catalog, compliance, health, runs, search, web

    for module in (health, runs, search, compliance, catalog, web):
        app.include_router(module.router)
    web.mount_static(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


__all__ = ["create_app"]
