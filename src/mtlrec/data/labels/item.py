"""Item-level label builders from the items table: ``category`` and ``genres``
(multilabel, from a list column), ``brand`` (multiclass) and ``price_bucket`` (multiclass,
quantile buckets). Vocabularies and bucket edges are fitted on the items that occur in
TRAIN interactions only; the mask is False where an item's attribute is missing or not a
class.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mtlrec.data.features import QuantileBucketizer, Vocabulary
from mtlrec.data.labels.base import (
    LABEL_BUILDERS,
    TaskLabels,
    _clean_strings,
    _finish,
    _item_attributes,
    _train_items,
)
from mtlrec.data.schema import CanonicalTables


@LABEL_BUILDERS.register("category")
@dataclass(frozen=True)
class CategoryLabels:
    """Multilabel, item level, from a list column of the items table.

    The classes are the values seen on items that occur in TRAIN interactions, at least
    ``min_count`` times (each item counted once), at most ``max_classes`` (most frequent
    first). With ``drop_universal`` a class found on every such item (a root category like
    "Magazine Subscriptions") is dropped too. Unseen classes are dropped; the mask is False
    where an item has no known class (no categories, no metadata, or only unseen ones).
    """

    column: str = "categories"
    min_count: int = 1
    max_classes: int | None = None
    drop_universal: bool = False
    task: str = "category"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        attributes = _item_attributes(tables, split_frame, self.column)
        exploded = (
            attributes.with_columns(pl.col(self.column).list.unique())
            .explode(self.column)
            .with_columns(_clean_strings(pl.col(self.column)).alias(self.column))
            .drop_nulls(self.column)
            .unique(["item_id", self.column])
        )
        train_items = _train_items(split_frame).implode()
        train = exploded.filter(pl.col("item_id").is_in(train_items))
        values = train[self.column]
        if self.drop_universal:
            n_items = train["item_id"].n_unique()
            universal = train.group_by(self.column).len().filter(pl.col("len") >= n_items)
            values = values.filter(~values.is_in(universal[self.column].implode()))
        vocab = Vocabulary.fit(values, min_count=self.min_count, max_size=self.max_classes)
        known = (
            exploded.with_columns(_class=vocab.encode_expr(self.column) - 1)
            .filter(pl.col("_class") >= 0)
            .group_by("item_id")
            .agg(pl.col("_class").sort().alias(self.task))
        )
        frame = attributes.select("item_id").join(
            known, on="item_id", how="left", maintain_order="left"
        )
        frame = _finish(frame, self.task, "multilabel", pl.col(self.task).is_not_null())
        return [
            TaskLabels(
                self.task,
                "multilabel",
                "item",
                ("item_id",),
                frame,
                list(vocab.tokens[1:]),
                source_columns=(f"items.{self.column}",),
            )
        ]


@LABEL_BUILDERS.register("genres")
@dataclass(frozen=True)
class GenreLabels(CategoryLabels):
    """Multilabel, item level, from ``items.genres`` (MovieLens); see CategoryLabels."""

    column: str = "genres"
    task: str = "genres"


@LABEL_BUILDERS.register("brand")
@dataclass(frozen=True)
class BrandLabels:
    """Multiclass, item level: the item's brand among the train items' brands.

    Classes: brands of items occurring in TRAIN interactions, seen on at least
    ``min_count`` items, the ``top_n`` most frequent (all when None). The mask is False
    where the brand is missing or not a class.
    """

    top_n: int | None = None
    min_count: int = 1
    column: str = "brand"
    task: str = "brand"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        attributes = _item_attributes(tables, split_frame, self.column).with_columns(
            _clean_strings(pl.col(self.column)).alias(self.column)
        )
        train = attributes.filter(pl.col("item_id").is_in(_train_items(split_frame).implode()))
        vocab = Vocabulary.fit(train[self.column], min_count=self.min_count, max_size=self.top_n)
        frame = attributes.with_columns((vocab.encode_expr(self.column) - 1).alias(self.task))
        frame = _finish(frame, self.task, "multiclass", pl.col(self.task) >= 0)
        frame = frame.select("item_id", self.task, f"{self.task}_mask")
        return [
            TaskLabels(
                self.task,
                "multiclass",
                "item",
                ("item_id",),
                frame,
                list(vocab.tokens[1:]),
                source_columns=(f"items.{self.column}",),
            )
        ]


@LABEL_BUILDERS.register("price_bucket")
@dataclass(frozen=True)
class PriceBucketLabels:
    """Multiclass, item level: quantile bucket of the price, edges fitted on train items.

    The mask is False where the price is null (or NaN). Raises ``ValueError`` when no item
    of the train split has a price.
    """

    n_buckets: int = 5
    column: str = "price"
    task: str = "price_bucket"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        attributes = _item_attributes(tables, split_frame, self.column).with_columns(
            pl.col(self.column).cast(pl.Float64()).fill_nan(None)
        )
        train = attributes.filter(pl.col("item_id").is_in(_train_items(split_frame).implode()))
        prices = train[self.column].drop_nulls()
        if prices.len() == 0:
            raise ValueError(
                f"{self.task}: no item in the train split has a {self.column}; "
                "this dataset cannot have price-bucket labels"
            )
        bucketizer = QuantileBucketizer.fit(prices, self.n_buckets)
        buckets = pl.Series(self.task, bucketizer.transform(attributes[self.column]))
        frame = attributes.with_columns(buckets)
        frame = _finish(frame, self.task, "multiclass", pl.col(self.task) >= 0)
        frame = frame.select("item_id", self.task, f"{self.task}_mask")
        return [
            TaskLabels(
                self.task,
                "multiclass",
                "item",
                ("item_id",),
                frame,
                bucketizer.labels(),
                source_columns=(f"items.{self.column}",),
            )
        ]
