"""Splits: partition, pair integrity, leave-one-out order and ties, seeding, k-core, cold start."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlrec.core.registry import UnknownNameError
from mtlrec.data.split import (
    NO_TIMESTAMPS_MESSAGE,
    SPLITTERS,
    LeaveOneOutSplit,
    RandomSplit,
    TemporalSplit,
    attach_split,
    check_ratios,
    kcore_filter,
    make_splitter,
    mark_cold_start,
    split_interactions,
    split_rows,
    split_summary,
)
from mtlrec.data.ties import boundary_ties


def interactions(rows: list[tuple[str, str, int | None, str]]) -> pl.DataFrame:
    """(user, item, timestamp, event) rows -> an interactions frame with ids 0..n-1."""
    return pl.DataFrame(
        {
            "interaction_id": list(range(len(rows))),
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
            "event": [r[3] for r in rows],
            "value": [1.0] * len(rows),
        },
        schema={
            "interaction_id": pl.Int64,
            "user_id": pl.String,
            "item_id": pl.String,
            "timestamp": pl.Int64,
            "event": pl.String,
            "value": pl.Float64,
        },
    )


row_strategy = st.tuples(
    st.sampled_from([f"u{i}" for i in range(8)]),
    st.sampled_from([f"i{i}" for i in range(10)]),
    st.integers(min_value=0, max_value=20),
    st.sampled_from(["view", "cart", "purchase"]),
)
frames = st.lists(row_strategy, min_size=1, max_size=80).map(interactions)
ratio_strategy = st.sampled_from(
    [(0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0), (0.6, 0.4, 0.0)]
)
STRATEGIES = ["random", "temporal", "leave_one_out"]
quick = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- properties


@quick
@given(
    frame=frames,
    strategy=st.sampled_from(STRATEGIES),
    ratios=ratio_strategy,
    seed=st.integers(0, 5),
)
def test_every_row_lands_in_exactly_one_split(frame, strategy, ratios, seed):
    kwargs = {"seed": seed} if strategy == "leave_one_out" else {"ratios": ratios, "seed": seed}
    out = split_interactions(frame, strategy, **kwargs)
    assert out["split"].null_count() == 0
    assert set(out["split"].unique().to_list()) <= {"train", "valid", "test"}
    if strategy != "leave_one_out":
        assert out.drop("split").equals(frame)
        return
    # leave-one-out keeps every row in order, except earlier repeats of a held-out event
    kept = frame.filter(pl.col("interaction_id").is_in(out["interaction_id"].implode()))
    assert out.drop("split").equals(kept)
    dropped = frame.join(out, on="interaction_id", how="anti")
    held_out = out.filter(pl.col("split") != "train")
    assert dropped.join(held_out, on=["user_id", "item_id", "event"]).height == dropped.height


@quick
@given(frame=frames, strategy=st.sampled_from(STRATEGIES), seed=st.integers(0, 5))
def test_no_pair_straddles_splits(frame, strategy, seed):
    out = split_interactions(
        frame, strategy, **({} if strategy == "leave_one_out" else {"seed": seed})
    )
    per_pair = out.group_by("user_id", "item_id").agg(pl.col("split").n_unique().alias("n"))
    assert per_pair["n"].max() == 1


@quick
@given(frame=frames, seed=st.integers(0, 1000), ratios=ratio_strategy)
def test_random_split_is_reproducible_and_order_free(frame, seed, ratios):
    a = RandomSplit(ratios=ratios, seed=seed).apply(frame)
    b = RandomSplit(ratios=ratios, seed=seed).apply(frame)
    assert a.equals(b)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    c = RandomSplit(ratios=ratios, seed=seed).apply(shuffled)
    joined = a.join(c.select("interaction_id", pl.col("split").alias("c")), on="interaction_id")
    assert (joined["split"] == joined["c"]).all()


@quick
@given(frame=frames, ratios=ratio_strategy, seed=st.integers(0, 50))
def test_random_split_pair_counts_follow_ratios(frame, ratios, seed):
    out = RandomSplit(ratios=ratios, seed=seed).apply(frame)
    pairs = out.unique(["user_id", "item_id"])
    n = pairs.height
    assert (pairs["split"] == "train").sum() == round(n * ratios[0])
    assert (pairs["split"] != "test").sum() == round(n * (ratios[0] + ratios[1]))


@quick
@given(frame=frames)
def test_leave_one_out_test_pair_is_each_users_latest(frame):
    out = LeaveOneOutSplit(ties="interaction_id").apply(frame)
    for (user,), rows in out.group_by("user_id"):
        latest = rows.sort(["timestamp", "interaction_id"]).tail(1)
        n_pairs = rows.select("item_id").n_unique()
        counts = rows.unique(["item_id"]).group_by("split").len()
        by_split = dict(zip(counts["split"].to_list(), counts["len"].to_list(), strict=True))
        if n_pairs == 1:
            assert by_split == {"train": 1}, user
        else:
            assert latest["split"].item() == "test", user
            assert by_split.get("test") == 1
            assert by_split.get("valid", 0) == (1 if n_pairs >= 3 else 0)
            # valid is the latest pair among those not in test
            if n_pairs >= 3:
                rest = rows.filter(pl.col("split") != "test").sort(["timestamp", "interaction_id"])
                assert rest.tail(1)["split"].item() == "valid"


def _pair_times(out: pl.DataFrame) -> pl.DataFrame:
    return out.group_by("user_id", "item_id").agg(
        pl.col("timestamp").max().alias("t"), pl.col("split").first()
    )


@quick
@given(frame=frames, seed=st.integers(0, 1000), ties=st.sampled_from(["random", "interaction_id"]))
def test_leave_one_out_holds_out_one_valid_and_one_test_per_user(frame, seed, ties):
    out = LeaveOneOutSplit(seed=seed, ties=ties).apply(frame)
    n_pairs = frame.group_by("user_id").agg(pl.col("item_id").n_unique().alias("n"))
    held = out.filter(pl.col("split") != "train")
    # one row per (pair, event) in valid/test: with one event type, one row per user
    assert held.select("user_id", "item_id", "event").is_unique().all()
    per_user = held.group_by("user_id", "split").agg(pl.col("item_id").n_unique().alias("p"))
    assert per_user["p"].max() in (None, 1)
    counts = n_pairs.join(
        per_user.pivot("split", index="user_id", values="p"), on="user_id", how="left"
    )
    for row in counts.iter_rows(named=True):
        assert (row.get("test") or 0) == (1 if row["n"] >= 2 else 0)
        assert (row.get("valid") or 0) == (1 if row["n"] >= 3 else 0)
    # by time: test is among the user's latest pairs, valid among the latest of the rest
    times = _pair_times(out)
    last = times.group_by("user_id").agg(pl.col("t").max().alias("last"))
    test = times.filter(pl.col("split") == "test").join(last, on="user_id")
    assert (test["t"] == test["last"]).all()
    rest = times.filter(pl.col("split") != "test")
    rest_last = rest.group_by("user_id").agg(pl.col("t").max().alias("last"))
    valid = rest.filter(pl.col("split") == "valid").join(rest_last, on="user_id")
    assert (valid["t"] == valid["last"]).all()
    assert out.equals(LeaveOneOutSplit(seed=seed, ties=ties).apply(frame))


@quick
@given(frame=frames, seed=st.integers(0, 1000))
def test_random_ties_ignore_row_order_and_ids(frame, seed):
    a = LeaveOneOutSplit(seed=seed).apply(frame)
    renumbered = frame.sample(fraction=1.0, shuffle=True, seed=seed).with_columns(
        pl.int_range(pl.len()).cast(pl.Int64).alias("interaction_id")
    )
    b = LeaveOneOutSplit(seed=seed).apply(renumbered)
    # per (user, item, event, timestamp) the same split, whatever the order and ids
    keys = ["user_id", "item_id", "event", "timestamp"]
    pair_split = _pair_times(a).select("user_id", "item_id", "split")
    other = _pair_times(b).select("user_id", "item_id", pl.col("split").alias("other"))
    joined = pair_split.join(other, on=["user_id", "item_id"])
    assert joined.height == pair_split.height and (joined["split"] == joined["other"]).all()
    assert a.select(*keys).sort(keys).equals(b.select(*keys).sort(keys))


@quick
@given(frame=frames, ratios=ratio_strategy)
def test_temporal_split_never_puts_an_earlier_pair_later(frame, ratios):
    out = TemporalSplit(ratios=ratios).apply(frame)
    pairs = out.group_by("user_id", "item_id").agg(
        pl.col("timestamp").min().alias("t"), pl.col("split").first()
    )
    rank = {"train": 0, "valid": 1, "test": 2}
    ordered = pairs.with_columns(pl.col("split").replace_strict(rank).alias("r")).sort("t")
    # split order is monotone in first timestamp, so ties share a split
    assert (ordered["r"].diff().drop_nulls() >= 0).all()
    # ties only ever move pairs into the earlier split
    assert (ordered["r"] == 0).sum() >= round(ordered.height * ratios[0])
    assert ordered.group_by("t").agg(pl.col("r").n_unique())["r"].max() == 1


@quick
@given(frame=frames, user_k=st.integers(0, 5), item_k=st.integers(0, 5))
def test_kcore_leaves_every_user_and_item_with_k_rows(frame, user_k, item_k):
    out, stats = kcore_filter(frame, user_k, item_k)
    if out.height:
        assert out.group_by("user_id").len()["len"].min() >= user_k
        assert out.group_by("item_id").len()["len"].min() >= item_k
    assert stats["rows_removed"] == frame.height - out.height
    assert stats["rows_kept"] == out.height
    assert stats["iterations"] >= 1
    # nothing more to remove: running again is a no-op
    again, more = kcore_filter(out, user_k, item_k)
    assert again.equals(out) and more["rows_removed"] == 0


@quick
@given(n=st.integers(0, 200), seed=st.integers(0, 100))
def test_split_rows_partitions_rows(n, seed):
    frame = pl.DataFrame({"user_id": [str(i) for i in range(n)], "x": list(range(n))})
    out = split_rows(frame, (0.7, 0.15, 0.15), seed)
    assert out.height == n and out.drop("split").equals(frame)
    assert (out["split"] == "train").sum() == round(n * 0.7)
    assert out.equals(split_rows(frame, (0.7, 0.15, 0.15), seed))


# --------------------------------------------------------------------------- examples


def test_kcore_iterates_until_stable():
    # u3 has 1 row -> removed, which drops i3 below 2 rows -> removed, which drops u2
    frame = interactions(
        [
            ("u1", "i1", 1, "view"),
            ("u1", "i2", 2, "view"),
            ("u4", "i1", 3, "view"),
            ("u4", "i2", 4, "view"),
            ("u2", "i3", 5, "view"),
            ("u2", "i1", 6, "view"),
            ("u3", "i3", 7, "view"),
        ]
    )
    out, stats = kcore_filter(frame, 2, 2)
    assert sorted(out["user_id"].unique().to_list()) == ["u1", "u4"]
    assert sorted(out["item_id"].unique().to_list()) == ["i1", "i2"]
    assert stats["users_removed"] == 2 and stats["items_removed"] == 1
    assert stats["rows_removed"] == 3
    assert stats["iterations"] >= 3


def test_kcore_zero_disables():
    frame = interactions([("u1", "i1", 1, "view")])
    out, stats = kcore_filter(frame, 0, 0)
    assert out.equals(frame) and stats["rows_removed"] == 0


def test_random_split_keeps_behaviours_of_a_pair_together():
    rows = []
    for u in range(30):
        for i in range(4):
            for event in ("view", "cart", "purchase"):
                rows.append((f"u{u}", f"i{i}", u + i, event))
    out = RandomSplit(seed=3).apply(interactions(rows))
    per_pair = out.group_by("user_id", "item_id").agg(pl.col("split").n_unique())
    assert per_pair["split"].max() == 1
    assert set(out["split"].unique()) == {"train", "valid", "test"}
    assert (
        not RandomSplit(seed=3)
        .apply(interactions(rows))
        .equals(RandomSplit(seed=4).apply(interactions(rows)))
    )


def test_temporal_ties_go_to_the_earlier_split():
    # 10 pairs, 8 for train by count: the 8th and 9th pair share t=8 -> both train
    rows = [(f"u{i}", "i", t, "view") for i, t in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 8, 9])]
    out = TemporalSplit(ratios=(0.8, 0.1, 0.1)).apply(interactions(rows))
    assert out["split"].to_list() == ["train"] * 9 + ["test"]


def test_temporal_uses_first_timestamp_of_pair():
    rows = [
        ("a", "x", 1, "view"),
        ("a", "x", 100, "purchase"),  # same pair, late event: stays with the pair
        ("b", "y", 50, "view"),
    ]
    out = TemporalSplit(ratios=(0.5, 0.0, 0.5)).apply(interactions(rows))
    assert out["split"].to_list() == ["train", "train", "test"]


def test_leave_one_out_ties_broken_by_interaction_id():
    rows = [
        ("a", "x", 5, "view"),
        ("a", "y", 5, "view"),
        ("a", "z", 5, "view"),
        ("b", "x", 1, "view"),
        ("b", "y", 2, "view"),
        ("c", "x", 1, "view"),
    ]
    out = LeaveOneOutSplit(ties="interaction_id").apply(interactions(rows))
    assert out["split"].to_list() == ["train", "valid", "test", "train", "test", "train"]


def _last_three_tied() -> pl.DataFrame:
    """User ``a`` wrote 5 reviews; the last 3 share a day. User ``b`` has no tie."""
    return interactions(
        [
            ("a", "v", 1, "review"),
            ("a", "w", 2, "review"),
            ("a", "x", 9, "review"),
            ("a", "y", 9, "review"),
            ("a", "z", 9, "review"),
            ("b", "x", 1, "review"),
            ("b", "y", 2, "review"),
            ("b", "z", 3, "review"),
        ]
    )


def test_random_ties_hold_out_one_valid_and_one_test_among_the_tied_and_are_seeded():
    frame = _last_three_tied()
    seen: set[tuple[str, str]] = set()
    for seed in range(20):
        out = LeaveOneOutSplit(seed=seed).apply(frame)
        assert out.height == frame.height
        a = out.filter(pl.col("user_id") == "a")
        valid = a.filter(pl.col("split") == "valid")["item_id"].to_list()
        test = a.filter(pl.col("split") == "test")["item_id"].to_list()
        assert len(valid) == 1 and len(test) == 1  # exactly one of each, never the tie group
        assert {valid[0], test[0]} <= {"x", "y", "z"} and valid != test
        assert a.filter(pl.col("item_id").is_in(["v", "w"]))["split"].to_list() == ["train"] * 2
        b = out.filter(pl.col("user_id") == "b")["split"].to_list()
        assert b == ["train", "valid", "test"]  # no tie: the seed changes nothing
        assert out.equals(LeaveOneOutSplit(seed=seed).apply(frame))  # same seed, same split
        seen.add((valid[0], test[0]))
    assert len(seen) > 1  # the order within the tie is drawn, not fixed by file order
    via_config = split_interactions(frame, "leave_one_out", seed=3)
    assert via_config.equals(LeaveOneOutSplit(seed=3).apply(frame))
    with pytest.raises(ValueError, match="unknown tie rule"):
        LeaveOneOutSplit(ties="all_held_out").apply(frame)  # type: ignore[arg-type]


def test_leave_one_out_repeated_pair_gives_one_held_out_row():
    # a reviews x twice: the pair's time is its latest review (t=4), so x is the test pair;
    # its earlier review would be a second test row (or, in train, leak x): it is dropped
    rows = [
        ("a", "x", 1, "review"),
        ("a", "y", 2, "review"),
        ("a", "z", 3, "review"),
        ("a", "x", 4, "review"),
        ("b", "x", 1, "review"),  # repeats in train are kept
        ("b", "x", 2, "review"),
        ("b", "y", 3, "review"),
        ("b", "z", 4, "review"),
    ]
    out = LeaveOneOutSplit().apply(interactions(rows))
    assert out["interaction_id"].to_list() == [1, 2, 3, 4, 5, 6, 7]
    assert out["split"].to_list() == ["train", "valid", "test", "train", "train", "valid", "test"]
    assert out.filter(pl.col("split") == "test").height == 2  # one per user


def test_leave_one_out_keeps_every_event_of_a_held_out_pair():
    # multi-behaviour data: view and purchase of the test pair are one example (a pair)
    rows = [
        ("a", "x", 1, "view"),
        ("a", "y", 2, "view"),
        ("a", "z", 3, "view"),
        ("a", "z", 4, "view"),
        ("a", "z", 5, "purchase"),
    ]
    out = LeaveOneOutSplit().apply(interactions(rows))
    assert out["interaction_id"].to_list() == [0, 1, 3, 4]
    assert out["split"].to_list() == ["train", "valid", "test", "test"]


def test_boundary_ties_count_users_whose_held_out_row_shares_a_time_with_an_earlier_split():
    frame = _last_three_tied()
    ties = boundary_ties(LeaveOneOutSplit(seed=0).apply(frame))
    # a: valid and test both share day 9 with a train review (and with each other); b: none
    assert ties == {
        "users": 2,
        "tied_users": 1,
        "share": 0.5,
        "valid_tied_users": 1,
        "test_tied_users": 1,
    }
    only_test_tied = interactions(
        [("c", "v", 1, "r"), ("c", "w", 2, "r"), ("c", "x", 2, "r"), ("d", "v", 1, "r")]
    ).with_columns(split=pl.Series(["train", "valid", "test", "train"]))
    assert boundary_ties(only_test_tied) == {
        "users": 1,
        "tied_users": 1,
        "share": 1.0,
        "valid_tied_users": 0,
        "test_tied_users": 1,
    }
    empty = boundary_ties(only_test_tied.with_columns(split=pl.lit("train")))
    assert empty["users"] == 0 and empty["share"] == 0.0
    with pytest.raises(ValueError, match="needs columns"):
        boundary_ties(only_test_tied.drop("timestamp"))


def test_temporal_cut_never_falls_inside_a_tie():
    # pairs tied at the cut go together to the earlier split: no held-out row shares a time
    rows = [(f"u{i % 3}", f"i{i}", t, "view") for i, t in enumerate([1, 2, 3, 4, 4, 4, 5, 6])]
    out = TemporalSplit(ratios=(0.5, 0.375, 0.125)).apply(interactions(rows))
    assert out["split"].to_list() == ["train"] * 6 + ["valid", "test"]  # train 6, not 4
    assert boundary_ties(out)["tied_users"] == 0


@pytest.mark.parametrize("strategy", ["temporal", "leave_one_out"])
def test_time_splits_need_timestamps(strategy):
    frame = interactions([("a", "x", None, "view"), ("b", "y", None, "view")])
    with pytest.raises(ValueError, match=NO_TIMESTAMPS_MESSAGE):
        make_splitter(strategy).apply(frame)
    partial = interactions([("a", "x", 1, "view"), ("b", "y", None, "view")])
    with pytest.raises(ValueError, match="1 of 2 interactions have no timestamp"):
        make_splitter(strategy).apply(partial)


def test_random_split_works_without_timestamps():
    frame = interactions([("a", "x", None, "view"), ("b", "y", None, "view")])
    assert RandomSplit().apply(frame)["split"].null_count() == 0


def test_registry_and_ratio_checks():
    assert SPLITTERS.names() == ["leave_one_out", "random", "temporal"]
    with pytest.raises(UnknownNameError, match="known splitters"):
        make_splitter("by_magic")
    with pytest.raises(ValueError, match="sum to 1"):
        check_ratios((0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        check_ratios((1.2, -0.1, -0.1))
    with pytest.raises(ValueError, match="sum to 1"):
        RandomSplit(ratios=(0.9, 0.9, 0.0)).apply(interactions([("a", "x", 1, "view")]))


def test_cold_start_marking_and_summary():
    frame = interactions(
        [
            ("u1", "i1", 1, "view"),
            ("u1", "i2", 2, "view"),
            ("u2", "i1", 3, "view"),
            ("u3", "i1", 4, "view"),  # u3 only outside train -> cold user
            ("u1", "i9", 5, "view"),  # i9 only outside train -> cold item
            ("u1", "i9", 6, "cart"),
        ]
    ).with_columns(split=pl.Series(["train", "train", "train", "test", "valid", "valid"]))
    out = mark_cold_start(frame)
    assert out.height == frame.height  # cold rows are kept
    assert out["cold_user"].to_list() == [False, False, False, True, False, False]
    assert out["cold_item"].to_list() == [False, False, False, False, True, True]
    summary = split_summary(out)
    assert summary["train"] == {
        "rows": 3,
        "users": 2,
        "items": 2,
        "pairs": 3,
        "cold_user_rows": 0,
        "cold_item_rows": 0,
        "cold_users": 0,
        "cold_items": 0,
    }
    assert summary["valid"]["rows"] == 2 and summary["valid"]["pairs"] == 1
    assert summary["valid"]["cold_item_rows"] == 2 and summary["valid"]["cold_items"] == 1
    assert summary["test"]["cold_users"] == 1 and summary["test"]["cold_items"] == 0
    assert split_summary(frame) == summary  # computes cold columns itself


def test_attach_split_to_reviews():
    frame = interactions([("a", "x", 1, "review"), ("b", "y", 2, "review")])
    with_split = frame.with_columns(split=pl.Series(["train", "test"]))
    reviews = pl.DataFrame({"interaction_id": [1, 0, 7], "stars": [1.0, 2.0, 3.0]})
    out = attach_split(reviews, with_split)
    assert out["split"].to_list() == ["test", "train", None]
