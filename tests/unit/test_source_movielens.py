"""MovieLens sources: 100K, RecBole atomic, 1M and latest-small, on small fixture files."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.sources.base import FORMATS, SOURCES
from mtlrec.data.sources.movielens import (
    GENRES_100K,
    HALF_STARS,
    WHOLE_STARS,
    MovieLens1MSource,
    MovieLens100KSource,
    MovieLensAtomicSource,
    MovieLensLatestSmallSource,
    genres_from_flags,
    parse_year,
    split_genres,
    split_title_year,
)

# ------------------------------------------------------------------------------ fixtures

# (user, item, rating, timestamp): shared by the 100K and the atomic fixtures.
RATINGS = [
    ("196", "242", "3", "881250949"),
    ("186", "302", "3", "891717742"),
    ("22", "377", "1", "878887116"),
    ("196", "302", "5", "881251000"),
    ("22", "242", "4", "878887200"),
]


def _flags(*names: str) -> str:
    return "|".join("1" if genre in names else "0" for genre in GENRES_100K)


U_ITEM_LINES = [
    "242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|"
    + _flags("Comedy"),
    "302|L.A. Confidential (1997)|01-Jan-1997||http://us.imdb.com/x|"
    + _flags("Crime", "Film-Noir", "Mystery", "Thriller"),
    "377|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/y|" + _flags("Drama", "Musical"),
    "267|unknown||||" + _flags("unknown"),
]
U_USER_LINES = [
    "196|49|M|writer|55105",
    "186|39|F|executive|00000",
    "22|25|M|writer|40206",
]


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _files_100k(folder: Path, data: list[str] | None = None) -> dict[str, Path]:
    data = data if data is not None else ["\t".join(row) for row in RATINGS]
    return {
        "data": _write(folder / "u.data", data),
        "item": _write(folder / "u.item", U_ITEM_LINES, encoding="latin-1"),
        "user": _write(folder / "u.user", U_USER_LINES),
    }


ATOMIC_INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ATOMIC_ITEM_LINES = [
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
    "242\tKolya\t1996\tComedy",
    "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller",
    "377\tMisérables, Les\t1995\tDrama Musical",
    "267\tunknown\t\tunknown",
]
ATOMIC_USER_LINES = [
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
    "196\t49\tM\twriter\t55105",
    "186\t39\tF\texecutive\t00000",
    "22\t25\tM\twriter\t40206",
]


def _files_atomic(folder: Path, inter: list[str] | None = None) -> dict[str, Path]:
    inter = (
        inter if inter is not None else [ATOMIC_INTER_HEADER] + ["\t".join(row) for row in RATINGS]
    )
    return {
        "inter": _write(folder / "ml-100k.inter", inter),
        "item": _write(folder / "ml-100k.item", ATOMIC_ITEM_LINES),
        "user": _write(folder / "ml-100k.user", ATOMIC_USER_LINES),
    }


def _issues(report: ReadReport, path: Path) -> list[tuple[int, str, str]]:
    return [(i.line, i.field, i.reason) for i in report.tally(path).issues]


def _assert_balanced(report: ReadReport) -> None:
    for tally in report.files.values():
        assert tally.rows_read == tally.rows_kept + tally.rows_quarantined
        tally.check()


# -------------------------------------------------------------------------------- helpers


def test_title_year_genre_helpers() -> None:
    assert split_title_year("Misérables, Les (1995)") == ("Misérables, Les", 1995)
    assert split_title_year("Scream of Stone (Schrei aus Stein) (1991)") == (
        "Scream of Stone (Schrei aus Stein)",
        1991,
    )
    assert split_title_year("Seven (Se7en)") == ("Seven (Se7en)", None)
    assert split_title_year("Babylon 5 ") == ("Babylon 5", None)
    assert parse_year("01-Jan-1995") == 1995
    assert parse_year("1996") == 1996
    assert parse_year("V") is None
    assert parse_year("0000") is None
    assert split_genres("Animation|Children's|Comedy", "|") == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert split_genres("Animation Children's Comedy", " ") == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert split_genres("(no genres listed)", "|") == []
    assert split_genres("", "|") == []
    assert genres_from_flags(["0", "1", "1"], ["unknown", "Action", "Adventure"]) == [
        "Action",
        "Adventure",
    ]
    with pytest.raises(ValueError, match="not 0 or 1"):
        genres_from_flags(["0", "2", "1"], ["unknown", "Action", "Adventure"])
    assert WHOLE_STARS.check(3.0) is None
    assert WHOLE_STARS.check(3.5) == "rating not on the star scale"
    assert WHOLE_STARS.check(0.0) == "rating out of range"
    assert HALF_STARS.check(0.5) is None
    assert HALF_STARS.check(4.5) is None
    assert HALF_STARS.check(5.5) == "rating out of range"


def test_registries_hold_every_layout_and_file_format() -> None:
    assert SOURCES.get("movielens-100k") is MovieLens100KSource
    assert SOURCES.get("movielens-atomic") is MovieLensAtomicSource
    assert SOURCES.get("movielens-1m") is MovieLens1MSource
    assert SOURCES.get("movielens-latest-small") is MovieLensLatestSmallSource
    assert MovieLens100KSource.roles == ("data", "item", "user")
    assert MovieLensAtomicSource.roles == ("inter", "item", "user")
    assert MovieLens1MSource.roles == ("ratings", "movies", "users")
    assert MovieLensLatestSmallSource.roles == ("ratings", "movies")
    assert MovieLensLatestSmallSource.optional_roles == ("tags", "links")
    for name in (
        "movielens-100k-data",
        "movielens-100k-item",
        "movielens-100k-user",
        "movielens-atomic-inter",
        "movielens-atomic-item",
        "movielens-atomic-user",
        "movielens-1m-ratings",
        "movielens-1m-movies",
        "movielens-1m-users",
        "movielens-latest-ratings",
        "movielens-latest-movies",
    ):
        assert name in FORMATS


# ---------------------------------------------------------------------------------- 100K


def test_100k_parses_items_users_and_ratings(tmp_path: Path) -> None:
    files = _files_100k(tmp_path)
    assert "é".encode("latin-1") in files["item"].read_bytes()  # really latin-1 on disk
    report = ReadReport()
    tables = MovieLens100KSource().load(files, report)

    inter = tables.interactions
    assert inter["interaction_id"].to_list() == [0, 1, 2, 3, 4]
    assert inter["user_id"].to_list() == ["196", "186", "22", "196", "22"]
    assert inter["item_id"].to_list() == ["242", "302", "377", "302", "242"]
    assert inter["value"].to_list() == [3.0, 3.0, 1.0, 5.0, 4.0]
    assert inter["timestamp"].to_list() == [881250949, 891717742, 878887116, 881251000, 878887200]
    assert inter["event"].unique().to_list() == ["rating"]
    assert inter.schema["timestamp"] == pl.Int64

    items = tables.items
    assert items["item_id"].to_list() == ["242", "302", "377", "267"]
    assert items["title"].to_list() == ["Kolya", "L.A. Confidential", "Misérables, Les", "unknown"]
    assert items["year"].to_list() == [1996, 1997, 1995, None]
    assert items.schema["year"] == pl.Int32
    assert items["genres"].to_list() == [
        ["Comedy"],
        ["Crime", "Film-Noir", "Mystery", "Thriller"],
        ["Drama", "Musical"],
        ["unknown"],
    ]

    users = tables.users
    assert users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert users.rows() == [
        ("196", 49, "M", "writer", "55105"),
        ("186", 39, "F", "executive", "00000"),
        ("22", 25, "M", "writer", "40206"),
    ]

    assert report.tally(files["item"]).notes == {"missing year": 1}
    assert report.rows_quarantined == 0
    assert report.rows_read == 5 + 4 + 3
    _assert_balanced(report)


def test_100k_quarantines_each_bad_rating_row(tmp_path: Path) -> None:
    data = [
        "196\t242\t3\t881250949",  # 1 ok
        "196\t302\t3",  # 2 too few fields
        "\t302\t4\t881250949",  # 3 no user
        "186\t\t4\t881250949",  # 4 no item
        "186\t302\tfour\t881250949",  # 5 rating not a number
        "186\t302\t6\t881250949",  # 6 out of range
        "186\t302\t0\t881250949",  # 7 out of range
        "186\t302\t3.5\t881250949",  # 8 half star in a whole-star layout
        "186\t302\tnan\t881250949",  # 9 NaN
        "186\t302\t4\tyesterday",  # 10 timestamp not a number
        "186\t302\t4\t-5",  # 11 negative timestamp: out of range
        "186\t302\t4\t8812.5",  # 12 fractional timestamp
        "",  # 13 blank: skipped, not a row
        "186\t302\t4\t891717742",  # 14 ok
        "196\t242\t5\t881250999",  # 15 same (user, item) again
    ]
    files = _files_100k(tmp_path, data)
    report = ReadReport()
    tables = MovieLens100KSource().load(files, report)
    assert _issues(report, files["data"]) == [
        (2, "<line>", "wrong number of fields"),
        (3, "user_id", "missing user id"),
        (4, "item_id", "missing item id"),
        (5, "rating", "non-numeric rating"),
        (6, "rating", "rating out of range"),
        (7, "rating", "rating out of range"),
        (8, "rating", "rating not on the star scale"),
        (9, "rating", "non-numeric rating"),
        (10, "timestamp", "bad timestamp"),
        (11, "timestamp", "timestamp out of range (1970-01-01..2100-01-01)"),
        (12, "timestamp", "bad timestamp"),
        (15, "item_id", "duplicate rating"),
    ]
    tally = report.tally(files["data"])
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (14, 2, 12)
    assert tally.issues[-1].raw == "196\t242\t5\t881250999"
    assert tables.interactions.select("user_id", "item_id", "value").rows() == [
        ("196", "242", 3.0),
        ("186", "302", 4.0),
    ]
    assert tables.interactions["interaction_id"].to_list() == [0, 1]
    _assert_balanced(report)


def test_100k_keeps_ratings_of_unknown_items_and_users_with_a_bare_row(tmp_path: Path) -> None:
    data = [
        "196\t242\t3\t881250949",
        "196\t9999\t4\t881250950",
        "777\t242\t2\t881250951",
        "777\t9999\t5\t881250952",
    ]
    files = _files_100k(tmp_path, data)
    report = ReadReport()
    tables = MovieLens100KSource().load(files, report)
    assert tables.interactions.height == 4
    assert report.tally(files["data"]).notes == {
        "rating for unknown item": 2,
        "rating for unknown user": 2,
    }
    assert tables.items["item_id"].to_list() == ["242", "302", "377", "267", "9999"]
    bare_item = tables.items.row(4, named=True)
    assert bare_item["title"] is None and bare_item["year"] is None
    assert tables.users["user_id"].to_list() == ["196", "186", "22", "777"]
    assert tables.users.row(3) == ("777", None, None, None, None)
    _assert_balanced(report)


def test_100k_item_and_user_files_quarantine_bad_rows(tmp_path: Path) -> None:
    item = tmp_path / "u.item"
    _write(
        item,
        [
            "1|Toy Story (1995)|01-Jan-1995||url|" + _flags("Animation", "Comedy"),  # 1 ok
            "2|GoldenEye (1995)|01-Jan-1995||url|" + _flags("Action").replace("0", "x", 1),  # 2
            "1|Toy Story again (1995)|01-Jan-1995||url|" + _flags("Comedy"),  # 3 duplicate id
            "3|Four Rooms (1995)|01-Jan-1995||url",  # 4 genre flags missing
            "|No Id (1995)|01-Jan-1995||url|" + _flags("Drama"),  # 5
            "5|Copycat|sometime||url|" + _flags("Crime"),  # 6 no year anywhere -> note
            "6|Shanghai Triad (Yao a yao yao dao waipo qiao)|01-Jan-1995||url|"
            + _flags("Drama"),  # 7 year from release date
        ],
        encoding="latin-1",
    )
    user = tmp_path / "u.user"
    _write(
        user,
        [
            "1|24|M|technician|85711",  # 1 ok
            "2|old|F|other|94043",  # 2 bad age
            "3|-4|M|writer|32067",  # 3 bad age
            "4|24|X|technician|43537",  # 4 bad gender
            "1|53|F|other|94043",  # 5 duplicate user
            "6|42|M|executive",  # 6 missing zip field
            "7|57|M|administrator|T8H1N",  # 7 ok, non-US zip
        ],
    )
    report = ReadReport()
    items = FORMATS.get("movielens-100k-item")(item, report)
    users = FORMATS.get("movielens-100k-user")(user, report)
    assert _issues(report, item) == [
        (2, "genres", "bad genre flag"),
        (3, "item_id", "duplicate item id"),
        (4, "<line>", "wrong number of fields"),
        (5, "item_id", "missing item id"),
    ]
    assert items.select("item_id", "title", "year", "genres").rows() == [
        ("1", "Toy Story", 1995, ["Animation", "Comedy"]),
        ("5", "Copycat", None, ["Crime"]),
        ("6", "Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995, ["Drama"]),
    ]
    assert report.tally(item).notes == {"bad year": 1}
    assert _issues(report, user) == [
        (2, "age", "bad age"),
        (3, "age", "bad age"),
        (4, "gender", "bad gender"),
        (5, "user_id", "duplicate user id"),
        (6, "<line>", "wrong number of fields"),
    ]
    assert users.rows() == [
        ("1", 24, "M", "technician", "85711"),
        ("7", 57, "M", "administrator", "T8H1N"),
    ]
    assert report.rows_read == 7 + 7
    _assert_balanced(report)


def test_missing_required_file_role_is_a_clear_error(tmp_path: Path) -> None:
    files = _files_100k(tmp_path)
    del files["user"]
    with pytest.raises(DataFormatError, match="user"):
        MovieLens100KSource().load(files, ReadReport())


# -------------------------------------------------------------------------------- atomic


def test_atomic_parses_by_header_names(tmp_path: Path) -> None:
    files = _files_atomic(tmp_path)
    report = ReadReport()
    tables = MovieLensAtomicSource().load(files, report)
    assert tables.items.select("item_id", "title", "year", "genres").rows() == [
        ("242", "Kolya", 1996, ["Comedy"]),
        ("302", "L.A. Confidential", 1997, ["Crime", "Film-Noir", "Mystery", "Thriller"]),
        ("377", "Misérables, Les", 1995, ["Drama", "Musical"]),
        ("267", "unknown", None, ["unknown"]),
    ]
    assert tables.users.rows() == [
        ("196", 49, "M", "writer", "55105"),
        ("186", 39, "F", "executive", "00000"),
        ("22", 25, "M", "writer", "40206"),
    ]
    assert tables.interactions["timestamp"].to_list() == [
        881250949,
        891717742,
        878887116,
        881251000,
        878887200,
    ]
    # header lines are not rows
    assert report.tally(files["inter"]).rows_read == 5
    assert report.tally(files["item"]).rows_read == 4
    assert report.tally(files["user"]).rows_read == 3
    _assert_balanced(report)


def test_atomic_column_order_does_not_matter_and_float_fields_are_accepted(
    tmp_path: Path,
) -> None:
    inter = tmp_path / "x.inter"
    _write(
        inter,
        [
            "timestamp:float\trating:float\titem_id:token\tuser_id:token",
            "881250949.0\t3.0\t242\t196",
            "881250950\t4\t302\t196",
        ],
    )
    item = tmp_path / "x.item"
    _write(
        item,
        [
            "class:token_seq\titem_id:token\trelease_year:token\tmovie_title:token_seq",
            "Animation Children's Comedy\t1\t1995\tToy Story",
            # RecBole's own item 1412: the year stayed in the title, release_year is "V"
            "Animation Children's\t1412\tV\tLand Before Time III: The Time of the Great"
            " Giving (1995)",
        ],
    )
    report = ReadReport()
    frame = FORMATS.get("movielens-atomic-inter")(inter, report)
    assert frame.select("user_id", "item_id", "value", "timestamp").rows() == [
        ("196", "242", 3.0, 881250949),
        ("196", "302", 4.0, 881250950),
    ]
    items = FORMATS.get("movielens-atomic-item")(item, report)
    assert items.select("item_id", "title", "year", "genres").rows() == [
        ("1", "Toy Story", 1995, ["Animation", "Children's", "Comedy"]),
        ("1412", "Land Before Time III: The Time of the Great Giving", 1995,
         ["Animation", "Children's"]),
    ]  # fmt: skip
    assert report.tally(item).notes == {"year taken from title": 1}
    _assert_balanced(report)


@pytest.mark.parametrize(
    ("fmt", "header", "missing"),
    [
        ("movielens-atomic-inter", "user_id:token\titem_id:token\ttimestamp:float", "rating"),
        ("movielens-atomic-inter", "user_id:token\trating:float\ttimestamp:float", "item_id"),
        (
            "movielens-atomic-item",
            "item_id:token\tmovie_title:token_seq\trelease_year:token",
            "class",
        ),
        (
            "movielens-atomic-user",
            "user_id:token\tage:token\tgender:token\tzip_code:token",
            "occupation",
        ),
    ],
)
def test_atomic_missing_column_names_file_and_field(
    tmp_path: Path, fmt: str, header: str, missing: str
) -> None:
    path = _write(tmp_path / "broken.atomic", [header, "1\t2\t3"])
    with pytest.raises(DataFormatError) as caught:
        FORMATS.get(fmt)(path, ReadReport())
    assert caught.value.file == str(path)
    assert caught.value.field == missing
    assert str(path) in str(caught.value) and repr(missing) in str(caught.value)


def test_atomic_source_fails_on_missing_column_and_empty_file(tmp_path: Path) -> None:
    files = _files_atomic(tmp_path, ["user_id:token\titem_id:token\trating:float", "1\t2\t3"])
    with pytest.raises(DataFormatError, match="timestamp") as caught:
        MovieLensAtomicSource().load(files, ReadReport())
    assert caught.value.file == str(files["inter"])
    files = _files_atomic(tmp_path, [])
    with pytest.raises(DataFormatError, match="no header"):
        MovieLensAtomicSource().load(files, ReadReport())


@pytest.mark.parametrize(
    ("file_format", "separator"),
    [("movielens-100k-data", "\t"), ("movielens-1m-ratings", "::")],
)
def test_timestamps_beyond_int64_are_quarantined_not_a_crash(
    tmp_path: Path, file_format: str, separator: str
) -> None:
    """Issue 14.1: one rating at 2**63 used to crash the whole file (Polars TypeError)."""
    stamps = ["881250949", str(2**63), str(2**63 - 1), "9" * 5000, "881250949000", "4102444800"]
    lines = [separator.join(["1", str(item), "3", stamp]) for item, stamp in enumerate(stamps)]
    path = _write(tmp_path / "ratings", lines)
    report = ReadReport()
    frame = FORMATS.get(file_format)(path, report)
    assert _issues(report, path) == [
        (2, "timestamp", "timestamp out of range (1970-01-01..2100-01-01)"),
        (3, "timestamp", "timestamp out of range (1970-01-01..2100-01-01)"),
        (4, "timestamp", "bad timestamp"),
        (5, "timestamp", "timestamp out of range (1970-01-01..2100-01-01)"),
    ]
    assert frame["timestamp"].to_list() == [881250949, 4102444800]


def test_undecodable_bytes_quarantine_their_row_on_the_right_line(tmp_path: Path) -> None:
    """Issue 14.2: the byte is pinned to its own line and only that row is set aside."""
    good = [f"{user},1,4.0,964982703".encode() for user in range(1, 601)]
    ratings = tmp_path / "ratings.csv"
    rows = [b"userId,movieId,rating,timestamp", *good]
    rows[500] = b"50\xff0,1,4.0,964982703"  # line 501, past the first 8 KiB decoded
    rows[100] = b'100,"1\n",4.0,964982703'  # lines 101-102: a quoted line break
    ratings.write_bytes(b"\n".join(rows) + b"\n")
    report = ReadReport()
    frame = FORMATS.get("movielens-latest-ratings")(ratings, report)
    assert _issues(report, ratings) == [(502, "<line>", "not valid utf-8 text")]
    assert frame.height == 599  # of 600 rows, the one with a bad byte set aside
    u_data = tmp_path / "u.data"
    u_data.write_bytes(b"1\t2\t3\t881250949\n1\t\xfe3\t3\t881250949\n")
    report = ReadReport()
    assert FORMATS.get("movielens-100k-data")(u_data, report).height == 1
    assert _issues(report, u_data) == [(2, "<line>", "not valid utf-8 text")]
    inter = tmp_path / "ml.inter"
    inter.write_bytes(ATOMIC_INTER_HEADER.encode() + b"\n196\t24\xe92\t3\t881250949\n")
    report = ReadReport()
    assert FORMATS.get("movielens-atomic-inter")(inter, report).height == 0
    assert _issues(report, inter) == [(2, "<line>", "not valid utf-8 text")]
    inter.write_bytes(b"user_id:token\xff\titem_id:token\n")
    with pytest.raises(DataFormatError, match=r"ml.inter, line 1: not valid utf-8 text"):
        FORMATS.get("movielens-atomic-inter")(inter, ReadReport())


def test_atomic_quarantines_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    inter = [
        ATOMIC_INTER_HEADER,  # 1
        "196\t242\t3\t881250949",  # 2 ok
        "196\t242\t3",  # 3 wrong field count
        "196\t302\t9\t881250949",  # 4 out of range
        "196\t302\t2\t-1",  # 5 timestamp out of range
        "196\t242\t4\t881250999",  # 6 duplicate
        "22\t377\t1\t878887116",  # 7 ok
    ]
    files = _files_atomic(tmp_path, inter)
    report = ReadReport()
    tables = MovieLensAtomicSource().load(files, report)
    assert _issues(report, files["inter"]) == [
        (3, "<line>", "wrong number of fields"),
        (4, "rating", "rating out of range"),
        (5, "timestamp", "timestamp out of range (1970-01-01..2100-01-01)"),
        (6, "item_id", "duplicate rating"),
    ]
    assert tables.interactions.height == 2
    assert report.tally(files["inter"]).rows_read == 6
    _assert_balanced(report)


def test_atomic_and_100k_give_the_same_tables(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    official = MovieLens100KSource().load(_files_100k(tmp_path / "a"), ReadReport())
    atomic_report = ReadReport()
    atomic = MovieLensAtomicSource().load(_files_atomic(tmp_path / "b"), atomic_report)
    assert official.interactions.equals(atomic.interactions)
    assert official.users.equals(atomic.users)
    assert official.items.equals(atomic.items)
    assert official.interactions.height == len(RATINGS)


def test_gzipped_atomic_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ml.inter.gz"
    path.write_bytes(gzip.compress(f"{ATOMIC_INTER_HEADER}\n196\t242\t3\t881250949\n".encode()))
    frame = FORMATS.get("movielens-atomic-inter")(path, ReadReport())
    assert frame.select("user_id", "item_id", "value").rows() == [("196", "242", 3.0)]


# ------------------------------------------------------------------------------------ 1M


def _files_1m(folder: Path) -> dict[str, Path]:
    return {
        "ratings": _write(
            folder / "ratings.dat",
            [
                "1::1193::5::978300760",  # 1 ok
                "1::661::3::978302109",  # 2 ok
                "2::1193::2::978298413",  # 3 ok
                "2::661::4",  # 4 wrong field count
                "2::3408::4.5::978298500",  # 5 half star
                "3::3408::4::978298600",  # 6 user 3 unknown (bad users.dat row)
            ],
        ),
        "movies": _write(
            folder / "movies.dat",
            [
                "1193::One Flew Over the Cuckoo's Nest (1975)::Drama",
                "661::James and the Giant Peach (1996)::Animation|Children's|Musical",
                "3408::Misérables, Les (1998)::Drama",
                "2::Jumanji::Adventure|Children's|Fantasy",  # no year -> note
            ],
            encoding="latin-1",
        ),
        "users": _write(
            folder / "users.dat",
            [
                "1::F::1::10::48067",
                "2::M::56::16::70072",
                "3::M::30::15::55117",  # 30 is not an age code
                "4::M::25::21::02460",  # occupation 21 does not exist
                "5::M::45::x::55455",
            ],
        ),
    }


def test_1m_parses_and_maps_codes(tmp_path: Path) -> None:
    files = _files_1m(tmp_path)
    report = ReadReport()
    tables = MovieLens1MSource().load(files, report)
    assert tables.items.select("item_id", "title", "year", "genres").rows() == [
        ("1193", "One Flew Over the Cuckoo's Nest", 1975, ["Drama"]),
        ("661", "James and the Giant Peach", 1996, ["Animation", "Children's", "Musical"]),
        ("3408", "Misérables, Les", 1998, ["Drama"]),
        ("2", "Jumanji", None, ["Adventure", "Children's", "Fantasy"]),
    ]
    assert report.tally(files["movies"]).notes == {"missing year": 1}
    assert tables.users.rows() == [
        ("1", 1, "F", "K-12 student", "48067"),
        ("2", 56, "M", "self-employed", "70072"),
        ("3", None, None, None, None),  # bare: its users.dat row was quarantined
    ]
    assert _issues(report, files["users"]) == [
        (3, "age", "bad age"),
        (4, "occupation", "bad occupation"),
        (5, "occupation", "bad occupation"),
    ]
    assert _issues(report, files["ratings"]) == [
        (4, "<line>", "wrong number of fields"),
        (5, "rating", "rating not on the star scale"),
    ]
    assert report.tally(files["ratings"]).notes == {"rating for unknown user": 1}
    assert tables.interactions.select("user_id", "item_id", "value", "timestamp").rows() == [
        ("1", "1193", 5.0, 978300760),
        ("1", "661", 3.0, 978302109),
        ("2", "1193", 2.0, 978298413),
        ("3", "3408", 4.0, 978298600),
    ]
    _assert_balanced(report)


# -------------------------------------------------------------------------- latest-small


def _files_latest(folder: Path, tags: bool = True, links: bool = True) -> dict[str, Path]:
    files = {
        "ratings": _write(
            folder / "ratings.csv",
            [
                "userId,movieId,rating,timestamp",  # 1
                "1,1,4.0,964982703",  # 2
                "1,3,0.5,964981247",  # 3
                "2,11,5.0,964982224",  # 4
                "2,1,0.0,964982224",  # 5 out of range
                "2,3,5.5,964982224",  # 6 out of range
                "2,6,2.25,964982224",  # 7 not a half star
                "3,6,3.5,",  # 8 empty timestamp
                "3,6,3.5,964982931",  # 9 ok
                "3,6,4,964982932",  # 10 duplicate
            ],
        ),
        "movies": _write(
            folder / "movies.csv",
            [
                "movieId,title,genres",
                "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
                '3,"American President, The (1995)",Comedy|Drama|Romance',
                '6,"Misérables, Les (1995)",Drama|War',
                '11,"Dear ""Friend"", Hello (2003)",(no genres listed)',
            ],
        ),
    }
    if tags:
        files["tags"] = _write(
            folder / "tags.csv",
            [
                "userId,movieId,tag,timestamp",
                "2,1,pixar,1445714994",
                "3,1,pixar,1445714995",
                '2,1,"fun, for kids",1445714996',
                "2,3,,1445714997",  # empty tag
                "2,99,classic,1445714998",  # movie not in movies.csv
            ],
        )
    if links:
        files["links"] = _write(
            folder / "links.csv",
            [
                "movieId,imdbId,tmdbId",
                "1,0114709,862",
                "3,0112346,",
                "6,0113828,abc",  # bad tmdbId
            ],
        )
    return files


def test_latest_small_parses_quoted_csv_tags_and_links(tmp_path: Path) -> None:
    files = _files_latest(tmp_path)
    report = ReadReport()
    tables = MovieLensLatestSmallSource().load(files, report)
    items = tables.items
    assert items.select("item_id", "title", "year", "genres").rows() == [
        ("1", "Toy Story", 1995, ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
        ("3", "American President, The", 1995, ["Comedy", "Drama", "Romance"]),
        ("6", "Misérables, Les", 1995, ["Drama", "War"]),
        ("11", 'Dear "Friend", Hello', 2003, []),
        ("99", None, None, None),
    ]
    assert items["tags"].to_list() == [["pixar", "fun, for kids"], [], [], [], ["classic"]]
    assert items["imdb_id"].to_list() == ["0114709", "0112346", None, None, None]
    assert items["tmdb_id"].to_list() == [862, None, None, None, None]
    assert report.tally(files["tags"]).notes == {"tag for unknown item": 1}
    assert _issues(report, files["tags"]) == [(5, "tag", "empty tag")]
    assert _issues(report, files["links"]) == [(4, "tmdbId", "bad tmdbId")]
    assert report.tally(files["links"]).notes == {"missing tmdbId": 1}

    assert _issues(report, files["ratings"]) == [
        (5, "rating", "rating out of range"),
        (6, "rating", "rating out of range"),
        (7, "rating", "rating not on the star scale"),
        (8, "timestamp", "bad timestamp"),
        (10, "item_id", "duplicate rating"),
    ]
    assert tables.interactions.select("user_id", "item_id", "value", "timestamp").rows() == [
        ("1", "1", 4.0, 964982703),
        ("1", "3", 0.5, 964981247),
        ("2", "11", 5.0, 964982224),
        ("3", "6", 3.5, 964982931),
    ]
    assert tables.users.columns == ["user_id"]
    assert tables.users["user_id"].to_list() == ["1", "2", "3"]
    tally = report.tally(files["ratings"])
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (9, 4, 5)
    _assert_balanced(report)


def test_latest_small_without_optional_files(tmp_path: Path) -> None:
    files = _files_latest(tmp_path, tags=False, links=False)
    tables = MovieLensLatestSmallSource().load(files, ReadReport())
    assert "tags" not in tables.items.columns and "imdb_id" not in tables.items.columns
    assert tables.items.height == 4


def test_latest_csv_line_numbers_follow_multiline_quoted_fields(tmp_path: Path) -> None:
    movies = tmp_path / "movies.csv"
    movies.write_text(
        "movieId,title,genres\n"
        '1,"Two\nLines (1999)",Drama\n'  # lines 2-3
        "1,Again (2000),Drama\n"  # line 4: duplicate id
        "2,Too,Many,Fields\n",  # line 5
        encoding="utf-8",
    )
    report = ReadReport()
    frame = FORMATS.get("movielens-latest-movies")(movies, report)
    assert frame.select("item_id", "title", "year").rows() == [("1", "Two\nLines", 1999)]
    assert _issues(report, movies) == [
        (4, "item_id", "duplicate item id"),
        (5, "<line>", "wrong number of fields"),
    ]


def test_latest_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "ratings.csv", ["userId,movieId,stars,timestamp", "1,1,4.0,1"])
    with pytest.raises(DataFormatError) as caught:
        FORMATS.get("movielens-latest-ratings")(path, ReadReport())
    assert caught.value.field == "rating"
    assert caught.value.file == str(path)
