"""``mtlrec report``: run folders (+ benchmark results) -> one HTML page and a Markdown twin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtlrec.cli.data import KNOWN_ERRORS, console, fail


def report_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN...",
            help="Run folders written by 'mtlrec train'.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    bench: Annotated[
        Path | None,
        typer.Option(help="A benchmark results folder (mtl_vs_stl.json, fusion_*.json, peers_*)."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="The Markdown twin (default: --out with .md).")
    ] = None,
) -> None:
    """Write an experiment report: runs, configs, curves, task weights, MTL vs STL, fusion,
    beyond-accuracy metrics, gate utilisation and peer benchmarks."""
    from mtlrec.report import ReportInputError, build_document, write_report

    markdown_path = markdown or out.with_suffix(".md")
    try:
        document = build_document(run_dirs, bench)
        write_report(document, out, markdown_path)
    except (*KNOWN_ERRORS, ReportInputError) as error:
        raise fail(error) from None
    plots = len(document.plots())
    console.print(f"[green]report written to[/] {out} and {markdown_path} ({plots} figures)")
