"""What the service benchmarks share (``serve_load.py``, ``serve_soak.py``).

- :func:`serve`: ``mtlrec serve ARTIFACT`` in its own process (this interpreter, so the
  checkout's code), on a free port of 127.0.0.1, with a fresh key file holding one key per
  scope set asked for; waits until every worker has loaded the artifact.
- :class:`BenchClient`: the HTTP client (aiohttp), :class:`Answer` its answers.
- :func:`drive`: the open-loop client. Request ``i`` is due at ``start + i / rate`` whatever
  the earlier ones are doing, and its latency counts from that due time, so a stalled server
  or client cannot hide queueing (no coordinated omission). Tasks are created at their due
  time, so a 30-minute run holds only the requests in flight, not 90,000 sleeping tasks.
- :func:`request_bodies`: known users, a share of unknown users with an ad-hoc history of
  1-5 known items, a share of anonymous requests; :func:`catalogue` reads the users and
  items to draw them from.
- The server's CPU seconds and resident memory from ``/proc`` (Linux), summed over the
  process and its children (the uvicorn supervisor and its workers).
- Pure summaries, unit-tested without a server: :func:`percentiles`, :func:`per_window`
  (p50 / p99 per minute), :func:`memory_growth` and :func:`find_knee`.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOAL_P99_MS = 50.0
MB = 1024 * 1024
Record = dict[str, Any]


# ----------------------------------------------------------------------------- pure summaries
def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max / mean of ``values`` in ms (rounded), ``{}`` when empty."""
    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
        "max_ms": round(float(array.max()), 2),
        "mean_ms": round(float(array.mean()), 2),
    }


def per_window(records: Iterable[Record], window_s: float) -> list[dict[str, Any]]:
    """Records (``due_s``, ``status``, ``latency_ms``, ``lag_ms``) grouped by the window
    their due time falls in (window ``w`` holds ``w * window_s <= due_s < (w + 1) *
    window_s``): requests, errors (any status but 200), p50 / p99 / max latency from the due
    time and the p99 of the client's send lag; one row per window from 0 to the last one
    holding a request (an empty window in between gets a row with 0 requests)."""
    buckets: dict[int, list[Record]] = {}
    for record in records:
        buckets.setdefault(int(record["due_s"] // window_s), []).append(record)
    rows = []
    for window in range(max(buckets) + 1 if buckets else 0):
        group = buckets.get(window, [])
        latency = percentiles([r["latency_ms"] for r in group])
        lag = percentiles([r["lag_ms"] for r in group])
        rows.append(
            {
                "window": window,
                "start_s": round(window * window_s, 3),
                "requests": len(group),
                "errors": sum(r.get("status") != 200 for r in group),
                "p50_ms": latency.get("p50_ms"),
                "p99_ms": latency.get("p99_ms"),
                "max_ms": latency.get("max_ms"),
                "lag_p99_ms": lag.get("p99_ms"),
            }
        )
    return rows


def achieved_rate(records: Sequence[Record], rate: float) -> float:
    """Answers per second the server kept up with: the requests answered 200 over the time
    from the first due time to the last answer, or over the point's scheduled span (``n /
    rate``, ``n`` every request sent) when every answer came within it (so it never
    exceeds the offered rate). A request that failed or timed out counts for nothing."""
    answered = [r for r in records if r.get("status") == 200]
    if not answered:
        return 0.0
    last = max(r["due_s"] + r["latency_ms"] / 1000 for r in answered)
    return len(answered) / max(len(records) / rate, last)


def memory_growth(start_bytes: float, end_bytes: float) -> float:
    """Relative growth of resident memory, ``(end - start) / start`` (0.05 is 5 %)."""
    if start_bytes <= 0:
        raise ValueError(f"resident memory at start must be positive, got {start_bytes}")
    return (end_bytes - start_bytes) / start_bytes


def point_failures(
    point: dict[str, Any], *, goal_p99_ms: float, min_achieved: float = 0.95
) -> list[str]:
    """Why one sweep point misses the goal: errors, an achieved rate under ``min_achieved``
    of the offered one, p99 at or over ``goal_p99_ms`` (empty list: the point holds)."""
    why = []
    if point["errors"]:
        why.append(f"{point['errors']} errors")
    if point["achieved_rate_per_s"] < min_achieved * point["rate_per_s"]:
        why.append(
            f"achieved {point['achieved_rate_per_s']:g} of {point['rate_per_s']:g} requests/s"
        )
    p99 = point["latency_from_due_time"].get("p99_ms", float("inf"))
    if p99 >= goal_p99_ms:
        why.append(f"p99 {p99:g} ms >= {goal_p99_ms:g} ms")
    return why


def find_knee(
    points: Sequence[dict[str, Any]],
    *,
    goal_p99_ms: float = GOAL_P99_MS,
    min_achieved: float = 0.95,
) -> dict[str, Any]:
    """The knee of one rate sweep (one worker count): going up the offered rates, the last
    rate that holds the goal (0 errors, achieved rate >= ``min_achieved`` of the offered one,
    p99 < ``goal_p99_ms``) before the first that does not.

    ``points``: sweep points with ``rate_per_s``, ``achieved_rate_per_s``, ``errors`` and
    ``latency_from_due_time.p99_ms``, in any order. Returns ``knee_rate_per_s`` (None when
    even the lowest rate misses), ``breaks_at_rate_per_s`` and ``why`` (None and ``[]`` when
    every rate holds: the knee lies above the sweep), and ``p99_growth``: each rate's p99
    over the lowest rate's, which shows where latency starts to climb."""
    ordered = sorted(points, key=lambda p: p["rate_per_s"])
    knee: float | None = None
    breaks_at: float | None = None
    why: list[str] = []
    for point in ordered:
        failures = point_failures(point, goal_p99_ms=goal_p99_ms, min_achieved=min_achieved)
        if failures:
            breaks_at, why = point["rate_per_s"], failures
            break
        knee = point["rate_per_s"]
    base = ordered[0]["latency_from_due_time"].get("p99_ms") if ordered else None
    growth = {
        f"{p['rate_per_s']:g}": (
            round(p["latency_from_due_time"]["p99_ms"] / base, 2)
            if base and "p99_ms" in p["latency_from_due_time"]
            else None
        )
        for p in ordered
    }
    return {
        "knee_rate_per_s": knee,
        "breaks_at_rate_per_s": breaks_at,
        "why": why,
        "within_sweep": breaks_at is not None,
        "p99_growth": growth,
    }


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        parents.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux /proc)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of ``pid`` and its live descendants, in bytes (Linux)."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def default_artifact() -> Path | None:
    """The newest bundle under ``runs/mi-serve-artifacts`` (``make bench-serve`` makes it)."""
    bundles = sorted((ROOT / "runs" / "mi-serve-artifacts").glob("*/manifest.json"))
    return bundles[-1].parent if bundles else None


def check_artifact(parser: Any, artifact: Path | None) -> Path:
    """``artifact`` if it holds a manifest, else a usage error naming how to make one."""
    if artifact is None or not (artifact / "manifest.json").is_file():
        parser.error(
            "no artifact: give --artifact (an 'mtlrec export' folder; `make bench-serve` "
            "trains, fuses and exports runs/mi-serve-artifacts)"
        )
    return artifact.resolve()


@dataclass
class Service:
    """A running ``mtlrec serve``: its URL, process and the keys made for it by name."""

    url: str
    process: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=dict)
    start_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(
    artifact: Path,
    *,
    keys: dict[str, list[str]],
    workers: int = 1,
    reload_root: Path | None = None,
    start_timeout_s: float = 300.0,
    options: Sequence[str] = (),
) -> Iterator[Service]:
    """Run ``mtlrec serve artifact`` (``workers`` uvicorn workers, one torch thread each)
    with a new key file holding ``keys`` (name -> scopes); yields once it is ready: with
    several workers, once ``/readyz`` answers, the supervisor has ``workers`` children and
    their CPU has gone quiet (each worker loads the artifact on its own and a worker that
    is still loading accepts no connection). SIGTERM on leaving."""
    import httpx

    from mtlrec.serving.auth import add_key

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.json"
        made = {name: add_key(key_file, name, scopes) for name, scopes in keys.items()}
        command = [
            sys.executable,
            "-m",
            "mtlrec.cli.main",
            "serve",
            str(artifact),
            "--port",
            str(port),
            "--api-keys",
            str(key_file),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ]
        if reload_root is not None:
            command += ["--reload-root", str(reload_root)]
        command += list(options)  # more `mtlrec serve` options
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        started = time.monotonic()
        process = subprocess.Popen(command, env=env)
        service = Service(f"http://127.0.0.1:{port}", process, made)
        try:
            deadline = started + start_timeout_s
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"the service exited ({process.returncode}) while starting")
                if time.monotonic() > deadline:
                    raise SystemExit(f"the service was not ready after {start_timeout_s:g} s")
                try:
                    ready = httpx.get(f"{service.url}/readyz").status_code == 200
                except httpx.TransportError:
                    ready = False
                if ready and (workers == 1 or _workers_settled(process.pid, workers)):
                    break
                time.sleep(0.2)
            service.start_s = round(time.monotonic() - started, 2)
            yield service
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _workers_settled(pid: int, workers: int, quiet_s: float = 1.0) -> bool:
    """The supervisor ``pid`` has ``workers`` children and the tree used under 5 % of a
    core over the last ``quiet_s`` seconds (no worker is still loading)."""
    if len(process_tree(pid)) < workers + 1:
        return False
    before = cpu_seconds(pid)
    time.sleep(quiet_s)
    return cpu_seconds(pid) - before < 0.05 * quiet_s


# ----------------------------------------------------------------------------- the client
@dataclass
class Answer:
    """One HTTP answer as the benchmarks read it: the status and the body (parsed JSON when
    the server sent JSON, else the text)."""

    status: int
    body: Any

    def json_or_empty(self) -> dict[str, Any]:
        """The body if it is a JSON object, else ``{}`` (an error page, a plain text)."""
        return self.body if isinstance(self.body, dict) else {}


class TransportError(Exception):
    """No HTTP answer: refused, reset, or no answer within the client's timeout."""


class BenchClient:
    """The load client: an aiohttp session on one base URL with fixed headers and a total
    timeout per request, used as ``async with BenchClient(url, ...) as client``.

    aiohttp rather than httpx: an httpx ``AsyncClient`` spends CPU per request that grows
    with its open connections (encode/httpx#3215), so on a 2-core machine an overloaded
    point made the client itself the bottleneck and the backlog never drained. A transport
    failure or a timeout raises :class:`TransportError`."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        max_connections: int = 1000,
    ) -> None:
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_connections = max_connections
        self._session: Any = None

    async def __aenter__(self) -> BenchClient:
        import aiohttp

        self._session = aiohttp.ClientSession(
            base_url=self.base_url,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.max_connections),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Answer:
        """``method path`` (relative to the base URL) -> :class:`Answer`."""
        import aiohttp

        try:
            async with self._session.request(method, path, json=json, params=params) as reply:
                if reply.content_type == "application/json":
                    body = await reply.json()
                else:
                    body = await reply.text()
                return Answer(reply.status, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Answer:
        return await self.request("POST", path, json=json)


def _ok(answer: Answer, what: str) -> Any:
    if answer.status != 200:
        raise SystemExit(f"{what} answered {answer.status}: {answer.body!r:.200}")
    return answer.body


async def catalogue(client: BenchClient) -> tuple[list[str], list[str]]:
    """All user ids of the served artifact (``/v1/users``, the ``users`` scope) and the
    items in the histories of the first 200 of them."""
    users: list[str] = []
    while True:
        page = await client.get("/v1/users", params={"offset": len(users), "limit": 1000})
        got = _ok(page, "GET /v1/users")["users"]
        users += got
        if not got:
            break
    items: set[str] = set()
    for user in users[:200]:
        answer = await client.get(f"/v1/users/{user}/history")
        items.update(_ok(answer, f"GET /v1/users/{user}/history")["items"])
    return users, sorted(items)


def request_bodies(
    users: list[str],
    items: list[str],
    n: int,
    *,
    k: int,
    cold_share: float,
    anonymous_share: float,
    seed: int,
) -> Iterator[dict[str, Any]]:
    """``n`` bodies of ``POST /v1/recommend`` (drawn lazily, the same for the same seed):
    a ``cold_share`` of unknown users with a history of 1-5 known items, an
    ``anonymous_share`` with neither, the rest known users."""
    rng = random.Random(seed)
    for i in range(n):
        draw = rng.random()
        if draw < cold_share:
            history = rng.sample(items, min(len(items), rng.randint(1, 5)))
            yield {"user_id": f"new-user-{i}", "history": history, "k": k}
        elif draw < cold_share + anonymous_share:
            yield {"k": k}
        else:
            yield {"user_id": rng.choice(users), "k": k}


def add_request_mix_arguments(parser: Any) -> None:
    """The request options both service benchmarks take: ``--k``, ``--cold-share``,
    ``--anonymous-share``, ``--timeout`` (per request, seconds) and ``--seed``."""
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--anonymous-share", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=0)


def bodies_for(
    args: Any, users: list[str], items: list[str], n: int, seed: int | None = None
) -> Iterator[dict[str, Any]]:
    """:func:`request_bodies` with the request mix of ``args``
    (:func:`add_request_mix_arguments`); ``seed`` defaults to ``args.seed``."""
    return request_bodies(
        users,
        items,
        n,
        k=args.k,
        cold_share=args.cold_share,
        anonymous_share=args.anonymous_share,
        seed=args.seed if seed is None else seed,
    )


async def drive(
    client: BenchClient,
    bodies: Iterable[dict[str, Any]],
    rate: float,
    *,
    start: float | None = None,
    on_result: Callable[[Record], None] | None = None,
    path: str = "/v1/recommend",
    grace_s: float | None = None,
) -> list[Record]:
    """POST ``bodies[i]`` to ``path`` at ``start + i / rate`` (event-loop time; default:
    0.2 s from now), open loop. Each record: ``due_s`` (from ``start``), ``status`` (0 for a
    transport error, with ``error``), ``strategy``, ``latency_ms`` (from the due time),
    ``service_ms`` (from the send) and ``lag_ms`` (how late the client sent it);
    ``on_result`` sees each record as it completes. Returns the records in due order.
    ``grace_s``: requests still unanswered that long after the last due time are cancelled
    and recorded as errors (status 0), so an overloaded point ends."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2 if start is None else start

    async def one(due: float, body: dict[str, Any]) -> Record:
        sent = loop.time()
        record: Record = {"due_s": round(due - start, 4), "lag_ms": (sent - due) * 1000}
        try:
            answer = await client.post(path, json=body)
            record["status"] = answer.status
            if answer.status == 200:
                record["strategy"] = answer.json_or_empty().get("strategy")
        except TransportError as error:
            record["status"] = 0
            record["error"] = str(error)
        done = loop.time()
        record["latency_ms"] = (done - due) * 1000
        record["service_ms"] = (done - sent) * 1000
        if on_result is not None:
            on_result(record)
        return record

    tasks = []
    dues = []
    for i, body in enumerate(bodies):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        dues.append(due)
        tasks.append(asyncio.create_task(one(due, body)))
    if grace_s is None or not tasks:
        return list(await asyncio.gather(*tasks))
    # an overloaded point ends: what is unanswered grace_s after the last due time is an
    # error (a client past its capacity could otherwise take many times the point's length)
    await asyncio.wait(tasks, timeout=max(0.0, dues[-1] + grace_s - loop.time()))
    records = []
    for due, task in zip(dues, tasks, strict=True):
        if task.done() and not task.cancelled():
            records.append(task.result())
            continue
        task.cancel()
        late: Record = {"due_s": round(due - start, 4), "lag_ms": 0.0, "status": 0}
        late["error"] = f"not answered within {grace_s} s of the point's end"
        late["latency_ms"] = late["service_ms"] = (loop.time() - due) * 1000
        records.append(late)
    return records


def server_count(metrics: str) -> float:
    """The 200 answers of ``/v1/recommend`` in a ``/metrics`` text (one worker's count)."""
    for line in metrics.splitlines():
        wanted = 'route="/v1/recommend"' in line and 'status="200"' in line
        if line.startswith("mtlrec_http_requests_total{") and wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def write_results(out: Path, payload: dict[str, Any], markdown: Callable[..., str]) -> None:
    """``payload`` to ``out.json`` and ``markdown(payload)`` to ``out.md``, each written
    to a temporary file first and renamed, so a killed run never leaves half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in (
        (".json", json.dumps(payload, indent=2) + "\n"),
        (".md", markdown(payload)),
    ):
        target = out.with_suffix(suffix)
        partial = target.with_suffix(suffix + ".tmp")
        partial.write_text(text)
        partial.replace(target)


def machine(load_before: Sequence[float], load_after: Sequence[float]) -> dict[str, Any]:
    """CPUs, Python and the load average around a measurement (the machine may be shared)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "note": "the client runs on the same machine; other benchmarks may run at the same "
        "time (load average)",
    }
