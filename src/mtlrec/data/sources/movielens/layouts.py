"""The MovieLens layouts registered in ``SOURCES`` (100K, RecBole atomic, 1M and
latest-small): the shared :class:`_MovieLensSource` loader reads the items, users and
ratings files with their single-file parsers and links them, adding a bare item/user row
(with a note) for every id referenced but missing from its file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import polars as pl

from mtlrec.data.read_report import FileTally, ReadReport
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.sources.base import SOURCES, Source
from mtlrec.data.sources.movielens.formats import (
    read_1m_movies,
    read_1m_ratings,
    read_1m_users,
    read_100k_data,
    read_100k_item,
    read_100k_user,
    read_atomic_inter,
    read_atomic_item,
    read_atomic_user,
    read_latest_links,
    read_latest_movies,
    read_latest_ratings,
    read_latest_tags,
)


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
