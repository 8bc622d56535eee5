"""Fuzzing every file parser, the sources and ``mtlrec data validate`` with damaged files.

Each example writes one file of a known format: its header (where it has one, never
damaged), then rows that are valid or carry corruptions (huge and negative integers, NaN
and infinities, timestamps beyond Int64, wrong types, lone surrogates, embedded
delimiters, quotes and line breaks, empty fields, duplicate rows, undecodable JSON), and
then damage to the bytes (an undecodable byte, a truncated last line, a byte order mark,
CRLF line ends, blank lines, gzip). The properties checked:

- parsing never raises: the header is intact, so no file-level error is due;
- rows read == kept + quarantined, where "read" is counted here from the file that was
  written (its non-blank lines, or for CSV the records generated), never taken from
  mtlrec's own tally;
- the parsed table has one row per kept row, and no kept value is outside its range;
- ``mtlrec data validate`` prints its report and exits 0, or 1 when a row was
  quarantined: never a traceback.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtlrec.cli.main import app
from mtlrec.data.read_report import ReadReport
from mtlrec.data.schema import EVENT_TYPES, STARS_RANGE, TIMESTAMP_RANGE, ValueRange
from mtlrec.data.sources.amazon import AmazonReviewsSource
from mtlrec.data.sources.base import FORMATS
from mtlrec.data.sources.census import CENSUS_COLUMNS, CENSUS_NUMERIC, CENSUS_RANGES
from mtlrec.data.sources.movielens import read_latest_links, read_latest_tags
from mtlrec.data.sources.tabular import TabularSource
from mtlrec.data.validate import validate_file

fuzz = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,  # one folder per test; each example overwrites
        HealthCheck.data_too_large,
    ],
)
runner = CliRunner()
BOM = codecs.BOM_UTF8

# ---------------------------------------------------------------------------- values

INT_EDGES = [2**63, 2**63 - 1, 2**64, -(2**63) - 1, -(2**63), 10**30, -1, 0]
NASTY_TEXT = st.sampled_from(
    [
        "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1", "-1.0", "0", "1.5",
        "9" * 40, "9" * 5000, *[str(n) for n in INT_EDGES], "12abc", "true", "null", "[1, 2]",
        "{}", '"', '""', 'say "hi"', "a,b", "a\tb", "a|b", "a::b", "a, b", "two\nlines",
        "cr\rlf", "caf\u00e9", "\u2028", "\x00", "[/]", "[bold]x", "\U0001f600",
        "\u202eevil", "  padded  ", "\x1b[31m", "\u00b2", "\u0661\u0662", "1_000",
        "2020-01-02T00:00:00", "9999-12-31", "0001-01-01",
    ]
) | st.text(max_size=6)  # fmt: skip
"""Text that a field of a delimited file may hold instead of a valid value."""

DROP = object()
"""A JSON 'value' that leaves the key out of the object."""

NASTY_JSON = NASTY_TEXT | st.sampled_from(
    [
        None, True, False, [], {}, [[1]], {"a": 1}, *INT_EDGES, 10**400, 1.5, math.nan,
        math.inf, -math.inf, 1e308, -0.0, "\ud800", "\udcff x", DROP,
    ]
)  # fmt: skip
"""What a JSON value may be instead of a valid one (wrong types, lone surrogates, ...)."""

JUNK_LINES = st.sampled_from(
    ["[" * 3000, "{", "not json", "[1, 2]", '"just a string"', "null", "{'asin': 'B'", "}{"]
)
"""Whole lines of a JSON-lines file that are no JSON object."""

IDS = st.sampled_from(["1", "2", "3", "17", "42"]) | st.integers(1, 10**6).map(str)
WHOLE_STARS = st.sampled_from(["1", "2", "3", "4", "5", "4.0"])
HALF_STARS = st.sampled_from(["0.5", "1.0", "3.5", "5.0", "4"])
STAMPS = st.integers(0, 4_102_444_800)
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=10)


def maybe(valid: st.SearchStrategy[Any], nasty: st.SearchStrategy[Any] = NASTY_TEXT) -> Any:
    """Mostly ``valid``, sometimes ``nasty``."""
    return st.one_of(valid, valid, valid, nasty)


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """A text format: how one row is generated and written, and how rows are counted.

    ``kind="lines"``: one row per non-blank line (counted from the written bytes);
    ``"csv"``: one row per record generated (written with the csv module, so fields with
    delimiters, quotes and line breaks are quoted); ``"json"``: JSON (or Python literal)
    objects one a line, counted as lines. ``header`` is written first and never damaged;
    for ``"json"`` it is a first row that names every column (a row, counted as one).
    """

    name: str
    file_name: str
    row: st.SearchStrategy[Any]
    kind: Literal["lines", "csv", "json"] = "lines"
    separator: str = "\t"
    header: str | None = None
    encoding: str = "utf-8"


def fields(*strategies: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """A row of text fields, each valid or not; sometimes one field short or long."""
    row = st.tuples(*(maybe(s) for s in strategies)).map(list)
    odd = st.tuples(row, st.sampled_from([-1, 1])).map(
        lambda pair: pair[0][:-1] if pair[1] < 0 else [*pair[0], "extra"]
    )
    return st.one_of(row, row, row, row, odd)


def first_field_kept(row: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """CSV rows whose first field is a plain id, so no generated record is blank."""
    return st.tuples(st.integers(1, 999).map(str), row).map(lambda pair: [pair[0], *pair[1][1:]])


def _census_default() -> list[str]:
    return [
        "38", "Private", "6", "36", "1st 2nd 3rd or 4th grade", "0", "Not in universe",
        "Married-civilian spouse present", "Manufacturing-durable goods",
        "Machine operators assmblrs & inspctrs", "White", "Mexican (Mexicano)", "Female",
        "Not in universe", "Not in universe", "Full-time schedules", "0", "0", "0",
        "Joint one under 65 & one 65+", "Not in universe", "Not in universe",
        "Spouse of householder", "Spouse of householder", "1032.38", "?", "?", "?",
        "Not in universe under 1 year old", "?", "4", "Not in universe", "Mexico", "Mexico",
        "Mexico", "Foreign born- Not a citizen of U S ", "0", "Not in universe", "2", "12",
        "95", "- 50000.",
    ]  # fmt: skip


def _census_field(name: str, default: str) -> st.SearchStrategy[str]:
    if name == "income_50k":
        return st.sampled_from(["- 50000.", "50000+.", "?"])
    if name in CENSUS_NUMERIC:
        return st.integers(0, 120 if name == "age" else 52).map(str) | st.just("?")
    return st.just(default)


CENSUS_ROW = fields(
    *(_census_field(n, d) for n, d in zip(CENSUS_COLUMNS, _census_default(), strict=True))
)
GENRE_FLAGS = [st.sampled_from(["0", "1"])] * 19
TITLES = st.sampled_from(["Toy Story (1995)", "Kolya (1996)", "Untitled", "Les Mis\u00e9rables"])
DATES = st.sampled_from(["01-Jan-1995", "1995", "", "24-Jan-1997"])
ISO_OR_UNIX = STAMPS.map(str) | STAMPS.map(
    lambda s: datetime.fromtimestamp(s, UTC).replace(tzinfo=None).isoformat()
)


def _review_row() -> st.SearchStrategy[Any]:
    def value(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return maybe(valid, NASTY_JSON)

    return st.fixed_dictionaries(
        {
            "reviewerID": value(IDS),
            "asin": value(IDS),
            "overall": value(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0])),
            "unixReviewTime": value(STAMPS),
            "reviewText": value(WORDS),
            "summary": value(WORDS),
            "reviewerName": value(WORDS),
        },
        optional={
            "helpful": value(st.lists(st.integers(0, 50), min_size=2, max_size=2)),
            "vote": value(st.integers(0, 10**4).map(lambda n: f"{n:,}")),
        },
    )


def _meta_row() -> st.SearchStrategy[Any]:
    def value(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return maybe(valid, NASTY_JSON)

    prices = st.floats(0, 1e4) | st.integers(0, 500).map(lambda n: f"${n}.99")
    return st.fixed_dictionaries(
        {"asin": value(IDS), "title": value(WORDS | st.just("<b>x</b> &amp; y"))},
        optional={
            "price": value(prices),
            "categories": value(st.lists(st.lists(WORDS, max_size=2), max_size=2)),
            "category": value(st.lists(WORDS, max_size=3)),
            "brand": value(WORDS),
            "description": value(WORDS | st.lists(WORDS, max_size=2)),
            "main_cat": value(WORDS),
        },
    )


def _events_row() -> st.SearchStrategy[Any]:
    def value(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return maybe(valid, NASTY_JSON)

    return st.fixed_dictionaries(
        {"user_id": value(IDS), "item_id": value(IDS)},
        optional={
            "timestamp": value(STAMPS | ISO_OR_UNIX),
            "event": value(st.sampled_from(EVENT_TYPES)),
            "value": value(st.floats(0, 5)),
        },
    )


EVENTS_FIELDS = (IDS, IDS, ISO_OR_UNIX, st.sampled_from(EVENT_TYPES), st.floats(0, 5).map(str))
EVENTS_HEADER = ["user_id", "item_id", "timestamp", "event", "value"]

LAYOUTS: list[Layout] = [
    Layout("amazon-reviews", "reviews_X_5.json", _review_row(), kind="json"),
    Layout("amazon-meta", "meta_X.json", _meta_row(), kind="json"),
    Layout(
        "jsonl",
        "events.jsonl",
        _events_row(),
        kind="json",
        header='{"user_id": "u", "item_id": "i", "timestamp": 0, "event": "view", "value": 1}',
    ),
    Layout("census", "census-income.test", CENSUS_ROW, separator=", "),
    Layout(
        "retailrocket-events",
        "view_ecommerce.dat",
        fields(IDS, IDS, st.just("1")),
        header="visitorid\titemid\tevent",
    ),
    Layout("movielens-100k-data", "u.data", fields(IDS, IDS, WHOLE_STARS, STAMPS.map(str))),
    Layout(
        "movielens-100k-item",
        "u.item",
        fields(IDS, TITLES, DATES, st.just(""), st.just("http://x"), *GENRE_FLAGS),
        separator="|",
        encoding="latin-1",
    ),
    Layout(
        "movielens-100k-user",
        "u.user",
        fields(IDS, st.integers(1, 90).map(str), st.sampled_from(["M", "F"]), WORDS, WORDS),
        separator="|",
    ),
    Layout(
        "movielens-1m-ratings",
        "ratings.dat",
        fields(IDS, IDS, WHOLE_STARS, STAMPS.map(str)),
        separator="::",
    ),
    Layout(
        "movielens-1m-movies",
        "movies.dat",
        fields(IDS, TITLES, st.sampled_from(["Comedy", "Action|Drama", "(no genres listed)"])),
        separator="::",
        encoding="latin-1",
    ),
    Layout(
        "movielens-1m-users",
        "users.dat",
        fields(
            IDS,
            st.sampled_from(["M", "F"]),
            st.sampled_from(["1", "18", "25", "56"]),
            st.integers(0, 20).map(str),
            WORDS,
        ),
        separator="::",
    ),
    Layout(
        "movielens-atomic-inter",
        "ml.inter",
        fields(IDS, IDS, WHOLE_STARS, STAMPS.map(str)),
        header="user_id:token\titem_id:token\trating:float\ttimestamp:float",
    ),
    Layout(
        "movielens-atomic-item",
        "ml.item",
        fields(IDS, TITLES, DATES, st.sampled_from(["Comedy", "Crime Film-Noir"])),
        header="item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
    ),
    Layout(
        "movielens-atomic-user",
        "ml.user",
        fields(IDS, st.integers(1, 90).map(str), st.sampled_from(["M", "F"]), WORDS, WORDS),
        header="user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
    ),
    Layout(
        "csv",
        "events.csv",
        first_field_kept(fields(*EVENTS_FIELDS)),
        kind="csv",
        separator=",",
        header=",".join(EVENTS_HEADER),
    ),
    Layout(
        "tsv",
        "events.tsv",
        first_field_kept(fields(*EVENTS_FIELDS)),
        kind="csv",
        header="\t".join(EVENTS_HEADER),
    ),
    Layout(
        "movielens-latest-ratings",
        "ratings.csv",
        first_field_kept(fields(IDS, IDS, HALF_STARS, STAMPS.map(str))),
        kind="csv",
        separator=",",
        header="userId,movieId,rating,timestamp",
    ),
    Layout(
        "movielens-latest-movies",
        "movies.csv",
        first_field_kept(fields(IDS, TITLES, st.sampled_from(["Comedy", "Action|Drama"]))),
        kind="csv",
        separator=",",
        header="movieId,title,genres",
    ),
    Layout(
        "movielens-latest-tags",
        "tags.csv",
        first_field_kept(fields(IDS, IDS, WORDS, STAMPS.map(str))),
        kind="csv",
        separator=",",
        header="userId,movieId,tag,timestamp",
    ),
    Layout(
        "movielens-latest-links",
        "links.csv",
        first_field_kept(fields(IDS, st.integers(0, 10**7).map(str), IDS)),
        kind="csv",
        separator=",",
        header="movieId,imdbId,tmdbId",
    ),
]

EXTRA_PARSERS: dict[str, Callable[[Path, ReadReport], pl.DataFrame]] = {
    "movielens-latest-tags": read_latest_tags,
    "movielens-latest-links": read_latest_links,
}
"""Parsers of a source that ``data validate`` does not list (latest-small's extra files)."""


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Damage:
    """What happens to the bytes of a file after its rows are written."""

    duplicates: list[int]
    bad_bytes: list[tuple[int, int, bytes]]
    blanks: list[tuple[int, bytes]]
    truncate: int | None
    bom: bool
    crlf: bool
    compress: bool


DAMAGE = st.builds(
    Damage,
    duplicates=st.lists(st.integers(0, 10**6), max_size=2),
    bad_bytes=st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.sampled_from([b"\xff", b"\xc3", b"\xe9", b"\x80", b"\xed\xa0\x80"]),
        ),
        max_size=2,
    ),
    blanks=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from([b"", b"  "])), max_size=2),
    truncate=st.none() | st.integers(1, 10**6),
    bom=st.booleans(),
    crlf=st.booleans(),
    compress=st.booleans(),
)


def encode_row(layout: Layout, row: Any, literal: bool) -> bytes:
    """One row as the bytes of its line (CSV: of its record, line breaks inside quotes)."""
    if layout.kind == "json":
        if isinstance(row, str):  # a junk line
            return row.encode()
        clean = {k: v for k, v in row.items() if v is not DROP}
        text = repr(clean) if literal else json.dumps(clean, ensure_ascii=False)
        return text.encode("utf-8", errors="surrogatepass")  # a lone surrogate: bad bytes
    if layout.kind == "csv":
        buffer = io.StringIO()  # the default line end, so fields with \r or \n get quoted
        csv.writer(buffer, delimiter=layout.separator).writerow(row)
        return buffer.getvalue().removesuffix("\r\n").encode(layout.encoding, errors="replace")
    return layout.separator.join(row).encode(layout.encoding, errors="replace")


def count_lines(data: bytes, encoding: str) -> int:
    """Non-blank lines of ``data`` (a line with undecodable bytes is never blank)."""
    count = 0
    for number, raw in enumerate(data.split(b"\n")):
        if number == 0 and codecs.lookup(encoding).name == "utf-8" and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            count += 1
            continue
        count += bool(text.strip())
    return count


def write_file(layout: Layout, rows: list[bytes], damage: Damage, path: Path) -> tuple[Path, int]:
    """Write ``rows`` with ``damage``; returns the path and the rows a parser must read."""
    rows = list(rows)
    for at in damage.duplicates:
        if rows:
            rows.insert(at % (len(rows) + 1), rows[at % len(rows)])
    for at, position, byte in damage.bad_bytes:
        if rows:
            row = rows[at % len(rows)]
            cut = position % (len(row) + 1)
            # never beside a quote (which would stop quoting a line break) nor after a \r
            while cut and (row[cut - 1 : cut] in b'\r"' or row[cut : cut + 1] == b'"'):
                cut -= 1
            rows[at % len(rows)] = row[:cut] + byte + row[cut:]
    records = len(rows)  # before blank lines: they are no rows
    is_row = [True] * len(rows)
    for at, blank in damage.blanks:
        spot = at % (len(rows) + 1)
        rows.insert(spot, blank)
        is_row.insert(spot, False)
    end = b"\r\n" if damage.crlf else b"\n"
    lines = ([layout.header.encode(layout.encoding)] if layout.header is not None else []) + rows
    data = end.join(lines) + end if lines else b""
    truncatable = bool(rows) and is_row[-1] and rows[-1][:1].isalnum()
    if damage.truncate is not None and (layout.kind != "csv" or truncatable):
        last = lines[-1] if lines and (layout.header is None or rows) else b""
        if last:
            keep = 1 + damage.truncate % len(last)
            data = data[: len(data) - len(end) - len(last)] + last[:keep]
    if damage.bom:
        data = BOM + data
    expected = records if layout.kind == "csv" else count_lines(data, layout.encoding)
    if layout.kind == "lines" and layout.header is not None:
        expected -= 1
    path.write_bytes(gzip.compress(data) if damage.compress else data)
    return path, expected


# --------------------------------------------------------------------------- checking

KEPT_RANGES: dict[str, ValueRange] = {
    "timestamp": TIMESTAMP_RANGE,
    "stars": STARS_RANGE,
    "value": ValueRange(0.0, None),
    "price": ValueRange(0.0, None),
    "year": ValueRange(1800, 2100),
    **CENSUS_RANGES,
}
"""The range every kept value of a column with this name lies in, whatever the parser."""


def check_table(frame: pl.DataFrame, kept: int) -> None:
    """One table row per kept row, every kept value in range, every string storable."""
    assert frame.height == kept
    for column, bounds in KEPT_RANGES.items():
        if column in frame.columns and frame[column].dtype.is_numeric():
            outside = [v for v in frame[column].drop_nulls().to_list() if not bounds.contains(v)]
            assert not outside, f"{column}: kept values out of range {outside}"
    frame.write_parquet(io.BytesIO())  # what prepare does with it


def check_file(name: str, path: Path, expected: int) -> None:
    """Parse ``path`` as format ``name`` and check counts; then run ``data validate``."""
    if name in EXTRA_PARSERS:
        report = ReadReport()
        frame = EXTRA_PARSERS[name](path, report)
    else:
        report, frame = validate_file(path, name)
    tally = report.files[str(path)]
    assert tally.rows_read == expected, (tally.rows_read, expected, tally.issues)
    assert tally.rows_read == tally.rows_kept + tally.rows_quarantined
    check_table(frame, tally.rows_kept)
    if name in EXTRA_PARSERS:
        return
    result = runner.invoke(app, ["data", "validate", str(path), "--format", name])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == (1 if tally.rows_quarantined else 0), result.output
    assert f"parsed table: {tally.rows_kept:,} rows" in result.output


@st.composite
def layout_file(draw: st.DrawFn, layout: Layout) -> tuple[list[bytes], Damage]:
    """The encoded rows of one file of ``layout`` and the damage to do to its bytes."""
    rows: list[Any] = draw(st.lists(layout.row, max_size=12))
    if layout.kind == "json":
        junk = draw(st.lists(st.tuples(st.integers(0, 12), JUNK_LINES), max_size=2))
        for at, line in junk:
            rows.insert(at % (len(rows) + 1), line)
    literal = layout.name == "amazon-meta" and draw(st.booleans())  # 2014: Python literals
    return [encode_row(layout, row, literal) for row in rows], draw(DAMAGE)


# ----------------------------------------------------------------------------- tests


def test_every_parser_is_fuzzed() -> None:
    assert set(FORMATS.names()) <= {layout.name for layout in LAYOUTS} | {"parquet"}
    assert set(EXTRA_PARSERS) <= {layout.name for layout in LAYOUTS}


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.name for layout in LAYOUTS])
@fuzz
@given(data=st.data())
def test_damaged_text_files_are_read_row_by_row(
    tmp_path: Path, layout: Layout, data: st.DataObject
) -> None:
    rows, damage = data.draw(layout_file(layout))
    path, expected = write_file(layout, rows, damage, tmp_path / layout.file_name)
    check_file(layout.name, path, expected)


PARQUET_TYPES: dict[str, list[pl.DataType]] = {
    "user_id": [pl.String(), pl.Int64()],
    "item_id": [pl.String(), pl.UInt64()],
    "timestamp": [pl.Int64(), pl.UInt64(), pl.Float64(), pl.String(), pl.Datetime("us")],
    "event": [pl.String()],
    "value": [pl.Float64(), pl.String(), pl.Int64(), pl.Boolean()],
}


def _parquet_values(column: str, dtype: pl.DataType) -> st.SearchStrategy[Any]:
    valid: dict[str, st.SearchStrategy[Any]] = {
        "user_id": IDS, "item_id": IDS, "timestamp": ISO_OR_UNIX,
        "event": st.sampled_from(EVENT_TYPES), "value": st.floats(0, 5).map(str),
    }  # fmt: skip
    if dtype == pl.String():
        values = maybe(valid[column])
    elif dtype == pl.Int64():
        values = maybe(STAMPS, st.integers(-(2**63), 2**63 - 1) | st.sampled_from(INT_EDGES[1:]))
        values = values.filter(lambda n: -(2**63) <= n < 2**63)
    elif dtype == pl.UInt64():
        values = maybe(STAMPS, st.integers(0, 2**64 - 1))
    elif dtype == pl.Float64():
        values = maybe(st.floats(0, 5), st.floats())
    elif dtype == pl.Boolean():
        values = st.booleans()
    else:
        values = st.datetimes()
    return st.none() | values


@fuzz
@given(data=st.data())
def test_parquet_files_with_any_column_types_are_read_row_by_row(
    tmp_path: Path, data: st.DataObject
) -> None:
    columns = ["user_id", "item_id"] + data.draw(
        st.lists(st.sampled_from(["timestamp", "event", "value"]), unique=True)
    )
    height = data.draw(st.integers(0, 12))
    schema = {c: data.draw(st.sampled_from(PARQUET_TYPES[c])) for c in columns}
    frame = pl.DataFrame(
        {
            c: data.draw(st.lists(_parquet_values(c, t), min_size=height, max_size=height))
            for c, t in schema.items()
        },
        schema=schema,
    )
    path = tmp_path / "events.parquet"
    frame.write_parquet(path)
    check_file("parquet", path, height)


TABULAR_LAYOUTS: dict[str, Layout] = {
    "interactions": next(layout for layout in LAYOUTS if layout.name == "csv"),
    "items": Layout(
        "tabular-items",
        "items.csv",
        first_field_kept(
            fields(
                IDS,
                WORDS,
                st.floats(0, 1e4).map(str),
                st.integers(1800, 2100).map(str),
                st.just("a|b"),
            )
        ),
        kind="csv",
        separator=",",
        header="item_id,title,price,year,categories",
    ),
    "users": Layout(
        "tabular-users", "users.tsv", first_field_kept(fields(IDS)), kind="csv", header="user_id"
    ),
    "reviews": Layout(
        "tabular-reviews",
        "reviews.csv",
        first_field_kept(fields(IDS, IDS, WHOLE_STARS, WORDS, STAMPS.map(str), IDS, st.just("10"))),
        kind="csv",
        separator=",",
        header="user_id,item_id,stars,text,timestamp,helpful_up,helpful_total",
    ),
}


@settings(fuzz, max_examples=10)
@given(data=st.data())
def test_tabular_source_with_every_role(tmp_path: Path, data: st.DataObject) -> None:
    files: dict[str, Path] = {}
    expected: dict[str, int] = {}
    for role, layout in TABULAR_LAYOUTS.items():
        if role == "interactions" or data.draw(st.booleans()):
            rows, damage = data.draw(layout_file(layout))
            files[role], expected[role] = write_file(
                layout, rows, damage, tmp_path / layout.file_name
            )
    report = ReadReport()
    tables = TabularSource().load(files, report)
    for role, path in files.items():
        tally = report.files[str(path)]
        assert tally.rows_read == expected[role] == tally.rows_kept + tally.rows_quarantined
    for frame in tables.tables().values():
        check_table(frame, frame.height)


@settings(fuzz, max_examples=10)
@given(data=st.data())
def test_amazon_source_with_reviews_and_meta(tmp_path: Path, data: st.DataObject) -> None:
    files: dict[str, Path] = {}
    expected: dict[str, int] = {}
    for role, name in (("reviews", "amazon-reviews"), ("meta", "amazon-meta")):
        layout = next(layout for layout in LAYOUTS if layout.name == name)
        rows, damage = data.draw(layout_file(layout))
        files[role], expected[role] = write_file(layout, rows, damage, tmp_path / layout.file_name)
    report = ReadReport()
    tables = AmazonReviewsSource().load(files, report)
    for role, path in files.items():
        tally = report.files[str(path)]
        assert tally.rows_read == expected[role] == tally.rows_kept + tally.rows_quarantined
    assert tables.reviews.height == report.files[str(files["reviews"])].rows_kept
    for frame in tables.tables().values():
        check_table(frame, frame.height)
