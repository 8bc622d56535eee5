"""``mtlrec data validate`` as a user runs it: one clear report, never a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mtlrec.cli.main import app

runner = CliRunner()


def validate(path: Path, file_format: str) -> tuple[int, str]:
    """Exit code and output of ``mtlrec data validate PATH --format FORMAT``."""
    result = runner.invoke(app, ["data", "validate", str(path), "--format", file_format])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_file_content_is_never_read_as_markup_or_terminal_codes(tmp_path: Path) -> None:
    """A raw row holding '[/]' used to crash the report with a Rich MarkupError."""
    path = tmp_path / "[x].csv"
    path.write_text("user_id,item_id,value\n[/],i1,[bold]\nu2,\x1b[31mi2,x\n", encoding="utf-8")
    code, output = validate(path, "csv")
    assert code == 1
    assert "[x].csv" in output
    assert "line 2, field 'value': non-numeric value" in output
    assert "[/],i1,[bold]" in output
    assert "line 3, field 'value': non-numeric value" in output
    assert "\\x1b[31mi2" in output and "\x1b" not in output
