"""The HTML page: self-contained, every section, every figure, escaped text."""

from __future__ import annotations

import re
from pathlib import Path

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.report import build_document
from mtlrec.report.document import Document, Note, Section
from mtlrec.report.html import render_html

SECTIONS = [
    "Headline results",
    "Runs and datasets",
    "Training curves",
    "Task weights over time",
    "Gate utilisation (MMoE / PLE)",
    "Multi-task vs single-task",
    "Baselines and fusion",
    "Beyond-accuracy metrics",
    "Peer frameworks",
    "Resolved configuration",
]


def _document(tmp_path: Path, bench: bool = True) -> Document:
    runs = [
        write_fake_run(tmp_path / "mtl", {"like": "binary", "rating": "regression"}, fusion=True),
        write_fake_run(tmp_path / "stl", {"like": "binary"}, backbone="shared_bottom"),
    ]
    bench_dir = write_fake_bench(tmp_path / "bench") if bench else None
    return build_document(runs, bench_dir, generated="2024-01-01 00:00 UTC")


def test_page_is_self_contained_with_every_section_and_figure(tmp_path: Path) -> None:
    page = render_html(_document(tmp_path))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert all(src.startswith("data:") for src in re.findall(r'(?:src|href)="([^"#][^"]*)"', page))
    for number, title in enumerate(SECTIONS, 1):
        assert f"<h2>{number}. {title}</h2>" in page
    plots = re.findall(r'<figure class="plot" data-plot="([^"]+)">', page)
    assert plots == ["curves-mtl", "curves-stl", "weights-mtl", "weights-stl", "gates-mtl"]
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="[^"]+">', page)
    assert len(images) == 5
    assert "<details><summary>mtl: config.yaml</summary>" in page
    assert "0.8100 ± 0.010" in page  # the benchmark's MTL mean ± std
    assert "ML-100K full ranking &lt;peers&gt;" in page  # escaped, from peers_ranking.json
    assert '<td class="num">0.1235</td>' in page  # 4 significant digits, right-aligned


def test_missing_data_says_not_available(tmp_path: Path) -> None:
    page = render_html(_document(tmp_path, bench=False))
    assert "Peer frameworks: not available (no --bench folder given)." in page
    assert "Benchmark table: not available (no --bench folder)." in page
    empty = Document("t", [("generated", "now")], [Section("x", "Empty", [])])
    assert '<p class="missing">Empty: not available in these runs.</p>' in render_html(empty)


def test_text_from_runs_cannot_inject_markup() -> None:
    hostile = Section("x", "<b>s</b>", [Note('<img src="http://evil">')])
    page = render_html(Document("<t>", [("k", "<v>")], [hostile]))
    assert '<img src="http://evil">' not in page and "&lt;img src=" in page
    assert "&lt;b&gt;s&lt;/b&gt;" in page and "<title>&lt;t&gt;</title>" in page


def test_same_inputs_same_page_but_the_time_stamp(tmp_path: Path) -> None:
    first = render_html(_document(tmp_path))
    second = render_html(_document(tmp_path))
    assert first == second
