"""Latency of ``mtlrec serve`` under a fixed request rate: POST /v1/recommend, k=10.

Starts the service (``mtlrec serve ARTIFACT``, one worker, its own process) on 127.0.0.1,
then an open-loop async client (httpx) sends requests at fixed times, ``--rate`` per second
for ``--duration`` seconds after ``--warmup`` seconds that are not recorded: request ``i``
is due at ``t0 + i / rate`` whatever the earlier ones are doing, and its latency counts from
that due time (so a stalled server or client cannot hide queueing: no coordinated
omission). Users: random known users of the artifact, a ``--cold-share`` of unknown users
with an ad-hoc history of 1-5 known items, an ``--anonymous-share`` with neither.

Reports p50 / p95 / p99 / max latency, the error rate (non-200 answers and transport
errors), the achieved rate, the server's CPU seconds and the load average of the machine
before and after (it may be shared with other benchmarks), to ``--out`` (``.json`` and
``.md``). The artifact: Amazon Musical Instruments, trained, fused and exported::

    mtlrec train --config configs/amazon-musical-instruments.yaml --out runs/mi-serve
    mtlrec fuse --run runs/mi-serve --config configs/fusion/amazon-musical-instruments.yaml
    mtlrec export runs/mi-serve --out runs/mi-serve-artifacts --name amazon-mi-fused
    python benchmarks/serve_load.py --rate 50 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mtlrec.serving.auth import add_key

ROOT = Path(__file__).resolve().parents[1]
GOAL_P99_MS = 50.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _default_artifact() -> Path | None:
    bundles = sorted((ROOT / "runs" / "mi-serve-artifacts").glob("*/manifest.json"))
    return bundles[-1].parent if bundles else None


def _bodies(users: list[str], items: list[str], n: int, args: argparse.Namespace) -> list[dict]:
    """``n`` request bodies: known users, cold users with a history, anonymous."""
    rng = random.Random(args.seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        draw = rng.random()
        if draw < args.cold_share:
            history = rng.sample(items, rng.randint(1, 5))
            out.append({"user_id": f"new-user-{i}", "history": history, "k": args.k})
        elif draw < args.cold_share + args.anonymous_share:
            out.append({"k": args.k})
        else:
            out.append({"user_id": rng.choice(users), "k": args.k})
    return out


async def _drive(
    client: httpx.AsyncClient, bodies: list[dict], rate: float
) -> list[dict[str, Any]]:
    """Send ``bodies[i]`` at ``start + i / rate`` (open loop); latency from the due time."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    results: list[dict[str, Any]] = [{} for _ in bodies]

    async def one(i: int, body: dict) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        sent = loop.time()
        record: dict[str, Any] = {"lag_ms": (sent - due) * 1000}
        try:
            response = await client.post("/v1/recommend", json=body)
            record["status"] = response.status_code
            if response.status_code == 200:
                record["strategy"] = response.json()["strategy"]
        except httpx.HTTPError as error:
            record["status"] = 0
            record["error"] = repr(error)
        done = loop.time()
        record["latency_ms"] = (done - due) * 1000
        record["service_ms"] = (done - sent) * 1000
        results[i] = record

    await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return results


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values)
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
        "max_ms": round(float(array.max()), 2),
        "mean_ms": round(float(array.mean()), 2),
    }


async def _run(args: argparse.Namespace, url: str, key: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=args.timeout
    ) as client:
        users: list[str] = []
        while True:
            page = await client.get("/v1/users", params={"offset": len(users), "limit": 1000})
            got = page.json()["users"]
            users += got
            if not got:
                break
        items = sorted(
            {
                i
                for u in users[:200]
                for i in (await client.get(f"/v1/users/{u}/history")).json()["items"]
            }
        )
        warm = _bodies(users, items, int(args.warmup * args.rate), args)
        await _drive(client, warm, args.rate)
        bodies = _bodies(users, items, int(args.duration * args.rate), args)
        wall = time.perf_counter()
        results = await _drive(client, bodies, args.rate)
        wall = time.perf_counter() - wall
        metrics = (await client.get("/metrics")).text
    return {"results": results, "wall_s": wall, "metrics": metrics, "n_users": len(users)}


def _server_count(metrics: str) -> float:
    for line in metrics.splitlines():
        wanted = 'route="/v1/recommend"' in line and 'status="200"' in line
        if line.startswith("mtlrec_http_requests_total{") and wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=_default_artifact())
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="recorded seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="unrecorded seconds first")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--anonymous-share", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_load")
    args = parser.parse_args()
    if args.artifact is None or not (args.artifact / "manifest.json").is_file():
        parser.error("no artifact: give --artifact (see the commands in this script's docstring)")

    port = _free_port()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        key = add_key(Path(tmp) / "keys.json", "bench", ["recommend", "users"])
        command = [
            sys.executable,
            "-m",
            "mtlrec.cli.main",
            "serve",
            str(args.artifact),
            "--port",
            str(port),
            "--api-keys",
            str(Path(tmp) / "keys.json"),
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        server = subprocess.Popen(command, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the service did not start")
                time.sleep(0.2)
            cpu_before = _cpu_seconds(server.pid)
            run = asyncio.run(_run(args, url, key))
            cpu_used = _cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=60)
    load_after = os.getloadavg()

    results = run["results"]
    errors = [r for r in results if r.get("status") != 200]
    strategies = sorted({r["strategy"] for r in results if "strategy" in r})
    latency = _percentiles([r["latency_ms"] for r in results])
    payload = {
        "benchmark": "serve_load",
        "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
        "artifact": str(args.artifact),
        "endpoint": "POST /v1/recommend",
        "k": args.k,
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "requests": len(results),
        "achieved_rate_per_s": round(len(results) / run["wall_s"], 2),
        "errors": len(errors),
        "error_rate": round(len(errors) / max(len(results), 1), 6),
        "error_examples": [r.get("error") or r.get("status") for r in errors[:5]],
        "latency_from_due_time": latency,
        "latency_from_send": _percentiles([r["service_ms"] for r in results]),
        "client_send_lag": _percentiles([r["lag_ms"] for r in results]),
        "by_strategy": {
            s: {
                "requests": sum(r.get("strategy") == s for r in results),
                **_percentiles([r["latency_ms"] for r in results if r.get("strategy") == s]),
            }
            for s in strategies
        },
        "server_cpu_s": round(cpu_used, 2),
        "server_cpu_ms_per_request": round(1000 * cpu_used / max(len(results) * 1.0, 1.0), 2),
        "server_counted_ok": _server_count(run["metrics"]),
        "mix": {"cold_share": args.cold_share, "anonymous_share": args.anonymous_share},
        "users_in_artifact": run["n_users"],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
            "note": "shared machine: other benchmarks may run at the same time (load average)",
        },
        "goal": f"p99 < {GOAL_P99_MS:.0f} ms at {args.rate:g} requests/s with zero errors",
        "met": bool(latency.get("p99_ms", float("inf")) < GOAL_P99_MS and not errors),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(payload))
    print(json.dumps({k: payload[k] for k in ("latency_from_due_time", "error_rate", "met")}))


def _markdown(p: dict[str, Any]) -> str:
    lat = p["latency_from_due_time"]
    rows = [
        "| strategy | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| all | {p['requests']} | {lat['p50_ms']} | {lat['p95_ms']} | {lat['p99_ms']} "
        f"| {lat['max_ms']} |",
    ]
    for name, s in p["by_strategy"].items():
        rows.append(
            f"| {name} | {s['requests']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} "
            f"| {s['max_ms']} |"
        )
    machine = p["machine"]
    sent = p["latency_from_send"]
    return "\n".join(
        [
            "# Serving load: POST /v1/recommend",
            "",
            f"`{p['command']}`",
            "",
            f"Artifact `{Path(p['artifact']).name}`, k={p['k']}, open loop at "
            f"{p['rate_per_s']:g} requests/s for {p['duration_s']:g} s (after "
            f"{p['warmup_s']:g} s of warm-up), achieved {p['achieved_rate_per_s']} requests/s; "
            f"{p['mix']['cold_share']:.0%} cold-start users with an ad-hoc history, "
            f"{p['mix']['anonymous_share']:.0%} anonymous, the rest known users.",
            "",
            *rows,
            "",
            f"Latency counts from each request's due time (open loop). From the actual send: "
            f"p50 {sent['p50_ms']} ms, p99 {sent['p99_ms']} ms.",
            f"Errors: {p['errors']} of {p['requests']} (rate {p['error_rate']}). Server CPU: "
            f"{p['server_cpu_s']} s, {p['server_cpu_ms_per_request']} ms per request.",
            f"Machine: {machine['cpus']} CPUs, load average before "
            f"{machine['load_avg_before']}, after {machine['load_avg_after']} ({machine['note']}).",
            "",
            f"Goal: {p['goal']}: **{'met' if p['met'] else 'missed'}**.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
