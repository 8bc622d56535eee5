"""Run folders (+ benchmark results) -> the report document -> HTML page and Markdown twin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mtlrec.report.collect import load_bench, load_runs
from mtlrec.report.compare import compare_section
from mtlrec.report.document import Document
from mtlrec.report.html import render_html
from mtlrec.report.markdown import write_markdown
from mtlrec.report.overview import config_section, overview_section
from mtlrec.report.peers import peers_section
from mtlrec.report.ranking import beyond_section, fusion_section
from mtlrec.report.training import curves_section, gates_section, weights_section

TITLE = "mtlrec experiment report"


def build_document(
    run_dirs: Sequence[Path], bench_dir: Path | None = None, generated: str | None = None
) -> Document:
    """Read the runs (and ``bench_dir``'s benchmark files) into the nine report sections.

    ``generated`` is the header's time stamp (default: now, UTC, to the minute); the figures
    themselves carry none, so the same inputs give the same figures.
    """
    from mtlrec import __version__

    if not run_dirs:
        raise ValueError("the report needs at least one run folder")
    runs = load_runs(run_dirs)
    bench = load_bench(bench_dir) if bench_dir is not None else None
    stamp = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        ("generated", stamp),
        ("mtlrec", __version__),
        ("runs", ", ".join(str(p) for p in run_dirs)),
        ("benchmark results", str(bench_dir) if bench_dir is not None else "none (no --bench)"),
    ]
    sections = [
        overview_section(runs),
        config_section(runs),
        curves_section(runs),
        weights_section(runs),
        compare_section(runs, bench),
        fusion_section(runs, bench),
        beyond_section(runs, bench),
        gates_section(runs),
        peers_section(bench),
    ]
    return Document(TITLE, header, sections)


def write_report(document: Document, html_path: Path, markdown_path: Path | None = None) -> Path:
    """Write the HTML page and its Markdown twin (default: the same path with ``.md``)."""
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(document), encoding="utf-8")
    write_markdown(document, markdown_path or html_path.with_suffix(".md"))
    return html_path
