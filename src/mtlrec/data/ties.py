"""Ties at a split boundary: held-out interactions that share a timestamp with earlier ones.

When timestamps are coarse (Amazon reviews carry whole days), "the user's latest
interaction" is often not unique, and which of the tied interactions is held out is a
choice of the splitter, not a fact of the data. :func:`boundary_ties` counts the users
this concerns, so ``data prepare`` can record it in the manifest and ``data stats`` can
show it::

    ties = boundary_ties(interactions_with_split)
    ties["tied_users"], ties["users"], ties["share"]
"""

from __future__ import annotations

import polars as pl

from mtlrec.data.split import SPLIT_COLUMN, SPLIT_NAMES


def boundary_ties(interactions: pl.DataFrame) -> dict[str, int | float]:
    """Users whose split boundary falls inside a tie of timestamps.

    A user counts when one of their valid (test) rows has the same timestamp as one of
    their own rows in an earlier split: train (train or valid). ``interactions`` needs
    ``user_id``, ``timestamp`` and ``split``; rows with a null timestamp never tie.
    Returns ``{"users", "tied_users", "share", "valid_tied_users", "test_tied_users"}``
    where ``users`` counts users with at least one valid or test row and ``share`` is
    ``tied_users / users`` (0.0 when there are none).
    """
    missing = [c for c in ("user_id", "timestamp", SPLIT_COLUMN) if c not in interactions.columns]
    if missing:
        raise ValueError(f"boundary_ties needs columns {missing}; frame has {interactions.columns}")
    order = pl.col(SPLIT_COLUMN).replace_strict(
        {name: rank for rank, name in enumerate(SPLIT_NAMES)}, return_dtype=pl.Int8
    )
    rows = interactions.select("user_id", "timestamp", order.alias("rank")).unique()
    held_out = rows.filter(pl.col("rank") > 0)
    tied = (
        held_out.join(rows, on=["user_id", "timestamp"], suffix="_other")
        .filter(pl.col("rank_other") < pl.col("rank"))
        .select("user_id", "rank")
        .unique()
    )
    users = held_out["user_id"].n_unique()
    tied_users = tied["user_id"].n_unique()
    return {
        "users": users,
        "tied_users": tied_users,
        "share": round(tied_users / users, 4) if users else 0.0,
        "valid_tied_users": int((tied["rank"] == 1).sum()),
        "test_tied_users": int((tied["rank"] == 2).sum()),
    }
