"""Census-Income (KDD) records: typed columns, label normalisation, quarantine, notes."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from mtlrec.data.read_report import RAW_PREVIEW_CHARS, DataFormatError, ReadReport
from mtlrec.data.sources.base import FORMATS, SOURCES
from mtlrec.data.sources.census import (
    CENSUS_COLUMNS,
    CENSUS_NUMERIC,
    CENSUS_TASK_COLUMNS,
    CensusSource,
)

# the first record of census-income.test.gz
LINE = (
    "38, Private, 6, 36, 1st 2nd 3rd or 4th grade, 0, Not in universe, "
    "Married-civilian spouse present, Manufacturing-durable goods, "
    "Machine operators assmblrs & inspctrs, White, Mexican (Mexicano), Female, "
    "Not in universe, Not in universe, Full-time schedules, 0, 0, 0, "
    "Joint one under 65 & one 65+, Not in universe, Not in universe, Spouse of householder, "
    "Spouse of householder, 1032.38, ?, ?, ?, Not in universe under 1 year old, ?, 4, "
    "Not in universe, Mexico, Mexico, Mexico, Foreign born- Not a citizen of U S , 0, "
    "Not in universe, 2, 12, 95, - 50000."
)


def with_field(name: str, value: str, line: str = LINE) -> str:
    fields = line.split(", ")
    fields[CENSUS_COLUMNS.index(name)] = value
    return ", ".join(fields)


def write(path: Path, lines: list[str], compress: bool = True) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_registered_and_constants() -> None:
    assert SOURCES.get("census") is CensusSource
    assert "census" in FORMATS
    assert len(CENSUS_COLUMNS) == 42 and CENSUS_COLUMNS[-1] == "income_50k"
    assert CENSUS_TASK_COLUMNS == {"income": "income_50k", "never_married": "marital_stat"}


def test_parses_one_record_with_types(tmp_path: Path) -> None:
    path = write(tmp_path / "census-income.test.gz", [LINE, with_field("income_50k", "50000+.")])
    report = ReadReport()
    tables = CensusSource().load({"data": path}, report)

    assert tables.kind == "tabular"
    assert tables.interactions.height == 0 and tables.items.height == 0
    users = tables.users
    assert users.columns == ["user_id", *CENSUS_COLUMNS]
    for name in CENSUS_COLUMNS:
        expected = pl.Float64 if name in CENSUS_NUMERIC else pl.String
        assert users.schema[name] == expected, name
    row = users.row(0, named=True)
    assert row["user_id"] == "r1"
    assert row["age"] == 38.0 and row["instance_weight"] == 1032.38
    assert row["num_emp"] == 4.0 and row["weeks_worked"] == 12.0
    assert row["det_ind_code"] == "6" and row["year"] == "95" and row["vet_benefits"] == "2"
    assert row["class_worker"] == "Private"
    assert row["citizenship"] == "Foreign born- Not a citizen of U S"
    assert row["mig_chg_msa"] is None and row["mig_prev_sunbelt"] is None
    assert row["income_50k"] == "-50000"
    assert users["income_50k"].to_list() == ["-50000", "50000+"]
    assert users["user_id"].to_list() == ["r1", "r2"]
    tally = report.files[str(path)]
    assert tally.notes["missing value in mig_chg_msa"] == 2
    assert tally.notes["missing value in mig_prev_sunbelt"] == 2
    assert "exact duplicate row (kept)" not in tally.notes


def test_bad_records_are_quarantined_with_line_and_field(tmp_path: Path) -> None:
    lines = [
        LINE,  # 1 kept
        LINE.rsplit(", ", 1)[0],  # 2 41 fields
        with_field("age", "old"),  # 3
        with_field("capital_gains", "nan"),  # 4
        with_field("income_50k", "50000."),  # 5
        "",  # 6 blank: skipped
        LINE,  # 7 kept, an exact duplicate of line 1
        with_field("income_50k", "?"),  # 8
        with_field("age", "?"),  # 9 kept, missing age
    ]
    path = write(tmp_path / "census.data", lines, compress=False)
    report = ReadReport()
    frame = FORMATS.get("census")(path, report)

    tally = report.files[str(path)]
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (2, "(row)", "wrong field count (expected 42)"),
        (3, "age", "non-numeric value"),
        (4, "capital_gains", "non-numeric value"),
        (5, "income_50k", "unknown label"),
        (8, "income_50k", "unknown label"),
    ]
    assert tally.issues[1].raw == lines[2][:RAW_PREVIEW_CHARS]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (8, 3, 5)
    assert frame["user_id"].to_list() == ["r1", "r7", "r9"]
    assert frame["age"].to_list() == [38.0, 38.0, None]
    assert tally.notes["exact duplicate row (kept)"] == 1
    assert tally.notes["missing value in age"] == 1


def test_broken_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "census-income.test.gz"
    path.write_bytes(gzip.compress((LINE + "\n").encode())[:30])
    with pytest.raises(DataFormatError, match="census-income.test.gz.*gzip"):
        CensusSource().load({"data": path}, ReadReport())


def test_numbers_outside_their_declared_range_are_quarantined(tmp_path: Path) -> None:
    lines = [
        with_field("age", "200"),  # 1
        with_field("weeks_worked", "53"),  # 2
        with_field("capital_gains", "-1"),  # 3
        with_field("wage_per_hour", "1e400"),  # 4 infinite
        with_field("age", "0"),  # 5 kept: a newborn
    ]
    path = write(tmp_path / "census.data", lines, compress=False)
    report = ReadReport()
    frame = FORMATS.get("census")(path, report)
    assert [(i.line, i.field, i.reason) for i in report.files[str(path)].issues] == [
        (1, "age", "age out of range (0..120)"),
        (2, "weeks_worked", "weeks_worked out of range (0..52)"),
        (3, "capital_gains", "capital_gains out of range (>= 0)"),
        (4, "wage_per_hour", "non-numeric value"),
    ]
    assert frame["age"].to_list() == [0.0]


def test_undecodable_line_is_quarantined_not_the_file(tmp_path: Path) -> None:
    """Issue 14.2: one non-UTF-8 byte used to refuse the whole file."""
    path = tmp_path / "census.data"
    latin = with_field("class_worker", "Priv\xe9").encode("latin-1")
    path.write_bytes(b"\n".join([LINE.encode(), latin, LINE.encode()]) + b"\n")
    report = ReadReport()
    frame = FORMATS.get("census")(path, report)
    assert frame["user_id"].to_list() == ["r1", "r3"]
    tally = report.files[str(path)]
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (2, "<line>", "not valid utf-8 text")
    ]
    assert "Priv\\xe9" in tally.issues[0].raw
