"""The ``mtlrec`` command line: thin Typer commands that call library functions.

Only the ``mtlrec.cli`` package reads ``sys.argv`` and environment variables:
``MTLREC_DATA_MIRRORS`` (folders separated by ``os.pathsep``), ``MTLREC_CACHE_DIR`` and
``MTLREC_OFFLINE=1``; ``mtlrec serve`` also ``MTLREC_API_KEYS_FILE``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mtlrec.cli.data import data_app
from mtlrec.cli.export import export_command
from mtlrec.cli.fuse import fuse_command, recommend_command
from mtlrec.cli.report import report_command
from mtlrec.cli.serve import api_keys_app, serve_command
from mtlrec.cli.train import evaluate_command, train_command

app = typer.Typer(
    name="mtlrec",
    help="Multi-task learning for recommender systems around pretrained language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from mtlrec import __version__

        typer.echo(f"mtlrec {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Multi-task learning for recommender systems around pretrained language models."""


app.add_typer(data_app, name="data")
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("fuse")(fuse_command)
app.command("recommend")(recommend_command)
app.command("report")(report_command)
app.command("export")(export_command)
app.command("serve")(serve_command)
app.add_typer(api_keys_app, name="api-keys")


@app.command()
def version() -> None:
    """Print the mtlrec version."""
    from mtlrec import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    app()
