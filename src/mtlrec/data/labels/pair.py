"""The pair-level label builder ``behaviour``: one binary task per behaviour (view, cart,
purchase, ...) over the ``(user_id, item_id)`` pairs of the interactions, always known,
so that tasks such as ESMM's click and conversion share the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mtlrec.data.labels.base import LABEL_BUILDERS, TaskLabels, _finish, _require, _with_split
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.split import SPLIT_COLUMN


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
