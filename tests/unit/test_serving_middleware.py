"""Load shedding in :class:`~mtlrec.serving.middleware.ServiceMiddleware`: past
``max_in_flight`` model requests a new one gets 503 ``overloaded`` at once; probes, metrics
and admin routes are never shed; a slot frees as soon as a request is answered."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mtlrec.serving.metrics import ServiceMetrics
from mtlrec.serving.middleware import ServiceMiddleware, sheddable


def _app(
    release: asyncio.Event, max_in_flight: int | None
) -> tuple[ServiceMiddleware, ServiceMetrics]:
    async def slow(request: Request) -> JSONResponse:
        await request.body()
        await release.wait()  # held until the test lets it go
        return JSONResponse({"ok": True})

    async def quick(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/v1/recommend", slow, methods=["POST"]),
        Route("/v1/admin/reload", quick, methods=["POST"]),
        Route("/healthz", quick),
        Route("/metrics", quick),
    ]
    metrics = ServiceMetrics()
    middleware = ServiceMiddleware(
        Starlette(routes=routes),
        metrics=metrics,
        max_body_bytes=4096,
        max_in_flight=max_in_flight,
    )
    return middleware, metrics


def test_model_requests_over_the_limit_are_shed_at_once_and_probes_never() -> None:
    async def run() -> None:
        release = asyncio.Event()
        app, metrics = _app(release, max_in_flight=2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            held = [
                asyncio.create_task(client.post("/v1/recommend", json={"k": 1})) for _ in range(2)
            ]
            while app.model_requests < 2:  # both are inside the app, waiting
                await asyncio.sleep(0.001)
            shed = await client.post("/v1/recommend", json={"k": 1})
            assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
            assert shed.json()["error"] == "overloaded" and "limit of 2" in shed.json()["message"]
            for path in ("/healthz", "/metrics"):
                assert (await client.get(path)).status_code == 200
            assert (await client.post("/v1/admin/reload", json={})).status_code == 200
            release.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
            assert app.model_requests == 0
            assert (await client.post("/v1/recommend", json={"k": 1})).status_code == 200
        text = generate_latest(metrics.registry).decode()
        assert 'route="<shed>",status="503"' in text

    asyncio.run(run())


def test_without_a_limit_nothing_is_shed() -> None:
    async def run() -> None:
        release = asyncio.Event()
        app, _ = _app(release, max_in_flight=None)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            held = [asyncio.create_task(client.post("/v1/recommend", json={})) for _ in range(20)]
            while app.model_requests < 20:
                await asyncio.sleep(0.001)
            release.set()
            assert {r.status_code for r in await asyncio.gather(*held)} == {200}

    asyncio.run(run())


def test_only_model_routes_are_sheddable() -> None:
    assert sheddable("/v1/recommend") and sheddable("/v1/items/a/similar")
    assert not sheddable("/v1/admin/reload")
    assert not any(sheddable(p) for p in ("/healthz", "/readyz", "/metrics", "/ui", "/"))
