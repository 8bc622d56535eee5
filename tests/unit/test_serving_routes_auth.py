"""Every route of the service, found by walking the app's routes, against the scope it needs.

:data:`SCOPED` and :data:`PUBLIC` are the specification: a route the app has and this file
does not name fails the test (so a new route cannot ship without a decision on its auth),
and so does a named route the app lacks. For each route: no key and an unknown key get 401
where a scope is needed; a key of every other single scope gets 403; the right scope gets
past auth (whatever the route then answers: 200, 404 for a placeholder id, 422 for an
empty body), and a body that is not even JSON is still answered 401 / 403 before its 422;
a public route never answers 401 / 403. The OpenAPI schema must say the same
(``security`` on exactly the scoped operations), since clients and schemathesis read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Route

from mtlrec.serving.app import create_app
from mtlrec.serving.auth import SCOPES, Scope
from mtlrec.serving.settings import ServeSettings
from serving_support import TinyServing

SCOPED: dict[tuple[str, str], Scope] = {
    ("POST", "/v1/recommend"): "recommend",
    ("POST", "/v1/score"): "score",
    ("GET", "/v1/items/{item_id}/similar"): "recommend",
    ("GET", "/v1/users"): "users",
    ("GET", "/v1/users/{user_id}/history"): "users",
    ("POST", "/v1/admin/reload"): "admin",
}
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/ui"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
}
METRICS = ("GET", "/metrics")
DOCS = {
    (method, path)
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc")
    for method in ("GET", "HEAD")
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path template)`` of every HTTP route ``app`` answers, included routers
    flattened (FastAPI's :func:`~fastapi.routing.iter_route_contexts`)."""
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        assert isinstance(route, Route), f"{route!r}: a route kind this test does not know"
        assert context.path and context.methods, f"{route!r}: no path or methods"
        found |= {(method, context.path) for method in context.methods}
    return found


@pytest.fixture(scope="module", params=["defaults", "docs_and_locked_metrics"])
def served(request: pytest.FixtureRequest, tiny_serving: TinyServing) -> Iterator[TestClient]:
    settings = ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file)
    if request.param == "docs_and_locked_metrics":
        settings = settings.model_copy(update={"docs": True, "metrics_require_key": True})
    with TestClient(create_app(settings)) as client:
        yield client


def expected_routes(settings: ServeSettings) -> dict[tuple[str, str], Scope | None]:
    """What the service must answer under ``settings``, and the scope each route needs."""
    expected: dict[tuple[str, str], Scope | None] = {**SCOPED, **dict.fromkeys(PUBLIC)}
    expected[METRICS] = "metrics" if settings.metrics_require_key else None
    if settings.docs:
        expected |= dict.fromkeys(DOCS)
    return expected


def test_every_route_has_its_auth_declared(served: TestClient) -> None:
    app: FastAPI = served.app  # type: ignore[assignment]
    assert app_routes(app) == set(expected_routes(app.state.settings))


def test_every_route_answers_keys_as_its_scope_says(
    served: TestClient, tiny_serving: TinyServing
) -> None:
    app: FastAPI = served.app  # type: ignore[assignment]
    for (method, path), scope in expected_routes(app.state.settings).items():
        url = re.sub(r"\{[^}]+\}", "placeholder", path)
        body = {} if method == "POST" else None

        def call(
            key: str | None,
            method: str = method,
            url: str = url,
            body: dict[str, str] | None = body,
        ) -> int:
            headers = {"X-API-Key": key} if key is not None else {}
            return served.request(method, url, json=body, headers=headers).status_code

        where = f"{method} {path}"
        if scope is None:
            assert call(None) not in (401, 403), where
            assert all(call(tiny_serving.keys[s]) not in (401, 403) for s in SCOPES), where
            continue
        missing = served.request(method, url, json=body)
        assert missing.status_code == 401, where
        assert missing.headers["www-authenticate"] == "ApiKey", where
        assert call("mtk_not-a-key") == 401, where
        for other in SCOPES:
            status = call(tiny_serving.keys[other])
            if other == scope:
                assert status not in (401, 403), (where, other, status)
            else:
                assert status == 403, (where, other, status)
        assert call(tiny_serving.keys["all"]) not in (401, 403), where
        if method == "POST":  # a body that is not JSON: still auth first, then the 422
            for key, status in ((None, 401), (tiny_serving.keys[_other(scope)], 403)):
                headers = {"Content-Type": "application/json"}
                headers |= {"X-API-Key": key} if key else {}
                broken = served.post(url, content=b"{not json", headers=headers)
                assert broken.status_code == status, (where, broken.text)
            broken = served.post(
                url,
                content=b"{not json",
                headers={"Content-Type": "application/json", "X-API-Key": tiny_serving.keys[scope]},
            )
            assert broken.status_code == 422, where


def _other(scope: Scope) -> Scope:
    """A scope that is not ``scope``."""
    return next(s for s in SCOPES if s != scope)


def test_the_schema_declares_the_same_security(served: TestClient) -> None:
    app: FastAPI = served.app  # type: ignore[assignment]
    schema = served.get("/openapi.json").json()
    documented = {
        (method.upper(), path): bool(operation.get("security"))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    expected = expected_routes(app.state.settings)
    in_schema = {route for route in expected if route[1] in schema["paths"]}
    assert set(documented) == in_schema
    assert documented == {route: expected[route] is not None for route in in_schema}
    # what the schema leaves out is the page, its redirect, the schema itself and the docs
    assert {path for _, path in set(expected) - in_schema} <= {
        "/",
        "/ui",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
