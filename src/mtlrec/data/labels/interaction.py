"""Interaction-level label builders from stars: ``like`` (binary, stars >= threshold),
``rating`` (regression, the star value) and ``sentiment`` (negative / neutral / positive).
Stars come from the reviews table (by interaction_id), else from the interaction's value
for rating/review events; the label is masked where neither is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mtlrec.data.labels.base import (
    LABEL_BUILDERS,
    SENTIMENT_CLASSES,
    TaskLabels,
    _finish,
    _select_task,
    _stars,
)
from mtlrec.data.schema import CanonicalTables


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


@LABEL_BUILDERS.register("interest")
@dataclass(frozen=True)
class InterestLabels:
    """Binary, interaction level, implicit feedback: 1 for every observed interaction.

    The 0s come from sampled negatives at training and evaluation time (configure the
    task's ``negative_label: 0``); ``events`` restricts which event types count.
    """

    events: tuple[str, ...] | None = None
    task: str = "interest"

    def build(self, tables: CanonicalTables, split_frame: pl.DataFrame) -> list[TaskLabels]:
        frame = split_frame.select("interaction_id", "split", "event")
        known = pl.lit(True) if self.events is None else pl.col("event").is_in(list(self.events))
        frame = frame.with_columns(known.alias(self.task))
        frame = _finish(frame, self.task, "binary", pl.col(self.task))
        frame = _select_task(frame, ["interaction_id"], self.task)
        return [TaskLabels(self.task, "binary", "interaction", ("interaction_id",), frame)]
