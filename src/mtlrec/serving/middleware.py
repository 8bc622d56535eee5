"""The service's ASGI middleware: body size limit, metrics and access logs with masked ids.

:class:`ServiceMiddleware` wraps every HTTP request:

- a body larger than ``max_body_bytes`` is refused with 413, by its ``Content-Length``
  before anything is read, or while it streams in (chunked uploads) through
  :class:`BodyTooLarge`, an HTTP 413 exception, so the app answers it like any other error;
- the answer is counted and timed (:class:`~mtlrec.serving.metrics.ServiceMetrics`) under
  the route's template, and an unhandled exception counts as a 500;
- one access-log line per request on the ``mtlrec.serving.access`` logger: method, route
  template (never the raw path, which may hold a user id), status, milliseconds and, when
  a route recorded one, the masked user id (:func:`mask_user_id`);
- load shedding: with ``max_in_flight`` model requests (``/v1/...`` but the admin routes)
  already being handled, a new one is answered 503 ``overloaded`` with ``Retry-After: 1``
  at once, so past its capacity the service keeps answering what it accepted in time
  instead of queueing everything until clients time out. Probes, ``/metrics`` and admin
  routes are never shed. (uvicorn's ``--limit-concurrency`` counts open connections, so a
  client's idle keep-alive pool would trip it, and it sheds probes too.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtlrec.serving.metrics import ServiceMetrics

ACCESS_LOG = logging.getLogger("mtlrec.serving.access")
USER_STATE = "masked_user"
"""Key in ``scope["state"]`` (``request.state``) where routes put the masked user id."""


class BodyTooLarge(HTTPException):
    """A request body over the limit: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def mask_user_id(user_id: str, salt: str) -> str:
    """``u:<12 hex>``: an HMAC-sha256 of ``user_id`` keyed by ``salt``; the same user gets
    the same mask in one service's logs, and the id cannot be read back."""
    digest = hmac.new(salt.encode(), user_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "u:" + digest.hexdigest()[:12]


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(
    send: Send, status: int, payload: dict[str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_413(send: Send, limit: int) -> None:
    payload = {"error": "payload_too_large", "message": str(BodyTooLarge(limit).detail)}
    await _send_json(send, 413, payload, [(b"connection", b"close")])


def sheddable(path: str) -> bool:
    """Whether a request to ``path`` does model work that load shedding may refuse: the
    ``/v1/`` routes but the admin ones (probes, ``/metrics`` and the page never are)."""
    return path.startswith("/v1/") and not path.startswith("/v1/admin/")


class ServiceMiddleware:
    """Body limit, metrics and access log around ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        max_in_flight: int | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.model_requests = 0  # sheddable requests being handled (one event loop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not sheddable(scope["path"]):
            await self._handle(scope, receive, send)
            return
        if self.max_in_flight is not None and self.model_requests >= self.max_in_flight:
            await self._shed(scope, send)
            return
        self.model_requests += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.model_requests -= 1

    async def _shed(self, scope: Scope, send: Send) -> None:
        """503 ``overloaded`` without reading the body; counted under the route ``<shed>``."""
        start = time.perf_counter()
        payload = {
            "error": "overloaded",
            "message": f"the service is handling its limit of {self.max_in_flight} requests; "
            "retry after a second",
        }
        await _send_json(send, 503, payload, [(b"retry-after", b"1")])
        self.metrics.observe(scope["method"], "<shed>", 503, time.perf_counter() - start)
        ACCESS_LOG.info("%s <shed> 503 overloaded", scope["method"])

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # what an exception escaping the app becomes
        started = False
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                status = 413
                await _send_413(send, limit)
                return
            try:
                await self.app(scope, limited_receive, tracking_send)
            except BodyTooLarge:
                if started:
                    raise
                status = 413
                await _send_413(send, limit)
        finally:
            elapsed = time.perf_counter() - start
            route = _route(scope)
            self.metrics.in_flight.dec()
            self.metrics.observe(scope["method"], route, status, elapsed)
            user = state.get(USER_STATE)
            ACCESS_LOG.info(
                "%s %s %d %.1fms%s",
                scope["method"],
                route,
                status,
                elapsed * 1000,
                f" user={user}" if user else "",
            )
