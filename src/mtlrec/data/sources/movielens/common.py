"""What every MovieLens layout shares: the documented code tables (100K genre flags, 1M
age and occupation codes), the canonical item/user column types, the star scales
(:class:`StarScale`, whole and half stars), the title/year/genre helpers, and the small
value parsers whose failures become :class:`_RowError` (a row quarantined with a field
and reason).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from mtlrec.data.read_report import FileTally

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
