"""MovieLens sources: the official 100K, 1M and latest-small layouts, and RecBole atomic files.

Every layout is read into the same canonical tables:

* interactions: one ``"rating"`` event per kept rating row, ``value`` = stars, ``timestamp`` =
  unix seconds, ``interaction_id`` = 0..n-1 in file order of the kept rows;
* items: ``title`` without the trailing ``" (1995)"``, ``year`` (from the title, else the
  release date / release year column), ``genres`` as a list of names; latest-small adds
  ``tags`` (list, deduplicated) and ``imdb_id``/``tmdb_id`` when those files are given;
* users: ``age``, ``gender``, ``occupation``, ``zip_code`` as extra columns (latest-small has
  no user file: just the ids seen in the ratings).

Validation is shared by all layouts. A rating row is quarantined for a wrong number of
fields, a missing user or item id, a non-numeric rating, a rating off the layout's star
scale (out of range, or not a whole/half star), a non-integer or negative timestamp, or a
repeated (user, item) pair (the later row). A rating whose user or item is missing from the
user/item file is kept with a note, and a bare user/item row is added so nothing is lost.
Item and user rows are quarantined for a missing or duplicate id and for bad attribute values;
an unreadable year is set to null with a note instead.

Layout column names are mapped to canonical keys (``user_id``, ``item_id``, ``rating``,
``timestamp``, ...) right after splitting, so one validator serves every layout.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from mtlrec.data.report import DataFormatError, FileTally, ReadReport
from mtlrec.data.schema import CanonicalTables, conform
from mtlrec.data.sources.base import FORMATS, SOURCES, Source, numbered_lines, open_text

__all__ = [
    "GENRES_100K",
    "HALF_STARS",
    "ML1M_AGES",
    "ML1M_OCCUPATIONS",
    "WHOLE_STARS",
    "MovieLens100KSource",
    "MovieLens1MSource",
    "MovieLensAtomicSource",
    "MovieLensLatestSmallSource",
    "StarScale",
    "genres_from_flags",
    "parse_year",
    "read_100k_data",
    "read_100k_item",
    "read_100k_user",
    "read_1m_movies",
    "read_1m_ratings",
    "read_1m_users",
    "read_atomic_inter",
    "read_atomic_item",
    "read_atomic_user",
    "read_latest_links",
    "read_latest_movies",
    "read_latest_ratings",
    "read_latest_tags",
    "split_genres",
    "split_title_year",
]

GENRES_100K: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""The 19 genre flags of ``u.item``, in file order."""

ML1M_OCCUPATIONS: dict[int, str] = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin",
    4: "college/grad student", 5: "customer service", 6: "doctor/health care",
    7: "executive/managerial", 8: "farmer", 9: "homemaker", 10: "K-12 student", 11: "lawyer",
    12: "programmer", 13: "retired", 14: "sales/marketing", 15: "scientist",
    16: "self-employed", 17: "technician/engineer", 18: "tradesman/craftsman",
    19: "unemployed", 20: "writer",
}  # fmt: skip
"""ML-1M occupation codes (``users.dat``) and their documented names."""

ML1M_AGES: frozenset[int] = frozenset({1, 18, 25, 35, 45, 50, 56})
"""ML-1M age codes: the lower bound of each age range (1 means "under 18")."""

NO_GENRES = "(no genres listed)"
GENDERS = frozenset({"M", "F"})
MIN_YEAR, MAX_YEAR = 1800, 2100
MAX_AGE = 120

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$", re.DOTALL)
_YEAR_OR_DATE = re.compile(r"(?:\d{1,2}-[A-Za-z]{3}-)?(?P<year>\d{4})")

ITEM_COLUMNS: dict[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "year": pl.Int32(),
    "genres": pl.List(pl.String()),
}
USER_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "age": pl.Int64(),
    "gender": pl.String(),
    "occupation": pl.String(),
    "zip_code": pl.String(),
}


# ------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class StarScale:
    """The allowed ratings of a layout: ``low``..``high`` in steps of ``step``."""

    low: float
    high: float
    step: float

    def check(self, value: float) -> str | None:
        """``None`` when ``value`` is a valid rating, else the quarantine reason."""
        if not self.low <= value <= self.high:
            return "rating out of range"
        steps = (value - self.low) / self.step
        if abs(steps - round(steps)) > 1e-9:
            return "rating not on the star scale"
        return None


WHOLE_STARS = StarScale(1.0, 5.0, 1.0)
"""100K, 1M and the atomic files: 1..5 whole stars."""
HALF_STARS = StarScale(0.5, 5.0, 0.5)
"""latest-small: 0.5..5.0 in half stars."""


def split_title_year(title: str) -> tuple[str, int | None]:
    """Split ``"Toy Story (1995)"`` into ``("Toy Story", 1995)``.

    A title without a trailing four-digit year in parentheses is returned stripped, with
    ``None``; an implausible year (outside 1800..2100) is removed from the title and ``None``
    returned for it.
    """
    match = _TITLE_YEAR.match(title)
    if match is None:
        return title.strip(), None
    return match["title"].strip(), parse_year(match["year"])


def parse_year(text: str) -> int | None:
    """The year of ``"1995"`` or of a 100K release date ``"01-Jan-1995"``; ``None`` if neither.

    Years outside 1800..2100 count as unreadable.
    """
    match = _YEAR_OR_DATE.fullmatch(text.strip())
    if match is None:
        return None
    year = int(match["year"])
    return year if MIN_YEAR <= year <= MAX_YEAR else None


def split_genres(text: str, separator: str) -> list[str]:
    """Genre names from ``"Action|Comedy"`` (or space-separated atomic ``class``).

    Empty parts and ``"(no genres listed)"`` are dropped; repeats are kept once.
    """
    if text.strip() == NO_GENRES:
        return []
    parts = text.split(separator) if separator != " " else text.split()
    return list(dict.fromkeys(p.strip() for p in parts if p.strip() and p.strip() != NO_GENRES))


def genres_from_flags(flags: Sequence[str], names: Sequence[str] = GENRES_100K) -> list[str]:
    """The names whose flag is ``"1"``; raises :class:`ValueError` for a flag not 0/1."""
    if len(flags) != len(names):
        raise ValueError(f"expected {len(names)} genre flags, got {len(flags)}")
    genres = []
    for flag, name in zip(flags, names, strict=True):
        if flag not in ("0", "1"):
            raise ValueError(f"genre flag {flag!r} is not 0 or 1")
        if flag == "1":
            genres.append(name)
    return genres


class _RowError(Exception):
    """A bad value in one row: the row is quarantined with this field and reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _year(text: str | None, tally: FileTally) -> int | None:
    """Parse a year column (or date), noting a missing or unreadable one on ``tally``."""
    if text is None or not text.strip():
        tally.note("missing year")
        return None
    year = parse_year(text)
    if year is None:
        tally.note("bad year")
    return year


def _title_and_year(
    raw_title: str, fallback: str | None, tally: FileTally
) -> tuple[str, int | None]:
    """Title without its year, and the year from the title, else from ``fallback``."""
    title, year = split_title_year(raw_title)
    if year is not None:
        return title, year
    if _TITLE_YEAR.match(raw_title):  # a "(0000)" year: removed from the title, unreadable
        tally.note("bad year")
        return title, None
    return title, _year(fallback, tally)


def _optional(text: str) -> str | None:
    stripped = text.strip()
    return stripped or None


def _int(text: str) -> int | None:
    """An integer from ``"42"`` or an integral float such as ``"42.0"``; else ``None``."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


# -------------------------------------------------------------------------- row readers

Row = tuple[int, str, dict[str, str]]
"""One data row: line number, the raw line, and its fields by canonical name."""


def _split_rows(
    path: Path, tally: FileTally, separator: str, names: Sequence[str], encoding: str = "utf-8"
) -> Iterator[Row]:
    """Rows of a headerless delimited file; a line with the wrong field count is quarantined."""
    for line_number, line in numbered_lines(path, encoding):
        parts = line.split(separator)
        if len(parts) != len(names):
            tally.quarantine(line_number, "<line>", "wrong number of fields", line)
            continue
        yield line_number, line, dict(zip(names, (p.strip() for p in parts), strict=True))


def _csv_records(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str, list[str]]]:
    """``(first line number, raw text, fields)`` of every non-blank CSV record.

    Quoted fields may contain commas, quotes and newlines; the raw text of a record spanning
    several lines is those lines joined.
    """
    physical: list[str] = []
    line_number = 0

    def lines(handle: Iterable[str]) -> Iterator[str]:
        nonlocal line_number
        for text in handle:
            line_number += 1
            physical.append(text.rstrip("\r\n"))
            yield text

    try:
        with open_text(path, encoding) as handle:
            for fields in csv.reader(lines(handle)):
                first = line_number - len(physical) + 1
                raw = "\n".join(physical)
                physical.clear()
                if fields and any(f.strip() for f in fields):
                    yield first, raw, fields
    except UnicodeDecodeError as error:
        raise DataFormatError(
            path, None, f"not valid {encoding} text ({error.reason})", line=line_number + 1
        ) from None
    except csv.Error as error:
        raise DataFormatError(path, None, f"broken CSV ({error})", line=line_number) from None


def _tab_records(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str, list[str]]]:
    """``(line number, line, fields)`` of a tab-separated file with a header line."""
    for line_number, line in numbered_lines(path, encoding):
        yield line_number, line, line.split("\t")


def _header_rows(
    path: Path,
    tally: FileTally,
    records: Iterator[tuple[int, str, list[str]]],
    columns: Mapping[str, str],
    header_name: Callable[[str], str] = str.strip,
) -> Iterator[Row]:
    """Rows of a file whose first record is a header, fields named by ``columns``.

    ``columns`` maps canonical keys to header names; every one is required, in any order.
    A missing column raises :class:`DataFormatError` naming the file and the column; a
    record with a different field count than the header is quarantined.
    """
    header = next(records, None)
    if header is None:
        raise DataFormatError(path, None, "empty file: no header line")
    _, _, fields = header
    names = [header_name(field) for field in fields]
    position = {name: index for index, name in reversed(list(enumerate(names)))}
    for name in columns.values():
        if name not in position:
            found = ", ".join(names)
            raise DataFormatError(path, name, f"required column missing (header has: {found})")
    ignored = [name for name in names if name not in columns.values()]
    if ignored:
        tally.note(f"columns ignored: {', '.join(ignored)}")
    for line_number, raw, parts in records:
        if len(parts) != len(names):
            tally.quarantine(line_number, "<line>", "wrong number of fields", raw)
            continue
        yield (
            line_number,
            raw,
            {key: parts[position[name]].strip() for key, name in columns.items()},
        )


def _atomic_name(field: str) -> str:
    """``"user_id:token"`` -> ``"user_id"``."""
    return field.strip().split(":", 1)[0].strip()


# --------------------------------------------------------------------------- collectors


class _Ratings:
    """Validates rating rows (shared by every layout) and keeps the good ones by column."""

    def __init__(self, tally: FileTally, scale: StarScale) -> None:
        self.tally = tally
        self.scale = scale
        self.users: list[str] = []
        self.items: list[str] = []
        self.values: list[float] = []
        self.timestamps: list[int] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, line_number: int, raw: str, fields: Mapping[str, str]) -> None:
        """Keep or quarantine one row with keys user_id, item_id, rating, timestamp."""
        try:
            user, item, value, timestamp = self._parse(fields)
        except _RowError as error:
            self.tally.quarantine(line_number, error.field, error.reason, raw)
            return
        if (user, item) in self._seen:
            self.tally.quarantine(line_number, "item_id", "duplicate rating", raw)
            return
        self._seen.add((user, item))
        self.users.append(user)
        self.items.append(item)
        self.values.append(value)
        self.timestamps.append(timestamp)
        self.tally.keep()

    def _parse(self, fields: Mapping[str, str]) -> tuple[str, str, float, int]:
        user, item = fields["user_id"], fields["item_id"]
        if not user:
            raise _RowError("user_id", "missing user id")
        if not item:
            raise _RowError("item_id", "missing item id")
        try:
            value = float(fields["rating"])
        except ValueError:
            raise _RowError("rating", "non-numeric rating") from None
        if math.isnan(value):
            raise _RowError("rating", "non-numeric rating")
        problem = self.scale.check(value)
        if problem is not None:
            raise _RowError("rating", problem)
        timestamp = _int(fields["timestamp"])
        if timestamp is None or timestamp < 0:
            raise _RowError("timestamp", "bad timestamp")
        return user, item, value, timestamp

    def frame(self) -> pl.DataFrame:
        """The kept ratings as a canonical interactions frame."""
        n = len(self.users)
        frame = pl.DataFrame(
            {
                "interaction_id": list(range(n)),
                "user_id": self.users,
                "item_id": self.items,
                "timestamp": self.timestamps,
                "event": ["rating"] * n,
                "value": self.values,
            },
            schema={
                "interaction_id": pl.Int64(),
                "user_id": pl.String(),
                "item_id": pl.String(),
                "timestamp": pl.Int64(),
                "event": pl.String(),
                "value": pl.Float64(),
            },
        )
        return conform(frame, "interactions")


def _read_ratings(rows: Iterable[Row], tally: FileTally, scale: StarScale) -> pl.DataFrame:
    ratings = _Ratings(tally, scale)
    for line_number, raw, fields in rows:
        ratings.add(line_number, raw, fields)
    tally.check()
    return ratings.frame()


Converter = Callable[[Mapping[str, str], FileTally], dict[str, Any]]
"""Turns the fields of an item/user row into column values; raises ``_RowError`` if bad."""


def _read_entities(
    rows: Iterable[Row],
    tally: FileTally,
    id_column: str,
    what: str,
    schema: Mapping[str, pl.DataType],
    convert: Converter,
) -> pl.DataFrame:
    """Items or users: a missing or repeated id, or a bad value, quarantines the row."""
    columns: dict[str, list[Any]] = {name: [] for name in schema}
    seen: set[str] = set()
    for line_number, raw, fields in rows:
        key = fields[id_column]
        if not key:
            tally.quarantine(line_number, id_column, f"missing {what} id", raw)
            continue
        if key in seen:
            tally.quarantine(line_number, id_column, f"duplicate {what} id", raw)
            continue
        try:
            values = convert(fields, tally)
        except _RowError as error:
            tally.quarantine(line_number, error.field, error.reason, raw)
            continue
        seen.add(key)
        columns[id_column].append(key)
        for name, value in values.items():
            columns[name].append(value)
        tally.keep()
    tally.check()
    return pl.DataFrame(columns, schema=dict(schema))


def _age(text: str, allowed: frozenset[int] | None = None) -> int:
    age = _int(text)
    if age is None or not 0 < age <= MAX_AGE or (allowed is not None and age not in allowed):
        raise _RowError("age", "bad age")
    return age


def _gender(text: str) -> str:
    if text not in GENDERS:
        raise _RowError("gender", "bad gender")
    return text


def _user_with_names(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
    """100K ``u.user`` and atomic ``.user``: occupation spelled out."""
    return {
        "age": _age(fields["age"]),
        "gender": _gender(fields["gender"]),
        "occupation": _optional(fields["occupation"]),
        "zip_code": _optional(fields["zip_code"]),
    }


def _user_1m(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
    """1M ``users.dat``: age and occupation are codes."""
    code = _int(fields["occupation"])
    if code is None or code not in ML1M_OCCUPATIONS:
        raise _RowError("occupation", "bad occupation")
    return {
        "age": _age(fields["age"], ML1M_AGES),
        "gender": _gender(fields["gender"]),
        "occupation": ML1M_OCCUPATIONS[code],
        "zip_code": _optional(fields["zip_code"]),
    }


def _item_100k(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
    try:
        genres = genres_from_flags([fields[name] for name in GENRES_100K])
    except ValueError:
        raise _RowError("genres", "bad genre flag") from None
    title, year = _title_and_year(fields["title"], fields["release_date"], tally)
    return {"title": title or None, "year": year, "genres": genres}


def _item_atomic(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
    """Atomic ``.item``: year from ``release_year``, else from a ``(1995)`` left in the title."""
    title, title_year = split_title_year(fields["title"])
    year = parse_year(fields["year"])
    if year is None and title_year is not None:
        tally.note("year taken from title")
        year = title_year
    elif year is None:
        year = _year(fields["year"], tally)
    return {"title": title or None, "year": year, "genres": split_genres(fields["genres"], " ")}


def _item_with_pipe_genres(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
    """1M ``movies.dat`` and latest ``movies.csv``: year in the title, genres ``A|B``."""
    title, year = _title_and_year(fields["title"], None, tally)
    return {"title": title or None, "year": year, "genres": split_genres(fields["genres"], "|")}


# ------------------------------------------------------------------- single-file parsers

_RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
_100K_ITEM_FIELDS = ("item_id", "title", "release_date", "video_release_date", "imdb_url",
                     *GENRES_100K)  # fmt: skip
_100K_USER_FIELDS = ("user_id", "age", "gender", "occupation", "zip_code")
_1M_USER_FIELDS = ("user_id", "gender", "age", "occupation", "zip_code")
_MOVIE_FIELDS = ("item_id", "title", "genres")

ATOMIC_INTER_COLUMNS = {
    "user_id": "user_id", "item_id": "item_id", "rating": "rating", "timestamp": "timestamp",
}  # fmt: skip
ATOMIC_ITEM_COLUMNS = {
    "item_id": "item_id", "title": "movie_title", "year": "release_year", "genres": "class",
}  # fmt: skip
ATOMIC_USER_COLUMNS = {name: name for name in _100K_USER_FIELDS}
LATEST_RATING_COLUMNS = {
    "user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp",
}  # fmt: skip
LATEST_MOVIE_COLUMNS = {"item_id": "movieId", "title": "title", "genres": "genres"}
LATEST_TAG_COLUMNS = {"user_id": "userId", "item_id": "movieId", "tag": "tag",
                      "timestamp": "timestamp"}  # fmt: skip
LATEST_LINK_COLUMNS = {"item_id": "movieId", "imdb_id": "imdbId", "tmdb_id": "tmdbId"}


@FORMATS.register("movielens-100k-data")
def read_100k_data(path: Path, report: ReadReport) -> pl.DataFrame:
    """``u.data`` (tab-separated user, item, rating, timestamp) as interactions."""
    tally = report.tally(path)
    return _read_ratings(_split_rows(path, tally, "\t", _RATING_FIELDS), tally, WHOLE_STARS)


@FORMATS.register("movielens-100k-item")
def read_100k_item(path: Path, report: ReadReport) -> pl.DataFrame:
    """``u.item`` (latin-1, ``|``-separated, 19 genre flags) as items."""
    tally = report.tally(path)
    rows = _split_rows(path, tally, "|", _100K_ITEM_FIELDS, encoding="latin-1")
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_100k)


@FORMATS.register("movielens-100k-user")
def read_100k_user(path: Path, report: ReadReport) -> pl.DataFrame:
    """``u.user`` (``user|age|gender|occupation|zip``) as users."""
    tally = report.tally(path)
    rows = _split_rows(path, tally, "|", _100K_USER_FIELDS)
    return _read_entities(rows, tally, "user_id", "user", USER_COLUMNS, _user_with_names)


@FORMATS.register("movielens-atomic-inter")
def read_atomic_inter(path: Path, report: ReadReport) -> pl.DataFrame:
    """RecBole ``.inter`` (header ``user_id:token item_id:token rating:float ...``)."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _tab_records(path), ATOMIC_INTER_COLUMNS, _atomic_name)
    return _read_ratings(rows, tally, WHOLE_STARS)


@FORMATS.register("movielens-atomic-item")
def read_atomic_item(path: Path, report: ReadReport) -> pl.DataFrame:
    """RecBole ``.item`` (``item_id movie_title release_year class``) as items."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _tab_records(path), ATOMIC_ITEM_COLUMNS, _atomic_name)
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_atomic)


@FORMATS.register("movielens-atomic-user")
def read_atomic_user(path: Path, report: ReadReport) -> pl.DataFrame:
    """RecBole ``.user`` (``user_id age gender occupation zip_code``) as users."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _tab_records(path), ATOMIC_USER_COLUMNS, _atomic_name)
    return _read_entities(rows, tally, "user_id", "user", USER_COLUMNS, _user_with_names)


@FORMATS.register("movielens-1m-ratings")
def read_1m_ratings(path: Path, report: ReadReport) -> pl.DataFrame:
    """``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) as interactions."""
    tally = report.tally(path)
    return _read_ratings(_split_rows(path, tally, "::", _RATING_FIELDS), tally, WHOLE_STARS)


@FORMATS.register("movielens-1m-movies")
def read_1m_movies(path: Path, report: ReadReport) -> pl.DataFrame:
    """``movies.dat`` (latin-1, ``MovieID::Title (Year)::Genre|Genre``) as items."""
    tally = report.tally(path)
    rows = _split_rows(path, tally, "::", _MOVIE_FIELDS, encoding="latin-1")
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_with_pipe_genres)


@FORMATS.register("movielens-1m-users")
def read_1m_users(path: Path, report: ReadReport) -> pl.DataFrame:
    """``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``) as users."""
    tally = report.tally(path)
    rows = _split_rows(path, tally, "::", _1M_USER_FIELDS)
    return _read_entities(rows, tally, "user_id", "user", USER_COLUMNS, _user_1m)


@FORMATS.register("movielens-latest-ratings")
def read_latest_ratings(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``ratings.csv`` (``userId,movieId,rating,timestamp``; half stars)."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _csv_records(path), LATEST_RATING_COLUMNS)
    return _read_ratings(rows, tally, HALF_STARS)


@FORMATS.register("movielens-latest-movies")
def read_latest_movies(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``movies.csv`` (``movieId,title,genres``, quoted titles) as items."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _csv_records(path), LATEST_MOVIE_COLUMNS)
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_with_pipe_genres)


def read_latest_tags(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``tags.csv``: one ``item_id, tag`` row per kept tag row (repeats included).

    A row with a missing user/movie id, an empty tag or a bad timestamp is quarantined.
    """
    tally = report.tally(path)
    items: list[str] = []
    tags: list[str] = []
    for line_number, raw, fields in _header_rows(
        path, tally, _csv_records(path), LATEST_TAG_COLUMNS
    ):
        stamp = _int(fields["timestamp"])
        if not fields["user_id"]:
            tally.quarantine(line_number, "user_id", "missing user id", raw)
        elif not fields["item_id"]:
            tally.quarantine(line_number, "item_id", "missing item id", raw)
        elif not fields["tag"]:
            tally.quarantine(line_number, "tag", "empty tag", raw)
        elif stamp is None or stamp < 0:
            tally.quarantine(line_number, "timestamp", "bad timestamp", raw)
        else:
            items.append(fields["item_id"])
            tags.append(fields["tag"])
            tally.keep()
    tally.check()
    return pl.DataFrame(
        {"item_id": items, "tag": tags}, schema={"item_id": pl.String(), "tag": pl.String()}
    )


def read_latest_links(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``links.csv`` as ``item_id, imdb_id (str, leading zeros kept), tmdb_id (int)``.

    An empty tmdbId is null with a note; a non-integer one, a non-numeric imdbId, or a
    missing/repeated movie id quarantines the row.
    """
    tally = report.tally(path)

    def convert(fields: Mapping[str, str], tally: FileTally) -> dict[str, Any]:
        imdb = fields["imdb_id"]
        if imdb and not imdb.isdigit():
            raise _RowError("imdbId", "bad imdbId")
        if not imdb:
            tally.note("missing imdbId")
        tmdb = _int(fields["tmdb_id"]) if fields["tmdb_id"] else None
        if fields["tmdb_id"] and (tmdb is None or tmdb < 0):
            raise _RowError("tmdbId", "bad tmdbId")
        if tmdb is None:
            tally.note("missing tmdbId")
        return {"imdb_id": imdb or None, "tmdb_id": tmdb}

    rows = _header_rows(path, tally, _csv_records(path), LATEST_LINK_COLUMNS)
    schema = {"item_id": pl.String(), "imdb_id": pl.String(), "tmdb_id": pl.Int64()}
    return _read_entities(rows, tally, "item_id", "item", schema, convert)


# ------------------------------------------------------------------------------ sources


def _add_bare_rows(table: pl.DataFrame, id_column: str, ids: Sequence[str]) -> pl.DataFrame:
    """``table`` plus one row with only ``id_column`` set for each id in ``ids``."""
    if not ids:
        return table
    bare = pl.DataFrame({id_column: list(ids)}, schema={id_column: pl.String()})
    return pl.concat([table, bare], how="diagonal")


def _unknown(ids: pl.Series, known: pl.Series) -> tuple[int, list[str]]:
    """How many of ``ids`` are not in ``known``, and those ids once each in first-seen order."""
    missing = ids.filter(~ids.is_in(known.implode()))
    return missing.len(), missing.unique(maintain_order=True).to_list()


def _with_referenced(
    table: pl.DataFrame, id_column: str, ids: pl.Series, tally: FileTally, what: str
) -> pl.DataFrame:
    """Add a bare row for every id of ``ids`` not in ``table``, noting each reference."""
    count, unknown = _unknown(ids, table[id_column])
    if count:
        tally.note(what, count)
    return _add_bare_rows(table, id_column, unknown)


RoleParser = tuple[str, Callable[[Path, ReadReport], pl.DataFrame]]
"""A file role and the single-file parser that reads it."""


class _MovieLensSource(Source):
    """Shared ``load``: read items, users and ratings, then link them.

    Ratings of items/users missing from their files are kept with a note on the ratings
    file, and a bare item/user row is added. Without a users file the users table is the
    user ids seen in the ratings, in first-seen order.
    """

    ratings: ClassVar[RoleParser]
    items: ClassVar[RoleParser]
    users: ClassVar[RoleParser | None] = None

    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse the files (role -> path) into canonical tables."""
        self.check_files(files)
        paths = {role: Path(path) for role, path in files.items()}
        (items_role, read_items), (ratings_role, read_ratings) = self.items, self.ratings
        items = read_items(paths[items_role], report)
        users = None if self.users is None else self.users[1](paths[self.users[0]], report)
        interactions = read_ratings(paths[ratings_role], report)
        tally = report.tally(paths[ratings_role])
        items = _with_referenced(
            items, "item_id", interactions["item_id"], tally, "rating for unknown item"
        )
        if users is None:
            seen = interactions["user_id"].unique(maintain_order=True).to_list()
            users = pl.DataFrame({"user_id": seen}, schema={"user_id": pl.String()})
        else:
            users = _with_referenced(
                users, "user_id", interactions["user_id"], tally, "rating for unknown user"
            )
        items = self.extend_items(items, paths, report)
        return CanonicalTables(users=users, items=items, interactions=interactions)

    def extend_items(
        self, items: pl.DataFrame, paths: Mapping[str, Path], report: ReadReport
    ) -> pl.DataFrame:
        """Hook for optional item files (latest-small tags and links)."""
        return items


@SOURCES.register("movielens-100k")
class MovieLens100KSource(_MovieLensSource):
    """The official ml-100k zip: ``u.data``, ``u.item`` (latin-1), ``u.user``."""

    roles = ("data", "item", "user")
    ratings = ("data", read_100k_data)
    items = ("item", read_100k_item)
    users = ("user", read_100k_user)


@SOURCES.register("movielens-atomic")
class MovieLensAtomicSource(_MovieLensSource):
    """RecBole atomic files (``ml-100k.inter/.item/.user`` from the ``recbole`` wheel)."""

    roles = ("inter", "item", "user")
    ratings = ("inter", read_atomic_inter)
    items = ("item", read_atomic_item)
    users = ("user", read_atomic_user)


@SOURCES.register("movielens-1m")
class MovieLens1MSource(_MovieLensSource):
    """The official ml-1m zip: ``ratings.dat``, ``movies.dat`` (latin-1), ``users.dat``."""

    roles = ("ratings", "movies", "users")
    ratings = ("ratings", read_1m_ratings)
    items = ("movies", read_1m_movies)
    users = ("users", read_1m_users)


@SOURCES.register("movielens-latest-small")
class MovieLensLatestSmallSource(_MovieLensSource):
    """ml-latest-small: ``ratings.csv``, ``movies.csv``, optional ``tags.csv``/``links.csv``.

    Tags become the item column ``tags`` (list, deduplicated in first-seen order; empty for
    untagged movies), links the columns ``imdb_id`` (string) and ``tmdb_id`` (int). Tags or
    links of movies missing from ``movies.csv`` are kept with a note and a bare item row.
    """

    roles = ("ratings", "movies")
    optional_roles = ("tags", "links")
    ratings = ("ratings", read_latest_ratings)
    items = ("movies", read_latest_movies)

    def extend_items(
        self, items: pl.DataFrame, paths: Mapping[str, Path], report: ReadReport
    ) -> pl.DataFrame:
        """Add the ``tags`` and ``imdb_id``/``tmdb_id`` columns when those files are given."""
        if "tags" in paths:
            tags = read_latest_tags(paths["tags"], report)
            items = _with_referenced(
                items, "item_id", tags["item_id"], report.tally(paths["tags"]),
                "tag for unknown item",
            )  # fmt: skip
            by_item: dict[str, dict[str, None]] = {}
            for item, tag in zip(tags["item_id"], tags["tag"], strict=True):
                by_item.setdefault(item, {})[tag] = None
            column = [list(by_item.get(item, ())) for item in items["item_id"]]
            items = items.with_columns(pl.Series("tags", column, dtype=pl.List(pl.String())))
        if "links" in paths:
            links = read_latest_links(paths["links"], report)
            items = _with_referenced(
                items, "item_id", links["item_id"], report.tally(paths["links"]),
                "link for unknown item",
            )  # fmt: skip
            rows = {row["item_id"]: row for row in links.iter_rows(named=True)}
            ids = items["item_id"].to_list()
            imdb = [rows[i]["imdb_id"] if i in rows else None for i in ids]
            tmdb = [rows[i]["tmdb_id"] if i in rows else None for i in ids]
            items = items.with_columns(
                pl.Series("imdb_id", imdb, dtype=pl.String()),
                pl.Series("tmdb_id", tmdb, dtype=pl.Int64()),
            )
        return items
