"""Fixed sampled negatives for the validation and test positives of a prepared dataset.

Training negatives are drawn fresh each epoch by the data loader; evaluation negatives
must be the same for every model compared, so ``data prepare`` can write them once
(``negatives.parquet``). Metrics computed on them are *sampled* metrics and must be
labelled as such; full ranking over all items needs no negatives at all.
"""

from __future__ import annotations

import polars as pl

from mtlrec.data.sampling import SamplingStrategy, sample_negatives


def evaluation_negatives(
    interactions: pl.DataFrame,
    item_ids: pl.Series,
    per_positive: int,
    strategy: SamplingStrategy = "uniform",
    seed: int = 0,
) -> pl.DataFrame:
    """Draw ``per_positive`` negatives for every valid/test interaction.

    ``interactions`` carries ``interaction_id, user_id, item_id, split``; ``item_ids`` is the
    item catalogue to draw from (cold items included). A negative is never an item the
    user interacted with in any split; popularity sampling follows *training* counts.
    Returns ``interaction_id, split, user_id, item_id`` (one row per negative).
    """
    catalogue = pl.DataFrame({"item_id": item_ids.unique().sort()}).with_row_index("item_idx")
    users = interactions.select("user_id").unique().sort("user_id").with_row_index("user_idx")
    indexed = (
        interactions.join(users, on="user_id")
        .join(catalogue, on="item_id")
        .with_columns(pl.col("user_idx", "item_idx").cast(pl.Int64))
        .sort("interaction_id")
    )
    held_out = indexed.filter(pl.col("split") != "train")
    drawn = sample_negatives(
        held_out.select("user_idx", "item_idx"),
        n_items=catalogue.height,
        num_per_positive=per_positive,
        strategy=strategy,
        seed=seed,
        exclude=indexed.select("user_idx", "item_idx"),
        popularity_source=indexed.filter(pl.col("split") == "train").select("item_idx"),
    )
    owners = held_out.select("interaction_id", "split").select(
        pl.all().repeat_by(per_positive).explode()
    )
    return (
        pl.concat([owners, drawn.select("user_idx", "item_idx")], how="horizontal")
        .join(users, on="user_idx")
        .join(catalogue.with_columns(pl.col("item_idx").cast(pl.Int64)), on="item_idx")
        .select("interaction_id", "split", "user_id", "item_id")
        .sort("interaction_id", maintain_order=True)
    )
