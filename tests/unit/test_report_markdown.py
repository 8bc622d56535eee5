"""The Markdown twin: the same tables as the page, figures as PNG files linked relatively."""

from __future__ import annotations

from pathlib import Path

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.report import build_document, write_report
from mtlrec.report.document import Table, format_cell
from mtlrec.report.markdown import render_markdown, write_markdown


def test_every_table_and_figure_is_in_the_markdown(tmp_path: Path) -> None:
    runs = [
        write_fake_run(tmp_path / "mtl", {"like": "binary", "rating": "regression"}, fusion=True),
        write_fake_run(tmp_path / "stl", {"like": "binary"}, backbone="shared_bottom"),
    ]
    document = build_document(runs, write_fake_bench(tmp_path / "bench"), generated="now")
    path = write_markdown(document, tmp_path / "out" / "report.md")
    text = path.read_text()
    tables = [b for s in document.sections for b in s.blocks if isinstance(b, Table)]
    assert len(tables) >= 10
    for table in tables:
        assert f"**{table.title}**" in text
        header = "| " + " | ".join(table.columns) + " |"
        assert header in text, header
        for row in table.rows:
            cells = [format_cell(c).replace("|", "\\|") for c in row]
            assert "| " + " | ".join(cells) + " |" in text
    for number, section in enumerate(document.sections, 1):
        assert f"## {number}. {section.title}" in text
    plots = document.plots()
    assert len(plots) == 5
    for plot in plots:
        assert f"](report_plots/{plot.key}.png)" in text
        assert (tmp_path / "out" / "report_plots" / f"{plot.key}.png").read_bytes() == plot.png
    assert "<details><summary>mtl: config.yaml</summary>" in text and "```yaml" in text


def test_figures_can_be_omitted_with_a_note(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r", {"like": "binary"})
    document = build_document([run], generated="now")
    text = render_markdown(document, plots=None)
    assert "_Figure omitted: r: training loss and validation metrics_" in text and "![" not in text


def test_write_report_puts_the_markdown_beside_the_page_by_default(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r", {"like": "binary"})
    write_report(build_document([run], generated="now"), tmp_path / "site" / "index.html")
    assert (tmp_path / "site" / "index.md").is_file()
    assert (tmp_path / "site" / "index_plots").is_dir()
