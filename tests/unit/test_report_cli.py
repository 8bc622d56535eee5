"""``mtlrec report`` as a user runs it (Typer's runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.cli.main import app

runner = CliRunner()


def test_report_writes_the_page_and_its_markdown_twin(tmp_path: Path) -> None:
    mtl = write_fake_run(tmp_path / "mtl", {"like": "binary", "rating": "regression"})
    stl = write_fake_run(tmp_path / "stl", {"like": "binary"}, files=("train.jsonl",))
    bench = write_fake_bench(tmp_path / "bench")
    out = tmp_path / "site" / "report.html"
    args = ["report", str(mtl), str(stl), "--bench", str(bench), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output and "5 figures" in result.output
    page = out.read_text()
    assert page.count('<figure class="plot"') == 5 and "peers_ranking" in page
    markdown = (tmp_path / "site" / "report.md").read_text()
    assert "## 9. Peer frameworks" in markdown and "report_plots/gates-mtl.png" in markdown


def test_report_markdown_path_can_be_chosen(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r", {"like": "binary"})
    md = tmp_path / "notes" / "summary.md"
    args = ["report", str(run), "--out", str(tmp_path / "r.html"), "--markdown", str(md)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert md.is_file() and (tmp_path / "notes" / "summary_plots").is_dir()
    assert not (tmp_path / "r.md").exists()


def test_a_folder_that_is_not_a_run_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notarun").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "notarun"), "--out", "x.html"])
    assert result.exit_code == 2
    assert "notarun" in result.output and "not a run folder" in result.output
    missing = runner.invoke(app, ["report", "--out", "x.html"])
    assert missing.exit_code == 2  # at least one run folder is required


def test_a_missing_bench_folder_fails_naming_it(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r", {"like": "binary"})
    args = ["report", str(run), "--bench", str(tmp_path / "nobench"), "--out", "x.html"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "nobench" in result.output
