"""Soak of ``mtlrec serve``: a steady rate for a long time, with a hot reload every minute.

Starts the service (``mtlrec serve ARTIFACT``, one worker: with several, a reload reaches
only the worker that answers it) and drives ``POST /v1/recommend`` (k=10) open loop at
``--rate`` requests/s for ``--minutes`` minutes with the client of ``serve_load.py``
(:func:`serve_bench.drive`: latency counts from each request's due time). Meanwhile an admin
key posts ``POST /v1/admin/reload`` every ``--reload-every`` seconds, in the middle of each
interval (at 30 s, 90 s, ... for 60 s), so every minute of the table holds one reload; the
reload loads the served artifact again by default (a new copy replaces the old one, which
must be freed) or cycles through ``--reload-path`` bundles.

Reports, to ``--out`` (``.json`` and ``.md``): per minute the requests, errors, p50 / p99 /
max latency, the client's send lag, the reload of that minute and the server's resident
memory at the minute's end; every reload (status, the server's load time, the time the call
took); the server's resident memory (VmRSS, /proc) when ready, at the start of the recorded
run (after ``--warmup`` seconds of unrecorded load, so allocator and caches are warm) and
at the end, and its growth; the goals: 0 errors (requests and reloads) and memory growth
under ``--max-growth`` (5 %).

A soak cannot resume (memory growth needs one process throughout), so the script is
robust instead: each minute's row is appended to ``<out>.progress.jsonl`` as the minute
closes, and an interrupted run (Ctrl-C, SIGTERM, the server dying) still writes the report,
marked incomplete, with the minutes it measured, and exits with status 1.

    python benchmarks/serve_soak.py --minutes 30 --rate 50 --reload-every 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from serve_bench import (
    MB,
    ROOT,
    BenchClient,
    Record,
    Service,
    TransportError,
    add_request_mix_arguments,
    bodies_for,
    catalogue,
    check_artifact,
    cpu_seconds,
    default_artifact,
    drive,
    machine,
    memory_growth,
    per_window,
    percentiles,
    rss_bytes,
    serve,
    write_results,
)

WINDOW_S = 60.0


class Stopped(Exception):
    """The run ended early: the server exited, or a signal asked to stop."""


class Soak:
    """Everything measured so far (so an interrupted run can still be reported)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.records: list[Record] = []
        self.reloads: list[dict[str, Any]] = []
        self.samples: list[tuple[float, int, float]] = []  # (t_s, rss bytes, cpu s)
        self.rss_ready: int | None = None
        self.rss_start: int | None = None
        self.rss_end: int | None = None
        self.cpu_start: float | None = None
        self.n_users = 0
        self.start: float | None = None
        self.stopped: str | None = None
        self.minutes_written = 0

    @property
    def n_minutes(self) -> int:
        return math.ceil(self.args.minutes * 60 / WINDOW_S)

    def minute_rows(self) -> list[dict[str, Any]]:
        """``per_window`` rows of the recorded requests, each with that minute's reloads,
        the last memory sample inside it and the server CPU seconds since the one before."""
        rows = per_window(self.records, WINDOW_S)
        for row in rows:
            lo, hi = row["start_s"], row["start_s"] + WINDOW_S
            row["reloads"] = [r["status"] for r in self.reloads if lo <= r["due_s"] < hi]
            before = [s for s in self.samples if s[0] < lo]
            inside = [s for s in self.samples if lo <= s[0] < hi]
            row["rss_mb_end"] = round(inside[-1][1] / MB, 1) if inside else None
            cpu_before = before[-1][2] if before else self.cpu_start
            row["server_cpu_s"] = (
                round(inside[-1][2] - cpu_before, 2) if inside and cpu_before is not None else None
            )
        return rows

    def write_progress(self, closed: int) -> None:
        """Append the rows of minutes ``minutes_written .. closed - 1`` to the progress file."""
        if closed <= self.minutes_written:
            return
        rows = self.minute_rows()
        with self.args.out.with_suffix(".progress.jsonl").open("a") as file:
            for row in rows[self.minutes_written : closed]:
                file.write(json.dumps(row) + "\n")
                print(json.dumps(_brief(row)), flush=True)
        self.minutes_written = closed


async def _reloader(admin: BenchClient, soak: Soak, start: float, paths: list[Path]) -> None:
    """POST /v1/admin/reload at ``(j + 0.5) * reload_every`` seconds from ``start``."""
    loop = asyncio.get_running_loop()
    every, duration = soak.args.reload_every, soak.args.minutes * 60
    j = 0
    while (j + 0.5) * every < duration:
        due = start + (j + 0.5) * every
        await asyncio.sleep(max(0.0, due - loop.time()))
        path = paths[j % len(paths)]
        sent = loop.time()
        record: dict[str, Any] = {"due_s": round(due - start, 3), "path": path.name}
        try:
            answer = await admin.post("/v1/admin/reload", json={"path": str(path)})
            record["status"] = answer.status
            body = answer.json_or_empty()
            if answer.status == 200:
                record |= {k: body[k] for k in ("version", "previous_version", "load_s")}
            else:
                record["error"] = body.get("message") or str(answer.body)[:200]
        except TransportError as error:
            record["status"] = 0
            record["error"] = str(error)
        record["call_ms"] = round((loop.time() - sent) * 1000, 1)
        soak.reloads.append(record)
        j += 1


async def _sampler(service: Service, soak: Soak, start: float) -> None:
    """Resident memory and CPU of the server every ``--sample-every`` seconds; writes each
    minute's row to the progress file once the minute has closed; stops the run if the
    server exits."""
    loop = asyncio.get_running_loop()
    args = soak.args
    while True:
        if service.process.poll() is not None:
            raise Stopped(f"the server exited ({service.process.returncode})")
        now = loop.time() - start
        soak.samples.append((round(now, 2), rss_bytes(service.pid), cpu_seconds(service.pid)))
        # a minute is closed once its last request is due and its timeout has passed
        soak.write_progress(min(int((now - args.timeout - 1) // WINDOW_S), soak.n_minutes))
        await asyncio.sleep(args.sample_every)


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("window", "requests", "errors", "p50_ms", "p99_ms", "reloads", "rss_mb_end")
    return {k: row[k] for k in keys}


async def _run(args: argparse.Namespace, service: Service, soak: Soak) -> None:
    """:func:`_soak`, ended early (as :class:`Stopped`) by SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    work = asyncio.create_task(_soak(args, service, soak))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
    if work.done():
        stopper.cancel()
        work.result()
        return
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    raise Stopped("interrupted by a signal")


async def _soak(args: argparse.Namespace, service: Service, soak: Soak) -> None:
    load = {"X-API-Key": service.keys["load"]}
    admin_headers = {"X-API-Key": service.keys["admin"]}
    async with (
        BenchClient(service.url, headers=load, timeout=args.timeout) as client,
        BenchClient(service.url, headers=admin_headers, timeout=args.reload_timeout) as admin,
    ):
        users, items = await catalogue(client)
        soak.n_users = len(users)
        soak.rss_ready = rss_bytes(service.pid)

        await drive(
            client,
            bodies_for(args, users, items, int(args.warmup * args.rate), args.seed + 1),
            args.rate,
        )
        await asyncio.sleep(1.0)  # the warm-up's last answers are out
        soak.rss_start = rss_bytes(service.pid)
        soak.cpu_start = cpu_seconds(service.pid)
        loop = asyncio.get_running_loop()
        start = soak.start = loop.time() + 0.5
        n = int(args.minutes * 60 * args.rate)
        tasks = [
            asyncio.create_task(
                drive(
                    client,
                    bodies_for(args, users, items, n),
                    args.rate,
                    start=start,
                    on_result=soak.records.append,
                )
            ),
            asyncio.create_task(_reloader(admin, soak, start, args.reload_paths)),
        ]
        sampler = asyncio.create_task(_sampler(service, soak, start))
        main = asyncio.gather(*tasks)
        try:
            done, _ = await asyncio.wait([main, sampler], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the sampler's Stopped, or a bug in the client
        finally:
            for task in [*tasks, sampler]:
                task.cancel()
            await asyncio.gather(main, sampler, return_exceptions=True)
        await asyncio.sleep(1.0)  # the last answers are out and the old model is freed
        soak.rss_end = rss_bytes(service.pid)
        soak.samples.append((round(loop.time() - start, 2), soak.rss_end, cpu_seconds(service.pid)))
        soak.write_progress(soak.n_minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=default_artifact())
    parser.add_argument("--minutes", type=float, default=30.0, help="recorded minutes")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--reload-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--reload-path",
        type=Path,
        action="append",
        default=None,
        help="bundle(s) the reloads cycle through (default: the served artifact again)",
    )
    parser.add_argument("--warmup", type=float, default=30.0, help="unrecorded seconds first")
    parser.add_argument("--sample-every", type=float, default=5.0, help="memory sample period")
    parser.add_argument("--max-growth", type=float, default=0.05, help="memory growth goal")
    add_request_mix_arguments(parser)
    parser.add_argument("--reload-timeout", type=float, default=120.0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/serve_soak", help="no suffix"
    )
    args = parser.parse_args()
    args.artifact = check_artifact(parser, args.artifact)
    if args.minutes <= 0 or args.rate <= 0 or args.reload_every <= 0:
        parser.error("--minutes, --rate and --reload-every must be positive")
    args.reload_paths = [check_artifact(parser, p) for p in args.reload_path or [args.artifact]]
    reload_root = Path(os.path.commonpath([p.parent for p in [args.artifact, *args.reload_paths]]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".progress.jsonl").write_text("")
    soak = Soak(args)
    load_before = os.getloadavg()
    keys = {"load": ["recommend", "users"], "admin": ["admin"]}
    wall = time.monotonic()
    server_start_s: float | None = None
    cpu_end: float | None = None
    try:
        with serve(args.artifact, keys=keys, reload_root=reload_root) as service:
            server_start_s = service.start_s
            try:
                asyncio.run(_run(args, service, soak))
                cpu_end = cpu_seconds(service.pid)
            except Stopped as error:
                soak.stopped = str(error)
    except KeyboardInterrupt:
        soak.stopped = "interrupted while starting"
    payload = _payload(args, soak, load_before, time.monotonic() - wall, server_start_s, cpu_end)
    write_results(args.out, payload, _markdown)
    print(json.dumps({k: payload[k] for k in ("complete", "errors", "memory", "met")}))
    if soak.stopped:
        sys.exit(1)


def _payload(
    args: argparse.Namespace,
    soak: Soak,
    load_before: tuple[float, float, float],
    wall_s: float,
    server_start_s: float | None,
    cpu_end: float | None,
) -> dict[str, Any]:
    records = soak.records
    request_errors = [r for r in records if r.get("status") != 200]
    reload_errors = [r for r in soak.reloads if r.get("status") != 200]
    expected = int(args.minutes * 60 * args.rate)
    complete = soak.stopped is None and len(records) == expected and soak.rss_end is not None
    growth = (
        memory_growth(soak.rss_start, soak.rss_end)
        if soak.rss_start and soak.rss_end is not None
        else None
    )
    cpu_used = cpu_end - soak.cpu_start if cpu_end is not None and soak.cpu_start else None
    rss = [s[1] for s in soak.samples]
    memory = {
        "rss_mb_ready": round(soak.rss_ready / MB, 1) if soak.rss_ready else None,
        "rss_mb_start": round(soak.rss_start / MB, 1) if soak.rss_start else None,
        "rss_mb_end": round(soak.rss_end / MB, 1) if soak.rss_end else None,
        "rss_mb_max": round(max(rss) / MB, 1) if rss else None,
        "growth_pct": round(100 * growth, 2) if growth is not None else None,
        "samples": [[t, round(b / MB, 1)] for t, b, _ in soak.samples],
    }
    met = (
        complete
        and not request_errors
        and not reload_errors
        and growth is not None
        and growth < args.max_growth
    )
    return {
        "benchmark": "serve_soak",
        "command": "python benchmarks/serve_soak.py " + " ".join(sys.argv[1:]),
        "artifact": str(args.artifact),
        "reload_paths": [str(p) for p in args.reload_paths],
        "endpoint": "POST /v1/recommend",
        "k": args.k,
        "workers": 1,
        "rate_per_s": args.rate,
        "minutes": args.minutes,
        "reload_every_s": args.reload_every,
        "warmup_s": args.warmup,
        "sample_every_s": args.sample_every,
        "mix": {"cold_share": args.cold_share, "anonymous_share": args.anonymous_share},
        "timeout_s": args.timeout,
        "seed": args.seed,
        "complete": complete,
        "stopped": soak.stopped,
        "requests_expected": expected,
        "requests": len(records),
        "errors": len(request_errors),
        "error_examples": [r.get("error") or r.get("status") for r in request_errors[:5]],
        "reloads_ok": len(soak.reloads) - len(reload_errors),
        "reload_errors": len(reload_errors),
        "latency_from_due_time": percentiles([r["latency_ms"] for r in records]),
        "client_send_lag": percentiles([r["lag_ms"] for r in records]),
        "per_minute": soak.minute_rows(),
        "reloads": soak.reloads,
        "memory": memory,
        "server_start_s": server_start_s,
        "server_cpu_ms_per_request": (
            round(1000 * cpu_used / max(len(records), 1), 2) if cpu_used is not None else None
        ),
        "users_in_artifact": soak.n_users,
        "wall_s": round(wall_s, 1),
        "machine": machine(load_before, os.getloadavg()),
        "goal": f"0 errors (requests and reloads) and resident memory growth < "
        f"{100 * args.max_growth:g} % over {args.minutes:g} minutes at {args.rate:g} "
        f"requests/s with a reload every {args.reload_every:g} s",
        "met": met,
    }


def _markdown(p: dict[str, Any]) -> str:
    rows = [
        "| minute | requests | errors | p50 ms | p99 ms | max ms | send lag p99 ms | reloads "
        "| RSS MB at end |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in p["per_minute"]:
        reloads = ", ".join(str(s) for s in row["reloads"]) or "-"
        rows.append(
            f"| {row['window'] + 1} | {row['requests']} | {row['errors']} | {row['p50_ms']} "
            f"| {row['p99_ms']} | {row['max_ms']} | {row['lag_p99_ms']} | {reloads} "
            f"| {row['rss_mb_end']} |"
        )
    mem = p["memory"]
    lat = p["latency_from_due_time"]
    load_s = [r["load_s"] for r in p["reloads"] if "load_s" in r]
    call_ms = [r["call_ms"] for r in p["reloads"]]
    reloads = (
        f"{p['reloads_ok']} reloads answered 200, {p['reload_errors']} failed; server load time "
        f"{min(load_s):g}-{max(load_s):g} s, call {min(call_ms):g}-{max(call_ms):g} ms."
        if load_s
        else f"{p['reloads_ok']} reloads answered 200, {p['reload_errors']} failed."
    )
    verdict = "met" if p["met"] else "missed"
    machine_info = p["machine"]
    return "\n".join(
        [
            f"# Serving soak: POST /v1/recommend with a hot reload every {p['reload_every_s']:g} s",
            "",
            f"`{p['command']}`",
            "",
            *(
                []
                if p["complete"]
                else [f"**Incomplete run** ({p['stopped'] or 'not every request measured'}).", ""]
            ),
            f"Artifact `{Path(p['artifact']).name}`, one worker, k={p['k']}, open loop at "
            f"{p['rate_per_s']:g} requests/s for {p['minutes']:g} minutes after "
            f"{p['warmup_s']:g} s of unrecorded warm-up; reloads of "
            f"{', '.join(Path(r).name for r in p['reload_paths'])} in the middle of each "
            f"interval. Latency counts from each request's due time.",
            "",
            *rows,
            "",
            f"All {p['requests']} requests: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} "
            f"ms, max {lat.get('max_ms')} ms; errors {p['errors']}. {reloads}",
            f"Resident memory of the server: {mem['rss_mb_ready']} MB when ready, "
            f"{mem['rss_mb_start']} MB after warm-up (start), {mem['rss_mb_end']} MB at the end "
            f"(growth {mem['growth_pct']} %), {mem['rss_mb_max']} MB the largest sample (every "
            f"{p['sample_every_s']:g} s; a reload holds two models for a moment). Server CPU "
            f"{p['server_cpu_ms_per_request']} ms per request.",
            f"Machine: {machine_info['cpus']} CPUs, load average before "
            f"{machine_info['load_avg_before']}, after {machine_info['load_avg_after']} "
            f"({machine_info['note']}).",
            "",
            f"Goal: {p['goal']}: **{verdict}**.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
