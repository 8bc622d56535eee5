"""The shared vocabulary of task labels: :class:`TaskLabels`, the :class:`LabelBuilder`
protocol with its registry :data:`LABEL_BUILDERS`, the task kinds and levels, and the
private helpers the builders share (stars per interaction, item attributes over the item
universe, casting a value column and setting its mask). The builders themselves live in
the sibling modules, one per family, and register here when :mod:`mtlrec.data.labels` is
imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl

from mtlrec.core.registry import Registry
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
    source_columns: tuple[str, ...] = ()
    """``"<table>.<column>"`` the labels are read from: never to be used as model inputs."""

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
            "source_columns": list(self.source_columns),
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
