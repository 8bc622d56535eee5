"""The service's ASGI middleware: body size limit, metrics and access logs with masked ids.

:class:`ServiceMiddleware` wraps every HTTP request:

- a body larger than ``max_body_bytes`` is refused with 413, by its ``Content-Length``
  before anything is read, or while it streams in (chunked uploads) through
  :class:`BodyTooLarge`, an HTTP 413 exception, so the app answers it like any other error;
- the answer is counted and timed (:class:`~mtlrec.serving.metrics.ServiceMetrics`) under
  the route's template, and an unhandled exception counts as a 500;
- one access-log line per request on the ``mtlrec.serving.access`` logger: method, route
  template (never the raw path, which may hold a user id), status, milliseconds and, when
  a route recorded one, the masked user id (:func:`mask_user_id`).
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


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": "payload_too_large", "message": BodyTooLarge(limit).detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ServiceMiddleware:
    """Body limit, metrics and access log around ``app`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
