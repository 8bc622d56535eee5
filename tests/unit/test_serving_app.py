"""The FastAPI app in process (TestClient): error shapes, limits, metrics, the /ui page."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mtlrec.serving.app import create_app
from mtlrec.serving.settings import ServeSettings
from serving_support import TinyServing


@pytest.fixture(scope="module")
def client(tiny_serving: TinyServing) -> Iterator[TestClient]:
    settings = ServeSettings(
        artifact=tiny_serving.fused,
        api_keys=tiny_serving.key_file,
        max_body_bytes=2048,
        log_salt="test-salt",
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["X-API-Key"] = tiny_serving.keys["all"]
        yield test_client


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_validation_errors_say_what_and_where(client: TestClient) -> None:
    bad = client.post("/v1/recommend", json={"user_id": "", "k": "ten", "colour": 1})
    assert bad.status_code == 422
    body = bad.json()
    assert body["error"] == "validation_error"
    assert "body.user_id: String should have at least 1 character" in body["message"]
    assert "body.k: Input should be a valid integer" in body["message"]
    assert {tuple(d["loc"]) for d in body["detail"]} >= {("body", "colour"), ("body", "k")}
    too_many = client.post("/v1/recommend", json={"k": 101})
    assert too_many.status_code == 422
    assert too_many.json()["message"] == "body.k: Input should be less than or equal to 100"
    repeated = client.get("/v1/users", params=[("limit", "1"), ("limit", "2")])
    assert repeated.status_code == 422 and "query.limit: give each" in repeated.json()["message"]
    unknown_query = client.get("/v1/users", params={"colour": "red"})
    assert unknown_query.status_code == 422 and "query.colour" in unknown_query.json()["message"]
    not_json = client.post(
        "/v1/recommend", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and "JSON" in not_json.json()["message"]
    # well-formed requests naming what the artifact does not have: 404
    unknown_item = client.post("/v1/score", json={"pairs": [{"user_id": "u", "item_id": "?"}]})
    assert unknown_item.status_code == 404
    assert "item ids this artifact does not know: '?'" in unknown_item.json()["message"]
    attribute = client.post("/v1/recommend", json={"filters": {"attributes": {"brand": ["x"]}}})
    assert attribute.status_code == 404 and "'brand'" in attribute.json()["message"]
    missing = client.get("/v1/items/nope/similar")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get("/v1/users/nope/history").status_code == 404


def test_bodies_over_the_limit_get_413(client: TestClient) -> None:
    big = json.dumps({"history": ["x" * 200] * 20}).encode()  # > 2048 bytes
    declared = client.post(
        "/v1/recommend", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    streamed = client.post(
        "/v1/recommend", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413 and "2048 bytes" in streamed.json()["message"]


def test_metrics_count_requests_and_name_the_model(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = _samples(client.get("/metrics").text)
    user = client.get("/v1/users", params={"limit": 1}).json()["users"][0]
    with caplog.at_level(logging.INFO, logger="mtlrec.serving.access"):
        assert client.post("/v1/recommend", json={"user_id": user, "k": 3}).status_code == 200
        assert client.get(f"/v1/users/{user}/history").status_code == 200
    assert client.post("/v1/recommend", json={"k": 0}).status_code == 422
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)
    ok = (
        "mtlrec_http_requests_total",
        (("method", "POST"), ("route", "/v1/recommend"), ("status", "200")),
    )
    assert after[ok] == before.get(ok, 0) + 1
    client_errors = (
        "mtlrec_http_request_errors_total",
        (("kind", "client"), ("route", "/v1/recommend")),
    )
    assert after[client_errors] >= before.get(client_errors, 0) + 1
    count = (
        "mtlrec_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/v1/recommend")),
    )
    assert after[count] >= 2
    fused = ("mtlrec_recommendations_total", (("strategy", "fused"),))
    assert after[fused] == before.get(fused, 0) + 1
    info = [k for k in after if k[0] == "mtlrec_model_info"]
    assert len(info) == 1 and ("name", "tiny-fused") in info[0][1]
    # access log: route templates and masked ids, never the raw user id
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("POST /v1/recommend 200 ") and " user=u:" in line for line in lines)
    assert any(line.startswith("GET /v1/users/{user_id}/history 200") for line in lines)
    assert not any(user in line for line in lines)


def test_health_readiness_and_ui_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model_name"] == "tiny-fused"
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="api-key"' in page.text and "/v1/recommend" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external resources
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui"
    schema = client.get("/openapi.json").json()
    assert {"/v1/recommend", "/v1/score", "/v1/items/{item_id}/similar"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=:])/[^\s/'\"]+/")
"""Something like ``/tmp/x/`` or ``'/home/...`` inside a message."""


def test_reload_refuses_impossible_paths_with_a_4xx_naming_no_server_path(
    client: TestClient, tiny_serving: TinyServing
) -> None:
    root = tiny_serving.fused.parent
    cases = {
        "bad\x00name": 422,  # a NUL byte cannot be in a path
        "x" * 300: 404,  # a name over 255 bytes cannot exist
        "é" * 200: 404,  # 400 bytes
        "y" * 300 + "/bundle": 404,
        "no-such-bundle": 404,
        str(root / "no-such-bundle"): 404,
        ".": 409,  # a folder without a manifest
        "/etc": 403,
        "../..": 403,
    }
    for path, status in cases.items():
        answer = client.post("/v1/admin/reload", json={"path": path})
        assert answer.status_code == status, (path[:20], answer.text)
        message = answer.json()["message"]
        assert message.startswith("path: ") or message.startswith("body.path: ")
        assert str(root) not in answer.text and str(tiny_serving.root) not in answer.text
        assert not ABSOLUTE_PATH.search(message), message
        assert len(message) < 200, message
    assert client.post("/v1/admin/reload", json={"path": "."}).json()["message"] == (
        "path: cannot serve '.': no manifest.json; is this an artifact of 'mtlrec export'?"
    )


def test_request_bodies_are_not_coerced(client: TestClient) -> None:
    for body in (
        {"k": True},
        {"k": "5"},
        {"k": 5.5},
        {"user_id": 5},
        {"history": [1, 2]},
        {"filters": {"exclude_seen": "true"}},
        {"filters": {"exclude_seen": 1}},
    ):
        answer = client.post("/v1/recommend", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["message"].startswith("body.")
    assert client.post("/v1/recommend", json={"k": "5"}).json()["message"] == (
        "body.k: Input should be a valid integer"
    )
    numbers = client.post("/v1/score", json={"pairs": [{"user_id": 1, "item_id": 2}]})
    assert numbers.status_code == 422
    assert client.post("/v1/admin/reload", json={"path": 1}).status_code == 422
    assert len(client.post("/v1/recommend", json={"k": 5}).json()["items"]) == 5
    # 5.0 is an integer to JSON Schema (and to a JavaScript client)
    assert len(client.post("/v1/recommend", json={"k": 5.0}).json()["items"]) == 5
    # a query string is text: ?k=3 is the number 3, ?k=true is not a number
    item = client.post("/v1/recommend", json={"k": 1}).json()["items"][0]["item_id"]
    assert len(client.get(f"/v1/items/{item}/similar", params={"k": "3"}).json()["items"]) == 3
    assert client.get(f"/v1/items/{item}/similar", params={"k": "true"}).status_code == 422


def test_path_ids_are_limited_and_long_ones_never_echoed(client: TestClient) -> None:
    huge = "z" * 10_000
    for url, name in (
        (f"/v1/items/{huge}/similar", "item_id"),
        (f"/v1/users/{huge}/history", "user_id"),
    ):
        answer = client.get(url)
        assert answer.status_code == 422, answer.text[:200]
        assert answer.json()["message"] == f"path.{name}: String should have at most 256 characters"
        assert "z" * 100 not in answer.text
    longest = "y" * 256  # within the limit, unknown: a 404 that shows a shortened id
    unknown = client.get(f"/v1/items/{longest}/similar")
    assert unknown.status_code == 404 and "y" * 100 not in unknown.text
    assert unknown.json()["message"].startswith("unknown item id 'yyyy")
    assert client.get(f"/v1/users/{longest}/history").json()["message"] == "unknown user id"


def test_user_ids_and_histories_need_the_users_scope(
    client: TestClient, tiny_serving: TinyServing
) -> None:
    user = client.get("/v1/users", params={"limit": 1}).json()["users"][0]
    recommend_only = {"X-API-Key": tiny_serving.keys["recommend"]}
    for url in ("/v1/users", f"/v1/users/{user}/history"):
        denied = client.get(url, headers=recommend_only)
        assert denied.status_code == 403, denied.text
        assert denied.json()["message"] == "this API key lacks the 'users' scope"
    # recommending for a known user still works with the recommend scope alone
    answer = client.post("/v1/recommend", json={"user_id": user, "k": 2}, headers=recommend_only)
    assert answer.status_code == 200 and answer.json()["known_user"] is True


def test_docs_are_off_unless_asked_for(tiny_serving: TinyServing) -> None:
    """Swagger UI and ReDoc load their scripts from a CDN (no page renders offline), so they
    are off by default; the schema itself is always served."""
    plain = ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file)
    with TestClient(create_app(plain)) as off:
        for url in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert off.get(url).status_code == 404, url
        assert off.get("/openapi.json").status_code == 200
    with TestClient(create_app(plain.model_copy(update={"docs": True}))) as on:
        assert on.get("/docs").status_code == 200 and on.get("/redoc").status_code == 200


def test_metrics_need_a_key_when_the_setting_says_so(tiny_serving: TinyServing) -> None:
    plain = ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file)
    with TestClient(create_app(plain)) as open_metrics:
        assert open_metrics.get("/metrics").status_code == 200
        schema = open_metrics.get("/openapi.json").json()
        assert "security" not in schema["paths"]["/metrics"]["get"]
    locked = plain.model_copy(update={"metrics_require_key": True})
    with TestClient(create_app(locked)) as client:
        assert client.get("/metrics").status_code == 401
        recommend = client.get("/metrics", headers={"X-API-Key": tiny_serving.keys["recommend"]})
        assert recommend.status_code == 403
        assert recommend.json()["message"] == "this API key lacks the 'metrics' scope"
        scraper = client.get("/metrics", headers={"X-API-Key": tiny_serving.keys["metrics"]})
        assert scraper.status_code == 200 and "mtlrec_model_info" in scraper.text
        schema = client.get("/openapi.json").json()
        assert schema["paths"]["/metrics"]["get"]["security"] == [{"APIKeyHeader": []}]
        assert client.get("/healthz").status_code == 200  # probes never need a key


def test_requests_run_on_a_bounded_thread_pool(
    tiny_serving: TinyServing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``request_threads`` sizes the thread pool the synchronous routes run on (AnyIO's
    default is 40 threads: each one's stack and malloc state stay resident)."""
    import uvicorn
    from anyio import to_thread
    from typer.testing import CliRunner

    from mtlrec.cli.main import app as cli

    settings = ServeSettings(
        artifact=tiny_serving.fused, api_keys=tiny_serving.key_file, request_threads=3
    )
    app = create_app(settings)

    @app.get("/probe-threads")
    async def probe() -> dict[str, float]:
        return {"tokens": to_thread.current_default_thread_limiter().total_tokens}

    with TestClient(app) as client:
        assert client.get("/probe-threads").json() == {"tokens": 3}
        headers = {"X-API-Key": tiny_serving.keys["recommend"]}
        assert client.post("/v1/recommend", json={"k": 3}, headers=headers).status_code == 200
    assert (
        ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file).request_threads
        == 8
    )
    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    command = ["serve", str(tiny_serving.fused), "--api-keys", str(tiny_serving.key_file)]
    result = CliRunner().invoke(cli, [*command, "--request-threads", "4"])
    assert result.exit_code == 0, result.output
    assert served[-1].state.settings.request_threads == 4
    assert served[-1].state.settings.max_in_flight == 32  # load shedding on by default
    result = CliRunner().invoke(cli, [*command, "--max-in-flight", "0"])
    assert result.exit_code == 0, result.output
    assert served[-1].state.settings.max_in_flight is None  # 0: no limit


def test_serve_command_turns_docs_and_the_metrics_key_on(
    tiny_serving: TinyServing, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from mtlrec.cli.main import app as cli

    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    command = ["serve", str(tiny_serving.fused), "--api-keys", str(tiny_serving.key_file)]
    for flags, docs, locked in (
        ([], False, False),
        (["--docs", "--metrics-require-key"], True, True),
    ):
        result = CliRunner().invoke(cli, [*command, *flags])
        assert result.exit_code == 0, result.output
        settings = served[-1].state.settings
        assert (settings.docs, settings.metrics_require_key) == (docs, locked)
        assert (served[-1].docs_url is not None) == docs


def test_serve_command_with_workers_gives_every_worker_the_same_settings_and_keys(
    tiny_serving: TinyServing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers 2``: uvicorn gets the factory by name and each worker process builds its
    own app from the settings in the environment (the same log salt, so masked ids agree
    across workers), checks keys on its own, and loads its own model: a reload reaches
    only the worker that answers it (what the docs and the soak benchmark say)."""
    import uvicorn
    from typer.testing import CliRunner

    from mtlrec.cli.main import app as cli
    from mtlrec.cli.serve import SETTINGS_ENV, worker_app

    monkeypatch.setenv(SETTINGS_ENV, "")  # the command sets it; restored after the test
    runs: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **config: runs.append((app, config)))
    command = ["serve", str(tiny_serving.fused), "--api-keys", str(tiny_serving.key_file)]
    result = CliRunner().invoke(cli, [*command, "--workers", "2", "--metrics-require-key"])
    assert result.exit_code == 0, result.output
    target, config = runs[-1]
    assert target == "mtlrec.cli.serve:worker_app"
    assert (config["factory"], config["workers"]) == (True, 2)

    first, second = worker_app(), worker_app()  # what each spawned worker process runs
    assert first.state.settings == second.state.settings  # log_salt included
    assert first.state.settings.artifact == tiny_serving.fused.resolve()
    assert first.state.settings.metrics_require_key
    with TestClient(first) as one, TestClient(second) as two:
        for worker in (one, two):
            assert worker.post("/v1/recommend", json={"k": 3}).status_code == 401
            worker.headers["X-API-Key"] = tiny_serving.keys["recommend"]
            assert worker.post("/v1/recommend", json={"k": 3}).status_code == 200
            assert worker.get("/metrics").status_code == 403
        admin = {"X-API-Key": tiny_serving.keys["admin"]}
        path = str(tiny_serving.plain)
        assert one.post("/v1/admin/reload", json={"path": path}, headers=admin).status_code == 200
        names = [w.get("/readyz").json()["model_name"] for w in (one, two)]
        assert names == ["tiny-plain", "tiny-fused"]


def test_a_reload_hands_the_old_models_memory_back_after_answering(
    client: TestClient, tiny_serving: TinyServing, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mtlrec.serving import routes
    from mtlrec.serving.holder import return_freed_memory

    assert return_freed_memory()  # glibc: malloc_trim is there
    asked: list[str] = []
    monkeypatch.setattr(routes, "return_freed_memory", lambda: asked.append("trim"))
    refused = client.post("/v1/admin/reload", json={"path": "no-such-bundle"})
    assert refused.status_code == 404 and asked == []  # nothing was replaced
    answer = client.post("/v1/admin/reload", json={"path": str(tiny_serving.fused)})
    assert answer.status_code == 200, answer.text
    assert asked == ["trim"]
