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
scale (out of range, or not a whole/half star), a non-integer timestamp or one outside
1970..2100, or a repeated (user, item) pair (the later row). A rating whose user or item
is missing from the user/item file is kept with a note, and a bare user/item row is added
so nothing is lost.
Item and user rows are quarantined for a missing or duplicate id and for bad attribute values;
an unreadable year is set to null with a note instead.

Layout column names are mapped to canonical keys (``user_id``, ``item_id``, ``rating``,
``timestamp``, ...) right after splitting, so one validator serves every layout.

The package has one module per component: :mod:`~mtlrec.data.sources.movielens.common`
(code tables, star scales, title/year/genre helpers),
:mod:`~mtlrec.data.sources.movielens.rows` (row readers and the rating and item/user
validators), :mod:`~mtlrec.data.sources.movielens.formats` (the single-file parsers
registered in ``FORMATS``) and :mod:`~mtlrec.data.sources.movielens.layouts` (the
sources registered in ``SOURCES``). Importing the package imports all of them, so both
registries are complete.
"""

from __future__ import annotations

from mtlrec.data.sources.movielens.common import GENDERS as GENDERS
from mtlrec.data.sources.movielens.common import (
    GENRES_100K,
    HALF_STARS,
    ML1M_AGES,
    ML1M_OCCUPATIONS,
    WHOLE_STARS,
    StarScale,
    genres_from_flags,
    parse_year,
    split_genres,
    split_title_year,
)
from mtlrec.data.sources.movielens.common import ITEM_COLUMNS as ITEM_COLUMNS
from mtlrec.data.sources.movielens.common import MAX_AGE as MAX_AGE
from mtlrec.data.sources.movielens.common import MAX_YEAR as MAX_YEAR
from mtlrec.data.sources.movielens.common import MIN_YEAR as MIN_YEAR
from mtlrec.data.sources.movielens.common import NO_GENRES as NO_GENRES
from mtlrec.data.sources.movielens.common import USER_COLUMNS as USER_COLUMNS
from mtlrec.data.sources.movielens.formats import ATOMIC_INTER_COLUMNS as ATOMIC_INTER_COLUMNS
from mtlrec.data.sources.movielens.formats import ATOMIC_ITEM_COLUMNS as ATOMIC_ITEM_COLUMNS
from mtlrec.data.sources.movielens.formats import ATOMIC_USER_COLUMNS as ATOMIC_USER_COLUMNS
from mtlrec.data.sources.movielens.formats import LATEST_LINK_COLUMNS as LATEST_LINK_COLUMNS
from mtlrec.data.sources.movielens.formats import LATEST_MOVIE_COLUMNS as LATEST_MOVIE_COLUMNS
from mtlrec.data.sources.movielens.formats import LATEST_RATING_COLUMNS as LATEST_RATING_COLUMNS
from mtlrec.data.sources.movielens.formats import LATEST_TAG_COLUMNS as LATEST_TAG_COLUMNS
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
from mtlrec.data.sources.movielens.layouts import (
    MovieLens1MSource,
    MovieLens100KSource,
    MovieLensAtomicSource,
    MovieLensLatestSmallSource,
)
from mtlrec.data.sources.movielens.layouts import RoleParser as RoleParser
from mtlrec.data.sources.movielens.rows import Converter as Converter
from mtlrec.data.sources.movielens.rows import Row as Row

# Names imported ``X as X`` above were importable from the single-module version and stay
# so, but are not in ``__all__``.
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
