"""The generic tabular source: mappings, every format, quarantine reasons, clear errors."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.sources.base import FORMATS, SOURCES
from mtlrec.data.sources.tabular import (
    TableMapping,
    TabularSource,
    infer_format,
    int_value,
    load_mapping_yaml,
    timestamp_value,
)

RATINGS = {"user_id": "uid", "item_id": "iid", "value": "stars", "timestamp": "ts"}


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def issues(report: ReadReport, path: Path) -> list[tuple[int, str, str]]:
    return [(i.line, i.field, i.reason) for i in report.files[str(path)].issues]


def test_registered() -> None:
    assert SOURCES.get("tabular") is TabularSource
    for name in ("csv", "tsv", "jsonl", "parquet"):
        assert name in FORMATS


def test_csv_interactions_with_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "uid,iid,stars,ts,city\nu1,i1,4,100,Oslo\nu2,i1,3.5,200,\n")
    source = TabularSource(
        interactions=TableMapping(columns=RATINGS, event="rating", extra_columns=["city"])
    )
    report = ReadReport()
    tables = source.load({"interactions": path}, report)
    assert tables.interactions.rows() == [
        (0, "u1", "i1", 100, "rating", 4.0, "Oslo"),
        (1, "u2", "i1", 200, "rating", 3.5, None),
    ]
    assert tables.interactions.columns[-1] == "city"
    assert tables.users["user_id"].to_list() == ["u1", "u2"]
    assert tables.items["item_id"].to_list() == ["i1"]
    assert report.rows_read == report.rows_kept == 2 and not report.notes


def test_csv_bad_rows_report_physical_lines(tmp_path: Path) -> None:
    text = (
        "uid,iid,stars,ts\n"  # 1
        "u1,i1,4,2020-01-02\n"  # 2 kept
        "u2,i2,five,2020-01-02\n"  # 3 non-numeric value
        ",i3,2,2020-01-02\n"  # 4 missing user_id
        "u1,i1,3,2020-01-02\n"  # 5 duplicate (same user, item, event, time)
        "u4,i4,1,02/01/2020\n"  # 6 bad timestamp
        "\n"  # 7 blank
        "u5,i5\n"  # 8 wrong field count
        '"u6","multi\nline",2,2021-03-04\n'  # 9-10 kept, item id spans two lines
        "u7,i7,,2020-01-02\n"  # 11 missing value
        "u1,i1,3,2020-01-03\n"  # 12 kept: another time
    )
    path = write(tmp_path / "ratings.csv", text)
    mapping = TableMapping(columns=RATINGS, event="rating", timestamp_format="%Y-%m-%d")
    report = ReadReport()
    tables = TabularSource(interactions=mapping).load({"interactions": path}, report)

    assert sorted(issues(report, path)) == [
        (3, "stars", "non-numeric value"),
        (4, "uid", "missing user_id"),
        (5, "iid", "duplicate event"),
        (6, "ts", "bad timestamp"),
        (8, "(row)", "wrong field count (expected 4)"),
        (11, "stars", "missing value"),
    ]
    tally = report.files[str(path)]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (9, 3, 6)
    assert tables.interactions.select("user_id", "item_id", "timestamp", "value").rows() == [
        ("u1", "i1", unix("2020-01-02"), 4.0),
        ("u6", "multi\nline", unix("2021-03-04"), 2.0),
        ("u1", "i1", unix("2020-01-03"), 3.0),
    ]
    assert tables.interactions["interaction_id"].to_list() == [0, 1, 2]


OUT_OF_TIME = "timestamp out of range (1970-01-01..2100-01-01)"


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_timestamps_beyond_int64_are_quarantined_not_a_crash(
    tmp_path: Path, file_format: str
) -> None:
    """Issue 14.1: one row at 2**63 used to crash the whole file (Polars TypeError)."""
    stamps: list[object] = [
        1600000000,  # 2 kept
        2**63,  # 3 beyond Int64
        2**63 - 1,  # 4 Int64 max, read exactly (a float would round it up to 2**63)
        "99999999999999999999999",  # 5
        -(2**63) - 1,  # 6 below Int64
        "1e300",  # 7 a float far beyond Int64
        1600000000000,  # 8 milliseconds read as seconds
        "9999-12-31T00:00:00",  # 9 an ISO date after 2100
    ]
    if file_format == "csv":
        lines = ["user_id,item_id,timestamp"] + [f"u{n},i,{ts}" for n, ts in enumerate(stamps)]
    else:
        lines = [json.dumps({"user_id": f"u{n}", "item_id": "i"}) for n in range(len(stamps))]
        lines = [
            line[:-1] + f', "timestamp": {json.dumps(ts)}}}'
            for line, ts in zip(lines, stamps, strict=True)
        ]
        lines.insert(0, "")  # a blank first line keeps the CSV's line numbers
    path = write(tmp_path / f"events.{file_format}", "\n".join(lines) + "\n")
    report = ReadReport()
    frame = FORMATS.get(file_format)(path, report)
    assert issues(report, path) == [(line, "timestamp", OUT_OF_TIME) for line in range(3, 10)]
    assert frame["timestamp"].to_list() == [1600000000]
    tally = report.files[str(path)]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (8, 1, 7)


def test_declared_ranges_quarantine_out_of_range_values(tmp_path: Path) -> None:
    """Issue 14.3: a rating of -1.0 used to be kept."""
    interactions = write(
        tmp_path / "r.csv", "uid,iid,stars\nu1,i1,4\nu2,i1,-1.0\nu3,i1,0\nu4,i1,1e400\n"
    )
    items = write(
        tmp_path / "items.csv",
        "id,price,year\ni1,3.5,1999\ni2,-0.01,1999\ni3,,99999\ni4,0,\n",
    )
    reviews = write(
        tmp_path / "reviews.csv",
        "u,i,r,up,n\nu1,i1,5,0,0\nu2,i1,6,,\nu3,i1,0.5,,\nu4,i1,3,-2,1\n"
        "u5,i1,3,99999999999999999999,\nu6,i1,3,1.5,\n",
    )
    source = TabularSource(
        interactions={
            "columns": {"user_id": "uid", "item_id": "iid", "value": "stars"},
            "event": "rating",
        },
        items={"columns": {"item_id": "id", "price": "price", "year": "year"}},
        reviews={
            "columns": {
                "user_id": "u",
                "item_id": "i",
                "stars": "r",
                "helpful_up": "up",
                "helpful_total": "n",
            }
        },  # fmt: skip
    )
    report = ReadReport()
    files = {"interactions": interactions, "items": items, "reviews": reviews}
    tables = source.load(files, report)
    assert issues(report, interactions) == [
        (3, "stars", "value out of range (>= 0)"),
        (5, "stars", "non-numeric value"),
    ]
    assert issues(report, items) == [
        (3, "price", "price out of range (>= 0)"),
        (4, "year", "year out of range (1800..2100)"),
    ]
    assert issues(report, reviews) == [
        (3, "r", "stars out of range (1..5)"),
        (4, "r", "stars out of range (1..5)"),
        (5, "up", "helpful_up out of range (0..9223372036854775807)"),
        (6, "up", "integer out of range"),
        (7, "up", "non-integer value"),
    ]
    assert tables.items.filter(pl.col("item_id").is_in(["i1", "i4"])).height == 2
    assert tables.reviews["stars"].to_list() == [5.0]
    assert tables.interactions.filter(pl.col("event") == "rating")["value"].to_list() == [4.0, 0.0]


def test_mapping_ranges_replace_the_declared_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv", "uid,iid,stars,ts,yr\nu1,i1,7,-86400,1\nu2,i1,11,5,1\nu3,i1,0,5,1\n"
    )
    mapping = {
        "columns": {"user_id": "uid", "item_id": "iid", "value": "stars", "timestamp": "ts"},
        "event": "rating",
        "ranges": {"value": [1, 10], "timestamp": [None, None]},
    }
    report = ReadReport()
    tables = TabularSource(interactions=mapping).load({"interactions": path}, report)
    assert tables.interactions.select("timestamp", "value").rows() == [(-86400, 7.0)]
    assert issues(report, path) == [
        (3, "stars", "value out of range (1..10)"),
        (4, "stars", "value out of range (1..10)"),
    ]
    items = write(tmp_path / "items.csv", f"id,yr\na,{2**40}\nb,1500\n")
    open_years = {"columns": {"item_id": "id", "year": "yr"}, "ranges": {"year": [None, None]}}
    report = ReadReport()
    tables = TabularSource(items=open_years).load(
        {"interactions": write(tmp_path / "i.csv", "user_id,item_id\nu,b\n"), "items": items},
        report,
    )  # an open range still stops at what Int32 holds
    assert issues(report, items) == [(2, "yr", "year out of range (-2147483648..2147483647)")]
    assert tables.items.select("item_id", "year").rows() == [("b", 1500)]


def test_mapping_ranges_are_checked(tmp_path: Path) -> None:
    columns = {"user_id": "u", "item_id": "i"}
    with pytest.raises(DataFormatError, match=r"interactions.ranges.title.*numeric"):
        TabularSource(
            interactions={"columns": columns, "event": "view", "ranges": {"title": [0, 1]}}
        )
    with pytest.raises(DataFormatError, match=r"interactions.ranges.value.*empty range"):
        TabularSource(
            interactions={"columns": columns, "event": "view", "ranges": {"value": [2, 1]}}
        )


def test_integers_are_read_exactly() -> None:
    assert int_value("9223372036854775807") == 2**63 - 1
    assert int_value(" -12 ") == -12 and int_value("3.0") == 3
    assert timestamp_value("9223372036854775807", None) == 2**63 - 1
    for bad in ("9223372036854775808", 2**63, -(2**63) - 1, "1e19"):
        with pytest.raises(ValueError, match="integer out of range"):
            int_value(bad)


def test_tsv_gz_with_event_column_and_value_translation(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv.gz"
    rows = "user\titem\taction\twhen\nA\tX\t1\t1600000000123\nA\tY\t3\t1600000001000\nB\tX\t9\t5\n"
    path.write_bytes(gzip.compress(rows.encode()))
    mapping = {
        "columns": {"user_id": "user", "item_id": "item", "event": "action", "timestamp": "when"},
        "event_values": {"1": "view", "3": "purchase"},
        "timestamp_format": "unix_ms",
    }
    report = ReadReport()
    tables = TabularSource(interactions=mapping).load({"interactions": path}, report)
    assert tables.interactions.select(
        "user_id", "item_id", "timestamp", "event", "value"
    ).rows() == [
        ("A", "X", 1600000000, "view", 1.0),
        ("A", "Y", 1600000001, "purchase", 1.0),
    ]
    assert issues(report, path) == [(4, "action", "unknown event type")]


def test_jsonl_items_users_and_reviews(tmp_path: Path) -> None:
    interactions = write(tmp_path / "i.csv", "uid,iid,kind\nu1,a,view\nu2,z,like\nu2,b,cart\n")
    items = write(
        tmp_path / "items.jsonl",
        "\n".join(
            [
                json.dumps({"id": "a", "name": " Alpha ", "cats": "x| y", "price": "3.5"}),
                json.dumps({"id": "b", "cats": ["p", "q"], "price": None, "year": 1999.0}),
                "not json",
                "[1, 2]",
                json.dumps({"id": "a", "name": "again"}),
                json.dumps({"id": "c", "price": "cheap"}),
                json.dumps({"id": "d", "year": "1999.5"}),
            ]
        )
        + "\n",
    )
    users = write(tmp_path / "users.tsv", "uid\tage\nu1\t31\nu9\t\n")
    reviews = write(
        tmp_path / "reviews.jsonl",
        json.dumps({"u": "u1", "i": "a", "r": 5, "t": "great", "up": 2, "n": 3, "ts": 10})
        + "\n"
        + json.dumps({"u": "u3", "i": "b", "r": "4", "t": "  ", "up": None, "n": 1, "ts": 11})
        + "\n",
    )
    source = TabularSource(
        interactions={"columns": {"user_id": "uid", "item_id": "iid", "event": "kind"}},
        items={
            "columns": {
                "item_id": "id",
                "title": "name",
                "categories": "cats",
                "price": "price",
                "year": "year",
            }
        },
        users={"columns": {"user_id": "uid"}, "extra_columns": ["age"]},
        reviews={
            "columns": {
                "user_id": "u",
                "item_id": "i",
                "stars": "r",
                "text": "t",
                "helpful_up": "up",
                "helpful_total": "n",
                "timestamp": "ts",
            }
        },
    )
    report = ReadReport()
    files = {"interactions": interactions, "items": items, "users": users, "reviews": reviews}
    tables = source.load(files, report)

    assert issues(report, interactions) == [(3, "kind", "unknown event type")]
    assert issues(report, items) == [
        (3, "(row)", "invalid JSON"),
        (4, "(row)", "not a JSON object"),
        (6, "price", "non-numeric value"),
        (7, "year", "non-integer value"),
        (5, "id", "duplicate item_id"),
    ]
    assert tables.items.select("item_id", "title", "categories", "price", "year").rows() == [
        ("a", "Alpha", ["x", "y"], 3.5, None),
        ("b", None, ["p", "q"], None, 1999),
    ]
    assert tables.users.rows() == [("u1", "31"), ("u9", None), ("u2", None), ("u3", None)]
    assert tables.users.columns == ["user_id", "age"]
    assert tables.interactions.select("interaction_id", "user_id", "event", "value").rows() == [
        (0, "u1", "view", 1.0),
        (1, "u2", "cart", 1.0),
        (2, "u1", "review", 5.0),
        (3, "u3", "review", 4.0),
    ]
    reviews_rows = tables.reviews.select(
        "interaction_id", "user_id", "stars", "text", "helpful_up", "helpful_total", "has_text"
    ).rows()
    assert reviews_rows == [
        (2, "u1", 5.0, "great", 2, 3, True),
        (3, "u3", 4.0, None, None, 1, False),
    ]
    assert report.files[str(reviews)].notes == {"empty review text": 1}
    assert report.notes == {"users in interactions but not in the users file": 2}
    for tally in report.files.values():
        assert tally.rows_read == tally.rows_kept + tally.rows_quarantined


def test_parquet_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    frame = pl.DataFrame(
        {
            "user_id": ["u1", None, "u3"],
            "item_id": [1, 2, 3],
            "value": [4.0, 5.0, None],
            "timestamp": [datetime(2020, 1, 2), datetime(2020, 1, 3), None],
        },
        schema={
            "user_id": pl.String(),
            "item_id": pl.Int64(),
            "value": pl.Float64(),
            "timestamp": pl.Datetime("us"),
        },
    )
    frame.write_parquet(path)
    report = ReadReport()
    result = FORMATS.get("parquet")(path, report)
    assert result.select("user_id", "item_id", "timestamp", "event", "value").rows() == [
        ("u1", "1", unix("2020-01-02"), "rating", 4.0)
    ]
    assert issues(report, path) == [
        (2, "user_id", "missing user_id"),
        (3, "value", "missing value"),
    ]


def test_format_parsers_use_canonical_names(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "user_id\titem_id\tevent\nu\ti\tcart\nu\ti\tsale\n")
    report = ReadReport()
    frame = FORMATS.get("tsv")(path, report)
    assert frame.select("user_id", "item_id", "event", "value").rows() == [("u", "i", "cart", 1.0)]
    assert issues(report, path) == [(3, "event", "unknown event type")]

    jsonl = write(tmp_path / "x.jsonl", '{"user_id": 1, "item_id": 2, "timestamp": "2020-01-02"}\n')
    frame = FORMATS.get("jsonl")(jsonl, ReadReport())
    assert frame.select("user_id", "item_id", "timestamp", "event").rows() == [
        ("1", "2", unix("2020-01-02"), "view")
    ]


def test_missing_mapped_column_fails_naming_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "uid,item,stars\nu,i,1\n")
    source = TabularSource(interactions=TableMapping(columns=RATINGS, event="rating"))
    with pytest.raises(DataFormatError) as caught:
        source.load({"interactions": path}, ReadReport())
    assert caught.value.field == "iid"
    assert str(path) in str(caught.value) and "mapped to item_id" in str(caught.value)

    with pytest.raises(DataFormatError) as caught:
        FORMATS.get("csv")(write(tmp_path / "n.csv", "user,item_id\nu,i\n"), ReadReport())
    assert caught.value.field == "user_id" and "n.csv" in str(caught.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="empty file"):
        FORMATS.get("csv")(write(tmp_path / "e.csv", ""), ReadReport())
    with pytest.raises(DataFormatError, match="'a'.*twice"):
        FORMATS.get("csv")(write(tmp_path / "d.csv", "a,a\n1,2\n"), ReadReport())
    with pytest.raises(DataFormatError, match="x.xlsx.*format"):
        TabularSource().load({"interactions": write(tmp_path / "x.xlsx", "")}, ReadReport())
    with pytest.raises(DataFormatError, match="bad.parquet.*Parquet"):
        FORMATS.get("parquet")(write(tmp_path / "bad.parquet", "nope"), ReadReport())
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"user_id,caf\xe9\nu,i\n")  # the header itself: nothing can be read
    with pytest.raises(DataFormatError, match=r"l.csv, line 1: header: not valid utf-8"):
        FORMATS.get("csv")(latin, ReadReport())


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("file_format", ["csv", "tsv"])
def test_undecodable_bytes_quarantine_their_row_on_the_right_line(
    tmp_path: Path, file_format: str, compress: bool
) -> None:
    """Issue 14.2: a byte on line 501 was reported on line 403 and lost the whole file."""
    sep = "," if file_format == "csv" else "\t"
    lines = [sep.join(["user_id", "item_id", "title"]).encode()]
    lines += [sep.join([f"u{n}", f"i{n}", f"fine {n}"]).encode() for n in range(2, 601)]
    lines[500 - 1] = sep.join(["u500", "i500", "caf\xe9"]).encode("latin-1")  # line 500
    lines[501 - 1] = sep.join(["u\xff501", "i501", "x"]).encode("latin-1")  # line 501
    lines[502 - 1] = b"u502" + sep.encode() + b'"two\nlines"' + sep.encode() + b"y"  # 502-503
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / f"events.{file_format}"
    path.write_bytes(gzip.compress(data) if compress else data)
    report = ReadReport()
    mapping = {"columns": {"user_id": "user_id", "item_id": "item_id"}, "event": "view"}
    tables = TabularSource(interactions={**mapping, "extra_columns": ["title"]}).load(
        {"interactions": path}, report
    )
    assert issues(report, path) == [
        (500, "title", "not valid utf-8 text"),
        (501, "user_id", "not valid utf-8 text"),
    ]
    assert report.files[str(path)].issues[1].raw == sep.join(["u\\xff501", "i501", "x"])
    tally = report.files[str(path)]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (599, 597, 2)
    assert "two\nlines" in tables.interactions["item_id"].to_list()


def test_bom_crlf_and_an_oversized_field_do_not_lose_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    huge = "x" * 200_000  # over the csv module's field size limit
    text = f"user_id,item_id\r\nu1,i1\r\nu2,{huge}\r\nu3,i3\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    report = ReadReport()
    frame = FORMATS.get("csv")(path, report)
    assert frame["user_id"].to_list() == ["u1", "u3"]
    assert [(line, reason.split(" (")[0]) for line, _, reason in issues(report, path)] == [
        (3, "unreadable delimited text")
    ]


def test_jsonl_undecodable_lines_and_lone_surrogates_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"  # a byte order mark before the first line
        + b'{"user_id": "u1", "item_id": "i1"}\n'
        + b'{"user_id": "u\xff", "item_id": "i1"}\n'
        + b'{"user_id": "u3", "item_id": "\\ud800"}\n'
        + b'{"user_id": "u4", "item_id": "\\ud83d\\ude00"}\n'  # a valid surrogate pair
        + b"[" * 100_000
        + b"\n"
    )
    report = ReadReport()
    frame = FORMATS.get("jsonl")(path, report)
    assert frame.select("user_id", "item_id").rows() == [("u1", "i1"), ("u4", "\U0001f600")]
    assert issues(report, path) == [
        (2, "<line>", "not valid utf-8 text"),
        (3, "(row)", "invalid unicode escape (lone surrogate)"),
        (5, "(row)", "invalid JSON"),
    ]
    assert report.files[str(path)].issues[0].raw == '{"user_id": "u\\xff", "item_id": "i1"}'


def test_infer_format() -> None:
    assert infer_format(Path("a/b.CSV")) == "csv"
    assert infer_format(Path("b.tsv.gz")) == "tsv"
    assert infer_format(Path("b.jsonl.gz")) == "jsonl"
    assert infer_format(Path("b.parquet")) == "parquet"


def test_timestamps() -> None:
    assert timestamp_value("1600000000", None) == 1600000000
    assert timestamp_value(1600000000.7, "unix") == 1600000000
    assert timestamp_value("2020-01-02T00:00:00+01:00", None) == unix("2020-01-01T23:00:00")
    assert timestamp_value("02/01/2020 10:00", "%d/%m/%Y %H:%M") == unix("2020-01-02T10:00:00")
    assert timestamp_value("", "unix") is None
    for bad, fmt in [("soon", None), ("2020-01-02", "unix"), ("2020-01-02", "%d/%m/%Y")]:
        with pytest.raises(ValueError, match="bad timestamp"):
            timestamp_value(bad, fmt)


def test_mapping_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mapping.yaml",
        "interactions: {format: csv, columns: {user_id: uid, item_id: iid, value: stars, "
        "timestamp: ts}, event: rating}\n"
        "items: {format: jsonl, columns: {item_id: id, title: name, categories: cats}}\n",
    )
    mappings = load_mapping_yaml(path)
    assert mappings["interactions"] == TableMapping(format="csv", columns=RATINGS, event="rating")
    assert mappings["items"].columns == {"item_id": "id", "title": "name", "categories": "cats"}
    assert TabularSource(**mappings).mappings == mappings


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "interactions: {colums: {user_id: u, item_id: i}, event: view}\n",
            "interactions.colums",
            "did you mean 'columns'?) (and 1 more problem)",
        ),
        (
            "interactions: {columns: {user_id: u, item_id: i}, event: click}\n",
            "interactions.event",
            "click",
        ),
        (
            "interactions: {columns: {user_id: u, item_id: i}, format: xls, event: view}\n",
            "interactions.format",
            "csv",
        ),
        (
            "interactions: {columns: {user_id: u, item_id: i, stars: s}, event: view}\n",
            "interactions.columns.stars",
            "not a column",
        ),
        ("interactions: {columns: {user_id: u}, event: view}\n", "interactions.columns", "item_id"),
        ("interactions: {columns: {user_id: u, item_id: i}}\n", "interactions.event", "either"),
        ("item: {columns: {item_id: i}}\n", "item", "unknown table role"),
        ("items: {columns: {item_id: i}, event: view}\n", "items.event", "interactions only"),
    ],
)
def test_mapping_yaml_typos_name_file_and_key(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = write(tmp_path / "mapping.yaml", text)
    with pytest.raises(DataFormatError) as caught:
        load_mapping_yaml(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_mapping_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "interactions:\n  columns: {user_id: u\n  event: view\n")
    with pytest.raises(DataFormatError, match="m.yaml, line .*invalid YAML"):
        load_mapping_yaml(path)
    with pytest.raises(DataFormatError, match="expected a mapping"):
        load_mapping_yaml(write(tmp_path / "l.yaml", "- a\n"))
