"""``create_app(settings)``: the FastAPI application of ``mtlrec serve``.

The artifact is loaded, verified and warmed up when the app is created (so the app is
ready as soon as it exists: under uvicorn, under FastAPI's TestClient, under schemathesis);
the lifespan sets torch's thread count on start and marks the service not ready on
shutdown (uvicorn then stops accepting connections and lets the requests in flight finish,
up to its graceful timeout).

``/openapi.json`` is always served; the Swagger UI (``/docs``) and ReDoc (``/redoc``) pages
only with ``settings.docs``, since FastAPI's pages load their scripts from a CDN and do not
render offline. ``/metrics`` needs a key with the ``metrics`` scope when
``settings.metrics_require_key`` says so.

Error answers share one shape (:class:`~mtlrec.serving.schemas.ErrorBody`): ``error`` (a
code: ``unauthorized``, ``forbidden``, ``not_found``, ``payload_too_large``,
``validation_error``, ``conflict``, ``not_ready``, ...), ``message`` (a sentence) and, for
validation errors, ``detail`` (pydantic's list: type, loc, msg).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

from mtlrec import __version__
from mtlrec.export.artifact import load_artifact
from mtlrec.serving.auth import KeyStore
from mtlrec.serving.engine import ServingModel
from mtlrec.serving.holder import ModelHolder, limit_malloc_arenas
from mtlrec.serving.metrics import ServiceMetrics
from mtlrec.serving.middleware import ServiceMiddleware
from mtlrec.serving.routes import auth_failure, metrics_router, router
from mtlrec.serving.settings import ServeSettings

LOG = logging.getLogger("mtlrec.serving")

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    503: "not_ready",
}


def model_loader(settings: ServeSettings) -> Any:
    """``path -> ServingModel``: load and verify the artifact, precompute for serving."""

    def load(path: Path) -> ServingModel:
        return ServingModel(
            load_artifact(path),
            candidates=settings.candidates,
            full_rank_limit=settings.full_rank_limit,
        )

    return load


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """``"body.k: Input should be less than or equal to 1000; ..."`` (first three)."""
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    denied = auth_failure(request)  # FastAPI reads a body's JSON before auth runs
    if denied is not None:
        return await _http_error(request, denied)
    errors = [
        {k: v for k, v in error.items() if k in ("type", "loc", "msg")} for error in exc.errors()
    ]
    return JSONResponse(
        {
            "error": "validation_error",
            "message": _validation_message(errors),
            "detail": jsonable_encoder(errors),
        },
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": ERROR_CODES.get(exc.status_code, "error"), "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _ui_page() -> str:
    return (resources.files("mtlrec.serving") / "static" / "ui.html").read_text("utf-8")


def create_app(
    settings: ServeSettings,
    *,
    keys: KeyStore | None = None,
    holder: ModelHolder | None = None,
) -> FastAPI:
    """The service for ``settings`` (see the module docstring). ``keys`` default to the
    settings' key file; ``holder`` to a new one loading ``settings.artifact`` now."""
    limit_malloc_arenas()  # before the request threads: a bounded resident size
    keys = keys if keys is not None else KeyStore.from_file(settings.api_keys)
    metrics = ServiceMetrics()
    if holder is None:
        holder = ModelHolder(model_loader(settings))
        holder.load(settings.artifact)
    metrics.set_model(holder.current)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        # the thread pool that runs the (synchronous) routes: bounded threads, bounded memory
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        holder.shutting_down = False  # a lifespan may run again (test clients)
        model = holder.current
        LOG.info("serving %s %s from %s", model.name, model.version, model.artifact.path)
        yield
        holder.shutting_down = True
        LOG.info("shutting down: requests in flight finish first")

    app = FastAPI(
        title="mtlrec",
        version=__version__,
        summary="Multi-task recommendations from an mtlrec artifact",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,  # Swagger UI and ReDoc load from a CDN
        redoc_url="/redoc" if settings.docs else None,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.holder = holder
    app.state.metrics = metrics
    app.include_router(router)
    app.include_router(metrics_router(key_required=settings.metrics_require_key))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight,
    )
    page = _ui_page()

    @app.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    def ui() -> HTMLResponse:
        """A small page: pick a user, see the history and the recommendations."""
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
                "Cache-Control": "no-store",
            },
        )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    return app
