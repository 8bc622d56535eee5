"""The user-level label builder ``tabular_binary``: ``column == positive`` for each row of
a tabular dataset (the users table with its split), or for each user of an interaction
dataset (a user attribute such as MovieLens gender), masked where the column is null.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mtlrec.data.labels.base import LABEL_BUILDERS, TaskLabels, _finish, _require, _with_split
from mtlrec.data.schema import CanonicalTables


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
        return [
            TaskLabels(
                self.task,
                "binary",
                "user",
                ("user_id",),
                frame,
                source_columns=(f"users.{self.column}",),
            )
        ]
