from __future__ import annotations

import polars as pl

from mtlrec.data.negatives import evaluation_negatives


def _interactions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "interaction_id": [0, 1, 2, 3, 4, 5],
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
            "item_id": ["a", "b", "c", "a", "d", "a"],
            "split": ["train", "valid", "test", "train", "test", "train"],
        }
    )


def test_negatives_for_held_out_positives_avoid_every_known_item() -> None:
    inter = _interactions()
    catalogue = pl.Series(["a", "b", "c", "d", "e", "f", "cold"])
    negatives = evaluation_negatives(inter, catalogue, per_positive=3, seed=1)
    assert negatives.height == 3 * 3  # interactions 1, 2 and 4 are held out
    assert negatives["interaction_id"].to_list() == [1, 1, 1, 2, 2, 2, 4, 4, 4]
    assert negatives.join(inter, on=["user_id", "item_id"]).height == 0
    assert set(negatives["item_id"]) <= set(catalogue)
    owners = inter.select("interaction_id", "user_id", "split")
    assert (
        negatives.join(owners, on="interaction_id")
        .filter(
            (pl.col("user_id") != pl.col("user_id_right"))
            | (pl.col("split") != pl.col("split_right"))
        )
        .height
        == 0
    )


def _popularity_toy() -> pl.DataFrame:
    held_out = [(f"u{i}", f"t{i}", "test") for i in range(20)]
    popular = [(f"v{i}", "pop", "train") for i in range(20)]
    rows = [*held_out, *popular, ("w", "rare", "train")]
    return (
        pl.DataFrame(
            {
                "user_id": [r[0] for r in rows],
                "item_id": [r[1] for r in rows],
                "split": [r[2] for r in rows],
            }
        )
        .with_row_index("interaction_id")
        .with_columns(pl.col("interaction_id").cast(pl.Int64))
    )


def test_popularity_negatives_follow_training_counts_and_are_reproducible() -> None:
    inter = _popularity_toy()
    catalogue = inter["item_id"]
    first = evaluation_negatives(inter, catalogue, 50, "popularity", seed=5)
    assert first.equals(evaluation_negatives(inter, catalogue, 50, "popularity", seed=5))
    counts = first["item_id"].value_counts()
    drawn = dict(zip(counts["item_id"].to_list(), counts["count"].to_list(), strict=True))
    # only items with training positives are drawn, the popular one far more often:
    # P(pop) = 20**0.75 / (20**0.75 + 1) ~ 0.90
    assert set(drawn) == {"pop", "rare"}
    assert drawn["pop"] > 5 * drawn["rare"]


def test_a_user_who_knows_every_drawable_item_fails_loudly() -> None:
    inter = pl.DataFrame(
        {
            "interaction_id": [0, 1],
            "user_id": ["u", "u"],
            "item_id": ["a", "b"],
            "split": ["train", "test"],
        }
    )
    try:
        evaluation_negatives(inter, pl.Series(["a", "b"]), 1)
    except ValueError as error:
        assert "no negative can be drawn" in str(error)
    else:
        raise AssertionError("expected a ValueError")
