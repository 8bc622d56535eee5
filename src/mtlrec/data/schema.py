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
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
