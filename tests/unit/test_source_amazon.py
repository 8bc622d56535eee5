"""Unit tests of the Amazon review and metadata parsers (small files written per test)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mtlrec.data.read_report import DataFormatError, FileTally, ReadReport
from mtlrec.data.sources.amazon import (
    AmazonReviewsSource,
    clean_html,
    flatten_categories,
    parse_meta,
    parse_price,
    parse_reviews,
)
from mtlrec.data.sources.base import FORMATS, SOURCES


def write_lines(path: Path, lines: list[str], compress: bool = True) -> Path:
    """Write ``lines`` (one per line) to ``path``, gzip-compressed or plain."""
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def review_2014(user: str = "U1", item: str = "I1", **fields: Any) -> str:
    row: dict[str, Any] = {
        "reviewerID": user,
        "asin": item,
        "reviewerName": f"name of {user}",
        "helpful": [2, 3],
        "reviewText": f"text by {user} on {item}",
        "overall": 4.0,
        "summary": "fine",
        "unixReviewTime": 1393545600,
        "reviewTime": "02 28, 2014",
    }
    row.update(fields)
    return json.dumps({k: v for k, v in row.items() if v is not _DROP})


def review_2018(user: str = "U1", item: str = "I1", **fields: Any) -> str:
    row: dict[str, Any] = {
        "overall": 5.0,
        "verified": True,
        "reviewTime": "06 17, 2018",
        "reviewerID": user,
        "asin": item,
        "reviewerName": f"name of {user}",
        "reviewText": "great",
        "summary": "Five Stars",
        "unixReviewTime": 1529193600,
    }
    row.update(fields)
    return json.dumps({k: v for k, v in row.items() if v is not _DROP})


_DROP = object()
"""Pass as a field value to leave the field out of the row."""


def only_tally(report: ReadReport) -> FileTally:
    assert len(report.files) == 1
    return next(iter(report.files.values()))


# ------------------------------------------------------------------------------ reviews


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_valid_2014_reviews_give_all_three_tables(tmp_path: Path, compress: bool) -> None:
    path = write_lines(
        tmp_path / "reviews_X_5.json.gz",
        [
            review_2014("U1", "I1", overall=5.0, unixReviewTime=100),
            review_2014("U2", "I1", overall=1.0, helpful=[0, 7], unixReviewTime=200),
            review_2014("U1", "I2", overall=3.0, summary="", unixReviewTime=300),
        ],
        compress,
    )
    report = ReadReport()
    interactions, reviews, users = parse_reviews(path, report)

    assert interactions.to_dicts() == [
        {"interaction_id": 0, "user_id": "U1", "item_id": "I1", "timestamp": 100,
         "event": "review", "value": 5.0},
        {"interaction_id": 1, "user_id": "U2", "item_id": "I1", "timestamp": 200,
         "event": "review", "value": 1.0},
        {"interaction_id": 2, "user_id": "U1", "item_id": "I2", "timestamp": 300,
         "event": "review", "value": 3.0},
    ]  # fmt: skip
    assert reviews["interaction_id"].to_list() == [0, 1, 2]
    assert reviews["stars"].to_list() == [5.0, 1.0, 3.0]
    assert reviews["text"].to_list() == ["text by U1 on I1", "text by U2 on I1", "text by U1 on I2"]
    assert reviews["summary"].to_list() == ["fine", "fine", None]
    assert reviews["helpful_up"].to_list() == [2, 0, 2]
    assert reviews["helpful_total"].to_list() == [3, 7, 3]
    assert reviews["has_text"].to_list() == [True, True, True]
    assert users.to_dicts() == [
        {"user_id": "U1", "name": "name of U1"},
        {"user_id": "U2", "name": "name of U2"},
    ]
    tally = only_tally(report)
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (3, 3, 0)
    assert tally.notes["summary missing"] == 1


def test_2018_vote_strings_and_missing_votes(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "X_5.json.gz",
        [
            review_2018("U1", "I1", vote="3", style={"Format:": " Print Magazine"}),
            review_2018("U2", "I1", vote="1,234"),
            review_2018("U3", "I1"),
        ],
    )
    report = ReadReport()
    _, reviews, _ = parse_reviews(path, report)
    assert reviews["helpful_up"].to_list() == [3, 1234, 0]
    assert reviews["helpful_total"].to_list() == [None, None, None]
    assert reviews["stars"].to_list() == [5.0, 5.0, 5.0]
    assert only_tally(report).rows_kept == 3


def test_release_2014_reads_helpful_even_if_a_vote_field_is_present(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.json", [review_2014(vote="9")], compress=False)
    _, reviews, _ = parse_reviews(path, ReadReport(), release="2014")
    assert reviews.select("helpful_up", "helpful_total").row(0) == (2, 3)
    _, reviews, _ = parse_reviews(path, ReadReport(), release="2018")
    assert reviews.select("helpful_up", "helpful_total").row(0) == (9, None)


def test_every_bad_review_row_is_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    lines = [
        review_2014("U1", "I1", unixReviewTime=10),  # 1 kept
        '{"reviewerID": "U2", "asin": "I1", "overall": 5.0',  # 2 broken JSON
        review_2014(reviewerID=_DROP),  # 3
        review_2014("U3", ""),  # 4 empty asin
        review_2014("U4", "I1", overall="five"),  # 5
        review_2014("U5", "I1", overall=6.0),  # 6
        review_2014("U6", "I1", overall=0),  # 7
        review_2014("U7", "I1", overall=_DROP),  # 8
        review_2014("U8", "I1", unixReviewTime="yesterday"),  # 9
        review_2014("U9", "I1", unixReviewTime=-5),  # 10
        review_2014("U10", "I1", unixReviewTime=_DROP),  # 11
        review_2014("U11", "I1", unixReviewTime=1.5),  # 12
        review_2014("U1", "I1", unixReviewTime=10, reviewText="again"),  # 13 duplicate
        "[1, 2, 3]",  # 14
        review_2014("U1", "I1", unixReviewTime=11),  # 15 kept: another time
        review_2014("U12", "I1", overall=True),  # 16 a boolean is not a star rating
    ]
    path = write_lines(tmp_path / "reviews_Bad_5.json.gz", lines)
    report = ReadReport()
    interactions, reviews, users = parse_reviews(path, report)

    tally = only_tally(report)
    found = [(i.line, i.field, i.reason) for i in tally.issues]
    assert found == [
        (2, "<line>", "broken JSON"),
        (3, "reviewerID", "missing reviewerID"),
        (4, "asin", "missing asin"),
        (5, "overall", "non-numeric stars"),
        (6, "overall", "stars out of range (1..5)"),
        (7, "overall", "stars out of range (1..5)"),
        (8, "overall", "missing stars"),
        (9, "unixReviewTime", "bad timestamp"),
        (10, "unixReviewTime", "timestamp out of range (1970-01-01..2100-01-01)"),
        (11, "unixReviewTime", "bad timestamp"),
        (12, "unixReviewTime", "bad timestamp"),
        (13, "reviewerID+asin+unixReviewTime", "duplicate review"),
        (14, "<line>", "not a JSON object"),
        (16, "overall", "non-numeric stars"),
    ]
    assert all(issue.file == str(path) for issue in tally.issues)
    assert tally.issues[1].raw == lines[2]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (16, 2, 14)
    assert tally.rows_read == tally.rows_kept + tally.rows_quarantined
    assert tally.reasons["bad timestamp"] == 3
    assert interactions["timestamp"].to_list() == [10, 11]
    assert interactions["interaction_id"].to_list() == [0, 1]
    assert reviews["text"].to_list() == ["text by U1 on I1", "text by U1 on I1"]
    assert users["user_id"].to_list() == ["U1"]


OUT_OF_TIME = "timestamp out of range (1970-01-01..2100-01-01)"


@pytest.mark.parametrize("file_format", ["amazon-reviews"])
def test_timestamps_beyond_int64_are_quarantined_not_a_crash(
    tmp_path: Path, file_format: str
) -> None:
    """Issue 14.1: one review at 2**63 used to crash the whole file (Polars TypeError)."""
    lines = [
        review_2014("U1", "I1"),  # 1 kept
        review_2014("U2", "I1", unixReviewTime=2**63),  # 2 beyond Int64
        review_2014("U3", "I1", unixReviewTime=2**63 - 1),  # 3 Int64 max: year 292 billion
        review_2014("U4", "I1", unixReviewTime=str(2**64)),  # 4 as a digit string
        review_2014("U5", "I1", unixReviewTime=1393545600000),  # 5 milliseconds
        review_2014("U6", "I1", unixReviewTime=float(2**70)),  # 6 a whole float
        review_2014("U7", "I1", unixReviewTime="9" * 5000),  # 7 beyond int()'s digit limit
        review_2014("U8", "I1", unixReviewTime=4102444800),  # 8 kept: 2100-01-01 exactly
    ]
    path = write_lines(tmp_path / "reviews_Big_5.json", lines, compress=False)
    report = ReadReport()
    reviews = FORMATS.get(file_format)(path, report)
    tally = only_tally(report)
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (2, "unixReviewTime", OUT_OF_TIME),
        (3, "unixReviewTime", OUT_OF_TIME),
        (4, "unixReviewTime", OUT_OF_TIME),
        (5, "unixReviewTime", OUT_OF_TIME),
        (6, "unixReviewTime", OUT_OF_TIME),
        (7, "unixReviewTime", "bad timestamp"),
    ]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (8, 2, 6)
    assert reviews["timestamp"].to_list() == [1393545600, 4102444800]


def test_huge_numbers_elsewhere_in_a_review_never_crash(tmp_path: Path) -> None:
    lines = [
        review_2014("U1", "I1", overall=10**400),  # 1 beyond the float range
        review_2014("U2", "I1", helpful=[2**70, 2**70]),  # 2 kept: votes malformed
        review_2018("U3", "I1", vote="9" * 40),  # 3 kept: vote unparseable
        review_2014("U4", "I1", overall=-1),  # 4
    ]
    path = write_lines(tmp_path / "reviews_Big_5.json", lines, compress=False)
    report = ReadReport()
    _, reviews, _ = parse_reviews(path, report)
    tally = only_tally(report)
    assert [(i.line, i.reason) for i in tally.issues] == [
        (1, "stars out of range (1..5)"),
        (4, "stars out of range (1..5)"),
    ]
    assert reviews["helpful_up"].to_list() == [None, None]
    assert tally.notes["helpful votes malformed"] == 1 and tally.notes["vote unparseable"] == 1


def test_undecodable_lines_and_lone_surrogates_are_quarantined_not_the_file(
    tmp_path: Path,
) -> None:
    """Issue 14.2: one non-UTF-8 byte made the source refuse the whole review file."""
    lines = [
        review_2014("U1", "I1").encode(),  # 1 kept
        review_2014("U2", "I1").encode().replace(b"text by", b"caf\xe9 by"),  # 2 latin-1
        review_2014("U3", "I1", reviewText="\ud800 alone").encode(),  # 3 escaped \ud800
        review_2014("U4", "I1", reviewText="\U0001f3b8").encode(),  # 4 kept: a surrogate pair
        b"[" * 100_000,  # 5 nested too deep to decode
    ]
    path = tmp_path / "reviews_Bytes_5.json"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")  # with a byte order mark
    report = ReadReport()
    _, reviews, _ = parse_reviews(path, report)
    tally = only_tally(report)
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (2, "<line>", "not valid utf-8 text"),
        (3, "<line>", "invalid unicode escape (lone surrogate)"),
        (5, "<line>", "broken JSON"),
    ]
    assert "caf\\xe9 by" in tally.issues[0].raw
    assert reviews["text"].to_list() == ["text by U1 on I1", "\U0001f3b8"]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (5, 2, 3)


def test_meta_undecodable_lines_and_lone_surrogates_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "meta.json.gz"
    data = (
        json.dumps({"asin": "A", "title": "ok"}).encode()
        + b"\n{'asin': 'B', 'title': 'caf\xe9'}\n"
        + b"{'asin': 'C', 'title': '\\udc80'}\n"
        + b"{'asin': 'D', 'title': "
        + b"[" * 100_000
        + b"}\n"
    )
    path.write_bytes(gzip.compress(data))
    report = ReadReport()
    items = parse_meta(path, report)
    assert items["item_id"].to_list() == ["A"]
    assert [(i.line, i.reason) for i in only_tally(report).issues] == [
        (2, "not valid utf-8 text"),
        (3, "invalid unicode escape (lone surrogate)"),
        (4, "broken JSON"),
    ]


def test_blank_lines_are_skipped_but_line_numbers_stay_true(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "r.json", [review_2014("U1"), "", "   ", "{not json"], compress=False
    )
    report = ReadReport()
    parse_reviews(path, report)
    tally = only_tally(report)
    assert [(i.line, i.reason) for i in tally.issues] == [(4, "broken JSON")]
    assert (tally.rows_read, tally.rows_kept) == (2, 1)


@pytest.mark.parametrize(
    "text", ["", "   \n ", None, _DROP], ids=["empty", "blank", "null", "absent"]
)
def test_empty_review_text_is_kept_without_text(tmp_path: Path, text: object) -> None:
    path = write_lines(
        tmp_path / "r.json.gz",
        [review_2014("U1", "I1"), review_2014("U2", "I1", reviewText=text)],
    )
    report = ReadReport()
    interactions, reviews, _ = parse_reviews(path, report)
    assert interactions.height == 2
    assert reviews["text"].to_list() == ["text by U1 on I1", None]
    assert reviews["has_text"].to_list() == [True, False]
    assert reviews["stars"].to_list() == [4.0, 4.0]
    tally = only_tally(report)
    assert tally.notes["empty review text kept"] == 1
    assert tally.rows_quarantined == 0


def test_missing_reviewer_name_is_noted_and_first_name_is_used(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "r.json.gz",
        [
            review_2014("U1", "I1", reviewerName=_DROP, unixReviewTime=1),
            review_2014("U1", "I2", reviewerName="Later Name", unixReviewTime=2),
            review_2014("U1", "I3", reviewerName="Third Name", unixReviewTime=3),
            review_2014("U2", "I1", reviewerName="", unixReviewTime=4),
        ],
    )
    report = ReadReport()
    _, _, users = parse_reviews(path, report)
    assert users.to_dicts() == [
        {"user_id": "U1", "name": "Later Name"},
        {"user_id": "U2", "name": None},
    ]
    tally = only_tally(report)
    assert tally.notes["reviewerName missing"] == 2
    assert tally.rows_kept == 4


def test_gzip_and_plain_files_parse_identically(tmp_path: Path) -> None:
    lines = [review_2014("U1", "I1"), review_2018("U2", "I2", vote="4"), "oops"]
    plain = parse_reviews(write_lines(tmp_path / "a.json", lines, False), ReadReport())
    packed = parse_reviews(write_lines(tmp_path / "a.json.gz", lines, True), ReadReport())
    for left, right in zip(plain, packed, strict=True):
        assert left.equals(right)


# --------------------------------------------------------------------------------- meta


def test_meta_2014_python_literal_lines(tmp_path: Path) -> None:
    lines = [
        "{'asin': 'I1', 'title': 'Pop Filter', 'price': 12.5, 'imUrl': 'http://x/1.jpg', "
        "'categories': [['Musical Instruments', 'Accessories'], ['Musical Instruments', "
        "'Microphones']], 'brand': 'Dragonpad', 'description': \"It's a <b>filter</b>\", "
        "'salesRank': {'Musical Instruments': 5}, 'related': {'also_bought': ['I2']}}",
        "{'asin': 'I2', 'categories': [['Musical Instruments']]}",
    ]
    path = write_lines(tmp_path / "meta_Musical_Instruments.json.gz", lines)
    report = ReadReport()
    items = parse_meta(path, report)
    assert items.columns == [
        "item_id", "title", "description", "categories", "brand", "price", "main_cat",
    ]  # fmt: skip
    assert items.row(0, named=True) == {
        "item_id": "I1",
        "title": "Pop Filter",
        "description": "It's a filter",
        "categories": ["Musical Instruments", "Accessories", "Microphones"],
        "brand": "Dragonpad",
        "price": 12.5,
        "main_cat": None,
    }
    assert items.row(1, named=True) == {
        "item_id": "I2",
        "title": None,
        "description": None,
        "categories": ["Musical Instruments"],
        "brand": None,
        "price": None,
        "main_cat": None,
    }
    tally = only_tally(report)
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (2, 2, 0)
    assert tally.notes == {"title missing": 1, "brand missing": 1, "price missing": 1}


def test_meta_2018_json_lines_and_html_cleaning(tmp_path: Path) -> None:
    rows = [
        {
            "asin": "M1",
            "title": '<span class="a-size-medium a-color-secondary"',
            "category": ["Magazine Subscriptions", "Arts, Music &amp; Photography", "</span>"],
            "description": ["First <i>part</i>.", "", "Second&nbsp;part<br>next"],
            "brand": "Texas Parks &amp; Wildlife",
            "price": "",
            "main_cat": "Magazine Subscriptions",
        },
        {
            "asin": "G1",
            "title": " Maggiano&#39;s Gift Card",
            "category": ["Gift Cards", "Gift Cards"],
            "description": [],
            "brand": "",
            "price": "$1,299.99",
            "main_cat": "Gift Cards",
        },
        {"asin": "G2", "title": "<b>Bold</b> &amp; Co", "price": "$10.00 - $20.00"},
        {"asin": "G3", "title": "X", "price": ".a-box-inner{background-color:#fff}"},
    ]
    path = write_lines(tmp_path / "meta.json", [json.dumps(r) for r in rows], compress=False)
    report = ReadReport()
    items = parse_meta(path, report)
    by_id = {row["item_id"]: row for row in items.to_dicts()}
    assert by_id["M1"]["title"] is None
    assert by_id["M1"]["categories"] == ["Magazine Subscriptions", "Arts, Music & Photography"]
    # tags become spaces, &nbsp; becomes a plain space, list entries are newline-joined
    assert by_id["M1"]["description"] == "First part .\nSecond part next"
    assert by_id["M1"]["brand"] == "Texas Parks & Wildlife"
    assert by_id["M1"]["price"] is None
    assert by_id["M1"]["main_cat"] == "Magazine Subscriptions"
    assert by_id["G1"]["title"] == "Maggiano's Gift Card"
    assert by_id["G1"]["categories"] == ["Gift Cards"]
    assert by_id["G1"]["description"] is None
    assert by_id["G1"]["brand"] is None
    assert by_id["G1"]["price"] == pytest.approx(1299.99)
    assert by_id["G2"]["title"] == "Bold & Co"
    assert by_id["G2"]["price"] == 10.0
    assert by_id["G3"]["price"] is None
    tally = only_tally(report)
    assert tally.notes["title only HTML, set to null"] == 1
    assert tally.notes["price missing"] == 1
    assert tally.notes["price unparseable"] == 1
    assert tally.notes["brand missing"] == 3


def test_meta_duplicate_asins_and_broken_lines_are_quarantined(tmp_path: Path) -> None:
    lines = [
        json.dumps({"asin": "A", "title": "first"}),
        "{'asin': 'B', 'title': 'python literal'}",
        json.dumps({"asin": "A", "title": "second"}),
        "{'asin': 'C', 'title': __import__('os')}",  # not a literal: never evaluated
        json.dumps({"title": "no asin"}),
        "{'asin': 'B', 'title': 'again'}",
        '"just a string"',
    ]
    path = write_lines(tmp_path / "meta.json.gz", lines)
    report = ReadReport()
    items = parse_meta(path, report)
    assert items.select("item_id", "title").rows() == [("A", "first"), ("B", "python literal")]
    tally = only_tally(report)
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (3, "asin", "duplicate asin"),
        (4, "<line>", "broken JSON"),
        (5, "asin", "missing asin"),
        (6, "asin", "duplicate asin"),
        (7, "<line>", "not a JSON object"),
    ]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (7, 2, 5)


def test_meta_negative_price_is_quarantined_with_its_range(tmp_path: Path) -> None:
    lines = [
        json.dumps({"asin": "A", "title": "cheap", "price": -4.5}),
        "{'asin': 'B', 'title': 'python literal', 'price': -1}",
        json.dumps({"asin": "A", "title": "priced", "price": "$3.00"}),
        json.dumps({"asin": "C", "title": "huge", "price": 10**400}),  # kept, price null
    ]
    path = write_lines(tmp_path / "meta.json", lines, compress=False)
    report = ReadReport()
    items = parse_meta(path, report)
    assert items.select("item_id", "price").rows() == [("A", 3.0), ("C", None)]
    tally = only_tally(report)
    assert [(i.line, i.field, i.reason) for i in tally.issues] == [
        (1, "price", "price out of range (>= 0)"),
        (2, "price", "price out of range (>= 0)"),
    ]
    assert tally.notes["price unparseable"] == 1 and "title missing" not in tally.notes


@pytest.mark.parametrize(
    ("raw", "price", "problem"),
    [
        (12.99, 12.99, None),
        (3, 3.0, None),
        ("$12.99", 12.99, None),
        ("$1,299.99", 1299.99, None),
        ("  $5 ", 5.0, None),
        ("$10.00 - $20.00", 10.0, None),
        ("$30.00 - $4.50", 4.5, None),
        ("", None, "price missing"),
        ("\n\t  \r\n", None, "price missing"),
        (None, None, "price missing"),
        ("\n\n\n<script", None, "price unparseable"),
        (".a-box-inner{background-color:#fff}", None, "price unparseable"),
        ("free", None, "price unparseable"),
        (float("nan"), None, "price unparseable"),
        (-1.0, None, "price out of range (>= 0)"),
        (-3, None, "price out of range (>= 0)"),
        (float("inf"), None, "price unparseable"),
        pytest.param(10**400, None, "price unparseable", id="int-beyond-float"),
        pytest.param("$" + "9" * 400, None, "price unparseable", id="text-beyond-float"),
        (True, None, "price unparseable"),
    ],
)
def test_parse_price(raw: object, price: float | None, problem: str | None) -> None:
    got, got_problem = parse_price(raw)
    assert got == (pytest.approx(price) if price is not None else None)
    assert got_problem == problem


def test_clean_html_and_flatten_categories() -> None:
    assert clean_html('<span class="a-size-medium a-color-secondary"') is None
    assert clean_html("AT&amp;T <em>Wireless</em>") == "AT&T Wireless"
    assert clean_html("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert clean_html("  plain  ") == "plain"
    assert clean_html(42) is None
    assert flatten_categories([["A", "B &amp; C"], ["A", "D"], "E", ["<br>"]]) == [
        "A", "B & C", "D", "E",
    ]  # fmt: skip
    assert flatten_categories(None) == []


# ------------------------------------------------------------------------- whole source


def test_source_joins_metadata_and_keeps_items_without_it(tmp_path: Path) -> None:
    reviews = write_lines(
        tmp_path / "X_5.json.gz",
        [
            review_2018("U1", "I1", unixReviewTime=1),
            review_2018("U1", "I2", unixReviewTime=2),
            review_2018("U2", "I3", unixReviewTime=3),
            review_2018("U2", "I1", unixReviewTime=4),
        ],
    )
    meta = write_lines(
        tmp_path / "meta_X.json.gz",
        [
            json.dumps({"asin": "I3", "title": "Three", "price": "$3.00", "main_cat": "M"}),
            json.dumps({"asin": "I1", "title": "One", "category": ["C", "D"], "brand": "B"}),
            json.dumps({"asin": "I9", "title": "Nobody reviewed me"}),
            json.dumps({"asin": "I1", "title": "One again"}),
        ],
    )
    report = ReadReport()
    tables = AmazonReviewsSource(release="2018").load({"reviews": reviews, "meta": meta}, report)

    assert tables.counts() == {"users": 2, "items": 3, "interactions": 4, "reviews": 4}
    items = tables.items
    assert items["item_id"].to_list() == ["I1", "I2", "I3"]
    assert items["title"].to_list() == ["One", None, "Three"]
    assert items["categories"].to_list() == [["C", "D"], None, []]
    assert items["brand"].to_list() == ["B", None, None]
    assert items["price"].to_list() == [None, None, 3.0]
    assert items["main_cat"].to_list() == [None, None, "M"]
    assert items.columns[:8] == [
        "item_id", "title", "description", "categories", "brand", "price", "year", "genres",
    ]  # fmt: skip
    assert report.notes["items without metadata"] == 1
    assert report.notes["metadata rows for unreviewed items"] == 1
    meta_tally = report.files[str(meta)]
    assert (meta_tally.rows_read, meta_tally.rows_kept, meta_tally.rows_quarantined) == (4, 3, 1)
    assert tables.users.columns == ["user_id", "name"]
    assert tables.interactions["event"].unique().to_list() == ["review"]
    assert (
        tables.reviews["interaction_id"].to_list()
        == tables.interactions["interaction_id"].to_list()
    )


def test_source_without_meta_has_id_only_items(tmp_path: Path) -> None:
    reviews = write_lines(
        tmp_path / "r.json.gz", [review_2014("U1", "I2"), review_2014("U2", "I1")]
    )
    report = ReadReport()
    tables = AmazonReviewsSource().load({"reviews": reviews}, report)
    assert tables.items["item_id"].to_list() == ["I2", "I1"]
    assert tables.items["title"].null_count() == 2
    assert not report.notes


def test_source_registration_and_file_checks(tmp_path: Path) -> None:
    assert SOURCES.get("amazon") is AmazonReviewsSource
    assert AmazonReviewsSource.roles == ("reviews",)
    assert AmazonReviewsSource.optional_roles == ("meta",)
    with pytest.raises(ValueError, match="unknown Amazon release"):
        AmazonReviewsSource(release="2020")  # type: ignore[arg-type]
    source = AmazonReviewsSource()
    with pytest.raises(DataFormatError, match="required role 'reviews'"):
        source.load({}, ReadReport())
    with pytest.raises(DataFormatError, match="does not exist"):
        source.load({"reviews": tmp_path / "missing.json.gz"}, ReadReport())


def test_registered_file_formats(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json", [review_2014("U1", "I1")], compress=False)
    meta = write_lines(tmp_path / "m.json", ["{'asin': 'I1', 'title': 'T'}"], compress=False)
    frame = FORMATS.get("amazon-reviews")(reviews, ReadReport())
    assert frame.select("user_id", "item_id", "stars").rows() == [("U1", "I1", 4.0)]
    items = FORMATS.get("amazon-meta")(meta, ReadReport())
    assert isinstance(items, pl.DataFrame)
    assert items.select("item_id", "title").rows() == [("I1", "T")]
