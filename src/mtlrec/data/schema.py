"""The canonical data model: four tables every source is parsed into.

=============  ===================================================================
table          columns (canonical ones always present, in this order; extras follow)
=============  ===================================================================
users          user_id: str; then source attributes (age, gender, occupation, ...)
items          item_id: str, title: str, description: str, categories: list[str],
               brand: str, price: f64, year: i32, genres: list[str]; then extras
interactions   interaction_id: i64, user_id: str, item_id: str, timestamp: i64 (unix
               seconds, null when the source has none), event: str (one of
               ``EVENT_TYPES``), value: f64 (stars for ratings/reviews, 1.0 otherwise)
reviews        interaction_id: i64 (the review's row in interactions), user_id, item_id,
               timestamp, stars: f64, text: str (null when empty), summary: str,
               helpful_up: i64, helpful_total: i64, has_text: bool
=============  ===================================================================

Ids are kept as the source spells them (strings); integer indices are assigned later by
vocabularies fitted on the training split only (:mod:`mtlrec.data.features`).

Numeric columns have declared ranges (:data:`COLUMN_RANGES`): stars 1..5, timestamps
between 1970-01-01 and 2100-01-01 UTC, prices and interaction values >= 0, years
1800..2100, vote counts >= 0; every integer column also fits in an Int64. Sources
quarantine a row whose value falls outside its column's range, with the reason
:meth:`ValueRange.reason` gives (the tabular source lets a mapping widen or narrow them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import polars as pl

EVENT_TYPES: tuple[str, ...] = ("rating", "review", "view", "cart", "purchase")
"""Allowed values of ``interactions.event``."""

USER_SCHEMA: dict[str, pl.DataType] = {"user_id": pl.String()}

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "categories": pl.List(pl.String()),
    "brand": pl.String(),
    "price": pl.Float64(),
    "year": pl.Int32(),
    "genres": pl.List(pl.String()),
}

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "interaction_id": pl.Int64(),
    "user_id": pl.String(),
    "item_id": pl.String(),
    "timestamp": pl.Int64(),
    "event": pl.String(),
    "value": pl.Float64(),
}

REVIEW_SCHEMA: dict[str, pl.DataType] = {
    "interaction_id": pl.Int64(),
    "user_id": pl.String(),
    "item_id": pl.String(),
    "timestamp": pl.Int64(),
    "stars": pl.Float64(),
    "text": pl.String(),
    "summary": pl.String(),
    "helpful_up": pl.Int64(),
    "helpful_total": pl.Int64(),
    "has_text": pl.Boolean(),
}

TABLE_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "users": USER_SCHEMA,
    "items": ITEM_SCHEMA,
    "interactions": INTERACTION_SCHEMA,
    "reviews": REVIEW_SCHEMA,
}

INT64_MIN: int = -(2**63)
INT64_MAX: int = 2**63 - 1
"""The bounds of an Int64 column: a larger integer can never be stored."""


@dataclass(frozen=True)
class ValueRange:
    """The closed interval ``[low, high]`` a numeric column's values must lie in.

    ``None`` leaves that side open. ``dates=True`` reads the bounds as unix seconds and
    names them as UTC dates in :meth:`reason`. NaN and infinities are never in range.
    """

    low: float | None = None
    high: float | None = None
    dates: bool = False

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"empty range: low {self.low} > high {self.high}")

    def contains(self, value: float) -> bool:
        """Whether ``value`` is finite and within the bounds (integers of any size compare
        exactly)."""
        if not isinstance(value, int) and not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """The bounds as text: ``"1..5"``, ``">= 0"``, ``"<= 10"`` or ``"any finite number"``."""
        low, high = (None if b is None else self._text(b) for b in (self.low, self.high))
        if low is not None and high is not None:
            return f"{low}..{high}"
        if low is not None:
            return f">= {low}"
        if high is not None:
            return f"<= {high}"
        return "any finite number"

    def reason(self, column: str) -> str:
        """The quarantine reason of a value of ``column`` outside this range."""
        return f"{column} out of range ({self.describe()})"

    def intersect(self, other: ValueRange) -> ValueRange:
        """The values in both ranges (``dates`` kept from ``self``)."""
        lows = [b for b in (self.low, other.low) if b is not None]
        highs = [b for b in (self.high, other.high) if b is not None]
        return ValueRange(
            max(lows) if lows else None, min(highs) if highs else None, dates=self.dates
        )

    def _text(self, bound: float) -> str:
        if self.dates:
            return datetime.fromtimestamp(bound, UTC).strftime("%Y-%m-%d")
        if isinstance(bound, int) or bound.is_integer():
            return str(int(bound))
        return f"{bound:g}"


TIMESTAMP_RANGE = ValueRange(0, 4_102_444_800, dates=True)
"""Event times: from 1970-01-01 up to 2100-01-01 UTC (unix seconds; milliseconds fall out)."""
STARS_RANGE = ValueRange(1.0, 5.0)
"""Review stars: 1..5."""
COUNT_RANGE = ValueRange(0, INT64_MAX)
"""Vote counts: non-negative integers."""

COLUMN_RANGES: dict[str, dict[str, ValueRange]] = {
    "users": {},
    "items": {"price": ValueRange(0.0, None), "year": ValueRange(1800, 2100)},
    "interactions": {"timestamp": TIMESTAMP_RANGE, "value": ValueRange(0.0, None)},
    "reviews": {
        "timestamp": TIMESTAMP_RANGE,
        "stars": STARS_RANGE,
        "helpful_up": COUNT_RANGE,
        "helpful_total": COUNT_RANGE,
    },
}
"""The declared range of every bounded numeric column, per canonical table."""


_STORED_INTEGERS: dict[pl.DataType, ValueRange] = {
    pl.Int64(): ValueRange(INT64_MIN, INT64_MAX),
    pl.Int32(): ValueRange(-(2**31), 2**31 - 1),
}


def storage_range(table: str, column: str) -> ValueRange | None:
    """The values an integer column of ``table`` can hold (``None`` for other columns)."""
    dtype = TABLE_SCHEMAS[table].get(column)
    return None if dtype is None else _STORED_INTEGERS.get(dtype)


def range_problem(table: str, column: str, value: float) -> str | None:
    """The quarantine reason when ``value`` is outside ``table.column``'s declared range.

    ``None`` when it is inside, or when the column declares no range.
    """
    bounds = COLUMN_RANGES[table].get(column)
    if bounds is None or bounds.contains(value):
        return None
    return bounds.reason(column)


DatasetKind = Literal["interactions", "tabular"]


def conform(frame: pl.DataFrame | None, table: str) -> pl.DataFrame:
    """Return ``frame`` with every canonical column of ``table`` present and typed.

    Missing canonical columns are added as nulls, canonical columns come first in schema
    order, extra (source-specific) columns follow unchanged. ``None`` gives an empty table.
    """
    schema = TABLE_SCHEMAS[table]
    if frame is None:
        return pl.DataFrame(schema=schema)
    columns = []
    for name, dtype in schema.items():
        if name in frame.columns:
            columns.append(pl.col(name).cast(dtype, strict=True))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    extras = [pl.col(c) for c in frame.columns if c not in schema]
    return frame.select(columns + extras)


@dataclass
class CanonicalTables:
    """The four canonical tables of one dataset, as parsed from its raw files.

    ``kind`` is ``"interactions"`` for user-item data and ``"tabular"`` for datasets whose
    examples are rows of the users table (census-income): those are split by row.
    """

    users: pl.DataFrame = field(default_factory=lambda: conform(None, "users"))
    items: pl.DataFrame = field(default_factory=lambda: conform(None, "items"))
    interactions: pl.DataFrame = field(default_factory=lambda: conform(None, "interactions"))
    reviews: pl.DataFrame = field(default_factory=lambda: conform(None, "reviews"))
    kind: DatasetKind = "interactions"

    def __post_init__(self) -> None:
        self.users = conform(self.users, "users")
        self.items = conform(self.items, "items")
        self.interactions = conform(self.interactions, "interactions")
        self.reviews = conform(self.reviews, "reviews")
        bad = set(self.interactions["event"].drop_nulls().unique().to_list()) - set(EVENT_TYPES)
        if bad:
            raise ValueError(f"unknown event types {sorted(bad)}; allowed: {EVENT_TYPES}")

    def tables(self) -> dict[str, pl.DataFrame]:
        """The tables by name, in a fixed order."""
        return {
            "users": self.users,
            "items": self.items,
            "interactions": self.interactions,
            "reviews": self.reviews,
        }

    def counts(self) -> dict[str, int]:
        """Row counts of every table."""
        return {name: frame.height for name, frame in self.tables().items()}
