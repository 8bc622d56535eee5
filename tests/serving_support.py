"""What the service tests share: two real tiny artifacts, API keys, a live uvicorn server.

:func:`make_tiny_artifacts` trains the tiny run of :mod:`tiny_run` (~1 s), exports it as a
plain artifact (multi-task heads only), fuses it (popularity + item kNN retrievers, linear
fusion, MMR) and exports that as a second artifact, both in one folder (the reload root),
and writes a key file with one key per scope set. :class:`LiveServer` runs an app under a
real uvicorn server on 127.0.0.1 (a free port the OS picks) in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console

from mtlrec.config.fusion import FusionConfig
from mtlrec.export.write import write_artifact
from mtlrec.pipeline.fuse import fuse_run, load_fused_run
from mtlrec.pipeline.trained_run import load_trained_run
from mtlrec.serving.auth import SCOPES, add_key
from tiny_run import TINY_FUSION, train_tiny_run

QUIET = Console(quiet=True)
FUSION = TINY_FUSION


@dataclass(frozen=True)
class TinyServing:
    """Two artifacts of one tiny run (``plain``: heads only; ``fused``: with its cascade),
    the key file and keys: ``keys["all"]`` (every scope), ``keys[scope]`` (that scope only,
    for each of :data:`~mtlrec.serving.auth.SCOPES`) and ``keys["ui"]`` (what the /ui page
    needs: recommend and users)."""

    root: Path
    plain: Path
    fused: Path
    key_file: Path
    keys: dict[str, str]


def make_tiny_artifacts(root: Path) -> TinyServing:
    """Train, export, fuse and export the tiny run under ``root`` (a few seconds)."""
    run_dir, settings = train_tiny_run(root)
    out = root / "artifacts"
    plain = write_artifact(
        load_trained_run(run_dir, settings, QUIET),
        out,
        name="tiny-plain",
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )
    fuse_run(run_dir, FusionConfig.model_validate(FUSION), settings, QUIET)
    fused = write_artifact(
        load_fused_run(run_dir, settings, QUIET).run,
        out,
        name="tiny-fused",
        created=datetime(2026, 1, 2, tzinfo=UTC),
    )
    key_file = root / "keys.json"
    keys = {"all": add_key(key_file, "all", list(SCOPES))}
    keys |= {scope: add_key(key_file, scope, [scope]) for scope in SCOPES}
    keys["ui"] = add_key(key_file, "ui", ["recommend", "users"])
    return TinyServing(root, plain, fused, key_file, keys)


class LiveServer:
    """``app`` under a real uvicorn server on 127.0.0.1 in a background thread.

    ``with LiveServer(app) as server:`` starts it (on a socket bound to a free port first,
    so there is no race for the port) and waits until it accepts connections; leaving the
    block asks it to exit (uvicorn's graceful shutdown) and joins the thread.
    """

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, **config)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the uvicorn server did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for a server in another process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
