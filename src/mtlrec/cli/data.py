"""``mtlrec data ...``: prepare, stats, validate and list datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mtlrec.config import ConfigError
from mtlrec.core.atomic import WRITE_FAILURES, WriteError
from mtlrec.core.registry import UnknownNameError
from mtlrec.data.fetch import ChecksumError, DatasetUnavailableError, FetchSettings
from mtlrec.data.read_report import DataFormatError

console = Console()  # metric tables are built to read whole at 100 columns
errors = Console(stderr=True)
data_app = typer.Typer(help="Prepare, inspect and validate datasets.", no_args_is_help=True)

KNOWN_ERRORS = (
    ConfigError,
    DataFormatError,
    DatasetUnavailableError,
    ChecksumError,
    UnknownNameError,
    WriteError,
    OSError,
    ValueError,
)
"""What a command turns into one ``error:`` line (:func:`fail`) instead of a traceback:
a file the system refused (missing, unreadable, disk full, read-only) is among them."""


MirrorOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--mirror",
        help="A folder of raw dataset files (DIR/<dataset>/<file>), looked in before the "
        "cache and the download; repeatable (default: MTLREC_DATA_MIRRORS).",
        metavar="DIR",
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Where fetched files, prepared datasets and text embeddings are kept "
        "(default: MTLREC_CACHE_DIR, else ~/.cache/mtlrec).",
        metavar="DIR",
    ),
]
OfflineOption = Annotated[
    bool, typer.Option(help="Never download: read mirrors and the cache only.")
]


def describe(error: BaseException) -> str:
    """One line for ``error``: an :class:`OSError` that names a file says which and why
    (``runs/x/config.yaml: read-only file system``), anything else its message."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        reason = WRITE_FAILURES.get(error.errno or 0, error.strerror.lower())
        return f"{os.fsdecode(error.filename)}: {reason}"
    return str(error)


def fail(error: BaseException) -> typer.Exit:
    """Print a readable error (no traceback) and return the exit to raise."""
    errors.print(
        f"[bold red]error:[/] {describe(error)}", markup=True, highlight=False, soft_wrap=True
    )
    return typer.Exit(code=2)


def fetch_settings(mirrors: list[Path], cache_dir: Path | None, offline: bool) -> FetchSettings:
    """Build fetch settings from options, then environment variables, then defaults; prints
    the cache folder in use (and where that choice came from) on stderr."""
    env_mirrors = [
        Path(p) for p in os.environ.get("MTLREC_DATA_MIRRORS", "").split(os.pathsep) if p.strip()
    ]
    env_cache = os.environ.get("MTLREC_CACHE_DIR")
    env_offline = os.environ.get("MTLREC_OFFLINE", "").lower() in {"1", "true", "yes"}
    defaults = FetchSettings()
    settings = FetchSettings(
        cache_dir=cache_dir or (Path(env_cache) if env_cache else defaults.cache_dir),
        mirrors=tuple(mirrors or env_mirrors),
        offline=offline or env_offline,
    )
    source = "--cache-dir" if cache_dir else "MTLREC_CACHE_DIR" if env_cache else "default"
    errors.print(f"[dim]cache: {settings.cache_dir} ({source})[/]", highlight=False, soft_wrap=True)
    return settings


@data_app.command("prepare")
def prepare_command(
    target: Annotated[
        str, typer.Argument(metavar="DATASET", help="A catalog dataset name or a YAML config file.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the prepared dataset to.")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")
    ] = None,
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Parse, validate, split and label a dataset into OUT (Parquet tables + manifest)."""
    from mtlrec.config.fast_check import fast_check_prepare
    from mtlrec.data.prepare import load_prepare_config, prepare

    try:
        config = load_prepare_config(target, overrides or [])
        # names and parameters, before any file is read: from the component index first
        # (without importing torch), then against the live registries (types too)
        fast_check_prepare(config)
        from mtlrec.models.check import check_prepare_config  # imports torch

        check_prepare_config(config)
        settings = fetch_settings(mirror or [], cache_dir, offline)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("starting", total=None)
            result = prepare(
                config,
                out,
                settings,
                on_step=lambda step: progress.update(task, description=step),
            )
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    from mtlrec.cli.summary import print_manifest

    print_manifest(console, result.manifest)
    console.print(f"[green]prepared[/] {result.root}")


@data_app.command("stats")
def stats_command(
    folder: Annotated[
        Path, typer.Argument(metavar="FOLDER", help="A folder written by 'mtlrec data prepare'.")
    ],
) -> None:
    """Print the summary of a prepared dataset."""
    from mtlrec.cli.summary import print_manifest
    from mtlrec.data.store import PreparedDataset, PreparedDatasetError

    try:
        dataset = PreparedDataset.load(folder)
    except PreparedDatasetError as error:
        raise fail(error) from None
    print_manifest(console, dataset.manifest)


@data_app.command("validate")
def validate_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A raw data file.")],
    file_format: Annotated[str, typer.Option("--format", help="The file's format name.")],
    show: Annotated[int, typer.Option(help="How many quarantined rows to print.")] = 20,
    quarantine: Annotated[
        Path | None, typer.Option(help="Write every quarantined row to this JSONL file.")
    ] = None,
) -> None:
    """Parse one raw file and report rows read, kept and quarantined (with line and reason)."""
    from mtlrec.cli.summary import print_report
    from mtlrec.data.validate import validate_file

    try:
        report, frame = validate_file(file, file_format)
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    print_report(console, report, show=show)
    console.print(f"parsed table: {frame.height:,} rows x {frame.width} columns")
    if quarantine is not None:
        written = report.write_quarantine(quarantine)
        console.print(f"wrote {written:,} quarantined rows to {quarantine}")
    if report.rows_quarantined:
        raise typer.Exit(code=1)


@data_app.command("list")
def list_command() -> None:
    """List the catalog's named datasets and the file formats 'validate' knows."""
    from rich.table import Table

    from mtlrec.data.catalog import DATASETS
    from mtlrec.data.validate import FORMATS

    table = Table("dataset", "layouts", "description")
    for name in DATASETS:
        spec = DATASETS.get(name)
        table.add_row(name, ", ".join(layout.label for layout in spec.layouts), spec.description)
    console.print(table)
    console.print("file formats: " + ", ".join(FORMATS.names()))
