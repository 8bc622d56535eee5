"""The HTTP routes: ``/v1/...`` (API key with a scope), health, readiness and metrics.

Scopes: ``recommend`` for ``POST /v1/recommend`` and similar items, ``score`` for
``POST /v1/score``, ``users`` for the user list and histories, ``admin`` for reloads and
``metrics`` for ``/metrics`` when the settings ask for a key there (:func:`metrics_router`).

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so the event loop
keeps accepting connections and answering ``/healthz`` while a model runs. Each request reads
the served model once (:attr:`ModelHolder.current`) and uses it to the end (hot reload).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from mtlrec.serving.auth import KeyRecord, KeyStore, Scope
from mtlrec.serving.engine import ServingModel, UnknownItemsError
from mtlrec.serving.filters import FilterError
from mtlrec.serving.holder import ModelHolder, NotReadyError, return_freed_memory
from mtlrec.serving.metrics import CONTENT_TYPE, ServiceMetrics
from mtlrec.serving.middleware import USER_STATE, mask_user_id
from mtlrec.serving.schemas import (
    MAX_ID_LENGTH,
    ErrorBody,
    Health,
    HistoryResponse,
    Ready,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
    ScoreRequest,
    ScoreResponse,
    SimilarQuery,
    SimilarResponse,
    UsersQuery,
    UsersResponse,
)
from mtlrec.serving.settings import ServeSettings

API_KEY_HEADER = "X-API-Key"
api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key of 'mtlrec api-keys add'; each route needs one of its scopes.",
)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "No API key, or an unknown one",
        403: "The key lacks the route's scope (reload: a path outside the reload root)",
        400: "The body could not be read (not UTF-8 / JSON)",
        404: "Unknown user, item or attribute; no artifact at the path",
        409: "The artifact at the path does not load (not an artifact, damaged)",
        413: "Request body over the service's limit",
        422: "The request does not validate (the message says what and where)",
        503: "No model loaded, or shutting down",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


API_ERRORS = (401, 403, 413, 422)
BODY_ERRORS = (400, *API_ERRORS)


# ----------------------------------------------------------------------------- dependencies
class ScopeCheck:
    """The dependency that admits a request whose API key has :attr:`scope` (401 / 403).

    A route declares it in ``dependencies``; :func:`auth_failure` finds it there again for
    errors FastAPI raises before any dependency runs (a body that is not JSON)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def verify(self, request: Request, key: str | None) -> KeyRecord:
        """The key's record, or the 401 / 403 the request gets."""
        keys: KeyStore = request.app.state.keys
        record = keys.lookup(key)
        if record is None:
            raise HTTPException(
                401,
                f"missing {API_KEY_HEADER} header" if not key else "invalid API key",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if self.scope not in record.scopes:
            raise HTTPException(403, f"this API key lacks the {self.scope!r} scope")
        return record

    async def __call__(  # no I/O: runs on the event loop, not in the thread pool
        self, request: Request, key: Annotated[str | None, Security(api_key)] = None
    ) -> KeyRecord:
        return self.verify(request, key)


def require(scope: Scope) -> ScopeCheck:
    """A dependency that admits a request whose API key has ``scope`` (401 / 403)."""
    return ScopeCheck(scope)


def auth_failure(request: Request) -> HTTPException | None:
    """The 401 / 403 that the auth of the request's route gives it, or None (admitted, or
    a route without a scope). For errors raised before dependencies run, so that a caller
    without the right key learns nothing from them."""
    route = request.scope.get("route")
    for dependency in getattr(route, "dependencies", ()):
        check = getattr(dependency, "dependency", None)
        if isinstance(check, ScopeCheck):
            try:
                check.verify(request, request.headers.get(API_KEY_HEADER))
            except HTTPException as error:
                return error
    return None


async def single_query_values(request: Request) -> None:
    """Every query parameter at most once (``?k=1&k=2`` is a 422, not the last one)."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HTTPException(422, f"query.{repeated[0]}: give each query parameter once")


async def served(request: Request) -> ServingModel:
    """The model this request is answered with (read once; 503 when none)."""
    holder: ModelHolder = request.app.state.holder
    try:
        return holder.current
    except NotReadyError as error:
        raise HTTPException(503, str(error)) from None


def _settings(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


def _mask(request: Request, user_id: str | None) -> None:
    if user_id:
        setattr(request.state, USER_STATE, mask_user_id(user_id, _settings(request).log_salt))


def shortened(text: str, limit: int = 60) -> str:
    """``text`` quoted as :func:`repr` does, cut to ``limit`` characters with an ellipsis
    (what a message may echo of a request's input)."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "\u2026")


def without_root(message: str, root: Path) -> str:
    """``message`` with ``root``'s absolute path taken out: paths under it relative to it,
    ``root`` itself as ``.`` (error answers never show the server's file system)."""
    return message.replace(f"{root}{os.sep}", "").replace(str(root), ".")


Model = Annotated[ServingModel, Depends(served)]
PathId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH)]
"""A user or item id in the URL path, as long as a body's ids may be (longer: a 422)."""
router = APIRouter()


# ----------------------------------------------------------------------------- API
@router.post(
    "/v1/recommend",
    response_model=RecommendResponse,
    responses=_errors(*BODY_ERRORS, 404, 503),
    tags=["recommend"],
    dependencies=[Depends(require("recommend"))],
)
def recommend(body: RecommendRequest, request: Request, model: Model) -> RecommendResponse:
    """Top-k items for a user id, or for an ad-hoc history of a user the model does not know
    (cold start), or the popular items when neither is given; with filters. Unknown item
    ids in the history and filters are ignored (and listed); an attribute filter on a
    column the artifact does not have is a 404."""
    _mask(request, body.user_id)
    try:
        response = model.recommend(body)
    except FilterError as error:
        raise HTTPException(404, str(error)) from None
    metrics: ServiceMetrics = request.app.state.metrics
    metrics.recommendations.labels(response.strategy).inc()
    return response


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses=_errors(*BODY_ERRORS, 404, 503),
    tags=["score"],
    dependencies=[Depends(require("score"))],
)
def score(body: ScoreRequest, model: Model) -> ScoreResponse:
    """Per-task predictions of (user, item) pairs. Unknown users are scored as an unseen
    user; unknown items are a 404."""
    try:
        return model.score(body)
    except UnknownItemsError as error:
        raise HTTPException(404, str(error)) from None


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarResponse,
    responses=_errors(*API_ERRORS, 404, 503),
    tags=["recommend"],
    dependencies=[Depends(require("recommend")), Depends(single_query_values)],
)
def similar(
    item_id: PathId, query: Annotated[SimilarQuery, Query()], model: Model
) -> SimilarResponse:
    """Items most similar to one item (LM embeddings, else co-occurrence)."""
    try:
        return model.similar(item_id, query.k)
    except KeyError:
        raise HTTPException(404, f"unknown item id {shortened(item_id)}") from None


@router.get(
    "/v1/users",
    response_model=UsersResponse,
    responses=_errors(*API_ERRORS, 503),
    tags=["users"],
    dependencies=[Depends(require("users")), Depends(single_query_values)],
)
def users(query: Annotated[UsersQuery, Query()], model: Model) -> UsersResponse:
    """A page of the artifact's user ids (for pickers such as /ui; the ``users`` scope)."""
    return model.users(query.offset, query.limit, query.prefix)


@router.get(
    "/v1/users/{user_id}/history",
    response_model=HistoryResponse,
    responses=_errors(*API_ERRORS, 404, 503),
    tags=["users"],
    dependencies=[Depends(require("users"))],
)
def history(user_id: PathId, request: Request, model: Model) -> HistoryResponse:
    """The items a known user interacted with (the ``users`` scope)."""
    _mask(request, user_id)
    try:
        return model.history(user_id)
    except KeyError:
        raise HTTPException(404, "unknown user id") from None


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    responses=_errors(*BODY_ERRORS, 404, 409),
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
)
def reload(body: ReloadRequest, request: Request, background: BackgroundTasks) -> ReloadResponse:
    """Load another artifact (inside the reload root) and serve it from now on; requests
    in flight finish with the model they started with (once the answer is sent, memory the
    old model freed goes back to the system). A path outside the reload root is a
    403, a missing one (or one no file system can hold: a name over 255 bytes) a 404, one
    that does not load (not an artifact, damaged) a 409; the current model stays in all
    these cases. Messages name paths relative to the reload root, never the server's own."""
    settings = _settings(request)
    holder: ModelHolder = request.app.state.holder
    metrics: ServiceMetrics = request.app.state.metrics
    root = settings.reload_folder

    def refuse(status: int, message: str) -> HTTPException:
        metrics.reloads.labels("failed").inc()
        return HTTPException(status, f"path: {message}")

    path = Path(body.path)
    try:
        target = (path if path.is_absolute() else root / path).resolve()
        inside = target.is_relative_to(root)
        found = inside and target.exists()
    except (OSError, ValueError) as error:  # a name too long, a NUL byte, ...
        reason = os.strerror(error.errno) if isinstance(error, OSError) and error.errno else ""
        why = f" ({reason})" if reason else ""
        raise refuse(404, f"no artifact at {shortened(body.path)}{why}") from None
    if not inside:
        raise refuse(
            403, "reloads may only read inside the reload root (mtlrec serve --reload-root)"
        )
    shown = shortened(target.relative_to(root).as_posix())
    if not found:
        raise refuse(404, f"nothing at {shown}")
    try:
        reloaded = holder.load(target)
    except (OSError, ValueError) as error:  # ArtifactError is a ValueError
        reason = without_root(str(error).removeprefix(f"{target}: "), root)
        raise refuse(409, f"cannot serve {shown}: {reason}") from None
    assert reloaded is not None
    metrics.reloads.labels("ok").inc()
    metrics.set_model(reloaded.current)
    background.add_task(return_freed_memory)
    return ReloadResponse(
        previous_version=reloaded.previous.version,
        version=reloaded.current.version,
        name=reloaded.current.name,
        load_s=round(reloaded.load_s, 3),
    )


# ----------------------------------------------------------------------------- operations
@router.get("/healthz", response_model=Health, tags=["operations"])
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready"}},
    tags=["operations"],
)
def readyz(request: Request) -> Any:
    """Readiness: a model is loaded and the service is not shutting down (else 503)."""
    holder: ModelHolder = request.app.state.holder
    if not holder.ready:
        return JSONResponse(
            Ready(status="not ready", model_version=None, model_name=None).model_dump(),
            status_code=503,
        )
    model = holder.current
    return Ready(status="ready", model_version=model.version, model_name=model.name)


def metrics_router(*, key_required: bool) -> APIRouter:
    """The router of ``GET /metrics``: open, or (``key_required``) for a key with the
    ``metrics`` scope, which the OpenAPI schema then states."""
    metrics_routes = APIRouter()

    @metrics_routes.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}},
            **(_errors(401, 403) if key_required else {}),
        },
        tags=["operations"],
        dependencies=[Depends(require("metrics"))] if key_required else [],
    )
    def metrics(request: Request) -> Response:
        """Prometheus metrics (text exposition format)."""
        collected: ServiceMetrics = request.app.state.metrics
        return Response(collected.render(), media_type=CONTENT_TYPE)

    return metrics_routes
