"""Task labels built from the canonical tables, each with a mask where it is unknown.

A builder (registered in :data:`LABEL_BUILDERS`, constructed with explicit keyword
arguments that are stored untouched) turns the tables plus the split frame into one or
more :class:`TaskLabels`. The keyword ``task`` names the task (so a config can say
``{"name": "like", "params": {"threshold": 4.5, "task": "loved"}}``); ``behaviour`` makes
one task per behaviour. The split frame is the interactions table with its ``split``
column, or, for tabular datasets, the users table with its ``split`` column.

Every label frame holds the key columns, ``split`` (interaction, pair and tabular user
level), the value column ``<name>`` and the boolean ``<name>_mask``; the value is null
exactly where the mask is False. Value types by kind:

===========  ==================================================================
binary       Int8 0/1
multiclass   Int64 index into ``classes``
multilabel   List[Int64] of sorted indices into ``classes`` (see :func:`multi_hot`)
regression   Float64
===========  ==================================================================

Vocabularies of classes (categories, brands, genres) and price buckets are fitted on the
items that occur in TRAIN interactions only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl

from mtlrec.core.registry import Registry
from mtlrec.data.features import QuantileBucketizer, Vocabulary
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.split import SPLIT_COLUMN, SPLIT_NAMES

TaskKind = Literal["binary", "multiclass", "multilabel", "regression"]
TaskLevel = Literal["interaction", "item", "user", "pair"]

TASK_KINDS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")
TASK_LEVELS: tuple[str, ...] = ("interaction", "item", "user", "pair")
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "interaction": ("interaction_id",),
    "item": ("item_id",),
    "user": ("user_id",),
    "pair": ("user_id", "item_id"),
}
VALUE_DTYPES: dict[str, pl.DataType] = {
    "binary": pl.Int8(),
    "multiclass": pl.Int64(),
    "multilabel": pl.List(pl.Int64()),
    "regression": pl.Float64(),
}
RATED_EVENTS: tuple[str, ...] = ("rating", "review")
SENTIMENT_CLASSES: list[str] = ["negative", "neutral", "positive"]


@dataclass(frozen=True)
class TaskLabels:
    """The labels of one task.

    ``frame`` has the ``keys`` columns, optionally ``split``, then ``<name>`` and
    ``<name>_mask`` (Boolean, True where the label is known).
    """

    name: str
    kind: TaskKind
    level: TaskLevel
    keys: tuple[str, ...]
    frame: pl.DataFrame
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} not in {TASK_KINDS}")
        if self.level not in TASK_LEVELS:
            raise ValueError(f"task {self.name!r}: level {self.level!r} not in {TASK_LEVELS}")
        if self.name in (*self.keys, SPLIT_COLUMN) or self.name.endswith("_mask"):
            raise ValueError(f"task name {self.name!r} clashes with a reserved column")
        needed = [*self.keys, self.name, self.mask_column]
        missing = [c for c in needed if c not in self.frame.columns]
        if missing:
            raise ValueError(f"task {self.name!r}: frame lacks columns {missing}")
        if self.frame.schema[self.mask_column] != pl.Boolean():
            raise ValueError(f"task {self.name!r}: {self.mask_column} must be Boolean")
        if self.kind in ("multiclass", "multilabel") and self.classes is None:
            raise ValueError(f"task {self.name!r}: a {self.kind} task needs classes")

    @property
    def mask_column(self) -> str:
        return f"{self.name}_mask"

    @property
    def n_known(self) -> int:
        """Number of rows whose label is known."""
        return int(self.frame[self.mask_column].sum())

    def known_per_split(self) -> dict[str, int] | None:
        """Known labels per split (None when the frame has no ``split`` column)."""
        if SPLIT_COLUMN not in self.frame.columns:
            return None
        counts = self.frame.group_by(SPLIT_COLUMN).agg(pl.col(self.mask_column).sum())
        found = {str(s): int(n) for s, n in counts.iter_rows() if s is not None}
        return {s: found.get(s, 0) for s in SPLIT_NAMES}

    def positives_per_split(self) -> dict[str, int] | None:
        """Positive labels per split for binary tasks with a ``split`` column, else None."""
        if self.kind != "binary" or SPLIT_COLUMN not in self.frame.columns:
            return None
        counts = self.frame.group_by(SPLIT_COLUMN).agg((pl.col(self.name) == 1).sum())
        found = {str(s): int(n) for s, n in counts.iter_rows() if s is not None}
        return {s: found.get(s, 0) for s in SPLIT_NAMES}

    def describe(self) -> dict[str, Any]:
        """The task's entry in ``tasks.json``."""
        info: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "level": self.level,
            "keys": list(self.keys),
            "classes": self.classes,
            "rows": self.frame.height,
            "known": self.n_known,
        }
        per_split = self.known_per_split()
        if per_split is not None:
            info["known_per_split"] = per_split
        positives = self.positives_per_split()
        if positives is not None:
            info["positives_per_split"] = positives
        return info


class LabelBuilder(Protocol):
    """What every registered label builder provides."""

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        """Build this builder's task(s) from ``tables`` and the split frame."""
        ...


LABEL_BUILDERS: Registry[type[LabelBuilder]] = Registry("label builder")
"""Label builders by name: like, rating, sentiment, category, genres, brand,
price_bucket, behaviour, tabular_binary."""


# --------------------------------------------------------------------------- helpers


def multi_hot(values: pl.Series, n_classes: int) -> np.ndarray:
    """Dense ``(rows, n_classes)`` float32 matrix from a multilabel value column.

    Null rows (unknown labels) become all-zero rows; use the mask to ignore them.
    """
    offsets_frame = pl.DataFrame({"v": values}).with_row_index("row").explode("v").drop_nulls()
    matrix = np.zeros((values.len(), n_classes), dtype=np.float32)
    rows = offsets_frame["row"].to_numpy().astype(np.int64)
    cols = offsets_frame["v"].to_numpy().astype(np.int64)
    matrix[rows, cols] = 1.0
    return matrix


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; the frame has {frame.columns}")


def _with_split(columns: Sequence[str], frame: pl.DataFrame) -> list[str]:
    return [*columns, SPLIT_COLUMN] if SPLIT_COLUMN in frame.columns else list(columns)


def _finish(frame: pl.DataFrame, name: str, kind: str, known: pl.Expr) -> pl.DataFrame:
    """Cast the value column, set the mask, and null the value where the mask is False."""
    dtype = VALUE_DTYPES[kind]
    frame = frame.with_columns(known.fill_null(False).alias(f"{name}_mask"))
    return frame.with_columns(
        pl.when(pl.col(f"{name}_mask")).then(pl.col(name)).otherwise(None).cast(dtype).alias(name)
    )


def _select_task(frame: pl.DataFrame, keys: Sequence[str], task: str) -> pl.DataFrame:
    """Keys, ``split`` when present, the value and the mask, in that order."""
    return frame.select(_with_split(keys, frame) + [task, f"{task}_mask"])


def _stars(tables: CanonicalTables, split_frame: pl.DataFrame) -> pl.DataFrame:
    """Per interaction: ``interaction_id``, ``split``, ``stars`` and ``has_text``.

    Stars come from the reviews table (joined by interaction_id) and fall back to the
    interaction's value for rating/review events; null when neither is known.
    """
    _require(split_frame, ["interaction_id", "event", "value"], "rating-based labels")
    reviews = tables.reviews.select(
        "interaction_id",
        pl.col("stars").alias("_review_stars"),
        pl.coalesce(pl.col("has_text"), pl.col("text").str.strip_chars().str.len_chars() > 0).alias(
            "has_text"
        ),
    ).unique("interaction_id", keep="first")
    rated_value = pl.when(pl.col("event").is_in(list(RATED_EVENTS))).then(pl.col("value"))
    return (
        split_frame.select(_with_split(["interaction_id", "event", "value"], split_frame))
        .join(reviews, on="interaction_id", how="left", maintain_order="left")
        .with_columns(
            stars=pl.coalesce(pl.col("_review_stars"), rated_value).fill_nan(None),
            has_text=pl.col("has_text").fill_null(False),
        )
        .select(_with_split(["interaction_id"], split_frame) + ["stars", "has_text"])
    )


def _train_items(split_frame: pl.DataFrame) -> pl.Series:
    _require(split_frame, ["item_id", SPLIT_COLUMN], "item labels")
    return split_frame.filter(pl.col(SPLIT_COLUMN) == "train")["item_id"].unique()


def _item_attributes(
    tables: CanonicalTables, split_frame: pl.DataFrame, column: str
) -> pl.DataFrame:
    """Every item id (items table ∪ interactions) with ``column`` from the items table."""
    _require(tables.items, ["item_id", column], "item labels")
    items = tables.items.select("item_id", column).unique("item_id", keep="first")
    universe = (
        pl.concat([tables.items.select("item_id"), split_frame.select("item_id")])
        .unique()
        .drop_nulls()
        .sort("item_id")
    )
    return universe.join(items, on="item_id", how="left", maintain_order="left")


def _clean_strings(expr: pl.Expr) -> pl.Expr:
    """Strip whitespace and treat empty strings as missing."""
    stripped = expr.cast(pl.String()).str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped)


# --------------------------------------------------------------------------- builders


@LABEL_BUILDERS.register("like")
@dataclass(frozen=True)
class LikeLabels:
    """Binary, interaction level: stars >= ``threshold``; masked without stars."""

    threshold: float = 4.0
    task: str = "like"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        frame = _stars(tables, split_frame).with_columns(
            (pl.col("stars") >= self.threshold).alias(self.task)
        )
        frame = _finish(frame, self.task, "binary", pl.col("stars").is_not_null())
        frame = _select_task(frame, ["interaction_id"], self.task)
        return [TaskLabels(self.task, "binary", "interaction", ("interaction_id",), frame)]


@LABEL_BUILDERS.register("rating")
@dataclass(frozen=True)
class RatingLabels:
    """Regression, interaction level: the star value; masked without stars."""

    task: str = "rating"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        frame = _stars(tables, split_frame).with_columns(pl.col("stars").alias(self.task))
        frame = _finish(frame, self.task, "regression", pl.col("stars").is_not_null())
        frame = _select_task(frame, ["interaction_id"], self.task)
        return [TaskLabels(self.task, "regression", "interaction", ("interaction_id",), frame)]


@LABEL_BUILDERS.register("sentiment")
@dataclass(frozen=True)
class SentimentLabels:
    """Multiclass, interaction level: negative / neutral / positive from stars.

    Stars <= ``negative_max`` are negative, >= ``positive_min`` positive, the rest neutral.
    Stars come from the reviews table (by interaction_id), else from the rating. With
    ``require_text`` the label is masked where the review has no text.
    """

    negative_max: float = 2.0
    positive_min: float = 4.0
    require_text: bool = False
    task: str = "sentiment"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        if self.negative_max >= self.positive_min:
            raise ValueError(
                f"sentiment: negative_max ({self.negative_max}) must be below "
                f"positive_min ({self.positive_min})"
            )
        stars = pl.col("stars")
        value = (
            pl.when(stars <= self.negative_max)
            .then(0)
            .when(stars >= self.positive_min)
            .then(2)
            .otherwise(1)
        )
        known = stars.is_not_null()
        if self.require_text:
            known = known & pl.col("has_text")
        frame = _stars(tables, split_frame).with_columns(value.alias(self.task))
        frame = _finish(frame, self.task, "multiclass", known)
        frame = _select_task(frame, ["interaction_id"], self.task)
        return [
            TaskLabels(
                self.task,
                "multiclass",
                "interaction",
                ("interaction_id",),
                frame,
                list(SENTIMENT_CLASSES),
            )
        ]


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
            TaskLabels(self.task, "multilabel", "item", ("item_id",), frame, list(vocab.tokens[1:]))
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
            TaskLabels(self.task, "multiclass", "item", ("item_id",), frame, list(vocab.tokens[1:]))
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
            TaskLabels(self.task, "multiclass", "item", ("item_id",), frame, bucketizer.labels())
        ]


@LABEL_BUILDERS.register("behaviour")
@dataclass(frozen=True)
class BehaviourLabels:
    """Binary, pair level, one task per behaviour (default ``view``, ``cart``, ``purchase``).

    One row per ``(user_id, item_id)`` pair of the interactions, with the pair's split;
    the task ``b`` is 1 where the pair has at least one ``b`` event, else 0, and always
    known. All tasks share the same pairs, so ESMM's click (view) and conversion
    (purchase) line up. Raises ``ValueError`` when none of the behaviours occurs.
    """

    behaviours: tuple[str, ...] = ("view", "cart", "purchase")

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        _require(split_frame, ["user_id", "item_id", "event"], "behaviour labels")
        present = set(split_frame["event"].drop_nulls().unique().to_list())
        if not present.intersection(self.behaviours):
            raise ValueError(
                f"behaviour labels: none of {list(self.behaviours)} occurs in the "
                f"interactions (events: {sorted(present)})"
            )
        aggs: list[pl.Expr] = [
            (pl.col("event") == b).any().cast(pl.Int8()).alias(b) for b in self.behaviours
        ]
        if SPLIT_COLUMN in split_frame.columns:
            aggs.append(pl.col(SPLIT_COLUMN).first())
        pairs = split_frame.group_by(["user_id", "item_id"]).agg(aggs).sort(["user_id", "item_id"])
        keys = _with_split(["user_id", "item_id"], pairs)
        tasks = []
        for b in self.behaviours:
            frame = pairs.select(*keys, b)
            frame = _finish(frame, b, "binary", pl.lit(True))
            tasks.append(TaskLabels(b, "binary", "pair", ("user_id", "item_id"), frame))
        return tasks


@LABEL_BUILDERS.register("tabular_binary")
@dataclass(frozen=True)
class TabularBinaryLabels:
    """Binary, user (row) level for tabular data: ``column == positive``.

    Values are compared as stripped strings. The mask is False where the column is null.
    For tabular datasets the rows are those of the split frame (the users table with its
    ``split``); for interaction datasets, one row per user of ``tables.users`` (no split),
    e.g. a MovieLens user attribute.
    """

    column: str
    positive: str
    task: str

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        # tabular data: the split frame holds the rows; otherwise one row per user
        source = split_frame if tables.kind == "tabular" else tables.users
        _require(source, ["user_id"], f"{self.task} labels")
        if self.column not in source.columns:
            _require(tables.users, ["user_id", self.column], f"{self.task} labels")
            source = source.join(
                tables.users.select("user_id", self.column).unique("user_id", keep="first"),
                on="user_id",
                how="left",
                maintain_order="left",
            )
        value = pl.col(self.column).cast(pl.String()).str.strip_chars()
        frame = source.select(
            _with_split(["user_id"], source)
            + [(value == str(self.positive).strip()).alias(self.task)]
            + [pl.col(self.column).is_not_null().alias("_known")]
        )
        frame = _finish(frame, self.task, "binary", pl.col("_known")).drop("_known")
        return [TaskLabels(self.task, "binary", "user", ("user_id",), frame)]


# --------------------------------------------------------------------------- build / write

LabelSpec = Any
"""A builder instance (has ``build``), a registered name, ``{"name": builder, "params":
{...}}``, or any object with ``name`` and ``params`` attributes (``ComponentConfig``)."""


def make_label_builder(name: str, **params: Any) -> LabelBuilder:
    """Build the label builder registered as ``name`` with keyword arguments ``params``."""
    cls = LABEL_BUILDERS.get(name)
    if "behaviours" in params:
        params["behaviours"] = tuple(params["behaviours"])
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"label builder {name!r}: {error}") from None


def as_label_builder(spec: LabelSpec) -> LabelBuilder:
    """Turn one label spec (see :data:`LabelSpec`) into a builder."""
    if isinstance(spec, str):
        return make_label_builder(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "params"}
        if "name" not in spec or unknown:
            raise ValueError(
                f"label spec {dict(spec)!r} must be {{'name': ..., 'params': {{...}}}}"
            )
        return make_label_builder(str(spec["name"]), **dict(spec.get("params") or {}))
    if hasattr(spec, "build"):
        builder: LabelBuilder = spec
        return builder
    if hasattr(spec, "name") and hasattr(spec, "params"):
        return make_label_builder(str(spec.name), **dict(spec.params or {}))
    raise TypeError(f"not a label spec: {spec!r}")


def default_split_frame(tables: CanonicalTables) -> pl.DataFrame:
    """The frame that carries the split: users for tabular data, else interactions."""
    return tables.users if tables.kind == "tabular" else tables.interactions


def build_labels(
    tables: CanonicalTables,
    specs: Sequence[LabelSpec] | pl.DataFrame,
    split_frame: pl.DataFrame | Sequence[LabelSpec] | None = None,
) -> list[TaskLabels]:
    """Run every builder of ``specs`` and return their tasks in order.

    ``split_frame`` is the interactions with ``split`` (the users with ``split`` for
    tabular data); by default it is taken from ``tables`` (see
    :func:`default_split_frame`), which must then carry the ``split`` column. The order
    ``build_labels(tables, split_frame, specs)`` is accepted as well.

    Raises ``ValueError`` for an unknown builder or parameter, duplicate task names, and
    a task without a single known label (for example ``like`` on data without ratings).
    """
    if isinstance(specs, pl.DataFrame):
        specs, split_frame = split_frame or [], specs
    frame = default_split_frame(tables) if split_frame is None else split_frame
    if not isinstance(frame, pl.DataFrame):
        raise TypeError("split_frame must be a polars DataFrame")
    tasks: list[TaskLabels] = []
    for spec in specs:
        tasks.extend(as_label_builder(spec).build(tables, frame))
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate task names {duplicates}; give the builders distinct 'task'")
    for task in tasks:
        if task.n_known == 0:
            raise ValueError(f"task {task.name!r} has no known label in this dataset")
    return tasks


LABEL_FILES: dict[str, str] = {level: f"labels_{level}" for level in TASK_LEVELS}
"""Table name (file stem; the file is ``<stem>.parquet``) of each level's labels."""
TASKS_FILE = "tasks.json"


def join_level(tasks: Sequence[TaskLabels]) -> pl.DataFrame:
    """Join tasks of one level on their keys: keys, ``split`` (when known), then each
    task's value and mask columns. Missing rows get a null value and a False mask."""
    if not tasks:
        raise ValueError("join_level needs at least one task")
    keys = list(tasks[0].keys)
    for task in tasks:
        if list(task.keys) != keys:
            raise ValueError(f"tasks of one level have different keys: {keys} vs {task.keys}")
    has_split = any(SPLIT_COLUMN in t.frame.columns for t in tasks)
    key_frames = [
        t.frame.select(_with_split(keys, t.frame))
        if SPLIT_COLUMN in t.frame.columns or not has_split
        else t.frame.select(keys).with_columns(pl.lit(None, pl.String()).alias(SPLIT_COLUMN))
        for t in tasks
    ]
    base = pl.concat(key_frames, how="vertical_relaxed")
    if has_split:
        base = base.group_by(keys).agg(pl.col(SPLIT_COLUMN).drop_nulls().first())
    else:
        base = base.unique(keys)
    base = base.sort(keys)
    for task in tasks:
        base = base.join(
            task.frame.select(*keys, task.name, task.mask_column),
            on=keys,
            how="left",
            maintain_order="left",
        ).with_columns(pl.col(task.mask_column).fill_null(False))
    return base


def write_labels(
    labels: Sequence[TaskLabels], out_dir: str | Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Write one parquet per level present plus ``tasks.json``.

    Files: ``labels_interaction.parquet``, ``labels_item.parquet``,
    ``labels_pair.parquet``, ``labels_user.parquet`` (only levels that have tasks; each
    joins that level's tasks on their keys, see :func:`join_level`) and ``tasks.json``
    (``{"tasks": [...]}`` of :meth:`TaskLabels.describe` entries).

    Returns ``(task_descriptions, table_names)``: the ``tasks.json`` entries and the stems
    of the parquet files written (e.g. ``["labels_interaction", "labels_item"]``).
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for level in TASK_LEVELS:
        tasks = [t for t in labels if t.level == level]
        if not tasks:
            continue
        join_level(tasks).write_parquet(target / f"{LABEL_FILES[level]}.parquet")
        written.append(LABEL_FILES[level])
    described = [t.describe() for t in labels]
    (target / TASKS_FILE).write_text(
        json.dumps({"tasks": described}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return described, written


def read_tasks(out_dir: str | Path) -> list[dict[str, Any]]:
    """The task descriptions written by :func:`write_labels`."""
    data = json.loads((Path(out_dir) / TASKS_FILE).read_text(encoding="utf-8"))
    tasks: list[dict[str, Any]] = data["tasks"]
    return tasks


__all__ = [
    "LABEL_BUILDERS",
    "LABEL_FILES",
    "BehaviourLabels",
    "BrandLabels",
    "CategoryLabels",
    "GenreLabels",
    "LabelBuilder",
    "LabelSpec",
    "LikeLabels",
    "PriceBucketLabels",
    "RatingLabels",
    "SentimentLabels",
    "TabularBinaryLabels",
    "TaskLabels",
    "as_label_builder",
    "build_labels",
    "default_split_frame",
    "join_level",
    "make_label_builder",
    "multi_hot",
    "read_tasks",
    "write_labels",
]
