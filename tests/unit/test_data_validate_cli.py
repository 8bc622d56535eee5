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


def test_overflowing_and_out_of_range_values_are_quarantined_rows(tmp_path: Path) -> None:
    """Issue 14.1 and 14.3: a timestamp >= 2**63 crashed validate with a Polars TypeError;
    a rating of -1.0 and a timestamp of 2**63-1 were kept."""
    csv_path = tmp_path / "ratings.csv"
    csv_path.write_text(
        "user_id,item_id,value,timestamp\n"
        f"u1,i1,4,1400000000\nu2,i1,4,{2**63}\nu3,i1,-1.0,1400000000\nu4,i1,4,{2**63 - 1}\n",
        encoding="utf-8",
    )
    code, output = validate(csv_path, "csv")
    assert code == 1
    assert "line 3, field 'timestamp': timestamp out of range (1970-01-01..2100-01-01)" in output
    assert "line 4, field 'value': value out of range (>= 0)" in output
    assert "line 5, field 'timestamp': timestamp out of range" in output
    assert "parsed table: 1 rows" in output

    amazon = tmp_path / "reviews.json"
    amazon.write_text(
        '{"reviewerID": "u1", "asin": "a", "overall": 5.0, "unixReviewTime": 1400000000}\n'
        f'{{"reviewerID": "u2", "asin": "a", "overall": 5.0, "unixReviewTime": {2**63}}}\n',
        encoding="utf-8",
    )
    code, output = validate(amazon, "amazon-reviews")
    assert code == 1
    assert "line 2, field 'unixReviewTime': timestamp out of range" in output
    assert "parsed table: 1 rows" in output


def test_a_non_utf8_byte_is_one_quarantined_row_on_its_own_line(tmp_path: Path) -> None:
    """Issue 14.2: the CSV source named line 403 for a byte on line 501 and refused the
    file; the Amazon source refused the whole file."""
    rows = [b"user_id,item_id,value"] + [f"u{n},i{n},4".encode() for n in range(2, 601)]
    rows[500] = b"u\xff501,i501,4"  # line 501
    csv_path = tmp_path / "ratings.csv"
    csv_path.write_bytes(b"\n".join(rows) + b"\n")
    code, output = validate(csv_path, "csv")
    assert code == 1
    assert "line 501, field 'user_id': not valid utf-8 text" in output
    assert "u\\xff501,i501,4" in output and "parsed table: 598 rows" in output

    amazon = tmp_path / "reviews.json"
    good = b'{"reviewerID": "u1", "asin": "a", "overall": 5.0, "unixReviewTime": 1400000000}'
    amazon.write_bytes(good + b"\n" + good.replace(b"u1", b"u\xe92") + b"\n")
    code, output = validate(amazon, "amazon-reviews")
    assert code == 1
    assert "line 2, field '<line>': not valid utf-8 text" in output
    assert "parsed table: 1 rows" in output
