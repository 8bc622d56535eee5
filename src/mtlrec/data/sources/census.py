"""Census-Income (KDD): one row per person, parsed into the users table (``kind="tabular"``).

The UCI files (``census-income.data.gz`` / ``census-income.test.gz``) have 42 comma-and-space
separated fields, no header, and every line ends with ``"."``. Each record becomes one users
row with ``user_id`` ``"r<line number>"`` and all 42 fields as extra columns. ``"?"`` is read
as null. Exact duplicate rows are legitimate (different people with equal answers): they are
kept and only counted as a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import polars as pl

from mtlrec.data.read_report import FileTally, ReadReport
from mtlrec.data.schema import CanonicalTables, ValueRange
from mtlrec.data.sources.base import FORMATS, SOURCES, Source, numbered_lines

CENSUS_COLUMNS: tuple[str, ...] = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin",
    "sex", "union_member", "unemp_reason", "full_or_part_emp", "capital_gains",
    "capital_losses", "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res",
    "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa", "mig_chg_reg",
    "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp", "fam_under_18",
    "country_father", "country_mother", "country_self", "citizenship", "own_or_self",
    "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)  # fmt: skip
"""The 42 fields of a record, in file order."""

CENSUS_NUMERIC: frozenset[str] = frozenset(
    {
        "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
        "instance_weight", "num_emp", "weeks_worked",
    }
)  # fmt: skip
"""Columns read as Float64; every other column (coded ones included) is a string."""

CENSUS_RANGES: dict[str, ValueRange] = {name: ValueRange(0.0, None) for name in CENSUS_NUMERIC} | {
    "age": ValueRange(0.0, 120.0),
    "weeks_worked": ValueRange(0.0, 52.0),
}
"""The declared range of every numeric column: ages 0..120, weeks worked 0..52 (in the
census year), money amounts, weights and counts >= 0. A value outside it quarantines
the row."""

CENSUS_LABELS: dict[str, str] = {"-50000": "-50000", "50000+": "50000+"}
"""Raw ``income_50k`` values (spaces and the final ``"."`` removed) -> normalised label."""

CENSUS_TASK_COLUMNS: dict[str, str] = {"income": "income_50k", "never_married": "marital_stat"}
"""The columns the census task labels are built from (by the label builders)."""

CENSUS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    **{c: pl.Float64() if c in CENSUS_NUMERIC else pl.String() for c in CENSUS_COLUMNS},
}
"""The users table of this source: ``user_id`` then the 42 fields."""

MISSING = "?"


class _BadField(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _parse_fields(fields: list[str]) -> tuple[dict[str, float | str | None], list[str]]:
    """Typed values of one record and the names of its missing (``"?"``) columns."""
    values: dict[str, float | str | None] = {}
    missing: list[str] = []
    for name, text in zip(CENSUS_COLUMNS, fields, strict=True):
        if text in (MISSING, ""):
            if name == "income_50k":
                raise _BadField(name, "unknown label")
            values[name] = None
            missing.append(name)
        elif name in CENSUS_NUMERIC:
            try:
                number = float(text)
            except ValueError:
                raise _BadField(name, "non-numeric value") from None
            if not math.isfinite(number):
                raise _BadField(name, "non-numeric value")
            if not CENSUS_RANGES[name].contains(number):
                raise _BadField(name, CENSUS_RANGES[name].reason(name))
            values[name] = number
        elif name == "income_50k":
            label = CENSUS_LABELS.get(text.removesuffix(".").replace(" ", ""))
            if label is None:
                raise _BadField(name, "unknown label")
            values[name] = label
        else:
            values[name] = text
    return values, missing


def read_census(path: Path, tally: FileTally) -> pl.DataFrame:
    """Parse one census-income file into a users frame with :data:`CENSUS_SCHEMA`.

    Quarantined: a line with bytes that are not UTF-8, a field count other than 42, a
    non-numeric numeric field, one outside its declared range (:data:`CENSUS_RANGES`) and
    an unknown ``income_50k`` label. Notes:
    ``"missing value in <column>"`` per ``"?"`` and the number of exact duplicate rows
    (kept).
    """
    columns: dict[str, list[float | str | None]] = {name: [] for name in CENSUS_SCHEMA}
    seen: set[tuple[str, ...]] = set()
    duplicates = 0
    for line, text in numbered_lines(path, tally=tally):
        fields = [value.strip() for value in text.split(",")]
        if len(fields) != len(CENSUS_COLUMNS):
            tally.quarantine(
                line, "(row)", f"wrong field count (expected {len(CENSUS_COLUMNS)})", text
            )
            continue
        try:
            values, missing = _parse_fields(fields)
        except _BadField as bad:
            tally.quarantine(line, bad.field, bad.reason, text)
            continue
        for name in missing:
            tally.note(f"missing value in {name}")
        row = tuple(fields)
        if row in seen:
            duplicates += 1
        seen.add(row)
        columns["user_id"].append(f"r{line}")
        for name, value in values.items():
            columns[name].append(value)
        tally.keep()
    if duplicates:
        tally.note("exact duplicate row (kept)", duplicates)
    return pl.DataFrame(columns, schema=CENSUS_SCHEMA)


@SOURCES.register("census")
class CensusSource(Source):
    """Census-Income (KDD): each record is one row of the users table (``kind="tabular"``)."""

    roles: ClassVar[tuple[str, ...]] = ("data",)

    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse the ``data`` file (``census-income.data.gz`` or ``.test.gz``)."""
        self.check_files(files)
        path = Path(files["data"])
        return CanonicalTables(users=read_census(path, report.tally(path)), kind="tabular")


@FORMATS.register("census")
def parse_census_file(path: Path, report: ReadReport) -> pl.DataFrame:
    """Parse one census-income file into its users frame."""
    return read_census(Path(path), report.tally(path))
