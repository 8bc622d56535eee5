"""The single-file MovieLens parsers, each registered in ``FORMATS``: ``u.data``,
``u.item``, ``u.user`` (100K), the RecBole atomic ``.inter``/``.item``/``.user``,
``ratings.dat``, ``movies.dat``, ``users.dat`` (1M) and latest-small's ``ratings.csv`` and
``movies.csv``, plus the unregistered ``tags.csv`` and ``links.csv`` readers; with the
per-layout field names and the converters that turn item/user fields into column values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from mtlrec.data.read_report import FileTally, ReadReport
from mtlrec.data.schema import INT64_MAX, TIMESTAMP_RANGE
from mtlrec.data.sources.base import FORMATS
from mtlrec.data.sources.movielens.common import (
    GENDERS,
    GENRES_100K,
    HALF_STARS,
    ITEM_COLUMNS,
    MAX_AGE,
    ML1M_AGES,
    ML1M_OCCUPATIONS,
    USER_COLUMNS,
    WHOLE_STARS,
    _int,
    _optional,
    _RowError,
    _title_and_year,
    _year,
    genres_from_flags,
    parse_year,
    split_genres,
    split_title_year,
)
from mtlrec.data.sources.movielens.rows import (
    _atomic_name,
    _csv_records,
    _header_rows,
    _read_entities,
    _read_ratings,
    _split_rows,
    _tab_records,
)

# ------------------------------------------------------------------ item/user converters


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
    rows = _header_rows(path, tally, _tab_records(path, tally), ATOMIC_INTER_COLUMNS, _atomic_name)
    return _read_ratings(rows, tally, WHOLE_STARS)


@FORMATS.register("movielens-atomic-item")
def read_atomic_item(path: Path, report: ReadReport) -> pl.DataFrame:
    """RecBole ``.item`` (``item_id movie_title release_year class``) as items."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _tab_records(path, tally), ATOMIC_ITEM_COLUMNS, _atomic_name)
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_atomic)


@FORMATS.register("movielens-atomic-user")
def read_atomic_user(path: Path, report: ReadReport) -> pl.DataFrame:
    """RecBole ``.user`` (``user_id age gender occupation zip_code``) as users."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _tab_records(path, tally), ATOMIC_USER_COLUMNS, _atomic_name)
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
    rows = _header_rows(path, tally, _csv_records(path, tally), LATEST_RATING_COLUMNS)
    return _read_ratings(rows, tally, HALF_STARS)


@FORMATS.register("movielens-latest-movies")
def read_latest_movies(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``movies.csv`` (``movieId,title,genres``, quoted titles) as items."""
    tally = report.tally(path)
    rows = _header_rows(path, tally, _csv_records(path, tally), LATEST_MOVIE_COLUMNS)
    return _read_entities(rows, tally, "item_id", "item", ITEM_COLUMNS, _item_with_pipe_genres)


def read_latest_tags(path: Path, report: ReadReport) -> pl.DataFrame:
    """latest ``tags.csv``: one ``item_id, tag`` row per kept tag row (repeats included).

    A row with a missing user/movie id, an empty tag or a bad timestamp is quarantined.
    """
    tally = report.tally(path)
    items: list[str] = []
    tags: list[str] = []
    for line_number, raw, fields in _header_rows(
        path, tally, _csv_records(path, tally), LATEST_TAG_COLUMNS
    ):
        stamp = _int(fields["timestamp"])
        if not fields["user_id"]:
            tally.quarantine(line_number, "user_id", "missing user id", raw)
        elif not fields["item_id"]:
            tally.quarantine(line_number, "item_id", "missing item id", raw)
        elif not fields["tag"]:
            tally.quarantine(line_number, "tag", "empty tag", raw)
        elif stamp is None:
            tally.quarantine(line_number, "timestamp", "bad timestamp", raw)
        elif not TIMESTAMP_RANGE.contains(stamp):
            tally.quarantine(line_number, "timestamp", TIMESTAMP_RANGE.reason("timestamp"), raw)
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
        if fields["tmdb_id"] and (tmdb is None or not 0 <= tmdb <= INT64_MAX):
            raise _RowError("tmdbId", "bad tmdbId")
        if tmdb is None:
            tally.note("missing tmdbId")
        return {"imdb_id": imdb or None, "tmdb_id": tmdb}

    rows = _header_rows(path, tally, _csv_records(path, tally), LATEST_LINK_COLUMNS)
    schema = {"item_id": pl.String(), "imdb_id": pl.String(), "tmdb_id": pl.Int64()}
    return _read_entities(rows, tally, "item_id", "item", schema, convert)
