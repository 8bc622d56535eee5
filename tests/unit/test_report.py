from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.schema import (
    COLUMN_RANGES,
    STARS_RANGE,
    TIMESTAMP_RANGE,
    CanonicalTables,
    ValueRange,
    conform,
    range_problem,
    storage_range,
)
from mtlrec.data.sources.base import numbered_lines


def test_tally_keeps_read_equal_to_kept_plus_quarantined(tmp_path: Path) -> None:
    report = ReadReport()
    tally = report.tally("f.json")
    tally.keep()
    tally.keep()
    tally.quarantine(3, "overall", "stars out of range", "{...}")
    tally.unkeep(1, "asin", "duplicate review", "{a}")
    tally.note("empty review text kept")
    tally.check()
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (3, 1, 2)
    assert report.summary()["files"][0]["quarantine_reasons"] == {
        "duplicate review": 1,
        "stars out of range": 1,
    }
    out = tmp_path / "q.jsonl"
    assert report.write_quarantine(out) == 2
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {
        "file": "f.json",
        "line": 3,
        "field": "overall",
        "reason": "stars out of range",
        "raw": "{...}",
    }


def test_broken_bookkeeping_is_caught() -> None:
    tally = ReadReport().tally("f")
    tally.rows_read += 1
    with pytest.raises(AssertionError, match="read 1 != kept 0"):
        tally.check()


def test_format_error_names_file_field_and_line() -> None:
    error = DataFormatError("data/u.item", "title", "missing column", line=4)
    assert str(error) == "data/u.item, line 4: field 'title': missing column"


def test_numbered_lines_reads_gzip_skips_blanks_and_reports_bad_encoding(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("one\n\ntwo\r\n")
    assert list(numbered_lines(path)) == [(1, "one"), (3, "two")]
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    with pytest.raises(DataFormatError, match="line 2.*not valid utf-8"):
        list(numbered_lines(bad))
    tally = ReadReport().tally(bad)
    assert list(numbered_lines(bad, tally=tally)) == [(1, "ok")]
    assert [(i.line, i.field, i.reason, i.raw) for i in tally.issues] == [
        (2, "<line>", "not valid utf-8 text", "\\xff\\xfe broken")
    ]
    header = tmp_path / "h.txt"
    header.write_bytes(b"\n\xef\xbb\xbfcol\xff\nrow\n")  # a bad header is never quarantined
    with pytest.raises(DataFormatError, match="line 2.*not valid utf-8"):
        list(numbered_lines(header, tally=tally, header=True))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfone\n")
    assert list(numbered_lines(bom)) == [(1, "one")]


def test_conform_adds_canonical_columns_and_keeps_extras() -> None:
    frame = conform(pl.DataFrame({"item_id": ["a"], "main_cat": ["x"]}), "items")
    assert frame.columns[:3] == ["item_id", "title", "description"]
    assert frame.columns[-1] == "main_cat"
    assert frame["price"].dtype == pl.Float64
    with pytest.raises(ValueError, match="unknown event types"):
        CanonicalTables(interactions=pl.DataFrame({"event": ["click"]}))


def test_value_ranges_are_declared_and_described() -> None:
    assert COLUMN_RANGES["reviews"]["stars"] == STARS_RANGE
    assert COLUMN_RANGES["interactions"]["timestamp"] == TIMESTAMP_RANGE
    assert STARS_RANGE.reason("stars") == "stars out of range (1..5)"
    assert TIMESTAMP_RANGE.describe() == "1970-01-01..2100-01-01"
    assert ValueRange(0.5, None).describe() == ">= 0.5" and ValueRange().describe().startswith(
        "any"
    )
    assert TIMESTAMP_RANGE.contains(4_102_444_800) and not TIMESTAMP_RANGE.contains(2**63)
    assert not STARS_RANGE.contains(float("nan")) and not ValueRange().contains(float("inf"))
    assert not ValueRange(None, 1.0).contains(10**400)  # an int beyond the float range
    assert range_problem("items", "price", -1.0) == "price out of range (>= 0)"
    assert range_problem("items", "title", -1.0) is None
    narrowed = ValueRange(None, 10).intersect(storage_range("items", "year") or ValueRange())
    assert narrowed == ValueRange(-(2**31), 10)
    with pytest.raises(ValueError, match="empty range"):
        ValueRange(2, 1)
