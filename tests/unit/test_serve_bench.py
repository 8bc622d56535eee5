"""The service benchmarks' parts (``benchmarks/serve_bench.py``, ``serve_load.py``,
``serve_soak.py``): per-minute percentiles, memory growth, the knee of a rate sweep, the
sweep's resume and report, the soak's minute rows, and the open-loop aiohttp client against a
small aiohttp server on 127.0.0.1. No mtlrec service is started and nothing is timed."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import serve_bench  # noqa: E402
import serve_load  # noqa: E402
import serve_soak  # noqa: E402


def _record(due_s: float, latency_ms: float, status: int = 200, lag_ms: float = 0.0) -> dict:
    return {"due_s": due_s, "latency_ms": latency_ms, "status": status, "lag_ms": lag_ms}


def test_per_window_groups_by_due_time_and_keeps_empty_minutes() -> None:
    first = [_record(0.5 + i * 0.5, float(i + 1)) for i in range(100)]  # due 0.5 .. 50.0 s
    late = [_record(59.999, 900.0, status=0, lag_ms=40.0)]  # due in minute 0, errored
    third = [_record(120.0, 7.0), _record(179.9, 9.0, status=503)]
    rows = serve_bench.per_window([*third, *late, *first], 60.0)  # order does not matter

    assert [r["window"] for r in rows] == [0, 1, 2]
    assert [r["start_s"] for r in rows] == [0.0, 60.0, 120.0]
    assert [r["requests"] for r in rows] == [101, 0, 2]
    assert [r["errors"] for r in rows] == [1, 0, 1]
    latencies = [float(i + 1) for i in range(100)] + [900.0]
    assert rows[0]["p50_ms"] == round(float(np.percentile(latencies, 50)), 2)
    assert rows[0]["p99_ms"] == round(float(np.percentile(latencies, 99)), 2)
    assert rows[0]["max_ms"] == 900.0
    assert rows[0]["lag_p99_ms"] == round(float(np.percentile([0.0] * 100 + [40.0], 99)), 2)
    assert rows[1]["p50_ms"] is None and rows[1]["p99_ms"] is None
    assert (rows[2]["p50_ms"], rows[2]["max_ms"]) == (8.0, 9.0)
    assert serve_bench.per_window([], 60.0) == []


def test_achieved_rate_is_capped_by_the_schedule_and_lowered_by_a_tail() -> None:
    on_time = [_record(i / 10, 20.0) for i in range(50)]  # 10/s, every answer in 20 ms
    assert serve_bench.achieved_rate(on_time, 10.0) == 10.0
    late = [*on_time[:-1], _record(4.9, 5100.0)]  # the last answer comes at 10 s
    assert serve_bench.achieved_rate(late, 10.0) == pytest.approx(5.0)
    assert serve_bench.achieved_rate([], 10.0) == 0.0
    # a timed-out request counts for nothing: half the requests failed, half the rate
    failed = [_record(i / 10, 5000.0, status=0) if i % 2 else r for i, r in enumerate(on_time)]
    assert serve_bench.achieved_rate(failed, 10.0) == pytest.approx(5.0)


def test_memory_growth_is_relative_to_the_start() -> None:
    assert serve_bench.memory_growth(200 * 2**20, 208 * 2**20) == pytest.approx(0.04)
    assert serve_bench.memory_growth(100, 90) == pytest.approx(-0.10)
    with pytest.raises(ValueError, match="positive"):
        serve_bench.memory_growth(0, 10)


def _point(rate: float, p99: float, errors: int = 0, achieved: float | None = None) -> dict:
    return {
        "rate_per_s": rate,
        "achieved_rate_per_s": rate if achieved is None else achieved,
        "errors": errors,
        "latency_from_due_time": {"p50_ms": p99 / 2, "p99_ms": p99},
    }


def test_knee_is_the_last_rate_holding_the_goal_before_the_first_that_does_not() -> None:
    points = [_point(400, 900.0), _point(50, 10.0), _point(200, 61.0), _point(100, 20.0)]
    knee = serve_bench.find_knee(points, goal_p99_ms=50.0)
    assert knee["knee_rate_per_s"] == 100
    assert knee["breaks_at_rate_per_s"] == 200
    assert knee["why"] == ["p99 61 ms >= 50 ms"]
    assert knee["within_sweep"] is True
    assert knee["p99_growth"] == {"50": 1.0, "100": 2.0, "200": 6.1, "400": 90.0}


def test_knee_counts_errors_and_a_rate_the_server_could_not_keep_up_with() -> None:
    errors = serve_bench.find_knee([_point(50, 10.0), _point(100, 12.0, errors=3)])
    assert (errors["knee_rate_per_s"], errors["why"]) == (50, ["3 errors"])
    behind = serve_bench.find_knee([_point(50, 10.0), _point(100, 12.0, achieved=90.0)])
    assert behind["breaks_at_rate_per_s"] == 100
    assert behind["why"] == ["achieved 90 of 100 requests/s"]
    # a later rate that holds again does not move the knee past the first failure
    dip = serve_bench.find_knee([_point(50, 10.0), _point(100, 70.0), _point(200, 12.0)])
    assert (dip["knee_rate_per_s"], dip["breaks_at_rate_per_s"]) == (50, 100)


def test_knee_above_the_sweep_and_below_its_lowest_rate() -> None:
    above = serve_bench.find_knee([_point(50, 10.0), _point(100, 11.0)])
    assert above["knee_rate_per_s"] == 100 and above["within_sweep"] is False
    assert above["why"] == [] and above["breaks_at_rate_per_s"] is None
    below = serve_bench.find_knee([_point(50, 80.0, errors=1), _point(100, 90.0)])
    assert below["knee_rate_per_s"] is None and below["breaks_at_rate_per_s"] == 50
    assert below["why"] == ["1 errors", "p99 80 ms >= 50 ms"]


def test_request_bodies_follow_the_mix_and_the_seed() -> None:
    users, items = [f"u{i}" for i in range(30)], [f"i{i}" for i in range(40)]

    def draw(seed: int) -> list[dict[str, Any]]:
        return list(
            serve_bench.request_bodies(
                users, items, 2000, k=10, cold_share=0.1, anonymous_share=0.05, seed=seed
            )
        )

    bodies = draw(0)
    assert bodies == draw(0) and bodies != draw(1)
    cold = [b for b in bodies if "history" in b]
    anonymous = [b for b in bodies if "user_id" not in b]
    known = [b for b in bodies if b.get("user_id") in users]
    assert len(cold) + len(anonymous) + len(known) == 2000
    assert 150 < len(cold) < 250 and 60 < len(anonymous) < 140
    assert all(1 <= len(b["history"]) <= 5 and set(b["history"]) <= set(items) for b in cold)
    assert all(b["k"] == 10 for b in bodies)


async def _bench_server(
    answer: Callable[[dict[str, Any]], Awaitable[web.Response]],
) -> TestServer:
    """An aiohttp server on 127.0.0.1 whose POST /v1/recommend answers ``answer(body)``
    and whose GET /v1/users pages through three users."""

    async def recommend(request: web.Request) -> web.Response:
        return await answer(await request.json())

    async def users(request: web.Request) -> web.Response:
        offset = int(request.query["offset"])
        return web.json_response({"users": ["u1", "u2", "u3"][offset:]})

    async def history(request: web.Request) -> web.Response:
        return web.json_response({"items": [f"i-{request.match_info['user']}"]})

    app = web.Application()
    app.router.add_post("/v1/recommend", recommend)
    app.router.add_get("/v1/users", users)
    app.router.add_get("/v1/users/{user}/history", history)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def test_drive_records_every_request_with_its_due_time_status_and_strategy() -> None:
    async def answer(body: dict[str, Any]) -> web.Response:
        if body.get("user_id") == "broken":
            return web.json_response({"error": "not_ready"}, status=503)
        if body.get("user_id") == "gone":
            await asyncio.sleep(5)  # past the client's timeout: no answer
        return web.json_response({"strategy": "fused", "items": []})

    bodies = [{"user_id": "a", "k": 10}, {"user_id": "broken"}, {"user_id": "gone"}] * 4
    seen: list[dict[str, Any]] = []

    async def run() -> list[dict[str, Any]]:
        server = await _bench_server(answer)
        try:
            url = str(server.make_url(""))
            async with serve_bench.BenchClient(url, timeout=0.5) as client:
                loop = asyncio.get_running_loop()
                return await serve_bench.drive(
                    client, iter(bodies), 1000.0, start=loop.time(), on_result=seen.append
                )
        finally:
            await server.close()

    records = asyncio.run(run())
    assert len(records) == len(seen) == 12
    assert [r["due_s"] for r in records] == [round(i / 1000, 4) for i in range(12)]
    assert [r["status"] for r in records[:3]] == [200, 503, 0]
    assert records[0]["strategy"] == "fused" and "strategy" not in records[1]
    assert "Timeout" in records[2]["error"]
    for r in records:
        assert r["latency_ms"] >= r["service_ms"] >= 0  # latency counts from the due time


def test_bench_client_reads_the_catalogue_and_names_a_refused_connection() -> None:
    async def answer(body: dict[str, Any]) -> web.Response:
        return web.json_response({"strategy": "model"})

    async def run() -> tuple[tuple[list[str], list[str]], str]:
        server = await _bench_server(answer)
        try:
            async with serve_bench.BenchClient(str(server.make_url(""))) as client:
                read = await serve_bench.catalogue(client)
        finally:
            await server.close()
        port = serve_bench.free_port()  # nothing listens there
        async with serve_bench.BenchClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(serve_bench.TransportError) as refused:
                await client.get("/v1/users")
        return read, str(refused.value)

    (users, items), refused = asyncio.run(run())
    assert users == ["u1", "u2", "u3"] and items == ["i-u1", "i-u2", "i-u3"]
    assert "ClientConnectorError" in refused


def test_drive_ends_an_overloaded_point_after_its_grace_and_counts_the_rest() -> None:
    async def answer(body: dict[str, Any]) -> web.Response:
        if body.get("user_id") == "slow":
            await asyncio.sleep(30)  # far past the grace: the point must not wait for it
        return web.json_response({"strategy": "model", "items": []})

    async def run() -> list[dict[str, Any]]:
        server = await _bench_server(answer)
        try:
            async with serve_bench.BenchClient(str(server.make_url("")), timeout=60) as client:
                loop = asyncio.get_running_loop()
                bodies = [{"user_id": "a"}, {"user_id": "slow"}, {"user_id": "b"}]
                return await serve_bench.drive(
                    client, iter(bodies), 100.0, start=loop.time(), grace_s=0.2
                )
        finally:
            await server.close()

    started = time.perf_counter()
    records = asyncio.run(run())
    assert time.perf_counter() - started < 10
    assert [r["status"] for r in records] == [200, 0, 200]
    assert "not answered within 0.2 s" in records[1]["error"]
    assert records[1]["due_s"] == 0.01 and records[1]["latency_ms"] >= 190


def _sweep_args(**changes: Any) -> argparse.Namespace:
    values = {
        "artifact": Path("/artifacts/a"),
        "k": 10,
        "duration": 60.0,
        "warmup": 5.0,
        "cold_share": 0.1,
        "anonymous_share": 0.05,
        "timeout": 5.0,
        "seed": 0,
        "goal_p99_ms": 50.0,
        "goal_rate": 200.0,
        "max_in_flight": 32,
    }
    return argparse.Namespace(**(values | changes))


def _sweep_point(workers: int, rate: float, p99: float) -> dict[str, Any]:
    return {
        **_point(rate, p99),
        "workers": workers,
        "latency_from_due_time": {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": p99, "max_ms": p99},
        "client_send_lag": {"p99_ms": 0.5},
        "server_cpu_ms_per_request": 9.0,
        "client_cpu_s": 3.0,
        "machine": serve_bench.machine([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
    }


def test_sweep_report_names_the_knee_the_goal_and_what_is_missing(tmp_path: Path) -> None:
    args = _sweep_args()
    config = serve_load._config(args)
    points = [
        _sweep_point(1, 50, 12.0),
        _sweep_point(1, 200, 80.0),
        _sweep_point(2, 50, 10.0),
        _sweep_point(2, 200, 30.0),
    ]
    payload = serve_load._sweep_payload(args, "cmd", config, [50, 200, 400], [1, 2], points)
    assert payload["complete"] is False
    assert payload["missing"] == [
        {"workers": 1, "rate_per_s": 400},
        {"workers": 2, "rate_per_s": 400},
    ]
    assert payload["knees"]["1"]["knee_rate_per_s"] == 50
    assert payload["knees"]["2"]["knee_rate_per_s"] == 200
    assert payload["goal"]["met"] is True and payload["goal"]["met_with_workers"] == [2]
    text = serve_load._sweep_markdown(payload)
    assert "**met** with 2 worker(s)" in text and "**Incomplete**" in text
    assert "knee 50 requests/s; breaks at 200 (p99 80 ms >= 50 ms)" in text

    # --resume keeps the points of the same settings only
    out = tmp_path / "sweep"
    serve_bench.write_results(out, payload, serve_load._sweep_markdown)
    assert out.with_suffix(".md").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json", "sweep.md"]
    assert set(serve_load._resumed(out, config)) == {(1, 50), (1, 200), (2, 50), (2, 200)}
    assert serve_load._resumed(out, serve_load._config(_sweep_args(duration=10.0))) == {}
    assert serve_load._resumed(tmp_path / "none", config) == {}


def test_soak_minute_rows_carry_their_reload_memory_and_cpu(tmp_path: Path) -> None:
    args = argparse.Namespace(minutes=2.0, out=tmp_path / "soak")
    soak = serve_soak.Soak(args)
    soak.cpu_start = 10.0
    soak.records = [_record(t, 5.0) for t in (1.0, 30.0, 61.0, 119.0)]
    soak.reloads = [{"due_s": 30.0, "status": 200}, {"due_s": 90.0, "status": 409}]
    mb = serve_bench.MB
    soak.samples = [(5.0, 100 * mb, 11.0), (55.0, 101 * mb, 12.5), (115.0, 102 * mb, 14.0)]
    rows = soak.minute_rows()
    assert [r["reloads"] for r in rows] == [[200], [409]]
    assert [r["rss_mb_end"] for r in rows] == [101.0, 102.0]
    assert [r["server_cpu_s"] for r in rows] == [2.5, 1.5]
    assert soak.n_minutes == 2

    soak.write_progress(1)
    soak.write_progress(1)  # a minute is written once
    soak.write_progress(2)
    lines = (tmp_path / "soak.progress.jsonl").read_text().splitlines()
    assert [json.loads(line)["window"] for line in lines] == [0, 1]
