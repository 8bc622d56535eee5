"""Run folders (+ benchmark results) -> the report document -> HTML page and Markdown twin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mtlrec.report.collect import load_bench, load_runs
from mtlrec.report.compare import compare_section
from mtlrec.report.document import Document, Note, Section
from mtlrec.report.html import render_html
from mtlrec.report.markdown import write_markdown
from mtlrec.report.overview import config_section, headline_section, overview_section
from mtlrec.report.peers import peers_section
from mtlrec.report.ranking import beyond_section, fusion_section
from mtlrec.report.training import curves_section, gates_section, weights_section

TITLE = "mtlrec experiment report"


def build_document(
    run_dirs: Sequence[Path], bench_dir: Path | None = None, generated: str | None = None
) -> Document:
    """Read the runs (and ``bench_dir``'s benchmark files) into the report's sections: the
    runs' own results first, the committed benchmark tables after them in each section.

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
        headline_section(runs),
        overview_section(runs),
        curves_section(runs),
        weights_section(runs),
        gates_section(runs),
        compare_section(runs, bench),
        fusion_section(runs, bench),
        beyond_section(runs, bench),
        peers_section(bench),
        config_section(runs),
    ]
    return Document(TITLE, header, [introduced(s) for s in sections])


INTROS: dict[str, str] = {
    "headline": "The runs given, on their test split: the ranking and each task's headline "
    "metric, at the epoch validation chose. Start here.",
    "overview": "What each run trained on and for how long; the dataset as prepared "
    "(counts, quarantined rows, split sizes).",
    "curves": "Per-task training loss and the validation metric per epoch: look for the "
    "epoch where validation stops improving and for a task whose loss does not fall.",
    "weights": "How the weighting strategy moved each task's weight during training.",
    "gates": "Which experts each task's gate uses (MMoE / PLE runs only).",
    "mtl-vs-stl": "The multi-task model against its single-task twins: the runs given first, "
    "then the committed benchmark (--bench).",
    "fusion": "Classic baselines and fused cascades beside the multi-task model, from the "
    "runs' fusion/ folders and the committed benchmark.",
    "beyond": "Coverage, diversity, novelty and popularity of the top-K lists, per slice.",
    "peers": "The same splits run through peer frameworks (RecBole, torch-rechub): the "
    "committed benchmark results.",
    "config": "Each run's resolved config.yaml, folded.",
}
"""One sentence per section, shown first in it: what to look at there."""


def introduced(section: Section) -> Section:
    """``section`` with its :data:`INTROS` sentence as its first block (when it has any
    block: a section with nothing to show keeps its "not available" line alone)."""
    intro = INTROS.get(section.key)
    if intro is None or not section.blocks:
        return section
    return replace(section, blocks=[Note(intro), *section.blocks])


def write_report(document: Document, html_path: Path, markdown_path: Path | None = None) -> Path:
    """Write the HTML page and its Markdown twin (default: the same path with ``.md``)."""
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(document), encoding="utf-8")
    write_markdown(document, markdown_path or html_path.with_suffix(".md"))
    return html_path
