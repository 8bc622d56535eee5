"""The ``mtlrec`` command line: thin Typer commands that call library functions.

Only this module reads ``sys.argv`` and environment variables:
``MTLREC_DATA_MIRRORS`` (folders separated by ``os.pathsep``), ``MTLREC_CACHE_DIR`` and
``MTLREC_OFFLINE=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mtlrec.cli.data import data_app

app = typer.Typer(
    name="mtlrec",
    help="Multi-task learning for recommender systems around pretrained language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")


@app.command()
def version() -> None:
    """Print the mtlrec version."""
    from mtlrec import __version__

    typer.echo(__version__)


def env_mirrors() -> list[Path]:
    """Mirror folders from ``MTLREC_DATA_MIRRORS``."""
    raw = os.environ.get("MTLREC_DATA_MIRRORS", "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


if __name__ == "__main__":
    app()
