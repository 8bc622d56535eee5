"""The service under a real uvicorn server on 127.0.0.1: auth, validation, limits, cold
start, metrics, hot reload under load, and a graceful shutdown of ``mtlrec serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mtlrec.serving.app import create_app
from mtlrec.serving.settings import ServeSettings
from serving_support import LiveServer, TinyServing, free_port


@pytest.fixture
def live(tiny_serving: TinyServing) -> Iterator[LiveServer]:
    settings = ServeSettings(
        artifact=tiny_serving.plain, api_keys=tiny_serving.key_file, max_body_bytes=4096
    )
    with LiveServer(create_app(settings)) as server:
        yield server


def _key(tiny: TinyServing, name: str) -> dict[str, str]:
    return {"X-API-Key": tiny.keys[name]}


def test_auth_401_403_and_scopes(live: LiveServer, tiny_serving: TinyServing) -> None:
    body = {"k": 3}
    with httpx.Client(base_url=live.url) as client:
        missing = client.post("/v1/recommend", json=body)
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "ApiKey"
        wrong = client.post("/v1/recommend", json=body, headers={"X-API-Key": "mtk_guess"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "invalid API key"
        scoped = client.post("/v1/recommend", json=body, headers=_key(tiny_serving, "score"))
        assert scoped.status_code == 403 and "'recommend' scope" in scoped.json()["message"]
        assert client.post(
            "/v1/recommend", json=body, headers=_key(tiny_serving, "recommend")
        ).is_success
        pairs = {"pairs": [{"user_id": "U1", "item_id": "I1"}]}
        assert (
            client.post(
                "/v1/score", json=pairs, headers=_key(tiny_serving, "recommend")
            ).status_code
            == 403
        )
        assert client.post("/v1/score", json=pairs, headers=_key(tiny_serving, "score")).is_success
        reload = {"path": tiny_serving.fused.name}
        denied = client.post(
            "/v1/admin/reload", json=reload, headers=_key(tiny_serving, "recommend")
        )
        assert denied.status_code == 403
        # the unauthenticated learn nothing about the body: auth is checked first
        assert client.post("/v1/recommend", json={"k": "x"}).status_code == 401
        assert client.get("/healthz").is_success and client.get("/metrics").is_success


def test_validation_and_body_limit(live: LiveServer, tiny_serving: TinyServing) -> None:
    headers = _key(tiny_serving, "all")
    with httpx.Client(base_url=live.url, headers=headers) as client:
        bad = client.post("/v1/recommend", json={"k": -1, "filters": {"exclude_seen": "maybe"}})
        assert bad.status_code == 422
        message = bad.json()["message"]
        assert "body.k: Input should be greater than or equal to 1" in message
        assert "body.filters.exclude_seen: Input should be a valid boolean" in message
        extra = client.post("/v1/score", json={"pairs": [], "debug": True})
        assert (
            extra.status_code == 422
            and "body.pairs: List should have at least 1 item" in extra.json()["message"]
        )
        query = client.get("/v1/users", params={"limit": 0})
        assert query.status_code == 422 and query.json()["message"].startswith("query.limit:")
        big = {"history": [f"I{i}" for i in range(300)] * 3}
        too_large = client.post("/v1/recommend", json=big)
        assert too_large.status_code == 413 and "4096 bytes" in too_large.json()["message"]

        def stream() -> Iterator[bytes]:
            payload = json.dumps(big).encode()
            for start in range(0, len(payload), 1000):
                yield payload[start : start + 1000]

        streamed = client.post(
            "/v1/recommend", content=stream(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.get("/healthz").is_success  # the server is fine afterwards


def test_cold_start_paths(live: LiveServer, tiny_serving: TinyServing) -> None:
    with httpx.Client(base_url=live.url, headers=_key(tiny_serving, "all")) as client:
        known_user = client.get("/v1/users", params={"limit": 1}).json()["users"][0]
        history = client.get(f"/v1/users/{known_user}/history").json()["items"][:3]
        cold = client.post(
            "/v1/recommend", json={"user_id": "brand-new-user", "history": history, "k": 5}
        ).json()
        assert cold["strategy"] == "cold_history" and cold["known_user"] is False
        assert len(cold["items"]) == 5 and not {i["item_id"] for i in cold["items"]} & set(history)
        assert all(i["scores"] and i["reason"] for i in cold["items"])
        anonymous = client.post("/v1/recommend", json={"user_id": "nobody", "k": 4}).json()
        assert anonymous["strategy"] == "popularity" and len(anonymous["items"]) == 4
        assert all(i["reason"].startswith("popular: ") for i in anonymous["items"])
        known = client.post("/v1/recommend", json={"user_id": known_user, "k": 4}).json()
        assert known["strategy"] == "model" and known["known_user"] is True


def _metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise KeyError(name)


def test_hot_reload_under_load_fails_no_request(
    live: LiveServer, tiny_serving: TinyServing
) -> None:
    headers = _key(tiny_serving, "all")
    versions: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def stream(user: str) -> None:
        with httpx.Client(base_url=live.url, headers=headers, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post("/v1/recommend", json={"user_id": user, "k": 5})
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200 or len(response.json()["items"]) != 5:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    versions[response.json()["model_version"]] += 1

    with httpx.Client(base_url=live.url, headers=headers) as admin:
        users = admin.get("/v1/users", params={"limit": 3}).json()["users"]
        before = admin.get("/readyz").json()["model_version"]
        workers = [threading.Thread(target=stream, args=(u,)) for u in users]
        for worker in workers:
            worker.start()
        time.sleep(0.8)
        outside = admin.post("/v1/admin/reload", json={"path": "/etc"})
        assert outside.status_code == 403 and "reload root" in outside.json()["message"]
        missing = admin.post("/v1/admin/reload", json={"path": "no-such-bundle"})
        assert missing.status_code == 404
        broken = admin.post("/v1/admin/reload", json={"path": "."})  # a folder, no manifest
        assert broken.status_code == 409 and "no manifest.json" in broken.json()["message"]
        reloaded = admin.post(
            "/v1/admin/reload", json={"path": tiny_serving.fused.name}, timeout=60
        )
        time.sleep(0.8)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert reloaded.status_code == 200, reloaded.text
        after = reloaded.json()
        assert after["previous_version"] == before and after["version"] != before
        assert after["name"] == "tiny-fused"
        assert failures == []
        assert set(versions) == {before, after["version"]}  # both models answered, no gap
        assert admin.get("/readyz").json()["model_version"] == after["version"]
        fused = admin.post("/v1/recommend", json={"user_id": users[0], "k": 3}).json()
        assert fused["strategy"] == "fused"
        metrics = admin.get("/metrics").text
        assert _metric(metrics, "mtlrec_model_info", version=after["version"]) == 1.0
        assert _metric(metrics, "mtlrec_model_reloads_total", result="ok") == 1.0
        assert _metric(metrics, "mtlrec_model_reloads_total", result="failed") == 3.0
        assert _metric(
            metrics, "mtlrec_http_requests_total", route="/v1/recommend", status="200"
        ) >= sum(versions.values())
        assert _metric(metrics, "mtlrec_http_requests_in_flight") >= 1.0  # this one


def test_graceful_shutdown_finishes_the_request_in_flight(
    tiny_serving: TinyServing, tmp_path: Path
) -> None:
    """``mtlrec serve`` gets SIGTERM while a request's body is still arriving: it stops
    accepting connections, answers that request in full, then exits."""
    port = free_port()
    env = {**os.environ, "MTLREC_API_KEYS_FILE": str(tiny_serving.key_file)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mtlrec.cli.main",
            "serve",
            str(tiny_serving.plain),
            "--port",
            str(port),
            "--graceful-timeout",
            "20",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        body = json.dumps({"user_id": "U1", "k": 3}).encode()
        head = (
            f"POST /v1/recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
            f"{tiny_serving.keys['all']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
            connection.sendall(head + body[:10])
            time.sleep(0.5)  # the server has the request line and headers
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            with pytest.raises(OSError):  # no new connections once shutting down
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            connection.sendall(body[10:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 200 OK", answer[:300]
        payload = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert payload["known_user"] is True and len(payload["items"]) == 3
        # uvicorn re-raises the signal it caught once shutdown is done: killed by SIGTERM
        # is its clean exit (after "Finished server process", checked below)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0]
    assert "Shutting down" in output and "Finished server process" in output, output
    assert "shutting down: requests in flight finish first" in output
    assert "U1" not in output  # user ids never reach the logs
    assert "user=u:" in output
