"""``mtlrec serve ARTIFACT`` (FastAPI on uvicorn) and ``mtlrec api-keys add|list|revoke``."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mtlrec.cli.data import KNOWN_ERRORS, console, fail

if TYPE_CHECKING:
    from fastapi import FastAPI

SETTINGS_ENV = "MTLREC_SERVE_SETTINGS"
"""How ``--workers N`` hands the settings to each uvicorn worker process (JSON)."""

api_keys_app = typer.Typer(
    help="Make, list and revoke the API keys of 'mtlrec serve' (only hashes are stored).",
    no_args_is_help=True,
)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the service's own loggers (access lines, lifecycle)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["mtlrec.serving"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def worker_app() -> FastAPI:
    """The app of one uvicorn worker process (``--workers N``): settings from the env."""
    from mtlrec.serving.app import create_app
    from mtlrec.serving.settings import ServeSettings

    return create_app(ServeSettings.model_validate_json(os.environ[SETTINGS_ENV]))


def serve_command(
    artifact: Annotated[
        Path, typer.Argument(metavar="ARTIFACT", help="An artifact folder of 'mtlrec export'.")
    ],
    api_keys: Annotated[
        Path,
        typer.Option(
            "--api-keys",
            envvar="MTLREC_API_KEYS_FILE",
            help="Key file of 'mtlrec api-keys add' (hashes and scopes).",
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes, each loading the artifact. A reload reaches only the "
            "worker that answers it: to hot-reload, run one worker and scale processes.",
        ),
    ] = 1,
    reload_root: Annotated[
        Path | None,
        typer.Option(help="Folder reloads may load from (default: the artifact's folder)."),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Larger bodies get 413.")] = 65536,
    graceful_timeout: Annotated[
        float, typer.Option(min=0.0, help="Seconds in-flight requests get on shutdown.")
    ] = 30.0,
    torch_threads: Annotated[int, typer.Option(min=1, help="Intra-op threads per worker.")] = 1,
    request_threads: Annotated[
        int,
        typer.Option(min=1, help="Threads per worker that run requests (more wait their turn)."),
    ] = 8,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=0,
            help="Model requests per worker handled at once; one more gets 503 with "
            "Retry-After (load shedding). 0: no limit.",
        ),
    ] = 32,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    docs: Annotated[
        bool,
        typer.Option(
            "--docs/--no-docs",
            help="Serve Swagger UI (/docs) and ReDoc (/redoc); their scripts load from a CDN.",
        ),
    ] = False,
    metrics_require_key: Annotated[
        bool,
        typer.Option(
            "--metrics-require-key/--metrics-open",
            help="/metrics answers only a key with the 'metrics' scope.",
        ),
    ] = False,
) -> None:
    """Serve an artifact over HTTP: /v1/recommend, /v1/score, /v1/items/{id}/similar,
    /v1/users, /v1/admin/reload, /healthz, /readyz, /metrics and the /ui page. SIGTERM /
    Ctrl-C stop accepting connections and let the requests in flight finish (up to
    --graceful-timeout)."""
    import uvicorn

    from mtlrec.export.checksums import ArtifactError
    from mtlrec.serving.app import create_app
    from mtlrec.serving.settings import ServeSettings

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # uvicorn's lines hold raw paths (user ids): ours mask them
        "log_config": _log_config(log_level),
        "log_level": log_level,
        "timeout_graceful_shutdown": graceful_timeout,
    }
    try:
        settings = ServeSettings(
            artifact=artifact.resolve(),
            api_keys=api_keys,
            reload_root=reload_root.resolve() if reload_root else None,
            max_body_bytes=max_body_bytes,
            torch_threads=torch_threads,
            request_threads=request_threads,
            max_in_flight=max_in_flight or None,
            docs=docs,
            metrics_require_key=metrics_require_key,
        )
        if workers == 1:
            app = create_app(settings)
    except (*KNOWN_ERRORS, ArtifactError) as error:
        raise fail(error) from None
    if workers == 1:
        uvicorn.run(app, **common)
    else:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("mtlrec.cli.serve:worker_app", factory=True, workers=workers, **common)


@api_keys_app.command("add")
def add_key_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The key file (created when missing).")
    ],
    name: Annotated[str, typer.Option(help="A name for the key (who or what uses it).")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="recommend (recommendations, similar items), score (per-pair predictions), "
            "users (user ids and histories), admin (reload), metrics (/metrics when the "
            "service requires a key there); repeat for several.",
        ),
    ],
) -> None:
    """Make a key: prints it once; the file keeps only its sha256 and scopes."""
    from mtlrec.serving.auth import SCOPES, add_key

    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        raise fail(ValueError(f"unknown scope(s) {unknown}; known: {', '.join(SCOPES)}"))
    try:
        key = add_key(file, name, scope)  # type: ignore[arg-type]
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    console.print(f"key {name!r} ({', '.join(scope)}) stored as a hash in {file}; the key:")
    typer.echo(key)


@api_keys_app.command("list")
def list_keys_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The key file.")],
) -> None:
    """List key names, scopes and hash prefixes (keys themselves are never stored)."""
    from mtlrec.serving.auth import read_key_file

    try:
        keys = read_key_file(file)
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    for record in keys.keys:
        typer.echo(
            f"{record.name}\t{','.join(record.scopes)}\tsha256:{record.sha256[:12]}"
            f"\t{record.created_at or ''}"
        )


@api_keys_app.command("revoke")
def revoke_key_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The key file.")],
    name: Annotated[str, typer.Option(help="The key's name.")],
) -> None:
    """Remove a key (a running service keeps the keys it read at start until restarted)."""
    from mtlrec.serving.auth import revoke_key

    try:
        revoke_key(file, name)
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    console.print(f"revoked {name!r} in {file}")
