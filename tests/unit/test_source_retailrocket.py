"""Retailrocket event files: parsed values, quarantine reasons with line numbers, header errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.sources.base import FORMATS, SOURCES
from mtlrec.data.sources.retailrocket import RETAILROCKET_FILES, RetailrocketSource

HEADER = "visitorid\titemid\tevent\n"


def write_files(folder: Path, view: str, cart: str, purchase: str) -> dict[str, Path]:
    texts = {"view": view, "cart": cart, "purchase": purchase}
    files = {}
    for role, name in RETAILROCKET_FILES.items():
        files[role] = folder / name
        files[role].write_text(HEADER + texts[role], encoding="utf-8")
    return files


def test_registered() -> None:
    assert SOURCES.get("retailrocket") is RetailrocketSource
    assert "retailrocket-events" in FORMATS


def test_parses_three_files_in_role_order(tmp_path: Path) -> None:
    files = write_files(
        tmp_path, "1\t10\t1\n1\t11\t1\n2\t10\t1\n", "1\t10\t1\n3\t12\t1\n", "3\t12\t1\n"
    )
    report = ReadReport()
    tables = RetailrocketSource().load(files, report)

    rows = tables.interactions.to_dicts()
    assert [r["interaction_id"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [(r["user_id"], r["item_id"], r["event"]) for r in rows] == [
        ("1", "10", "view"),
        ("1", "11", "view"),
        ("2", "10", "view"),
        ("1", "10", "cart"),
        ("3", "12", "cart"),
        ("3", "12", "purchase"),
    ]
    assert all(r["value"] == 1.0 and r["timestamp"] is None for r in rows)
    assert tables.kind == "interactions"
    assert tables.users["user_id"].to_list() == ["1", "2", "3"]
    assert tables.items["item_id"].to_list() == ["10", "11", "12"]
    assert report.notes == {
        "users in cart/purchase files but never in views": 1,
        "items in cart/purchase files but never in views": 1,
    }
    assert report.rows_read == report.rows_kept == 6


def test_bad_rows_are_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    view = (
        "1\t10\t1\n"  # line 2: fine
        "1\t10\t1\n"  # line 3: duplicate
        "\t11\t1\n"  # line 4: missing visitorid
        "x\t11\t1\n"  # line 5: non-integer visitorid
        "2\t1.5\t1\n"  # line 6: non-integer itemid
        "2\t11\n"  # line 7: wrong field count
        "\n"  # line 8: blank, skipped
        "2\t12\tone\n"  # line 9: bad event count
        "2\t13\t2\n"  # line 10: kept, noted
    )
    files = write_files(tmp_path, view, "1\t10\t1\n", "")
    report = ReadReport()
    tables = RetailrocketSource().load(files, report)

    tally = report.files[str(files["view"])]
    found = [(i.line, i.field, i.reason) for i in tally.issues]
    assert found == [
        (3, "itemid", "duplicate event"),
        (4, "visitorid", "missing visitorid"),
        (5, "visitorid", "non-integer visitorid"),
        (6, "itemid", "non-integer itemid"),
        (7, "(row)", "wrong field count (expected 3)"),
        (9, "event", "non-integer event count"),
    ]
    assert tally.issues[0].raw == "1\t10\t1"
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (8, 2, 6)
    assert tally.notes == {"event count other than 1 (kept as one event)": 1}
    assert report.rows_read == report.rows_kept + report.rows_quarantined
    # the same pair in another file is another event, not a duplicate
    assert tables.interactions["event"].to_list() == ["view", "view", "cart"]


@pytest.mark.parametrize("missing", ["visitorid", "itemid"])
def test_header_without_id_column_fails_naming_file_and_field(tmp_path: Path, missing: str) -> None:
    files = write_files(tmp_path, "1\t1\t1\n", "", "")
    header = "\t".join(c for c in ("visitorid", "itemid", "event") if c != missing)
    files["cart"].write_text(header + "\n1\t1\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        RetailrocketSource().load(files, ReadReport())
    assert caught.value.field == missing
    assert caught.value.line == 1
    assert str(files["cart"]) in str(caught.value)
    assert repr(missing) in str(caught.value)


def test_empty_file_fails(tmp_path: Path) -> None:
    files = write_files(tmp_path, "", "", "")
    files["purchase"].write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="purchase_ecommerce.dat.*empty file"):
        RetailrocketSource().load(files, ReadReport())


def test_missing_role_fails(tmp_path: Path) -> None:
    files = write_files(tmp_path, "", "", "")
    del files["cart"]
    with pytest.raises(DataFormatError, match="cart"):
        RetailrocketSource().load(files, ReadReport())


def test_format_parser_takes_event_from_file_name(tmp_path: Path) -> None:
    files = write_files(tmp_path, "1\t2\t1\n", "3\t4\t1\n", "5\t6\t1\n")
    parse = FORMATS.get("retailrocket-events")
    report = ReadReport()
    frame = parse(files["cart"], report)
    assert frame.select("interaction_id", "user_id", "item_id", "event").rows() == [
        (0, "3", "4", "cart")
    ]
    other = tmp_path / "events.dat"
    other.write_text(HEADER, encoding="utf-8")
    with pytest.raises(DataFormatError, match="events.dat.*'event'.*file name"):
        parse(other, ReadReport())


def test_undecodable_line_is_quarantined_but_an_undecodable_header_fails(tmp_path: Path) -> None:
    """Issue 14.2: one non-UTF-8 byte used to refuse the whole file."""
    path = tmp_path / "view_ecommerce.dat"
    path.write_bytes(HEADER.encode() + b"1\t2\t1\n\xff3\t4\t1\n5\t6\t1\n")
    report = ReadReport()
    frame = FORMATS.get("retailrocket-events")(path, report)
    assert frame["user_id"].to_list() == ["1", "5"]
    assert [(i.line, i.field, i.reason) for i in report.files[str(path)].issues] == [
        (3, "<line>", "not valid utf-8 text")
    ]
    path.write_bytes(b"visitor\xffid\titemid\n1\t2\n")
    with pytest.raises(DataFormatError, match=r"view_ecommerce.dat, line 1: not valid utf-8"):
        FORMATS.get("retailrocket-events")(path, ReadReport())
