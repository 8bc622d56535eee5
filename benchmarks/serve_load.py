"""Latency of ``mtlrec serve`` under fixed request rates: POST /v1/recommend, k=10.

Starts the service (``mtlrec serve ARTIFACT --workers W``, its own process) on 127.0.0.1,
then an open-loop async client (aiohttp, :func:`serve_bench.drive`) sends requests at fixed
times, ``--rate`` per second for ``--duration`` seconds after ``--warmup`` seconds that are
not recorded: request ``i`` is due at ``t0 + i / rate`` whatever the earlier ones are doing,
and its latency counts from that due time (so a stalled server or client cannot hide
queueing: no coordinated omission). Users: random known users of the artifact, a
``--cold-share`` of unknown users with an ad-hoc history of 1-5 known items, an
``--anonymous-share`` with neither.

Each point reports p50 / p95 / p99 / max latency, the error rate (non-200 answers and
transport errors), the achieved rate (requests over the time from the first due time to the
last answer, at least the scheduled span), the server's CPU seconds (the supervisor and its
workers), the client's own CPU seconds (it shares the machine's cores) and the load average
of the machine before and after (it may be shared with other benchmarks).

- One rate and one worker count (``--rate 50``): ``--out`` defaults to
  ``benchmarks/results/serve_load`` (``.json`` and ``.md``).
- A sweep (``--rate 50 100 200 400 --workers 1 2``): one server per worker count, the
  rates in increasing order on it, each point written to
  ``benchmarks/results/serve_load_sweep.json`` as soon as it is measured (``--resume``
  skips the points already there for the same settings); the ``.md`` gives the table, the
  knee per worker count (:func:`serve_bench.find_knee`: the last rate holding p99 <
  ``--goal-p99-ms`` with 0 errors and >= 95 % of the offered rate achieved) and whether
  ``--goal-rate`` (200 requests/s) holds.

The artifact: Amazon Musical Instruments, trained, fused and exported (``make bench-serve``)::

    mtlrec train --config configs/amazon-musical-instruments.yaml --out runs/mi-serve
    mtlrec fuse --run runs/mi-serve --config configs/fusion/amazon-musical-instruments.yaml
    mtlrec export runs/mi-serve --out runs/mi-serve-artifacts --name amazon-mi-fused
    python benchmarks/serve_load.py --rate 50 --duration 60
    python benchmarks/serve_load.py --rate 50 100 200 400 --workers 1 2 --duration 60 --resume
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from serve_bench import (
    GOAL_P99_MS,
    MB,
    ROOT,
    BenchClient,
    Service,
    TransportError,
    achieved_rate,
    add_request_mix_arguments,
    bodies_for,
    catalogue,
    check_artifact,
    cpu_seconds,
    default_artifact,
    drive,
    find_knee,
    machine,
    percentiles,
    point_failures,
    rss_bytes,
    serve,
    server_count,
    write_results,
)

RESULTS = ROOT / "benchmarks" / "results"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two measurements comparable (``--resume`` keeps points only on a match)."""
    return {
        "artifact": str(args.artifact),
        "endpoint": "POST /v1/recommend",
        "k": args.k,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "mix": {"cold_share": args.cold_share, "anonymous_share": args.anonymous_share},
        "timeout_s": args.timeout,
        "max_in_flight": args.max_in_flight,
        "seed": args.seed,
    }


async def _metrics_count(client: BenchClient) -> float | None:
    """The service's count of 200 answers, or None when ``/metrics`` gives no answer (the
    service still busy with an overloaded point's backlog)."""
    try:
        return server_count(str((await client.get("/metrics")).body))
    except TransportError:
        return None


async def _point(
    client: BenchClient,
    service: Service,
    args: argparse.Namespace,
    workers: int,
    rate: float,
    users: list[str],
    items: list[str],
) -> dict[str, Any]:
    """Warm up at ``rate``, then measure ``--duration`` seconds of it: one point."""
    load_before = os.getloadavg()
    await drive(
        client, bodies_for(args, users, items, int(args.warmup * rate)), rate, grace_s=args.timeout
    )
    counted_before = await _metrics_count(client) if workers == 1 else None
    cpu_before, client_before = cpu_seconds(service.pid), time.process_time()
    bodies = bodies_for(args, users, items, int(args.duration * rate))
    results = await drive(client, bodies, rate, grace_s=2 * args.timeout)
    cpu_used = cpu_seconds(service.pid) - cpu_before
    client_used = time.process_time() - client_before
    # /metrics is one process's: with several workers it counts only the one answering
    counted_after = await _metrics_count(client) if counted_before is not None else None
    counted = (
        counted_after - counted_before
        if counted_before is not None and counted_after is not None
        else None
    )
    load_after = os.getloadavg()

    errors = [r for r in results if r.get("status") != 200]
    strategies = sorted({r["strategy"] for r in results if "strategy" in r})
    latency = percentiles([r["latency_ms"] for r in results])
    return {
        "workers": workers,
        "rate_per_s": rate,
        "requests": len(results),
        "achieved_rate_per_s": round(achieved_rate(results, rate), 2),
        "errors": len(errors),
        "error_rate": round(len(errors) / max(len(results), 1), 6),
        "error_examples": [r.get("error") or r.get("status") for r in errors[:5]],
        "latency_from_due_time": latency,
        "latency_from_send": percentiles([r["service_ms"] for r in results]),
        "client_send_lag": percentiles([r["lag_ms"] for r in results]),
        "by_strategy": {
            s: {
                "requests": sum(r.get("strategy") == s for r in results),
                **percentiles([r["latency_ms"] for r in results if r.get("strategy") == s]),
            }
            for s in strategies
        },
        "server_cpu_s": round(cpu_used, 2),
        "server_cpu_ms_per_request": round(1000 * cpu_used / max(len(results), 1), 2),
        "server_rss_mb": round(rss_bytes(service.pid) / MB, 1),
        "server_start_s": service.start_s,
        "client_cpu_s": round(client_used, 2),
        "server_counted_ok": counted,
        "users_in_artifact": len(users),
        "machine": machine(load_before, load_after),
    }


async def _one_server(
    args: argparse.Namespace, service: Service, workers: int, rates: list[float], save: Any
) -> None:
    headers = {"X-API-Key": service.keys["bench"]}
    async with BenchClient(service.url, headers=headers, timeout=args.timeout) as client:
        users, items = await catalogue(client)
        for i, rate in enumerate(rates):
            if i:
                await asyncio.sleep(args.pause)  # let the previous rate's backlog settle
            point = await _point(client, service, args, workers, rate, users, items)
            save(point)
            print(json.dumps(_brief(point)), flush=True)


def _serve_options(args: argparse.Namespace) -> list[str]:
    return ["--max-in-flight", str(args.max_in_flight)]


def _brief(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "workers": point["workers"],
        "rate_per_s": point["rate_per_s"],
        "p99_ms": point["latency_from_due_time"].get("p99_ms"),
        "errors": point["errors"],
        "achieved_rate_per_s": point["achieved_rate_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=default_artifact())
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[50.0],
        help="requests per second (several: a sweep)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="uvicorn workers (several: a sweep)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="recorded seconds a point")
    parser.add_argument("--warmup", type=float, default=5.0, help="unrecorded seconds first")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between sweep points")
    add_request_mix_arguments(parser)
    parser.add_argument("--goal-p99-ms", type=float, default=GOAL_P99_MS)
    parser.add_argument("--goal-rate", type=float, default=200.0, help="the sweep's goal rate")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=32,
        help="the service's load shedding (`mtlrec serve --max-in-flight`; 0: none)",
    )
    parser.add_argument("--resume", action="store_true", help="keep a sweep's measured points")
    parser.add_argument("--out", type=Path, default=None, help="path without suffix")
    args = parser.parse_args()
    args.artifact = check_artifact(parser, args.artifact)
    if min(args.rate) <= 0 or min(args.workers) < 1:
        parser.error("rates must be positive and workers at least 1")
    rates = sorted(set(args.rate))
    worker_counts = sorted(set(args.workers))
    sweep = len(rates) > 1 or len(worker_counts) > 1
    out = args.out or RESULTS / ("serve_load_sweep" if sweep else "serve_load")
    command = "python benchmarks/serve_load.py " + " ".join(sys.argv[1:])
    if not sweep:
        points: list[dict[str, Any]] = []
        keys = {"bench": ["recommend", "users"]}
        with serve(
            args.artifact, keys=keys, workers=worker_counts[0], options=_serve_options(args)
        ) as service:
            asyncio.run(_one_server(args, service, worker_counts[0], rates, points.append))
        write_results(out, _single_payload(args, command, points[0]), _markdown)
        return

    config = _config(args)
    earlier = _resumed(out, config) if args.resume else {}
    done = {(w, r): p for (w, r), p in earlier.items() if w in worker_counts and r in rates}
    state = {"points": list(done.values())}

    def save(point: dict[str, Any]) -> None:
        state["points"].append(point)
        payload = _sweep_payload(args, command, config, rates, worker_counts, state["points"])
        write_results(out, payload, _sweep_markdown)

    for workers in worker_counts:
        todo = [r for r in rates if (workers, r) not in done]
        if not todo:
            continue
        keys = {"bench": ["recommend", "users"]}
        with serve(args.artifact, keys=keys, workers=workers, options=_serve_options(args)) as s:
            asyncio.run(_one_server(args, s, workers, todo, save))
    payload = _sweep_payload(args, command, config, rates, worker_counts, state["points"])
    write_results(out, payload, _sweep_markdown)
    print(json.dumps({"knees": payload["knees"], "goal": payload["goal"]}))


def _resumed(out: Path, config: dict[str, Any]) -> dict[tuple[int, float], dict[str, Any]]:
    """The points of an earlier sweep at ``out`` measured with the same ``config``."""
    path = out.with_suffix(".json")
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    if earlier.get("config") != config:
        print(f"--resume: {path} was measured with other settings; measuring again")
        return {}
    return {(p["workers"], p["rate_per_s"]): p for p in earlier.get("points", [])}


# ----------------------------------------------------------------------------- one point
def _single_payload(
    args: argparse.Namespace, command: str, point: dict[str, Any]
) -> dict[str, Any]:
    latency = point["latency_from_due_time"]
    return {
        "benchmark": "serve_load",
        "command": command,
        **{k: v for k, v in _config(args).items() if k not in ("mix",)},
        **point,
        "mix": _config(args)["mix"],
        "goal": f"p99 < {args.goal_p99_ms:g} ms at {point['rate_per_s']:g} requests/s with "
        "zero errors",
        "met": bool(latency.get("p99_ms", float("inf")) < args.goal_p99_ms and not point["errors"]),
    }


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
    machine_info = p["machine"]
    sent = p["latency_from_send"]
    return "\n".join(
        [
            "# Serving load: POST /v1/recommend",
            "",
            f"`{p['command']}`",
            "",
            f"Artifact `{Path(p['artifact']).name}`, k={p['k']}, {p['workers']} worker(s), open "
            f"loop at {p['rate_per_s']:g} requests/s for {p['duration_s']:g} s (after "
            f"{p['warmup_s']:g} s of warm-up), achieved {p['achieved_rate_per_s']} requests/s; "
            f"{p['mix']['cold_share']:.0%} cold-start users with an ad-hoc history, "
            f"{p['mix']['anonymous_share']:.0%} anonymous, the rest known users.",
            "",
            *rows,
            "",
            f"Latency counts from each request's due time (open loop). From the actual send: "
            f"p50 {sent['p50_ms']} ms, p99 {sent['p99_ms']} ms.",
            f"Errors: {p['errors']} of {p['requests']} (rate {p['error_rate']}). Server CPU: "
            f"{p['server_cpu_s']} s, {p['server_cpu_ms_per_request']} ms per request; client "
            f"CPU {p['client_cpu_s']} s.",
            f"Machine: {machine_info['cpus']} CPUs, load average before "
            f"{machine_info['load_avg_before']}, after {machine_info['load_avg_after']} "
            f"({machine_info['note']}).",
            "",
            f"Goal: {p['goal']}: **{'met' if p['met'] else 'missed'}**.",
            "",
        ]
    )


# ----------------------------------------------------------------------------- the sweep
def _sweep_payload(
    args: argparse.Namespace,
    command: str,
    config: dict[str, Any],
    rates: list[float],
    worker_counts: list[int],
    points: list[dict[str, Any]],
) -> dict[str, Any]:
    points = sorted(points, key=lambda p: (p["workers"], p["rate_per_s"]))
    for point in points:
        point["misses"] = point_failures(point, goal_p99_ms=args.goal_p99_ms)
    measured = {(p["workers"], p["rate_per_s"]) for p in points}
    missing = [
        {"workers": w, "rate_per_s": r}
        for w in worker_counts
        for r in rates
        if (w, r) not in measured
    ]
    knees = {
        str(w): find_knee([p for p in points if p["workers"] == w], goal_p99_ms=args.goal_p99_ms)
        for w in worker_counts
        if any(p["workers"] == w for p in points)
    }
    at_goal = [p for p in points if p["rate_per_s"] == args.goal_rate]
    return {
        "benchmark": "serve_load_sweep",
        "command": command,
        "config": config,
        "rates_per_s": rates,
        "workers": worker_counts,
        "complete": not missing,
        "missing": missing,
        "points": points,
        "knees": knees,
        "goal": {
            "statement": f"{args.goal_rate:g} requests/s at p99 < {args.goal_p99_ms:g} ms with "
            f"0 errors, POST /v1/recommend k={args.k}",
            "measured": bool(at_goal),
            "met_with_workers": [p["workers"] for p in at_goal if not p["misses"]],
            "met": any(not p["misses"] for p in at_goal) if at_goal else None,
        },
    }


def _shedding(config: dict[str, Any]) -> str:
    """How the service shed load (sweeps before the setting existed had none)."""
    limit = config.get("max_in_flight")
    if not limit:
        return "No load shedding: every request waited for its turn."
    return (
        f"Load shedding: past {limit} requests in flight per worker a request got 503 at "
        "once (an error here)."
    )


def _sweep_markdown(s: dict[str, Any]) -> str:
    config = s["config"]
    rows = [
        "| workers | offered /s | achieved /s | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| send lag p99 ms | server CPU ms/req | client CPU s | load avg before | holds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
        "| --- |",
    ]
    for p in s["points"]:
        lat = p["latency_from_due_time"]
        rows.append(
            f"| {p['workers']} | {p['rate_per_s']:g} | {p['achieved_rate_per_s']} "
            f"| {lat.get('p50_ms')} | {lat.get('p95_ms')} | {lat.get('p99_ms')} "
            f"| {lat.get('max_ms')} | {p['errors']} | {p['client_send_lag'].get('p99_ms')} "
            f"| {p['server_cpu_ms_per_request']} | {p['client_cpu_s']} "
            f"| {p['machine']['load_avg_before'][0]} "
            f"| {'yes' if not p['misses'] else 'no: ' + '; '.join(p['misses'])} |"
        )
    knees = []
    for workers, knee in s["knees"].items():
        if knee["knee_rate_per_s"] is None:
            where = f"none: the lowest rate misses ({'; '.join(knee['why'])})"
        elif knee["within_sweep"]:
            where = (
                f"{knee['knee_rate_per_s']:g} requests/s; breaks at "
                f"{knee['breaks_at_rate_per_s']:g} ({'; '.join(knee['why'])})"
            )
        else:
            where = f"above the sweep: every rate holds up to {knee['knee_rate_per_s']:g}"
        growth = ", ".join(f"{r}: x{g}" for r, g in knee["p99_growth"].items())
        knees.append(f"- {workers} worker(s): knee {where}. p99 over the lowest rate's: {growth}.")
    goal = s["goal"]
    if not goal["measured"]:
        verdict = "not measured (the goal rate is not in the sweep)"
    elif goal["met"]:
        verdict = f"**met** with {', '.join(map(str, goal['met_with_workers']))} worker(s)"
    else:
        verdict = "**missed**"
    missing = ", ".join(f"{m['workers']} worker(s) at {m['rate_per_s']:g}/s" for m in s["missing"])
    first = s["points"][0]["machine"] if s["points"] else {"cpus": "?"}
    return "\n".join(
        [
            "# Serving load sweep: POST /v1/recommend",
            "",
            f"`{s['command']}`",
            "",
            f"Artifact `{Path(config['artifact']).name}`, k={config['k']}; each point: open loop "
            f"at the offered rate for {config['duration_s']:g} s after {config['warmup_s']:g} s "
            f"of unrecorded warm-up, on one server per worker count (rates in increasing "
            f"order); {config['mix']['cold_share']:.0%} cold-start users with an ad-hoc "
            f"history, {config['mix']['anonymous_share']:.0%} anonymous, the rest known users. "
            f"Latency counts from each request's due time; achieved counts the answers (200). "
            f"{_shedding(config)}",
            "",
            *rows,
            "",
            "Knee (the last rate holding p99 < goal, 0 errors, >= 95 % of the offered rate):",
            *knees,
            "",
            f"Goal: {goal['statement']}: {verdict}.",
            "",
            f"Machine: {first['cpus']} CPUs; the client runs on the same cores as the server "
            "(its CPU seconds are in the table; a high send lag means the client, not the "
            "server, fell behind), and other benchmarks may share the machine (load average). "
            "With several workers each worker loads its own copy of the artifact.",
            *([] if s["complete"] else ["", f"**Incomplete**: not measured yet: {missing}."]),
            "",
        ]
    )


if __name__ == "__main__":
    main()
