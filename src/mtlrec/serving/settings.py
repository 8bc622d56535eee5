"""What one ``mtlrec serve`` process is told: the artifact, the keys, the limits.

:class:`ServeSettings` is a pydantic model with ``extra="forbid"``: the CLI builds it from its
options (the only place that reads the command line and the environment) and
:func:`mtlrec.serving.app.create_app` takes it as it is.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ServeSettings(BaseModel):
    """Settings of the HTTP service.

    ``artifact``: the bundle served at start (``mtlrec export``); ``api_keys``: the key file
    (hashes and scopes, :mod:`mtlrec.serving.auth`); ``reload_root``: the folder a reload
    may load artifacts from (default: the folder holding ``artifact``), so an admin key
    cannot make the service read arbitrary paths; ``max_body_bytes``: requests with a larger
    body get 413; ``full_rank_limit``:
    catalogues up to this size are scored whole by the multi-task heads (larger ones only
    on FAISS / popularity candidates, ``candidates`` of each); ``log_salt``: the key of the
    HMAC that masks user ids in logs (random per process unless given, so masks correlate
    within one process's logs only); ``torch_threads``: intra-op threads per process;
    ``request_threads``: the threads per process that run requests (the size of AnyIO's
    default thread pool, 40 unless set; further requests wait for one): with one torch
    thread and the GIL more add nothing but memory, each thread's stack and malloc state;
    ``max_in_flight``: model requests (``/v1/...``, not admin) a process handles at once;
    one more is answered 503 with ``Retry-After`` at once (load shedding; None: no limit);
    ``docs``: serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (off by default: both
    pages load their scripts from a CDN, so they need the browser to reach the internet;
    ``/openapi.json`` is served either way); ``metrics_require_key``: ``/metrics`` answers
    only a key with the ``metrics`` scope (off by default: Prometheus scrapes it as it does
    ``/healthz``; the metrics hold route templates and counts, never ids).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Path
    api_keys: Path
    reload_root: Path | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    full_rank_limit: int = Field(default=50_000, ge=1)
    candidates: int = Field(default=500, ge=1)
    log_salt: str = Field(default_factory=lambda: secrets.token_hex(16), repr=False)
    torch_threads: int = Field(default=1, ge=1)
    request_threads: int = Field(default=8, ge=1)
    max_in_flight: int | None = Field(default=32, ge=1)
    docs: bool = False
    metrics_require_key: bool = False

    @property
    def reload_folder(self) -> Path:
        """The folder reloads must stay inside (resolved)."""
        return (self.reload_root or self.artifact.parent).resolve()
