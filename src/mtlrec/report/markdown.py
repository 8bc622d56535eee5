"""The Markdown twin of the report: the same sections and tables; figures are written as PNG
files in a folder beside the ``.md`` and linked relatively."""

from __future__ import annotations

from pathlib import Path

from mtlrec.report.document import Block, Cell, Document, Plot, format_cell


def _cell(value: Cell) -> str:
    return format_cell(value).replace("|", "\\|").replace("\n", "<br>")


def plot_folder(markdown_path: Path) -> Path:
    """Where the figures of ``report.md`` go: ``report_plots/`` beside it."""
    return markdown_path.with_name(f"{markdown_path.stem}_plots")


def _block(block: Block, plots: Path | None) -> list[str]:
    if block.kind == "heading":
        return [f"### {block.text}", ""]
    if block.kind == "note":
        return [f"_{block.text}_", ""]
    if block.kind == "table":
        lines = [f"**{block.title}**", ""]
        lines.append("| " + " | ".join(_cell(c) for c in block.columns) + " |")
        lines.append("|" + "---|" * len(block.columns))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        lines.append("")
        lines += [f"- {note}" for note in block.notes]
        return [*lines, ""] if block.notes else lines
    if block.kind == "keyvalues":
        return [f"**{block.title}**", "", *[f"- {k}: {_cell(v)}" for k, v in block.items], ""]
    if block.kind == "details":
        fence = "~~~" if "```" in block.text else "```"
        return [
            f"<details><summary>{block.summary}</summary>",
            "",
            f"{fence}{block.language}",
            block.text,
            fence,
            "",
            "</details>",
            "",
        ]
    if plots is None:
        return [f"_Figure omitted: {block.title}_", ""]
    return [f"**{block.title}**", "", f"![{block.alt}]({plots.name}/{block.key}.png)", ""]


def render_markdown(document: Document, plots: Path | None = None) -> str:
    """The Markdown text; figures link into the folder ``plots`` (omitted when ``None``)."""
    lines = [f"# {document.title}", ""]
    lines += [f"- {key}: {value}" for key, value in document.header]
    lines += ["", "## Contents", ""]
    lines += [f"{i}. {s.title}" for i, s in enumerate(document.sections, 1)]
    lines.append("")
    for index, section in enumerate(document.sections, 1):
        lines += [f"## {index}. {section.title}", ""]
        if not section.blocks:
            lines += [f"_{section.title}: {section.missing}._", ""]
        for block in section.blocks:
            lines += _block(block, plots)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(document: Document, path: Path) -> Path:
    """Write ``path`` and its figures (``<stem>_plots/<kind>-<run>.png``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = plot_folder(path)
    figures: list[Plot] = document.plots()
    if figures:
        folder.mkdir(parents=True, exist_ok=True)
        for plot in figures:
            (folder / f"{plot.key}.png").write_bytes(plot.png)
    path.write_text(render_markdown(document, folder if figures else None), encoding="utf-8")
    return path
